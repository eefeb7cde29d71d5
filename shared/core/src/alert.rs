//! The alert format: what the detect stage writes to `alerts/` and the notify stage reads,
//! one JSON object per alert. How matches become alerts (grouping, windows, samples) is
//! [`crate::rules::aggregate`]'s.
//!
//! An alert's id is `(rule name, dedup values, window start)` hashed ([`alert_id`]), the same
//! wherever it is computed, so downstream stores can upsert by id.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::attack::Techniques;

/// An alert's severity: its rule's Sigma `level`, ordered so `--fail-on high` can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Worth recording, not acting on.
    Informational,
    /// Worth a look.
    Low,
    /// Worth a look soon.
    Medium,
    /// Worth acting on now.
    High,
    /// Worth waking someone.
    Critical,
}

impl Level {
    /// Every level, least severe first.
    pub const ALL: [Level; 5] = [
        Level::Informational,
        Level::Low,
        Level::Medium,
        Level::High,
        Level::Critical,
    ];

    /// The name Sigma uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Level, String> {
        let s = s.trim().to_ascii_lowercase();
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == s || (s == "info" && *l == Level::Informational))
            .ok_or_else(|| {
                format!(
                    "unknown level {s:?} (expected informational, low, medium, high or critical)"
                )
            })
    }
}

/// Hosts listed in one alert; `host_count` still counts all of them.
pub const MAX_ALERT_HOSTS: usize = 100;

/// The rule behind an alert, copied in so an alert is readable on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    /// The rule's `name` (its stable snake_case identifier).
    pub name: String,
    /// The Sigma rule UUID.
    pub id: String,
    /// The Sigma rule's title.
    pub title: String,
    /// The Sigma rule's level.
    pub level: Level,
    /// The Sigma `description`, when the rule has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The Sigma `references` (URLs), possibly none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// What to do about the alert (`tripline.runbook`), when the rule gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// The rule's own storm threshold (`tripline.storm`), when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm: Option<u32>,
}

/// What made matches the same alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dedup {
    /// The rule's `tripline.dedup` fields.
    pub fields: Vec<String>,
    /// Their values, in the same order (as the rules saw them: column numbers as text).
    pub values: Vec<Value>,
    /// Window length, e.g. `24h`.
    pub window: String,
    /// RFC 3339 start of the window.
    pub window_start: String,
}

/// One alert: a rule, a dedup key and a window, with the evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `xxh3_64(rule name, dedup values, window start)` in hex: stable across processes.
    pub id: String,
    /// Shared by the alerts of one rule: an object can raise thousands of them.
    pub rule: Arc<AlertRule>,
    /// The alert's severity: its rule's level.
    pub severity: Level,
    /// The rule's title template rendered against the first matching event.
    pub title: String,
    /// The dedup fields, values and window that make this one alert.
    pub dedup: Dedup,
    /// RFC 3339 time of the earliest match in the window.
    pub first_seen: String,
    /// RFC 3339 time of the latest match in the window.
    pub last_seen: String,
    /// Where the times above (and the window) came from: the events' own times, the time of
    /// the object they arrived in (events without a usable time), or both.
    #[serde(default)]
    pub time_from: TimeFrom,
    /// Matching events in the window.
    pub count: u64,
    /// Distinct hosts, sorted, at most [`MAX_ALERT_HOSTS`].
    pub hosts: Vec<String>,
    /// Distinct hosts among the matching events, including those beyond [`MAX_ALERT_HOSTS`].
    pub host_count: usize,
    /// Techniques from the rule's tags, then those mapped from the events' queries. Shared
    /// by the alerts with the same list.
    pub attack: Techniques,
    /// Query of the first matching event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The first `max_samples` matching events, each with its `derived` object.
    pub samples: Vec<Sample>,
}

/// One matching event as an alert shows it: the event as stored, with its `derived` object.
///
/// Kept as the compact JSON text of that object, and read back into a `Value` only while it
/// is serialized, so the bytes written are those of the `Value` it was made from, for any
/// serializer (compact or pretty). Every alert group holds up to `max_samples` of these for
/// the whole object, and an object can raise tens of thousands of groups: as text a sample
/// costs its length; as a `Value` tree it cost several times that in nodes and small
/// allocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample(Box<str>);

impl Sample {
    /// A sample holding `value`'s compact JSON text.
    pub fn from_value(value: &Value) -> Sample {
        Sample(value.to_string().into_boxed_str())
    }

    /// The sample as a JSON value (a fresh tree each call).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).expect("a sample is the JSON text of a Value")
    }

    /// The compact JSON text.
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

impl Serialize for Sample {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Sample {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Sample, D::Error> {
        Value::deserialize(d).map(|v| Sample::from_value(&v))
    }
}

/// Which time placed an alert's matches in their window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeFrom {
    /// Each event's own time (`unix_time`, else `time`). The default, so alerts written
    /// before this field existed (all placed by their events' times) read back as they were.
    #[default]
    Event,
    /// The time of the object the events arrived in: they had no usable time of their own.
    Object,
    /// Some matches by their event's time, some by their object's.
    Mixed,
}

impl TimeFrom {
    /// The source of a group that already had `self` and gains a match placed by `other`.
    pub(crate) fn and(self, other: TimeFrom) -> TimeFrom {
        if self == other {
            self
        } else {
            TimeFrom::Mixed
        }
    }
}

/// Alert id: xxh3-64 over the rule name, the canonical JSON of each dedup value and the
/// window start, separated by a byte that cannot occur in JSON text or rule names.
pub fn alert_id(rule: &str, values: &[String], window_start: i64) -> String {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(rule.as_bytes());
    for v in values {
        buf.push(0x1f);
        buf.extend_from_slice(v.as_bytes());
    }
    buf.push(0x1e);
    buf.extend_from_slice(window_start.to_string().as_bytes());
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_stable_and_sensitive() {
        let a = alert_id("r", &["\"h1\"".into(), "\"x\"".into()], 86_400);
        // Fixed value: changing the id scheme breaks upserts in deployed stores.
        assert_eq!(a, alert_id("r", &["\"h1\"".into(), "\"x\"".into()], 86_400));
        assert_eq!(a.len(), 16);
        assert_ne!(a, alert_id("r", &["\"h1\"".into(), "\"y\"".into()], 86_400));
        assert_ne!(
            a,
            alert_id("r2", &["\"h1\"".into(), "\"x\"".into()], 86_400)
        );
        assert_ne!(a, alert_id("r", &["\"h1\"".into(), "\"x\"".into()], 0));
        // Separators keep ("ab","c") and ("a","bc") apart.
        assert_ne!(
            alert_id("r", &["ab".into(), "c".into()], 0),
            alert_id("r", &["a".into(), "bc".into()], 0)
        );
    }

    #[test]
    fn time_from_combines_to_mixed() {
        use TimeFrom::*;
        assert_eq!(Event.and(Event), Event);
        assert_eq!(Object.and(Object), Object);
        assert_eq!(Event.and(Object), Mixed);
        assert_eq!(Object.and(Event), Mixed);
        assert_eq!(Mixed.and(Event), Mixed);
        // Alerts written before the field existed were all placed by their events.
        assert_eq!(TimeFrom::default(), Event);
    }
}
