//! Test harness: a real moto server per test (feature `testing`).
//!
//! [`MotoServer::start`] runs moto's server (`tests/moto/server.py`, which makes S3's
//! conditional puts atomic, as they are on S3, with `${VENV:-<repo>/.venv}/bin/python`) on a
//! free loopback port and kills it when dropped; `scripts/test` installs moto (from
//! `requirements-test.txt`). Each test
//! gets its own server, so tests are isolated and can run in parallel; nothing global (no
//! process environment) is touched: clients are built from [`MotoServer::sdk_config`], which
//! sets the endpoint, static test credentials and `us-east-1` explicitly.
//!
//! Function crates get real S3 event notifications the way AWS delivers them with
//! [`MotoServer::s3_events_queue`]: S3 → SQS notification configuration, then
//! [`EventQueue::next_sqs_lambda_event`] / [`EventQueue::next_s3_event`] to feed a handler.
//! moto's events have no `userIdentity`/`requestParameters`/`sequencer`, and keys are encoded
//! with Python's `quote_plus` (`/` → `%2F`, space → `+`). For a multipart upload moto sends an
//! `ObjectCreated:Put` and then the `ObjectCreated:CompleteMultipartUpload` AWS sends, so a test
//! that writes with [`crate::S3Writer`] above the part size sees two events for one object.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{json, Value};

/// Region every test client uses.
pub const REGION: &str = "us-east-1";
/// moto's default account, which owns everything the test clients create.
pub const ACCOUNT_ID: &str = "123456789012";

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running moto server, killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

/// The repository root (two levels above this crate).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `${VENV:-<repo>/.venv}/bin/moto_server`: moto's own entry point, whose presence says moto
/// is installed.
pub fn moto_server_path() -> PathBuf {
    venv().join("bin/moto_server")
}

fn venv() -> PathBuf {
    std::env::var_os("VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"))
}

