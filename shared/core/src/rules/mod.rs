//! Sigma rules with a `tripline:` block: loaded and validated once, compiled once with
//! rsigma-eval, evaluated against every event.
//!
//! Validation is strict and reports every problem at once, naming the file and field:
//! a rule that loads but can never fire (misspelt field, unknown technique, bad window)
//! is worse than one that refuses to load, because nobody notices the silence.
//!
//! Rules are compiled into one [`rsigma_eval::Engine`]. Each rule also gets a gate (see
//! `rules/gate/`), a necessary condition such as `query == crontab` derived once per rule set,
//! so most rules are skipped with a string comparison; the rest are evaluated by rsigma,
//! reading the event through one zero-copy [`EventView`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rsigma_eval::{Engine, RuleFieldSet};
use rsigma_parser::{SigmaCollection, SigmaRule};
use serde::{Deserialize, Serialize};

use crate::attack::{parse_tag, Catalog, Resolution, TechniqueRef};
use gate::{ByPath, EventLookups, Gate, RunMemo, Source};

pub mod detector;
mod gate;
pub mod paths;
pub mod testing;
mod view;

pub use detector::{DetectReport, DetectStats, Detector};
pub use paths::Template;
pub use view::{eval_view, EventView};

/// The rule files and test files of the repository's `rules/` directory, embedded at build
/// time by `build.rs`: `(file name, contents)`, sorted by file name.
pub mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_content.rs"));
}

/// Sigma `level`, ordered so `--fail-on high` can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Informational,
        Level::Low,
        Level::Medium,
        Level::High,
        Level::Critical,
    ];

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

impl From<rsigma_parser::Level> for Level {
    fn from(l: rsigma_parser::Level) -> Level {
        match l {
            rsigma_parser::Level::Informational => Level::Informational,
            rsigma_parser::Level::Low => Level::Low,
            rsigma_parser::Level::Medium => Level::Medium,
            rsigma_parser::Level::High => Level::High,
            rsigma_parser::Level::Critical => Level::Critical,
        }
    }
}

/// A dedup window, e.g. `24h`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub seconds: u64,
    /// As the rule wrote it, so alerts say `24h` rather than a normalized `1d`.
    text: String,
}

/// Longest accepted window: beyond a year, "dedup forever" is what is meant, and a year
/// already does that in practice.
const MAX_WINDOW_SECS: u64 = 366 * 86_400;

impl Window {
    /// Parses `<n><unit>` with unit `s`, `m`, `h` or `d`.
    pub fn parse(s: &str) -> Result<Window, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a duration like 30m, 24h or 7d"))?;
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => {
                return Err(format!(
                    "{s:?}: unit must be s, m, h or d (e.g. 30m, 24h, 7d)"
                ))
            }
        };
        let seconds = n.saturating_mul(mult);
        if seconds == 0 || seconds > MAX_WINDOW_SECS {
            return Err(format!("{s:?}: window must be between 1s and 366d"));
        }
        Ok(Window {
            seconds,
            text: t.to_string(),
        })
    }

    /// Start of the window containing `unix_time`: `floor(t / w) * w`, so every process
    /// (CLI run, Lambda invocation) puts an event in the same window without shared state.
    /// `None` when that start is not representable (a hostile `unixTime` near `i64::MIN`).
    pub fn start(&self, unix_time: i64) -> Option<i64> {
        let w = self.seconds as i64;
        unix_time.div_euclid(w).checked_mul(w)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The validated `tripline:` block: how matches become alerts.
#[derive(Debug, Clone)]
pub struct AlertSpec {
    pub title: Template,
    pub dedup: Vec<String>,
    pub window: Window,
    pub threshold: u64,
    pub runbook: Option<String>,
    /// Also alert on `derived.stale` rows.
    pub stale: bool,
    /// Alert on a query's first run (`derived.initial`); `false` suppresses those matches.
    pub initial: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertSpec {
    title: Option<String>,
    dedup: Option<Vec<String>>,
    window: Option<String>,
    threshold: Option<i64>,
    runbook: Option<String>,
    stale: Option<bool>,
    initial: Option<bool>,
}

/// One loaded rule: Sigma metadata, resolved ATT&CK techniques and the alert spec.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable snake_case identifier used in alerts, tests and `--fail-on` output.
    pub name: String,
    /// The Sigma `id` (UUID).
    pub id: String,
    pub title: String,
    pub status: Option<String>,
    pub description: Option<String>,
    pub references: Vec<String>,
    pub level: Level,
    pub tags: Vec<String>,
    /// Techniques from `attack.tNNNN` tags, resolved to current ATT&CK IDs.
    pub techniques: Vec<TechniqueRef>,
    /// Tactic shortnames from `attack.<tactic>` tags.
    pub tactics: Vec<String>,
    pub falsepositives: Vec<String>,
    pub product: Option<String>,
    pub service: Option<String>,
    pub category: Option<String>,
    /// Where the rule came from (file name or path), for messages.
    pub source: String,
    pub alert: AlertSpec,
}

/// One problem found while loading rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    /// The rule's `name`, when known.
    pub rule: Option<String>,
    /// The offending field (`tripline.window`, `tags`, `detection`), when known.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(r) = &self.rule {
            write!(f, " ({r})")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a rule set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The I/O error is in the message, not chained, so anyhow's `{:#}` does not repeat it.
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("no Sigma rules (*.yml, *.yaml) found in {0}")]
    Empty(String),
    #[error("{} problem(s) in rules:\n  {}", .0.len(), join_problems(.0))]
    Invalid(Vec<Problem>),
}

