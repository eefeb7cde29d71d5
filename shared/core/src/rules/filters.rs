//! Suppressions as Sigma filters: [`FilterSet`], loaded once against a [`RuleSet`] and
//! applied by the [`Detector`](super::Detector) to the matches of the rules each filter
//! names.
//!
//! The format is SigmaHQ's filter document (sigma-specification, "Sigma Filters"), as
//! pySigma and rsigma apply it, plus one optional key of ours, `expires`:
//!
//! ```yaml
//! title: BetterTouchTool and TextExpander tap the keyboard by design
//! id: 5b0e8c52-4a8f-4a55-9d3c-2f51b6a0d7e1        # optional
//! name: allow_keytap_productivity_apps              # required: counters and tests use it
//! description: IT installs both to /Applications on managed Macs.
//! date: 2026-11-22
//! expires: 2027-05-31     # optional (ours): the last day, UTC, on which the filter applies
//! logsource:              # required; must cover the logsource of every rule it names
//!   product: osquery
//! filter:
//!   rules:                # rule names or Sigma ids; `any` for every rule the logsource covers
//!     - osquery_keyboard_event_tap
//!   known_good:           # selections, as in a rule's detection
//!     columns.path:
//!       - /Applications/BetterTouchTool.app/Contents/MacOS/BetterTouchTool
//!   condition: not known_good
//! ```
//!
//! **The condition says which matches to keep.** pySigma and rsigma apply a filter by
//! adding it to each named rule's condition, `(rule condition) and (filter condition)`;
//! tripline evaluates the same thing in two steps so it can count: after a rule matched an
//! event, each of the rule's filters is evaluated (by rsigma, on the same event view), and
//! a filter whose condition is **false** suppresses the match. Hence `not known_good`. A
//! condition without any `not` is allowed (a filter can confine a rule to some hosts) but
//! warned about, because it suppresses everything its selections do not describe.
//!
//! Loading is strict, like rules: unknown keys, a missing `rules:` or `condition`, a
//! condition naming no selection, a field outside the event contract, a bad date, a name
//! or id used twice, and a rule reference that matches no rule are all errors, each naming
//! the file and line. **An unknown rule is an error**, not a warning: the filter was written
//! to silence something, and a typo in its `rules:` would otherwise leave it silently doing
//! nothing while the alerts it was meant to stop keep coming and the site believes them
//! handled. A filter naming a rule the site *disabled* only gets a warning: there is
//! nothing left to suppress, and disabling a rule for a while should not force deleting
//! its filters.
//!
//! **Expiry** is judged against the `today` the set is loaded with: an expired filter is
//! still validated but no longer applied, and a warning says so (as does one for a filter
//! expiring within a week). A process that keeps a set loaded across days reloads it after
//! [`FilterSet::valid_until`].

use std::collections::HashMap;
use std::path::Path;

use rsigma_eval::{CompiledRule, RuleFieldSet};
use rsigma_parser::{ConditionExpr, FilterRule, FilterRuleTarget, LogSource, SigmaCollection};
use time::Date;
use yaml_serde::Value;

use super::check::{add_lines, problem};
use super::load::{read_tree, SkipTests};
use super::locate::{key_line, value_line};
use super::site::is_test_path;
use super::{paths, LoadError, Problem, Rule, RuleSet};

/// Top-level keys a filter may have: the Sigma filter schema's (as rsigma parses them) and
/// `expires`. Anything else is a typo until proven otherwise (`expire:` would otherwise
/// leave a filter applying forever).
const KEYS: &[&str] = &[
    "author",
    "date",
    "description",
    "expires",
    "falsepositives",
    "fields",
    "filter",
    "id",
    "level",
    "license",
    "logsource",
    "modified",
    "name",
    "references",
    "related",
    "scope",
    "sigma-version",
    "status",
    "tags",
    "taxonomy",
    "title",
];

/// How many days ahead an expiry is warned about.
const EXPIRY_WARNING_DAYS: i64 = 7;

/// One loaded filter.
#[derive(Debug, Clone)]
pub struct Filter {
    name: String,
    id: Option<String>,
    title: String,
    source: String,
    expires: Option<Date>,
    active: bool,
    rules: Vec<String>,
    compiled: CompiledRule,
}

