//! Site content: filters (loading, applying, counting, testing) and site rules layered on
//! a base pack.

use std::sync::Arc;

use serde_json::json;
use time::{Date, Month};

use super::detector::{Detector, Outcome};
use super::filters::FilterSet;
use super::tests::{crontab_rule, event, rule_yaml, set, without_time, T0};
use super::{builtin, testing, LoadError, Problem, RuleSet, SiteRules};
use crate::config::Config;
use crate::derive::derive;

fn day(y: i32, m: Month, d: u8) -> Date {
    Date::from_calendar_date(y, m, d).unwrap()
}

const TODAY: fn() -> Date = || day(2026, Month::December, 3);

/// A filter document; `selections` and `extra` (top-level keys) are YAML fragments.
fn filter_yaml(name: &str, rules: &str, selections: &str, condition: &str, extra: &str) -> String {
    format!(
        "title: Filter {name}\nname: {name}\nlogsource:\n  product: osquery\n{extra}filter:\n  \
         rules: {rules}\n{selections}\n  condition: {condition}\n"
    )
}

fn alice() -> &'static str {
    "  alice:\n    columns.user: alice"
}

fn filters(rules: &RuleSet, docs: &[(&str, String)]) -> Result<FilterSet, LoadError> {
    FilterSet::from_sources(
        rules,
        docs.iter()
            .map(|(n, t)| (format!("filters/{n}.yml"), t.clone())),
        TODAY(),
    )
}

fn problems(r: Result<FilterSet, LoadError>) -> Vec<Problem> {
    match r {
        Ok(_) => panic!("loaded"),
        Err(e) => e.problems(),
    }
}

/// The one problem of a load that must fail, as text.
fn one_problem(r: Result<FilterSet, LoadError>) -> String {
    let p = problems(r);
    assert_eq!(p.len(), 1, "{p:#?}");
    p[0].to_string()
}

fn two_cron_rules() -> Arc<RuleSet> {
    Arc::new(set(&[
        crontab_rule("cron_a", 1, "1h"),
        crontab_rule("cron_b", 2, "1h"),
    ]))
}

fn cron(user: &str) -> crate::event::Event {
    event("crontab", json!({"command": "x", "user": user}), T0)
}

#[test]
fn a_filter_suppresses_matches_of_its_rules_and_counts_them() {
    let rules = two_cron_rules();
    let f = filters(
        &rules,
        &[(
            "alice",
            filter_yaml("alice", "[cron_a]", alice(), "not alice", ""),
        )],
    )
    .unwrap();
    assert!(f.warnings().is_empty(), "{:?}", f.warnings());
    let mut det =
        Detector::new(Arc::clone(&rules), None, Config::default()).with_filters(Arc::new(f));
    let out = det.observe(&mut cron("alice"));
    assert_eq!(out[0].rule, "cron_a");
    assert_eq!(out[0].outcome, Outcome::SuppressedByFilter("alice".into()));
    // Only the rules the filter names.
    assert_eq!(out[1].rule, "cron_b");
    assert_eq!(out[1].outcome, Outcome::Counted);
    // Sigma matching is case-insensitive, and the filter reads the same event as the rule.
    let out = det.observe(&mut cron("ALICE"));
    assert_eq!(out[0].outcome, Outcome::SuppressedByFilter("alice".into()));
    let out = det.observe(&mut cron("bob"));
    assert!(out.iter().all(|o| o.outcome == Outcome::Counted));
    let report = det.finish();
    let s = &report.stats;
    assert_eq!(s.suppressed_by_filter["alice"], 2);
    assert_eq!(s.matches, 4);
    assert_eq!(s.rule_matches(), 6);
    // cron_a alerts for bob only; cron_b for both.
    assert_eq!(report.alerts.len(), 2);
    let a = report
        .alerts
        .iter()
        .find(|a| a.rule.name == "cron_a")
        .unwrap();
    assert_eq!(a.count, 1);
}

