//! Fields computed from an event before rules see it (`derived.*`).
//!
//! Rules would otherwise each re-implement "which program ran", "is this version old" or
//! "is this row replayed history" with fragile regexes; computing them once per event
//! keeps rules short and keeps the cost independent of the number of rules.
//!
//! Table detection goes by the parsed `query` (so any pack delimiter works) and, where
//! query names are free-form, by the row's column shape.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::fields::{FieldName, FieldValue, Fields};

/// A column name this module reads on every event, its lookup key worked out at compile
/// time ([`FieldName`]): `derive` makes several lookups on every event, so none of them
/// should hash or compare the name's text.
macro_rules! name {
    ($name:literal) => {
        const { FieldName::new($name) }
    };
}

use crate::config::{Config, Version};
use crate::event::Event;
use crate::indicators::parse_ip;
use crate::ioc::IocHit;

mod platform;
mod shell;

pub(crate) use platform::declared_platform;
use platform::platform;
pub use platform::{platform_from_name, Platform};
use shell::basename;
pub use shell::program_of;

/// The `derived` object. `None` means "does not apply to this row" and is left out of the
/// eval view, so `derived.osquery_outdated: false` in a rule never matches a non-osquery_info
/// row by accident.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derived {
    /// The basename of the program a row runs: from its `command` or `cmdline` column (see
    /// [`program_of`]), else its `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The operating system family of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// On `osquery_info` rows: whether the osquery version is older than `min_osquery_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub osquery_outdated: Option<bool>,
    /// On macOS `os_version` rows: whether the version is older than `min_macos_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macos_unsupported: Option<bool>,
    /// On login rows (`logged_in_users`, `last`) with an IP peer: whether the peer is outside
    /// `office_networks`; absent while none are configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_outside_office: Option<bool>,
    /// Always present: rules are suppressed on stale rows unless they opt in.
    #[serde(default)]
    pub stale: bool,
    /// Always present: `counter == 0`, the first run of a differential query, when every
    /// existing row is reported as `added`.
    #[serde(default)]
    pub initial: bool,
    /// The indicator list entry the event's indicators hit ([`crate::ioc`]); absent without
    /// a hit or without lists. Not set by [`derive()`], which knows no lists: the
    /// [`Detector`](crate::Detector) given an [`IocSet`](crate::IocSet) sets it. Boxed: a
    /// hit is rare, and every event's `Derived` is moved around; inline, the hit's strings
    /// would make each of those copies larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ioc: Option<Box<IocHit>>,
}

/// Field names of [`Derived`], for validating `derived.*` references in rule templates.
pub const DERIVED_FIELDS: &[&str] = &[
    "program",
    "platform",
    "osquery_outdated",
    "macos_unsupported",
    "remote_outside_office",
    "stale",
    "initial",
    "ioc",
];

/// The fields of `derived.ioc`, for `derived.ioc.<field>` paths.
pub const IOC_FIELDS: &[&str] = &["value", "type", "indicator", "list", "name", "hits"];

impl Derived {
    /// The object as it appears in the eval view and in alert samples.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(p) = &self.program {
            m.insert("program".into(), Value::String(p.clone()));
        }
        if let Some(p) = self.platform {
            m.insert("platform".into(), Value::String(p.as_str().into()));
        }
        let mut flag = |k: &str, v: Option<bool>| {
            if let Some(v) = v {
                m.insert(k.into(), Value::Bool(v));
            }
        };
        flag("osquery_outdated", self.osquery_outdated);
        flag("macos_unsupported", self.macos_unsupported);
        flag("remote_outside_office", self.remote_outside_office);
        flag("stale", Some(self.stale));
        flag("initial", Some(self.initial));
        if let Some(hit) = &self.ioc {
            m.insert("ioc".into(), hit.to_json());
        }
        Value::Object(m)
    }
}