impl LoadError {
    /// Every problem, for `rules check` to print one per line.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            LoadError::Invalid(p) => p.clone(),
            other => vec![Problem {
                file: String::new(),
                rule: None,
                field: None,
                message: other.to_string(),
            }],
        }
    }
}

fn join_problems(p: &[Problem]) -> String {
    p.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// A compiled, validated rule set. Build it once (it compiles every rule) and share it:
/// evaluation takes `&self`.
pub struct RuleSet {
    rules: Vec<Arc<Rule>>,
    engine: Engine,
    /// Per compiled rule (`engine.rules()`, same order): its gate and the index into
    /// `rules` its matches count for.
    gates: Vec<(Gate, Option<usize>)>,
    /// The fields the gates look up.
    gate_fields: gate::GateFields,
    /// The gates filed by the field values that can satisfy them.
    gate_index: gate::Index,
    by_name: HashMap<String, usize>,
    warnings: Vec<Problem>,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field("warnings", &self.warnings.len())
            .finish()
    }
}

impl RuleSet {
    /// The rules shipped in the repository's `rules/sigma/`, embedded in the binary.
    pub fn builtin() -> Result<RuleSet, LoadError> {
        if builtin::SIGMA_RULES.is_empty() {
            return Err(LoadError::Empty("the built-in rule pack".into()));
        }
        Self::from_sources(builtin::SIGMA_RULES.iter().copied())
    }