#[test]
fn rules_by_id_and_any_by_logsource() {
    let rules = two_cron_rules();
    // By Sigma id, in any case.
    let f = filters(
        &rules,
        &[(
            "by_id",
            filter_yaml(
                "by_id",
                "['00000000-0000-4000-8000-000000000002']",
                alice(),
                "not alice",
                "",
            ),
        )],
    )
    .unwrap();
    assert_eq!(f.filters()[0].rules(), ["cron_b"]);
    // `any`: every rule the logsource covers.
    let f = filters(
        &rules,
        &[("all", filter_yaml("all", "any", alice(), "not alice", ""))],
    )
    .unwrap();
    assert_eq!(f.filters()[0].rules(), ["cron_a", "cron_b"]);
    // pySigma's `all` is `any`.
    let all = filters(
        &rules,
        &[("all", filter_yaml("all", "all", alice(), "not alice", ""))],
    )
    .unwrap();
    assert_eq!(all.filters()[0].rules(), ["cron_a", "cron_b"]);
    let mut det =
        Detector::new(Arc::clone(&rules), None, Config::default()).with_filters(Arc::new(f));
    assert!(det
        .observe(&mut cron("alice"))
        .iter()
        .all(|o| o.outcome == Outcome::SuppressedByFilter("all".into())));
    assert_eq!(det.finish().stats.suppressed_by_filter["all"], 2);
}

#[test]
fn the_first_suppressing_filter_is_credited() {
    let rules = two_cron_rules();
    let f = filters(
        &rules,
        &[
            (
                "a_first",
                filter_yaml("a_first", "[cron_a]", alice(), "not alice", ""),
            ),
            (
                "b_second",
                filter_yaml("b_second", "[cron_a, cron_b]", alice(), "not alice", ""),
            ),
        ],
    )
    .unwrap();
    let mut det = Detector::new(rules, None, Config::default()).with_filters(Arc::new(f));
    det.observe(&mut cron("alice"));
    let s = det.finish().stats;
    assert_eq!(s.suppressed_by_filter["a_first"], 1);
    assert_eq!(s.suppressed_by_filter["b_second"], 1);
    assert_eq!(s.matches, 0);
}

#[test]
fn filters_read_tables_derived_fields_and_lists_like_rules() {
    let rules = Arc::new(set(&[rule_yaml(
        "keytap",
        1,
        "  sel:\n    tables: event_taps\n  condition: sel",
        "",
    )]));
    let f = filters(
        &rules,
        &[(
            "bt",
            filter_yaml(
                "bt",
                "[keytap]",
                "  known:\n    tables: processes\n    columns.path|endswith: /BetterTouchTool\n    \
                 derived.platform: darwin",
                "not known",
                "",
            ),
        )],
    )
    .unwrap();
    let mut det = Detector::new(rules, None, Config::default()).with_filters(Arc::new(f));
    let mut tap = |path: &str| {
        let mut e = event(
            "keyboard_event_taps",
            json!({"path": path, "pid": "1", "platform": "darwin"}),
            T0,
        );
        e.tables = vec!["event_taps".to_string(), "processes".to_string()].into();
        det.observe(&mut e).remove(0).outcome
    };
    assert_eq!(
        tap("/Applications/BetterTouchTool.app/Contents/MacOS/BetterTouchTool"),
        Outcome::SuppressedByFilter("bt".into())
    );
    assert_eq!(tap("/tmp/x"), Outcome::Counted);
}

