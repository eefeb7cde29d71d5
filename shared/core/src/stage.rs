//! The pipeline's two stages, as every front end runs them: the parse and detect functions,
//! `tripline parse` and `tripline scan`, and the bench.
//!
//! - [`parse`]: one raw object (a Firehose object, gzip or plain) into normalized events and
//!   quarantined records, handed to a [`Sink`] ([`NdjsonOutput`] writes them as compressed
//!   NDJSON, as the parse function stores them) and, in one process, to a [`Detection`].
//! - [`detect`]: one normalized object (what [`NdjsonOutput`] wrote) into a [`Detection`].
//! - [`Detection`]: the [`Detector`] over a stream of events, whose [`Detection::finish`]
//!   gives the alerts.
//!
//! How the work is spread over threads is a value, [`Parallelism`], in [`StageOptions`]: with
//! [`Parallelism::Threads`], inflating, compressing and detecting each run on a thread of
//! their own beside the decoding; with [`Parallelism::Inline`], all of it runs on the
//! caller's thread. The output is the same either way, byte for byte and alert for alert.
//!
//! Events travel as `Box<Event>` and come back to the decoder once written and detected on,
//! to be refilled with a later row; how many exist at once is bounded, whatever the object's
//! size.
//!
//! ```
//! use std::sync::Arc;
//! use tripline_core::decode::Origin;
//! use tripline_core::stage::{self, Detection, Discard, StageOptions};
//! use tripline_core::{Config, Detector, RuleSet};
//!
//! let log = br#"{"name":"pack_incident-response_process_open_sockets","hostIdentifier":"web-1","unixTime":1795356000,"action":"added","columns":{"pid":"4242","path":"/bin/bash","remote_address":"203.0.113.9","remote_port":"4444","local_port":"51000","protocol":"6","family":"2"}}
//! "#;
//! let options = StageOptions::default();
//! let detector = Detector::new(RuleSet::builtin()?, None, Config::default());
//! let mut detection = Detection::new(detector, options.parallelism);
//! let summary = stage::parse(&log[..], Origin::path("osquery.log"), &options, &mut Discard, Some(&mut detection))?;
//! assert_eq!((summary.records, summary.events), (1, 1));
//! let report = detection.finish();
//! assert_eq!(report.stats.events, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::compress::{Codec, Output};
use crate::decode::{Decoded, ObjectDecoder, Options, Origin, Summary};
use crate::event::{Event, Quarantined};
use crate::mapping::{EventMapper, Mapper};
use crate::normalized::{BadLine, Line, NormalizedReader};
use crate::rules::{DetectReport, Detector};
use crate::worker::{Stopped, Worker, EVENT_BATCH, EVENT_BATCHES};

pub use crate::worker::Parallelism;

/// How a stage runs.
#[derive(Debug, Clone, Default)]
pub struct StageOptions {
    /// Threads beside the caller's, or none.
    pub parallelism: Parallelism,
    /// The decoder's limits and query definitions.
    pub decode: Options,
    /// What sets each parsed event's `attack` before it reaches the sink ([`EventMapper`]:
    /// by query, else by the row's first table), so the normalized objects name their
    /// techniques without the detect stage. `None` (the default) leaves `attack` empty: for a
    /// run whose events go only to a [`Detection`], which maps them itself.
    pub mapper: Option<Arc<Mapper>>,
}

/// Where [`parse`] puts what it decodes.
pub trait Sink {
    /// One normalized event. The event goes back to the decoder after this returns, so keep
    /// a copy of anything needed later.
    fn event(&mut self, event: &Event) -> io::Result<()>;
    /// One record that could not be normalized, with its reason; or, at most once per
    /// object and after its other items, the object itself ([`Quarantined::object`]: it
    /// could not be read to its end, or holds no record). Both kinds belong in the same
    /// quarantine output.
    fn quarantined(&mut self, record: &Quarantined) -> io::Result<()>;
    /// The raw bytes read so far, every few thousand items (for progress bars).
    fn progress(&mut self, _bytes_in: u64) {}
}

