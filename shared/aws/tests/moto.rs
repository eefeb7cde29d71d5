//! The adapters against a real moto server (one per test; see `tripline_aws::testing`).
//! Needs `moto_server` from `requirements-test.txt` (`scripts/test` installs it). The crate's
//! dev-dependency on itself turns on the `testing` feature, so a plain `cargo test` runs these.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use aws_sdk_s3::Client;
use serde_json::Value;
use tripline_aws::s3io::{self, get_object_bytes, put_object, PutOutcome, S3Writer};
use tripline_aws::settings::{var, Settings};
use tripline_aws::testing::MotoServer;
use tripline_aws::{clients, s3event, sns, Error};

const BUCKET: &str = "tripline-data";
const MIB: usize = 1024 * 1024;

/// Deterministic, incompressible-looking bytes (xorshift), so a wrong offset can't go unseen.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

async fn s3_with_bucket(moto: &MotoServer) -> Client {
    let s3 = clients::s3(&moto.sdk_config().await);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    s3
}

/// Writes `body` through an `S3Writer` on a blocking thread, in uneven slices the way a gzip
/// encoder would.
async fn write_through(
    s3: &Client,
    key: &str,
    body: Vec<u8>,
) -> tripline_aws::Result<s3io::Uploaded> {
    let writer = S3Writer::new(s3.clone(), BUCKET, key);
    tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        for chunk in body.chunks(64 * 1024 + 7) {
            if let Err(e) = writer.write_all(chunk) {
                // Which write (if any) finds out that the upload failed depends on timing;
                // `finish` returns the upload's error whichever it was. (The write's error
                // carries it too: s3_writer_write_errors_carry_the_typed_upload_error.)
                return match writer.finish() {
                    Err(upload) => Err(upload),
                    Ok(_) => Err(Error::Io {
                        context: "write".into(),
                        source: e,
                    }),
                };
            }
        }
        writer.finish()
    })
    .await
    .unwrap()
}

