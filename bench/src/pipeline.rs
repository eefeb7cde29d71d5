//! The whole pipeline over one object, through the product's own [`stage`] calls, as the
//! Lambdas and `tripline scan` make them.
//!
//! - [`fused`]: what `parse` + `detect` do to one Firehose object, in one process:
//!   [`stage::parse`] into an [`NdjsonOutput`] (compressed NDJSON, here into a counting sink
//!   instead of an S3 multipart upload) and a [`Detection`], then each alert as JSON (the
//!   detect Lambda's `serde_json::to_vec(alert)`). With [`Parallelism::Threads`], inflating,
//!   compressing and detecting each run on a thread of their own, as above one vCPU.
//! - [`parse_stage`] and [`detect_stage`]: the two Lambdas as deployed, separately: parse
//!   writes the normalized object, detect reads it back with [`stage::detect`].
//! - [`scan`]: what `tripline scan` does: parse and detect with no normalized copy.
//! - [`gunzip`]: the floor, decompression alone into a sink (same flate2 backend);
//!   [`compress_output`]: compressing the normalized output alone (the lower bound).

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use flate2::bufread::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use tripline_core::attack::Catalog;
use tripline_core::compress::{Codec, DEFAULT_BUFFER_SIZE};
use tripline_core::config::Config;
use tripline_core::decode::{Origin, Summary};
use tripline_core::mapping::Mapper;
use tripline_core::rules::filters::{today_utc, FilterSet};
use tripline_core::rules::{DetectReport, Detector, RuleSet};
use tripline_core::stage::{self, Detection, Discard, NdjsonOutput, StageOptions};
use tripline_core::{IocSet, Parallelism};

/// The object time the bench's detectors place events without a time by: the generated
/// corpus' start. The corpus files' names carry no date to take it from, as the detect
/// Lambda does from its key.
pub const OBJECT_TIME: i64 = crate::gen::T0;

/// The compiled rules, mapping and settings, built once (per container, in Lambda).
#[derive(Clone)]
pub struct Engine {
    pub rules: Arc<RuleSet>,
    pub mapper: Arc<Mapper>,
    pub config: Arc<Config>,
    /// Sigma filters the detectors apply (`run --filters DIR`); none by default.
    pub filters: Option<Arc<FilterSet>>,
    /// Indicator lists (`--iocs DIR`), none by default.
    pub iocs: Option<Arc<IocSet>>,
}

impl Engine {
    /// The built-in pack and mappings with default settings: what the Lambdas load.
    pub fn builtin() -> anyhow::Result<Engine> {
        let _ = Catalog::embedded();
        Ok(Engine {
            rules: Arc::new(RuleSet::builtin()?),
            mapper: Arc::new(Mapper::builtin()?),
            config: Arc::new(Config::default()),
            filters: None,
            iocs: None,
        })
    }

    /// [`Engine::builtin`] with the filters under `dir` (when given) applied.
    pub fn with_filters(dir: Option<&std::path::Path>) -> anyhow::Result<Engine> {
        let mut engine = Engine::builtin()?;
        if let Some(dir) = dir {
            let set = FilterSet::load_dir(&engine.rules, dir, today_utc())
                .with_context(|| format!("loading filters from {}", dir.display()))?;
            engine.filters = Some(Arc::new(set));
        }
        Ok(engine)
    }

    /// A detector whose object time is fixed ([`OBJECT_TIME`]), so that every run and mode
    /// places events without a time alike and reports the same alerts.
    fn detector(&self) -> Detector {
        let detector = Detector::new(
            Arc::clone(&self.rules),
            Some(Arc::clone(&self.mapper)),
            Arc::clone(&self.config),
        )
        .with_object_time(OBJECT_TIME);
        let detector = match &self.filters {
            Some(f) => detector.with_filters(Arc::clone(f)),
            None => detector,
        };
        match &self.iocs {
            Some(iocs) => detector.with_iocs(Arc::clone(iocs)),
            None => detector,
        }
    }
}

