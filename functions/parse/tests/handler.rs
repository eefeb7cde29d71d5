//! The parse handler on the in-memory store, fed the S3 event fixtures in `events/s3` and the
//! sample objects in `events/osquery` and `events/broken`: no moto, no network.

use std::collections::BTreeSet;
use std::io::Read;

use serde_json::Value;
use tripline_aws::error::Retry;
use tripline_aws::store::Fault;
use tripline_aws::{s3event, MemStore, Settings};
use tripline_core::compress::Codec;
use tripline_core::decode::{Decoded, ObjectDecoder, Options, Origin};
use tripline_core::layout::{self, Op};
use tripline_core::stage::StageOptions;
use tripline_core::Parallelism;
use tripline_parse::Parse;

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

fn parse(store: &MemStore, settings: Settings, threads: bool) -> Parse<MemStore> {
    Parse {
        store: store.clone(),
        settings,
        options: StageOptions {
            parallelism: if threads {
                Parallelism::Threads
            } else {
                Parallelism::Inline
            },
            ..StageOptions::default()
        },
    }
}

fn defaults() -> Settings {
    Settings::from_lookup(&|_| None).unwrap()
}

fn decompress(codec: Codec, bytes: &[u8]) -> Vec<u8> {
    assert_eq!(Codec::sniff(bytes), Some(codec));
    let mut out = Vec::new();
    codec.decoder(bytes).read_to_end(&mut out).unwrap();
    out
}