async fn read_through(s3: &Client, key: &str) -> (Option<u64>, Vec<u8>) {
    let reader = s3io::get_object_reader(s3, BUCKET, key).await.unwrap();
    tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let len = reader.content_length();
        let mut out = Vec::new();
        // Small reads, like a BufReader's, across chunk boundaries.
        let mut buf = [0u8; 8191];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        (len, out)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_writer_multipart_and_streaming_reader_round_trip_20_mib() {
    let moto = MotoServer::start();
    let s3 = s3_with_bucket(&moto).await;
    let key = "normalized/2026/11/22/14/big file.ndjson.gz";
    let body = data(20 * MIB, 7);

    let uploaded = write_through(&s3, key, body.clone()).await.unwrap();
    assert_eq!(uploaded.bytes, body.len() as u64);
    assert_eq!(uploaded.parts, 3, "8 + 8 + 4 MiB");
    assert!(
        uploaded.e_tag.as_deref().unwrap_or_default().contains("-3"),
        "{uploaded:?}"
    );

    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert_eq!(head.content_type(), Some("application/gzip"));

    let (len, read) = read_through(&s3, key).await;
    assert_eq!(len, Some(body.len() as u64));
    assert!(read == body, "streamed body differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_reader_over_a_single_put_object() {
    let moto = MotoServer::start();
    let s3 = s3_with_bucket(&moto).await;
    let body = data(20 * MIB + 13, 11);
    put_object(&s3, BUCKET, "raw/2026/11/22/14/object.gz", body.clone())
        .await
        .unwrap();
    let (len, read) = read_through(&s3, "raw/2026/11/22/14/object.gz").await;
    assert_eq!(len, Some(body.len() as u64));
    assert!(read == body, "streamed body differs");

    let missing = s3io::get_object_reader(&s3, BUCKET, "raw/missing.gz")
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_writer_small_output_is_one_put_and_empty_output_an_empty_object() {
    let moto = MotoServer::start();
    let s3 = s3_with_bucket(&moto).await;
    let body = data(3 * MIB, 3);
    let uploaded = write_through(&s3, "alerts/small.json", body.clone())
        .await
        .unwrap();
    assert_eq!(uploaded.parts, 0);
    assert_eq!(uploaded.bytes, body.len() as u64);
    let got = get_object_bytes(&s3, BUCKET, "alerts/small.json")
        .await
        .unwrap();
    assert!(got == body);

    let uploaded = write_through(&s3, "quarantine/empty.ndjson.gz", Vec::new())
        .await
        .unwrap();
    assert_eq!((uploaded.parts, uploaded.bytes), (0, 0));
    let got = get_object_bytes(&s3, BUCKET, "quarantine/empty.ndjson.gz")
        .await
        .unwrap();
    assert!(got.is_empty());

    // Exactly one part: a multipart upload of one part.
    let body = data(s3io::DEFAULT_PART_SIZE, 5);
    let uploaded = write_through(&s3, "normalized/one-part.ndjson.gz", body.clone())
        .await
        .unwrap();
    assert_eq!(uploaded.parts, 1);
    let (_, read) = read_through(&s3, "normalized/one-part.ndjson.gz").await;
    assert!(read == body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_writer_dropped_unfinished_aborts_and_leaves_no_object() {
    let moto = MotoServer::start();
    let s3 = s3_with_bucket(&moto).await;
    let key = "normalized/abandoned.ndjson.gz";
    let writer = S3Writer::new(s3.clone(), BUCKET, key);
    tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        writer.write_all(&data(9 * MIB, 1)).unwrap(); // one part sent, multipart upload open
        drop(writer);
    })
    .await
    .unwrap();
    // The abort runs on the upload task after the drop; give it a moment.
    let mut open = usize::MAX;
    for _ in 0..50 {
        let uploads = s3
            .list_multipart_uploads()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        open = uploads.uploads().len();
        if open == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(open, 0, "multipart upload not aborted");
    let err = s3
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_writer_reports_upload_errors() {
    let moto = MotoServer::start();
    let s3 = clients::s3(&moto.sdk_config().await); // no bucket
    let err = write_through(&s3, "x/small.json", b"{}".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("NoSuchBucket"), "{err}");
    let err = write_through(&s3, "x/big.gz", data(17 * MIB, 2))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("NoSuchBucket"), "{err}");
}

/// A failed upload reaches the caller of `write` as the typed `tripline_aws::Error` inside the
/// `io::Error` (not only as its text), on every later write too, and `finish` returns it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_writer_write_errors_carry_the_typed_upload_error() {
    let moto = MotoServer::start();
    let s3 = clients::s3(&moto.sdk_config().await); // no bucket
    let writer = S3Writer::new(s3, BUCKET, "x/big.gz").with_part_size(s3io::MIN_PART_SIZE);
    tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        let chunk = vec![7u8; 64 * 1024];
        // The upload fails on the first part. The channel holds one part, so at the latest
        // the third part's write finds out; eight parts' worth is plenty.
        let mut written = 0;
        let failed = loop {
            assert!(
                written < 8 * s3io::MIN_PART_SIZE,
                "no write saw the failed upload"
            );
            match writer.write(&chunk) {
                Ok(n) => written += n,
                Err(e) => break e,
            }
        };
        let text = failed.to_string();
        let typed = failed
            .get_ref()
            .and_then(|e| e.downcast_ref::<Error>())
            .unwrap_or_else(|| panic!("no tripline_aws::Error inside {failed:?}"));
        assert_eq!(typed.code(), Some("NoSuchBucket"), "{typed}");
        assert_eq!(typed.to_string(), text);
        let again = writer
            .write(&chunk)
            .unwrap_err()
            .downcast::<Error>()
            .expect("a later write carries the typed error too");
        assert_eq!(again.code(), Some("NoSuchBucket"), "{again}");
        let finished = writer.finish().unwrap_err();
        assert_eq!(finished.code(), Some("NoSuchBucket"), "{finished}");
        assert_eq!(finished.to_string(), text);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_if_absent_created_then_already_exists() {
    let moto = MotoServer::start();
    let s3 = s3_with_bucket(&moto).await;
    let key = "alerts/2026/11/22/6b0c43d1.json";
    let first = s3io::put_if_absent(&s3, BUCKET, key, &b"{\"first\":true}"[..])
        .await
        .unwrap();
    assert_eq!(first, PutOutcome::Created);
    let second = s3io::put_if_absent(&s3, BUCKET, key, &b"{\"first\":false}"[..])
        .await
        .unwrap();
    assert_eq!(second, PutOutcome::AlreadyExists);
    let got = get_object_bytes(&s3, BUCKET, key).await.unwrap();
    assert_eq!(&got[..], b"{\"first\":true}", "the first write is kept");

    let missing = get_object_bytes(&s3, BUCKET, "state/none")
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    // One short line that says what happened and where, for a log line and Lambda's
    // errorMessage; not the SDK's kilobyte of debug text.
    let text = missing.to_string();
    assert!(text.contains("s3://tripline-data/state/none"), "{text}");
    assert!(text.contains("NoSuchKey"), "{text}");
    assert!(text.len() < 200 && !text.contains('\n'), "{text}");

    // A transport failure: a port where nothing listens.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{closed}"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "t", "t", None, None, "t",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let unreachable = get_object_bytes(&clients::s3(&config), BUCKET, "k")
        .await
        .unwrap_err();
    let text = unreachable.to_string();
    assert!(text.len() < 300 && !text.contains('\n'), "{text}");
    assert!(unreachable.retryable(), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_publish_with_attributes_reaches_moto() {
    let moto = MotoServer::start();
    let config = moto.sdk_config().await;
    let client = clients::sns(&config);
    let topic = client
        .create_topic()
        .name("tripline-alerts")
        .send()
        .await
        .unwrap();
    let topic_arn = topic.topic_arn().unwrap();
    let techniques = sns::string_array(&["T1059.004", "T1105"]);
    let long_subject = format!("[high] Reverse shell\non {}", "host-".repeat(40));
    let id = sns::publish(
        &client,
        topic_arn,
        &long_subject,
        "{\"rule\":\"reverse-shell\"}",
        &[
            ("severity", "high", sns::STRING),
            ("techniques", &techniques, sns::STRING_ARRAY),
            ("count", "3", sns::NUMBER),
            ("empty", "", sns::STRING),
        ],
    )
    .await
    .unwrap();
    assert!(!id.is_empty());

    let data = moto.data_json();
    let topics = data["sns"]["Topic"].as_array().expect("sns Topic list");
    let topic = topics
        .iter()
        .find(|t| t["arn"] == topic_arn)
        .unwrap_or_else(|| panic!("topic not in data.json: {topics:?}"));
    let sent = topic["sent_notifications"].as_array().unwrap();
    assert_eq!(sent.len(), 1);
    let [message_id, message, subject, attributes, _group] = &sent[0].as_array().unwrap()[..]
    else {
        panic!("unexpected notification shape: {}", sent[0]);
    };
    assert_eq!(message_id, &Value::String(id));
    assert_eq!(message, "{\"rule\":\"reverse-shell\"}");
    let subject = subject.as_str().unwrap();
    assert!(
        subject.starts_with("[high] Reverse shell on host-host-"),
        "{subject}"
    );
    assert!(subject.len() <= sns::MAX_SUBJECT_CHARS && subject.ends_with("..."));
    // moto keeps attributes as SNS delivers them to subscribers: {Type, Value}.
    assert_eq!(
        attributes["severity"],
        serde_json::json!({"Type": "String", "Value": "high"})
    );
    assert_eq!(
        attributes["techniques"],
        serde_json::json!({"Type": "String.Array", "Value": techniques})
    );
    assert_eq!(
        attributes["count"],
        serde_json::json!({"Type": "Number", "Value": "3"})
    );
    assert!(attributes.get("empty").is_none(), "{attributes}");

    let bad = sns::publish(
        &client,
        topic_arn,
        "s",
        "m",
        &[("t", "not json", sns::STRING_ARRAY)],
    )
    .await;
    assert!(matches!(bad, Err(Error::Invalid(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn param_secrets_resolve_from_ssm_and_secrets_manager() {
    let moto = MotoServer::start();
    let config = moto.sdk_config().await;
    let ssm = clients::ssm(&config);
    let secrets = clients::secrets_manager(&config);
    ssm.put_parameter()
        .name("/tripline/slack-webhook-url")
        .value("https://hooks.slack.com/services/T0/B0/xyz\n")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    ssm.put_parameter()
        .name("/tripline/hec-url")
        .value("https://splunk.example.com:8088/services/collector/event")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let hec_url_arn = ssm
        .get_parameter()
        .name("/tripline/hec-url")
        .send()
        .await
        .unwrap()
        .parameter()
        .and_then(|p| p.arn())
        .unwrap()
        .to_owned();
    let routing = secrets
        .create_secret()
        .name("tripline/pagerduty")
        .secret_string("R0UTINGKEY")
        .send()
        .await
        .unwrap();
    let routing_arn = routing.arn().unwrap().to_owned();
    secrets
        .create_secret()
        .name("tripline/hec-token")
        .secret_string("hec-token-value")
        .send()
        .await
        .unwrap();

    let env: BTreeMap<&str, String> = [
        (
            var::SLACK_WEBHOOK_URL_PARAM,
            "/tripline/slack-webhook-url".to_owned(),
        ),
        (var::SPLUNK_HEC_URL_PARAM, hec_url_arn),
        (var::PAGERDUTY_ROUTING_KEY_PARAM, routing_arn),
        (
            var::SPLUNK_HEC_TOKEN_PARAM,
            "secretsmanager:tripline/hec-token".to_owned(),
        ),
        (var::WEBHOOK_SECRET, "direct-hmac-key".to_owned()),
    ]
    .into_iter()
    .collect();
    let settings = Settings::from_lookup(&|k| env.get(k).cloned()).unwrap();
    assert!(settings.destinations.needs_resolution());
    let d = settings.destinations.resolve(&ssm, &secrets).await.unwrap();
    let expose = |s: &Option<tripline_aws::Secret>| s.as_ref().map(|s| s.expose().to_owned());
    assert_eq!(
        expose(&d.slack_webhook_url).as_deref(),
        Some("https://hooks.slack.com/services/T0/B0/xyz"),
        "decrypted SecureString, trailing newline trimmed"
    );
    assert_eq!(
        expose(&d.splunk_hec_url).as_deref(),
        Some("https://splunk.example.com:8088/services/collector/event")
    );
    assert_eq!(
        expose(&d.pagerduty_routing_key).as_deref(),
        Some("R0UTINGKEY")
    );
    assert_eq!(
        expose(&d.splunk_hec_token).as_deref(),
        Some("hec-token-value")
    );
    assert_eq!(
        expose(&d.webhook_secret).as_deref(),
        Some("direct-hmac-key")
    );
    assert_eq!(d.webhook_url, None);
    assert!(!format!("{d:?}").contains("R0UTINGKEY"));

    // A missing reference names the variable and the parameter.
    let env = [(var::WEBHOOK_URL_PARAM, "/tripline/nope")];
    let settings = Settings::from_lookup(&|k| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let err = settings
        .destinations
        .resolve(&ssm, &secrets)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(var::WEBHOOK_URL_PARAM) && msg.contains("/tripline/nope"),
        "{msg}"
    );
    assert!(msg.contains("ParameterNotFound"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_events_arrive_through_sqs_and_parse() {
    let moto = MotoServer::start();
    let config = moto.sdk_config().await;
    let s3 = s3_with_bucket(&moto).await;
    let queue = moto.s3_events_queue(&config, BUCKET, "raw/").await;

    // Outside the prefix: no event.
    put_object(&s3, BUCKET, "normalized/x.ndjson.gz", &b"x"[..])
        .await
        .unwrap();
    let key = "raw/2026/11/22/14/tripline osquery+1.gz";
    put_object(&s3, BUCKET, key, &b"hello"[..]).await.unwrap();

    let event = queue.next_s3_event().await;
    let record = &event["Records"][0];
    // moto's shape: no userIdentity / requestParameters, `/` as %2F, space as +.
    assert!(record.get("userIdentity").is_none(), "{record}");
    assert!(record.get("requestParameters").is_none(), "{record}");
    assert_eq!(
        record["s3"]["object"]["key"],
        "raw%2F2026%2F11%2F22%2F14%2Ftripline+osquery%2B1.gz"
    );
    assert_eq!(record["eventName"], "ObjectCreated:Put");
    let objs = s3event::parse_value(&event).unwrap();
    assert_eq!(objs.len(), 1);
    assert_eq!(objs[0].bucket, BUCKET);
    assert_eq!(objs[0].key, key);
    assert_eq!(objs[0].size, Some(5));
    assert!(objs[0].is_created());

    // The same, wrapped as Lambda's SQS event source delivers it.
    let key2 = "raw/2026/11/22/15/second.gz";
    put_object(&s3, BUCKET, key2, &b"second!"[..])
        .await
        .unwrap();
    let wrapped = queue.next_sqs_lambda_event().await;
    let objs = s3event::parse_value(&wrapped).unwrap();
    assert_eq!(objs.len(), 1);
    assert_eq!(objs[0].key, key2);
    assert_eq!(objs[0].size, Some(7));
    assert!(objs[0].sqs_message_id.is_some());

    // Multipart uploads notify too, with the full size. moto (5.2) sends an extra
    // `ObjectCreated:Put` before the `ObjectCreated:CompleteMultipartUpload` that AWS sends;
    // both name the complete object, and handlers must be idempotent anyway (S3 delivers
    // at least once).
    let key3 = "raw/2026/11/22/16/big.gz";
    write_through(&s3, key3, data(9 * MIB, 9)).await.unwrap();
    let mut names = Vec::new();
    for _ in 0..2 {
        let objs = s3event::parse_value(&queue.next_s3_event().await).unwrap();
        assert_eq!(objs[0].key, key3);
        assert_eq!(objs[0].size, Some(9 * MIB as u64));
        names.push(objs[0].event_name.clone().unwrap());
    }
    assert_eq!(
        names.last().unwrap(),
        "ObjectCreated:CompleteMultipartUpload",
        "{names:?}"
    );

    assert!(queue
        .receive(std::time::Duration::from_millis(500))
        .await
        .is_none());
}

/// `AWS_ENDPOINT_URL` is honoured by `clients::load_config` (the SDK's default chain). The
/// variable is set only for a child process (this test binary, re-run on one test), never in
/// this process's environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_endpoint_url_is_honoured() {
    if let Ok(bucket) = std::env::var("TRIPLINE_AWS_CHILD_BUCKET") {
        let config = clients::load_config().await;
        assert!(clients::s3_endpoint_url(&config).is_some());
        let s3 = clients::s3(&config);
        let list = s3.list_buckets().send().await.unwrap();
        let names: Vec<&str> = list.buckets().iter().filter_map(|b| b.name()).collect();
        assert_eq!(names, [bucket.as_str()]);
        put_object(&s3, &bucket, "via/env.json", &b"{}"[..])
            .await
            .unwrap();
        return;
    }
    let moto = MotoServer::start();
    let s3 = s3_with_bucket(&moto).await;
    let port = moto.endpoint().rsplit(':').next().unwrap();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["aws_endpoint_url_is_honoured", "--exact", "--nocapture"])
        .env("TRIPLINE_AWS_CHILD_BUCKET", BUCKET)
        // `localhost`, not an IP: virtual-hosted addressing would need `<bucket>.localhost`.
        .env("AWS_ENDPOINT_URL", format!("http://localhost:{port}"))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
    let got = get_object_bytes(&s3, BUCKET, "via/env.json").await.unwrap();
    assert_eq!(&got[..], b"{}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_endpoint_means_path_style() {
    let moto = MotoServer::start();
    let config = moto.sdk_config().await;
    assert_eq!(
        clients::s3_endpoint_url(&config).as_deref(),
        Some(moto.endpoint())
    );
}

/// The test server makes S3's conditional puts atomic, as S3 does: of many concurrent
/// `If-None-Match: *` puts of one key, exactly one creates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conditional_puts_create_once() {
    let moto = MotoServer::start();
    let s3 = s3_with_bucket(&moto).await;
    for round in 0..5 {
        let key = format!("state/claim/a/slack/{round}");
        let puts = (0..16).map(|i| {
            let (s3, key) = (s3.clone(), key.clone());
            tokio::spawn(async move {
                s3io::put_if_absent(&s3, BUCKET, &key, format!("{{\"by\":{i}}}").into_bytes())
                    .await
                    .unwrap()
            })
        });
        let mut created = 0;
        for put in puts.collect::<Vec<_>>() {
            created += usize::from(put.await.unwrap() == PutOutcome::Created);
        }
        assert_eq!(created, 1, "round {round}");
    }
}

/// The listing the CLI's `s3://` inputs start from: every key under the prefix, past a
/// page (1000 keys), in key order, with sizes and ETags; and a read resumed from an offset
/// on the listed ETag, refused once the object changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_in_key_order_and_ranged_reads_resume_on_the_etag() {
    use tripline_aws::{ObjectStore, S3Store};
    let moto = MotoServer::start();
    let s3 = s3_with_bucket(&moto).await;
    let mut keys: Vec<String> = (0..1003)
        .map(|i| format!("raw/2026/11/22/{:04}.gz", (i * 7919) % 1003))
        .collect();
    let puts = keys.clone().into_iter().map(|key| {
        let s3 = s3.clone();
        let body = data(key.len() + 3, 5);
        async move { put_object(&s3, BUCKET, &key, body).await.unwrap() }
    });
    futures_join_all(puts).await;
    put_object(&s3, BUCKET, "raw/2026/11/23/other.gz", b"x".to_vec())
        .await
        .unwrap();
    keys.sort();
    let store = S3Store::new(s3.clone());
    let listed = store
        .list(BUCKET, "raw/2026/11/22/", usize::MAX)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|l| l.key.as_str()).collect::<Vec<_>>(),
        keys
    );
    assert!(listed.iter().all(|l| l.size == l.key.len() as u64 + 3));
    assert_eq!(store.list(BUCKET, "raw/", 1001).await.unwrap().len(), 1001);

    let body = data(100_000, 9);
    put_object(&s3, BUCKET, "raw/one.gz", body.clone())
        .await
        .unwrap();
    let one = store
        .list(BUCKET, "raw/one.gz", 10)
        .await
        .unwrap()
        .remove(0);
    let tail = store
        .reader_at(BUCKET, "raw/one.gz", 60_000, &one.etag)
        .await
        .unwrap();
    let tail = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let mut tail = tail;
        tail.read_to_end(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(
        tail == body[60_000..],
        "the ranged read is the object's tail"
    );

    put_object(&s3, BUCKET, "raw/one.gz", data(100_000, 10))
        .await
        .unwrap();
    let changed = store
        .reader_at(BUCKET, "raw/one.gz", 60_000, &one.etag)
        .await
        .unwrap_err();
    assert_eq!(changed.code(), Some("PreconditionFailed"), "{changed}");
    assert!(!changed.retryable());
}

/// Runs the futures concurrently on the test's runtime.
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futures: impl IntoIterator<Item = F>,
) {
    let tasks: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    for t in tasks {
        t.await.unwrap();
    }
}