/// Every match is counted exactly once: stale, initial, filtered, errors and alert-group
/// matches add up to the outcomes the detector reported, whatever mix of them an event has.
#[test]
fn every_match_is_counted_exactly_once() {
    let rules = Arc::new(set(&[
        rule_yaml(
            "plain",
            1,
            "  sel:\n    query: shell_history\n  condition: sel",
            "",
        ),
        rule_yaml(
            "opted",
            2,
            "  sel:\n    query: shell_history\n  condition: sel",
            "  stale: true\n  initial: false",
        ),
        rule_yaml(
            "unfiltered",
            3,
            "  sel:\n    query: shell_history\n  condition: sel",
            "",
        ),
    ]));
    let f = filters(
        &rules,
        &[
            (
                "alice",
                filter_yaml("alice", "[plain, opted]", alice(), "not alice", ""),
            ),
            ("bob", {
                let sel = "  bob:\n    columns.user: bob";
                filter_yaml("bob", "[opted]", sel, "not bob", "")
            }),
        ],
    )
    .unwrap();
    let mut det = Detector::new(Arc::clone(&rules), None, Config::default())
        .with_filters(Arc::new(f))
        .with_object_time(T0);
    let mut outcomes = Vec::new();
    for user in ["alice", "bob", "carol"] {
        for stale in [false, true] {
            for initial in [false, true] {
                for timeless in [false, true] {
                    // A match without a time, with an object time no window can hold, is a
                    // rule error.
                    det.set_object_time(if timeless { -1 } else { T0 });
                    let mut e = event("shell_history", json!({"command": "id", "user": user}), T0);
                    if timeless {
                        e = without_time(e);
                    }
                    e.counter = Some(if initial { 0 } else { 3 });
                    let mut derived = derive(&e, det.config());
                    derived.stale = stale;
                    outcomes.extend(det.evaluate(&e, derived));
                }
            }
        }
    }
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(&o.outcome)).count() as u64;
    let s = det.finish().stats;
    assert_eq!(outcomes.len(), 3 * 8 * 3);
    assert_eq!(s.rule_matches(), outcomes.len() as u64);
    assert_eq!(s.matches, count(|o| *o == Outcome::Counted));
    assert_eq!(
        s.suppressed_stale,
        count(|o| *o == Outcome::SuppressedStale)
    );
    assert_eq!(
        s.suppressed_initial,
        count(|o| *o == Outcome::SuppressedInitial)
    );
    assert_eq!(s.rule_errors, count(|o| matches!(o, Outcome::Error(_))));
    for name in ["alice", "bob"] {
        let n = outcomes
            .iter()
            .filter(|o| o.outcome == Outcome::SuppressedByFilter(name.into()))
            .count() as u64;
        assert_eq!(s.suppressed_by_filter[name], n, "{name}");
    }
    // Every kind of outcome happened, so the sum covers them all.
    assert!(s.matches > 0 && s.suppressed_stale > 0 && s.suppressed_initial > 0);
    assert!(s.rule_errors > 0);
    // Stale and initial come first: of alice's 8 rows, `plain` (stale: false) leaves the 4
    // non-stale ones to the filter, `opted` (initial: false) the 4 non-first-run ones.
    assert_eq!(s.suppressed_by_filter["alice"], 4 + 4);
}

#[test]
fn no_filters_cost_nothing_and_change_nothing() {
    let rules = two_cron_rules();
    let run = |det: Detector| {
        let mut det = det;
        for u in ["alice", "bob"] {
            det.observe(&mut cron(u));
        }
        det.finish()
    };
    let plain = run(Detector::new(Arc::clone(&rules), None, Config::default()));
    let empty = run(Detector::new(Arc::clone(&rules), None, Config::default())
        .with_filters(Arc::new(FilterSet::empty())));
    assert_eq!(plain, empty);
    assert!(plain.stats.suppressed_by_filter.is_empty());
    // Nothing about filters in the JSON of a run without them.
    let json = serde_json::to_string(&plain.stats).unwrap();
    assert!(!json.contains("suppressed_by_filter"), "{json}");
    let back: super::DetectStats = serde_json::from_str(&json).unwrap();
    assert_eq!(back, plain.stats);
}

#[test]
fn expired_filters_stop_applying_with_a_warning() {
    let rules = two_cron_rules();
    let doc = |name: &str, expires: &str| {
        filter_yaml(
            name,
            "[cron_a]",
            alice(),
            "not alice",
            &format!("expires: {expires}\n"),
        )
    };
    let f = filters(
        &rules,
        &[
            ("old", doc("old", "2026-12-02")),
            ("today", doc("today", "2026-12-03")),
            ("later", doc("later", "2027-01-31")),
        ],
    )
    .unwrap();
    let active: Vec<_> = f.filters().iter().map(|f| f.is_active()).collect();
    assert_eq!(active, [false, true, true]);
    let w: Vec<String> = f.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w[0].starts_with("filters/old.yml:5 (old): expires: expired on 2026-12-02"));
    assert!(w[1].contains("today") && w[1].contains("applies for 1 more day"));
    assert_eq!(f.valid_until(), Some(day(2026, Month::December, 3)));
    let mut det = Detector::new(rules, None, Config::default()).with_filters(Arc::new(f));
    det.observe(&mut cron("alice"));
    // `today` suppressed it; `old` would have come first.
    assert_eq!(
        det.finish()
            .stats
            .suppressed_by_filter
            .keys()
            .collect::<Vec<_>>(),
        ["today"]
    );
}

