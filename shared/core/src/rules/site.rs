//! A site's own rules next to the built-in pack: [`SiteRules`] (rule files and the names of
//! built-in rules to leave out) and [`RuleSet::builtin_with`] / [`RuleSet::layered`].
//!
//! Rules are identified by their Sigma `id` (a UUID, what Sigma filters and other tools
//! refer to) and by their `name` (what alerts, alert ids, tests and `--fail-on` carry). So:
//!
//! - a site rule with the `id` of a base rule **replaces** it (whatever its name; a new name
//!   is a warning, since the rule's alerts then get new ids);
//! - a site rule with a new `id` **adds** a rule; its `name` must be new too: taking a base
//!   rule's name under another id is an error, because two different rules would answer to
//!   one name in alerts and tests;
//! - `disable` lists base rule **names**; each must name a base rule that no site rule
//!   replaces, because a typo there would keep a rule alerting that the site meant to
//!   silence, and disabling a rule the site also replaces says two contradicting things.
//!
//! Every problem names its file and, where it can be found, its line.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use super::check::problem;
use super::load::{read_tree, SkipTests};
use super::locate::key_line;
use super::set::Parsed;
use super::{builtin, LoadError, Problem, RuleSet};

/// A site's rule files and the base rules it disables. Cheap to build; nothing is parsed
/// until [`RuleSet::builtin_with`] or [`RuleSet::layered`].
#[derive(Debug, Clone, Default)]
pub struct SiteRules {
    files: Vec<(String, String)>,
    disable: Vec<String>,
}

impl SiteRules {
    /// No site rules and nothing disabled: layering it gives the base pack unchanged.
    pub fn new() -> SiteRules {
        SiteRules::default()
    }

    /// The site's rule files as `(path, YAML text)` pairs, e.g. `rules/acme_vpn.yml` from
    /// S3. A file under a `tests/` directory (`rules/tests/acme_vpn.yml`) is a rule test,
    /// not a rule, and is left out, so a whole site directory can be handed over as it is.
    pub fn from_sources(files: impl IntoIterator<Item = (String, String)>) -> SiteRules {
        SiteRules {
            files: files
                .into_iter()
                .filter(|(path, _)| !is_test_path(path))
                .collect(),
            disable: Vec::new(),
        }
    }

    /// Every `*.yml`/`*.yaml` file under `dir` (recursively, in path order), except those
    /// under `dir/tests/` (the site rules' tests) and hidden ones. An empty directory is
    /// a site without rules of its own.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<SiteRules, LoadError> {
        Ok(SiteRules {
            files: read_tree(dir.as_ref(), SkipTests::Yes)?,
            disable: Vec::new(),
        })
    }

    /// Adds base rule names to leave out of the set.
    pub fn disable<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> SiteRules {
        self.disable.extend(names.into_iter().map(Into::into));
        self
    }

    /// The rule files, `(path, text)`.
    pub fn files(&self) -> &[(String, String)] {
        &self.files
    }

    /// The base rule names to leave out, as given.
    pub fn disabled(&self) -> &[String] {
        &self.disable
    }

    /// Whether the site neither adds, replaces nor disables anything.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.disable.is_empty()
    }
}

/// Whether a site file's path (relative to the site, or to its `rules/` or `filters/`
/// directory) is a test file: one of its directories is named `tests`.
pub(crate) fn is_test_path(path: &str) -> bool {
    let path = Path::new(path);
    let mut dirs = path.parent().into_iter().flat_map(Path::components);
    dirs.any(|c| c.as_os_str() == "tests")
}

impl RuleSet {
    /// The built-in pack with a site's rules added, replacing and disabled
    /// (see the module documentation for how a site rule meets the pack).
    pub fn builtin_with(site: &SiteRules) -> Result<RuleSet, LoadError> {
        if builtin::SIGMA_RULES.is_empty() {
            return Err(LoadError::Empty("the built-in rule pack".into()));
        }
        Self::layered(builtin::SIGMA_RULES.iter().copied(), site)
    }

    /// The rules under `dir` (as [`RuleSet::load_dir`] reads them) with a site's rules
    /// added, replacing and disabled.
    pub fn load_dir_with(dir: impl AsRef<Path>, site: &SiteRules) -> Result<RuleSet, LoadError> {
        let dir = dir.as_ref();
        let base = read_tree(dir, SkipTests::No)?;
        if base.is_empty() {
            return Err(LoadError::Empty(dir.display().to_string()));
        }
        Self::layered(base.iter().map(|(f, t)| (f.as_str(), t.as_str())), site)
    }