/// A [`Sink`] that keeps nothing: for a run whose events only go to a [`Detection`] and
/// whose quarantine is only counted (in the [`Summary`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl Sink for Discard {
    fn event(&mut self, _: &Event) -> io::Result<()> {
        Ok(())
    }

    fn quarantined(&mut self, _: &Quarantined) -> io::Result<()> {
        Ok(())
    }
}

/// Items between two [`Sink::progress`] calls.
const PROGRESS_EVERY: u32 = 4096;

/// Decodes one raw object: each event to `sink` and then to `detection` (when given), each
/// quarantine entry (records, and the object's own if it gets one) to `sink`.
///
/// Returns the object's accounting. A damaged or unreadable object is not an error here: its
/// records before the damage are kept, [`Summary::error`] says what happened (the caller
/// decides whether a read error is worth a retry) and damage is also the object's quarantine
/// entry. An error is only what `sink` returned, which stops the object.
pub fn parse(
    reader: impl Read + Send + 'static,
    origin: Origin,
    options: &StageOptions,
    sink: &mut impl Sink,
    mut detection: Option<&mut Detection>,
) -> io::Result<Summary> {
    let mut decoder = ObjectDecoder::with_parallelism(
        reader,
        origin,
        options.decode.clone(),
        options.parallelism,
    );
    let mut mapping = options.mapper.clone().map(EventMapper::new);
    let mut since_progress = 0u32;
    while let Some(item) = decoder.next() {
        match item {
            Decoded::Event(mut event) => {
                if let Some(mapping) = &mut mapping {
                    mapping.annotate(&mut event);
                }
                sink.event(&event)?;
                match detection.as_deref_mut() {
                    Some(d) => d.observe_then(event, |e| decoder.recycle(e)),
                    None => decoder.recycle(event),
                }
            }
            Decoded::Quarantined(record) => sink.quarantined(&record)?,
        }
        since_progress += 1;
        if since_progress == PROGRESS_EVERY {
            since_progress = 0;
            sink.progress(decoder.summary().bytes_in);
        }
    }
    Ok(decoder.summary())
}

/// What [`detect`] read from one normalized object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NormalizedCount {
    /// Events handed to the detection.
    pub events: u64,
    /// Lines that were not events (each also went to `on_bad`).
    pub bad_lines: u64,
    /// Decompressed bytes read.
    pub bytes: u64,
}

/// Reads one normalized object (compressed NDJSON of events, as [`NdjsonOutput`] writes it)
/// into `detection`. A line that is not an event goes to `on_bad` and reading goes on; a read
/// error stops the object and is returned.
pub fn detect(
    reader: impl Read + Send + 'static,
    parallelism: Parallelism,
    detection: &mut Detection,
    mut on_bad: impl FnMut(&BadLine),
) -> io::Result<NormalizedCount> {
    let mut lines = NormalizedReader::with_parallelism(reader, parallelism);
    let mut count = NormalizedCount::default();
    for line in lines.by_ref() {
        match line? {
            Line::Event(event) => {
                count.events += 1;
                detection.observe(event);
            }
            Line::Bad(bad) => {
                count.bad_lines += 1;
                on_bad(&bad);
            }
        }
    }
    count.bytes = lines.bytes();
    Ok(count)
}

/// A [`Sink`] that writes events as compressed NDJSON, one event a line, and quarantine
/// entries (records' and objects') the same way into a second writer opened at the first
/// one: what the parse function stores (and reads back in [`detect`]).
pub struct NdjsonOutput<W: Write + Send + 'static> {
    events: Output<W>,
    quarantine: Option<Output<W>>,
    open_quarantine: Box<dyn FnMut() -> io::Result<W> + Send>,
    codec: Codec,
    parallelism: Parallelism,
    /// One event's line, reused.
    line: Vec<u8>,
}

impl<W: Write + Send + 'static> NdjsonOutput<W> {
    /// Events compressed with `codec` into `events`; quarantined records into what
    /// `open_quarantine` returns, called only if there is one.
    pub fn new(
        events: W,
        codec: Codec,
        parallelism: Parallelism,
        open_quarantine: impl FnMut() -> io::Result<W> + Send + 'static,
    ) -> io::Result<Self> {
        Ok(NdjsonOutput {
            events: Output::new(events, codec, parallelism)?,
            quarantine: None,
            open_quarantine: Box::new(open_quarantine),
            codec,
            parallelism,
            line: Vec::new(),
        })
    }

    /// Ends both compressed streams; returns the events' writer and the quarantine's, if one
    /// was opened (neither flushed: completing an upload is the caller's part).
    pub fn finish(self) -> io::Result<(W, Option<W>)> {
        let quarantine = self.quarantine.map(Output::finish).transpose()?;
        Ok((self.events.finish()?, quarantine))
    }
}

