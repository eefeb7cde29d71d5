//! At-least-once delivery, as S3 and Lambda practise it, through the real detect and notify
//! binaries under `cargo lambda watch --concurrency 2` (two copies of one event run in two
//! processes at once), against moto (conditional puts atomic, as on S3) and a local HTTP
//! receiver standing in for Slack, the webhook, PagerDuty and Splunk HEC:
//!
//! - two detect invocations of one object at once create each alert once (one `ObjectCreated`
//!   per alert, so one notify invocation per alert);
//! - two notify invocations of one alert event at once deliver once per destination;
//! - Slack answering 429 with `Retry-After: 20` under notify's 60 s budget holds up no other
//!   destination: SNS, the webhook, PagerDuty and Splunk are delivered at once by the first
//!   invocation, which then fails with `DestinationFailed` for Slack alone, and the retry
//!   sends to Slack only.
//!
//! Needs `moto_server` and `cargo-lambda` in `${VENV:-.venv}` (`scripts/test` installs both).

use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tripline_aws::clients;
use tripline_aws::testing::MotoServer;
use tripline_core::compress::Codec;
use tripline_core::decode::{Decoded, ObjectDecoder, Options, Origin};
use tripline_e2e::{cargo_lambda_path, repo_root, Receiver, Watch};

const BUCKET: &str = "tripline-data";
const NORMALIZED_KEY: &str =
    "normalized/raw/2026/11/17/02/tripline-osquery-1-2026-11-17-02-00-00-c0ffee00.gz.ndjson.zst";
const DETECT: &str = "tripline-detect";
const NOTIFY: &str = "tripline-notify";

const SLACK: &str = "/slack/services/T0E2E/B0E2E/concurrency";
const WEBHOOK: &str = "/webhook/tripline";
const PAGERDUTY: &str = "/pagerduty/v2/enqueue";
const HEC: &str = "/services/collector/event";

/// `events/osquery/attack-linux.ndjson` as the parse stage writes it.
fn normalized_object() -> Vec<u8> {
    let raw = std::fs::read(repo_root().join("events/osquery/attack-linux.ndjson")).unwrap();
    let mut enc = Codec::Zstd.encoder(Vec::new()).unwrap();
    let origin = Origin::s3(BUCKET, "raw/2026/11/17/02/x.gz");
    for item in ObjectDecoder::new(&raw[..], origin, Options::default()) {
        if let Decoded::Event(e) = item {
            serde_json::to_writer(&mut enc, &*e).unwrap();
            enc.write_all(b"\n").unwrap();
        }
    }
    enc.finish().unwrap()
}

