//! `tripline rules list|test|check`, and the rule/mapping/config loading that `scan` and
//! `coverage` share (kept here because these are the commands about rule content).

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use tripline_core::config::Config;
use tripline_core::mapping::Mapper;
use tripline_core::rules::filters::{today_utc, FilterSet};
use tripline_core::rules::{testing, LoadError, RuleSet, SiteRules};

#[derive(clap::Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Show the rules: name, level, ATT&CK techniques.
    List(ListArgs),
    /// Run the rule tests (positive events must fire, negative ones must not).
    Test(TestArgs),
    /// Load and validate the rules; exit 1 on any problem.
    Check(CheckArgs),
}

/// Where rules come from; shared by every command that loads rules.
#[derive(clap::Args, Clone, Default)]
pub struct RuleSource {
    /// Directory of Sigma rules (recursive); default: the built-in pack.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Site rules (recursive; their tests in DIR/tests): each adds to the pack, or replaces
    /// the pack's rule with the same `id`.
    #[arg(long, value_name = "DIR")]
    pub site_rules: Option<PathBuf>,
    /// Leave the pack's rule of this name out (repeatable).
    #[arg(long, value_name = "NAME")]
    pub disable: Vec<String>,
}

impl RuleSource {
    /// Where the rules come from, for messages.
    fn describe(&self) -> String {
        let mut s = match &self.rules {
            Some(d) => d.display().to_string(),
            None => "built-in rules".into(),
        };
        if let Some(d) = &self.site_rules {
            s.push_str(&format!(" + site rules {}", d.display()));
        }
        if !self.disable.is_empty() {
            s.push_str(&format!(" - {}", self.disable.join(", ")));
        }
        s
    }
}

/// Where filters (suppressions) come from.
#[derive(clap::Args, Clone, Default)]
pub struct FilterSource {
    /// Directory of Sigma filters (recursive; their tests in DIR/tests); default: none.
    #[arg(long, value_name = "DIR")]
    pub filters: Option<PathBuf>,
}

/// Where query-to-technique mappings come from.
#[derive(clap::Args, Clone, Default)]
pub struct MappingSource {
    /// Directory of mapping files (rules/mappings format); default: the built-in mappings.
    #[arg(long, value_name = "DIR")]
    pub mappings: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub source: RuleSource,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(clap::Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub source: RuleSource,
    #[command(flatten)]
    pub filters: FilterSource,
    #[command(flatten)]
    pub mappings: MappingSource,
    /// Directory of test files; default: the built-in tests, or `tests/` next to `--rules`.
    #[arg(long, value_name = "DIR")]
    pub tests: Option<PathBuf>,
    /// Print only failing rules.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub site: crate::site::SiteArg,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub source: RuleSource,
    #[command(flatten)]
    pub filters: FilterSource,
    /// Also fail on warnings (revoked technique IDs, rules without techniques, ...).
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub site: crate::site::SiteArg,
}

pub fn run(args: RulesArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        RulesCommand::List(a) => list(a),
        RulesCommand::Test(a) => test(a),
        RulesCommand::Check(a) => check(a),
    }
}

/// Loads the rule set from `--rules` or the built-in pack, with `--site-rules` and
/// `--disable` applied.
pub fn load_rules(source: &RuleSource) -> anyhow::Result<RuleSet> {
    load_rule_set(source).with_context(|| format!("loading {}", source.describe()))
}

fn load_rule_set(source: &RuleSource) -> Result<RuleSet, LoadError> {
    let site = match &source.site_rules {
        Some(dir) => SiteRules::load_dir(dir)?,
        None => SiteRules::new(),
    }
    .disable(source.disable.iter().cloned());
    match (&source.rules, site.is_empty()) {
        (Some(dir), true) => RuleSet::load_dir(dir),
        (Some(dir), false) => RuleSet::load_dir_with(dir, &site),
        (None, true) => RuleSet::builtin(),
        (None, false) => RuleSet::builtin_with(&site),
    }
}

