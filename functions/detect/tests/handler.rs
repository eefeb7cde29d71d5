//! The detect handler on the in-memory store, fed the S3 event fixtures in `events/s3` and
//! the attack sample in `events/osquery`: no moto, no network.

use std::collections::BTreeSet;
use std::io::Write;

use serde_json::Value;
use tripline_aws::error::Retry;
use tripline_aws::store::Fault;
use tripline_aws::{s3event, MemStore, Settings};
use tripline_core::compress::Codec;
use tripline_core::decode::{Decoded, ObjectDecoder, Options, Origin};
use tripline_core::layout::{self, Op};
use tripline_detect::Detect;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../events/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn event(name: &str) -> Value {
    serde_json::from_slice(&fixture(&format!("s3/{name}"))).unwrap()
}

/// `events/osquery/attack-linux.ndjson` as the parse stage writes it.
fn normalized_object() -> Vec<u8> {
    let raw = fixture("osquery/attack-linux.ndjson");
    let mut enc = Codec::Zstd.encoder(Vec::new()).unwrap();
    let origin = Origin::s3("tripline-data", "raw/x.gz");
    for item in ObjectDecoder::new(&raw[..], origin, Options::default()) {
        if let Decoded::Event(e) = item {
            serde_json::to_writer(&mut enc, &*e).unwrap();
            enc.write_all(b"\n").unwrap();
        }
    }
    enc.finish().unwrap()
}