/// What one run over one object did and cost.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunResult {
    pub mode: String,
    pub wall_s: f64,
    pub bytes_in: u64,
    pub bytes_decoded: u64,
    pub records: u64,
    pub events: u64,
    pub quarantined: u64,
    /// Size of the compressed normalized output.
    pub normalized_bytes: u64,
    pub alerts: u64,
    pub matches: u64,
    /// Matches filters suppressed (`run --filters`).
    pub suppressed_by_filter: u64,
    pub alert_json_bytes: u64,
    /// Alerts per rule name.
    pub alerts_by_rule: BTreeMap<String, u64>,
    /// Matches counted into alerts, per rule name.
    pub matches_by_rule: BTreeMap<String, u64>,
    /// Start-up only: seconds to load the ATT&CK catalog, compile the rules, load mappings.
    pub startup_split: [f64; 3],
    /// `VmHWM` of the process at the end of the run, in KiB (filled by the child runner).
    pub peak_rss_kib: u64,
    /// CPU seconds (user + system, all threads) of the child process, start-up included:
    /// what a Lambda with one vCPU or less is billed for, whatever the threads overlap.
    pub cpu_s: f64,
    /// IOC rows only: distinct entries loaded, and warnings.
    pub ioc_entries: u64,
    pub ioc_warnings: u64,
    /// IOC rows only: `VmRSS` before and after the load (what the set keeps).
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// IOC rows only: lookups made, how many hit, and the time of one.
    pub lookups: u64,
    pub lookup_hits: u64,
    pub lookup_ns: f64,
    /// IOC rows only: `VmHWM` right after the load, and the set's own estimate of its heap
    /// (`IocSet::heap_bytes`).
    pub load_peak_kib: u64,
    pub ioc_heap_bytes: u64,
}

impl RunResult {
    /// A run over one raw object: its mode, the wall time since `start`, and what the
    /// decoder counted.
    fn decoded(mode: String, start: Instant, summary: &Summary) -> RunResult {
        RunResult {
            mode,
            wall_s: start.elapsed().as_secs_f64(),
            bytes_in: summary.bytes_in,
            bytes_decoded: summary.bytes_decoded,
            records: summary.records,
            events: summary.events,
            quarantined: summary.quarantined,
            ..Default::default()
        }
    }

    /// Fills in what the detect stage found: alert and match counts, overall and per rule.
    fn count_alerts(&mut self, report: &DetectReport, alert_json_bytes: u64) {
        self.alerts = report.alerts.len() as u64;
        self.matches = report.stats.matches;
        self.suppressed_by_filter = report.stats.suppressed_by_filter.values().sum();
        self.alert_json_bytes = alert_json_bytes;
        for a in &report.alerts {
            *self.alerts_by_rule.entry(a.rule.name.clone()).or_default() += 1;
            *self.matches_by_rule.entry(a.rule.name.clone()).or_default() += a.count;
        }
    }
}

/// Serializes each alert as the detect Lambda does for its S3 body; returns the bytes.
fn alert_json_bytes(report: &DetectReport) -> anyhow::Result<u64> {
    let mut total = 0;
    for alert in &report.alerts {
        total += serde_json::to_vec(alert)?.len() as u64;
    }
    Ok(total)
}

/// A sink that counts what it is given.
#[derive(Default)]
pub struct CountingSink(pub u64);

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Parse + detect in one pass over `reader` (a Firehose object, gzip or plain), writing the
/// normalized copy too.
pub fn fused(
    reader: impl Read + Send + 'static,
    origin: Origin,
    engine: &Engine,
    parallelism: Parallelism,
    codec: Codec,
) -> anyhow::Result<RunResult> {
    let start = Instant::now();
    // The normalized copy carries its techniques, as the parse Lambda writes it.
    let options = StageOptions {
        parallelism,
        mapper: Some(Arc::clone(&engine.mapper)),
        ..StageOptions::default()
    };
    let mut output = NdjsonOutput::new(CountingSink::default(), codec, parallelism, || {
        Ok(CountingSink::default())
    })?;
    let mut detection = Detection::new(engine.detector(), parallelism);
    let summary = stage::parse(reader, origin, &options, &mut output, Some(&mut detection))?;
    let (normalized, _) = output.finish()?;
    let report = detection.finish();
    let alert_bytes = alert_json_bytes(&report)?;
    let mode = match parallelism {
        Parallelism::Threads => format!("fused_{codec}"),
        Parallelism::Inline => format!("fused_single_thread_{codec}"),
    };
    let mut r = RunResult {
        normalized_bytes: normalized.0,
        ..RunResult::decoded(mode, start, &summary)
    };
    r.count_alerts(&report, alert_bytes);
    Ok(r)
}

