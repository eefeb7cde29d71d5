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

async fn put(s3: &aws_sdk_s3::Client, key: &str, body: impl Into<Vec<u8>>) {
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(body.into()))
        .send()
        .await
        .unwrap();
}

/// The rules each of `written` alerts comes from.
async fn rules_of(s3: &aws_sdk_s3::Client, written: &[String]) -> Vec<String> {
    let mut rules = Vec::new();
    for key in written {
        let body = tripline_aws::s3io::get_object_bytes(s3, BUCKET, key)
            .await
            .unwrap();
        let alert: Value = serde_json::from_slice(&body).unwrap();
        rules.push(alert["rule"]["name"].as_str().unwrap().to_owned());
    }
    rules.sort();
    rules
}

/// A filter and an indicator list changed in the bucket's site directory apply to the next
/// object, without a redeploy: the filtered rule's matches are counted as suppressed, and
/// the listed address fires osquery_ioc_match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_and_an_ioc_list_in_the_bucket_apply_to_the_next_object() {
    let moto = MotoServer::start();
    let config = moto.sdk_config().await;
    let s3 = clients::s3(&config);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let queue = moto.s3_events_queue(&config, BUCKET, "normalized/").await;
    let settings =
        Settings::from_lookup(&|k| (k == "TRIPLINE_BUCKET").then(|| BUCKET.into())).unwrap();
    let detect = Detect::new(S3Store::new(s3.clone()), settings)
        .unwrap()
        .with_site_every(std::time::Duration::ZERO);

    put(
        &s3,
        "normalized/raw/2026/11/17/02/a.gz.ndjson.zst",
        normalized_object(Codec::Zstd),
    )
    .await;
    let before = detect.handle(&queue.next_s3_event().await).await.unwrap();
    let fired = rules_of(&s3, &before.written).await;
    assert!(
        fired.iter().any(|r| r == "osquery_suspicious_cron"),
        "{fired:?}"
    );
    assert!(!fired.iter().any(|r| r == "osquery_ioc_match"), "{fired:?}");

    put(
        &s3,
        "config/filters/backup_cron.yml",
        "title: The backup job's cron entry\nname: allow_backup_cron\n\
         logsource: {product: osquery, service: crontab}\n\
         filter:\n  rules: [osquery_suspicious_cron]\n  everywhere:\n    kind: result\n  condition: not everywhere\n",
    )
    .await;
    put(
        &s3,
        "config/iocs/advisory.txt",
        "# an advisory\n45.61.137.12\n",
    )
    .await;
    // The same activity again: the alerts of the first object are deduplicated, except the
    // filtered rule's, whose matches are now suppressed, and the new IOC alert is written.
    put(
        &s3,
        "normalized/raw/2026/11/17/02/b.gz.ndjson.zst",
        normalized_object(Codec::Zstd),
    )
    .await;
    let after = detect.handle(&queue.next_s3_event().await).await.unwrap();
    assert!(after.site_error.is_none(), "{:?}", after.site_error);
    let fired = rules_of(&s3, &after.written).await;
    assert_eq!(fired, ["osquery_ioc_match"], "{after:?}");
    let seen = rules_of(&s3, &after.deduplicated).await;
    assert!(
        !seen.iter().any(|r| r == "osquery_suspicious_cron"),
        "{seen:?}"
    );
    assert_eq!(seen.len(), before.written.len() - 1);
    assert!(
        after.stats.suppressed_by_filter["allow_backup_cron"] >= 1,
        "{:?}",
        after.stats
    );
    let line: Value = serde_json::from_str(&tripline_detect::metrics(&after, 1.0)).unwrap();
    assert!(line["MatchesSuppressed"].as_f64().unwrap() >= 1.0);
}
