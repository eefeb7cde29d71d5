//! The whole pipeline on real parts: the three Lambda binaries under `cargo lambda watch`,
//! invoked through its Lambda Invoke API with the S3 events moto itself emits, against moto
//! (S3, SNS, SQS, SSM, Secrets Manager) and one local HTTP receiver standing in for Slack,
//! the signed webhook, PagerDuty, Splunk HEC and an SNS HTTP subscription.
//!
//! raw Firehose object → parse → normalized/ + quarantine/ → detect → alerts/ (created if absent)
//! → notify → SNS, Slack, webhook, PagerDuty, HEC (+ delivery markers); then every event is
//! replayed and nothing may happen twice; the webhook fails twice for the first alert and the
//! delivery must be retried to exactly one success.
//!
//! Needs `moto_server` and `cargo-lambda` in `${VENV:-.venv}` (`scripts/test` installs both
//! from `requirements-test.txt`). Run alone with
//! `cargo test -p tripline-e2e --test pipeline -- --nocapture` to see the timings.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use aws_sdk_s3::types::{
    Event as S3EventName, FilterRule, FilterRuleName, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
};
use flate2::{write::GzEncoder, Compression};
use serde_json::{json, Value};
use tripline_aws::s3io::get_object_bytes;
use tripline_aws::testing::{create_queue, MotoServer, REGION};
use tripline_aws::{clients, s3event};
use tripline_core::compress::Codec;
use tripline_core::notify::webhook;
use tripline_e2e::{cargo_lambda_path, repo_root, Receiver, Request, Watch};

const BUCKET: &str = "tripline-data";
const RAW_KEY: &str = "raw/2026/11/20/08/tripline-osquery-1-2026-11-20-08-00-07-4f1c9a2e.gz";
const TOPIC: &str = "tripline-e2e-alerts";

const WEBHOOK_SECRET: &str = "e2e-webhook-hmac-5b7f0c1d";
const WEBHOOK_SECRET_PARAM: &str = "/tripline/e2e/webhook-secret";
const HEC_TOKEN: &str = "e2e-hec-token-6a4e2d90";
const HEC_TOKEN_SECRET: &str = "tripline/e2e/splunk-hec-token";
const ROUTING_KEY: &str = "e2e-pagerduty-routing-key-91c2";

// Receiver paths, one per destination.
const SLACK: &str = "/slack/services/T0E2E/B0E2E/e2eSlackToken";
const WEBHOOK: &str = "/webhook/tripline";
const PAGERDUTY: &str = "/pagerduty/v2/enqueue";
/// What notify appends to the HEC base URL (the receiver's root).
const HEC: &str = "/services/collector/event";
const SNS_HTTP: &str = "/sns/tripline-alerts";

const PARSE: &str = "tripline-parse";
const DETECT: &str = "tripline-detect";
const NOTIFY: &str = "tripline-notify";

/// Records (1-based lines) of `events/osquery/attack-linux.ndjson` put into the raw object:
/// two benign ones and the xz backdoor, a malicious cron job, a reverse shell and
/// /etc/ld.so.preload.
const RECORDS: &[usize] = &[1, 2, 10, 12, 15, 24];
/// A record cut off mid-way (what a crashed writer leaves): must be quarantined, not lost.
const GARBAGE: &str = r#"{"name":"pack_tripline-common_crontab","hostIdentifier":"web-01.prod.acme.io","columns":{"command":"#;
/// Where the garbage goes among the records (1-based record number in the object).
const GARBAGE_AT: usize = 4;

/// Rules the object must fire (at least these).
const EXPECTED_RULES: &[&str] = &[
    "osquery_xz_backdoor",
    "osquery_suspicious_cron",
    "osquery_reverse_shell",
    "osquery_ld_preload",
];

const DESTINATIONS: &[&str] = &["sns", "slack", "webhook", "pagerduty", "splunk"];

/// Fields every normalized result event carries (ARCHITECTURE.md, "The normalized event").
const EVENT_FIELDS: &[&str] = &[
    "kind",
    "name",
    "pack",
    "query",
    "host",
    "action",
    "columns",
    "decorations",
    "time",
    "unix_time",
    "epoch",
    "counter",
    "numerics",
    "source",
    "id",
    "indicators",
];

// ---------------------------------------------------------------------------------------------
// The raw object