/// What `tripline scan` does to one object: decode (inflate on a second thread) and detect
/// (on a third), with no normalized copy written. The one-process row without its output,
/// to show what that copy costs and how far decoding and detection alone are from the floor.
pub fn scan(
    reader: impl Read + Send + 'static,
    origin: Origin,
    engine: &Engine,
) -> anyhow::Result<RunResult> {
    let start = Instant::now();
    let options = StageOptions {
        parallelism: Parallelism::Threads,
        ..StageOptions::default()
    };
    let mut detection = Detection::new(engine.detector(), options.parallelism);
    // Quarantined records are counted in the summary, as `tripline scan` reports them.
    let summary = stage::parse(reader, origin, &options, &mut Discard, Some(&mut detection))?;
    let report = detection.finish();
    let alert_bytes = alert_json_bytes(&report)?;
    let mut r = RunResult::decoded("scan".into(), start, &summary);
    r.count_alerts(&report, alert_bytes);
    Ok(r)
}

/// The parse Lambda's work: decode, map each event to its techniques with `mapper` (built
/// once per container, as the function does) and write the normalized object to `out`,
/// through the same [`NdjsonOutput`]. Returns `out` too.
pub fn parse_stage<W: Write + Send + 'static>(
    reader: impl Read + Send + 'static,
    origin: Origin,
    out: W,
    mapper: Arc<Mapper>,
    parallelism: Parallelism,
    codec: Codec,
) -> anyhow::Result<(RunResult, W)> {
    let start = Instant::now();
    let options = StageOptions {
        parallelism,
        mapper: Some(mapper),
        ..StageOptions::default()
    };
    let events = Stored::Events(CountingWriter {
        inner: out,
        count: 0,
    });
    let mut output = NdjsonOutput::new(events, codec, parallelism, || {
        Ok(Stored::Quarantine(CountingSink::default()))
    })?;
    let summary = stage::parse(reader, origin, &options, &mut output, None)?;
    let (events, _) = output.finish()?;
    let Stored::Events(mut w) = events else {
        unreachable!("the events' writer comes back as it went in")
    };
    w.flush()?;
    let mode = match parallelism {
        Parallelism::Threads => format!("parse_{codec}"),
        Parallelism::Inline => format!("parse_inline_{codec}"),
    };
    let r = RunResult {
        normalized_bytes: w.count,
        ..RunResult::decoded(mode, start, &summary)
    };
    Ok((r, w.inner))
}

/// The two objects [`parse_stage`] writes, as one writer type.
enum Stored<W> {
    Events(CountingWriter<W>),
    Quarantine(CountingSink),
}

impl<W: Write> Write for Stored<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stored::Events(w) => w.write(buf),
            Stored::Quarantine(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stored::Events(w) => w.flush(),
            Stored::Quarantine(w) => w.flush(),
        }
    }
}

/// The detect Lambda's work on one normalized object (compressed NDJSON of events), with
/// [`stage::detect`].
pub fn detect_stage(
    reader: impl Read + Send + 'static,
    engine: &Engine,
    parallelism: Parallelism,
) -> anyhow::Result<RunResult> {
    let start = Instant::now();
    let mut detection = Detection::new(engine.detector(), parallelism);
    let (counted, compressed) = SharedCount::new(reader);
    let count = stage::detect(counted, parallelism, &mut detection, |_| {})?;
    let bytes_in = compressed.load(std::sync::atomic::Ordering::Relaxed);
    let report = detection.finish();
    let alert_bytes = alert_json_bytes(&report)?;
    let mut r = RunResult {
        mode: match parallelism {
            Parallelism::Threads => "detect",
            Parallelism::Inline => "detect_inline",
        }
        .into(),
        wall_s: start.elapsed().as_secs_f64(),
        bytes_in,
        bytes_decoded: count.bytes,
        events: count.events,
        ..Default::default()
    };
    r.count_alerts(&report, alert_bytes);
    Ok(r)
}

