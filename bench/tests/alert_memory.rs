//! What an alert group costs in memory while an object is detected: the samples it keeps
//! must cost what they hold, whatever the events they came from held, so that memory
//! grows with distinct alerts by a few KiB each (the 50k-alert bench row, BENCHMARKS.md).
//!
//! Live heap bytes are counted by a global allocator wrapper (this test binary's own), so
//! the bound holds in a debug build and does not depend on the allocator's page reuse.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tripline_bench::gen::{generate_vec, Shape};
use tripline_bench::pipeline::Engine;
use tripline_core::decode::{Decoded, ObjectDecoder, Options, Origin};
use tripline_core::rules::Detector;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to `System`, only counting the bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn an_alert_group_costs_a_few_kib_whatever_its_events_held() {
    let engine = Engine::builtin().expect("built-in rules load");
    // 30% attack records: a noisy object, about 1,000 distinct alerts in 1 MiB.
    let (gz, _) = generate_vec(3, 1 << 20, Shape::Osquery, 3000);
    let mut detector = Detector::new(
        Arc::clone(&engine.rules),
        Some(Arc::clone(&engine.mapper)),
        Arc::clone(&engine.config),
    )
    .with_object_time(tripline_bench::pipeline::OBJECT_TIME);
    let mut decoder = ObjectDecoder::new(Cursor::new(&gz), Origin::path("t"), Options::default());
    let before = LIVE.load(Ordering::Relaxed);
    while let Some(item) = decoder.next() {
        if let Decoded::Event(mut e) = item {
            detector.observe(&mut e);
            decoder.recycle(e);
        }
    }
    drop(decoder);
    let kept = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    let report = detector.finish();
    let finished = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    let alerts = report.alerts.len();
    assert!(alerts >= 500, "only {alerts} alerts");
    let sample_bytes: usize = report
        .alerts
        .iter()
        .flat_map(|a| &a.samples)
        .map(|s| s.as_json().len())
        .sum();
    let (per_alert, samples_per_alert) = (kept / alerts, sample_bytes / alerts);
    eprintln!(
        "{alerts} alerts: {per_alert} bytes each while detecting, {samples_per_alert} of it samples' text, {} as alerts",
        finished / alerts
    );
    // A group's own fields (key, id, title, hosts, techniques, the map's slot) take a few
    // hundred bytes to 2 KiB; its samples at most about their text. A sample kept as a
    // `Value` tree took 4-6 times its text (13.2 KiB per alert here).
    assert!(
        per_alert < 2 * samples_per_alert + 2048,
        "{per_alert} bytes per alert, for {samples_per_alert} bytes of samples"
    );
}