impl Filter {
    /// Its `name`: what [`DetectStats::suppressed_by_filter`](super::DetectStats) counts
    /// under, and the stem of its test file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its Sigma `id`, when given.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Its `title`.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The file it came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The last day it applies, when it has one.
    pub fn expires(&self) -> Option<Date> {
        self.expires
    }

    /// Whether it applies: not expired on the day the set was loaded.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The names of the rules it applies to (its `rules:` resolved against the rule set;
    /// for `any`, every rule its logsource covers).
    pub fn rules(&self) -> &[String] {
        &self.rules
    }

    /// Whether the filter suppresses a match of one of its rules on `event`: its condition
    /// does not hold there. rsigma evaluates it, as it would the filtered rule.
    pub fn suppresses(&self, event: &impl rsigma_eval::Event) -> bool {
        // `evaluate_rule`'s answer (some condition holds), without the match report it
        // builds on success: with `not known_good` that success is every match the filter
        // keeps, and the report (a second pass, field matches, clones of the title and
        // tags) was most of a filter's cost on a noisy rule. Names of matched selections
        // go in `matched`, which stays unallocated unless one matches.
        let mut matched = Vec::new();
        !self.compiled.conditions.iter().any(|c| {
            rsigma_eval::compiler::eval_condition(c, &self.compiled.detections, event, &mut matched)
        })
    }
}

/// Filters, validated and compiled once. Share it (`Arc`) between detectors:
/// [`Detector::with_filters`](super::Detector::with_filters) works out once per detector
/// which filters each rule has, so a rule without filters costs nothing per match, and a
/// set without filters nothing at all.
#[derive(Debug, Clone, Default)]
pub struct FilterSet {
    filters: Vec<Filter>,
    warnings: Vec<Problem>,
}

impl FilterSet {
    /// No filters.
    pub fn empty() -> FilterSet {
        FilterSet::default()
    }

    /// Parses, validates and compiles `(path, YAML text)` pairs, one filter per file,
    /// against `rules` (the references in each `rules:` must name rules of it), judging
    /// expiry by `today`. A path under a `tests/` directory (`filters/tests/x.yml`) is a
    /// filter test and is left out, so a site's files can be handed over as they are.
    /// Every problem in every file is reported at once.
    pub fn from_sources(
        rules: &RuleSet,
        sources: impl IntoIterator<Item = (String, String)>,
        today: Date,
    ) -> Result<FilterSet, LoadError> {
        let sources = sources.into_iter().filter(|(path, _)| !is_test_path(path));
        Self::from_files(rules, sources, today)
    }

