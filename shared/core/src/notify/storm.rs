//! Storm control: the one roll-up message a destination gets instead of a rule's alerts
//! beyond its threshold in one dedup window.
//!
//! A new noisy rule across a fleet raises one alert per host; sending each would page a
//! person ten thousand times. Every alert is still written to the alerts prefix; past the
//! threshold ([`crate::config::Storm`]), destinations get [`rollup`] once per (rule, window),
//! and it says where the rest are.

use std::sync::Arc;

use crate::alert::{alert_id, Alert, AlertRule, Dedup};

/// Most hosts a roll-up names.
pub const ROLLUP_HOSTS: usize = 10;

/// The roll-up of `alert`'s rule in `alert`'s window: at least `seen` alerts (more than
/// `threshold`), the first `hosts`, and where every alert is (`alerts_at`, e.g. the alerts
/// prefix of the window's day). Its id is the same for every alert of the storm, so it is
/// delivered once per destination like any alert.
pub fn rollup(
    alert: &Alert,
    threshold: u32,
    seen: usize,
    mut hosts: Vec<String>,
    alerts_at: &str,
) -> Alert {
    hosts.sort();
    hosts.dedup();
    hosts.truncate(ROLLUP_HOSTS);
    let rule = &alert.rule;
    let window = &alert.dedup;
    let description = format!(
        "{} raised more than {threshold} alerts in the {} window starting {}: at least {seen} \
         so far. Destinations get this one message instead of the rest; every alert is in \
         {alerts_at} (rule.name = {:?}, dedup.window_start = {:?}).",
        rule.name, window.window, window.window_start, rule.name, window.window_start,
    );
    Alert {
        id: alert_id(
            &format!("{}/storm", rule.name),
            std::slice::from_ref(&window.window_start),
            0,
        ),
        rule: Arc::new(AlertRule {
            description: Some(description),
            ..(**rule).clone()
        }),
        severity: alert.severity,
        title: format!(
            "Alert storm: {} ({}) raised {seen}+ alerts since {}",
            rule.title, rule.name, window.window_start
        ),
        dedup: Dedup {
            fields: vec!["rule".into()],
            values: vec![serde_json::Value::String(rule.name.clone())],
            window: window.window.clone(),
            window_start: window.window_start.clone(),
        },
        first_seen: alert.first_seen.clone(),
        last_seen: alert.last_seen.clone(),
        time_from: alert.time_from,
        count: seen as u64,
        host_count: hosts.len(),
        hosts,
        attack: alert.attack.clone(),
        query: alert.query.clone(),
        samples: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::fixtures;

    #[test]
    fn one_rollup_per_rule_and_window_saying_where_the_rest_are() {
        let a = fixtures::alert();
        let mut b = fixtures::alert();
        b.id = "other".into();
        b.hosts = vec!["web-9".into()];
        let at = "s3://tripline-data/alerts/2026/11/20/";
        let hosts: Vec<String> = (0..30).map(|i| format!("web-{i:02}")).collect();
        let r = rollup(&a, 25, 26, hosts.clone(), at);
        assert_eq!(
            r.id,
            rollup(&b, 25, 40, vec![], at).id,
            "same storm, same id"
        );
        let mut next_window = fixtures::alert();
        next_window.dedup.window_start = "2026-11-21T00:00:00Z".into();
        assert_ne!(r.id, rollup(&next_window, 25, 26, vec![], at).id);
        assert_eq!(r.hosts.len(), ROLLUP_HOSTS);
        assert_eq!(r.hosts[0], "web-00");
        assert_eq!(r.count, 26);
        assert!(
            r.title.contains("26+") && r.title.contains(&a.rule.name),
            "{}",
            r.title
        );
        let d = r.rule.description.as_deref().unwrap();
        assert!(d.contains(at) && d.contains("more than 25"), "{d}");
        assert!(r.samples.is_empty());
        // Every destination's payload builds from it.
        let text = crate::notify::slack::payload(&r).to_string();
        assert!(text.contains("Alert storm"), "{text}");
    }
}
