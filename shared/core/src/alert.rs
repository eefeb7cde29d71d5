//! Alerts: rule matches grouped by rule, dedup key and time window.
//!
//! A noisy rule must produce one alert with a count, not a thousand notifications, and the
//! same alert must get the same id wherever it is computed (a CLI run, each Lambda
//! invocation that sees part of the window) so downstream stores can upsert by id. Both
//! follow from keying on `(rule name, dedup values, window start)` with a fixed-grid window
//! (`floor(t / w) * w`) instead of a sliding one that would depend on what was seen first.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::attack::{Catalog, TechniqueRef};
use crate::derive::Derived;
use crate::event::Event;
use crate::rules::fields::lookup;
use crate::rules::{EventView, Level, Rule};

/// Hosts listed in one alert; `host_count` still counts all of them.
pub const MAX_ALERT_HOSTS: usize = 100;

/// The rule behind an alert, copied in so an alert is readable on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    pub name: String,
    /// The Sigma rule UUID.
    pub id: String,
    pub title: String,
    pub level: Level,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
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
    pub rule: AlertRule,
    pub severity: Level,
    /// The rule's title template rendered against the first matching event.
    pub title: String,
    pub dedup: Dedup,
    pub first_seen: String,
    pub last_seen: String,
    /// Matching events in the window.
    pub count: u64,
    /// Distinct hosts, sorted, at most [`MAX_ALERT_HOSTS`].
    pub hosts: Vec<String>,
    pub host_count: usize,
    /// Techniques from the rule's tags, then those mapped from the events' queries.
    pub attack: Vec<TechniqueRef>,
    /// Query of the first matching event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The first `max_samples` matching events, each with its `derived` object.
    pub samples: Vec<Value>,
}

/// Why a match could not become part of an alert; counted per rule as a rule error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    #[error("event has no time, so it cannot be placed in a dedup window")]
    NoTime,
    #[error("event time {time} is out of range for a {window} dedup window")]
    TimeOutOfRange { time: i64, window: String },
}

/// One rule match, borrowed from the detector for the duration of [`Aggregator::add`].
pub struct Match<'a> {
    pub rule: &'a Arc<Rule>,
    pub event: &'a Event,
    pub derived: &'a Derived,
    /// The eval view the rule matched, for dedup values and the title.
    pub view: &'a EventView<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    rule: String,
    /// Dedup values as canonical JSON text (hashable).
    values: Vec<String>,
    window_start: i64,
}

#[derive(Debug)]
struct Pending {
    rule: Arc<Rule>,
    id: String,
    values: Vec<Value>,
    window_start: i64,
    title: String,
    first: i64,
    last: i64,
    count: u64,
    hosts: BTreeSet<String>,
    attack: Vec<TechniqueRef>,
    query: Option<String>,
    samples: Vec<Value>,
}

/// Groups matches into alerts. Feed it with [`Aggregator::add`]; [`Aggregator::finish`]
/// returns the alerts that reached their rule's threshold.
#[derive(Debug)]
pub struct Aggregator {
    max_samples: usize,
    groups: HashMap<GroupKey, Pending>,
}

impl Aggregator {
    pub fn new(max_samples: usize) -> Self {
        Aggregator {
            max_samples,
            groups: HashMap::new(),
        }
    }

