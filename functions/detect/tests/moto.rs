//! The detect handler against a real moto server: alerts written once per id, across
//! invocations, replays and an alert that is missing.

use std::io::Write;

use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;
use tripline_aws::{clients, testing::MotoServer, S3Store, Settings};
use tripline_core::compress::Codec;
use tripline_core::decode::{Decoded, ObjectDecoder, Options, Origin};
use tripline_detect::Detect;

const BUCKET: &str = "tripline-data";

/// The attack sample as the parse stage writes it: NDJSON of normalized events compressed
/// with `codec`.
fn normalized_object(codec: Codec) -> Vec<u8> {
    normalized_object_with(codec, |_| {})
}

/// [`normalized_object`] with each event changed by `edit` first.
fn normalized_object_with(
    codec: Codec,
    edit: impl Fn(&mut tripline_core::event::Event),
) -> Vec<u8> {
    let raw = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/osquery/attack-linux.ndjson"
    ))
    .unwrap();
    let mut enc = codec.encoder(Vec::new()).unwrap();
    for item in ObjectDecoder::new(&raw[..], Origin::s3(BUCKET, "raw/x.gz"), Options::default()) {
        if let Decoded::Event(mut e) = item {
            edit(&mut e);
            serde_json::to_writer(&mut enc, &*e).unwrap();
            enc.write_all(b"\n").unwrap();
        }
    }
    enc.write_all(b"{\"not\": \"an event\"}\n").unwrap();
    enc.finish().unwrap()
}