/// Computes every derived field of one event.
pub fn derive(event: &Event, config: &Config) -> Derived {
    let query = event
        .query
        .as_deref()
        .or(event.name.as_deref())
        .map(normalize_query)
        .unwrap_or_default();
    let cols = &event.columns;
    let platform = platform(event);
    Derived {
        program: program(cols),
        platform,
        osquery_outdated: osquery_outdated(&query, cols, config),
        macos_unsupported: macos_unsupported(&query, cols, platform, config),
        remote_outside_office: remote_outside_office(&query, &event.tables, cols, config),
        stale: stale(&query, event, config),
        initial: event.counter == Some(0),
        ioc: None,
    }
}

/// Lower-case with every separator folded to `_`, so `Shell History`, `shell-history` and
/// `shell_history` compare equal. Borrowed when the name already has that form (as osquery
/// query names usually do), so most events allocate nothing here.
fn normalize_query(q: &str) -> Cow<'_, str> {
    let q = q.trim();
    if q.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Cow::Borrowed(q);
    }
    Cow::Owned(
        q.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect(),
    )
}

/// Whether a normalized query name is about `table`: equal to it, or containing it as a
/// whole `_`-separated word run (`last` matches `last_logins` but not `lastpass`).
///
/// Only word starts are tried, with byte comparisons: this runs several times per event,
/// and a substring search would set up a searcher each time. (For the tables asked about,
/// whose names never overlap themselves, this is exactly "some occurrence is delimited".)
fn query_is(query: &str, table: &str) -> bool {
    let (q, t) = (query.as_bytes(), table.as_bytes());
    if q.len() < t.len() {
        return false;
    }
    (0..=q.len() - t.len()).any(|i| {
        let end = i + t.len();
        (i == 0 || q[i - 1] == b'_') && (end == q.len() || q[end] == b'_') && &q[i..end] == t
    })
}

fn col_str<'a>(cols: &'a Fields, key: FieldName<'_>) -> Option<std::borrow::Cow<'a, str>> {
    value_str(cols.get_name(key)?)
}

