//! PagerDuty Events API v2 (`POST https://events.pagerduty.com/v2/enqueue`).
//!
//! The alert id is the `dedup_key`, so a re-sent alert updates the same incident instead
//! of paging twice.

use serde_json::{json, Value};

use super::{technique_url, truncate};
use crate::alert::Alert;
use crate::alert::Level;

/// PagerDuty's Events API v2 endpoint.
pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// The Events v2 `trigger` for `alert`, with the alert id as `dedup_key` so repeats fold into one incident.
pub fn payload(alert: &Alert, routing_key: &str) -> Value {
    let links: Vec<Value> = alert
        .attack
        .iter()
        .map(|t| json!({"href": technique_url(t), "text": format!("{} {}", t.id, t.name)}))
        .collect();
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.id,
        "client": "tripline",
        "payload": {
            "summary": truncate(&alert.title, 1024),
            "source": alert.hosts.first().map(String::as_str).unwrap_or("tripline"),
            "severity": severity(alert.severity),
            "timestamp": alert.last_seen,
            "component": alert.query,
            "group": alert.rule.name,
            "class": alert.attack.first().map(|t| t.id.as_str()),
            "custom_details": {
                "rule": alert.rule.name,
                "level": alert.severity.as_str(),
                "count": alert.count,
                "hosts": alert.hosts,
                "host_count": alert.host_count,
                "first_seen": alert.first_seen,
                "last_seen": alert.last_seen,
                "time_from": alert.time_from,
                "attack": alert.attack,
                "runbook": alert.rule.runbook,
                "description": alert.rule.description,
            },
        },
        "links": links,
    })
}

/// PagerDuty knows critical, error, warning and info.
pub fn severity(level: Level) -> &'static str {
    match level {
        Level::Critical => "critical",
        Level::High => "error",
        Level::Medium => "warning",
        Level::Low | Level::Informational => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::fixtures;

    #[test]
    fn events_v2_trigger() {
        let p = payload(&fixtures::alert(), "R0UT1NG");
        assert_eq!(p["routing_key"], "R0UT1NG");
        assert_eq!(p["event_action"], "trigger");
        assert_eq!(p["dedup_key"], "9f2c61a0b3d4e5f6");
        assert_eq!(p["payload"]["severity"], "error");
        assert_eq!(p["payload"]["source"], "web-1");
        assert_eq!(p["payload"]["timestamp"], "2026-11-20T08:05:00Z");
        assert_eq!(p["payload"]["class"], "T1053.003");
        assert_eq!(p["payload"]["custom_details"]["count"], 2);
        assert_eq!(p["payload"]["custom_details"]["time_from"], "event");
        assert_eq!(p["links"][0]["text"], "T1053.003 Cron");
    }

    #[test]
    fn every_level_maps_to_a_pagerduty_severity() {
        for level in Level::ALL {
            assert!(["critical", "error", "warning", "info"].contains(&severity(level)));
        }
    }
}
