//! The whole pipeline over one object, through the same library calls as the Lambdas.
//!
//! - [`fused`]: what `parse` + `detect` do to one Firehose object, in one process (as
//!   `tripline scan` runs them): decode (inflate on a second thread, frame, parse,
//!   normalize), write each event as NDJSON into the parse Lambda's `compress::Output`
//!   (256 KiB buffers compressed with the chosen [`Codec`], zstd by default, on a third
//!   thread, here into a counting sink instead of an S3 multipart upload), then
//!   `Detector::observe` (ATT&CK mapping, derived fields, rule gates, every rule,
//!   aggregation; on a fourth thread, `ThreadedDetector`, as `tripline scan` runs it with a
//!   core to spare), then each alert as JSON (the detect Lambda's `serde_json::to_vec(alert)`).
//! - [`parse_stage`] and [`detect_stage`]: the two Lambdas as deployed, separately: parse
//!   writes the normalized object, detect reads it back through `NormalizedReader`, as
//!   `tripline-detect` does, and evaluates it.
//! - [`gunzip`]: the floor, decompression alone into a sink (same flate2 backend);
//!   [`compress_output`]: compressing the normalized output alone (the lower bound).
//!
//! With `timed`, cheap per-item timers split the wall time by stage (detection then runs
//! inline, so that its time can be taken); the untimed run is the one to quote for
//! throughput.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use tripline_core::attack::Catalog;
use tripline_core::compress::{self, Codec, DEFAULT_BUFFER_SIZE};
use tripline_core::config::Config;
use tripline_core::decode::{Decoded, ObjectDecoder, Options, Origin, Summary};
use tripline_core::mapping::Mapper;
use tripline_core::normalized::{Line, NormalizedReader};
use tripline_core::rules::{DetectReport, Detection, Detector, RuleSet};

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
}

impl Engine {
    /// The built-in pack and mappings with default settings: what the Lambdas load.
    pub fn builtin() -> anyhow::Result<Engine> {
        let _ = Catalog::embedded();
        Ok(Engine {
            rules: Arc::new(RuleSet::builtin()?),
            mapper: Arc::new(Mapper::builtin()?),
            config: Arc::new(Config::default()),
        })
    }

    /// A detector whose object time is fixed ([`OBJECT_TIME`]), so that every run and mode
    /// places events without a time alike and reports the same alerts.
    fn detector(&self) -> Detector {
        Detector::new(
            Arc::clone(&self.rules),
            Some(Arc::clone(&self.mapper)),
            Arc::clone(&self.config),
        )
        .with_object_time(OBJECT_TIME)
    }
}

/// Wall time split by stage (only filled by timed runs).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Stages {
    /// Inside the decoder: gunzip + framing + JSON parse + normalization.
    pub decode_s: f64,
    /// Event to NDJSON, through the compressing writer.
    pub serialize_s: f64,
    /// `Detector::observe` (mapping, derive, rules, aggregation) and `finish`.
    pub detect_s: f64,
    /// Reading the normalized object back (detect Lambda only): decompress + lines + `Event`
    /// parse.
    pub reread_s: f64,
    /// Alerts to JSON.
    pub alerts_s: f64,
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
    pub alert_json_bytes: u64,
    /// Alerts per rule name.
    pub alerts_by_rule: BTreeMap<String, u64>,
    /// Matches counted into alerts, per rule name.
    pub matches_by_rule: BTreeMap<String, u64>,
    pub stages: Stages,
    /// Start-up only: seconds to load the ATT&CK catalog, compile the rules, load mappings.
    pub startup_split: [f64; 3],
    /// `VmHWM` of the process at the end of the run, in KiB (filled by the child runner).
    pub peak_rss_kib: u64,
    /// CPU seconds (user + system, all threads) of the child process, start-up included:
    /// what a Lambda with one vCPU or less is billed for, whatever the threads overlap.
    pub cpu_s: f64,
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

#[inline]
fn lap(timed: bool, since: &mut Instant, acc: &mut f64) {
    if timed {
        let now = Instant::now();
        *acc += (now - *since).as_secs_f64();
        *since = now;
    }
}

fn write_line<T: Serialize + ?Sized>(out: &mut impl Write, v: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    out.write_all(b"\n")
}

/// Parse + detect in one pass over `reader` (a Firehose object, gzip or plain).
pub fn fused(
    reader: impl Read + Send + 'static,
    origin: Origin,
    engine: &Engine,
    timed: bool,
    codec: Codec,
) -> anyhow::Result<RunResult> {
    fused_with(reader, origin, engine, timed, Output::Threaded(codec))
}