/// osquery's AWS loggers write records through a Boost property tree: every scalar becomes a
/// string, empty containers become `""`, and `log_type` is appended (`/` is escaped as `\/`
/// when serialized, see [`firehose_line`]).
fn firehose_form(v: &Value) -> Value {
    match v {
        Value::Object(m) if m.is_empty() => Value::String(String::new()),
        Value::Array(a) if a.is_empty() => Value::String(String::new()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), firehose_form(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(firehose_form).collect()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Null => Value::String(String::new()),
        Value::String(s) => Value::String(s.clone()),
    }
}

fn firehose_line(record: &Value) -> String {
    let mut r = firehose_form(record);
    if r.get("log_type").is_none() {
        r["log_type"] = json!("result");
    }
    // `/` only occurs inside strings in JSON text, so escaping every one is safe.
    serde_json::to_string(&r).unwrap().replace('/', "\\/")
}

/// Rows a record decodes to: added + removed of a diff, a snapshot's rows, or one event row.
fn rows(record: &Value) -> usize {
    let n = |v: &Value| v.as_array().map_or(0, Vec::len);
    if let Some(d) = record.get("diffResults") {
        n(&d["added"]) + n(&d["removed"])
    } else if let Some(s) = record.get("snapshot") {
        n(s)
    } else if record.get("columns").is_some() {
        1
    } else {
        0
    }
}

struct RawObject {
    gzip: Vec<u8>,
    records: usize,
    events: usize,
}

fn raw_object() -> RawObject {
    let path = repo_root().join("events/osquery/attack-linux.ndjson");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut events = 0;
    for &n in RECORDS {
        let record: Value = serde_json::from_str(lines[n - 1])
            .unwrap_or_else(|e| panic!("{}:{n}: {e}", path.display()));
        events += rows(&record);
        out.push(firehose_line(&record));
    }
    out.insert(GARBAGE_AT - 1, GARBAGE.to_owned());
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    for line in &out {
        gz.write_all(line.as_bytes()).unwrap();
        gz.write_all(b"\n").unwrap();
    }
    RawObject {
        gzip: gz.finish().unwrap(),
        records: out.len(),
        events,
    }
}

/// The text of a normalized or quarantine object, which parse writes as zstd by default.
fn unpack(bytes: &[u8]) -> String {
    assert_eq!(Codec::sniff(bytes), Some(Codec::Zstd), "zstd NDJSON");
    let mut out = String::new();
    Codec::Zstd
        .decoder(bytes)
        .read_to_string(&mut out)
        .expect("zstd NDJSON");
    out
}

fn ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// S3 events through SQS, one queue per prefix

struct EventQueues {
    sqs: aws_sdk_sqs::Client,
    urls: BTreeMap<&'static str, String>,
}

impl EventQueues {
    /// One SQS queue per prefix, and the bucket's notification configuration sending each
    /// prefix's `ObjectCreated` events to its queue (what the Lambda triggers are in AWS).
    async fn create(
        config: &SdkConfig,
        s3: &aws_sdk_s3::Client,
        prefixes: &[&'static str],
    ) -> Self {
        let sqs = aws_sdk_sqs::Client::new(config);
        let mut urls = BTreeMap::new();
        let mut queue_configs = Vec::new();
        for &prefix in prefixes {
            let name = format!("e2e-{}-events", prefix.trim_end_matches('/'));
            let (url, arn) = create_queue(&sqs, &name).await;
            let rule = FilterRule::builder()
                .name(FilterRuleName::Prefix)
                .value(prefix)
                .build();
            queue_configs.push(
                QueueConfiguration::builder()
                    .id(format!("e2e-{}", prefix.trim_end_matches('/')))
                    .queue_arn(arn)
                    .events(S3EventName::S3ObjectCreated)
                    .filter(
                        NotificationConfigurationFilter::builder()
                            .key(S3KeyFilter::builder().filter_rules(rule).build())
                            .build(),
                    )
                    .build()
                    .expect("queue configuration"),
            );
            urls.insert(prefix, url);
        }
        s3.put_bucket_notification_configuration()
            .bucket(BUCKET)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .set_queue_configurations(Some(queue_configs))
                    .build(),
            )
            .send()
            .await
            .expect("PutBucketNotificationConfiguration");
        let queues = EventQueues { sqs, urls };
        // S3 sends an s3:TestEvent to each queue on configuration; drop them.
        for &prefix in prefixes {
            let _ = queues.receive(prefix, Duration::from_millis(500)).await;
        }
        queues
    }

    /// The S3 events on `prefix`'s queue, waiting up to `wait` for the first; deletes them.
    /// `s3:TestEvent`s are skipped.
    async fn receive(&self, prefix: &str, wait: Duration) -> Vec<Value> {
        let url = &self.urls[prefix];
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(if out.is_empty() {
                    left.as_secs().min(2) as i32
                } else {
                    0
                })
                .send()
                .await
                .expect("ReceiveMessage");
            let messages = got.messages();
            for m in messages {
                if let Some(handle) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("DeleteMessage");
                }
                let body: Value =
                    serde_json::from_str(m.body().unwrap_or_default()).expect("S3 event is JSON");
                if body["Event"] != "s3:TestEvent" {
                    out.push(body);
                }
            }
            if messages.is_empty() && (!out.is_empty() || Instant::now() >= deadline) {
                return out;
            }
            if messages.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Exactly `n` events on `prefix` (moto emits them synchronously with the write, so they
    /// are there once the invocation that wrote the objects has returned).
    async fn take(&self, prefix: &str, n: usize, what: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < deadline {
            got.extend(self.receive(prefix, Duration::from_secs(2)).await);
        }
        // Anything beyond n would be a duplicate write.
        tokio::time::sleep(Duration::from_millis(300)).await;
        got.extend(self.receive(prefix, Duration::ZERO).await);
        assert_eq!(
            got.len(),
            n,
            "{what}: expected {n} S3 event(s) on {prefix}, got {}: {got:#?}",
            got.len()
        );
        got
    }
}

/// The one object an S3 event names.
fn event_key(event: &Value) -> String {
    let objects = s3event::parse_value(event).expect("an S3 event");
    assert_eq!(objects.len(), 1, "one record per S3 event: {event}");
    assert_eq!(objects[0].bucket, BUCKET);
    assert!(objects[0].is_created(), "{event}");
    objects[0].key.clone()
}

// ---------------------------------------------------------------------------------------------
// Bucket and delivery state

/// `key → (ETag, LastModified)` under `prefix`: changes if an object is added or rewritten.
async fn listing(s3: &aws_sdk_s3::Client, prefix: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .expect("ListObjectsV2");
        for o in page.contents() {
            out.insert(
                o.key().unwrap_or_default().to_owned(),
                format!("{:?} {:?}", o.e_tag(), o.last_modified()),
            );
        }
        match page.next_continuation_token() {
            Some(t) => token = Some(t.to_owned()),
            None => return out,
        }
    }
}

/// Everything a replay must leave unchanged.
#[derive(Debug, PartialEq)]
struct Snapshot {
    alerts: BTreeMap<String, String>,
    state: BTreeMap<String, String>,
    requests: usize,
    sns_sent: usize,
}

async fn snapshot(
    s3: &aws_sdk_s3::Client,
    moto: &MotoServer,
    receiver: &Receiver,
    topic_arn: &str,
) -> Snapshot {
    Snapshot {
        alerts: listing(s3, "alerts/").await,
        state: listing(s3, "state/").await,
        requests: receiver.requests().len(),
        sns_sent: sns_sent(moto, topic_arn).len(),
    }
}

/// The topic's `sent_notifications` in moto's `/moto-api/data.json`:
/// `[message_id, message, subject, attributes, group_id]` each.
fn sns_sent(moto: &MotoServer, topic_arn: &str) -> Vec<Value> {
    let data = moto.data_json();
    let topics = data["sns"]["Topic"]
        .as_array()
        .unwrap_or_else(|| panic!("no sns.Topic in moto's data.json: {data}"));
    let topic = topics
        .iter()
        .find(|t| t["arn"] == topic_arn)
        .unwrap_or_else(|| panic!("topic {topic_arn} not in moto's data.json: {topics:?}"));
    topic["sent_notifications"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no sent_notifications: {topic}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_owned()
        })
        .collect()
}

