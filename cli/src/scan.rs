//! `tripline scan`: parse + detect on a laptop, with the same core (and so the same alerts
//! and alert ids) as the detect Lambda.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::ValueEnum;
use tripline_core::alert::Alert;
use tripline_core::decode::Summary;
use tripline_core::ioc::IocSet;
use tripline_core::mapping::Mapper;
use tripline_core::rules::{DetectReport, Detector, Level};
use tripline_core::stage::{Detection, StageOptions};

use crate::inputs::{self, Driver};
use crate::parse::{load_resolver, DecodeArgs};
use crate::rules_cmd::{
    load_config, load_filters, load_mapper, load_rules, write_table, FilterSource, MappingSource,
    RuleSource,
};

#[derive(clap::Args)]
pub struct ScanArgs {
    /// Files, directories (recursive), - for stdin, or s3://bucket/prefix (every object under
    /// it, in key order). Gzip is detected by content.
    #[arg(value_name = "PATH|-", required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format [default: table on a terminal, else ndjson (one alert per line)].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub detect: DetectArgs,
    /// Also write an ATT&CK Navigator layer (v4.5) of what fired.
    #[arg(long, value_name = "FILE")]
    pub layer: Option<PathBuf>,
    /// Write quarantine entries (NDJSON, with reasons: records', and an object's own when it
    /// could not be read as osquery) here instead of reporting them on stderr.
    #[arg(long, value_name = "FILE")]
    pub quarantine: Option<PathBuf>,
    /// Exit 1 when an alert at or above this level fired.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub fail_on: Option<Level>,
}

/// What decides the alerts of a run, shared by `scan` and `report`: the rules, filters,
/// mappings, site settings, IOC lists, decoder settings, or a site directory for the lot.
#[derive(clap::Args)]
pub struct DetectArgs {
    #[command(flatten)]
    pub rules: RuleSource,
    #[command(flatten)]
    pub filters: FilterSource,
    #[command(flatten)]
    pub mappings: MappingSource,
    /// Site settings (tripline.toml); default: built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// IOC lists (.txt, .csv, .json STIX 2.1) under this directory: events whose indicators
    /// hit one get `derived.ioc`, and the rule osquery_ioc_match fires.
    #[arg(long, value_name = "DIR")]
    pub iocs: Option<PathBuf>,
    #[command(flatten)]
    pub decode: DecodeArgs,
    #[command(flatten)]
    pub site: crate::site::SiteArg,
}

/// A run's loaded setup: the decoder's options and the detection over its events.
pub struct Setup {
    pub options: StageOptions,
    pub detection: Detection,
    /// The mapping the detector annotates events with.
    pub mapper: Arc<Mapper>,
    pub iocs: Option<Arc<IocSet>>,
}

impl DetectArgs {
    /// Expands `--site`, then loads everything. Everything that can be wrong with the setup
    /// fails here, before any input is read.
    pub fn setup(&mut self) -> anyhow::Result<Setup> {
        self.site.clone().expand(crate::site::Parts {
            config: Some(&mut self.config),
            rules: Some(&mut self.rules),
            filters: Some(&mut self.filters),
            queries: Some(&mut self.decode.queries),
            iocs: Some(&mut self.iocs),
        })?;
        // Places events that have no usable time of their own in their dedup windows: files
        // on a laptop have no object time to go by, so the run's start stands in for it.
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let config = load_config(self.config.as_deref())?;
        let tables = load_resolver(&config, &self.decode.queries)?;
        let rules = load_rules(&self.rules)?;
        let filters = Arc::new(load_filters(&self.filters, &rules)?);
        let mapper = Arc::new(load_mapper(&self.mappings)?);
        let iocs = match &self.iocs {
            None => None,
            Some(dir) => {
                let set =
                    IocSet::load_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
                for w in set.warnings() {
                    eprintln!("tripline: iocs: warning: {w}");
                }
                Some(Arc::new(set))
            }
        };
        // Inflating and detecting on threads beside the decoding, where there are cores.
        let options = self.decode.options(tables.clone());
        let mut detector = Detector::new(rules, Some(Arc::clone(&mapper)), config)
            .with_tables(tables)
            .with_filters(filters)
            .with_object_time(started);
        if let Some(set) = &iocs {
            detector = detector.with_iocs(Arc::clone(set));
        }
        let detection = Detection::new(detector, options.parallelism);
        Ok(Setup {
            options,
            detection,
            mapper,
            iocs,
        })
    }
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Ndjson,
}

fn parse_level(s: &str) -> Result<Level, String> {
    s.parse()
}