#[test]
fn unknown_rules_are_errors_naming_file_and_line() {
    let rules = two_cron_rules();
    let doc = "title: t\nname: typo\nlogsource:\n  product: osquery\nfilter:\n  rules:\n    \
               - cron_a\n    - cron_c\n  alice:\n    columns.user: alice\n  condition: not alice\n";
    let p = one_problem(filters(&rules, &[("typo", doc.to_string())]));
    assert!(
        p.starts_with("filters/typo.yml:8 (typo): filter.rules: no rule named \"cron_c\""),
        "{p}"
    );
    // A title is a hint, not a reference.
    let p = one_problem(filters(
        &rules,
        &[(
            "title",
            filter_yaml("title", "['Test rule cron_a']", alice(), "not alice", ""),
        )],
    ));
    assert!(p.contains("that is the title of cron_a"), "{p}");
}

#[test]
fn a_disabled_rule_is_a_warning() {
    let site = SiteRules::new().disable(["osquery_ssh_listener"]);
    let rules = RuleSet::builtin_with(&site).unwrap();
    let f = filters(
        &rules,
        &[(
            "ssh",
            filter_yaml(
                "ssh",
                "[osquery_ssh_listener, osquery_suspicious_cron]",
                alice(),
                "not alice",
                "",
            ),
        )],
    )
    .unwrap();
    assert_eq!(f.filters()[0].rules(), ["osquery_suspicious_cron"]);
    let w = f.warnings()[0].to_string();
    assert!(w.contains("osquery_ssh_listener is disabled"), "{w}");
}

#[test]
fn the_logsource_must_cover_the_rules() {
    let rules = RuleSet::builtin().unwrap();
    let doc = filter_yaml(
        "wrong_service",
        "[osquery_keyboard_event_tap]",
        alice(),
        "not alice",
        "",
    )
    .replace(
        "  product: osquery\n",
        "  product: osquery\n  service: crontab\n",
    );
    let p = one_problem(filters(&rules, &[("wrong_service", doc)]));
    assert!(
        p.contains("{product: osquery, service: crontab} does not cover osquery_keyboard_event_tap's (product: osquery, service: event_taps)")
            || p.contains("does not cover osquery_keyboard_event_tap"),
        "{p}"
    );
    let doc = filter_yaml("nothing", "any", alice(), "not alice", "")
        .replace("product: osquery", "product: windows");
    let p = one_problem(filters(&rules, &[("nothing", doc)]));
    assert!(p.contains("covers no rule"), "{p}");
}

#[test]
fn bad_filters_are_clear_errors() {
    let rules = two_cron_rules();
    let base = filter_yaml("f", "[cron_a]", alice(), "not alice", "");
    // (what is changed, what the one problem must say, its line)
    let cases: Vec<(String, &str, Option<usize>)> = vec![
        (
            base.replace("title: Filter f\n", "title: Filter f\nexpire: 2027-01-01\n"),
            "unknown key `expire`",
            Some(2),
        ),
        (
            base.replace("title: Filter f\n", "title: Filter f\nexpires: 2027-1-31\n"),
            "expires: \"2027-1-31\" is not a date like 2027-01-31",
            Some(2),
        ),
        (
            base.replace(
                "title: Filter f\n",
                "title: Filter f\nexpires: 2027-02-30\n",
            ),
            "is not a date",
            Some(2),
        ),
        (
            base.replace("title: Filter f\n", "title: Filter f\nexpires: [2027]\n"),
            "is not a date",
            Some(2),
        ),
        (
            base.replace("logsource:\n  product: osquery\n", ""),
            "logsource: missing",
            None,
        ),
        (
            base.replace("  rules: [cron_a]\n", ""),
            "filter.rules: missing",
            None,
        ),
        (
            base.replace("[cron_a]", "[]"),
            "filter.rules: empty",
            Some(6),
        ),
        (
            base.replace("[cron_a]", "{a: 1}"),
            "is not a rule name, id or list",
            Some(6),
        ),
        (
            base.replace("  condition: not alice\n", ""),
            "filter.condition: missing",
            None,
        ),
        (
            base.replace("condition: not alice", "condition: [not alice, alice]"),
            "must be one condition",
            Some(9),
        ),
        (
            base.replace("not alice", "not alicia"),
            "does not compile: unknown detection identifier: alicia",
            Some(9),
        ),
        (
            base.replace("not alice", "not (alice"),
            "not a valid Sigma filter",
            None,
        ),
        (
            base.replace("columns.user:", "column.user:"),
            "unknown field `column`",
            Some(8),
        ),
        (
            base.replace("columns.user:", "columns.user|contans:"),
            "Unknown modifier 'contans'",
            Some(8),
        ),
        (base.replace(alice(), ""), "has no selection", Some(5)),
        (base.replace("name: f\n", ""), "name: missing", None),
        (
            base.replace("name: f\n", "name: Bad-Name\n"),
            "is not snake_case",
            Some(2),
        ),
        (
            base.replace("  alice:\n", " alice:\n"),
            "not valid YAML",
            Some(7),
        ),
        (
            format!("{base}---\n{base}"),
            "write one filter per file",
            None,
        ),
        ("- a\n- b\n".into(), "not a mapping", None),
        (String::new(), "not a mapping", None),
        (
            rule_yaml("r", 9, "  sel:\n    query: x\n  condition: sel", ""),
            "this is a detection rule",
            None,
        ),
    ];
    for (text, want, line) in cases {
        let p = problems(filters(&rules, &[("f", text.clone())]));
        assert_eq!(p.len(), 1, "{text}\n{p:#?}");
        let p = &p[0];
        assert!(p.to_string().contains(want), "{text}\n{p}");
        assert!(p.file == "filters/f.yml", "{p}");
        if line.is_some() {
            assert_eq!(p.line, line, "{text}\n{p}");
        }
    }
}

