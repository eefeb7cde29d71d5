//! `tripline coverage`: where on the ATT&CK matrix the rules, the mapped queries and the mapped
//! osquery tables look, as a Navigator layer plus a per-tactic table; and the "what fired" layer
//! `scan --layer` writes.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use tripline_core::alert::Alert;
use tripline_core::layer::{Layer, TechniqueTally};
use tripline_core::mapping::{Mapper, Pattern};

use crate::rules_cmd::{load_mapper, load_rules, write_table, MappingSource, RuleSource};

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
}

pub fn run(args: CoverageArgs) -> anyhow::Result<ExitCode> {
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