/// Loads `--filters` against `rules` (none without it), judging expiry by today (UTC), and
/// prints its warnings on stderr.
pub fn load_filters(source: &FilterSource, rules: &RuleSet) -> anyhow::Result<FilterSet> {
    let Some(dir) = &source.filters else {
        return Ok(FilterSet::empty());
    };
    let filters = FilterSet::load_dir(rules, dir, today_utc())
        .with_context(|| format!("loading filters from {}", dir.display()))?;
    for w in filters.warnings() {
        eprintln!("warning: {w}");
    }
    Ok(filters)
}

/// Loads the mappings from `--mappings` or the built-in set.
pub fn load_mapper(source: &MappingSource) -> anyhow::Result<Mapper> {
    match &source.mappings {
        Some(dir) => Mapper::load_dir(dir)
            .with_context(|| format!("loading mappings from {}", dir.display())),
        None => Mapper::builtin().context("loading the built-in mappings"),
    }
}

/// Loads `--config FILE`, or the defaults.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let rules = load_rules(&args.source)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match args.format {
        ListFormat::Json => {
            let rows: Vec<serde_json::Value> = rules
                .rules()
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "name": r.name,
                        "id": r.id,
                        "title": r.title,
                        "level": r.level,
                        "status": r.status,
                        "techniques": r.techniques,
                        "tactics": r.tactics,
                        "source": r.source,
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        ListFormat::Table => {
            let mut rows = vec![vec![
                "NAME".to_string(),
                "LEVEL".to_string(),
                "TECHNIQUES".to_string(),
                "TITLE".to_string(),
            ]];
            for r in rules.rules() {
                rows.push(vec![
                    r.name.clone(),
                    r.level.to_string(),
                    r.techniques
                        .iter()
                        .map(|t| t.id.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    r.title.clone(),
                ]);
            }
            write_table(&mut out, &rows)?;
            writeln!(out, "{} rules", rules.len())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn check(mut args: CheckArgs) -> anyhow::Result<ExitCode> {
    // The whole site must load (settings, queries, lists too), as the functions load it.
    if let Some(site) = args.site.clone().expand(crate::site::Parts {
        config: None,
        rules: Some(&mut args.source),
        filters: Some(&mut args.filters),
        queries: None,
        iocs: None,
    })? {
        println!(
            "site: tripline.toml OK, {} query definition(s), {} indicator(s), {} warning(s)",
            site.queries.len(),
            site.iocs.len(),
            site.warnings.len()
        );
    }
    let where_ = args.source.describe();
    let rules = match load_rule_set(&args.source) {
        Ok(rules) => {
            for w in rules.warnings() {
                eprintln!("warning: {w}");
            }
            println!(
                "{where_}: {} rules OK, {} warning(s)",
                rules.len(),
                rules.warnings().len()
            );
            rules
        }
        Err(e @ LoadError::Invalid(_)) => {
            report_problems(&where_, &e);
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e).with_context(|| format!("loading {where_}")),
    };
    let mut warnings = rules.warnings().len();
    if let Some(dir) = &args.filters.filters {
        let where_ = format!("filters {}", dir.display());
        match FilterSet::load_dir(&rules, dir, today_utc()) {
            Ok(filters) => {
                for w in filters.warnings() {
                    eprintln!("warning: {w}");
                }
                let expired = filters.filters().iter().filter(|f| !f.is_active()).count();
                println!(
                    "{where_}: {} filters OK ({expired} expired), {} warning(s)",
                    filters.len(),
                    filters.warnings().len()
                );
                warnings += filters.warnings().len();
            }
            Err(e @ LoadError::Invalid(_)) => {
                report_problems(&where_, &e);
                return Ok(ExitCode::from(1));
            }
            Err(e) => return Err(e).with_context(|| format!("loading {where_}")),
        }
    }
    Ok(if args.strict && warnings > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn report_problems(where_: &str, e: &LoadError) {
    let problems = e.problems();
    for p in &problems {
        eprintln!("error: {p}");
    }
    println!("{where_}: {} problem(s)", problems.len());
}

fn test(mut args: TestArgs) -> anyhow::Result<ExitCode> {
    args.site.clone().expand(crate::site::Parts {
        config: None,
        rules: Some(&mut args.source),
        filters: Some(&mut args.filters),
        queries: None,
        iocs: None,
    })?;
    let rules = Arc::new(load_rules(&args.source)?);
    let mapper = Arc::new(load_mapper(&args.mappings)?);
    let filters = load_filters(&args.filters, &rules)?;
    let base = match (&args.tests, &args.source.rules) {
        (Some(dir), _) => testing::read_dir(dir)
            .with_context(|| format!("reading tests from {}", dir.display()))?,
        (None, Some(rules_dir)) => {
            let dir = sibling_tests_dir(rules_dir).with_context(|| {
                format!(
                    "no tests directory next to {} (tried ../tests and tests/); pass --tests DIR",
                    rules_dir.display()
                )
            })?;
            testing::read_dir(&dir)
                .with_context(|| format!("reading tests from {}", dir.display()))?
        }
        (None, None) => testing::builtin_sources(),
    };
    let site = match &args.source.site_rules {
        Some(dir) => read_tests_under(dir)?,
        None => Vec::new(),
    };
    let files = testing::layered_sources(base, site, &rules);
    let report = testing::run(&rules, Some(Arc::clone(&mapper)), &files);
    let filter_report = match &args.filters.filters {
        Some(dir) => Some(testing::run_filters(
            &rules,
            Some(mapper),
            &filters,
            &read_tests_under(dir)?,
        )),
        None => None,
    };
    let color = io::stdout().is_terminal();
    let (pass, fail) = if color {
        ("\x1b[32mPASS\x1b[0m", "\x1b[31mFAIL\x1b[0m")
    } else {
        ("PASS", "FAIL")
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for r in &report.rules {
        if r.passed() {
            if !args.quiet {
                writeln!(
                    out,
                    "{pass}  {}  ({} positive, {} negative)",
                    r.rule, r.positives, r.negatives
                )?;
            }
        } else {
            writeln!(out, "{fail}  {}", r.rule)?;
            for f in &r.failures {
                writeln!(out, "      - {f}")?;
            }
        }
    }
    for o in &report.orphans {
        writeln!(out, "{fail}  {o}")?;
    }
    let failed = report.failed_rules() + report.orphans.len();
    writeln!(
        out,
        "{} rules, {} passed, {} failed",
        report.rules.len(),
        report.rules.len() - report.failed_rules(),
        failed
    )?;
    let mut passed = report.passed();
    if let Some(report) = filter_report {
        for r in &report.filters {
            if !r.passed() {
                writeln!(out, "{fail}  filter {}", r.filter)?;
                for f in &r.failures {
                    writeln!(out, "      - {f}")?;
                }
            } else if !args.quiet {
                match &r.skipped {
                    Some(why) => writeln!(out, "{pass}  filter {}  (skipped: {why})", r.filter)?,
                    None => writeln!(
                        out,
                        "{pass}  filter {}  ({} suppress, {} keep)",
                        r.filter, r.suppress, r.keep
                    )?,
                }
            }
        }
        for o in &report.orphans {
            writeln!(out, "{fail}  {o}")?;
        }
        writeln!(
            out,
            "{} filters, {} passed, {} failed",
            report.filters.len(),
            report.filters.len() - report.failed_filters(),
            report.failed_filters() + report.orphans.len()
        )?;
        passed &= report.passed();
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The test files in `dir/tests` (site rules' or filters'), none when there is no such
/// directory: every rule and filter then reports its missing test file.
fn read_tests_under(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let tests = dir.join("tests");
    if !tests.is_dir() {
        return Ok(Vec::new());
    }
    testing::read_dir(&tests).with_context(|| format!("reading tests from {}", tests.display()))
}

/// `rules/sigma` → `rules/tests`, else `<dir>/tests`.
fn sibling_tests_dir(rules_dir: &Path) -> anyhow::Result<PathBuf> {
    let candidates = [rules_dir.join("..").join("tests"), rules_dir.join("tests")];
    for c in candidates {
        if c.is_dir() {
            return Ok(c);
        }
    }
    bail!("not found")
}

/// Left-aligned columns; the last column is not padded (it is usually the long one).
pub fn write_table(out: &mut dyn Write, rows: &[Vec<String>]) -> io::Result<()> {
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