impl<W: Write + Send + 'static> Sink for NdjsonOutput<W> {
    #[inline]
    fn event(&mut self, event: &Event) -> io::Result<()> {
        event.write_line(&mut self.events, &mut self.line)
    }

    fn quarantined(&mut self, record: &Quarantined) -> io::Result<()> {
        let out = match &mut self.quarantine {
            Some(out) => out,
            slot @ None => {
                let inner = (self.open_quarantine)()?;
                slot.insert(Output::new(inner, self.codec, self.parallelism)?)
            }
        };
        serde_json::to_writer(&mut *out, record)?;
        out.write_all(b"\n")
    }
}

/// A [`Detector`] over a stream of events, on the caller's thread or on one of its own (with
/// [`Parallelism::Threads`]). Either way it sees the events in the order they came, and
/// [`Detection::finish`] gives the report an inline detector would.
#[derive(Debug)]
pub struct Detection(DetectionKind);

#[derive(Debug)]
enum DetectionKind {
    /// Boxed: a `Detector` carries its gates' per-event memory and is much larger than a
    /// `Threaded`.
    Inline(Box<Detector>),
    Threaded(Threaded),
}

impl Detection {
    /// `detector`, run as `parallelism` says (inline if no thread can be started).
    pub fn new(detector: Detector, parallelism: Parallelism) -> Self {
        Detection(match parallelism {
            Parallelism::Threads => match Threaded::spawn(detector) {
                Ok(threaded) => DetectionKind::Threaded(threaded),
                Err(detector) => DetectionKind::Inline(detector),
            },
            Parallelism::Inline => DetectionKind::Inline(Box::new(detector)),
        })
    }

    /// Detects on `event`, now or on the detection thread (which then frees it).
    #[inline]
    pub fn observe(&mut self, mut event: Box<Event>) {
        match &mut self.0 {
            DetectionKind::Inline(d) => {
                d.observe(&mut event);
            }
            DetectionKind::Threaded(d) => d.push(event, false),
        }
    }

    /// Like [`Detection::observe`], and hands to `done` each event detection has finished
    /// with, for the decoder to refill: at once inline, a batch at a time threaded.
    #[inline]
    fn observe_then(&mut self, mut event: Box<Event>, mut done: impl FnMut(Box<Event>)) {
        match &mut self.0 {
            DetectionKind::Inline(d) => {
                d.observe(&mut event);
                done(event);
            }
            DetectionKind::Threaded(d) => {
                d.push(event, true);
                for event in d.spent.drain(..) {
                    done(event);
                }
            }
        }
    }

    /// [`Detector::set_object_time`] for the events observed from now on.
    pub fn set_object_time(&mut self, unix_seconds: i64) {
        match &mut self.0 {
            DetectionKind::Inline(d) => d.set_object_time(unix_seconds),
            DetectionKind::Threaded(d) => d.set_object_time(unix_seconds),
        }
    }

    /// The detector's object time ([`Detector::object_time`]).
    pub fn object_time(&self) -> i64 {
        match &self.0 {
            DetectionKind::Inline(d) => d.object_time(),
            DetectionKind::Threaded(d) => d.object_time,
        }
    }

    /// [`Detector::finish`], once every observed event has been detected on. A panic on the
    /// detection thread (a bug, as it would be inline) resumes here.
    pub fn finish(self) -> DetectReport {
        match self.0 {
            DetectionKind::Inline(d) => d.finish(),
            DetectionKind::Threaded(d) => d.finish(),
        }
    }

    /// Whether detection runs on a thread of its own.
    pub fn parallelism(&self) -> Parallelism {
        match self.0 {
            DetectionKind::Inline(_) => Parallelism::Inline,
            DetectionKind::Threaded(_) => Parallelism::Threads,
        }
    }
}