/// How [`fused_with`] writes the normalized output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The product: `ObjectDecoder::threaded` (inflate on its own thread) and a threaded
    /// `compress::Output` (compression on another), as the parse Lambda runs above one vCPU.
    Threaded(Codec),
    /// Everything on the caller's thread: `ObjectDecoder::new` and a 256 KiB `BufWriter`
    /// in front of the encoder (the parse Lambda's writer from d2366c0 until the threads).
    /// What a Lambda with less than one vCPU effectively runs.
    SingleThread(Codec),
    /// Events written straight into a `GzEncoder`, as before d2366c0 (serde_json wrote
    /// token by token then, and each write was a deflate call).
    Unbuffered,
}

/// [`fused`] with the product's writer or one of the earlier ones, kept to show what each
/// change was worth.
pub fn fused_with(
    reader: impl Read + Send + 'static,
    origin: Origin,
    engine: &Engine,
    timed: bool,
    output: Output,
) -> anyhow::Result<RunResult> {
    let start = Instant::now();
    let mut st = Stages::default();
    let mut events_out = OutWriter::new(output, CountingSink::default())?;
    let mut quarantine_out: Option<OutWriter<CountingSink>> = None;
    // As `tripline scan` runs where a second core is free: detection on its own thread
    // (inline when timed: a stage on another thread cannot be timed per item here).
    let threaded = matches!(output, Output::Threaded(_)) && !timed;
    let mut detector = Detection::new(engine.detector(), threaded);
    let mut decoder = match output {
        Output::Threaded(_) => ObjectDecoder::threaded(reader, origin, Options::default()),
        Output::SingleThread(_) | Output::Unbuffered => {
            ObjectDecoder::new(reader, origin, Options::default())
        }
    };
    let mut line = Vec::new();
    let mut t = Instant::now();
    loop {
        let item = decoder.next();
        lap(timed, &mut t, &mut st.decode_s);
        match item {
            None => break,
            Some(Decoded::Event(e)) => {
                e.write_line(&mut events_out, &mut line)?;
                lap(timed, &mut t, &mut st.serialize_s);
                // Detected events go back to the decoder to be refilled.
                detector.observe_then(e, |e| decoder.recycle(e));
                lap(timed, &mut t, &mut st.detect_s);
            }
            Some(Decoded::Quarantined(q)) => {
                let out = match &mut quarantine_out {
                    Some(out) => out,
                    slot @ None => slot.insert(OutWriter::new(output, CountingSink::default())?),
                };
                write_line(out, &*q)?;
                lap(timed, &mut t, &mut st.serialize_s);
            }
        }
    }
    let summary = decoder.summary();
    let normalized = events_out.finish()?.0;
    if let Some(q) = quarantine_out {
        q.finish()?;
    }
    lap(timed, &mut t, &mut st.serialize_s);
    let report = detector.finish();
    lap(timed, &mut t, &mut st.detect_s);
    let alert_bytes = alert_json_bytes(&report)?;
    lap(timed, &mut t, &mut st.alerts_s);
    let mode = match output {
        Output::Threaded(codec) => format!("fused_{codec}"),
        Output::SingleThread(codec) => format!("fused_single_thread_{codec}"),
        Output::Unbuffered => "fused_unbuffered_before_d2366c0".into(),
    };
    let mut r = RunResult {
        normalized_bytes: normalized,
        stages: st,
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
    let mut detector = Detection::new(engine.detector(), true);
    let mut decoder = ObjectDecoder::threaded(reader, origin, Options::default());
    while let Some(item) = decoder.next() {
        if let Decoded::Event(e) = item {
            detector.observe_then(e, |e| decoder.recycle(e));
        }
        // Quarantined records are counted in the summary, as `tripline scan` reports them.
    }
    let summary = decoder.summary();
    let report = detector.finish();
    let alert_bytes = alert_json_bytes(&report)?;
    let mut r = RunResult::decoded("scan".into(), start, &summary);
    r.count_alerts(&report, alert_bytes);
    Ok(r)
}

/// The parse Lambda's work: decode and write the normalized object to `out`, through the
/// same writer (compressing on a second thread, which owns `out`). Returns `out` too.
pub fn parse_stage<W: Write + Send + 'static>(
    reader: impl Read + Send + 'static,
    origin: Origin,
    out: W,
    timed: bool,
    threads: bool,
    codec: Codec,
) -> anyhow::Result<(RunResult, W)> {
    let start = Instant::now();
    let mut st = Stages::default();
    // As `tripline-parse` does: inflate and compress threads above one vCPU, inline below.
    let counted = CountingWriter {
        inner: out,
        count: 0,
    };
    let mut events_out = compress::Output::new(counted, codec, threads)?;
    let mut quarantine_out: Option<compress::Output<CountingSink>> = None;
    let mut decoder = if threads {
        ObjectDecoder::threaded(reader, origin, Options::default())
    } else {
        ObjectDecoder::new(reader, origin, Options::default())
    };
    let mut line = Vec::new();
    let mut t = Instant::now();
    loop {
        let item = decoder.next();
        lap(timed, &mut t, &mut st.decode_s);
        match item {
            None => break,
            Some(Decoded::Event(e)) => {
                e.write_line(&mut events_out, &mut line)?;
                decoder.recycle(e);
            }
            Some(Decoded::Quarantined(q)) => {
                let out = match &mut quarantine_out {
                    Some(out) => out,
                    slot @ None => slot.insert(compress::Output::new(
                        CountingSink::default(),
                        codec,
                        threads,
                    )?),
                };
                write_line(out, &*q)?;
            }
        }
        lap(timed, &mut t, &mut st.serialize_s);
    }
    let summary = decoder.summary();
    if let Some(q) = quarantine_out {
        q.finish()?;
    }
    let mut w = events_out.finish()?;
    w.flush()?;
    lap(timed, &mut t, &mut st.serialize_s);
    let mode = format!("{}_{codec}", if threads { "parse" } else { "parse_inline" });
    let r = RunResult {
        normalized_bytes: w.count,
        stages: st,
        ..RunResult::decoded(mode, start, &summary)
    };
    Ok((r, w.inner))
}