    /// [`FilterSet::from_sources`] of files known to be filters (their labels may be any
    /// path: a directory above the filters named `tests` means nothing).
    fn from_files(
        rules: &RuleSet,
        sources: impl IntoIterator<Item = (String, String)>,
        today: Date,
    ) -> Result<FilterSet, LoadError> {
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let mut filters: Vec<Filter> = Vec::new();
        for (file, text) in sources {
            let (p0, w0) = (problems.len(), warnings.len());
            let filter = load_one(rules, &file, &text, today, &mut problems, &mut warnings);
            add_lines(&text, &mut problems[p0..]);
            add_lines(&text, &mut warnings[w0..]);
            if let Some(filter) = filter.filter(|_| problems.len() == p0) {
                filters.push(filter);
            }
        }

        // Names and ids across files.
        let mut names: HashMap<&str, &str> = HashMap::new();
        let mut ids: HashMap<String, &str> = HashMap::new();
        for f in &filters {
            if let Some(first) = names.insert(&f.name, &f.source) {
                problems.push(problem(
                    &f.source,
                    Some(&f.name),
                    "name",
                    format!("duplicate filter name, also used in {first}"),
                ));
            }
            if let Some(id) = &f.id {
                if let Some(first) = ids.insert(id.to_ascii_lowercase(), &f.source) {
                    problems.push(problem(
                        &f.source,
                        Some(&f.name),
                        "id",
                        format!("duplicate filter id {id}, also used in {first}"),
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(LoadError::Invalid(problems));
        }
        Ok(FilterSet { filters, warnings })
    }

    /// Loads every `*.yml`/`*.yaml` file under `dir` (recursively, in path order), except
    /// those under `dir/tests/` (the filters' tests) and hidden ones. An empty directory
    /// is a set without filters.
    pub fn load_dir(
        rules: &RuleSet,
        dir: impl AsRef<Path>,
        today: Date,
    ) -> Result<FilterSet, LoadError> {
        let sources = read_tree(dir.as_ref(), SkipTests::Yes)?;
        Self::from_files(rules, sources, today)
    }

    /// Every filter, expired ones included, in load order.
    pub fn filters(&self) -> &[Filter] {
        &self.filters
    }

    /// The filter named `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Filter> {
        self.filters.iter().find(|f| f.name == name)
    }

    /// How many filters (expired ones included).
    pub fn len(&self) -> usize {
        self.filters.len()
    }

    /// Whether there are no filters at all.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Non-fatal findings: expired and soon-expiring filters, filters of disabled rules,
    /// conditions without `not`, file names that differ from the filter's name.
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// The last day on which the set applies as loaded: the earliest expiry among its
    /// active filters (`None`: no active filter expires). A long-running process reloads
    /// the set after it, so an expiring filter stops applying on time.
    pub fn valid_until(&self) -> Option<Date> {
        self.filters
            .iter()
            .filter(|f| f.active)
            .filter_map(|f| f.expires)
            .min()
    }

    /// This set reduced to the filter named `name` (if any), for testing one filter alone.
    pub(crate) fn only(&self, name: &str) -> FilterSet {
        FilterSet {
            filters: self.get(name).into_iter().cloned().collect(),
            warnings: Vec::new(),
        }
    }
}

/// Today's date in UTC: the `today` the CLI and the functions load filters with.
pub fn today_utc() -> Date {
    time::OffsetDateTime::now_utc().date()
}

fn load_one(
    rules: &RuleSet,
    file: &str,
    text: &str,
    today: Date,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Option<Filter> {
    let value: Value = match yaml_serde::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let message = if e.to_string().contains("more than one document") {
                "holds several YAML documents; write one filter per file".to_string()
            } else {
                format!("not valid YAML: {e}")
            };
            problems.push(Problem {
                line: e.location().map(|l| l.line()),
                ..problem(file, None, "", message)
            });
            return None;
        }
    };
    let Some(map) = value.as_mapping() else {
        problems.push(problem(
            file,
            None,
            "",
            "not a Sigma filter: the document is not a mapping of keys (title, logsource, \
             filter, ...)"
                .into(),
        ));
        return None;
    };
    let name = map.get("name").and_then(Value::as_str).map(str::to_string);
    let rname = name.as_deref();
    macro_rules! err {
        ($field:expr, $message:expr $(,)?) => {
            problems.push(problem(file, rname, $field, $message))
        };
    }

    // The shape of the document, before rsigma reads it (it is lenient where we are not).
    if map.contains_key("detection") || map.contains_key("correlation") {
        let what = if map.contains_key("detection") {
            "a detection rule (it has `detection:`); site rules go in the rules directory"
        } else {
            "a correlation rule; tripline's rules aggregate with the tripline block instead"
        };
        err!("", format!("not a Sigma filter: this is {what}"));
        return None;
    }
    for key in map.keys() {
        match key.as_str() {
            Some(k) if KEYS.contains(&k) => {}
            Some(k) => err!(
                k,
                format!(
                    "unknown key `{k}` (a filter's keys are {})",
                    KEYS.join(", ")
                ),
            ),
            None => err!("", format!("a key must be a string, not {key:?}")),
        }
    }
    match &name {
        None => err!(
            "name",
            "missing; every filter needs a stable snake_case `name` (its counters and its \
             tests use it)"
                .into(),
        ),
        Some(n) if !super::check::is_snake_case(n) => err!(
            "name",
            format!("{n:?} is not snake_case (lowercase letters, digits, single `_`)"),
        ),
        Some(_) => {}
    }
    if !map.get("logsource").is_some_and(Value::is_mapping) {
        err!(
            "logsource",
            "missing: Sigma filters need one (e.g. `logsource: {product: osquery}`), and it \
             must cover the logsource of every rule in `rules:`"
                .into(),
        );
    }
    let expires = match map.get("expires") {
        None => None,
        Some(v) => match v.as_str().and_then(parse_date) {
            Some(d) => Some(d),
            None => {
                err!(
                    "expires",
                    format!(
                        "{} is not a date like 2027-01-31 (the last day the filter applies)",
                        yaml_text(v)
                    ),
                );
                None
            }
        },
    };
    // Problems in the `filter:` section keep rsigma from reading it; the others (a typo in a
    // key, a bad date) don't, so rsigma still checks the rest and every problem is found.
    let p0 = problems.len();
    match map.get("filter") {
        Some(Value::Mapping(fm)) => {
            match fm.get("rules") {
                None => err!(
                    "filter.rules",
                    "missing: name the rules the filter applies to (names or ids), or `any`".into(),
                ),
                Some(Value::String(_)) => {}
                Some(Value::Sequence(list)) if list.is_empty() => err!(
                    "filter.rules",
                    "empty: name the rules the filter applies to, or write `any`".into(),
                ),
                Some(Value::Sequence(list)) => {
                    if let Some(bad) = list.iter().find(|v| !v.is_string()) {
                        err!(
                            "filter.rules",
                            format!("{} is not a rule name or id", yaml_text(bad)),
                        );
                    }
                }
                Some(other) => err!(
                    "filter.rules",
                    format!(
                        "{} is not a rule name, id or list of them",
                        yaml_text(other)
                    ),
                ),
            }
            match fm.get("condition") {
                None => err!(
                    "filter.condition",
                    "missing: say which matches to keep, e.g. `condition: not known_good`".into(),
                ),
                Some(Value::String(_)) => {}
                Some(_) => err!(
                    "filter.condition",
                    "must be one condition (a string), e.g. `not known_good`".into(),
                ),
            }
            let selections = fm
                .keys()
                .filter(|k| !matches!(k.as_str(), Some("rules" | "condition")))
                .count();
            if selections == 0 {
                err!(
                    "filter",
                    "has no selection: describe the events to suppress next to `rules:` and \
                     `condition:`"
                        .into(),
                );
            }
        }
        Some(_) => err!(
            "filter",
            "must be a mapping of `rules:`, selections and `condition:`".into(),
        ),
        None => err!("filter", "missing".into()),
    }
    if problems.len() > p0 {
        // What rsigma would say about the section would only repeat that.
        return None;
    }

    // rsigma reads the document; its findings are ours.
    let collection = match rsigma_parser::parse_sigma_yaml(text) {
        Ok(c) => c,
        Err(e) => {
            err!("", format!("not a valid Sigma filter: {e}"));
            return None;
        }
    };
    for e in &collection.errors {
        err!("", format!("not a valid Sigma filter: {e}"));
    }
    let Some(sigma) = collection.filters.into_iter().next() else {
        if collection.errors.is_empty() {
            err!("", "not a Sigma filter".into());
        }
        return None;
    };
    let name = name.unwrap_or_default();

    let compiled = compile(&sigma, |field, message, needle| {
        let line = needle.and_then(|n| value_line(text, key_line(text, "filter")?, n));
        problems.push(Problem {
            line,
            ..problem(file, Some(&name), field, message)
        })
    });
    let targets = resolve(rules, &sigma, file, text, &name, problems, warnings);
    if !has_not(sigma.detection.conditions.first()) {
        let cond = sigma
            .detection
            .condition_strings
            .first()
            .cloned()
            .unwrap_or_default();
        warnings.push(problem(
            file,
            Some(&name),
            "filter.condition",
            format!(
                "`{cond}` has no `not`: a filter's condition says which matches to KEEP, so \
                 this one suppresses every match its selections do not describe (to \
                 suppress what they describe, write `not {cond}`)"
            ),
        ));
    }
    let active = match expires {
        Some(last) if today > last => {
            warnings.push(problem(
                file,
                Some(&name),
                "expires",
                format!("expired on {last}: the filter no longer applies; renew or remove it"),
            ));
            false
        }
        Some(last) if (last - today).whole_days() < EXPIRY_WARNING_DAYS => {
            let days = (last - today).whole_days();
            warnings.push(problem(
                file,
                Some(&name),
                "expires",
                format!(
                    "expires on {last}: it applies for {} more day(s), then its rules alert \
                     again",
                    days + 1
                ),
            ));
            true
        }
        _ => true,
    };
    if let Some(stem) = Path::new(file).file_stem().and_then(|s| s.to_str()) {
        if stem != name {
            warnings.push(problem(
                file,
                Some(&name),
                "name",
                format!("file is named {stem:?}; its tests go in tests/{name}.yml"),
            ));
        }
    }
    Some(Filter {
        id: sigma.id.clone(),
        title: sigma.title.clone(),
        source: file.to_string(),
        expires,
        active,
        rules: targets?,
        compiled: compiled?,
        name,
    })
}

/// The filter's detection compiled as a rule of its own (its selections and condition), by
/// rsigma's compiler: the same checks (every identifier in the condition names a
/// selection, modifiers, regexes) and the same evaluator as the rules.
///
/// `err(field, message, text the problem is about)`.
fn compile(
    sigma: &FilterRule,
    mut err: impl FnMut(&str, String, Option<&str>),
) -> Option<CompiledRule> {
    let rule = rsigma_parser::SigmaRule {
        title: sigma.title.clone(),
        logsource: sigma.logsource.clone().unwrap_or_default(),
        detection: sigma.detection.clone(),
        sigma_version: sigma.sigma_version,
        id: sigma.id.clone(),
        name: sigma.name.clone(),
        related: Vec::new(),
        taxonomy: None,
        status: None,
        description: None,
        license: None,
        author: None,
        references: Vec::new(),
        date: None,
        modified: None,
        fields: Vec::new(),
        falsepositives: Vec::new(),
        level: None,
        tags: Vec::new(),
        scope: Vec::new(),
        custom_attributes: Default::default(),
    };
    // Every field the filter reads must exist in the event contract, as for rules: a
    // misspelt field never matches, and `not` of it would suppress every match.
    let single = SigmaCollection {
        rules: vec![rule],
        correlations: vec![],
        filters: vec![],
        errors: vec![],
    };
    let mut ok = true;
    for field in RuleFieldSet::collect(&single, &[], false).names() {
        if let Err(m) = paths::check_path(field) {
            err("filter", m, Some(field));
            ok = false;
        }
    }
    match rsigma_eval::compile_rule(&single.rules[0]) {
        Ok(c) => ok.then_some(c),
        Err(e) => {
            err("filter.condition", format!("does not compile: {e}"), None);
            None
        }
    }
}

/// The names of the rules the filter applies to.
fn resolve(
    rules: &RuleSet,
    sigma: &FilterRule,
    file: &str,
    text: &str,
    name: &str,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Option<Vec<String>> {
    let logsource = sigma.logsource.clone().unwrap_or_default();
    let rules_line = key_line(text, "filter.rules");
    let at = |needle: &str| {
        rules_line
            .and_then(|l| value_line(text, l, needle))
            .or(rules_line)
    };
    let before = problems.len();
    let mut out: Vec<String> = Vec::new();
    let refs: &[String] = match &sigma.rules {
        FilterRuleTarget::Any => &[],
        FilterRuleTarget::Specific(refs) => refs,
    };
    // pySigma reads `all` as `any`; rsigma only knows `any`.
    let any = matches!(sigma.rules, FilterRuleTarget::Any)
        || (refs.len() == 1 && refs[0].eq_ignore_ascii_case("all"));
    if any {
        out.extend(
            rules
                .rules()
                .iter()
                .filter(|r| covers(&logsource, r))
                .map(|r| r.name.clone()),
        );
        if out.is_empty() {
            problems.push(Problem {
                line: rules_line,
                ..problem(
                    file,
                    Some(name),
                    "filter.rules",
                    format!(
                        "`any` with logsource {} covers no rule, so the filter would never apply",
                        describe(&logsource)
                    ),
                )
            });
        }
    }
    for reference in refs.iter().filter(|_| !any) {
        let found = rules
            .rules()
            .iter()
            .find(|r| r.name == *reference || r.id.eq_ignore_ascii_case(reference.trim()));
        let mut fail = |message: String| {
            problems.push(Problem {
                line: at(reference),
                ..problem(file, Some(name), "filter.rules", message)
            })
        };
        match found {
            Some(rule) if !covers(&logsource, rule) => fail(format!(
                "the filter's logsource {} does not cover {}'s ({}), so Sigma tools would not \
                 apply it there",
                describe(&logsource),
                rule.name,
                describe(&rule_logsource(rule))
            )),
            Some(rule) => {
                if !out.contains(&rule.name) {
                    out.push(rule.name.clone());
                }
            }
            None if rules.disabled().iter().any(|d| d == reference) => warnings.push(Problem {
                line: at(reference),
                ..problem(
                    file,
                    Some(name),
                    "filter.rules",
                    format!("{reference} is disabled: nothing of it to suppress"),
                )
            }),
            None => {
                let titled = rules.rules().iter().find(|r| r.title == *reference);
                fail(match titled {
                    Some(r) => format!(
                        "no rule named {reference:?}; that is the title of {} (refer to rules \
                         by name or id: titles change)",
                        r.name
                    ),
                    None => format!(
                        "no rule named {reference:?} and none with that id: a filter of a rule \
                         that does not exist would suppress nothing"
                    ),
                })
            }
        }
    }
    (problems.len() == before).then_some(out)
}

/// Whether a filter with logsource `filter` applies to `rule`, as pySigma and rsigma decide:
/// each of category, product and service the filter sets, the rule has, with the same
/// value (case-insensitive).
fn covers(filter: &LogSource, rule: &Rule) -> bool {
    let same = |f: &Option<String>, r: &Option<String>| match f {
        None => true,
        Some(f) => r.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(f)),
    };
    same(&filter.category, &rule.category)
        && same(&filter.product, &rule.product)
        && same(&filter.service, &rule.service)
}

fn rule_logsource(rule: &Rule) -> LogSource {
    LogSource {
        category: rule.category.clone(),
        product: rule.product.clone(),
        service: rule.service.clone(),
        ..LogSource::default()
    }
}

fn describe(l: &LogSource) -> String {
    let parts: Vec<String> = [
        ("category", &l.category),
        ("product", &l.product),
        ("service", &l.service),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
    .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Whether a condition negates anything.
fn has_not(c: Option<&ConditionExpr>) -> bool {
    match c {
        None => false,
        Some(ConditionExpr::Not(_)) => true,
        Some(ConditionExpr::And(v) | ConditionExpr::Or(v)) => v.iter().any(|c| has_not(Some(c))),
        Some(_) => false,
    }
}

/// A YAML value as the user wrote it, more or less, for messages.
fn yaml_text(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => yaml_serde::to_string(other)
            .map(|s| s.trim_end().to_string())
            .unwrap_or_else(|_| format!("{other:?}")),
    }
}

/// `YYYY-MM-DD`, and nothing else: a date written another way (`2027-1-31`, `31.01.2027`)
/// is refused rather than guessed at.
fn parse_date(s: &str) -> Option<Date> {
    let b = s.trim().as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits(0..4)
        || !digits(5..7)
        || !digits(8..10)
    {
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    let year: i32 = s[0..4].parse().ok()?;
    let month: u8 = s[5..7].parse().ok()?;
    let day: u8 = s[8..10].parse().ok()?;
    Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

#[cfg(test)]
mod tests {
    use rsigma_eval::event::JsonEvent;
    use serde_json::json;

    use super::*;

    /// `Filter::suppresses` answers as rsigma's `evaluate_rule` does (no match: suppressed),
    /// whatever the condition's shape.
    #[test]
    fn suppresses_agrees_with_evaluate_rule() {
        let rules = RuleSet::from_sources([(
            "a.yml",
            crate::rules::tests::crontab_rule("cron_a", 1, "1h").as_str(),
        )])
        .unwrap();
        let selections = "  sel_user:\n    columns.user: alice\n  sel_cmd:\n    \
                          columns.command|contains: backup\n  sel_host:\n    \
                          host|startswith: ci-";
        let conditions = [
            "not sel_user",
            "sel_user",
            "not (sel_user and sel_cmd)",
            "not sel_user or sel_host",
            "not 1 of sel_*",
            "not all of sel_*",
            "1 of sel_* and not sel_host",
        ];
        let events = [
            json!({"host": "ci-1", "columns": {"user": "alice", "command": "backup.sh"}}),
            json!({"host": "web-1", "columns": {"user": "alice", "command": "ls"}}),
            json!({"host": "web-1", "columns": {"user": "bob", "command": "backup"}}),
            json!({"host": "ci-2", "columns": {"user": "bob"}}),
            json!({"columns": {}}),
        ];
        for condition in conditions {
            let text = format!(
                "title: t\nname: f\nlogsource:\n  product: osquery\nfilter:\n  rules: any\n\
                 {selections}\n  condition: {condition}\n"
            );
            let set = FilterSet::from_sources(
                &rules,
                [("f.yml".to_string(), text)],
                Date::from_calendar_date(2026, time::Month::December, 3).unwrap(),
            )
            .unwrap_or_else(|e| panic!("{condition}: {e}"));
            let f = &set.filters()[0];
            for e in &events {
                let view = JsonEvent::borrow(e);
                assert_eq!(
                    f.suppresses(&view),
                    rsigma_eval::evaluate_rule(&f.compiled, &view).is_none(),
                    "{condition} on {e}"
                );
            }
        }
    }
}
