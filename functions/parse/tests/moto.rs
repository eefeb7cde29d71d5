//! The parse handler against a real moto server, fed the S3 events moto itself emits.

use std::io::{Read, Write};

use aws_sdk_s3::primitives::ByteStream;
use flate2::{write::GzEncoder, Compression};
use serde_json::Value;
use tripline_aws::{clients, testing::MotoServer, S3Store, Settings};
use tripline_core::compress::Codec;
use tripline_core::stage::StageOptions;
use tripline_core::Parallelism;
use tripline_parse::Parse;

const BUCKET: &str = "tripline-data";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

async fn get(s3: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject {key}: {e:?}"));
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// The lines of a compressed object, checking it is in `codec`.
fn lines(codec: Codec, bytes: &[u8]) -> Vec<Value> {
    assert_eq!(Codec::sniff(bytes), Some(codec));
    let mut text = String::new();
    codec.decoder(bytes).read_to_string(&mut text).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_object_becomes_normalized_and_quarantine_objects() {
    let moto = MotoServer::start();
    let config = moto.sdk_config().await;
    let s3 = clients::s3(&config);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let queue = moto.s3_events_queue(&config, BUCKET, "").await;

    // A Firehose object: attack activity plus one line that is not a record.
    let mut body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/osquery/attack-linux.ndjson"
    ))
    .unwrap();
    let records = body.iter().filter(|b| **b == b'\n').count();
    body.extend_from_slice(b"garbage that is not json\n");
    // A key with a space and a plus: S3 events encode them as `+` and `%2B`.
    let key = "raw/2026/11/20/08/osquery results+1.gz";
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(gzip(&body)))
        .send()
        .await
        .unwrap();
    let event = queue.next_s3_event().await;

    // The function's own settings: its events carry their ATT&CK techniques.
    let parse = Parse {
        store: S3Store::new(s3.clone()),
        settings: Settings::from_lookup(&|_| None).unwrap(),
        options: tripline_parse::stage_options(Parallelism::Threads).unwrap(),
    };
    let report = parse.handle(&event).await.unwrap();
    assert_eq!(report.objects.len(), 1, "{report:?}");
    let done = &report.objects[0];
    assert_eq!(done.key, key);
    assert_eq!(done.events_key, format!("normalized/{key}.ndjson.zst"));
    assert_eq!(done.summary.records, records as u64 + 1);
    assert_eq!(done.summary.quarantined, 1);
    assert_eq!(
        done.summary.records,
        done.summary.decoded + done.summary.quarantined
    );

    let head = s3.head_object().bucket(BUCKET).key(&done.events_key);
    let head = head.send().await.unwrap();
    assert_eq!(head.content_type(), Some("application/zstd"));
    let gunzip_lines = |bytes: &[u8]| lines(Codec::Zstd, bytes);
    let events = gunzip_lines(&get(&s3, &done.events_key).await);
    assert_eq!(events.len() as u64, done.summary.events);
    assert!(events
        .iter()
        .all(|e| e["source"]["bucket"] == BUCKET && e["source"]["key"] == key));
    assert!(events.iter().any(|e| e["query"] == "crontab"));
    // The techniques of the shell's network connection (a reverse shell) are in the lake.
    let conn = events
        .iter()
        .find(|e| e["query"] == "shell_network_connections")
        .expect("the reverse shell's connection");
    let ids: Vec<&str> = conn["attack"]
        .as_array()
        .expect("attack on a mapped event")
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(!ids.is_empty(), "{conn}");
    assert!(conn["attack"][0]["tactics"].as_array().is_some(), "{conn}");
    let quarantine = gunzip_lines(&get(&s3, done.quarantine_key.as_deref().unwrap()).await);
    assert_eq!(quarantine.len(), 1);
    assert!(quarantine[0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("not JSON"));

    // The normalized object's own event is outside the raw prefix: ignored, nothing written.
    let own = queue.next_s3_event().await;
    let again = parse.handle(&own).await.unwrap();
    assert!(again.objects.is_empty());
    assert_eq!(again.ignored.len(), 1);

    // A replay rewrites the same keys with the same content.
    let first = get(&s3, &done.events_key).await;
    let replay = parse.handle(&event).await.unwrap();
    assert_eq!(replay.objects[0].events_key, done.events_key);
    assert_eq!(
        gunzip_lines(&get(&s3, &done.events_key).await),
        gunzip_lines(&first)
    );

    // Without the inflate and compress threads (a function under one vCPU), the same output.
    let inline = Parse {
        options: tripline_parse::stage_options(Parallelism::Inline).unwrap(),
        ..parse
    };
    let report = inline.handle(&event).await.unwrap();
    assert_eq!(report.objects[0].summary, done.summary);
    assert_eq!(
        gunzip_lines(&get(&s3, &done.events_key).await),
        gunzip_lines(&first)
    );

    // With TRIPLINE_OUTPUT_COMPRESSION=gzip: the same events and quarantine, gzipped, under
    // `.ndjson.gz` keys.
    let gzip_settings = Settings::from_lookup(&|name| {
        (name == "TRIPLINE_OUTPUT_COMPRESSION").then(|| "gzip".to_owned())
    })
    .unwrap();
    for parallelism in [Parallelism::Threads, Parallelism::Inline] {
        let gz = Parse {
            store: inline.store.clone(),
            settings: gzip_settings.clone(),
            options: StageOptions {
                parallelism,
                ..inline.options.clone()
            },
        };
        let report = gz.handle(&event).await.unwrap();
        let out = &report.objects[0];
        assert_eq!(out.events_key, format!("normalized/{key}.ndjson.gz"));
        assert_eq!(out.summary, done.summary);
        let events_gz = lines(Codec::Gzip, &get(&s3, &out.events_key).await);
        assert_eq!(events_gz, gunzip_lines(&first));
        let quarantine_key = out.quarantine_key.as_deref().unwrap();
        assert!(quarantine_key.ends_with(".ndjson.gz"));
        assert_eq!(
            lines(Codec::Gzip, &get(&s3, quarantine_key).await),
            quarantine
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_errors_and_missing_objects_are_skipped() {
    let moto = MotoServer::start();
    let config = moto.sdk_config().await;
    let s3 = clients::s3(&config);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let parse = Parse {
        store: S3Store::new(s3),
        settings: Settings::from_lookup(&|_| None).unwrap(),
        options: StageOptions {
            parallelism: Parallelism::Threads,
            ..StageOptions::default()
        },
    };
    let err = parse
        .handle(&serde_json::json!({"Records": "nope"}))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("malformed S3 event"), "{err:#}");
    let missing: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/s3/parse-put.json"
        ))
        .unwrap()
        .replace("tripline-data", BUCKET),
    )
    .unwrap();
    // Gone for good on real S3 (NoSuchKey): skipped and reported, not an error to retry.
    let report = parse.handle(&missing).await.unwrap();
    assert!(report.objects.is_empty());
    assert_eq!(report.unreadable.len(), 1);
    assert_eq!(report.unreadable[0].kind, "NotFound");
}