/// `tests/moto/server.py`: moto's server with atomic conditional puts.
pub fn moto_launcher_path() -> PathBuf {
    repo_root().join("tests/moto/server.py")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A minimal HTTP/1.0 request to the server (no client dependency for two admin calls).
fn http(port: u16, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

impl MotoServer {
    /// Starts moto on a free port and waits until it answers.
    ///
    /// # Panics
    /// If `moto_server` is not installed (run `scripts/test`, which installs it), or it does not
    /// come up within a minute.
    pub fn start() -> Self {
        let bin = moto_server_path();
        assert!(
            bin.exists(),
            "{} not found: run scripts/test (it creates the venv and installs moto[server] from \
             requirements-test.txt), or point VENV at a venv that has it",
            bin.display()
        );
        // The port is free when we look and taken by moto a moment later; another process can
        // grab it in between, so retry a few times.
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start(&bin) {
                Ok(server) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("moto_server did not start: {last_error}");
    }

    fn try_start(bin: &std::path::Path) -> Result<Self, String> {
        let port = free_port();
        let log =
            std::env::temp_dir().join(format!("tripline-moto-{}-{port}.log", std::process::id()));
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new(bin.parent().expect("venv bin").join("python"))
            .arg(moto_launcher_path())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
        let mut server = MotoServer {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("exited with {status}: {}", server.log_tail()));
            }
            if matches!(http(port, "GET", "/moto-api/"), Ok((200, _))) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no answer after {START_TIMEOUT:?}: {}",
                    server.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("endpoint has a port")
    }

    /// SDK configuration for this server: its endpoint, static test credentials, `us-east-1`.
    /// Build clients from it with [`crate::clients`] (S3 gets path-style addressing).
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }

    /// moto's internal state (`/moto-api/data.json`): `{service: {Model: [instance attrs]}}`,
    /// e.g. `["sns"]["Topic"][i]["sent_notifications"]` as
    /// `[[message_id, message, subject, attributes, group_id], ...]`. The format is moto's own
    /// and may change between versions.
    pub fn data_json(&self) -> Value {
        let (status, body) =
            http(self.port(), "GET", "/moto-api/data.json").expect("GET /moto-api/data.json");
        assert_eq!(status, 200, "GET /moto-api/data.json: {body}");
        serde_json::from_str(&body).expect("data.json is JSON")
    }

    /// Clears all of moto's state.
    pub fn reset(&self) {
        let (status, body) = http(self.port(), "POST", "/moto-api/reset").expect("reset");
        assert_eq!(status, 200, "POST /moto-api/reset: {body}");
    }

    /// Creates an SQS queue, points `bucket`'s `ObjectCreated` notifications for keys under
    /// `prefix` at it (replacing the bucket's notification configuration), and drains the
    /// `s3:TestEvent` S3 sends on configuration. Objects written afterwards arrive as events.
    pub async fn s3_events_queue(
        &self,
        config: &SdkConfig,
        bucket: &str,
        prefix: &str,
    ) -> EventQueue {
        let sqs = aws_sdk_sqs::Client::new(config);
        let s3 = crate::clients::s3(config);
        // SQS names: up to 80 of [A-Za-z0-9_-]; bucket names may have dots, prefixes slashes.
        let name: String = format!("{bucket}-{prefix}-events")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect::<String>()
            .split('-')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("-")
            .chars()
            .take(80)
            .collect();
        let (url, arn) = create_queue(&sqs, &name).await;
        let mut queue = QueueConfiguration::builder()
            .id(format!("tripline-{}", prefix.trim_end_matches('/')))
            .queue_arn(arn)
            .events(Event::S3ObjectCreated);
        if !prefix.is_empty() {
            queue = queue.filter(
                NotificationConfigurationFilter::builder()
                    .key(
                        S3KeyFilter::builder()
                            .filter_rules(
                                FilterRule::builder()
                                    .name(FilterRuleName::Prefix)
                                    .value(prefix)
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            );
        }
        s3.put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(queue.build().expect("queue configuration"))
                    .build(),
            )
            .send()
            .await
            .expect("PutBucketNotificationConfiguration");
        let queue = EventQueue { sqs, url };
        // The test event, sent on configuration: consume it so callers see only object events.
        if let Some(body) = queue.receive(Duration::from_secs(2)).await {
            assert!(
                body.body.contains("s3:TestEvent"),
                "expected the s3:TestEvent first, got {}",
                body.body
            );
        }
        queue
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// An SQS queue receiving S3 event notifications from moto.
#[derive(Debug, Clone)]
pub struct EventQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

/// One message taken off an [`EventQueue`] (and deleted from it).
#[derive(Debug, Clone)]
pub struct Message {
    /// SQS message id.
    pub message_id: String,
    /// The body: an S3 event notification as JSON text.
    pub body: String,
}

impl EventQueue {
    /// The queue URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Takes the next message, waiting up to `timeout`; `None` if none came.
    pub async fn receive(&self, timeout: Duration) -> Option<Message> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(1)
                .wait_time_seconds(left.as_secs().clamp(0, 20) as i32)
                .send()
                .await
                .expect("ReceiveMessage");
            if let Some(m) = out.messages().first() {
                if let Some(handle) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("DeleteMessage");
                }
                return Some(Message {
                    message_id: m.message_id().unwrap_or_default().to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                });
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The next S3 event notification as S3 would hand it to a Lambda function directly.
    ///
    /// # Panics
    /// If no event arrives within 10 s or it isn't JSON.
    pub async fn next_s3_event(&self) -> Value {
        let m = self
            .receive(Duration::from_secs(10))
            .await
            .expect("no S3 event within 10 s");
        serde_json::from_str(&m.body).expect("S3 event body is JSON")
    }

    /// The next S3 event notification wrapped as Lambda's SQS event source delivers it
    /// (`{"Records": [{"messageId", "body", "eventSource": "aws:sqs", ...}]}`).
    ///
    /// # Panics
    /// If no event arrives within 10 s.
    pub async fn next_sqs_lambda_event(&self) -> Value {
        let m = self
            .receive(Duration::from_secs(10))
            .await
            .expect("no S3 event within 10 s");
        let queue_name = self.url.rsplit('/').next().unwrap_or_default();
        json!({"Records": [{
            "messageId": m.message_id,
            "receiptHandle": "moto",
            "body": m.body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_name}"),
            "awsRegion": REGION,
        }]})
    }
}

/// Creates the SQS queue `name`; returns its URL and ARN (what an S3 notification targets).
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("queue url")
        .to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes");
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .expect("QueueArn")
        .to_owned();
    (url, arn)
}