/// What the decoder makes of `raw` at `bucket/key`: event lines and quarantine lines.
fn expected(raw: &[u8], bucket: &str, key: &str) -> (Vec<u8>, Vec<u8>) {
    let (mut events, mut quarantine, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    for item in ObjectDecoder::new(raw, Origin::s3(bucket, key), Options::default()) {
        match item {
            Decoded::Event(e) => e.write_line(&mut events, &mut scratch).unwrap(),
            Decoded::Quarantined(q) => {
                serde_json::to_writer(&mut quarantine, &*q).unwrap();
                quarantine.push(b'\n');
            }
        }
    }
    (events, quarantine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firehose_object_becomes_normalized_and_quarantine_objects() {
    let event = event("parse-put.json");
    let object = &s3event::parse_value(&event).unwrap()[0];
    let (bucket, key) = (object.bucket.as_str(), object.key.as_str());
    // Damaged input: some records decode, some are quarantined.
    let raw = fixture("broken/mixed.log");
    let (want_events, want_quarantine) = expected(&raw, bucket, key);
    assert!(!want_events.is_empty() && !want_quarantine.is_empty());

    for (codec, threads) in [
        (Codec::Zstd, true),
        (Codec::Zstd, false),
        (Codec::Gzip, true),
        (Codec::Gzip, false),
    ] {
        let store = MemStore::new();
        store.insert(bucket, key, raw.clone());
        let settings = Settings::from_lookup(&|name| {
            (name == "TRIPLINE_OUTPUT_COMPRESSION").then(|| format!("{codec:?}").to_lowercase())
        })
        .unwrap();
        let report = parse(&store, settings, threads)
            .handle(&event)
            .await
            .unwrap();
        let done = &report.objects[0];
        let suffix = format!(".ndjson{}", codec.extension());
        assert_eq!(done.events_key, format!("normalized/{key}{suffix}"));
        assert_eq!(
            done.quarantine_key.as_deref(),
            Some(format!("quarantine/{key}{suffix}").as_str())
        );
        let events = store.object(bucket, &done.events_key).unwrap();
        assert_eq!(decompress(codec, &events), want_events, "{codec:?}");
        let quarantine = store.object(bucket, &format!("quarantine/{key}{suffix}"));
        assert_eq!(decompress(codec, &quarantine.unwrap()), want_quarantine);
        assert_eq!(
            done.summary.records,
            done.summary.decoded + done.summary.quarantined
        );
        let used = store.areas_touched("parse");
        let table: BTreeSet<_> = layout::ACCESS
            .iter()
            .filter(|a| a.function == "parse")
            .map(|a| (a.op, a.area))
            .collect();
        assert_eq!(used, table);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eventbridge_event_parses_the_object_a_notification_would() {
    let raw = fixture("osquery/shapes-firehose.json.gz");
    let mut reports = Vec::new();
    for name in ["parse-put.json", "eventbridge-put.json"] {
        let event = event(name);
        let object = &s3event::parse_value(&event).unwrap()[0];
        let store = MemStore::new();
        store.insert(&object.bucket, &object.key, raw.clone());
        let report = parse(&store, defaults(), false)
            .handle(&event)
            .await
            .unwrap();
        assert_eq!(report.objects.len(), 1, "{name}: {report:?}");
        let done = &report.objects[0];
        assert!(done.summary.events > 0, "{name}");
        let events = store.object(&object.bucket, &done.events_key).unwrap();
        reports.push((done.events_key.clone(), done.summary.clone(), events));
    }
    assert_eq!(reports[0], reports[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sample_object_parses_as_the_decoder_decodes_it_and_a_replay_rewrites_it() {
    let event = event("parse-put.json");
    let object = &s3event::parse_value(&event).unwrap()[0];
    let (bucket, key) = (object.bucket.as_str(), object.key.as_str());
    for sample in [
        "osquery/shapes-firehose.json.gz",
        "osquery/shapes-native.log",
        "osquery/attack-linux.ndjson",
    ] {
        let raw = fixture(sample);
        let (want, quarantine) = expected(&raw, bucket, key);
        assert!(quarantine.is_empty(), "{sample}");
        let store = MemStore::new();
        store.insert(bucket, key, raw);
        let parse = parse(&store, defaults(), true);
        let report = parse.handle(&event).await.unwrap();
        let done = &report.objects[0];
        assert_eq!(done.quarantine_key, None, "{sample}");
        let first = store.object(bucket, &done.events_key).unwrap();
        assert_eq!(decompress(Codec::Zstd, &first), want, "{sample}");
        parse.handle(&event).await.unwrap();
        assert_eq!(store.object(bucket, &done.events_key).unwrap(), first);
        assert_eq!(
            store.keys(bucket, ""),
            [done.events_key.clone(), key.to_owned()]
        );
        store.areas_touched("parse");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_typed_and_other_keys_ignored() {
    let store = MemStore::new();
    let parse = parse(&store, defaults(), false);
    for other in ["detect-put.json", "notify-put.json"] {
        let report = parse.handle(&event(other)).await.unwrap();
        assert!(report.objects.is_empty() && report.ignored.len() == 1);
    }
    assert!(store.accesses().is_empty());

    // A raw object that is gone: nothing to redo, so the invocation succeeds, says what it
    // skipped and counts it.
    let event = event("parse-put.json");
    let report = parse.handle(&event).await.unwrap();
    assert!(report.objects.is_empty());
    assert_eq!(report.unreadable.len(), 1);
    assert_eq!(report.unreadable[0].kind, "NotFound");
    let line: Value = serde_json::from_str(&tripline_parse::metrics(&report, 1.0)).unwrap();
    assert_eq!(line["Unreadable"], 1.0);

    // An upload that fails leaves no object and a retryable error.
    let object = &s3event::parse_value(&event).unwrap()[0];
    store.insert(
        &object.bucket,
        &object.key,
        fixture("osquery/attack-linux.ndjson"),
    );
    store.inject(Op::Write, "normalized/", 1, Fault::Fail(Retry::Transient));
    let err = parse.handle(&event).await.unwrap_err();
    assert_eq!(tripline_aws::retry_of(&*err), Retry::Transient, "{err:#}");
    assert!(store.keys(&object.bucket, "normalized/").is_empty());
    parse.handle(&event).await.unwrap();
    assert_eq!(store.keys(&object.bucket, "normalized/").len(), 1);
}
