//! Slack incoming webhook: Block Kit with severity, title, hosts, rule, ATT&CK technique
//! links and the runbook, plus a plain `text` fallback for notifications and old clients.

use serde_json::{json, Value};

use super::{technique_url, truncate};
use crate::alert::Level;
use crate::alert::{Alert, TimeFrom};

/// Slack limits: header text 150 chars, section text 3000.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const HOSTS_SHOWN: usize = 10;

/// The Slack incoming-webhook message (Block Kit) for `alert`.
pub fn payload(alert: &Alert) -> Value {
    let level = alert.severity.as_str().to_uppercase();
    let hosts = hosts_line(alert);
    let techniques: Vec<String> = alert
        .attack
        .iter()
        .map(|t| {
            format!(
                "<{}|{} {}> ({})",
                technique_url(t),
                escape(&t.id),
                escape(&t.name),
                escape(&t.tactics.join(", "))
            )
        })
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "emoji": true,
            "text": truncate(&format!("{} {level}: {}", emoji(alert.severity), alert.title), HEADER_MAX)}}),
        json!({"type": "section", "fields": [
            {"type": "mrkdwn", "text": format!("*Severity*\n{level}")},
            {"type": "mrkdwn", "text": format!("*Rule*\n`{}`", escape(&alert.rule.name))},
            {"type": "mrkdwn", "text": format!("*Host(s)*\n{}", escape(&hosts))},
            {"type": "mrkdwn", "text": format!("*Events*\n{} between {} and {}{}", alert.count, alert.first_seen, alert.last_seen, time_note(alert.time_from))},
        ]}),
    ];
    if !techniques.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": truncate(&format!("*MITRE ATT&amp;CK*\n{}", techniques.join("\n")), SECTION_MAX)}}));
    }
    if let Some(runbook) = &alert.rule.runbook {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": truncate(&format!("*Runbook*\n{}", escape(runbook)), SECTION_MAX)}}));
    }
    let mut context = format!("tripline alert `{}`", alert.id);
    if let Some(q) = &alert.query {
        context.push_str(&format!(" · query `{}`", escape(q)));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));

    let ids: Vec<&str> = alert.attack.iter().map(|t| t.id.as_str()).collect();
    let text = format!(
        "[{level}] {} on {hosts} ({}{})",
        alert.title,
        alert.rule.name,
        if ids.is_empty() {
            String::new()
        } else {
            format!("; {}", ids.join(", "))
        }
    );
    json!({"text": truncate(&text, SECTION_MAX), "blocks": blocks})
}

fn hosts_line(alert: &Alert) -> String {
    let shown: Vec<&str> = alert
        .hosts
        .iter()
        .take(HOSTS_SHOWN)
        .map(String::as_str)
        .collect();
    let mut line = if shown.is_empty() {
        "unknown host".to_string()
    } else {
        shown.join(", ")
    };
    let more = alert.host_count.saturating_sub(shown.len());
    if more > 0 {
        line.push_str(&format!(" and {more} more"));
    }
    line
}

fn emoji(level: Level) -> &'static str {
    match level {
        Level::Critical => ":rotating_light:",
        Level::High => ":red_circle:",
        Level::Medium => ":large_orange_circle:",
        Level::Low => ":large_yellow_circle:",
        Level::Informational => ":information_source:",
    }
}

/// Slack mrkdwn control characters in attacker-influenced text (hostnames, commands)
/// must not turn into links or mentions.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Says when the times shown are not the events' own, so nobody reads an object's time as
/// the moment something happened.
fn time_note(from: TimeFrom) -> &'static str {
    match from {
        TimeFrom::Event => "",
        TimeFrom::Object => " (the time of their log object: the events had none)",
        TimeFrom::Mixed => " (partly the time of their log object: some events had none)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::fixtures;

    #[test]
    fn blocks_carry_everything_a_responder_needs() {
        let p = payload(&fixtures::alert());
        let text = p.to_string();
        assert!(p["text"]
            .as_str()
            .unwrap()
            .starts_with("[HIGH] Suspicious cron job on web-1"));
        assert!(p["text"].as_str().unwrap().contains("T1053.003"));
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert!(text.contains("<https://attack.mitre.org/techniques/T1053/003|T1053.003 Cron>"));
        assert!(text.contains("`osquery_suspicious_cron`"));
        assert!(text.contains("web-1, web-2"));
        assert!(text.contains("*Runbook*"));
        // The title's `<now>` is escaped where it is mrkdwn; header text is plain.
        assert!(blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("<now>"));
        assert!(!text.contains("&lt;now&gt;") || !text.contains("|<now>"));
    }

    #[test]
    fn times_not_from_the_events_are_marked() {
        let mut a = fixtures::alert();
        let events = |a: &Alert| payload(a)["blocks"][1]["fields"][3]["text"].to_string();
        assert!(!events(&a).contains("log object"), "{}", events(&a));
        a.time_from = TimeFrom::Object;
        assert!(events(&a).contains("the time of their log object"));
        a.time_from = TimeFrom::Mixed;
        assert!(events(&a).contains("partly the time of their log object"));
    }

    #[test]
    fn hosts_are_capped_and_text_is_escaped() {
        let mut a = fixtures::alert();
        a.hosts = (0..20).map(|i| format!("h<{i}>")).collect();
        a.host_count = 25;
        let p = payload(&a);
        let fields = p["blocks"][1]["fields"].to_string();
        assert!(fields.contains("h&lt;0&gt;"));
        assert!(fields.contains("and 15 more"));
        assert!(!fields.contains("h<0>"));
    }
}
