//! `tripline coverage`: where on the ATT&CK matrix the rules, the mapped queries and the mapped
//! osquery tables look, as a Navigator layer plus a per-tactic table; and the "what fired" layer
//! `scan --layer` writes.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::layer::{Layer, TechniqueTally};
use anyhow::Context;
use tripline_core::alert::Alert;
use tripline_core::mapping::{Mapper, Pattern};

use crate::parse::load_resolver;
use crate::rules_cmd::{
    load_config, load_mapper, load_rules, write_table, MappingSource, RuleSource,
};

#[derive(clap::Args)]
pub struct CoverageArgs {
    /// Write the Navigator layer (format 4.5) here.
    #[arg(long, value_name = "FILE")]
    pub layer: Option<PathBuf>,
    #[command(flatten)]
    pub rules: RuleSource,
    #[command(flatten)]
    pub mappings: MappingSource,
    /// Count only the rules, not the query and table mappings.
    #[arg(long)]
    pub rules_only: bool,
    /// Report on your own fleet's queries instead (osquery config or pack JSON, Fleet YAML;
    /// repeatable): each query's tables, the rules that can fire on it and its techniques,
    /// and the rules no query feeds. `--layer` then writes that coverage.
    #[arg(long = "queries", value_name = "FILE")]
    pub queries: Vec<PathBuf>,
    /// Site settings (tripline.toml): its `queries` and `[query_sql]` count as well.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub site: crate::site::SiteArg,
}

