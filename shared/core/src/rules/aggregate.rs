//! Aggregation: rule matches grouped into [`Alert`]s by rule, dedup key and time window.
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
//! ([`Match::object_time`]; see [`crate::layout::key_hour`]), and the alert says so in
//! [`Alert::time_from`]. An alert is the evidence of a detection: losing it because a
//! forwarder dropped a header field would be worse than a window that is only as exact as
//! the object's hour.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use crate::alert::{alert_id, Alert, AlertRule, Dedup, Sample, TimeFrom, MAX_ALERT_HOSTS};
use crate::attack::{Catalog, TechniqueRef, Techniques};
use crate::derive::Derived;
use crate::event::Event;
use crate::rules::paths::lookup;
use crate::rules::{EventView, Rule};

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
    /// The match fell back on the object time, which cannot place it in a window.
    TimeOutOfRange {
        /// The object time, in Unix seconds.
        time: i64,
        /// The rule's dedup window, as written.
        window: String,
    },
}

/// One rule match, borrowed from the detector for the duration of [`Aggregator::add`].
pub struct Match<'a> {
    /// The rule that matched.
    pub rule: &'a Arc<Rule>,
    /// The event it matched.
    pub event: &'a Event,
    /// The event's derived fields, copied into the alert's sample.
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
    window_start: i64,
    title: String,
    first: i64,
    last: i64,
    time_from: TimeFrom,
    count: u64,
    hosts: Hosts,
    /// The techniques of matching events, as the events' own shared lists: only the lists
    /// that brought an id the rule's techniques and the lists before them did not have,
    /// in the order they came (the alert's `attack` is built from them at the end).
    event_techniques: Vec<Techniques>,
    query: Option<String>,
    samples: Vec<Sample>,
}

/// A group's distinct hosts, sorted. Most alerts have one host, and a B-tree's first node
/// has room for eleven: a sorted `Vec` holds them until there are more than
/// [`Hosts::FEW`], where inserting into its middle would start to cost more than the tree.
#[derive(Debug)]
enum Hosts {
    Few(Vec<String>),
    Many(BTreeSet<String>),
}

impl Hosts {
    const FEW: usize = 32;

    fn insert(&mut self, host: &str) {
        match self {
            Hosts::Few(list) => {
                if let Err(at) = list.binary_search_by(|h| h.as_str().cmp(host)) {
                    if list.len() < Hosts::FEW {
                        list.insert(at, host.to_owned());
                    } else {
                        let mut set: BTreeSet<String> = std::mem::take(list).into_iter().collect();
                        set.insert(host.to_owned());
                        *self = Hosts::Many(set);
                    }
                }
            }
            Hosts::Many(set) => {
                if !set.contains(host) {
                    set.insert(host.to_owned());
                }
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Hosts::Few(list) => list.len(),
            Hosts::Many(set) => set.len(),
        }
    }

    /// The first `n`, in order.
    fn first(self, n: usize) -> Vec<String> {
        match self {
            Hosts::Few(mut list) => {
                list.truncate(n);
                list
            }
            Hosts::Many(set) => set.into_iter().take(n).collect(),
        }
    }
}

/// Groups matches into alerts. Feed it with [`Aggregator::add`]; [`Aggregator::finish`]
/// returns the alerts that reached their rule's threshold.
#[derive(Debug)]
pub struct Aggregator {
    max_samples: usize,
    groups: HashMap<GroupKey, Pending>,
}

/// Techniques from `extra` not in `first`, each once, in order, after `first`.
fn merged_techniques(first: &[TechniqueRef], extra: &[Techniques]) -> Vec<TechniqueRef> {
    let mut out = first.to_vec();
    for tag in extra.iter().flat_map(|list| list.iter()) {
        if !out.iter().any(|t| t.id == tag.id) {
            out.push(TechniqueRef {
                id: tag.id.clone(),
                name: tag.name.clone(),
                tactics: tag.tactics.clone(),
                url: technique_url(&tag.id),
            });
        }
    }
    out
}

impl Aggregator {
    /// An aggregator keeping up to `max_samples` matching events per alert.
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
            window_start,
            title: spec.title.render(m.view),
            first: t,
            last: t,
            time_from: from,
            count: 0,
            hosts: Hosts::Few(Vec::new()),
            event_techniques: Vec::new(),
            query: m.event.query.clone(),
            samples: Vec::new(),
        });
        pending.count += 1;
        pending.first = pending.first.min(t);
        pending.last = pending.last.max(t);
        pending.time_from = pending.time_from.and(from);
        if let Some(h) = &m.event.host {
            pending.hosts.insert(h);
        }
        let known = |id: &str| {
            m.rule.techniques.iter().any(|t| t.id == id)
                || pending
                    .event_techniques
                    .iter()
                    .flat_map(|list| list.iter())
                    .any(|t| t.id == id)
        };
        if m.event.attack.iter().any(|tag| !known(&tag.id)) {
            pending.event_techniques.push(m.event.attack.clone());
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

    /// Whether no match has been added.
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
        // Every alert of a rule carries the same rule, and most the same techniques: each
        // is made once and shared.
        let mut rules: HashMap<String, Arc<AlertRule>> = HashMap::new();
        // `Techniques` hashes and compares its list alone; the lazily written JSON it also
        // holds is derived from the list, so a key cannot change under the map.
        #[allow(clippy::mutable_key_type)]
        let mut attack: HashMap<(String, Vec<Techniques>), Techniques> = HashMap::new();
        let mut alerts: Vec<(i64, Alert)> = self
            .groups
            .into_iter()
            .filter(|(_, p)| p.count >= p.rule.alert.threshold)
            .map(|(key, mut p)| {
                let rule = rules
                    .entry(p.rule.name.clone())
                    .or_insert_with(|| Arc::new(AlertRule::of(&p.rule)));
                let techniques = std::mem::take(&mut p.event_techniques);
                let techniques = attack
                    .entry((p.rule.name.clone(), techniques))
                    .or_insert_with_key(|(_, extra)| {
                        merged_techniques(&p.rule.techniques, extra).into()
                    });
                let first = p.first;
                (
                    first,
                    p.into_alert(&key.values, Arc::clone(rule), techniques.clone()),
                )
            })
            .collect();
        alerts.sort_by(|(fa, a), (fb, b)| {
            fa.cmp(fb)
                .then_with(|| a.rule.name.cmp(&b.rule.name))
                .then_with(|| a.id.cmp(&b.id))
        });
        alerts.into_iter().map(|(_, a)| a).collect()
    }
}