/// Events as the decoder and the normalized reader yield them, boxed: handing one to a batch
/// and back out moves a pointer, not the whole `Event`.
#[allow(clippy::vec_box)]
type Batch = Vec<Box<Event>>;

/// A batch for the detection thread, whether its events should come back once detected, and
/// the object time they are detected with.
struct Job {
    events: Batch,
    give_back: bool,
    object_time: i64,
}

/// A [`Detector`] on a [`Worker`] thread: events go over in batches of [`EVENT_BATCH`], at
/// most [`EVENT_BATCHES`] of which exist at once, and come back to be refilled.
struct Threaded {
    batch: Batch,
    /// Whether `batch` holds events to give back once detected.
    give_back: bool,
    /// The object time of the events in `batch`: a batch never mixes two, so each event is
    /// detected with the object time that was set when it was observed.
    object_time: i64,
    /// Detected events back from the thread, not yet given back to the caller.
    spent: Batch,
    allocated: usize,
    /// `None` once joined.
    worker: Option<Worker<Job, Batch, Detector>>,
}

impl Threaded {
    /// Moves `detector` to a thread of its own; gives it back if no thread can be started.
    fn spawn(detector: Detector) -> Result<Self, Box<Detector>> {
        let object_time = detector.object_time();
        // Where the detector waits for its thread: a thread that fails to start drops its
        // closure, and the detector is taken back from here.
        let handed = std::sync::Arc::new(std::sync::Mutex::new(Some(detector)));
        let taken = handed.clone();
        let spawned = Worker::spawn("detector", EVENT_BATCHES, move |jobs, back| {
            let mut detector = take(&taken).expect("the detector is handed over once");
            drop(taken);
            for Job {
                mut events,
                give_back,
                object_time,
            } in jobs
            {
                detector.set_object_time(object_time);
                for event in &mut events {
                    detector.observe(event);
                    // What the detector added is let go of here, off the caller's thread
                    // (a refilled event's `attack` starts empty anyway).
                    event.attack.clear();
                }
                if !give_back {
                    // Freed here too.
                    events.clear();
                }
                // The caller may be gone (finishing); the batch is then just dropped.
                let _ = back.send(events);
            }
            detector
        });
        match spawned {
            Ok(worker) => Ok(Threaded {
                batch: Vec::with_capacity(EVENT_BATCH),
                give_back: false,
                object_time,
                spent: Vec::new(),
                allocated: 1,
                worker: Some(worker),
            }),
            Err(_) => Err(Box::new(
                take(&handed).expect("a thread that never started"),
            )),
        }
    }

    /// Queues `event`; with `give_back`, it comes back in [`Threaded::spent`] once detected.
    #[inline]
    fn push(&mut self, event: Box<Event>, give_back: bool) {
        self.give_back |= give_back;
        self.batch.push(event);
        if self.batch.len() == EVENT_BATCH {
            self.hand_over();
        }
    }

    fn set_object_time(&mut self, unix_seconds: i64) {
        if unix_seconds != self.object_time && !self.batch.is_empty() {
            self.hand_over();
        }
        self.object_time = unix_seconds;
    }

    fn finish(mut self) -> DetectReport {
        if !self.batch.is_empty() {
            self.hand_over();
        }
        self.join().finish()
    }

    #[cold]
    fn hand_over(&mut self) {
        let job = Job {
            events: std::mem::take(&mut self.batch),
            give_back: std::mem::take(&mut self.give_back),
            object_time: self.object_time,
        };
        let Some(worker) = &self.worker else {
            self.stopped()
        };
        if worker.send(job).is_err() {
            self.stopped();
        }
        let mut batch = match worker.try_done() {
            Ok(Some(back)) => back,
            Ok(None) if self.allocated < EVENT_BATCHES => {
                self.allocated += 1;
                Vec::with_capacity(EVENT_BATCH)
            }
            Ok(None) => match worker.wait_done() {
                Ok(back) => back,
                Err(Stopped) => self.stopped(),
            },
            Err(Stopped) => self.stopped(),
        };
        // Detected events to give back: out of the batch, which is refilled.
        self.spent.append(&mut batch);
        self.batch = batch;
    }

