//! The notify stage: each alert object named by an S3 event is delivered to every enabled
//! destination: SNS (email), Slack, a signed generic webhook, PagerDuty, Splunk HEC.
//!
//! # Exactly once per destination, as far as S3 can make it
//!
//! After a destination accepts an alert we create `<state prefix>delivery/<alert id>/<dest>`
//! (`If-None-Match: *`), and before sending we skip destinations whose marker exists. So a
//! retried or replayed invocation re-sends only to destinations that failed. A crash between
//! a successful send and its marker re-sends once on retry (at least once, never lost);
//! PagerDuty folds that into the same incident through its `dedup_key`.
//!
//! A destination that still fails after its retries fails the invocation (after every other
//! destination was tried), so Lambda's retries and then the on-failure destination take over.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use tripline_aws::http::{HttpSender, RetryPolicy};
use tripline_aws::s3io::{get_object_bytes, object_exists, put_if_absent};
use tripline_aws::settings::Destinations;
use tripline_aws::{s3event, sns, ObjectRef, Secret, Settings};
use tripline_core::alert::Alert;
use tripline_core::layout::Layout;
use tripline_core::notify;

/// One configured destination. Secrets stay inside [`Secret`], which never prints them.
pub enum Destination {
    Sns {
        client: aws_sdk_sns::Client,
        topic_arn: String,
    },
    Slack {
        url: Secret,
    },
    Webhook {
        url: Secret,
        secret: Secret,
    },
    PagerDuty {
        url: String,
        routing_key: Secret,
    },
    SplunkHec {
        url: Secret,
        token: Secret,
    },
}

impl Destination {
    /// Stable name, used in delivery marker keys and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Destination::Sns { .. } => "sns",
            Destination::Slack { .. } => "slack",
            Destination::Webhook { .. } => "webhook",
            Destination::PagerDuty { .. } => "pagerduty",
            Destination::SplunkHec { .. } => "splunk",
        }
    }
}

/// The enabled destinations: each one whose settings are all present. A webhook URL without
/// its HMAC secret (or a HEC URL without a token) is a configuration error, not "off":
/// sending unsigned or unauthenticated is never what the user meant.
pub fn destinations(
    d: Destinations<Secret>,
    sns_client: impl FnOnce() -> aws_sdk_sns::Client,
) -> anyhow::Result<Vec<Destination>> {
    let mut out = Vec::new();
    if let Some(topic_arn) = d.sns_topic_arn {
        out.push(Destination::Sns {
            client: sns_client(),
            topic_arn,
        });
    }
    if let Some(url) = d.slack_webhook_url {
        out.push(Destination::Slack { url });
    }
    match (d.webhook_url, d.webhook_secret) {
        (Some(url), Some(secret)) => out.push(Destination::Webhook { url, secret }),
        (Some(_), None) => anyhow::bail!("TRIPLINE_WEBHOOK_URL is set but TRIPLINE_WEBHOOK_SECRET is not: webhook bodies must be signed"),
        (None, Some(_)) => anyhow::bail!("TRIPLINE_WEBHOOK_SECRET is set but TRIPLINE_WEBHOOK_URL is not"),
        (None, None) => {}
    }
    if let Some(routing_key) = d.pagerduty_routing_key {
        out.push(Destination::PagerDuty {
            url: d.pagerduty_url,
            routing_key,
        });
    }
    match (d.splunk_hec_url, d.splunk_hec_token) {
        (Some(url), Some(token)) => out.push(Destination::SplunkHec { url, token }),
        (None, None) => {}
        _ => anyhow::bail!(
            "Splunk HEC needs both TRIPLINE_SPLUNK_HEC_URL and TRIPLINE_SPLUNK_HEC_TOKEN"
        ),
    }
    Ok(out)
}

/// Built once per container (secrets resolved at cold start).
pub struct Notify {
    pub s3: aws_sdk_s3::Client,
    pub settings: Settings,
    pub destinations: Vec<Destination>,
    pub http: HttpSender,
}

/// What the invocation did. Delivery failures are in `failed`; see [`Report::into_result`].
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub alerts: Vec<String>,
    pub ignored: Vec<String>,
    /// `alert id/destination` delivered now.
    pub delivered: Vec<String>,
    /// Already delivered by an earlier invocation.
    pub skipped: Vec<String>,
    /// Failures, safe to log (no URLs or secrets).
    pub failed: Vec<String>,
}

impl Report {
    /// Turns delivery failures into the invocation's error, so Lambda retries it.
    pub fn into_result(self) -> anyhow::Result<Report> {
        if self.failed.is_empty() {
            Ok(self)
        } else {
            anyhow::bail!(
                "{} delivery failure(s): {}",
                self.failed.len(),
                self.failed.join("; ")
            )
        }
    }
}