/// An S3 `ObjectCreated:Put` event for `key`, as S3 invokes a function with it.
fn s3_event(key: &str) -> Value {
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-17T02:05:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 1}}
    }]})
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn sns_sent(moto: &MotoServer, topic_arn: &str) -> usize {
    let data = moto.data_json();
    data["sns"]["Topic"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["arn"] == topic_arn))
        .and_then(|t| t["sent_notifications"].as_array().map(Vec::len))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_and_a_rate_limited_destination() {
    let receiver = Receiver::start();
    let moto = MotoServer::start();
    let config = moto.sdk_config().await;
    let s3 = clients::s3(&config);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let alert_events = moto.s3_events_queue(&config, BUCKET, "alerts/").await;
    let topic_arn = aws_sdk_sns::Client::new(&config)
        .create_topic()
        .name("tripline-concurrency-alerts")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();

    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", moto.endpoint().to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("RUST_LOG", "info".into()),
        ("TRIPLINE_SNS_TOPIC_ARN", topic_arn.clone()),
        ("TRIPLINE_SLACK_WEBHOOK_URL", receiver.url(SLACK)),
        ("TRIPLINE_WEBHOOK_URL", receiver.url(WEBHOOK)),
        ("TRIPLINE_WEBHOOK_SECRET", "concurrency-hmac".into()),
        ("TRIPLINE_PAGERDUTY_ROUTING_KEY", "concurrency-key".into()),
        ("TRIPLINE_PAGERDUTY_URL", receiver.url(PAGERDUTY)),
        ("TRIPLINE_SPLUNK_HEC_URL", receiver.base_url()),
        ("TRIPLINE_SPLUNK_HEC_TOKEN", "concurrency-hec".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let watch = Watch::start_concurrent(&cargo_lambda_path(), &repo_root(), &env, 2);
    watch
        .warm_up(
            &[DETECT, NOTIFY],
            &json!({"Records": []}),
            Duration::from_secs(25 * 60),
        )
        .await;

    // Detect, twice at once on one object.
    s3.put_object()
        .bucket(BUCKET)
        .key(NORMALIZED_KEY)
        .body(normalized_object().into())
        .send()
        .await
        .unwrap();
    let event = s3_event(NORMALIZED_KEY);
    let (a, b) = tokio::join!(
        watch.invoke_ok(DETECT, &event),
        watch.invoke_ok(DETECT, &event)
    );
    let (wa, wb) = (strings(&a["written"]), strings(&b["written"]));
    let written: BTreeSet<String> = wa.iter().chain(&wb).cloned().collect();
    assert_eq!(
        written.len(),
        wa.len() + wb.len(),
        "an alert written twice: {a} {b}"
    );
    assert!(written.len() >= 5, "{a} {b}");
    for report in [&a, &b] {
        let deduplicated: BTreeSet<String> = strings(&report["deduplicated"]).into_iter().collect();
        let own: BTreeSet<String> = strings(&report["written"]).into_iter().collect();
        assert_eq!(
            own.union(&deduplicated).cloned().collect::<BTreeSet<_>>(),
            written,
            "each run either wrote or found every alert: {report}"
        );
    }
    let mut created = Vec::new();
    while let Some(m) = alert_events.receive(Duration::from_secs(2)).await {
        created.push(m.body);
    }
    assert_eq!(
        created.len(),
        written.len(),
        "one ObjectCreated per alert, whatever ran twice: {created:#?}"
    );

    // Notify, twice at once on one alert, Slack rate-limited throughout the first invocation.
    let alert_key = written.iter().next().unwrap().clone();
    let alert_id = alert_key
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".json")
        .to_owned();
    receiver.script(SLACK, &[429, 429, 429]);
    receiver.retry_after(SLACK, 20);
    let event = s3_event(&alert_key);
    let started = Instant::now();
    let (first, second) = tokio::join!(
        watch.invoke(NOTIFY, &event, Duration::from_secs(120)),
        watch.invoke(NOTIFY, &event, Duration::from_secs(120))
    );
    let took = started.elapsed();
    let (first, second) = (first.unwrap(), second.unwrap());
    let (failed, other) = if first.body.contains("errorType") {
        (first, second)
    } else {
        (second, first)
    };
    // Each destination is claimed by one of the two: the four that answer are delivered at
    // once by whichever holds their claim, and the holder of Slack's fails for it alone
    // within the budget (attempts at 0, 20 and 40 s; a fourth would end past 60 s).
    assert!(
        failed.body.contains("DestinationFailed") && failed.body.contains("slack"),
        "{}",
        failed.body
    );
    for other_destination in ["sns", "webhook", "pagerduty", "splunk"] {
        assert!(
            !failed.body.contains(&format!("/{other_destination}:")),
            "only Slack failed: {}",
            failed.body
        );
    }
    assert!(
        took > Duration::from_secs(35) && took < Duration::from_secs(60),
        "{took:?}"
    );
    // The other neither failed nor sent what the first held.
    let other: Value = serde_json::from_str(&other.body)
        .unwrap_or_else(|e| panic!("the second invocation failed too ({e}): {}", other.body));
    assert!(
        !strings(&other["delivered"]).contains(&format!("{alert_id}/slack")),
        "{other}"
    );
    assert_eq!(
        strings(&other["delivered"]).len()
            + strings(&other["claimed_by_another"]).len()
            + strings(&other["skipped"]).len(),
        5,
        "{other}"
    );
    for path in [WEBHOOK, PAGERDUTY, HEC] {
        let got = receiver.requests_to(path);
        assert_eq!(got.len(), 1, "{path}: {}", receiver.summary());
        assert!(
            got[0].at.duration_since(started) < Duration::from_secs(15),
            "{path} waited for Slack"
        );
    }
    assert_eq!(sns_sent(&moto, &topic_arn), 1, "one e-mail");
    let slack = receiver.requests_to(SLACK);
    assert_eq!(
        slack.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 429, 429],
        "{}",
        receiver.summary()
    );

    // Lambda's retry: Slack only.
    let retry = watch.invoke_ok(NOTIFY, &event).await;
    assert_eq!(
        strings(&retry["delivered"]),
        [format!("{alert_id}/slack")],
        "{retry}"
    );
    assert_eq!(strings(&retry["skipped"]).len(), 4, "{retry}");
    assert_eq!(receiver.requests_to(SLACK).len(), 4);
    for path in [WEBHOOK, PAGERDUTY, HEC] {
        assert_eq!(receiver.requests_to(path).len(), 1, "{path}");
    }
    assert_eq!(sns_sent(&moto, &topic_arn), 1);
}
