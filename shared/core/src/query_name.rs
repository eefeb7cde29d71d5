//! Splitting a logged query name into its pack and query.
//!
//! osquery logs a pack query as `pack<delimiter><pack><delimiter><query>` with a
//! configurable `--pack_delimiter` (`_` by default, `/` in Fleet, anything a user picks).
//! Pack names themselves contain `-` and `_` (`osx-attacks`, `generic_linux`), so the
//! split is ambiguous; we resolve it against known pack names and otherwise keep the
//! name whole, because a wrong split would silently break query-based rules and mappings.

/// Packs whose names we recognize inside `pack_<pack>_<query>`: osquery's standard packs,
/// the public osquery-attck packs (named by file stem), and tripline's own packs.
pub const KNOWN_PACKS: &[&str] = &[
    // osquery standard packs
    "hardware-monitoring",
    "incident-response",
    "it-compliance",
    "osquery-monitoring",
    "ossec-rootkit",
    "osx-attacks",
    "unwanted-chrome-extensions",
    "vuln-management",
    "windows-attacks",
    "windows-hardening",
    // tripline's packs (packs/)
    "tripline-common",
    "tripline-linux",
    "tripline-macos",
    // teoseller/osquery-attck packs, by file stem
    "generic_linux",
    "linux_browser_extensions",
    "linux_command_execution",
    "linux_home_root_hidden_file_directory",
    "linux_kernel_modules_and_extensions",
    "linux_local_job_scheduling",
    "linux_network_connections",
    "linux_relevant_folder_check",
    "linux_running_processes",
    "linux_users_check",
    "network_connection_listening",
    "windows-incorrect_parent_process",
    "windows-incorrect_path_process",
    "windows-registry-monitoring",
    "windows_anomaly_process-execution",
    "windows_browsere-extensions",
    "windows_critical_service_status",
    "windows_generic_detection",
    "windows_new_dir_relevant_infection_path",
    "windows_new_file_relevant_infection_path",
    "windows_persistence-startup_items",
    "windows_powershell_events",
    "windows_process_no_disk_binary",
    "windows_scheduled_tasks",
    "windows_service-persistence",
    "windows_system_running_processes",
];

/// Delimiters other than `/` that osquery users configure; `/` is handled separately
/// because a pack name cannot contain it, so the split is unambiguous.
const AMBIGUOUS_DELIMITERS: &[u8] = b"_-:.";

/// Splits a logged query name into `(pack, query)`, using [`KNOWN_PACKS`].
///
/// ```
/// use tripline_core::query_name::parse;
/// assert_eq!(parse("pack/Global/crontab"), (Some("Global"), "crontab"));
/// assert_eq!(parse("pack_osx-attacks_Keylogger"), (Some("osx-attacks"), "Keylogger"));
/// assert_eq!(parse("pack_mypack_q"), (None, "pack_mypack_q"));
/// assert_eq!(parse("processes"), (None, "processes"));
/// ```
pub fn parse(name: &str) -> (Option<&str>, &str) {
    parse_with(name, &[])
}

/// Like [`parse`], also recognizing the caller's own pack names.
pub fn parse_with<'a>(name: &'a str, extra_packs: &[String]) -> (Option<&'a str>, &'a str) {
    let Some(rest) = name.strip_prefix("pack") else {
        return (None, name);
    };
    let Some(&delim) = rest.as_bytes().first() else {
        return (None, name);
    };
    let rest = &rest[1..];
    if delim == b'/' {
        return match rest.split_once('/') {
            Some((pack, query)) if !pack.is_empty() && !query.is_empty() => (Some(pack), query),
            _ => (None, name),
        };
    }
    if !AMBIGUOUS_DELIMITERS.contains(&delim) {
        return (None, name);
    }
    // Longest known pack first, so `windows-attacks` can't be shadowed by a shorter prefix.
    let mut best: Option<&str> = None;
    let candidates = KNOWN_PACKS
        .iter()
        .copied()
        .chain(extra_packs.iter().map(String::as_str));
    for pack in candidates {
        let fits = rest.len() > pack.len() + 1
            && rest.as_bytes()[pack.len()] == delim
            && rest.get(..pack.len()) == Some(pack);
        if fits && best.is_none_or(|b| pack.len() > b.len()) {
            best = Some(pack);
        }
    }
    match best {
        Some(pack) => (Some(&rest[..pack.len()]), &rest[pack.len() + 1..]),
        None => (None, name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_names_split_at_the_first_slash() {
        assert_eq!(parse("pack/Global/crontab"), (Some("Global"), "crontab"));
        assert_eq!(
            parse("pack/Global/All USB devices"),
            (Some("Global"), "All USB devices")
        );
        assert_eq!(parse("pack/team/a/b"), (Some("team"), "a/b"));
        assert_eq!(parse("pack/onlypack"), (None, "pack/onlypack"));
        assert_eq!(parse("pack//q"), (None, "pack//q"));
    }

    #[test]
    fn osquery_names_resolve_against_known_packs() {
        assert_eq!(
            parse("pack_incident-response_crontab"),
            (Some("incident-response"), "crontab")
        );
        assert_eq!(
            parse("pack_osx-attacks_OSX_MaMi"),
            (Some("osx-attacks"), "OSX_MaMi")
        );
        assert_eq!(
            parse("pack-osx-attacks-Keylogger"),
            (Some("osx-attacks"), "Keylogger")
        );
        assert_eq!(
            parse("pack_generic_linux_linux_sudoers"),
            (Some("generic_linux"), "linux_sudoers")
        );
        assert_eq!(
            parse("pack_tripline-linux_crontab"),
            (Some("tripline-linux"), "crontab")
        );
    }

    #[test]
    fn unknown_packs_and_plain_names_stay_whole() {
        assert_eq!(parse("pack_test_pack_time"), (None, "pack_test_pack_time"));
        assert_eq!(parse("processes"), (None, "processes"));
        assert_eq!(parse("package_versions"), (None, "package_versions"));
        assert_eq!(parse("pack"), (None, "pack"));
        assert_eq!(parse("pack_osx-attacks_"), (None, "pack_osx-attacks_"));
        assert_eq!(parse("pack_osx-attacks"), (None, "pack_osx-attacks"));
    }

    #[test]
    fn callers_can_add_their_own_packs() {
        let extra = vec!["test_pack".to_string()];
        assert_eq!(
            parse_with("pack_test_pack_time", &extra),
            (Some("test_pack"), "time")
        );
    }
}
