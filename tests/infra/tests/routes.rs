//! `infra/modules/routes` applied alone (it has no providers and no resources, so a real
//! `terraform apply` runs offline), its two outputs held to tripline's own routing:
//! - its `toml` is tripline.toml text that `Config` reads back as the same routes;
//! - its SNS filter policy, evaluated against the message attributes notify publishes
//!   (`notify::sns::message`), accepts every alert the route takes, and exactly those when SNS
//!   can express the route's globs.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use tripline_core::alert::{Alert, Level};
use tripline_core::config::Config;
use tripline_core::notify::sns;

const LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];

/// Rule names the alerts are raised under: literal matches, prefix matches and near misses.
const RULES: [&str; 7] = [
    "osquery_suspicious_cron",
    "osquery_outdated_agent",
    "osquery_macos_keylogger",
    "osquery_ssh_backdoor",
    "osquery_ioc_match",
    "custom_rule",
    "osquery",
];

struct Applied {
    toml: String,
    policy: Option<Value>,
}

/// `terraform apply` of a root module that calls the routes module with `routes` (HCL).
fn apply(routes: &str) -> Applied {
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/modules/routes");
    let module = module.canonicalize().expect("infra/modules/routes exists");
    // A fresh root per call (cargo's per-test temporary directory, named for the routes).
    let id = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(routes.as_bytes()));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("routes")
        .join(id);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "module \"r\" {{\n  source = {source:?}\n  routes = {routes}\n}}\n\
             output \"toml\" {{ value = module.r.toml }}\n\
             output \"policy\" {{ value = module.r.sns_filter_policy }}\n",
            source = module.display().to_string(),
        ),
    )
    .unwrap();
    let terraform = |args: &[&str]| {
        let out = Command::new("terraform")
            .args(args)
            .current_dir(&dir)
            // No user CLI configuration, no plugin cache: the module needs no provider.
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .env("TF_IN_AUTOMATION", "1")
            .output()
            .expect("terraform is installed (the test command's machine has it)");
        assert!(
            out.status.success(),
            "terraform {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    terraform(&["init", "-input=false", "-backend=false", "-no-color"]);
    terraform(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let outputs: Value = serde_json::from_slice(&terraform(&["output", "-json"])).unwrap();
    let toml = outputs["toml"]["value"].as_str().unwrap().to_string();
    let policy = match &outputs["policy"]["value"] {
        Value::String(text) => Some(serde_json::from_str(text).unwrap()),
        Value::Null => None,
        other => panic!("sns_filter_policy is neither JSON text nor null: {other}"),
    };
    Applied { toml, policy }
}

fn alert(rule: &str, level: &str) -> Alert {
    serde_json::from_value(json!({
        "id": "bf35621aa8afeec8",
        "rule": {"name": rule, "id": "883828eb-e835-4161-a60d-4120cf412301", "title": "t", "level": level},
        "severity": level,
        "title": "t",
        "dedup": {"fields": ["host"], "values": ["h"], "window": "1h", "window_start": "2026-11-12T00:00:00Z"},
        "first_seen": "2026-11-16T08:02:07Z",
        "last_seen": "2026-11-16T08:02:07Z",
        "time_from": "event",
        "count": 1,
        "hosts": ["h"],
        "host_count": 1,
        "attack": [],
        "query": "q",
        "samples": []
    }))
    .unwrap()
}

/// SNS's filter-policy matching for String attributes (MessageAttributes scope), for the
/// operators the module may write; any other operator fails the test rather than guess.
fn policy_matches(policy: &Value, attributes: &[(&str, &str)]) -> bool {
    policy.as_object().unwrap().iter().all(|(key, conditions)| {
        let Some(&(_, value)) = attributes.iter().find(|(name, _)| name == key) else {
            return false;
        };
        conditions
            .as_array()
            .unwrap()
            .iter()
            .any(|c| condition_matches(c, value))
    })
}

fn condition_matches(condition: &Value, value: &str) -> bool {
    match condition {
        Value::String(s) => s == value,
        Value::Object(op) if op.len() == 1 => {
            let (name, arg) = op.iter().next().unwrap();
            match (name.as_str(), arg) {
                ("prefix", Value::String(p)) => value.starts_with(p.as_str()),
                ("anything-but", Value::Array(values)) => !values.iter().any(|v| v == value),
                ("anything-but", Value::String(v)) => v != value,
                ("anything-but", Value::Object(inner)) => match inner.get("prefix") {
                    Some(Value::String(p)) if inner.len() == 1 => !value.starts_with(p.as_str()),
                    _ => panic!("unknown anything-but form: {condition}"),
                },
                _ => panic!("unknown filter-policy operator: {condition}"),
            }
        }
        _ => panic!("unknown filter-policy condition: {condition}"),
    }
}

/// Applies `routes`, then checks both outputs against `Config` for every rule and level.
/// `exact`: whether SNS can express this sns route, so the policy must equal it.
fn check(routes: &str, exact: bool) -> Applied {
    let applied = apply(routes);
    let config = Config::from_toml_str(&applied.toml).unwrap_or_else(|e| {
        panic!(
            "the rendered routes are not tripline.toml: {e}\n{}",
            applied.toml
        )
    });
    let sns_route = config.routes.get("sns");
    assert_eq!(
        applied.policy.is_some(),
        sns_route.is_some(),
        "{applied:?}",
        applied = applied.toml
    );
    if let (Some(policy), Some(route)) = (&applied.policy, sns_route) {
        for rule in RULES {
            for level in LEVELS {
                let alert = alert(rule, level);
                let message = sns::message(&alert);
                let attributes: Vec<(&str, &str)> = message
                    .attributes
                    .iter()
                    .map(|a| (a.name, a.value.as_str()))
                    .collect();
                let takes = route.takes(&alert);
                let passes = policy_matches(policy, &attributes);
                assert!(
                    passes || !takes,
                    "the e-mail filter {policy} drops {rule}/{level}, which the sns route takes"
                );
                if exact {
                    assert_eq!(passes, takes, "policy {policy} vs route for {rule}/{level}");
                }
            }
        }
    }
    applied
}

#[test]
fn routes_render_as_tripline_toml_and_the_email_filter_follows_the_sns_route() {
    // Levels only, a destination besides sns, and text TOML and JSON escape differently.
    let a = check(
        r#"{ sns = { min_level = "high" }, slack = { min_level = "medium", exclude_rules = ["osquery_macos_*", "we\"ird<"] } }"#,
        true,
    );
    let config = Config::from_toml_str(&a.toml).unwrap();
    let slack = &config.routes["slack"];
    assert_eq!(slack.min_level, Level::Medium);
    assert_eq!(
        slack.exclude_rules.patterns(),
        ["osquery_macos_*".to_string(), "we\"ird<".to_string()]
    );
    assert_eq!(
        a.policy.unwrap()["severity"],
        json!(["high", "critical"]),
        "severity narrows to the levels at or above min_level"
    );

    // Literal and prefix rule lists, and exclusions SNS can write as anything-but.
    check(
        r#"{ sns = { min_level = "low", rules = ["osquery_ssh_*", "custom_rule"] } }"#,
        true,
    );
    check(
        r#"{ sns = { exclude_rules = ["osquery_outdated_agent", "osquery"] } }"#,
        true,
    );
    check(r#"{ sns = { exclude_rules = ["osquery_macos_*"] } }"#, true);
}

#[test]
fn globs_sns_cannot_express_leave_the_rest_to_notify_and_no_route_means_no_policy() {
    // A glob with an inner `*`, and include plus exclude lists: the policy narrows by severity
    // only; notify applies the whole route before it publishes.
    let a = check(
        r#"{ sns = { min_level = "medium", rules = ["osquery_*_backdoor"] } }"#,
        false,
    );
    assert!(a.policy.unwrap().get("rule").is_none());
    check(
        r#"{ sns = { rules = ["osquery_*"], exclude_rules = ["osquery_outdated_agent"] } }"#,
        false,
    );

    let none = check(r#"{ pagerduty = { min_level = "critical" } }"#, true);
    assert!(none.policy.is_none());
    let empty = check("{}", true);
    assert_eq!(empty.toml, "");
}