    /// Adds one match. Fails (and changes nothing) when the match has no window or key.
    pub fn add(&mut self, m: Match<'_>) -> Result<(), MatchError> {
        let spec = &m.rule.alert;
        let t = event_time(m.event).ok_or(MatchError::NoTime)?;
        let window_start = spec
            .window
            .start(t)
            .ok_or_else(|| MatchError::TimeOutOfRange {
                time: t,
                window: spec.window.to_string(),
            })?;
        // An absent field keys as null rather than failing: one rule may cover tables that
        // name a column differently (`logged_in_users.user`, `last.username`).
        let values: Vec<Value> = spec
            .dedup
            .iter()
            .map(|field| lookup(m.view, field).unwrap_or(Value::Null))
            .collect();
        let key = GroupKey {
            rule: m.rule.name.clone(),
            values: values.iter().map(Value::to_string).collect(),
            window_start,
        };
        let max_samples = self.max_samples;
        let pending = self.groups.entry(key).or_insert_with_key(|key| Pending {
            rule: Arc::clone(m.rule),
            id: alert_id(&key.rule, &key.values, key.window_start),
            values,
            window_start,
            title: spec.title.render(m.view),
            first: t,
            last: t,
            count: 0,
            hosts: BTreeSet::new(),
            attack: m.rule.techniques.clone(),
            query: m.event.query.clone(),
            samples: Vec::new(),
        });
        pending.count += 1;
        pending.first = pending.first.min(t);
        pending.last = pending.last.max(t);
        if let Some(h) = &m.event.host {
            if !pending.hosts.contains(h) {
                pending.hosts.insert(h.clone());
            }
        }
        for tag in &m.event.attack {
            if !pending.attack.iter().any(|t| t.id == tag.id) {
                pending.attack.push(TechniqueRef {
                    id: tag.id.clone(),
                    name: tag.name.clone(),
                    tactics: tag.tactics.clone(),
                    url: technique_url(&tag.id),
                });
            }
        }
        if pending.samples.len() < max_samples {
            pending.samples.push(sample(m.event, m.derived));
        }
        Ok(())
    }

    /// Alert groups seen so far (including those still below threshold).
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Groups that have not (yet) reached their rule's threshold.
    pub fn below_threshold(&self) -> usize {
        self.groups
            .values()
            .filter(|p| p.count < p.rule.alert.threshold)
            .count()
    }

    /// The alerts at or above threshold, sorted by first seen, rule name, then id, so the
    /// output is the same for the same input regardless of hash order.
    pub fn finish(self) -> Vec<Alert> {
        let mut alerts: Vec<(i64, Alert)> = self
            .groups
            .into_values()
            .filter(|p| p.count >= p.rule.alert.threshold)
            .map(|p| (p.first, p.into_alert()))
            .collect();
        alerts.sort_by(|(fa, a), (fb, b)| {
            fa.cmp(fb)
                .then_with(|| a.rule.name.cmp(&b.rule.name))
                .then_with(|| a.id.cmp(&b.id))
        });
        alerts.into_iter().map(|(_, a)| a).collect()
    }
}

impl Pending {
    fn into_alert(self) -> Alert {
        let rule = &self.rule;
        let host_count = self.hosts.len();
        Alert {
            id: self.id,
            rule: AlertRule {
                name: rule.name.clone(),
                id: rule.id.clone(),
                title: rule.title.clone(),
                level: rule.level,
                description: rule.description.clone(),
                references: rule.references.clone(),
                runbook: rule.alert.runbook.clone(),
            },
            severity: rule.level,
            title: self.title,
            dedup: Dedup {
                fields: rule.alert.dedup.clone(),
                values: self.values,
                window: rule.alert.window.to_string(),
                window_start: rfc3339(self.window_start),
            },
            first_seen: rfc3339(self.first),
            last_seen: rfc3339(self.last),
            count: self.count,
            hosts: self.hosts.into_iter().take(MAX_ALERT_HOSTS).collect(),
            host_count,
            attack: self.attack,
            query: self.query,
            samples: self.samples,
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

fn event_time(e: &Event) -> Option<i64> {
    e.unix_time
        .or_else(|| e.time.as_deref().and_then(crate::derive::parse_rfc3339))
}

fn technique_url(id: &str) -> Option<String> {
    Catalog::embedded()
        .technique(id)
        .map(|t| t.url.clone())
        .filter(|u| !u.is_empty())
}

/// The event as stored (original column types), with its `derived` object.
fn sample(event: &Event, derived: &Derived) -> Value {
    let mut v = serde_json::to_value(event).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("derived".into(), derived.to_json());
    }
    v
}

pub(crate) fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
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
    fn rfc3339_format() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_714_564_800), "2024-05-01T12:00:00Z");
    }
}