pub fn run(mut args: ScanArgs) -> anyhow::Result<ExitCode> {
    let Setup {
        options,
        mut detection,
        iocs,
        ..
    } = args.detect.setup()?;
    let inputs = inputs::collect(&args.paths)?;
    let format = args.format.unwrap_or(if io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Ndjson
    });

    let mut driver = Driver::new(&inputs, options, args.quarantine.as_deref())?;
    for input in &inputs {
        driver.run(input, None, Some(&mut detection))?;
    }
    let (total, io_failed) = driver.finish()?;

    let report = detection.finish();
    if let Some(path) = &args.layer {
        crate::coverage::write_fired_layer(path, &report.alerts)?;
    }
    if let Err(e) = write_alerts(format, &report, &total) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(anyhow::Error::new(e).context("writing output"));
        }
    }
    print_summary("scan", &report, &total, iocs.as_deref());

    if io_failed {
        return Ok(ExitCode::from(2));
    }
    if let Some(level) = args.fail_on {
        let worst = report.alerts.iter().map(|a| a.severity).max();
        if worst.is_some_and(|w| w >= level) {
            let n = report.alerts.iter().filter(|a| a.severity >= level).count();
            eprintln!("tripline scan: {n} alert(s) at or above {level}");
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The run's accounting on stderr, `tripline <command>: records=... alerts=...`, then the
/// per-filter, IOC and rule-error lines.
pub fn print_summary(command: &str, report: &DetectReport, total: &Summary, iocs: Option<&IocSet>) {
    let s = &report.stats;
    // Like `object_errors` in `tripline parse`'s summary, only there when it happened.
    let objects_quarantined = match total.objects_quarantined {
        0 => String::new(),
        n => format!(" objects_quarantined={n}"),
    };
    eprintln!(
        "tripline {command}: records={} events={} quarantined={}{objects_quarantined} warnings={} \
         alerts={} matches={} matches_on_scan_time={} suppressed_stale={} suppressed_initial={} \
         suppressed_by_filter={} below_threshold={} rule_errors={}",
        total.records,
        total.events,
        total.quarantined,
        total.warnings,
        report.alerts.len(),
        s.matches,
        s.matches_on_object_time,
        s.suppressed_stale,
        s.suppressed_initial,
        s.suppressed_by_filter.values().sum::<u64>(),
        s.below_threshold,
        s.rule_errors
    );
    for (filter, n) in &s.suppressed_by_filter {
        eprintln!("tripline {command}: filter {filter}: suppressed {n} match(es)");
    }
    if let Some(set) = iocs {
        let st = set.stats();
        eprintln!(
            "tripline {command}: iocs: entries={} lists={} duplicates={} expired={} revoked={} \
             unsupported={} events_hit={}",
            set.len(),
            st.lists,
            st.duplicates,
            st.expired,
            st.revoked,
            st.unsupported,
            s.ioc_hits
        );
    }
    for (rule, n) in &s.rule_errors_by_rule {
        eprintln!("tripline {command}: rule {rule}: {n} error(s)");
    }
    for e in s.error_samples.iter().take(5) {
        eprintln!(
            "tripline {command}:   {} on {}: {}",
            e.rule, e.event_id, e.message
        );
    }
}

fn write_alerts(format: Format, report: &DetectReport, decode: &Summary) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match format {
        Format::Ndjson => {
            for a in &report.alerts {
                serde_json::to_writer(&mut out, a)?;
                out.write_all(b"\n")?;
            }
        }
        Format::Json => {
            let doc = serde_json::json!({
                "alerts": report.alerts,
                "stats": report.stats,
                "decode": decode,
            });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            out.write_all(b"\n")?;
        }
        Format::Table => write_table_format(&mut out, &report.alerts)?,
    }
    out.flush()
}

const MAX_TITLE_CHARS: usize = 100;
/// Techniques shown per alert in the table; the rule's own come first, query mappings
/// (which can list a dozen for `shell_history`) after, so the first few are the telling ones.
const MAX_TABLE_TECHNIQUES: usize = 3;

fn techniques(a: &Alert) -> String {
    let mut ids: Vec<&str> = a
        .attack
        .iter()
        .take(MAX_TABLE_TECHNIQUES)
        .map(|t| t.id.as_str())
        .collect();
    let more = a.attack.len().saturating_sub(MAX_TABLE_TECHNIQUES);
    let extra = format!("+{more}");
    if more > 0 {
        ids.push(&extra);
    }
    ids.join(",")
}

fn write_table_format(out: &mut dyn Write, alerts: &[Alert]) -> io::Result<()> {
    if alerts.is_empty() {
        return writeln!(out, "no alerts");
    }
    let mut rows = vec![vec![
        "SEVERITY".to_string(),
        "RULE".to_string(),
        "COUNT".to_string(),
        "HOSTS".to_string(),
        "ATT&CK".to_string(),
        "FIRST SEEN".to_string(),
        "TITLE".to_string(),
    ]];
    let mut sorted: Vec<&Alert> = alerts.iter().collect();
    // Most severe first for a person reading a terminal; ties keep the report's order.
    sorted.sort_by_key(|a| std::cmp::Reverse(a.severity));
    for a in sorted {
        let hosts = match a.hosts.as_slice() {
            [] => "-".to_string(),
            [one] => one.clone(),
            [first, ..] => format!("{first} +{}", a.host_count - 1),
        };
        let mut title: String = a.title.chars().take(MAX_TITLE_CHARS).collect();
        if a.title.chars().count() > MAX_TITLE_CHARS {
            title.push('…');
        }
        rows.push(vec![
            a.severity.to_string(),
            a.rule.name.clone(),
            a.count.to_string(),
            hosts,
            techniques(a),
            a.first_seen.clone(),
            title,
        ]);
    }
    write_table(out, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_values() {
        assert_eq!(parse_level("high").unwrap(), Level::High);
        assert!(parse_level("urgent").is_err());
    }
}