#[test]
fn names_and_ids_are_unique_and_file_names_match() {
    let rules = two_cron_rules();
    let with_id = |name: &str| {
        filter_yaml(
            name,
            "[cron_a]",
            alice(),
            "not alice",
            "id: 5b0e8c52-4a8f-4a55-9d3c-2f51b6a0d7e1\n",
        )
    };
    let p = problems(filters(&rules, &[("a", with_id("a")), ("b", with_id("a"))]));
    let p: Vec<String> = p.iter().map(|p| p.to_string()).collect();
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].contains("duplicate filter name, also used in filters/a.yml"));
    assert!(p[1].contains("duplicate filter id"));
    let f = filters(
        &rules,
        &[(
            "other",
            filter_yaml("f", "[cron_a]", alice(), "not alice", ""),
        )],
    )
    .unwrap();
    assert!(f.warnings()[0].message.contains("tests/f.yml"));
}

#[test]
fn a_condition_without_not_is_warned_about() {
    let rules = two_cron_rules();
    let f = filters(
        &rules,
        &[(
            "only_alice",
            filter_yaml("only_alice", "[cron_a]", alice(), "alice", ""),
        )],
    )
    .unwrap();
    let w = f.warnings()[0].to_string();
    assert!(w.contains("says which matches to KEEP"), "{w}");
    assert_eq!(f.warnings()[0].line, Some(9));
    // And it does what it says: only alice's matches are kept.
    let mut det = Detector::new(rules, None, Config::default()).with_filters(Arc::new(f));
    assert_eq!(det.observe(&mut cron("alice"))[0].outcome, Outcome::Counted);
    assert_eq!(
        det.observe(&mut cron("bob"))[0].outcome,
        Outcome::SuppressedByFilter("only_alice".into())
    );
}

#[test]
fn test_files_in_the_sources_are_skipped() {
    let rules = two_cron_rules();
    let sources = vec![
        (
            "filters/a.yml".to_string(),
            filter_yaml("a", "[cron_a]", alice(), "not alice", ""),
        ),
        (
            "filters/tests/a.yml".to_string(),
            "suppress: []\nkeep: []\n".to_string(),
        ),
    ];
    let f = FilterSet::from_sources(&rules, sources, TODAY()).unwrap();
    assert_eq!(f.len(), 1);
    assert!(FilterSet::from_sources(&rules, Vec::new(), TODAY())
        .unwrap()
        .is_empty());
}