async fn keys(s3: &aws_sdk_s3::Client, prefix: &str) -> Vec<String> {
    let out = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut keys: Vec<String> = out
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_written_once_per_id() {
    let moto = MotoServer::start();
    let config = moto.sdk_config().await;
    let s3 = clients::s3(&config);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let queue = moto.s3_events_queue(&config, BUCKET, "normalized/").await;
    let detect = Detect::new(
        S3Store::new(s3.clone()),
        Settings::from_lookup(&|_| None).unwrap(),
    )
    .unwrap();

    // The first object gzip, the second zstd: the detect stage reads either.
    let body = normalized_object(Codec::Gzip);
    let first_key = "normalized/raw/2026/11/17/02/a.gz.ndjson.gz";
    s3.put_object()
        .bucket(BUCKET)
        .key(first_key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
    let event = queue.next_s3_event().await;
    let report = detect.handle(&event).await.unwrap();
    assert_eq!(report.bad_lines, 1);
    assert!(report.written.len() >= 5, "{report:?}");
    assert!(report.deduplicated.is_empty());
    let alerts = keys(&s3, "alerts/").await;
    assert_eq!(alerts.len(), report.written.len());
    assert!(alerts
        .iter()
        .all(|k| k.starts_with("alerts/2026/11/") && k.ends_with(".json")));
    assert!(
        keys(&s3, "state/").await.is_empty(),
        "the alert is its own marker"
    );

    let mut cron = None;
    for key in &alerts {
        let out = s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        let alert: Value =
            serde_json::from_slice(&out.body.collect().await.unwrap().into_bytes()).unwrap();
        assert!(key.ends_with(&format!("/{}.json", alert["id"].as_str().unwrap())));
        if alert["rule"]["name"] == "osquery_suspicious_cron" {
            cron = Some(alert);
        }
    }
    let cron = cron.expect("the cron rule fires on the sample");
    assert!(cron["attack"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == "T1053.003"));

    // Replaying the event, and a second object with the same activity in the same windows,
    // write nothing new.
    let replay = detect.handle(&event).await.unwrap();
    assert!(replay.written.is_empty());
    assert_eq!(replay.deduplicated.len(), report.written.len());
    // Inflating inline (a function at one vCPU or less) reads the same object the same way.
    let inline = Detect::new(
        S3Store::new(s3.clone()),
        Settings::from_lookup(&|_| None).unwrap(),
    )
    .unwrap()
    .with_parallelism(tripline_core::Parallelism::Inline);
    let replay_inline = inline.handle(&event).await.unwrap();
    assert_eq!(replay_inline.bad_lines, 1);
    assert_eq!(replay_inline.stats, replay.stats);
    assert!(replay_inline.written.is_empty());
    assert_eq!(replay_inline.deduplicated, replay.deduplicated);
    s3.put_object()
        .bucket(BUCKET)
        .key("normalized/raw/2026/11/17/02/b.gz.ndjson.zst")
        .body(ByteStream::from(normalized_object(Codec::Zstd)))
        .send()
        .await
        .unwrap();
    let second = detect.handle(&queue.next_s3_event().await).await.unwrap();
    assert_eq!(second.objects.len(), 1, "{second:?}");
    assert_eq!(second.bad_lines, 1);
    assert_eq!(second.stats, replay.stats);
    assert_eq!(second.deduplicated.len(), report.written.len());
    assert!(second.written.is_empty());
    assert_eq!(keys(&s3, "alerts/").await, alerts);

    // An alert that is not there (deleted, or never written because the run failed before
    // it) is written by the next run; the others are left alone.
    s3.delete_object()
        .bucket(BUCKET)
        .key(&alerts[0])
        .send()
        .await
        .unwrap();
    let retry = detect.handle(&event).await.unwrap();
    assert_eq!(retry.written, vec![alerts[0].clone()]);
    assert_eq!(retry.deduplicated.len(), alerts.len() - 1);
    assert_eq!(keys(&s3, "alerts/").await, alerts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_outside_the_normalized_prefix_are_ignored() {
    let moto = MotoServer::start();
    let config = moto.sdk_config().await;
    let s3 = clients::s3(&config);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let queue = moto.s3_events_queue(&config, BUCKET, "").await;
    let detect = Detect::new(
        S3Store::new(s3.clone()),
        Settings::from_lookup(&|_| None).unwrap(),
    )
    .unwrap();
    s3.put_object()
        .bucket(BUCKET)
        .key("raw/x.gz")
        .body(ByteStream::from(vec![1, 2, 3]))
        .send()
        .await
        .unwrap();
    let report = detect.handle(&queue.next_s3_event().await).await.unwrap();
    assert_eq!(report.ignored, vec!["raw/x.gz".to_string()]);
    assert!(keys(&s3, "alerts/").await.is_empty());
}

/// The alerts at `keys`, parsed.
async fn alert_objects(s3: &aws_sdk_s3::Client, keys: &[String]) -> Vec<Value> {
    let mut alerts = Vec::new();
    for key in keys {
        let out = s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        alerts
            .push(serde_json::from_slice(&out.body.collect().await.unwrap().into_bytes()).unwrap());
    }
    alerts
}

fn unix(rfc3339: &Value) -> i64 {
    time::OffsetDateTime::parse(
        rfc3339.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_without_a_time_alert_at_their_object_time() {
    let moto = MotoServer::start();
    let config = moto.sdk_config().await;
    let s3 = clients::s3(&config);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let queue = moto.s3_events_queue(&config, BUCKET, "normalized/").await;
    let detect = Detect::new(
        S3Store::new(s3.clone()),
        Settings::from_lookup(&|_| None).unwrap(),
    )
    .unwrap();
    let timeless = || {
        normalized_object_with(Codec::Zstd, |e| {
            e.time = None;
            e.unix_time = None;
        })
    };

    // Dated by its key: 2026-11-17, hour 02.
    s3.put_object()
        .bucket(BUCKET)
        .key("normalized/raw/2026/11/17/02/a.gz.ndjson.zst")
        .body(ByteStream::from(timeless()))
        .send()
        .await
        .unwrap();
    let report = detect.handle(&queue.next_s3_event().await).await.unwrap();
    assert_eq!(report.stats.rule_errors, 0, "{report:?}");
    assert!(report.written.len() >= 5, "{report:?}");
    assert_eq!(report.stats.matches_on_object_time, report.stats.matches);
    let hour = unix(&"2026-11-17T02:00:00Z".into());
    for alert in alert_objects(&s3, &report.written).await {
        assert_eq!(alert["time_from"], "object", "{alert}");
        assert_eq!(alert["first_seen"], "2026-11-17T02:00:00Z", "{alert}");
        assert!(unix(&alert["dedup"]["window_start"]) <= hour, "{alert}");
    }

    // No date in the key: the S3 event's time (moto's now) places them.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    s3.put_object()
        .bucket(BUCKET)
        .key("normalized/uploads/b.ndjson.zst")
        .body(ByteStream::from(timeless()))
        .send()
        .await
        .unwrap();
    let undated = detect.handle(&queue.next_s3_event().await).await.unwrap();
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(undated.stats.rule_errors, 0);
    assert_eq!(undated.written.len(), report.written.len(), "{undated:?}");
    for alert in alert_objects(&s3, &undated.written).await {
        assert_eq!(alert["time_from"], "object", "{alert}");
        assert!(
            (before..=after).contains(&unix(&alert["first_seen"])),
            "{alert}"
        );
    }
}