/// A column value as text: strings and numbers as they arrived, booleans spelled out.
fn value_str(v: FieldValue<'_>) -> Option<Cow<'_, str>> {
    match v {
        FieldValue::Str(s) | FieldValue::Number(_, s) => Some(Cow::Borrowed(s)),
        FieldValue::Bool(b) => Some(Cow::Owned(b.to_string())),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// derived.program

fn program(cols: &Fields) -> Option<String> {
    if let Some(p) = col_str(cols, name!("command")).and_then(|cmd| program_of(&cmd)) {
        return Some(p);
    }
    // Looked up once for both uses below: most rows have neither column, and this runs for
    // every event.
    let cmdline = cols.get_name(name!("cmdline"))?;
    if let Some(p) = value_str(cmdline).and_then(|cmd| program_of(&cmd)) {
        return Some(p);
    }
    // Kernel threads and zombies log an empty cmdline; the executable path still names them.
    let path = col_str(cols, name!("path"))?;
    let b = basename(path.trim());
    (!b.is_empty()).then(|| b.to_string())
}

// ---------------------------------------------------------------------------------------
// derived.osquery_outdated / derived.macos_unsupported

fn is_osquery_info(query: &str, cols: &Fields) -> bool {
    if query_is(query, "osquery_info") {
        return true;
    }
    cols.contains_name(name!("version"))
        && [
            name!("build_platform"),
            name!("config_hash"),
            name!("instance_id"),
            name!("extensions"),
        ]
        .into_iter()
        .any(|k| cols.contains_name(k))
}

fn osquery_outdated(query: &str, cols: &Fields, config: &Config) -> Option<bool> {
    if !is_osquery_info(query, cols) {
        return None;
    }
    let version = Version::parse(&col_str(cols, name!("version"))?)?;
    Some(version < config.min_osquery_version)
}

fn macos_unsupported(
    query: &str,
    cols: &Fields,
    platform: Option<Platform>,
    config: &Config,
) -> Option<bool> {
    let shaped = cols.contains_name(name!("major")) && cols.contains_name(name!("minor"));
    if !(query_is(query, "os_version") || shaped) {
        return None;
    }
    let is_mac = col_str(cols, name!("platform"))
        .map(|p| platform_from_name(&p) == Some(Platform::Darwin))
        .or_else(|| {
            col_str(cols, name!("name")).map(|n| {
                let n = n.to_ascii_lowercase();
                n.contains("macos") || n.contains("mac os")
            })
        })
        .unwrap_or(platform == Some(Platform::Darwin));
    if !is_mac {
        return None;
    }
    let version = col_str(cols, name!("version"))
        .and_then(|v| Version::parse(&v))
        .or_else(|| {
            let major = col_str(cols, name!("major"))?;
            let minor = col_str(cols, name!("minor")).unwrap_or("0".into());
            let patch = col_str(cols, name!("patch")).unwrap_or("0".into());
            Version::parse(&format!("{major}.{minor}.{patch}"))
        })?;
    Some(version < config.min_macos_version)
}

// ---------------------------------------------------------------------------------------
// derived.remote_outside_office

/// Whether the row's tables (whatever its query is called) include one of `names`.
fn from_table(tables: &[String], names: &[&str]) -> bool {
    tables.iter().any(|t| names.contains(&t.as_str()))
}

fn is_login_table(query: &str, tables: &[String], cols: &Fields) -> bool {
    from_table(tables, &["logged_in_users", "last"])
        || query_is(query, "logged_in_users")
        || query_is(query, "last")
        || (cols.contains_name(name!("tty")) && cols.contains_name(name!("host")))
}

fn remote_outside_office(
    query: &str,
    tables: &[String],
    cols: &Fields,
    config: &Config,
) -> Option<bool> {
    if config.office_networks.is_empty() || !is_login_table(query, tables, cols) {
        return None;
    }
    // A login row's `host` is the peer: an address (perhaps with a port, or mapped from
    // IPv4), or a host name, which yields `None` (names are not resolved).
    let (ip, _) = parse_ip(&col_str(cols, name!("host"))?)?;
    if ip.is_loopback() || ip.is_unspecified() {
        return Some(false);
    }
    Some(!config.in_office(ip))
}

// ---------------------------------------------------------------------------------------
// derived.stale

/// Columns holding a history row's own time, in order of preference.
const TIME_COLUMNS: &[FieldName] = &[
    name!("time"),
    name!("timestamp"),
    name!("unix_time"),
    name!("event_time"),
    name!("login_time"),
];

fn is_history_table(query: &str, tables: &[String], cols: &Fields) -> bool {
    from_table(tables, &["shell_history", "last"])
        || tables.iter().any(|t| t.ends_with("_events"))
        || query_is(query, "shell_history")
        || query_is(query, "last")
        || query.ends_with("_events")
        || query.contains("_events_")
        || query == "events"
        || (cols.contains_name(name!("command")) && cols.contains_name(name!("history_file")))
}

fn stale(query: &str, event: &Event, config: &Config) -> bool {
    if !is_history_table(query, &event.tables, &event.columns) {
        return false;
    }
    let Some(now) = event
        .unix_time
        .or_else(|| event.time.as_deref().and_then(crate::rfc3339::parse))
    else {
        return false;
    };
    let Some(row_time) = TIME_COLUMNS
        .iter()
        .find_map(|&k| event.columns.get_name(k).and_then(column_time))
    else {
        return false;
    };
    let limit = config.stale_after_minutes.saturating_mul(60);
    let age = now.saturating_sub(row_time);
    age > 0 && age as u64 > limit
}

/// A row timestamp in seconds: unix seconds or milliseconds (number or numeric string), or
/// RFC 3339. `0` means "unknown" in osquery (zsh history without timestamps), not 1970.
fn column_time(v: FieldValue<'_>) -> Option<i64> {
    let n = match v {
        FieldValue::Number(n, _) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        FieldValue::Str(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().map(|f| f as i64))
                .or_else(|| crate::rfc3339::parse(s))
        }
        _ => None,
    }?;
    if n <= 0 {
        return None;
    }
    // Millisecond timestamps are 13 digits until the year 2286.
    Some(if n > 100_000_000_000 { n / 1000 } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Indicators, Kind, SourceRef};
    use serde_json::json;

    fn event(query: &str, columns: Value) -> Event {
        Event {
            kind: Kind::Result,
            name: Some(format!("pack/test/{query}")),
            pack: Some("test".into()),
            query: Some(query.into()),
            tables: Default::default(),
            tables_from: None,
            tables_ambiguous: false,
            host: Some("h1".into()),
            action: None,
            columns: columns.as_object().map(Fields::from).unwrap_or_default(),
            decorations: Fields::new(),
            time: Some("2024-05-01T12:00:00Z".into()),
            unix_time: Some(1_714_564_800),
            epoch: Some(0),
            counter: Some(3),
            numerics: false,
            severity: None,
            filename: None,
            line: None,
            message: None,
            version: None,
            source: SourceRef::default(),
            id: "x".into(),
            indicators: Indicators::default(),
            attack: Default::default(),
        }
    }

    #[test]
    fn program_from_command_or_cmdline() {
        let c = Config::default();
        let d = derive(
            &event(
                "crontab",
                json!({"command": "sudo /usr/local/bin/aws s3 ls"}),
            ),
            &c,
        );
        assert_eq!(d.program.as_deref(), Some("aws"));
        let d = derive(
            &event(
                "processes",
                json!({"cmdline": "/bin/bash -c id", "path": "/bin/bash"}),
            ),
            &c,
        );
        assert_eq!(d.program.as_deref(), Some("bash"));
        let d = derive(
            &event(
                "processes",
                json!({"cmdline": "", "path": "/usr/sbin/kthreadd"}),
            ),
            &c,
        );
        assert_eq!(d.program.as_deref(), Some("kthreadd"));
        let d = derive(&event("users", json!({"username": "x"})), &c);
        assert_eq!(d.program, None);
    }

    #[test]
    fn platform_detection() {
        let c = Config::default();
        let mut e = event("x", json!({}));
        e.decorations.insert("platform", &json!("darwin"));
        assert_eq!(derive(&e, &c).platform, Some(Platform::Darwin));
        let e = event(
            "os_version",
            json!({"platform": "ubuntu", "name": "Ubuntu"}),
        );
        assert_eq!(derive(&e, &c).platform, Some(Platform::Linux));
        let e = event("osquery_info", json!({"build_platform": "windows"}));
        assert_eq!(derive(&e, &c).platform, Some(Platform::Windows));
        let e = event(
            "shell_history",
            json!({"history_file": "/Users/alice/.zsh_history"}),
        );
        assert_eq!(derive(&e, &c).platform, Some(Platform::Darwin));
        let e = event(
            "programs",
            json!({"install_location": "C:\\Program Files\\X"}),
        );
        assert_eq!(derive(&e, &c).platform, Some(Platform::Windows));
        let e = event("users", json!({"directory": "/home/bob"}));
        assert_eq!(derive(&e, &c).platform, Some(Platform::Linux));
        let e = event("users", json!({"directory": "/var/empty"}));
        assert_eq!(derive(&e, &c).platform, None);
        let mut e = event("Keylogger", json!({}));
        e.pack = Some("osx-attacks".into());
        assert_eq!(derive(&e, &c).platform, Some(Platform::Darwin));
        // Bare names (the fast path) and free-form ones (the substring searches).
        for (name, want) in [
            ("darwin", Some(Platform::Darwin)),
            ("osx", Some(Platform::Darwin)),
            ("Mac OS X", Some(Platform::Darwin)),
            ("windows", Some(Platform::Windows)),
            ("win64", Some(Platform::Windows)),
            ("Microsoft Windows 11 Pro", Some(Platform::Windows)),
            ("ubuntu", Some(Platform::Linux)),
            ("RHEL", Some(Platform::Linux)),
            ("ol", Some(Platform::Linux)),
            ("Ubuntu 22.04", Some(Platform::Linux)),
            ("archlinux", Some(Platform::Linux)),
            ("freebsd", None),
            ("", None),
        ] {
            assert_eq!(platform_from_name(name), want, "{name}");
        }
    }

    #[test]
    fn osquery_outdated_by_version() {
        let c = Config::default(); // 5.12.1
        let d =
            |v: Value| derive(&event("osquery_info", json!({"version": v})), &c).osquery_outdated;
        assert_eq!(d(json!("5.10.2-26-gb9c4d8a")), Some(true));
        assert_eq!(d(json!("5.12.1")), Some(false));
        assert_eq!(d(json!("5.13.0")), Some(false));
        assert_eq!(d(json!("4.9.0")), Some(true));
        assert_eq!(d(json!("garbage")), None);
        // Shape fallback: a free-form query name over the osquery_info table.
        let e = event(
            "agent health",
            json!({"version": "5.9.1", "config_hash": "abc"}),
        );
        assert_eq!(derive(&e, &c).osquery_outdated, Some(true));
        // Not an osquery_info row: absent, even with a `version` column.
        let e = event("programs", json!({"version": "1.0"}));
        assert_eq!(derive(&e, &c).osquery_outdated, None);
        // Works for any pack delimiter because it keys on the parsed query.
        let mut e = event("osquery_info", json!({"version": "5.0.0"}));
        e.name = Some("pack_it-compliance_osquery_info".into());
        assert_eq!(derive(&e, &c).osquery_outdated, Some(true));
    }

    #[test]
    fn macos_unsupported_by_version() {
        let c = Config::default(); // 14.0
        let mac = |v: &str| {
            derive(
                &event("os_version", json!({"platform": "darwin", "name": "macOS", "version": v, "major": "x", "minor": "y"})),
                &c,
            )
            .macos_unsupported
        };
        assert_eq!(mac("13.6.1"), Some(true));
        assert_eq!(mac("14.0"), Some(false));
        assert_eq!(mac("15.1"), Some(false));
        let e = event(
            "os_version",
            json!({"platform": "ubuntu", "version": "22.04", "major": "22", "minor": "4"}),
        );
        assert_eq!(derive(&e, &c).macos_unsupported, None);
        let e = event(
            "os_version",
            json!({"platform": "darwin", "major": "12", "minor": "7", "patch": "1"}),
        );
        assert_eq!(derive(&e, &c).macos_unsupported, Some(true));
    }

    #[test]
    fn remote_outside_office_needs_networks() {
        let e = event(
            "logged_in_users",
            json!({"user": "a", "tty": "ttys001", "host": "198.51.100.9"}),
        );
        assert_eq!(derive(&e, &Config::default()).remote_outside_office, None);
        let c =
            Config::from_toml_str(r#"office_networks = ["10.0.0.0/8", "2001:db8::/32"]"#).unwrap();
        assert_eq!(derive(&e, &c).remote_outside_office, Some(true));
        let inside = event(
            "last",
            json!({"username": "a", "tty": "pts/0", "host": "10.2.3.4"}),
        );
        assert_eq!(derive(&inside, &c).remote_outside_office, Some(false));
        let v6 = event(
            "logged_in_users",
            json!({"tty": "pts/1", "host": "[2001:db8::5]"}),
        );
        assert_eq!(derive(&v6, &c).remote_outside_office, Some(false));
        let mapped = event(
            "logged_in_users",
            json!({"tty": "pts/1", "host": "::ffff:10.0.0.1"}),
        );
        assert_eq!(derive(&mapped, &c).remote_outside_office, Some(false));
        let local = event("logged_in_users", json!({"tty": "ttys000", "host": ""}));
        assert_eq!(derive(&local, &c).remote_outside_office, None);
        let lo = event(
            "logged_in_users",
            json!({"tty": "pts/2", "host": "127.0.0.1"}),
        );
        assert_eq!(derive(&lo, &c).remote_outside_office, Some(false));
        let name = event(
            "logged_in_users",
            json!({"tty": "pts/2", "host": "vpn.example.com"}),
        );
        assert_eq!(derive(&name, &c).remote_outside_office, None);
        let other = event("listening_ports", json!({"address": "198.51.100.9"}));
        assert_eq!(derive(&other, &c).remote_outside_office, None);
    }

    #[test]
    fn history_and_login_rows_are_known_by_their_tables_whatever_the_name() {
        let c = Config {
            office_networks: vec!["10.0.0.0/8".parse().unwrap()],
            ..Config::default()
        };
        let now = 1_714_564_800;
        let mut old = event(
            "hourly_check_42",
            json!({"command": "id", "time": now - 90_000}),
        );
        assert!(
            !derive(&old, &c).stale,
            "no table, no history-like name or columns"
        );
        old.tables = vec!["shell_history".to_string()].into();
        assert!(derive(&old, &c).stale);
        let mut login = event(
            "who_is_here",
            json!({"user": "jdoe", "host": "203.0.113.9"}),
        );
        assert_eq!(derive(&login, &c).remote_outside_office, None);
        login.tables = vec!["logged_in_users".to_string()].into();
        assert_eq!(derive(&login, &c).remote_outside_office, Some(true));
    }

    #[test]
    fn stale_history_rows() {
        let c = Config::default(); // 1440 minutes
        let now = 1_714_564_800i64;
        let sh = |t: Value| {
            derive(
                &event("shell_history", json!({"command": "id", "time": t})),
                &c,
            )
            .stale
        };
        assert!(sh(json!(now - 2 * 86_400)));
        assert!(sh(json!((now - 2 * 86_400).to_string())));
        assert!(!sh(json!(now - 600)));
        assert!(!sh(json!(0)), "0 is osquery's unknown time");
        assert!(sh(json!((now - 3 * 86_400) * 1000)), "milliseconds");
        let pe = derive(&event("process_events", json!({"time": now - 90_000})), &c);
        assert!(pe.stale);
        let es = derive(
            &event("es_process_events", json!({"time": now - 90_000})),
            &c,
        );
        assert!(es.stale);
        // Not a history table: never stale.
        let p = derive(
            &event(
                "processes",
                json!({"start_time": now - 90_000, "time": now - 90_000}),
            ),
            &c,
        );
        assert!(!p.stale);
        let c60 = Config::from_toml_str("stale_after_minutes = 60").unwrap();
        let l = derive(
            &event(
                "last",
                json!({"time": now - 7200, "tty": "pts/0", "host": "x"}),
            ),
            &c60,
        );
        assert!(l.stale);
        let mut missing_time = event("shell_history", json!({"command": "id", "time": 1}));
        missing_time.unix_time = None;
        missing_time.time = None;
        assert!(!derive(&missing_time, &c).stale);
    }

    #[test]
    fn initial_from_counter() {
        let c = Config::default();
        let mut e = event("crontab", json!({}));
        assert!(!derive(&e, &c).initial);
        e.counter = Some(0);
        assert!(derive(&e, &c).initial);
        e.counter = None;
        assert!(!derive(&e, &c).initial);
    }

    #[test]
    fn query_matching() {
        assert!(query_is("last", "last"));
        assert!(query_is("last_logins", "last"));
        assert!(query_is("ssh_last", "last"));
        assert!(!query_is("lastpass", "last"));
        assert!(query_is(&normalize_query("Shell History"), "shell_history"));
    }

    #[test]
    fn to_json_omits_absent() {
        let d = Derived {
            program: Some("aws".into()),
            ..Default::default()
        };
        assert_eq!(
            d.to_json(),
            json!({"program": "aws", "stale": false, "initial": false})
        );
    }
}