impl AlertRule {
    fn of(rule: &Rule) -> AlertRule {
        AlertRule {
            name: rule.name.clone(),
            id: rule.id.clone(),
            title: rule.title.clone(),
            level: rule.level,
            description: rule.description.clone(),
            references: rule.references.clone(),
            runbook: rule.alert.runbook.clone(),
            storm: rule.alert.storm,
        }
    }
}

impl Pending {
    /// `values`: the group's dedup values as their JSON text (its key), read back into the
    /// values they were written from.
    fn into_alert(
        self,
        values: &[String],
        alert_rule: Arc<AlertRule>,
        attack: Techniques,
    ) -> Alert {
        let rule = &self.rule;
        let host_count = self.hosts.len();
        Alert {
            id: self.id,
            rule: alert_rule,
            severity: rule.level,
            title: self.title,
            dedup: Dedup {
                fields: rule.alert.dedup.clone(),
                values: values
                    .iter()
                    .map(|v| serde_json::from_str(v).expect("a dedup value's JSON text"))
                    .collect(),
                window: rule.alert.window.to_string(),
                window_start: crate::rfc3339::format(self.window_start),
            },
            first_seen: crate::rfc3339::format(self.first),
            last_seen: crate::rfc3339::format(self.last),
            time_from: self.time_from,
            count: self.count,
            hosts: self.hosts.first(MAX_ALERT_HOSTS),
            host_count,
            attack,
            query: self.query,
            samples: self.samples,
        }
    }
}

fn event_time(e: &Event) -> Option<i64> {
    e.unix_time
        .or_else(|| e.time.as_deref().and_then(crate::rfc3339::parse))
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
    fn hosts_are_distinct_and_sorted_across_the_switch_to_a_tree() {
        for n in [0, 1, Hosts::FEW, Hosts::FEW + 1, 150] {
            let mut hosts = Hosts::Few(Vec::new());
            let mut want = BTreeSet::new();
            // Every host twice, in an order that is neither sorted nor reversed.
            for i in (0..2 * n).map(|i| (i * 7919) % n.max(1)) {
                let h = format!("host-{i}");
                hosts.insert(&h);
                want.insert(h);
            }
            assert_eq!(hosts.len(), want.len());
            let first: Vec<String> = want.into_iter().take(MAX_ALERT_HOSTS).collect();
            assert_eq!(hosts.first(MAX_ALERT_HOSTS), first, "{n} hosts");
        }
    }
}