    /// `base` rule files (`(label, text)`, e.g. a `--rules` directory) with a site's rules
    /// added, replacing and disabled. Every problem in either, and every conflict between
    /// them, is reported at once.
    pub fn layered<'a, I>(base: I, site: &SiteRules) -> Result<RuleSet, LoadError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut parsed = Parsed::default();
        for (file, text) in base {
            parsed.add_file(file, text);
        }
        let base_rules = std::mem::take(&mut parsed.rules);
        for (file, text) in &site.files {
            parsed.add_file(file, text);
        }
        let site_rules = std::mem::take(&mut parsed.rules);
        let text_of: HashMap<&str, &str> = site
            .files
            .iter()
            .map(|(f, t)| (f.as_str(), t.as_str()))
            .collect();
        let at = |file: &str, key: &str| text_of.get(file).and_then(|t| key_line(t, key));

        let base_by_id: HashMap<String, usize> = base_rules
            .iter()
            .enumerate()
            .map(|(i, (r, _))| (r.id.to_ascii_lowercase(), i))
            .collect();
        let base_by_name: HashMap<&str, usize> = base_rules
            .iter()
            .enumerate()
            .map(|(i, (r, _))| (r.name.as_str(), i))
            .collect();

        // Which base rule each site rule replaces, and the site rules that take a base
        // rule's name without its id.
        let mut replaced: HashMap<usize, &str> = HashMap::new();
        // Site rules already reported for taking a base rule's name, left out of the set so
        // its duplicate-name check does not report them again.
        let mut name_taken: BTreeSet<usize> = BTreeSet::new();
        for (s, (rule, _)) in site_rules.iter().enumerate() {
            if let Some(&b) = base_by_id.get(&rule.id.to_ascii_lowercase()) {
                // Two site rules with one id are reported by the set's uniqueness check.
                let old = &base_rules[b].0;
                if replaced.insert(b, &rule.source).is_none() && old.name != rule.name {
                    parsed.warnings.push(Problem {
                        line: at(&rule.source, "name"),
                        ..problem(
                            &rule.source,
                            Some(&rule.name),
                            "name",
                            format!(
                                "replaces {} (same id) under a new name: its alerts get new ids \
                                 and its tests must be named {}.yml",
                                old.name, rule.name
                            ),
                        )
                    });
                }
            } else if let Some(&b) = base_by_name.get(rule.name.as_str()) {
                name_taken.insert(s);
                let old = &base_rules[b].0;
                parsed.problems.push(Problem {
                    line: at(&rule.source, "name"),
                    ..problem(
                        &rule.source,
                        Some(&rule.name),
                        "name",
                        format!(
                            "{} is already the name of {} (id {}): to replace that rule give \
                             this one its id; to add a rule, choose another name",
                            rule.name, old.source, old.id
                        ),
                    )
                });
            }
        }

        let mut disabled: BTreeSet<usize> = BTreeSet::new();
        for name in &site.disable {
            let problem = |message: String| Problem {
                file: String::new(),
                line: None,
                rule: Some(name.clone()),
                field: Some("disable".into()),
                message,
            };
            match base_by_name.get(name.as_str()) {
                Some(&b) => match replaced.get(&b) {
                    Some(by) => parsed.problems.push(problem(format!(
                        "cannot disable {name}: {by} replaces it (delete that file, or stop \
                         disabling the rule)"
                    ))),
                    None => {
                        disabled.insert(b);
                    }
                },
                None if site_rules.iter().any(|(r, _)| &r.name == name) => {
                    parsed.problems.push(problem(format!(
                        "cannot disable {name}: it is a site rule, not one of the pack's \
                         (remove its file instead)"
                    )))
                }
                None => parsed.problems.push(problem(format!(
                    "cannot disable {name}: the pack has no rule of that name"
                ))),
            }
        }

        let disabled_names = disabled
            .iter()
            .map(|&b| base_rules[b].0.name.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // The base's rules in their order, then the site's: a replacement takes the place
        // of the rule it replaces, so rule order (and with it alert order) stays put.
        let mut site_by_base: HashMap<usize, usize> = HashMap::new();
        for (s, (rule, _)) in site_rules.iter().enumerate() {
            if let Some(&b) = base_by_id.get(&rule.id.to_ascii_lowercase()) {
                site_by_base.entry(b).or_insert(s);
            }
        }
        let mut site_rules: Vec<Option<_>> = site_rules
            .into_iter()
            .enumerate()
            .map(|(s, r)| (!name_taken.contains(&s)).then_some(r))
            .collect();
        for (b, rule) in base_rules.into_iter().enumerate() {
            if disabled.contains(&b) {
                continue;
            }
            match site_by_base.get(&b) {
                Some(&s) => parsed.rules.extend(site_rules[s].take()),
                None => parsed.rules.push(rule),
            }
        }
        parsed.rules.extend(site_rules.into_iter().flatten());
        parsed.build(disabled_names)
    }
}