pub fn run(mut args: CoverageArgs) -> anyhow::Result<ExitCode> {
    args.site.clone().expand(crate::site::Parts {
        config: Some(&mut args.config),
        rules: Some(&mut args.rules),
        filters: None,
        queries: Some(&mut args.queries),
        iocs: None,
    })?;
    if !args.queries.is_empty() || args.config.is_some() {
        return fleet(args);
    }
    let rules = load_rules(&args.rules)?;
    let mapper = if args.rules_only {
        None
    } else {
        Some(load_mapper(&args.mappings)?)
    };

    let mut tally = TechniqueTally::new();
    for rule in rules.rules() {
        for t in &rule.techniques {
            tally.add(&t.id, &format!("rule {}", rule.name));
        }
    }
    if let Some(m) = &mapper {
        tally.add_mapping_entries(m.entries());
    }

    let mappings = mapper.as_ref().map(MappingCounts::of);
    if let Some(path) = &args.layer {
        let description = match &mappings {
            Some(c) => format!(
                "Techniques covered by {} tripline rules, {} query mappings and {} osquery tables \
                 (score: how many of them cover the technique)",
                rules.len(),
                c.queries,
                c.tables_mapped
            ),
            None => format!(
                "Techniques covered by {} tripline rules (score: how many)",
                rules.len()
            ),
        };
        let layer = Layer::coverage("tripline coverage", description, &tally);
        write_layer(path, &layer)?;
    }

    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut rows = vec![vec![
        "TACTIC".to_string(),
        "TECHNIQUES".to_string(),
        "%".to_string(),
        "SUB-TECHNIQUES".to_string(),
    ]];
    let (mut covered, mut total) = (0, 0);
    for row in tally.tactic_coverage() {
        covered += row.techniques_covered;
        total += row.techniques_total;
        rows.push(vec![
            row.name.clone(),
            format!("{}/{}", row.techniques_covered, row.techniques_total),
            format!("{:.0}", row.percent()),
            format!("{}/{}", row.subtechniques_covered, row.subtechniques_total),
        ]);
    }
    write_table(&mut out, &rows)?;
    let distinct = tally.technique_ids().count();
    writeln!(
        out,
        "{distinct} techniques and sub-techniques covered by {} rules{}; {covered} technique-in-tactic cells of {total}",
        rules.len(),
        mappings.map(MappingCounts::summary).unwrap_or_default()
    )?;
    let unresolved: Vec<&str> = tally.unresolved().collect();
    if !unresolved.is_empty() {
        eprintln!(
            "tripline coverage: ignored IDs that do not resolve in ATT&CK: {}",
            unresolved.join(", ")
        );
    }
    if let Some(path) = &args.layer {
        eprintln!("tripline coverage: wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// What the loaded mappings consist of, for the report.
#[derive(Clone, Copy)]
struct MappingCounts {
    /// `query`, `glob` and `regex` entries.
    queries: usize,
    /// Distinct tables whose `table` entries map them to at least one technique.
    tables_mapped: usize,
    /// Distinct tables listed with no technique (inventory tables): looked at, covering nothing.
    tables_unmapped: usize,
}

impl MappingCounts {
    fn of(mapper: &Mapper) -> MappingCounts {
        let mut tables: Vec<&str> = Vec::new();
        let mut queries = 0;
        for entry in mapper.entries() {
            match &entry.pattern {
                Pattern::Table(table) => tables.push(table),
                _ => queries += 1,
            }
        }
        tables.sort_unstable();
        tables.dedup();
        let tables_unmapped = tables
            .iter()
            .filter(|t| mapper.table_techniques(t).is_empty())
            .count();
        MappingCounts {
            queries,
            tables_mapped: tables.len() - tables_unmapped,
            tables_unmapped,
        }
    }

    /// `, 180 query mappings and 78 osquery tables (41 more map to no technique)` after "by 30
    /// rules", or ` and 180 query mappings` for a `--mappings` directory without table entries.
    fn summary(self) -> String {
        if self.tables_mapped + self.tables_unmapped == 0 {
            return format!(" and {} query mappings", self.queries);
        }
        let mut out = format!(
            ", {} query mappings and {} osquery tables",
            self.queries, self.tables_mapped
        );
        if self.tables_unmapped > 0 {
            out += &format!(" ({} more map to no technique)", self.tables_unmapped);
        }
        out
    }
}

/// The "what fired" layer: score = alerts per technique, comment naming the rules.
pub fn write_fired_layer(path: &Path, alerts: &[Alert]) -> anyhow::Result<()> {
    let mut tally = TechniqueTally::new();
    for alert in alerts {
        for t in &alert.attack {
            tally.add(&t.id, &alert.rule.name);
        }
    }
    let layer = Layer::fired(
        "tripline alerts",
        format!("ATT&CK techniques of {} tripline alert(s)", alerts.len()),
        &tally,
    );
    write_layer(path, &layer)
}

fn write_layer(path: &Path, layer: &Layer) -> anyhow::Result<()> {
    let json = layer.to_json().context("serializing the layer")?;
    std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
}

/// `coverage --queries`: what the built-in rules and mappings make of one fleet's queries.
fn fleet(args: CoverageArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(args.config.as_deref())?;
    let resolver = load_resolver(&config, &args.queries)?;
    let defs = resolver.queries();
    if defs.is_empty() {
        anyhow::bail!("no query definitions in the files given");
    }
    let rules = load_rules(&args.rules)?;
    let mapper = load_mapper(&args.mappings)?;
    // Per rule, the tables it can fire on (`None`: any table, through its pack or name).
    let rule_tables: Vec<Option<Vec<String>>> =
        (0..rules.len()).map(|i| rules.tables_of(i)).collect();

    let mut tally = TechniqueTally::new();
    let mut fed = vec![false; rules.len()];
    let mut rows = vec![vec![
        "QUERY".to_string(),
        "TABLES".to_string(),
        "RULES".to_string(),
        "TECHNIQUES".to_string(),
    ]];
    for def in defs.iter() {
        let tables: Vec<String> = def.tables.clone().unwrap_or_default();
        let firing: Vec<_> = rules
            .rules()
            .iter()
            .zip(&rule_tables)
            .enumerate()
            .filter(|(_, (_, needs))| {
                needs
                    .as_ref()
                    .is_some_and(|needs| tables.iter().any(|t| needs.contains(t)))
            })
            .map(|(i, (rule, _))| {
                fed[i] = true;
                rule
            })
            .collect();
        // As the detect stage maps its rows: by the query's name where a mapping knows it,
        // otherwise by the table that explains its rows (the first of its SQL's tables).
        let mapped =
            mapper.event_techniques_for(def.pack.as_deref(), &def.name, &def.name, &tables, false);
        let mut techniques: Vec<String> = mapped.iter().map(|t| t.id.clone()).collect();
        for rule in &firing {
            techniques.extend(rule.techniques.iter().map(|t| t.id.clone()));
        }
        techniques.sort_unstable();
        techniques.dedup();
        for t in &techniques {
            tally.add(t, &format!("query {def}"));
        }
        let shown_tables = match &def.tables {
            Ok(_) if tables.is_empty() => "-".to_string(),
            Ok(_) => tables.join(","),
            Err(_) => "(SQL not parsed: inferred per row)".to_string(),
        };
        rows.push(vec![
            def.to_string(),
            shown_tables,
            if firing.is_empty() {
                "-".to_string()
            } else {
                firing
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            },
            if techniques.is_empty() {
                "-".to_string()
            } else {
                techniques.join(",")
            },
        ]);
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    write_table(&mut out, &rows)?;
    writeln!(out)?;
    let mut unfed = 0;
    for ((rule, needs), fed) in rules.rules().iter().zip(&rule_tables).zip(&fed) {
        match needs {
            Some(needs) if !fed => {
                unfed += 1;
                writeln!(out, "{} needs a query on {}", rule.name, or_list(needs))?;
            }
            None => writeln!(
                out,
                "{} can fire on any query (it selects on a pack, a name or columns, not on tables)",
                rule.name
            )?,
            _ => {}
        }
    }
    writeln!(
        out,
        "{} queries; {} of {} rules fed by them ({unfed} need a query you don't run); {} techniques covered",
        defs.len(),
        fed.iter().filter(|f| **f).count(),
        rules.len(),
        tally.technique_ids().count()
    )?;
    for warning in defs.warnings() {
        eprintln!("tripline coverage: warning: {warning}");
    }
    if let Some(path) = &args.layer {
        let layer = Layer::coverage(
            "tripline fleet coverage",
            format!(
                "Techniques your {} queries give evidence of: their mappings and the tripline rules they feed",
                defs.len()
            ),
            &tally,
        );
        write_layer(path, &layer)?;
        eprintln!("tripline coverage: wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}