/// The detect Lambda's work on one normalized object (compressed NDJSON of events).
/// `threads`: decompress on a second thread, as `tripline-detect` does above 1,769 MB.
pub fn detect_stage(
    reader: impl Read + Send + 'static,
    engine: &Engine,
    timed: bool,
    threads: bool,
) -> anyhow::Result<RunResult> {
    let start = Instant::now();
    let mut st = Stages::default();
    // As `tripline-detect`: detection on its own thread too with threads (inline when timed).
    let mut detector = Detection::new(engine.detector(), threads && !timed);
    let (counted, compressed) = SharedCount::new(reader);
    // What `tripline-detect` does: a `NormalizedReader`, inline or threaded.
    let mut lines = if threads {
        NormalizedReader::threaded(counted)
    } else {
        NormalizedReader::new(counted)
    };
    let mut t = Instant::now();
    let mut events = 0u64;
    loop {
        let line = lines.next();
        lap(timed, &mut t, &mut st.reread_s);
        match line.transpose()? {
            None => break,
            Some(Line::Event(event)) => {
                events += 1;
                detector.observe(event);
            }
            Some(Line::Bad(_)) => {}
        }
        lap(timed, &mut t, &mut st.detect_s);
    }
    let decoded = lines.bytes();
    let bytes_in = compressed.load(std::sync::atomic::Ordering::Relaxed);
    let report = detector.finish();
    lap(timed, &mut t, &mut st.detect_s);
    let alert_bytes = alert_json_bytes(&report)?;
    lap(timed, &mut t, &mut st.alerts_s);
    let mut r = RunResult {
        mode: if threads { "detect" } else { "detect_inline" }.into(),
        wall_s: start.elapsed().as_secs_f64(),
        bytes_in,
        bytes_decoded: decoded,
        events,
        stages: st,
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

/// The normalized-output writer of [`fused_with`]: the product's [`compress::Output`]
/// (threaded or inline), or the unbuffered gzip encoder of before d2366c0.
enum OutWriter<W: Write + Send + 'static> {
    Product(compress::Output<W>),
    Direct(GzEncoder<W>),
}

impl<W: Write + Send + 'static> OutWriter<W> {
    fn new(output: Output, inner: W) -> io::Result<Self> {
        Ok(match output {
            Output::Threaded(codec) => {
                OutWriter::Product(compress::Output::new(inner, codec, true)?)
            }
            Output::SingleThread(codec) => {
                OutWriter::Product(compress::Output::new(inner, codec, false)?)
            }
            Output::Unbuffered => OutWriter::Direct(GzEncoder::new(inner, Compression::fast())),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            OutWriter::Product(w) => w.finish(),
            OutWriter::Direct(gz) => gz.finish(),
        }
    }
}

impl<W: Write + Send + 'static> Write for OutWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            OutWriter::Product(w) => w.write(buf),
            OutWriter::Direct(w) => w.write(buf),
        }
    }
    // Events arrive as one `write_all` per line, quarantine records one per serde_json
    // token: forward it, so each variant takes its own fast path exactly as the writer it
    // stands for does.
    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            OutWriter::Product(w) => w.write_all(buf),
            OutWriter::Direct(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            OutWriter::Product(w) => w.flush(),
            OutWriter::Direct(w) => w.flush(),
        }
    }
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
