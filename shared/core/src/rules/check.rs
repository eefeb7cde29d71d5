//! Validation: one Sigma file's rules checked against the event contract, the ATT&CK
//! catalog and the `tripline:` block, every [`Problem`] reported at once with its file and
//! field.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use rsigma_eval::RuleFieldSet;
use rsigma_parser::{SigmaCollection, SigmaRule};
use serde::{Deserialize, Serialize};

use super::{paths, AlertSpec, Level, Rule, Template, Window};
use crate::attack::{parse_tag, Catalog, Resolution, TechniqueRef};

/// One problem found while loading rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file the rule came from (empty when the problem is not a file's).
    pub file: String,
    /// The line (1-based) in `file` the problem is at, when known: from the YAML parser, or
    /// the line of the offending key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The rule's `name`, when known.
    pub rule: Option<String>,
    /// The offending field (`tripline.window`, `tags`, `detection`), when known.
    pub field: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `file:line (rule): field: message`, leaving out what is unknown.
        let mut sep = "";
        if !self.file.is_empty() {
            write!(f, "{}", self.file)?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            sep = ": ";
        }
        if let Some(r) = &self.rule {
            let space = if sep.is_empty() { "" } else { " " };
            write!(f, "{space}({r})")?;
            sep = ": ";
        }
        if let Some(field) = &self.field {
            write!(f, "{sep}{field}")?;
            sep = ": ";
        }
        write!(f, "{sep}{}", self.message)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertSpec {
    title: Option<String>,
    dedup: Option<Vec<String>>,
    window: Option<String>,
    threshold: Option<i64>,
    storm: Option<i64>,
    runbook: Option<String>,
    stale: Option<bool>,
    initial: Option<bool>,
}

pub(super) fn problem(file: &str, rule: Option<&str>, field: &str, message: String) -> Problem {
    Problem {
        file: file.to_string(),
        line: None,
        rule: rule.map(str::to_string),
        field: (!field.is_empty()).then(|| field.to_string()),
        message,
    }
}

pub(super) fn is_snake_case(s: &str) -> bool {
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

pub(super) fn parse_file(
    catalog: &Catalog,
    file: &str,
    text: &str,
    out: &mut Vec<(Rule, SigmaRule)>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    let (p0, w0) = (problems.len(), warnings.len());
    parse_file_inner(catalog, file, text, out, problems, warnings);
    add_lines(text, &mut problems[p0..]);
    add_lines(text, &mut warnings[w0..]);
}

/// Gives each problem without a line the line of its field, or the line the YAML parser's
/// message names.
pub(super) fn add_lines(text: &str, problems: &mut [Problem]) {
    if problems.iter().all(|p| p.line.is_some()) {
        return; // the usual case: a file without problems is not read again
    }
    // In a file of several documents the field's first occurrence may be another rule's.
    let one_document = !text
        .lines()
        .skip(1)
        .any(|l| l == "---" || l.starts_with("--- "));
    for p in problems.iter_mut().filter(|p| p.line.is_none()) {
        p.line = parser_line(&p.message)
            .or_else(|| modifier_line(text, &p.message))
            .or_else(|| {
                let field = p.field.as_deref().filter(|_| one_document)?;
                super::locate::key_line(text, field)
            });
    }
}

/// The line of the modifier rsigma's message names (`Unknown modifier 'contans'`): the
/// first `|contans` in the text.
fn modifier_line(text: &str, message: &str) -> Option<usize> {
    let (_, rest) = message.split_once("Unknown modifier '")?;
    let (modifier, _) = rest.split_once('\'')?;
    super::locate::value_line(text, 1, &format!("|{modifier}"))
}

/// The line in a YAML parser's message (`... at line 3 column 5 ...`).
fn parser_line(message: &str) -> Option<usize> {
    let (_, rest) = message.split_once(" at line ")?;
    let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok().filter(|&n| n > 0)
}

fn parse_file_inner(
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
            "correlation and filter documents are not rules: use the tripline block's \
             threshold/window for aggregation, and put Sigma filters (suppressions) in a \
             filters directory (`--filters DIR`)"
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
    // Every field the detection refers to must exist in the event contract.
    let single = SigmaCollection {
        rules: vec![sigma.clone()],
        correlations: vec![],
        filters: vec![],
        errors: vec![],
    };
    let referenced = RuleFieldSet::collect(&single, &[], false);
    // An indicator-list rule says what was seen, not how it was done: its alerts' techniques
    // are those mapped from the rows it matched, so it has no tag of its own to lack.
    let on_iocs = referenced
        .names()
        .any(|f| f == "derived.ioc" || f.starts_with("derived.ioc."));
    if techniques.is_empty() && rname.is_some() && !on_iocs {
        warnings.push(problem(
            file,
            rname,
            "tags",
            "no attack.tNNNN technique tag; alerts will carry only mapped techniques".into(),
        ));
    }
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
    let storm = match raw.storm {
        None => Some(None),
        Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => Some(Some(n as u32)),
        Some(n) => {
            err(
                "tripline.storm",
                format!("must be a count of alerts (0 turns storm control off), got {n}"),
            );
            None
        }
    };
    Some(AlertSpec {
        title: title?,
        dedup: dedup?,
        window: window?,
        threshold: threshold?,
        storm: storm?,
        runbook: raw.runbook.filter(|r| !r.trim().is_empty()),
        stale: raw.stale.unwrap_or(false),
        initial: raw.initial.unwrap_or(true),
    })
}
