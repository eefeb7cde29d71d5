//! Detection on a thread of its own, beside the decoding.
//!
//! Decoding an event and detecting on it are independent once the event exists, so with a
//! second core free they can overlap: [`ThreadedDetector`] collects events into batches and
//! hands each full batch over a bounded channel to a thread that owns the [`Detector`]. The
//! detector sees the events in the order they were observed, so its report is the one an
//! inline `Detector` would give for the same events (tested). Batches come back to be
//! refilled, and at most [`BATCHES`] exist, so memory stays bounded whatever the input's size.
//! Events observed with [`ThreadedDetector::observe_then`] come back in their batch, once
//! detected, for the caller to reuse (the decoder refills them); others are dropped on the
//! detector thread.
//!
//! It only pays where a second core is free (`tripline scan` on a laptop, a function above
//! 1,769 MB): on one core the two threads would take turns.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::{DetectReport, Detector};
use crate::event::Event;

/// Events per batch: enough that the channel costs nothing per event, few enough that the
/// detector thread starts soon after the first events are decoded.
pub const BATCH: usize = 256;

/// Batches in existence at once (one being filled, the rest queued or being detected on).
pub const BATCHES: usize = 4;

/// Events as the decoder and the normalized reader yield them, boxed: handing one to the
/// batch and back out moves a pointer, not the whole `Event` (those moves were about 1% of
/// a one-process run).
#[allow(clippy::vec_box)]
type Batch = Vec<Box<Event>>;

/// A batch for the detector thread, whether its events should come back once detected, and
/// the object time they are detected with ([`Detector::set_object_time`]).
struct Job {
    events: Batch,
    give_back: bool,
    object_time: i64,
}

/// A [`Detector`] on its own thread. See the [module docs](self).
pub struct ThreadedDetector {
    batch: Batch,
    /// Whether `batch` holds events observed with [`ThreadedDetector::observe_then`].
    give_back: bool,
    /// The object time of the events in `batch`: a batch never mixes two, so each event is
    /// detected with the object time that was set when it was observed.
    object_time: i64,
    /// Batches sent back by the thread: empty, or holding detected events to give back.
    back: Receiver<Batch>,
    /// Detected events back from the thread, not yet given back to the caller.
    spent: Batch,
    allocated: usize,
    jobs: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<Detector>>,
}

impl ThreadedDetector {
    /// Moves `detector` to a new thread.
    ///
    /// Panics if the operating system cannot start the thread (as `std::thread::spawn` does).
    pub fn new(mut detector: Detector) -> Self {
        let object_time = detector.object_time();
        let (jobs, job_rx) = mpsc::sync_channel::<Job>(BATCHES);
        let (back_tx, back) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("detector".into())
            .spawn(move || {
                for Job {
                    mut events,
                    give_back,
                    object_time,
                } in job_rx
                {
                    detector.set_object_time(object_time);
                    for event in &mut events {
                        detector.observe_in_place(event);
                        // The techniques the detector added are let go of here, off the
                        // caller's thread (a refilled event's `attack` starts empty anyway).
                        event.attack.clear();
                    }
                    if !give_back {
                        // Freed here too.
                        events.clear();
                    }
                    // The sender may be gone (finishing); the batch is then just dropped.
                    let _ = back_tx.send(events);
                }
                detector
            })
            .expect("spawning the detector thread");
        ThreadedDetector {
            batch: Vec::with_capacity(BATCH),
            give_back: false,
            object_time,
            back,
            spent: Vec::new(),
            allocated: 1,
            jobs: Some(jobs),
            thread: Some(thread),
        }
    }

    /// Queues `event` for [`Detector::observe`] on the detector thread.
    #[inline]
    pub fn observe(&mut self, event: Box<Event>) {
        self.batch.push(event);
        if self.batch.len() == BATCH {
            self.hand_over();
        }
    }

    /// Like [`ThreadedDetector::observe`], and hands to `done` every event the detector
    /// thread has finished with since the last call (a batch at a time), for reuse. Their
    /// `attack` comes back empty: the detector thread lets go of the techniques it added,
    /// as it frees whole events with [`ThreadedDetector::observe`].
    #[inline]
    pub fn observe_then(&mut self, event: Box<Event>, mut done: impl FnMut(Box<Event>)) {
        self.give_back = true;
        self.observe(event);
        if !self.spent.is_empty() {
            for event in self.spent.drain(..) {
                done(event);
            }
        }
    }

    /// [`Detector::set_object_time`] for the events observed from now on. The events queued
    /// so far are handed over first, with the object time they were observed under.
    pub fn set_object_time(&mut self, unix_seconds: i64) {
        if unix_seconds != self.object_time && !self.batch.is_empty() {
            self.hand_over();
        }
        self.object_time = unix_seconds;
    }

