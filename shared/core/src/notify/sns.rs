//! Amazon SNS: a subject for email, the alert as a JSON body, and message attributes so
//! subscription filter policies can route by severity, rule, tactic or technique
//! (e.g. `{"severity": ["high", "critical"]}` for the email subscription).

use serde::Serialize;

use crate::alert::Alert;

/// SNS subjects: at most 100 printable ASCII characters, no line breaks.
pub const MAX_SUBJECT: usize = 100;

/// What SNS publishes for one alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnsMessage {
    /// The email subject (SNS limits: printable ASCII, at most 100 characters).
    pub subject: String,
    /// The body: the alert as indented JSON.
    pub message: String,
    /// Message attributes, for subscription filter policies.
    pub attributes: Vec<SnsAttribute>,
}

/// One SNS message attribute (a `String`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnsAttribute {
    /// The attribute name.
    pub name: &'static str,
    /// `String` or `String.Array` (a JSON array in `value`), as SNS defines them.
    pub data_type: &'static str,
    /// Its value.
    pub value: String,
}

/// The SNS message for `alert`.
pub fn message(alert: &Alert) -> SnsMessage {
    let mut tactics: Vec<&str> = Vec::new();
    for t in &alert.attack {
        for tactic in &t.tactics {
            if !tactics.contains(&tactic.as_str()) {
                tactics.push(tactic);
            }
        }
    }
    let techniques: Vec<&str> = alert.attack.iter().map(|t| t.id.as_str()).collect();
    let array = |v: &[&str]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    SnsMessage {
        subject: subject(alert),
        message: serde_json::to_string_pretty(alert).unwrap_or_default(),
        attributes: vec![
            SnsAttribute {
                name: "severity",
                data_type: "String",
                value: alert.severity.as_str().to_string(),
            },
            SnsAttribute {
                name: "rule",
                data_type: "String",
                value: alert.rule.name.clone(),
            },
            SnsAttribute {
                name: "tactics",
                data_type: "String.Array",
                value: array(&tactics),
            },
            SnsAttribute {
                name: "techniques",
                data_type: "String.Array",
                value: array(&techniques),
            },
        ],
    }
}

/// `[HIGH] <title>`, reduced to what SNS accepts in a subject.
pub fn subject(alert: &Alert) -> String {
    let raw = format!(
        "[{}] {}",
        alert.severity.as_str().to_uppercase(),
        alert.title
    );
    let ascii: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let squeezed = ascii.split_whitespace().collect::<Vec<_>>().join(" ");
    if squeezed.len() <= MAX_SUBJECT {
        squeezed
    } else {
        format!("{}...", &squeezed[..MAX_SUBJECT - 3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::fixtures;

    #[test]
    fn attributes_support_filter_policies() {
        let m = message(&fixtures::alert());
        let get = |n: &str| m.attributes.iter().find(|a| a.name == n).unwrap().clone();
        assert_eq!(get("severity").value, "high");
        assert_eq!(get("rule").value, "osquery_suspicious_cron");
        assert_eq!(get("tactics").data_type, "String.Array");
        assert_eq!(
            get("tactics").value,
            r#"["execution","persistence","privilege-escalation"]"#
        );
        assert_eq!(get("techniques").value, r#"["T1053.003"]"#);
        let body: serde_json::Value = serde_json::from_str(&m.message).unwrap();
        assert_eq!(body["id"], "9f2c61a0b3d4e5f6");
    }

    #[test]
    fn subjects_are_short_printable_ascii() {
        let mut a = fixtures::alert();
        a.title = format!("café\nnewline {}", "x".repeat(200));
        let s = subject(&a);
        assert!(s.len() <= MAX_SUBJECT);
        assert!(s.starts_with("[HIGH] caf newline x"));
        assert!(s.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        assert!(s.ends_with("..."));
    }
}
