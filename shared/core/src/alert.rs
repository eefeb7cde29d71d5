//! Alerts: rule matches grouped by rule, dedup key and time window.
//!
//! A noisy rule must produce one alert with a count, not a thousand notifications, and the
//! same alert must get the same id wherever it is computed (a CLI run, each Lambda
//! invocation that sees part of the window) so downstream stores can upsert by id. Both
//! follow from keying on `(rule name, dedup values, window start)` with a fixed-grid window
//! (`floor(t / w) * w`) instead of a sliding one that would depend on what was seen first.
//!
//! A match always counts toward an alert. An event is placed in its window by its own
//! time; one without a usable time (no `unixTime` or `calendarTime`, as in minimal test
//! events and some forwarders, or one no alert could state, such as milliseconds read as
//! seconds) is placed by the time of the object it arrived in, which the caller gives
//! ([`Match::object_time`]; see [`key_hour`]), and the alert says so in
//! [`Alert::time_from`]. An alert is the evidence of a detection: losing it because a
//! forwarder dropped a header field would be worse than a window that is only as exact as
//! the object's hour.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::attack::{Catalog, TechniqueRef};
use crate::derive::Derived;
use crate::event::Event;
use crate::rules::paths::lookup;
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
    /// Where the times above (and the window) came from: the events' own times, the time of
    /// the object they arrived in (events without a usable time), or both.
    #[serde(default)]
    pub time_from: TimeFrom,
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
    fn and(self, other: TimeFrom) -> TimeFrom {
        if self == other {
            self
        } else {
            TimeFrom::Mixed
        }
    }
}

/// Latest time an alert can state: 9999-12-31T23:59:59Z, the end of RFC 3339's four-digit
/// years.
const MAX_TIME: i64 = 253_402_300_799;

/// Whether `t` can place a match: from 1970 (osquery's times are unsigned; before it is a
/// broken clock) to [`MAX_TIME`]. Beyond, `first_seen` and the window start could not be
/// written as RFC 3339 and the alert's key would have no date.
fn usable(t: i64) -> bool {
    (0..=MAX_TIME).contains(&t)
}

/// Why a match could not become part of an alert; counted per rule as a rule error. Only an
/// unusable object time, which the caller sets, gets here: a match whose event has no usable
/// time is placed by the object's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    #[error(
        "the event has no usable time and the object time {time} is out of range for a \
         {window} dedup window"
    )]
    TimeOutOfRange { time: i64, window: String },
}

/// One rule match, borrowed from the detector for the duration of [`Aggregator::add`].
pub struct Match<'a> {
    pub rule: &'a Arc<Rule>,
    pub event: &'a Event,
    pub derived: &'a Derived,
    /// The eval view the rule matched, for dedup values and the title.
    pub view: &'a EventView<'a>,
    /// Unix seconds that place the match when the event has no usable time of its own: the
    /// time of the object the event arrived in ([`crate::rules::Detector::with_object_time`]).
    pub object_time: i64,
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
    time_from: TimeFrom,
    count: u64,
    hosts: BTreeSet<String>,
    attack: Vec<TechniqueRef>,
    query: Option<String>,
    samples: Vec<Sample>,
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

    /// Adds one match and says which time placed it ([`TimeFrom::Event`] or
    /// [`TimeFrom::Object`]). Fails (and changes nothing) only when the event has no usable
    /// time and neither has [`Match::object_time`].
    pub fn add(&mut self, m: Match<'_>) -> Result<TimeFrom, MatchError> {
        let spec = &m.rule.alert;
        let placed = |t: i64| usable(t).then(|| spec.window.start(t)).flatten();
        let (t, window_start, from) =
            match event_time(m.event).and_then(|t| placed(t).map(|start| (t, start))) {
                Some((t, start)) => (t, start, TimeFrom::Event),
                None => {
                    let t = m.object_time;
                    let start = placed(t).ok_or_else(|| MatchError::TimeOutOfRange {
                        time: t,
                        window: spec.window.to_string(),
                    })?;
                    (t, start, TimeFrom::Object)
                }
            };
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
            time_from: from,
            count: 0,
            hosts: BTreeSet::new(),
            attack: m.rule.techniques.clone(),
            query: m.event.query.clone(),
            samples: Vec::new(),
        });
        pending.count += 1;
        pending.first = pending.first.min(t);
        pending.last = pending.last.max(t);
        pending.time_from = pending.time_from.and(from);
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
        Ok(from)
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
                window_start: crate::rfc3339::format(self.window_start),
            },
            first_seen: crate::rfc3339::format(self.first),
            last_seen: crate::rfc3339::format(self.last),
            time_from: self.time_from,
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
        .or_else(|| e.time.as_deref().and_then(crate::rfc3339::parse))
}