    /// Detects on what is queued, waits for the thread and returns [`Detector::finish`].
    /// A panic on the detector thread (a bug, as it would be inline) resumes here.
    pub fn finish(mut self) -> DetectReport {
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
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            self.stopped();
        }
        let mut batch = if let Ok(back) = self.back.try_recv() {
            back
        } else if self.allocated < BATCHES {
            self.allocated += 1;
            Vec::with_capacity(BATCH)
        } else {
            match self.back.recv() {
                Ok(back) => back,
                Err(_) => self.stopped(),
            }
        };
        // Detected events to give back (see `observe_then`): out of the batch, which is
        // refilled.
        self.spent.append(&mut batch);
        self.batch = batch;
    }

    /// The thread is gone while we still hold its channel: only a panic ends it that early,
    /// and joining resumes that panic here.
    #[cold]
    fn stopped(&mut self) -> ! {
        self.join();
        unreachable!("the detector thread stopped without panicking");
    }

    /// Closes the channel and waits for the thread, resuming its panic if it had one.
    fn join(&mut self) -> Detector {
        self.jobs = None;
        let thread = self.thread.take().expect("joined once");
        match thread.join() {
            Ok(detector) => detector,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for ThreadedDetector {
    /// Without [`ThreadedDetector::finish`]: stops the thread after what was handed over.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for ThreadedDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadedDetector")
            .field("queued", &self.batch.len())
            .field("batches", &self.allocated)
            .finish_non_exhaustive()
    }
}

/// A [`Detector`] inline or on its own thread ([`ThreadedDetector`]), chosen at run time as
/// the stages choose their inflate and compress threads: the thread only pays where a second
/// core is free. Either way the report is the same.
#[derive(Debug)]
pub enum Detection {
    /// Boxed: a `Detector` carries its gates' per-event memory and is much larger than a
    /// `ThreadedDetector`.
    Inline(Box<Detector>),
    Threaded(ThreadedDetector),
}

impl Detection {
    pub fn new(detector: Detector, threaded: bool) -> Self {
        if threaded {
            Detection::Threaded(ThreadedDetector::new(detector))
        } else {
            Detection::Inline(Box::new(detector))
        }
    }

    /// [`Detector::observe`], now or on the detector thread.
    #[inline]
    pub fn observe(&mut self, mut event: Box<Event>) {
        match self {
            Detection::Inline(d) => {
                d.observe_in_place(&mut event);
            }
            Detection::Threaded(d) => d.observe(event),
        }
    }

    /// Like [`Detection::observe`], and hands to `done` each event detection has finished
    /// with, for reuse (`|e| decoder.recycle(e)`): at once inline, a batch at a time
    /// threaded ([`ThreadedDetector::observe_then`]).
    #[inline]
    pub fn observe_then(&mut self, mut event: Box<Event>, mut done: impl FnMut(Box<Event>)) {
        match self {
            Detection::Inline(d) => {
                d.observe_in_place(&mut event);
                done(event);
            }
            Detection::Threaded(d) => d.observe_then(event, done),
        }
    }

    /// [`Detector::set_object_time`] for the events observed from now on.
    pub fn set_object_time(&mut self, unix_seconds: i64) {
        match self {
            Detection::Inline(d) => d.set_object_time(unix_seconds),
            Detection::Threaded(d) => d.set_object_time(unix_seconds),
        }
    }

    /// [`Detector::finish`], once every observed event has been detected on.
    pub fn finish(self) -> DetectReport {
        match self {
            Detection::Inline(d) => d.finish(),
            Detection::Threaded(d) => d.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::decode::{Decoded, ObjectDecoder, Options, Origin};
    use crate::mapping::Mapper;
    use crate::rules::RuleSet;
    use std::sync::Arc;

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
        for e in events.clone() {
            inline.observe(e);
        }
        let inline = inline.finish();
        assert!(!inline.alerts.is_empty(), "the samples fire rules");
        for take in [0, 1, BATCH, BATCH + 1, events.len()] {
            let mut threaded = ThreadedDetector::new(detector());
            let mut alone = detector();
            for e in events.iter().take(take).cloned() {
                threaded.observe(Box::new(e.clone()));
                alone.observe(e);
            }
            let (threaded, alone) = (threaded.finish(), alone.finish());
            assert_eq!(threaded.alerts, alone.alerts, "first {take} events");
            assert_eq!(threaded.stats, alone.stats, "first {take} events");
        }
        for threaded in [true, false] {
            let mut detection = Detection::new(detector(), threaded);
            assert_eq!(matches!(detection, Detection::Threaded(_)), threaded);
            for e in events.iter().cloned() {
                detection.observe(Box::new(e));
            }
            let report = detection.finish();
            assert_eq!(report.alerts, inline.alerts, "threaded: {threaded}");
            assert_eq!(report.stats, inline.stats, "threaded: {threaded}");
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
        for e in events.clone() {
            inline.observe(e);
        }
        let inline = inline.finish();
        for threaded in [true, false] {
            let mut detection = Detection::new(detector(), threaded);
            let mut back = Vec::new();
            for e in events.iter().cloned() {
                detection.observe_then(Box::new(e), |e| back.push(e.source.record));
            }
            let report = detection.finish();
            assert_eq!(report.alerts, inline.alerts, "threaded: {threaded}");
            assert_eq!(report.stats, inline.stats, "threaded: {threaded}");
            // In order, each once; threaded, all but the batches still in flight.
            assert!(back.iter().enumerate().all(|(i, r)| *r == i as u64));
            let in_flight = if threaded { BATCH * BATCHES } else { 0 };
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
                inline.observe(e.clone());
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
        for threaded in [true, false] {
            let mut detection = Detection::new(detector(), threaded);
            for (t, events) in &objects {
                detection.set_object_time(*t);
                for e in events.iter() {
                    detection.observe(Box::new(e.clone()));
                }
            }
            let report = detection.finish();
            assert_eq!(report.alerts, inline.alerts, "threaded: {threaded}");
            assert_eq!(report.stats, inline.stats, "threaded: {threaded}");
        }
    }

    #[test]
    fn dropping_without_finish_returns() {
        let mut threaded = ThreadedDetector::new(detector());
        for e in events().into_iter().take(BATCH * 3) {
            threaded.observe(Box::new(e));
        }
        drop(threaded);
    }
}