/// The floor: gzip decompression alone, into a sink.
pub fn gunzip(reader: impl Read) -> anyhow::Result<RunResult> {
    let start = Instant::now();
    let (counted, compressed) = SharedCount::new(reader);
    let mut dec = MultiGzDecoder::new(BufReader::with_capacity(64 << 10, counted));
    let n = io::copy(&mut dec, &mut io::sink())?;
    Ok(RunResult {
        mode: "gunzip".into(),
        wall_s: start.elapsed().as_secs_f64(),
        bytes_in: compressed.load(std::sync::atomic::Ordering::Relaxed),
        bytes_decoded: n,
        ..Default::default()
    })
}

/// Part of the lower bound: compressing the normalized output alone with `codec`, as the
/// parse Lambda does (`normalized` is the object the parse row wrote, in either codec). Only
/// the compression calls are timed; decompressing the input to get the bytes back is not.
/// Whatever the parsing costs, the parse Lambda must also inflate its input and compress
/// this much output.
pub fn compress_output(normalized: impl Read + Send, codec: Codec) -> anyhow::Result<RunResult> {
    let mut raw = BufReader::with_capacity(64 << 10, normalized);
    let found = Codec::sniff(io::BufRead::fill_buf(&mut raw)?).context("not compressed")?;
    let mut dec = found.decoder(raw);
    let mut enc = codec.encoder(CountingSink::default())?;
    let mut chunk = vec![0u8; DEFAULT_BUFFER_SIZE];
    let (mut deflate, mut plain) = (Duration::ZERO, 0u64);
    loop {
        let n = dec.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        plain += n as u64;
        let t = Instant::now();
        enc.write_all(&chunk[..n])?;
        deflate += t.elapsed();
    }
    let t = Instant::now();
    let out = enc.finish()?;
    deflate += t.elapsed();
    Ok(RunResult {
        mode: format!("compress_output_{codec}"),
        wall_s: deflate.as_secs_f64(),
        bytes_in: plain,
        normalized_bytes: out.0,
        ..Default::default()
    })
}

/// Counts bytes read through it into a shared counter (the reader may move to another
/// thread).
struct SharedCount<R> {
    inner: R,
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> SharedCount<R> {
    fn new(inner: R) -> (Self, Arc<std::sync::atomic::AtomicU64>) {
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        (
            SharedCount {
                inner,
                count: count.clone(),
            },
            count,
        )
    }
}

impl<R: Read> Read for SharedCount<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Counts bytes written through to the inner writer (the generator uses it too).
pub(crate) struct CountingWriter<W> {
    pub(crate) inner: W,
    pub(crate) count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Time to build the engine the Lambdas build at init: the ATT&CK catalog, the compiled
/// built-in rules and the mappings (total, and the three parts in that order).
pub fn startup() -> anyhow::Result<(Duration, [f64; 3], Engine)> {
    let t = Instant::now();
    let _ = Catalog::embedded();
    let catalog = t.elapsed();
    let rules = Arc::new(RuleSet::builtin()?);
    let compiled = t.elapsed();
    let mapper = Arc::new(Mapper::builtin()?);
    let total = t.elapsed();
    let split = [
        catalog.as_secs_f64(),
        (compiled - catalog).as_secs_f64(),
        (total - compiled).as_secs_f64(),
    ];
    let engine = Engine {
        rules,
        mapper,
        config: Arc::new(Config::default()),
        filters: None,
        iocs: None,
    };
    Ok((total, split, engine))
}

/// `VmHWM` (peak resident set) of this process, in KiB.
pub fn peak_rss_kib() -> u64 {
    proc_status_kib("VmHWM:")
}

/// CPU time this process has used so far (all threads, live and finished), in seconds.
pub fn cpu_seconds() -> f64 {
    // Fields 14 and 15 of /proc/self/stat, after the parenthesized command name, in clock
    // ticks of USER_HZ, which Linux fixes at 100 for user space.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

/// `VmRSS` of this process, in KiB.
pub fn rss_kib() -> u64 {
    proc_status_kib("VmRSS:")
}

fn proc_status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