/// A store holding the normalized object `detect-put.json` names, and the handler on it.
fn setup() -> (MemStore, Detect<MemStore>, Value) {
    let event = event("detect-put.json");
    let object = &s3event::parse_value(&event).unwrap()[0];
    let store = MemStore::new();
    store.insert(&object.bucket, &object.key, normalized_object());
    let detect = Detect::new(store.clone(), Settings::from_lookup(&|_| None).unwrap()).unwrap();
    (store, detect, event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_written_once_and_a_replay_writes_nothing() {
    let (store, detect, event) = setup();
    let report = detect.handle(&event).await.unwrap();
    assert_eq!(report.objects.len(), 1);
    assert!(report.written.len() >= 5, "{report:?}");
    let alerts = store.keys("tripline-data", "alerts/");
    let written: BTreeSet<&String> = report.written.iter().collect();
    assert_eq!(alerts.iter().collect::<BTreeSet<_>>(), written);
    let mut created = store.created("tripline-data", "");
    created.sort();
    assert_eq!(created, alerts, "one write each");
    for key in &alerts {
        let alert: Value =
            serde_json::from_slice(&store.object("tripline-data", key).unwrap()).unwrap();
        assert!(key.ends_with(&format!("/{}.json", alert["id"].as_str().unwrap())));
    }

    let replay = detect.handle(&event).await.unwrap();
    assert!(replay.written.is_empty());
    assert_eq!(replay.deduplicated, report.written);

    // Inline (one vCPU) reads the same.
    let inline = Detect::new(store.clone(), Settings::from_lookup(&|_| None).unwrap())
        .unwrap()
        .with_parallelism(tripline_core::Parallelism::Inline);
    let again = inline.handle(&event).await.unwrap();
    assert_eq!(again.stats, replay.stats);

    // Every access is in the table, and every detect row of the table was used but the
    // site's (this detector has no bucket to read a site from; the site test uses those).
    let used = store.areas_touched("detect");
    let table: BTreeSet<_> = layout::ACCESS
        .iter()
        .filter(|a| a.function == "detect" && a.area != layout::Area::Site)
        .map(|a| (a.op, a.area))
        .collect();
    assert_eq!(used, table);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_alert_write_leaves_nothing_half_done_and_the_retry_writes_all() {
    let (store, detect, event) = setup();
    store.inject(Op::PutIfAbsent, "alerts/", 1, Fault::Fail(Retry::Transient));
    let err = detect.handle(&event).await.unwrap_err();
    assert_eq!(tripline_aws::retry_of(&*err), Retry::Transient, "{err:#}");
    assert!(store.keys("tripline-data", "").len() == 1, "only the input");

    let retry = detect.handle(&event).await.unwrap();
    assert!(retry.written.len() >= 5, "{retry:?}");
    assert!(retry.deduplicated.is_empty());
    let (mut created, mut written) = (store.created("tripline-data", "alerts/"), retry.written);
    created.sort();
    written.sort();
    assert_eq!(created, written);
    store.areas_touched("detect");
}

/// Two copies of one S3 event at once (S3 and Lambda deliver at least once), each run's
/// writes slowed in turn so the other overtakes it: every alert object is created once, so
/// notify is invoked once per alert, and the two reports split the alerts between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_invocations_create_each_alert_once() {
    for slowed in [1, 3, 100] {
        let (store, detect, event) = setup();
        store.inject(
            Op::PutIfAbsent,
            "alerts/",
            slowed,
            Fault::Delay(std::time::Duration::from_millis(20)),
        );
        let (a, b) = tokio::join!(detect.handle(&event), detect.handle(&event));
        let (a, b) = (a.unwrap(), b.unwrap());
        let mut written: Vec<String> = a.written.iter().chain(&b.written).cloned().collect();
        written.sort();
        let alerts = store.keys("tripline-data", "alerts/");
        assert_eq!(written, alerts, "each alert written by exactly one run");
        let mut created = store.created("tripline-data", "alerts/");
        created.sort();
        assert_eq!(created, alerts, "one ObjectCreated per alert");
        assert_eq!(
            a.written.len() + a.deduplicated.len(),
            b.written.len() + b.deduplicated.len()
        );
        assert_eq!(a.written.len() + b.written.len(), alerts.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_keys_are_ignored_and_a_missing_object_is_counted_not_retried() {
    let store = MemStore::new();
    let detect = Detect::new(store.clone(), Settings::from_lookup(&|_| None).unwrap()).unwrap();
    for other in ["notify-put.json", "parse-put.json", "test-event.json"] {
        let report = detect.handle(&event(other)).await.unwrap();
        assert!(report.objects.is_empty(), "{other}");
    }
    assert!(store.accesses().is_empty());
    // Gone for good: nothing to redo, so the invocation succeeds and says what it skipped.
    let event = event("detect-put.json");
    let object = &tripline_aws::s3event::parse_value(&event).unwrap()[0];
    let report = detect.handle(&event).await.unwrap();
    assert!(report.objects.is_empty() && report.written.is_empty());
    assert_eq!(report.unreadable.len(), 1);
    assert_eq!(report.unreadable[0].key, object.key);
    assert_eq!(report.unreadable[0].kind, "NotFound");
    let line: serde_json::Value =
        serde_json::from_str(&tripline_detect::metrics(&report, 1.0)).unwrap();
    assert_eq!(line["Unreadable"], 1.0);
    // A read that may pass on a retry is still the invocation's error.
    store.insert(&object.bucket, &object.key, Vec::new());
    store.inject(Op::Read, &object.key, 1, Fault::Fail(Retry::Transient));
    let err = detect.handle(&event).await.unwrap_err();
    assert_eq!(tripline_aws::retry_of(&*err), Retry::Transient, "{err:#}");
}

/// The site directory in the bucket applies to the next invocation without a redeploy; a
/// broken one is reported (and counted for the alarm) while detection goes on with the last
/// one that loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_in_the_bucket_applies_and_a_broken_one_keeps_the_last_good() {
    let (store, _, event) = setup();
    let settings =
        Settings::from_lookup(&|k| (k == "TRIPLINE_BUCKET").then(|| "tripline-data".into()))
            .unwrap();
    let detect = Detect::new(store.clone(), settings)
        .unwrap()
        .with_site_every(std::time::Duration::ZERO);
    let samples = |store: &MemStore| -> usize {
        store
            .keys("tripline-data", "alerts/")
            .iter()
            .map(|k| {
                let a: Value =
                    serde_json::from_slice(&store.object("tripline-data", k).unwrap()).unwrap();
                a["samples"].as_array().unwrap().len()
            })
            .max()
            .unwrap()
    };
    // Without a site: the defaults (up to 5 samples per alert).
    let first = detect.handle(&event).await.unwrap();
    assert!(first.site_error.is_none());
    assert!(samples(&store) > 1);

    // A site with one sample per alert: the next invocation follows it.
    store.insert("tripline-data", "config/tripline.toml", "max_samples = 1\n");
    for key in store.keys("tripline-data", "alerts/") {
        store.remove("tripline-data", &key);
    }
    let second = detect.handle(&event).await.unwrap();
    assert!(second.site_error.is_none(), "{:?}", second.site_error);
    assert_eq!(samples(&store), 1);
    assert_eq!(detect.compiled().config.max_samples, 1);

    // A typo: reported, counted, and detection runs on with the last good site.
    store.insert("tripline-data", "config/tripline.toml", "max_sample = 2\n");
    let broken = detect.handle(&event).await.unwrap();
    let error = broken.site_error.as_deref().unwrap();
    assert!(
        error.contains("tripline.toml") && error.contains("max_sample"),
        "{error}"
    );
    assert_eq!(broken.stats, second.stats);
    assert_eq!(detect.compiled().config.max_samples, 1);
    let line: Value = serde_json::from_str(&tripline_detect::metrics(&broken, 1.0)).unwrap();
    assert_eq!(line["SiteErrors"], 1.0);

    store.insert("tripline-data", "config/tripline.toml", "max_samples = 2\n");
    let fixed = detect.handle(&event).await.unwrap();
    assert!(fixed.site_error.is_none());
    assert_eq!(detect.compiled().config.max_samples, 2);
    let line: Value = serde_json::from_str(&tripline_detect::metrics(&fixed, 1.0)).unwrap();
    assert_eq!(line["SiteErrors"], 0.0);
    let used = store.areas_touched("detect");
    assert!(used.contains(&(Op::List, layout::Area::Site)), "{used:?}");
    assert!(used.contains(&(Op::Read, layout::Area::Site)), "{used:?}");
}

/// A filter stops applying the day after its `expires`, though no file of the site changed:
/// the function compiles the site again by the new date.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_stops_applying_after_its_last_day_without_a_site_change() {
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::sync::Arc;
    use time::{Date, Month};

    let (store, _, event) = setup();
    let last_day = Date::from_calendar_date(2026, Month::December, 3).unwrap();
    store.insert(
        "tripline-data",
        "config/filters/cron_change_window.yml",
        format!(
            "title: Cron changes during the migration\n\
             id: 6a0f3f1e-3c3b-4b7e-9a55-0d6f1d0e2b11\n\
             name: cron_change_window\n\
             expires: {last_day}\n\
             logsource: {{product: osquery}}\n\
             filter:\n  rules: [osquery_suspicious_cron]\n  \
             web:\n    host: web-01.prod.acme.io\n  condition: not web\n"
        ),
    );
    let day = Arc::new(AtomicI32::new(last_day.to_julian_day()));
    let settings =
        Settings::from_lookup(&|k| (k == "TRIPLINE_BUCKET").then(|| "tripline-data".into()))
            .unwrap();
    let detect = Detect::new(store.clone(), settings)
        .unwrap()
        .with_site_every(std::time::Duration::ZERO)
        .with_today({
            let day = day.clone();
            move || Date::from_julian_day(day.load(Ordering::SeqCst)).unwrap()
        });
    let cron_alerts = |report: &tripline_detect::Report| {
        report
            .written
            .iter()
            .chain(&report.deduplicated)
            .filter(|key| {
                let a: Value =
                    serde_json::from_slice(&store.object("tripline-data", key).unwrap()).unwrap();
                a["rule"]["name"] == "osquery_suspicious_cron"
            })
            .count()
    };

    let on_the_last_day = detect.handle(&event).await.unwrap();
    assert!(
        on_the_last_day.site_error.is_none(),
        "{:?}",
        on_the_last_day.site_error
    );
    assert_eq!(cron_alerts(&on_the_last_day), 0);
    assert!(
        on_the_last_day.stats.suppressed_by_filter["cron_change_window"] > 0,
        "{:?}",
        on_the_last_day.stats.suppressed_by_filter
    );
    let reads = |store: &MemStore| {
        store
            .accesses()
            .iter()
            .filter(|a| a.op == Op::Read && a.key.starts_with("config/"))
            .count()
    };
    let read_then = reads(&store);

    // Next day: nothing in the bucket changed, the filter no longer applies.
    day.fetch_add(1, Ordering::SeqCst);
    let next_day = detect.handle(&event).await.unwrap();
    assert!(next_day.site_error.is_none());
    assert_eq!(cron_alerts(&next_day), 1);
    assert!(next_day
        .stats
        .suppressed_by_filter
        .get("cron_change_window")
        .is_none_or(|n| *n == 0));
    assert!(
        reads(&store) > read_then,
        "the unchanged site was read again"
    );

    // Once compiled by the new date, an unchanged site is only listed again.
    let before = reads(&store);
    detect.handle(&event).await.unwrap();
    assert_eq!(
        reads(&store),
        before,
        "no expired filter: the site is not read again"
    );
}
