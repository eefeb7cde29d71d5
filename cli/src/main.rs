//! `tripline`: the pipeline's core on a laptop. `parse` decodes osquery logs into
//! normalized events; `scan` also maps them to ATT&CK and runs the Sigma rules; `report`
//! does what `scan` does and draws it as one HTML page.
//!
//! Exit codes: 0 when the command ran (quarantined records and alerts included),
//! 1 when `scan --fail-on` found alerts at or above the level, 2 for usage or I/O errors.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod coverage;
mod inputs;
mod layer;
mod parse;
mod report;
mod rules_cmd;
mod scan;
mod site;

// mimalloc instead of glibc malloc: decoding and detection allocate many small, short-lived
// values, which it serves faster (BENCHMARKS.md). `no_thp`: no transparent huge pages, which
// would otherwise inflate resident memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tripline",
    version,
    about = "osquery detection pipeline: parse, detect, map to ATT&CK"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode osquery logs (Firehose objects, gzip or plain) into normalized events (NDJSON).
    Parse(parse::ParseArgs),
    /// Parse, map to ATT&CK and evaluate the Sigma rules: print the alerts.
    Scan(scan::ScanArgs),
    /// List, test or check Sigma rules.
    Rules(rules_cmd::RulesArgs),
    /// Parse, map to ATT&CK and evaluate the rules like scan, and write one self-contained
    /// HTML report: the ATT&CK matrix as a heatmap, alerts, hosts, queries, parse accounting.
    Report(report::ReportArgs),
    /// Write an ATT&CK Navigator layer of what the rules, mapped queries and mapped osquery
    /// tables cover.
    Coverage(coverage::CoverageArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Parse(args) => parse::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Rules(args) => rules_cmd::run(args),
        Command::Report(args) => report::run(args),
        Command::Coverage(args) => coverage::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tripline: {e:#}");
            ExitCode::from(2)
        }
    }
}
