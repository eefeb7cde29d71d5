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
        assert_eq!(done.summary.objects_quarantined, 0, "{sample}");
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

/// A PNG's signature and chunk bytes after it, as a stray upload would have.
fn png_like() -> Vec<u8> {
    let mut data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    while data.len() < 300 << 10 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_that_cannot_be_read_as_osquery_leaves_an_entry_for_itself() {
    let event = event("parse-put.json");
    let object = &s3event::parse_value(&event).unwrap()[0];
    let (bucket, key) = (object.bucket.as_str(), object.key.as_str());
    let truncated = fixture("broken/truncated.gz");
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "gzip magic",
            b"\x1f\x8b\x08 but nothing gzip after it\n".to_vec(),
            "gzip_corrupt",
        ),
        ("truncated gzip", truncated.clone(), "gzip_truncated"),
        ("png", png_like(), "not_osquery"),
    ];
    for (name, raw, reason) in cases {
        for threads in [true, false] {
            let (want_events, want_quarantine) = expected(&raw, bucket, key);
            let store = MemStore::new();
            store.insert(bucket, key, raw.clone());
            let report = parse(&store, defaults(), threads)
                .handle(&event)
                .await
                .unwrap();
            let done = &report.objects[0];
            let s = &done.summary;
            let quarantine_key = format!("quarantine/{key}.ndjson.zst");
            assert_eq!(
                done.quarantine_key.as_deref(),
                Some(quarantine_key.as_str())
            );
            let text = decompress(Codec::Zstd, &store.object(bucket, &quarantine_key).unwrap());
            assert_eq!(text, want_quarantine, "{name}");
            let entries: Vec<Value> = String::from_utf8(text)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let events = decompress(
                Codec::Zstd,
                &store.object(bucket, &done.events_key).unwrap(),
            );
            assert_eq!(events, want_events, "{name}");

            // The counts: records decoded or quarantined one by one, plus one entry for
            // the object, which comes last.
            assert_eq!(s.records, s.decoded + s.quarantined, "{name}");
            assert_eq!(entries.len() as u64, s.quarantined + s.objects_quarantined);
            assert_eq!(s.objects_quarantined, 1, "{name}");
            assert_eq!(s.quarantined_as.map(|r| r.as_str()), Some(reason));
            assert_eq!(report.totals.objects_quarantined, 1);
            let entry = entries.last().unwrap();
            assert_eq!(entry["reason"], reason, "{name}: {entry}");
            assert_eq!(
                entry["source"],
                serde_json::json!({"bucket": bucket, "key": key, "record": 0})
            );
            let detail = &entry["object"];
            assert!(detail["message"].as_str().unwrap().len() <= 512);
            match reason {
                "gzip_corrupt" => {
                    assert_eq!((s.records, entries.len()), (0, 1));
                    assert_eq!(detail["offset"], 0);
                    assert!(detail["compressed_offset"].as_u64().unwrap() <= raw.len() as u64);
                    assert!(detail["message"].as_str().unwrap().contains("1f 8b 08"));
                    assert!(events.is_empty());
                }
                "gzip_truncated" => {
                    // The records before the cut became events; the record cut in half is
                    // quarantined; the object's entry says where the cut was met.
                    assert!(s.events > 10);
                    assert_eq!(s.quarantined, 1);
                    assert_eq!(detail["offset"], s.bytes_decoded);
                    assert_eq!(detail["compressed_offset"], truncated.len() as u64);
                }
                _ => {
                    // Not one entry per line: one for the object, none of its lines records.
                    assert_eq!((s.records, entries.len()), (0, 1));
                    assert_eq!(detail["offset"], 0);
                    assert!(detail["lines"].as_u64().unwrap() > 1000);
                    assert!(detail["message"]
                        .as_str()
                        .unwrap()
                        .contains("(magic bytes of PNG)"));
                    assert!(entry["raw"].as_str().unwrap().ends_with("PNG"));
                    assert!(events.is_empty());
                }
            }
            let line: Value = serde_json::from_str(&tripline_parse::metrics(&report, 1.0)).unwrap();
            assert_eq!(line["ObjectsQuarantined"], 1.0);
            assert_eq!(line["Quarantined"], s.quarantined as f64);
            assert_eq!(line["Records"], s.records as f64);
            store.areas_touched("parse");
        }
    }
}