    /// The thread is gone while we still hold its channel: only a panic ends it that early,
    /// and joining resumes that panic here.
    #[cold]
    fn stopped(&mut self) -> ! {
        self.join();
        unreachable!("the detection thread stopped without panicking");
    }

    /// Closes the channel and waits for the thread, resuming its panic if it had one.
    fn join(&mut self) -> Detector {
        let worker = self.worker.take().expect("joined once");
        match worker.join() {
            Ok(detector) => detector,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// The detector out of its hand-over cell.
fn take(cell: &std::sync::Mutex<Option<Detector>>) -> Option<Detector> {
    cell.lock().ok().and_then(|mut d| d.take())
}

impl std::fmt::Debug for Threaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Threaded")
            .field("queued", &self.batch.len())
            .field("batches", &self.allocated)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::decode::{Decoded, ObjectDecoder, Options, Origin};
    use crate::mapping::Mapper;
    use crate::rules::RuleSet;
    use std::io::Read;
    use std::sync::Arc;

    const BATCH: usize = EVENT_BATCH;
    const BATCHES: usize = EVENT_BATCHES;
    const BOTH: [Parallelism; 2] = [Parallelism::Threads, Parallelism::Inline];

    fn events() -> Vec<Event> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/osquery");
        let mut out = Vec::new();
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for path in names {
            let bytes = std::fs::read(&path).unwrap();
            let origin = Origin::path(path.display().to_string());
            for item in ObjectDecoder::new(&bytes[..], origin, Options::default()) {
                if let Decoded::Event(e) = item {
                    out.push(*e);
                }
            }
        }
        out
    }

    /// 2026-11-22T14:00:00Z: fixed, so that two detectors created a moment apart place
    /// events without a time alike.
    const OBJECT_TIME: i64 = 1_795_356_000;

    fn detector() -> Detector {
        Detector::new(
            RuleSet::builtin().unwrap(),
            Some(Arc::new(Mapper::builtin().unwrap())),
            Config::default(),
        )
        .with_object_time(OBJECT_TIME)
    }

    #[test]
    fn same_report_as_inline_detection() {
        // The samples three times over: the repeats land in the same alert groups.
        let one = events();
        let events: Vec<Event> = (0..3).flat_map(|_| one.iter().cloned()).collect();
        // Several batches, and a partial last one.
        assert!(events.len() > 2 * BATCH, "{} events", events.len());
        let mut inline = detector();
        for mut e in events.clone() {
            inline.observe(&mut e);
        }
        let inline = inline.finish();
        assert!(!inline.alerts.is_empty(), "the samples fire rules");
        for take in [0, 1, BATCH, BATCH + 1, events.len()] {
            let mut threaded = Detection::new(detector(), Parallelism::Threads);
            let mut alone = detector();
            for mut e in events.iter().take(take).cloned() {
                threaded.observe(Box::new(e.clone()));
                alone.observe(&mut e);
            }
            let (threaded, alone) = (threaded.finish(), alone.finish());
            assert_eq!(threaded.alerts, alone.alerts, "first {take} events");
            assert_eq!(threaded.stats, alone.stats, "first {take} events");
        }
        for threaded in BOTH {
            let mut detection = Detection::new(detector(), threaded);
            assert_eq!(detection.parallelism(), threaded);
            for e in events.iter().cloned() {
                detection.observe(Box::new(e));
            }
            let report = detection.finish();
            assert_eq!(report.alerts, inline.alerts, "threaded: {threaded:?}");
            assert_eq!(report.stats, inline.stats, "threaded: {threaded:?}");
        }
    }

    #[test]
    fn observe_then_gives_back_every_event_once_and_detects_alike() {
        let one = events();
        let mut events: Vec<Event> = (0..3).flat_map(|_| one.iter().cloned()).collect();
        // Tag each event, so the ones given back can be told apart.
        for (i, e) in events.iter_mut().enumerate() {
            e.source.record = i as u64;
        }
        let mut inline = detector();
        for mut e in events.clone() {
            inline.observe(&mut e);
        }
        let inline = inline.finish();
        for threaded in BOTH {
            let mut detection = Detection::new(detector(), threaded);
            let mut back = Vec::new();
            for e in events.iter().cloned() {
                detection.observe_then(Box::new(e), |e| back.push(e.source.record));
            }
            let report = detection.finish();
            assert_eq!(report.alerts, inline.alerts, "threaded: {threaded:?}");
            assert_eq!(report.stats, inline.stats, "threaded: {threaded:?}");
            // In order, each once; threaded, all but the batches still in flight.
            assert!(back.iter().enumerate().all(|(i, r)| *r == i as u64));
            let in_flight = if threaded.threads() {
                BATCH * BATCHES
            } else {
                0
            };
            assert!(
                back.len() + in_flight >= events.len(),
                "{} back",
                back.len()
            );
        }
    }

    #[test]
    fn object_times_reach_the_events_observed_after_them() {
        // The samples without their times, as three objects of different hours, whose
        // boundaries fall inside batches.
        let mut one = events();
        for e in &mut one {
            e.time = None;
            e.unix_time = None;
        }
        let objects: Vec<(i64, &[Event])> =
            (0..3).map(|i| (OBJECT_TIME + i * 3600, &one[..])).collect();
        assert!(
            !one.len().is_multiple_of(BATCH),
            "object boundaries inside a batch"
        );
        let mut inline = detector();
        for (t, events) in &objects {
            inline.set_object_time(*t);
            for e in events.iter() {
                inline.observe(&mut e.clone());
            }
        }
        let inline = inline.finish();
        let starts: std::collections::BTreeSet<&str> = inline
            .alerts
            .iter()
            .map(|a| a.dedup.window_start.as_str())
            .collect();
        // Rules with hourly windows tell the three objects apart.
        assert!(starts.contains("2026-11-22T15:00:00Z"), "{starts:?}");
        assert!(starts.contains("2026-11-22T16:00:00Z"), "{starts:?}");
        assert!(inline
            .alerts
            .iter()
            .all(|a| a.time_from == crate::alert::TimeFrom::Object));
        for threaded in BOTH {
            let mut detection = Detection::new(detector(), threaded);
            for (t, events) in &objects {
                detection.set_object_time(*t);
                for e in events.iter() {
                    detection.observe(Box::new(e.clone()));
                }
            }
            let report = detection.finish();
            assert_eq!(report.alerts, inline.alerts, "threaded: {threaded:?}");
            assert_eq!(report.stats, inline.stats, "threaded: {threaded:?}");
        }
    }

    /// What [`parse`] writes through [`NdjsonOutput`] for `raw`: the events' text, and the
    /// quarantine's if it was opened.
    fn ndjson(raw: &[u8], parallelism: Parallelism) -> (String, Option<String>, Summary) {
        ndjson_mapped(raw, parallelism, None)
    }

    /// [`ndjson`] with `mapper` in the [`StageOptions`].
    fn ndjson_mapped(
        raw: &[u8],
        parallelism: Parallelism,
        mapper: Option<Arc<Mapper>>,
    ) -> (String, Option<String>, Summary) {
        let opened = Arc::new(std::sync::Mutex::new(0));
        let count = opened.clone();
        let mut output = NdjsonOutput::new(Vec::new(), Codec::Gzip, parallelism, move || {
            *count.lock().unwrap() += 1;
            Ok(Vec::new())
        })
        .unwrap();
        let options = StageOptions {
            parallelism,
            mapper,
            ..StageOptions::default()
        };
        let summary = parse(
            io::Cursor::new(raw.to_vec()),
            Origin::s3("b", "raw/k"),
            &options,
            &mut output,
            None,
        )
        .unwrap();
        let (events, quarantine) = output.finish().unwrap();
        let text = |bytes: Vec<u8>| {
            let mut text = String::new();
            Codec::Gzip
                .decoder(&bytes[..])
                .read_to_string(&mut text)
                .unwrap();
            text
        };
        assert!(*opened.lock().unwrap() <= 1);
        (text(events), quarantine.map(text), summary)
    }

    #[test]
    fn an_object_entry_goes_to_the_quarantine_output_with_the_records() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");
        let good = std::fs::read(format!("{dir}/osquery/shapes-firehose.json.gz")).unwrap();
        let cut = std::fs::read(format!("{dir}/broken/truncated.gz")).unwrap();
        for parallelism in BOTH {
            // A valid object opens no quarantine.
            let (events, quarantine, summary) = ndjson(&good, parallelism);
            assert_eq!(events.lines().count() as u64, summary.events);
            assert_eq!((quarantine, summary.objects_quarantined), (None, 0));
            // A blob with gzip's magic bytes: no events, the object's entry.
            let (events, quarantine, summary) = ndjson(b"\x1f\x8b garbage", parallelism);
            assert_eq!(events, "");
            let quarantine = quarantine.expect("a quarantine output");
            let entry: serde_json::Value = serde_json::from_str(quarantine.trim_end()).unwrap();
            assert_eq!(entry["reason"], "gzip_corrupt");
            assert_eq!(
                entry["source"],
                serde_json::json!({"bucket": "b", "key": "raw/k", "record": 0})
            );
            assert_eq!((summary.records, summary.objects_quarantined), (0, 1));
            // A cut object: the records before the cut, the record cut in half, then the
            // object's entry, in one quarantine output.
            let (events, quarantine, summary) = ndjson(&cut, parallelism);
            assert_eq!(events.lines().count() as u64, summary.events);
            let lines: Vec<serde_json::Value> = quarantine
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(
                lines.len() as u64,
                summary.quarantined + summary.objects_quarantined
            );
            let last = lines.last().unwrap();
            assert_eq!(last["reason"], "gzip_truncated");
            assert_eq!(last["object"]["offset"], summary.bytes_decoded);
            assert_eq!(last["object"]["compressed_offset"], cut.len());
        }
    }