impl Notify {
    pub fn new(
        s3: aws_sdk_s3::Client,
        settings: Settings,
        destinations: Vec<Destination>,
    ) -> anyhow::Result<Self> {
        Ok(Notify {
            s3,
            settings,
            destinations,
            http: HttpSender::new(RetryPolicy::default())?,
        })
    }

    pub async fn handle(&self, event: &Value) -> anyhow::Result<Report> {
        let mut report = Report::default();
        let layout = self.settings.layout();
        for object in s3event::parse_value(event)? {
            if !object.is_created() || !layout.is_alert(&object.key) {
                tracing::info!(bucket = %object.bucket, key = %object.key, "ignoring: not an alert object");
                report.ignored.push(object.key);
                continue;
            }
            self.alert(&layout, &object, &mut report).await?;
        }
        Ok(report)
    }

    async fn alert(
        &self,
        layout: &Layout,
        object: &ObjectRef,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let bytes = get_object_bytes(&self.s3, &object.bucket, &object.key).await?;
        let alert: Alert = serde_json::from_slice(&bytes)
            .with_context(|| format!("s3://{}/{} is not an alert", object.bucket, object.key))?;
        let state_bucket = self.settings.output_bucket(&object.bucket).to_owned();
        report.alerts.push(alert.id.clone());
        for dest in &self.destinations {
            let marker = layout.delivery_marker(&alert.id, dest.name());
            let label = format!("{}/{}", alert.id, dest.name());
            if object_exists(&self.s3, &state_bucket, &marker).await? {
                report.skipped.push(label);
                continue;
            }
            match self.send(dest, &alert).await {
                Ok(detail) => {
                    let body = serde_json::to_vec(&serde_json::json!({
                        "alert": alert.id, "destination": dest.name(), "delivered_at": now(), "detail": detail,
                    }))?;
                    put_if_absent(&self.s3, &state_bucket, &marker, body).await?;
                    tracing::info!(alert = %alert.id, destination = dest.name(), %detail, "delivered");
                    report.delivered.push(label);
                }
                Err(e) => {
                    tracing::error!(alert = %alert.id, destination = dest.name(), error = %e, "delivery failed");
                    report.failed.push(format!("{label}: {e}"));
                }
            }
        }
        Ok(())
    }

    /// Sends to one destination; returns a short, loggable description of the result.
    async fn send(&self, dest: &Destination, alert: &Alert) -> anyhow::Result<String> {
        let json = |v: &Value| serde_json::to_vec(v).unwrap_or_default();
        let sent = match dest {
            Destination::Sns { client, topic_arn } => {
                let m = notify::sns::message(alert);
                let attributes: Vec<(&str, &str, &str)> = m
                    .attributes
                    .iter()
                    .map(|a| (a.name, a.value.as_str(), a.data_type))
                    .collect();
                let id =
                    sns::publish(client, topic_arn, &m.subject, &m.message, &attributes).await?;
                return Ok(format!("sns message {id}"));
            }
            Destination::Slack { url } => {
                self.http
                    .post_json(
                        "slack",
                        url.expose(),
                        json(&notify::slack::payload(alert)),
                        &[],
                    )
                    .await?
            }
            Destination::Webhook { url, secret } => {
                let body = notify::webhook::body(alert);
                let ts = now();
                let signature = notify::webhook::sign(secret.expose().as_bytes(), ts, &body);
                let headers = [
                    (notify::webhook::TIMESTAMP_HEADER, ts.to_string()),
                    (notify::webhook::SIGNATURE_HEADER, signature),
                ];
                self.http
                    .post_json("webhook", url.expose(), body, &headers)
                    .await?
            }
            Destination::PagerDuty { url, routing_key } => {
                let payload = notify::pagerduty::payload(alert, routing_key.expose());
                self.http
                    .post_json("pagerduty", url, json(&payload), &[])
                    .await?
            }
            Destination::SplunkHec { url, token } => {
                let endpoint = notify::splunk::endpoint(url.expose());
                let auth = [("Authorization", format!("Splunk {}", token.expose()))];
                self.http
                    .post_json(
                        "splunk",
                        &endpoint,
                        json(&notify::splunk::payload(alert)),
                        &auth,
                    )
                    .await?
            }
        };
        Ok(format!(
            "HTTP {} after {} attempt(s)",
            sent.status, sent.attempts
        ))
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The EMF metrics line for an invocation.
pub fn metrics(report: &Report, duration_ms: f64) -> String {
    use tripline_aws::metrics::{emit, Unit};
    emit(
        "tripline",
        "notify",
        &[
            ("Alerts", report.alerts.len() as f64, Unit::Count),
            ("Deliveries", report.delivered.len() as f64, Unit::Count),
            (
                "DeliveriesSkipped",
                report.skipped.len() as f64,
                Unit::Count,
            ),
            ("DeliveryFailures", report.failed.len() as f64, Unit::Count),
            ("Duration", duration_ms, Unit::Milliseconds),
        ],
    )
}