#[test]
fn a_filters_directory_may_sit_under_one_named_tests() {
    let rules = two_cron_rules();
    let root = std::env::temp_dir().join(format!("tripline-filters-{}", std::process::id()));
    let dir = root.join("tests/site/filters");
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(
        dir.join("alice.yml"),
        filter_yaml("alice", "[cron_a]", alice(), "not alice", ""),
    )
    .unwrap();
    std::fs::write(dir.join("tests/alice.yml"), "suppress: []\n").unwrap();
    let f = FilterSet::load_dir(&rules, &dir, TODAY());
    let _ = std::fs::remove_dir_all(&root);
    let f = f.unwrap();
    assert_eq!(f.len(), 1, "the filter, not its test");
    assert!(FilterSet::load_dir(&rules, root.join("missing"), TODAY()).is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Whatever the text, loading a filter answers (a set or problems), never panics.
    #[test]
    fn any_filter_text_loads_or_fails_cleanly(
        text in "(title|name|filter|rules|condition|logsource|expires|not|any|:| |\n|-|\\[|\\]|[a-z_]{1,8}|'|\\||20[0-9]{2}-[0-9]{2}-[0-9]{2}){0,60}"
    ) {
        let rules = RuleSet::from_sources([(
            "a.yml",
            crontab_rule("cron_a", 1, "1h").as_str(),
        )])
        .unwrap();
        let _ = FilterSet::from_sources(&rules, [("f.yml".to_string(), text)], TODAY());
    }
}

// --- Site rules -------------------------------------------------------------------------

fn keytap_id() -> String {
    RuleSet::builtin()
        .unwrap()
        .get("osquery_keyboard_event_tap")
        .unwrap()
        .id
        .clone()
}

/// The built-in keyboard tap rule's text, retitled.
fn keytap_replacement(name: &str) -> String {
    let (_, text) = builtin::SIGMA_RULES
        .iter()
        .find(|(f, _)| *f == "osquery_keyboard_event_tap.yml")
        .unwrap();
    text.replace(
        "title: Keyboard Event Tap by a Process Outside System Paths",
        "title: Keyboard Event Tap (site version)",
    )
    .replace("name: osquery_keyboard_event_tap", &format!("name: {name}"))
}

fn site(files: &[(&str, String)]) -> SiteRules {
    SiteRules::from_sources(files.iter().map(|(f, t)| (f.to_string(), t.clone())))
}

fn site_problems(site: &SiteRules) -> Vec<String> {
    match RuleSet::builtin_with(site) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.problems().iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn site_rules_add_and_replace_by_id() {
    let builtin = RuleSet::builtin().unwrap();
    let names = |r: &RuleSet| r.rules().iter().map(|r| r.name.clone()).collect::<Vec<_>>();
    // Nothing from the site: the pack as it is.
    let same = RuleSet::builtin_with(&SiteRules::new()).unwrap();
    assert_eq!(names(&same), names(&builtin));

    let added = rule_yaml(
        "acme_rule",
        77,
        "  sel:\n    query: crontab\n  condition: sel",
        "",
    );
    let s = site(&[
        ("rules/acme_rule.yml", added),
        (
            "rules/osquery_keyboard_event_tap.yml",
            keytap_replacement("osquery_keyboard_event_tap"),
        ),
    ]);
    let r = RuleSet::builtin_with(&s).unwrap();
    assert_eq!(r.len(), builtin.len() + 1);
    // The replacement takes the replaced rule's place; additions come last.
    let mut want = names(&builtin);
    want.push("acme_rule".into());
    assert_eq!(names(&r), want);
    let k = r.get("osquery_keyboard_event_tap").unwrap();
    assert_eq!(k.title, "Keyboard Event Tap (site version)");
    assert_eq!(k.source, "rules/osquery_keyboard_event_tap.yml");
    assert_eq!(k.id, keytap_id());
    assert!(r.disabled().is_empty());
}

#[test]
fn a_replacement_under_a_new_name_is_warned_about() {
    let s = site(&[("rules/acme_keytap.yml", keytap_replacement("acme_keytap"))]);
    let r = RuleSet::builtin_with(&s).unwrap();
    assert!(r.get("osquery_keyboard_event_tap").is_none());
    assert!(r.get("acme_keytap").is_some());
    let w = r
        .warnings()
        .iter()
        .find(|w| w.message.contains("replaces osquery_keyboard_event_tap"))
        .unwrap();
    assert_eq!(w.file, "rules/acme_keytap.yml");
    assert_eq!(w.line, Some(3));
}

#[test]
fn a_site_rule_may_not_take_a_pack_rules_name() {
    let text = keytap_replacement("osquery_keyboard_event_tap")
        .replace(&keytap_id(), "11111111-2222-4333-8444-555555555555");
    let p = site_problems(&site(&[("rules/k.yml", text)]));
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(
        p[0].starts_with("rules/k.yml:3 (osquery_keyboard_event_tap): name: osquery_keyboard_event_tap is already the name of osquery_keyboard_event_tap.yml"),
        "{}",
        p[0]
    );
    // Two site rules with one id: the set's duplicate check.
    let a = keytap_replacement("acme_a");
    let b = keytap_replacement("acme_b");
    let p = site_problems(&site(&[("rules/a.yml", a), ("rules/b.yml", b)]));
    assert!(p.iter().any(|p| p.contains("duplicate rule id")), "{p:#?}");
}

#[test]
fn disabling_pack_rules() {
    let s = SiteRules::new().disable(["osquery_ssh_listener", "osquery_sip_disabled"]);
    let r = RuleSet::builtin_with(&s).unwrap();
    assert!(r.get("osquery_ssh_listener").is_none());
    assert_eq!(
        r.disabled(),
        ["osquery_sip_disabled", "osquery_ssh_listener"]
    );
    assert_eq!(r.len(), RuleSet::builtin().unwrap().len() - 2);

    let p = site_problems(&SiteRules::new().disable(["osquery_ssh_listenr"]));
    assert_eq!(
        p,
        ["(osquery_ssh_listenr): disable: cannot disable osquery_ssh_listenr: the pack has no rule of that name"]
    );
    let s = site(&[(
        "rules/k.yml",
        keytap_replacement("osquery_keyboard_event_tap"),
    )])
    .disable(["osquery_keyboard_event_tap"]);
    assert!(site_problems(&s)[0].contains("rules/k.yml replaces it"));
    let added = rule_yaml(
        "acme_rule",
        77,
        "  sel:\n    query: crontab\n  condition: sel",
        "",
    );
    let s = site(&[("rules/acme_rule.yml", added)]).disable(["acme_rule"]);
    assert!(site_problems(&s)[0].contains("it is a site rule"));
}

#[test]
fn site_rule_problems_name_file_and_line() {
    let bad = rule_yaml(
        "acme_rule",
        77,
        "  sel:\n    query: crontab\n  condition: sel",
        "",
    )
    .replace("window: 1h", "window: 1y");
    let p = site_problems(&site(&[("rules/acme_rule.yml", bad)]));
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(
        p[0].starts_with("rules/acme_rule.yml:16 (acme_rule): tripline.window:"),
        "{}",
        p[0]
    );
    let p = site_problems(&site(&[("rules/x.yml", "title: [\n".into())]));
    assert!(
        p[0].starts_with("rules/x.yml:2: not a valid Sigma rule"),
        "{}",
        p[0]
    );
}

#[test]
fn site_test_files_are_not_rules() {
    let s = site(&[
        (
            "rules/acme_rule.yml",
            rule_yaml(
                "acme_rule",
                77,
                "  sel:\n    query: crontab\n  condition: sel",
                "",
            ),
        ),
        ("rules/tests/acme_rule.yml", "positive: []\n".into()),
        ("tests/acme_rule.yml", "positive: []\n".into()),
    ]);
    assert_eq!(s.files().len(), 1);
}

#[test]
fn layered_tests_drop_disabled_and_replaced_ones() {
    let s = site(&[(
        "rules/osquery_keyboard_event_tap.yml",
        keytap_replacement("osquery_keyboard_event_tap"),
    )])
    .disable(["osquery_ssh_listener"]);
    let rules = RuleSet::builtin_with(&s).unwrap();
    let site_tests = vec![(
        "rules/tests/osquery_keyboard_event_tap.yml".to_string(),
        "positive: []\n".to_string(),
    )];
    let files = testing::layered_sources(testing::builtin_sources(), site_tests, &rules);
    assert_eq!(files.len(), builtin::RULE_TESTS.len() - 1);
    assert!(!files.iter().any(|(f, _)| f == "osquery_ssh_listener.yml"));
    assert!(!files
        .iter()
        .any(|(f, _)| f == "osquery_keyboard_event_tap.yml"));
    assert!(files
        .iter()
        .any(|(f, _)| f == "rules/tests/osquery_keyboard_event_tap.yml"));
}

// --- Filter tests (`tripline rules test --filters`) --------------------------------------

fn filter_tests(
    rules: &Arc<RuleSet>,
    set: &FilterSet,
    files: &[(&str, &str)],
) -> testing::FilterTestReport {
    let files: Vec<(String, String)> = files
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect();
    testing::run_filters(rules, None, set, &files)
}

#[test]
fn filter_tests_check_both_ways() {
    let rules = two_cron_rules();
    let set = filters(
        &rules,
        &[(
            "alice",
            filter_yaml("alice", "[cron_a]", alice(), "not alice", ""),
        )],
    )
    .unwrap();
    let good = "suppress:\n  - query: crontab\n    columns: {command: x, user: alice}\n\
                keep:\n  - query: crontab\n    columns: {command: x, user: bob}\n";
    let r = filter_tests(&rules, &set, &[("tests/alice.yml", good)]);
    assert!(r.passed(), "{r:#?}");
    assert_eq!((r.filters[0].suppress, r.filters[0].keep), (1, 1));

    // Swapped: each event fails its expectation.
    let swapped = "suppress:\n  - query: crontab\n    columns: {command: x, user: bob}\n\
                   keep:\n  - query: crontab\n    columns: {command: x, user: alice}\n  \
                   - query: ls\n    columns: {}\n";
    let r = filter_tests(&rules, &set, &[("tests/alice.yml", swapped)]);
    let f = &r.filters[0].failures;
    assert_eq!(f.len(), 3, "{f:#?}");
    assert!(f[0].contains("cron_a fired; the filter did not suppress it"));
    assert!(f[1].contains("the filter suppressed cron_a, which must fire"));
    assert!(f[2].contains("none of the filter's rules (cron_a) fired on it"));

    // A first-run row never reaches the filter.
    let first_run =
        "suppress:\n  - query: crontab\n    counter: 0\n    derived: {initial: true}\n    \
                     columns: {command: x, user: alice}\nkeep:\n  - query: crontab\n    \
                     columns: {command: x, user: bob}\n";
    let r = filter_tests(&rules, &set, &[("tests/alice.yml", first_run)]);
    assert!(
        r.passed(),
        "cron_a has initial: true, so the row alerts: {r:#?}"
    );

    // Missing lists, files and filters.
    let r = filter_tests(&rules, &set, &[("tests/alice.yml", "keep: []\n")]);
    assert_eq!(r.filters[0].failures.len(), 2, "{r:#?}");
    let r = filter_tests(&rules, &set, &[("tests/bob.yml", good)]);
    assert_eq!(r.orphans, ["tests/bob.yml: no filter named \"bob\""]);
    assert!(r.filters[0].failures[0].contains("no test file"));
    let r = filter_tests(&rules, &set, &[("tests/alice.yml", "suppress: 3\n")]);
    assert!(r.filters[0].failures[0].contains("invalid test file"));
}

#[test]
fn an_expired_filters_tests_are_skipped() {
    let rules = two_cron_rules();
    let set = filters(
        &rules,
        &[(
            "alice",
            filter_yaml(
                "alice",
                "[cron_a]",
                alice(),
                "not alice",
                "expires: 2026-01-01\n",
            ),
        )],
    )
    .unwrap();
    let good = "suppress:\n  - query: crontab\n    columns: {command: x, user: alice}\n\
                keep:\n  - query: crontab\n    columns: {command: x, user: bob}\n";
    let r = filter_tests(&rules, &set, &[("tests/alice.yml", good)]);
    assert!(r.passed(), "{r:#?}");
    assert_eq!(
        r.filters[0].skipped.as_deref(),
        Some("expired on 2026-01-01")
    );
}

/// `examples/site`: its rules and filters load against the built-in pack and pass their
/// tests (with a fixed date, so an example's expiry cannot break the build).
#[test]
fn the_example_site_passes_its_tests() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/site");
    let site = SiteRules::load_dir(root.join("rules")).unwrap();
    assert!(!site.files().is_empty());
    let rules = Arc::new(RuleSet::builtin_with(&site).unwrap_or_else(|e| panic!("{e}")));
    let site_tests = testing::read_dir(root.join("rules/tests")).unwrap();
    let files = testing::layered_sources(testing::builtin_sources(), site_tests, &rules);
    let mapper = Some(Arc::new(crate::mapping::Mapper::builtin().unwrap()));
    let report = testing::run(&rules, mapper.clone(), &files);
    assert!(report.passed(), "{report:#?}");

    let set = FilterSet::load_dir(&rules, root.join("filters"), TODAY()).unwrap();
    assert!(!set.is_empty());
    assert!(set.warnings().is_empty(), "{:#?}", set.warnings());
    let files = testing::read_dir(root.join("filters/tests")).unwrap();
    let report = testing::run_filters(&rules, mapper, &set, &files);
    assert!(report.passed(), "{report:#?}");
    assert!(report.filters.iter().all(|f| f.suppress > 0 && f.keep > 0));
}