    /// With a mapper, the parse stage writes each event with the techniques the detect stage
    /// gives it; detect over those objects gives the alerts it gives over objects without
    /// them.
    #[test]
    fn parsed_events_carry_the_techniques_detect_gives_them() {
        let mapper = Arc::new(Mapper::builtin().unwrap());
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/osquery");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let (mut techniques, mut alerts) = (std::collections::BTreeSet::new(), 0);
        for path in files {
            let raw = std::fs::read(&path).unwrap();
            let (plain, _, _) = ndjson_mapped(&raw, Parallelism::Inline, None);
            let mut annotating = detector();
            for parallelism in BOTH {
                let (mapped, _, summary) = ndjson_mapped(&raw, parallelism, Some(mapper.clone()));
                assert_eq!(mapped.lines().count() as u64, summary.events);
                assert_eq!(plain.lines().count(), mapped.lines().count());
                for (p, m) in plain.lines().zip(mapped.lines()) {
                    let mut expected: Event = serde_json::from_str(p).unwrap();
                    assert!(expected.attack.is_empty(), "no mapper, no attack: {p}");
                    annotating.annotate(&mut expected);
                    let got: Event = serde_json::from_str(m).unwrap();
                    assert_eq!(got.attack, expected.attack, "{}: {m}", path.display());
                    // Nothing but `attack` differs.
                    assert_eq!(got, expected, "{}", path.display());
                    techniques.extend(got.attack.as_slice().iter().map(|t| t.id.clone()));
                }
                let report = |text: &str| {
                    let mut detection = Detection::new(detector(), parallelism);
                    let bytes = text.as_bytes().to_vec();
                    detect(io::Cursor::new(bytes), parallelism, &mut detection, |b| {
                        panic!("{b:?}")
                    })
                    .unwrap();
                    detection.finish()
                };
                let (with, without) = (report(&mapped), report(&plain));
                assert_eq!(with.alerts, without.alerts, "{}", path.display());
                assert_eq!(with.stats, without.stats, "{}", path.display());
                alerts += with.alerts.len();
            }
        }
        assert!(alerts > 0, "the samples fire rules");
        assert!(
            techniques.iter().any(|t| t.starts_with("T1059")),
            "{techniques:?}"
        );
    }

    #[test]
    fn dropping_without_finish_returns() {
        let mut threaded = Detection::new(detector(), Parallelism::Threads);
        for e in events().into_iter().take(BATCH * 3) {
            threaded.observe(Box::new(e));
        }
        drop(threaded);
    }
}