/// Alert id of a request, via `id_of` on its JSON body; panics on a body without one.
fn by_alert(
    requests: &[Request],
    id_of: impl Fn(&Value) -> Option<String>,
) -> BTreeMap<String, Vec<&Request>> {
    let mut out: BTreeMap<String, Vec<&Request>> = BTreeMap::new();
    for r in requests {
        let body = r.json();
        let id = id_of(&body)
            .unwrap_or_else(|| panic!("{} {}: no alert id in {body}", r.method, r.path));
        out.entry(id).or_default().push(r);
    }
    out
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_on_cargo_lambda_watch_moto_and_http_receiver() {
    let started = Instant::now();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut lap = {
        let mut last = Instant::now();
        move |name: &'static str, timings: &mut Vec<(&str, Duration)>| {
            timings.push((name, last.elapsed()));
            last = Instant::now();
        }
    };

    // 1. moto: bucket, S3 → SQS notifications per prefix, SNS topic with an HTTP
    //    subscription to the receiver, the secrets notify reads through _PARAM.
    let receiver = Receiver::start();
    let moto = MotoServer::start();
    let config = moto.sdk_config().await;
    let s3 = clients::s3(&config);
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("CreateBucket");
    let queues = EventQueues::create(&config, &s3, &["raw/", "normalized/", "alerts/"]).await;

    let sns = aws_sdk_sns::Client::new(&config);
    let topic_arn = sns
        .create_topic()
        .name(TOPIC)
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn()
        .expect("topic ARN")
        .to_owned();
    let subscription_arn = sns
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("http")
        .endpoint(receiver.url(SNS_HTTP))
        .return_subscription_arn(true)
        .send()
        .await
        .expect("Subscribe")
        .subscription_arn()
        .expect("subscription ARN")
        .to_owned();
    // Real SNS posts a SubscriptionConfirmation first; moto confirms HTTP subscriptions on its
    // own. Confirm whatever arrived, then require the subscription to be live.
    for r in receiver.requests_to(SNS_HTTP) {
        let body = r.json();
        if body["Type"] == "SubscriptionConfirmation" {
            sns.confirm_subscription()
                .topic_arn(&topic_arn)
                .token(body["Token"].as_str().expect("Token"))
                .send()
                .await
                .expect("ConfirmSubscription");
        }
    }
    let attributes = sns
        .get_subscription_attributes()
        .subscription_arn(&subscription_arn)
        .send()
        .await
        .expect("GetSubscriptionAttributes");
    assert_eq!(
        attributes
            .attributes()
            .and_then(|a| a.get("PendingConfirmation"))
            .map(String::as_str),
        Some("false"),
        "SNS HTTP subscription not confirmed: {attributes:?}"
    );
    let sns_confirmations = receiver.requests_to(SNS_HTTP).len();

    aws_sdk_ssm::Client::new(&config)
        .put_parameter()
        .name(WEBHOOK_SECRET_PARAM)
        .value(WEBHOOK_SECRET)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("SSM PutParameter");
    aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name(HEC_TOKEN_SECRET)
        .secret_string(HEC_TOKEN)
        .send()
        .await
        .expect("Secrets Manager CreateSecret");
    lap("moto and receiver", &mut timings);

    // 3. The functions under cargo lambda watch, configured as the Terraform module does, with
    //    every destination pointed at the receiver.
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", moto.endpoint().to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_DEFAULT_REGION", REGION.into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("RUST_LOG", "info".into()),
        ("TRIPLINE_SNS_TOPIC_ARN", topic_arn.clone()),
        ("TRIPLINE_SLACK_WEBHOOK_URL", receiver.url(SLACK)),
        ("TRIPLINE_WEBHOOK_URL", receiver.url(WEBHOOK)),
        ("TRIPLINE_WEBHOOK_SECRET_PARAM", WEBHOOK_SECRET_PARAM.into()),
        ("TRIPLINE_PAGERDUTY_ROUTING_KEY", ROUTING_KEY.into()),
        ("TRIPLINE_PAGERDUTY_URL", receiver.url(PAGERDUTY)),
        ("TRIPLINE_SPLUNK_HEC_URL", receiver.base_url()),
        (
            "TRIPLINE_SPLUNK_HEC_TOKEN_PARAM",
            format!("secretsmanager:{HEC_TOKEN_SECRET}"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let watch = Watch::start(&cargo_lambda_path(), &repo_root(), &env);
    lap("watch listening", &mut timings);
    // watch compiles and starts each function on its first invocation: an empty event makes
    // that happen before anything is timed (minutes on a cold target directory).
    let warm = watch
        .warm_up(
            &[PARSE, DETECT, NOTIFY],
            &json!({"Records": []}),
            Duration::from_secs(25 * 60),
        )
        .await;
    let log = watch.log();
    let compiled: Vec<&str> = log
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Compiling "))
        .collect();
    eprintln!(
        "warm-up (compile + cold start) per function: {warm:?}; watch compiled {} crate(s): {compiled:?}",
        compiled.len()
    );
    assert!(
        log.contains("\"notify ready\""),
        "notify did not log its destinations at cold start"
    );
    lap("functions compiled and started", &mut timings);

    // 4. The raw Firehose object, and the chain: parse → detect → notify, each invoked with the
    //    S3 event moto emitted for the previous stage's output.
    let raw = raw_object();
    s3.put_object()
        .bucket(BUCKET)
        .key(RAW_KEY)
        .body(raw.gzip.clone().into())
        .send()
        .await
        .expect("PutObject raw");
    let raw_events = queues.take("raw/", 1, "upload").await;
    assert_eq!(event_key(&raw_events[0]), RAW_KEY);

    let parsed = watch.invoke_ok(PARSE, &raw_events[0]).await;
    let normalized_key = format!("normalized/{RAW_KEY}.ndjson.zst");
    let quarantine_key = format!("quarantine/{RAW_KEY}.ndjson.zst");
    let summary = &parsed["objects"][0]["summary"];
    assert_eq!(
        parsed["objects"].as_array().map(Vec::len),
        Some(1),
        "{parsed}"
    );
    assert_eq!(
        parsed["objects"][0]["events_key"],
        normalized_key.as_str(),
        "{parsed}"
    );
    assert_eq!(
        parsed["objects"][0]["quarantine_key"],
        quarantine_key.as_str(),
        "{parsed}"
    );
    assert_eq!(summary["records"], raw.records, "{parsed}");
    assert_eq!(summary["events"], raw.events, "{parsed}");
    assert_eq!(summary["quarantined"], 1, "{parsed}");
    assert_eq!(summary["error"], Value::Null, "{parsed}");

    // 5a. The normalized object: one line per event, every documented field.
    let normalized_events = queues.take("normalized/", 1, "parse").await;
    assert_eq!(event_key(&normalized_events[0]), normalized_key);
    let normalized_text = unpack(
        &get_object_bytes(&s3, BUCKET, &normalized_key)
            .await
            .unwrap(),
    );
    let events = ndjson(&normalized_text);
    assert_eq!(events.len(), raw.events, "normalized lines = events");
    let mut ids = BTreeSet::new();
    for e in &events {
        for f in EVENT_FIELDS {
            assert!(e.get(*f).is_some(), "normalized event without {f}: {e}");
        }
        assert_eq!(e["kind"], "result", "{e}");
        assert_eq!(e["source"]["bucket"], BUCKET, "{e}");
        assert_eq!(e["source"]["key"], RAW_KEY, "{e}");
        let id = e["id"].as_str().expect("id");
        assert!(
            id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "id {id}"
        );
        assert!(ids.insert(id.to_owned()), "duplicate event id {id}");
        assert!(
            e["time"]
                .as_str()
                .is_some_and(|t| t.starts_with("2026-11-")),
            "{e}"
        );
    }
    assert!(
        events.iter().any(|e| e["columns"]["command"]
            .as_str()
            .is_some_and(|c| c.contains("45.9.148.125"))),
        "the malicious crontab row is among the events"
    );
    // Firehose form: stringified scalars are read back as numbers where the format has them.
    assert!(events
        .iter()
        .all(|e| e["counter"].is_i64() && e["numerics"].is_boolean()));

    // 5b. The quarantine object: the garbage line with its reason.
    let quarantine_text = unpack(
        &get_object_bytes(&s3, BUCKET, &quarantine_key)
            .await
            .unwrap(),
    );
    let quarantined = ndjson(&quarantine_text);
    assert_eq!(quarantined.len(), 1, "{quarantine_text}");
    let q = &quarantined[0];
    assert!(
        q["reason"].as_str().is_some_and(|r| !r.trim().is_empty()),
        "quarantined record without a reason: {q}"
    );
    assert_eq!(q["source"]["record"], GARBAGE_AT, "{q}");
    assert_eq!(q["source"]["key"], RAW_KEY, "{q}");
    assert!(
        q["raw"]
            .as_str()
            .is_some_and(|r| r.contains("pack_tripline-common_crontab")),
        "{q}"
    );
    lap("parse", &mut timings);

    // 5c. detect → alert objects.
    let detected = watch.invoke_ok(DETECT, &normalized_events[0]).await;
    let written: BTreeSet<String> = strings(&detected["written"]).into_iter().collect();
    assert!(!written.is_empty(), "no alerts: {detected}");
    assert_eq!(detected["deduplicated"], json!([]), "{detected}");
    assert_eq!(detected["stats"]["events"], raw.events, "{detected}");
    let alert_events = queues.take("alerts/", written.len(), "detect").await;
    let alert_event_keys: BTreeSet<String> = alert_events.iter().map(event_key).collect();
    assert_eq!(
        alert_event_keys, written,
        "S3 events on alerts/ = alerts written"
    );
    assert_eq!(
        listing(&s3, "alerts/")
            .await
            .into_keys()
            .collect::<BTreeSet<_>>(),
        written,
        "the bucket's alerts/ = alerts written"
    );

    let mut alerts: BTreeMap<String, Value> = BTreeMap::new(); // id → alert
    for key in &written {
        let alert: Value =
            serde_json::from_slice(&get_object_bytes(&s3, BUCKET, key).await.unwrap())
                .unwrap_or_else(|e| panic!("{key} is not JSON: {e}"));
        let id = alert["id"].as_str().expect("alert id").to_owned();
        // alerts/YYYY/MM/DD/<id>.json, dated by the dedup window's start.
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 5, "{key}");
        assert_eq!(parts[0], "alerts", "{key}");
        let date = alert["dedup"]["window_start"]
            .as_str()
            .expect("window_start");
        assert_eq!(
            format!("{}-{}-{}", parts[1], parts[2], parts[3]),
            date[..10],
            "{key} is dated by the window start {date}"
        );
        assert!(
            parts[1..4]
                .iter()
                .all(|p| p.chars().all(|c| c.is_ascii_digit())),
            "{key}"
        );
        assert_eq!(parts[4], format!("{id}.json"), "{key}");
        assert!(!alert["attack"].as_array().unwrap().is_empty(), "{alert}");
        assert!(
            alerts.insert(id, alert).is_none(),
            "two objects for one alert id"
        );
    }
    let rules: BTreeSet<&str> = alerts
        .values()
        .map(|a| a["rule"]["name"].as_str().unwrap())
        .collect();
    for rule in EXPECTED_RULES {
        assert!(
            rules.contains(rule),
            "{rule} did not fire; fired: {rules:?}"
        );
    }
    let cron = alerts
        .values()
        .find(|a| a["rule"]["name"] == "osquery_suspicious_cron")
        .unwrap();
    assert!(
        cron["attack"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "T1053.003"
                && strings(&t["tactics"]).contains(&"persistence".to_owned())),
        "cron alert without T1053.003: {cron}"
    );
    assert_eq!(cron["hosts"], json!(["web-01.prod.acme.io"]));
    assert_eq!(
        alerts
            .values()
            .filter(|a| a["rule"]["name"] == "osquery_xz_backdoor")
            .count(),
        2,
        "xz-utils and liblzma5 are two alerts"
    );
    assert!(
        listing(&s3, "state/").await.is_empty(),
        "detect keeps no state: the alert is its own marker"
    );
    lap("detect", &mut timings);

    // 5d + 7. notify, one invocation per alert event (as S3 → Lambda delivers them). The webhook
    //    fails twice for the first alert: notify must retry to success within the invocation.
    receiver.script(WEBHOOK, &[500, 500]);
    let first_alert = {
        let key = event_key(&alert_events[0]);
        key.rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".json")
            .to_owned()
    };
    for event in &alert_events {
        let key = event_key(event);
        let report = watch.invoke_ok(NOTIFY, event).await;
        let id = key.rsplit('/').next().unwrap().trim_end_matches(".json");
        let want: BTreeSet<String> = DESTINATIONS.iter().map(|d| format!("{id}/{d}")).collect();
        let delivered: BTreeSet<String> = strings(&report["delivered"]).into_iter().collect();
        assert_eq!(delivered, want, "notify {key}: {report}");
        assert_eq!(report["failed"], json!([]), "{report}");
        assert_eq!(report["skipped"], json!([]), "{report}");
    }
    lap("notify", &mut timings);

    // Delivery markers: one per alert and destination; the webhook's records its 3 attempts.
    let state = listing(&s3, "state/delivery/").await;
    let want_markers: BTreeSet<String> = alerts
        .keys()
        .flat_map(|id| {
            DESTINATIONS
                .iter()
                .map(move |d| format!("state/delivery/{id}/{d}"))
        })
        .collect();
    assert_eq!(state.keys().cloned().collect::<BTreeSet<_>>(), want_markers);
    let marker: Value = serde_json::from_slice(
        &get_object_bytes(
            &s3,
            BUCKET,
            &format!("state/delivery/{first_alert}/webhook"),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(marker["detail"], "HTTP 200 after 3 attempt(s)", "{marker}");

    // SNS: what moto recorded as published, with the attributes filter policies route on.
    let sent = sns_sent(&moto, &topic_arn);
    assert_eq!(
        sent.len(),
        alerts.len(),
        "one SNS message per alert: {sent:#?}"
    );
    let mut sns_ids = BTreeSet::new();
    let mut sns_alerts = BTreeSet::new();
    for n in &sent {
        let (message_id, message, subject, attrs) = (&n[0], &n[1], &n[2], &n[3]);
        let body: Value = serde_json::from_str(message.as_str().unwrap()).unwrap();
        let alert = &alerts[body["id"].as_str().unwrap()];
        sns_ids.insert(message_id.as_str().unwrap().to_owned());
        sns_alerts.insert(body["id"].as_str().unwrap().to_owned());
        let severity = alert["severity"].as_str().unwrap();
        assert!(
            subject
                .as_str()
                .unwrap()
                .starts_with(&format!("[{}] ", severity.to_uppercase())),
            "{subject}"
        );
        assert_eq!(attrs["severity"]["Type"], "String", "{attrs}");
        assert_eq!(attrs["severity"]["Value"], severity, "{attrs}");
        assert_eq!(attrs["rule"]["Value"], alert["rule"]["name"], "{attrs}");
        let techniques: Vec<String> = alert["attack"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect();
        let mut tactics: Vec<String> = Vec::new();
        for t in alert["attack"].as_array().unwrap() {
            for tactic in strings(&t["tactics"]) {
                if !tactics.contains(&tactic) {
                    tactics.push(tactic);
                }
            }
        }
        for (name, want) in [("techniques", techniques), ("tactics", tactics)] {
            assert_eq!(attrs[name]["Type"], "String.Array", "{attrs}");
            let got: Vec<String> =
                serde_json::from_str(attrs[name]["Value"].as_str().unwrap()).unwrap();
            assert_eq!(got, want, "{name} attribute of {}", body["id"]);
        }
    }
    assert_eq!(sns_alerts, alerts.keys().cloned().collect());
    // ...and what moto delivered to the HTTP subscription.
    let sns_http: Vec<Request> = receiver.requests_to(SNS_HTTP)[sns_confirmations..].to_vec();
    assert_eq!(sns_http.len(), alerts.len(), "{}", receiver.summary());
    let mut delivered_ids = BTreeSet::new();
    for r in &sns_http {
        let body = r.json();
        assert_eq!(body["Type"], "Notification", "{body}");
        assert_eq!(body["TopicArn"], topic_arn.as_str(), "{body}");
        delivered_ids.insert(body["MessageId"].as_str().unwrap().to_owned());
        let alert: Value = serde_json::from_str(body["Message"].as_str().unwrap()).unwrap();
        assert!(
            alerts.contains_key(alert["id"].as_str().unwrap()),
            "{alert}"
        );
    }
    assert_eq!(
        delivered_ids, sns_ids,
        "HTTP deliveries = published messages"
    );

    // Slack: Block Kit plus the text fallback.
    let slack = receiver.requests_to(SLACK);
    let slack_by_alert = by_alert(&slack, |b| {
        let blocks = b["blocks"].to_string();
        alerts
            .keys()
            .find(|id| blocks.contains(&format!("tripline alert `{id}`")))
            .cloned()
    });
    for (id, reqs) in &slack_by_alert {
        let rule = alerts[id]["rule"]["name"].as_str().unwrap();
        for r in reqs {
            let text = r.json()["text"].as_str().map(str::to_owned);
            assert!(
                text.as_deref().is_some_and(|t| t.contains(rule)),
                "Slack text fallback of {id} without {rule}: {text:?}"
            );
        }
    }
    for r in &slack {
        let b = r.json();
        let blocks = b["blocks"].as_array().expect("blocks");
        assert_eq!(blocks[0]["type"], "header", "{b}");
        assert!(blocks.iter().any(|x| x["type"] == "section"), "{b}");
        assert_eq!(r.method, "POST");
        assert!(r
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")));
    }

    // Webhook: every attempt signed over its timestamp and body with the secret from SSM.
    let hooks = receiver.requests_to(WEBHOOK);
    for r in &hooks {
        let ts: i64 = r
            .header(webhook::TIMESTAMP_HEADER)
            .expect("X-Tripline-Timestamp")
            .parse()
            .expect("timestamp is an integer");
        assert!((now() - ts).abs() < 600, "stale timestamp {ts}");
        let signature = r
            .header(webhook::SIGNATURE_HEADER)
            .expect("X-Tripline-Signature");
        assert!(
            webhook::verify(WEBHOOK_SECRET.as_bytes(), ts, &r.body, signature),
            "webhook signature does not verify: {signature}"
        );
        assert!(!webhook::verify(b"wrong secret", ts, &r.body, signature));
    }
    let hooks_by_alert = by_alert(&hooks, |b| b["id"].as_str().map(str::to_owned));
    let first_statuses: Vec<u16> = hooks_by_alert[&first_alert]
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        first_statuses,
        [500, 500, 200],
        "webhook attempts for the first alert"
    );

    // PagerDuty Events v2.
    let pd = receiver.requests_to(PAGERDUTY);
    for r in &pd {
        let b = r.json();
        assert_eq!(b["routing_key"], ROUTING_KEY, "{b}");
        assert_eq!(b["event_action"], "trigger", "{b}");
        assert!(alerts.contains_key(b["dedup_key"].as_str().unwrap()), "{b}");
    }
    let pd_by_alert = by_alert(&pd, |b| b["dedup_key"].as_str().map(str::to_owned));

    // Splunk HEC, with the token from Secrets Manager.
    let hec = receiver.requests_to(HEC);
    for r in &hec {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Splunk {HEC_TOKEN}").as_str())
        );
        let b = r.json();
        assert_eq!(b["sourcetype"], "tripline:alert", "{b}");
        assert_eq!(b["source"], "tripline", "{b}");
        assert!(b["time"].is_i64(), "{b}");
    }
    let hec_by_alert = by_alert(&hec, |b| b["event"]["id"].as_str().map(str::to_owned));

    // Exactly one successful request per alert and destination; only the scripted webhook
    // failures were answered with anything but 200.
    for (name, got) in [
        ("slack", &slack_by_alert),
        ("webhook", &hooks_by_alert),
        ("pagerduty", &pd_by_alert),
        ("splunk", &hec_by_alert),
    ] {
        assert_eq!(
            got.keys().collect::<BTreeSet<_>>(),
            alerts.keys().collect::<BTreeSet<_>>(),
            "{name}: alerts received\n{}",
            receiver.summary()
        );
        for (id, reqs) in got {
            let ok = reqs.iter().filter(|r| r.succeeded()).count();
            assert_eq!(ok, 1, "{name}: {ok} successful deliveries of {id}");
            let expected_requests = if name == "webhook" && *id == first_alert {
                3
            } else {
                1
            };
            assert_eq!(reqs.len(), expected_requests, "{name}: requests for {id}");
            assert!(reqs.iter().all(|r| r.method == "POST"));
        }
    }
    assert_eq!(
        receiver.requests().len(),
        sns_confirmations + alerts.len() * 5 + 2,
        "nothing else reached the receiver:\n{}",
        receiver.summary()
    );
    assert!(receiver.errors().is_empty(), "{:?}", receiver.errors());
    lap("assertions", &mut timings);

    // 6. Replay every event: nothing new may be written, sent or marked.
    let before = snapshot(&s3, &moto, &receiver, &topic_arn).await;
    let reparsed = watch.invoke_ok(PARSE, &raw_events[0]).await;
    assert_eq!(
        reparsed["totals"], parsed["totals"],
        "replayed parse: {reparsed}"
    );
    let renormalized_events = queues.take("normalized/", 1, "replayed parse").await;
    assert_eq!(event_key(&renormalized_events[0]), normalized_key);
    assert_eq!(
        unpack(
            &get_object_bytes(&s3, BUCKET, &normalized_key)
                .await
                .unwrap()
        ),
        normalized_text,
        "a replayed parse rewrites the same normalized object"
    );
    assert_eq!(
        unpack(
            &get_object_bytes(&s3, BUCKET, &quarantine_key)
                .await
                .unwrap()
        ),
        quarantine_text,
        "a replayed parse rewrites the same quarantine object"
    );
    for event in [&normalized_events[0], &renormalized_events[0]] {
        let redetected = watch.invoke_ok(DETECT, event).await;
        assert_eq!(
            redetected["written"],
            json!([]),
            "replayed detect: {redetected}"
        );
        let dedup: BTreeSet<String> = strings(&redetected["deduplicated"]).into_iter().collect();
        assert_eq!(dedup, written, "replayed detect: {redetected}");
    }
    let extra = queues.receive("alerts/", Duration::from_millis(500)).await;
    assert!(extra.is_empty(), "replay wrote alert objects: {extra:#?}");
    for event in &alert_events {
        let report = watch.invoke_ok(NOTIFY, event).await;
        let id = event_key(event)
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".json")
            .to_owned();
        let want: BTreeSet<String> = DESTINATIONS.iter().map(|d| format!("{id}/{d}")).collect();
        let skipped: BTreeSet<String> = strings(&report["skipped"]).into_iter().collect();
        assert_eq!(skipped, want, "replayed notify: {report}");
        assert_eq!(report["delivered"], json!([]), "replayed notify: {report}");
        assert_eq!(report["failed"], json!([]), "replayed notify: {report}");
    }
    let after = snapshot(&s3, &moto, &receiver, &topic_arn).await;
    // Neither cargo lambda watch (e.g. unreadable `package.metadata.lambda`) nor a function
    // logged an error: the retried webhook is a warning, everything else succeeded.
    let errors: Vec<String> = watch
        .log()
        .lines()
        .filter(|l| l.trim_start().starts_with("ERROR ") || l.contains("\"level\":\"ERROR\""))
        .map(str::to_owned)
        .collect();
    assert!(
        errors.is_empty(),
        "errors in the watch log:\n{}",
        errors.join("\n")
    );
    assert_eq!(
        after,
        before,
        "a replay changed alerts, state markers, deliveries or SNS messages\n{}",
        receiver.summary()
    );
    lap("replay", &mut timings);

    // 7. A raw object that is gone is skipped and reported (retrying cannot bring it back);
    // an event that is not an S3 event fails with an `errorType` that says so.
    let missing = json!({"Records": [{
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": "raw/2026/11/22/14/gone.gz", "size": 1}}
    }]});
    let skipped = watch.invoke_ok(PARSE, &missing).await;
    assert_eq!(skipped["unreadable"][0]["kind"], "NotFound", "{skipped}");
    assert_eq!(skipped["objects"], json!([]), "{skipped}");
    let inv = watch
        .invoke(PARSE, &json!({"Records": "nope"}), Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let body: Value =
        serde_json::from_str(&inv.body).unwrap_or_else(|e| panic!("{e}: {}", inv.body));
    assert_eq!(body["errorType"], "Malformed", "{}", inv.body);
    lap("failures", &mut timings);

    drop(watch);
    lap("watch stopped", &mut timings);
    eprintln!(
        "e2e timings: {}; total {:?}",
        timings
            .iter()
            .map(|(n, d)| format!("{n} {:.1}s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        started.elapsed()
    );
}