    /// Loads every `*.yml`/`*.yaml` file under `dir` (recursively, in path order).
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<RuleSet, LoadError> {
        let dir = dir.as_ref();
        let files = yaml_files(dir)?;
        if files.is_empty() {
            return Err(LoadError::Empty(dir.display().to_string()));
        }
        let mut sources = Vec::with_capacity(files.len());
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|error| LoadError::Io {
                path: path.display().to_string(),
                error,
            })?;
            sources.push((path.display().to_string(), text));
        }
        Self::from_sources(sources.iter().map(|(n, t)| (n.as_str(), t.as_str())))
    }

    /// Parses, validates and compiles `(file label, YAML text)` pairs. All problems across
    /// all files are collected before failing.
    pub fn from_sources<'a, I>(sources: I) -> Result<RuleSet, LoadError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let catalog = Catalog::embedded();
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let mut parsed: Vec<(Rule, SigmaRule)> = Vec::new();
        for (file, text) in sources {
            parse_file(
                catalog,
                file,
                text,
                &mut parsed,
                &mut problems,
                &mut warnings,
            );
        }

        // Uniqueness across files.
        let mut names: HashMap<&str, &str> = HashMap::new();
        let mut ids: HashMap<String, &str> = HashMap::new();
        for (rule, _) in &parsed {
            if let Some(first) = names.insert(&rule.name, &rule.source) {
                problems.push(problem(
                    &rule.source,
                    Some(&rule.name),
                    "name",
                    format!("duplicate rule name, also used in {first}"),
                ));
            }
            if let Some(first) = ids.insert(rule.id.to_ascii_lowercase(), &rule.source) {
                problems.push(problem(
                    &rule.source,
                    Some(&rule.name),
                    "id",
                    format!("duplicate rule id {}, also used in {first}", rule.id),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(LoadError::Invalid(problems));
        }

        let mut engine = Engine::new();
        for (idx, err) in engine.add_rules(parsed.iter().map(|(_, s)| s)) {
            let (rule, _) = &parsed[idx];
            problems.push(problem(
                &rule.source,
                Some(&rule.name),
                "detection",
                format!("does not compile: {err}"),
            ));
        }
        if !problems.is_empty() {
            return Err(LoadError::Invalid(problems));
        }

        let rules: Vec<Arc<Rule>> = parsed.into_iter().map(|(r, _)| Arc::new(r)).collect();
        let by_id: HashMap<&str, usize> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str(), i))
            .collect();
        let mut gate_fields = gate::GateFields::default();
        let gates = engine
            .rules()
            .iter()
            .map(|compiled| {
                // Every compiled rule carries the UUID we validated and indexed, so the
                // lookup only misses if rsigma changes how it keeps ids; such a rule's
                // matches are ignored rather than attributed to the wrong rule.
                let idx = compiled.id.as_deref().and_then(|id| by_id.get(id)).copied();
                (Gate::of_rule(compiled, &mut gate_fields), idx)
            })
            .collect::<Vec<_>>();
        let gate_index = gate::Index::new(gates.iter().map(|(g, _)| g), &gate_fields);
        let by_name = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        Ok(RuleSet {
            rules,
            engine,
            gates,
            gate_fields,
            gate_index,
            by_name,
            warnings,
        })
    }

    /// The osquery tables a rule can fire on: what its `tables` selections require of every
    /// match (from its gate), sorted. `None` when a match may come from any table (the rule
    /// also matches on a pack or name, or selects on columns alone).
    pub fn tables_of(&self, rule: usize) -> Option<Vec<String>> {
        let mut tables: Vec<String> = Vec::new();
        let mut any = false;
        for (gate, _) in self.gates.iter().filter(|(_, r)| *r == Some(rule)) {
            any = true;
            tables.extend(gate.required("tables", &self.gate_fields)?);
        }
        tables.sort_unstable();
        tables.dedup();
        any.then_some(tables)
    }

    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Rule>> {
        self.by_name.get(name).map(|&i| &self.rules[i])
    }

    /// Non-fatal findings (revoked technique IDs that were remapped, rules without ATT&CK
    /// techniques, file names that differ from the rule name, rules that select on a query
    /// name without a table).
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// Indices (into [`RuleSet::rules`]) of the rules matching one eval view, in ascending
    /// order. Never fails: rsigma does all fallible work (regexes, CIDRs, modifiers) at
    /// compile time, and evaluation itself is total.
    ///
    /// Each rule's gate is checked first and rsigma evaluates only the rules it admits;
    /// the gate is a necessary condition, so the answer is the engine's own. Here the gates
    /// read `view` by field path; the [`Detector`] has them read its [`EventView`] through
    /// paths resolved once per rule set, and remember values from one event to the next.
    pub fn matching(&self, view: &impl rsigma_eval::Event) -> Vec<usize> {
        self.matching_through(&ByPath(view), view, None)
    }

    /// [`RuleSet::matching`] of the view the [`Detector`] builds. `memo` carries what the
    /// gates can reuse from one event to the next; it must only ever be used with this
    /// rule set.
    pub(crate) fn matching_view(&self, view: &EventView<'_>, memo: &mut RunMemo) -> Vec<usize> {
        self.matching_through(view, view, Some(memo))
    }

    /// The gates read `source`, rsigma reads `view`: the same event.
    fn matching_through(
        &self,
        source: &impl Source,
        view: &impl rsigma_eval::Event,
        memo: Option<&mut RunMemo>,
    ) -> Vec<usize> {
        let lookups = EventLookups::new(source, &self.gate_fields, memo);
        let compiled = self.engine.rules();
        // Only the gates the index picks out can pass; the rest are skipped unchecked.
        let mut out: Vec<usize> = self
            .gate_index
            .candidates(&lookups)
            .into_iter()
            .filter_map(|pos| {
                let (gate, idx) = &self.gates[pos as usize];
                let hit = gate.admits(&lookups)
                    && rsigma_eval::evaluate_rule(&compiled[pos as usize], view).is_some();
                hit.then_some(*idx).flatten()
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// [`RuleSet::matching`] through rsigma's engine alone, without the gates: the
    /// reference the gates are tested against.
    #[cfg(test)]
    pub(crate) fn matching_ungated(&self, view: &impl rsigma_eval::Event) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .engine
            .evaluate(view)
            .iter()
            .filter_map(|r| {
                let id = r.header.rule_id.as_deref()?;
                self.rules.iter().position(|rule| rule.id == id)
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    #[cfg(test)]
    pub(crate) fn open_gates(&self) -> Vec<&str> {
        self.gates
            .iter()
            .filter(|(g, _)| g.is_open())
            .filter_map(|(_, idx)| idx.map(|i| self.rules[i].name.as_str()))
            .collect()
    }
}

fn problem(file: &str, rule: Option<&str>, field: &str, message: String) -> Problem {
    Problem {
        file: file.to_string(),
        rule: rule.map(str::to_string),
        field: (!field.is_empty()).then(|| field.to_string()),
        message,
    }
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), LoadError> {
        let io = |error| LoadError::Io {
            path: dir.display().to_string(),
            error,
        };
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if path.is_dir() {
                // Bounded so a symlink loop cannot recurse forever.
                if depth < 16 {
                    walk(&path, out, depth + 1)?;
                }
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml")
            ) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out, 0)?;
    out.sort();
    Ok(out)
}

fn is_snake_case(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.ends_with('_')
        && !s.contains("__")
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn parse_file(
    catalog: &Catalog,
    file: &str,
    text: &str,
    out: &mut Vec<(Rule, SigmaRule)>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    let collection = match rsigma_parser::parse_sigma_yaml(text) {
        Ok(c) => c,
        Err(e) => {
            problems.push(problem(
                file,
                None,
                "",
                format!("not a valid Sigma rule: {e}"),
            ));
            return;
        }
    };
    for e in &collection.errors {
        problems.push(problem(
            file,
            None,
            "",
            format!("not a valid Sigma rule: {e}"),
        ));
    }
    if !collection.correlations.is_empty() || !collection.filters.is_empty() {
        problems.push(problem(
            file,
            None,
            "",
            "correlation and filter documents are not supported; use the tripline block's \
             threshold/window for aggregation and `not filter` conditions for exclusions"
                .into(),
        ));
    }
    if collection.rules.is_empty() && collection.errors.is_empty() {
        problems.push(problem(file, None, "", "contains no detection rule".into()));
    }
    for sigma in &collection.rules {
        let before = problems.len();
        let rule = validate_rule(catalog, file, sigma, problems, warnings);
        if let Some(rule) = rule.filter(|_| problems.len() == before) {
            out.push((rule, sigma.clone()));
        }
    }
}

fn validate_rule(
    catalog: &Catalog,
    file: &str,
    sigma: &SigmaRule,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Option<Rule> {
    let name = sigma.name.clone().unwrap_or_default();
    let rname = (!name.is_empty()).then_some(name.as_str());
    let mut err = |field: &str, message: String| {
        problems.push(problem(file, rname, field, message));
    };

    if name.is_empty() {
        err(
            "name",
            "missing; every rule needs a stable snake_case `name`".into(),
        );
    } else if !is_snake_case(&name) {
        err(
            "name",
            format!("{name:?} is not snake_case (lowercase letters, digits, single `_`)"),
        );
    }
    let id = sigma.id.clone().unwrap_or_default();
    if id.is_empty() {
        err("id", "missing; every rule needs a UUID `id`".into());
    } else if !is_uuid(&id) {
        err("id", format!("{id:?} is not a UUID"));
    }
    let level = match sigma.level {
        Some(l) => Level::from(l),
        None => {
            err(
                "level",
                "missing (informational, low, medium, high or critical)".into(),
            );
            Level::Informational
        }
    };
    if sigma.title.trim().is_empty() {
        err("title", "missing".into());
    }

    // ATT&CK tags.
    let mut techniques: Vec<TechniqueRef> = Vec::new();
    let mut tactics: Vec<String> = Vec::new();
    for tag in &sigma.tags {
        let Some(rest) = tag
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("attack."))
            .map(|_| &tag[7..])
        else {
            continue;
        };
        if let Some(tid) = parse_tag(tag) {
            match catalog.resolution(&tid) {
                Resolution::Current(t) => push_technique(&mut techniques, t.to_ref()),
                Resolution::Replaced { current, .. } => {
                    warnings.push(problem(
                        file,
                        rname,
                        "tags",
                        format!("{tag}: {}", catalog.resolution(&tid)),
                    ));
                    push_technique(&mut techniques, current.to_ref());
                }
                other => err("tags", format!("{tag}: {other}")),
            }
        } else if let Some(t) = catalog.tactic_for_tag(tag) {
            if !tactics.contains(&t.shortname) {
                tactics.push(t.shortname.clone());
            }
        } else if !is_group_or_software(rest) {
            err(
                "tags",
                format!("{tag}: not an ATT&CK technique, tactic, group or software tag"),
            );
        }
    }
    if techniques.is_empty() && rname.is_some() {
        warnings.push(problem(
            file,
            rname,
            "tags",
            "no attack.tNNNN technique tag; alerts will carry only mapped techniques".into(),
        ));
    }

    // Every field the detection refers to must exist in the event contract.
    let single = SigmaCollection {
        rules: vec![sigma.clone()],
        correlations: vec![],
        filters: vec![],
        errors: vec![],
    };
    let referenced = RuleFieldSet::collect(&single, &[], false);
    for field in referenced.names() {
        if let Err(m) = paths::check_path(field) {
            err("detection", m);
        }
    }
    // Fleets name their queries freely: a rule that knows its rows only by query name misses
    // the same rows under any other name, while `tables` is known whatever the name.
    let reads = |wanted: &[&str]| referenced.names().any(|f| wanted.contains(&f));
    if rname.is_some() && reads(&["query", "name"]) && !reads(&["tables", "pack"]) {
        warnings.push(problem(
            file,
            rname,
            "detection",
            format!(
                "rule {name} selects on a query name without a table: rows from that table \
                 under other query names will not match (select on `tables`, or on `pack` \
                 when the pack's rows are themselves the finding)"
            ),
        ));
    }

    // The tripline block.
    let spec = match sigma.custom_attributes.get("tripline") {
        None => {
            err(
                "tripline",
                "missing the `tripline:` block (title, dedup, window)".into(),
            );
            None
        }
        Some(v) => match yaml_serde::from_value::<RawAlertSpec>(v.clone()) {
            Err(e) => {
                err("tripline", e.to_string());
                None
            }
            Ok(raw) => alert_spec(raw, &mut err),
        },
    };

    if let Some(stem) = Path::new(file).file_stem().and_then(|s| s.to_str()) {
        if rname.is_some() && stem != name {
            warnings.push(problem(
                file,
                rname,
                "name",
                format!("file is named {stem:?}; rules/tests/{name}.yml is where its tests go"),
            ));
        }
    }

    Some(Rule {
        name,
        id,
        title: sigma.title.clone(),
        status: sigma.status.map(|s| format!("{s:?}").to_ascii_lowercase()),
        description: sigma.description.clone(),
        references: sigma.references.clone(),
        level,
        tags: sigma.tags.clone(),
        techniques,
        tactics,
        falsepositives: sigma.falsepositives.clone(),
        product: sigma.logsource.product.clone(),
        service: sigma.logsource.service.clone(),
        category: sigma.logsource.category.clone(),
        source: file.to_string(),
        alert: spec?,
    })
}

fn push_technique(list: &mut Vec<TechniqueRef>, t: TechniqueRef) {
    if !list.iter().any(|x| x.id == t.id) {
        list.push(t);
    }
}

fn is_group_or_software(rest: &str) -> bool {
    let b = rest.as_bytes();
    b.len() == 5
        && matches!(b[0], b'g' | b'G' | b's' | b'S' | b'c' | b'C')
        && b[1..].iter().all(u8::is_ascii_digit)
}

fn alert_spec(raw: RawAlertSpec, err: &mut impl FnMut(&str, String)) -> Option<AlertSpec> {
    let title = match raw.title.as_deref().map(Template::parse) {
        None => {
            err("tripline.title", "missing".into());
            None
        }
        Some(Err(m)) => {
            err("tripline.title", m);
            None
        }
        Some(Ok(t)) => Some(t),
    };
    let dedup = match raw.dedup {
        None => {
            err(
                "tripline.dedup",
                "missing (the fields that make two matches the same alert, e.g. [host])".into(),
            );
            None
        }
        Some(d) if d.is_empty() => {
            err("tripline.dedup", "must name at least one field".into());
            None
        }
        Some(d) => {
            let mut ok = true;
            let mut seen = HashSet::new();
            for f in &d {
                if let Err(m) = paths::check_path(f) {
                    err("tripline.dedup", m);
                    ok = false;
                } else if !seen.insert(f.as_str()) {
                    err("tripline.dedup", format!("`{f}` listed twice"));
                    ok = false;
                }
            }
            ok.then_some(d)
        }
    };
    let window = match raw.window.as_deref().map(Window::parse) {
        None => {
            err("tripline.window", "missing (e.g. 24h)".into());
            None
        }
        Some(Err(m)) => {
            err("tripline.window", m);
            None
        }
        Some(Ok(w)) => Some(w),
    };
    let threshold = match raw.threshold {
        None => Some(1),
        Some(n) if n >= 1 => Some(n as u64),
        Some(n) => {
            err("tripline.threshold", format!("must be at least 1, got {n}"));
            None
        }
    };
    Some(AlertSpec {
        title: title?,
        dedup: dedup?,
        window: window?,
        threshold: threshold?,
        runbook: raw.runbook.filter(|r| !r.trim().is_empty()),
        stale: raw.stale.unwrap_or(false),
        initial: raw.initial.unwrap_or(true),
    })
}

#[cfg(test)]
pub(crate) mod tests;