/// The start of the hour an object is dated by in its key, in unix seconds: Firehose writes
/// `<prefix>YYYY/MM/DD/HH/<name>` (the hour it buffered the records in, UTC), and the parse
/// stage keeps that key under its own prefix (`normalized/raw/YYYY/MM/DD/HH/<name>.ndjson.zst`).
///
/// The date is the last run of `YYYY/MM/DD/HH` path segments that a name follows, whatever
/// comes before it: Firehose puts its date right before the name, and a prefix chosen by an
/// operator comes before that. `%2F` separates segments as `/` does (moto leaves `/` encoded
/// in event keys). `None` when there is no such run or its date does not exist (month 13,
/// hour 24, 31 February), never a guess.
pub fn key_hour(key: &str) -> Option<i64> {
    let key = key.replace("%2F", "/").replace("%2f", "/");
    let segments: Vec<&str> = key.split('/').collect();
    segments
        .windows(5)
        .rev()
        .filter(|w| !w[4].is_empty())
        .find_map(|w| date_hour(w[0], w[1], w[2], w[3]))
}

/// `YYYY`, `MM`, `DD`, `HH` (exactly that many digits each) as unix seconds, if that hour
/// exists.
fn date_hour(year: &str, month: &str, day: &str, hour: &str) -> Option<i64> {
    fn digits(s: &str, n: usize) -> Option<u16> {
        (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    }
    let month = time::Month::try_from(u8::try_from(digits(month, 2)?).ok()?).ok()?;
    let day = u8::try_from(digits(day, 2)?).ok()?;
    let date = time::Date::from_calendar_date(i32::from(digits(year, 4)?), month, day).ok()?;
    let hour = i64::from(digits(hour, 2)?);
    (hour < 24).then(|| date.midnight().assume_utc().unix_timestamp() + hour * 3600)
}

fn technique_url(id: &str) -> Option<String> {
    Catalog::embedded()
        .technique(id)
        .map(|t| t.url.clone())
        .filter(|u| !u.is_empty())
}

/// The event as stored (original column types), with its `derived` object.
fn sample(event: &Event, derived: &Derived) -> Sample {
    let mut v = serde_json::to_value(event).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("derived".into(), derived.to_json());
    }
    Sample::from_value(&v)
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

    /// 2026-11-22T14:00:00Z, the hour of the S3 event fixtures (`events/s3`).
    const HOUR: i64 = 1_795_356_000;

    #[test]
    fn key_hour_of_real_shaped_keys() {
        for key in [
            // What Firehose writes, and what the parse stage makes of it.
            "raw/2026/11/22/14/tripline-osquery-1-2026-11-22-14-05-00-6d1f0c2e.gz",
            "normalized/raw/2026/11/22/14/tripline-osquery-1-2026-11-22-14-05-00-6d1f0c2e.gz.ndjson.zst",
            "normalized/raw/2026/11/22/14/x.gz.ndjson.gz",
            // Other prefixes, none, deeper ones, a space in the name.
            "2026/11/22/14/x.gz",
            "logs/osquery/prod/2026/11/22/14/fleet export:host/a 1+1.ndjson.zst",
            "normalized/2026/11/22/14/fleet export:host/a 1+1.ndjson.zst",
            // moto leaves `/` encoded, in either case.
            "raw%2F2026%2F11%2F22%2F14%2Ftripline+osquery+1.gz",
            "normalized%2fraw%2f2026%2f11%2f22%2f14%2fx.gz.ndjson.zst",
        ] {
            assert_eq!(key_hour(key), Some(HOUR), "{key}");
        }
        assert_eq!(key_hour("raw/2026/11/22/00/x.gz"), Some(HOUR - 14 * 3600));
        assert_eq!(key_hour("raw/2024/02/29/23/x.gz"), Some(1_709_247_600));
        // The date nearest the name wins over a date-like prefix.
        assert_eq!(
            key_hour("archive/2020/01/01/00/raw/2026/11/22/14/x.gz"),
            Some(HOUR)
        );
    }

    #[test]
    fn keys_without_a_date_have_no_hour() {
        for key in [
            "",
            "x.gz",
            "raw/x.gz",
            // No name after the hour: a folder, not an object.
            "raw/2026/11/22/14/",
            "raw/2026/11/22/14",
            // Dates that do not exist.
            "raw/2026/13/22/14/x.gz",
            "raw/2026/00/22/14/x.gz",
            "raw/2026/02/30/14/x.gz",
            "raw/2025/02/29/14/x.gz",
            "raw/2026/11/22/24/x.gz",
            // Not exactly YYYY/MM/DD/HH.
            "raw/2026/11/22/4/x.gz",
            "raw/26/11/22/14/x.gz",
            "raw/2026/11/22/+4/x.gz",
            "raw/20260/11/22/14/x.gz",
            "raw/2026-11-22-14/x.gz",
            "raw/2026/11/22/1４/x.gz",
            // Firehose's name carries a date too, but not as path segments.
            "raw/tripline-osquery-1-2026-11-22-14-05-00-6d1f0c2e.gz",
        ] {
            assert_eq!(key_hour(key), None, "{key}");
        }
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
