//! Where alerts go: one [`Destination`] per kind (SNS, Slack, the signed webhook, PagerDuty,
//! Splunk HEC), each built from its settings by [`destinations`], and [`Recording`] for tests.
//!
//! What each destination receives is a pure function of the alert in
//! `tripline_core::notify`; a destination only sends it. Secrets stay inside [`Secret`],
//! which never prints them.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use serde_json::Value;
use tripline_aws::http::{Delivered, HttpSender, RetryPolicy};
use tripline_aws::settings::Destinations;
use tripline_aws::{sns, Secret};
use tripline_core::alert::Alert;
use tripline_core::notify;

/// What [`Destination::send`] returns: a short, loggable description of the result (no URL,
/// no secret), or why it failed after its retries.
pub type Sent<'a> = Pin<Box<dyn Future<Output = anyhow::Result<String>> + Send + 'a>>;

/// One configured destination.
pub trait Destination: Send + Sync {
    /// Stable name, used in delivery marker keys and logs.
    fn name(&self) -> &'static str;

    /// Sends `alert`, retrying what is worth retrying, and ends by `deadline`: no request or
    /// wait for a retry goes past it.
    fn send<'a>(&'a self, alert: &'a Alert, deadline: Instant) -> Sent<'a>;
}

fn json(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn http_detail(sent: Delivered) -> String {
    format!("HTTP {} after {} attempt(s)", sent.status, sent.attempts)
}

/// SNS (e-mail): subject, body and the message attributes subscriptions filter on.
pub struct Sns {
    pub client: aws_sdk_sns::Client,
    pub topic_arn: String,
}

impl Destination for Sns {
    fn name(&self) -> &'static str {
        "sns"
    }

    fn send<'a>(&'a self, alert: &'a Alert, deadline: Instant) -> Sent<'a> {
        Box::pin(async move {
            let m = notify::sns::message(alert);
            let attributes: Vec<(&str, &str, &str)> = m
                .attributes
                .iter()
                .map(|a| (a.name, a.value.as_str(), a.data_type))
                .collect();
            let publish = sns::publish(
                &self.client,
                &self.topic_arn,
                &m.subject,
                &m.message,
                &attributes,
            );
            // The SDK retries throttling itself; the deadline bounds all of it.
            let id = tokio::time::timeout_at(deadline, publish)
                .await
                .map_err(|_| {
                    anyhow::anyhow!("sns: not published within the invocation's time budget")
                })??;
            Ok(format!("sns message {id}"))
        })
    }
}

/// A Slack incoming webhook (the URL is the secret).
pub struct Slack {
    pub http: HttpSender,
    pub url: Secret,
}

impl Destination for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn send<'a>(&'a self, alert: &'a Alert, deadline: Instant) -> Sent<'a> {
        Box::pin(async move {
            let body = json(&notify::slack::payload(alert));
            let sent = self
                .http
                .post_json("slack", self.url.expose(), body, &[], deadline)
                .await?;
            Ok(http_detail(sent))
        })
    }
}

/// The generic webhook, its body signed with HMAC-SHA256 over `<timestamp>.<body>`.
pub struct Webhook {
    pub http: HttpSender,
    pub url: Secret,
    pub secret: Secret,
}

impl Destination for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send<'a>(&'a self, alert: &'a Alert, deadline: Instant) -> Sent<'a> {
        Box::pin(async move {
            let body = notify::webhook::body(alert);
            let ts = crate::now();
            let signature = notify::webhook::sign(self.secret.expose().as_bytes(), ts, &body);
            let headers = [
                (notify::webhook::TIMESTAMP_HEADER, ts.to_string()),
                (notify::webhook::SIGNATURE_HEADER, signature),
            ];
            let sent = self
                .http
                .post_json("webhook", self.url.expose(), body, &headers, deadline)
                .await?;
            Ok(http_detail(sent))
        })
    }
}

/// PagerDuty Events v2; the alert id is the `dedup_key`, so a repeat joins the incident.
pub struct PagerDuty {
    pub http: HttpSender,
    pub url: String,
    pub routing_key: Secret,
}

impl Destination for PagerDuty {
    fn name(&self) -> &'static str {
        "pagerduty"
    }

    fn send<'a>(&'a self, alert: &'a Alert, deadline: Instant) -> Sent<'a> {
        Box::pin(async move {
            let payload = notify::pagerduty::payload(alert, self.routing_key.expose());
            let sent = self
                .http
                .post_json("pagerduty", &self.url, json(&payload), &[], deadline)
                .await?;
            Ok(http_detail(sent))
        })
    }
}

/// Splunk's HTTP Event Collector.
pub struct SplunkHec {
    pub http: HttpSender,
    pub url: Secret,
    pub token: Secret,
}

impl Destination for SplunkHec {
    fn name(&self) -> &'static str {
        "splunk"
    }

    fn send<'a>(&'a self, alert: &'a Alert, deadline: Instant) -> Sent<'a> {
        Box::pin(async move {
            let endpoint = notify::splunk::endpoint(self.url.expose());
            let auth = [("Authorization", format!("Splunk {}", self.token.expose()))];
            let body = json(&notify::splunk::payload(alert));
            let sent = self
                .http
                .post_json("splunk", &endpoint, body, &auth, deadline)
                .await?;
            Ok(http_detail(sent))
        })
    }
}

/// The enabled destinations: each one whose settings are all present, in a fixed order (SNS,
/// Slack, webhook, PagerDuty, Splunk). A webhook URL without its HMAC secret (or a HEC URL
/// without a token) is a configuration error, not "off": sending unsigned or unauthenticated
/// is never what the user meant.
pub fn destinations(
    d: Destinations<Secret>,
    sns_client: impl FnOnce() -> aws_sdk_sns::Client,
) -> anyhow::Result<Vec<Box<dyn Destination>>> {
    let http = HttpSender::new(RetryPolicy::default())?;
    let mut out: Vec<Box<dyn Destination>> = Vec::new();
    if let Some(topic_arn) = d.sns_topic_arn {
        out.push(Box::new(Sns {
            client: sns_client(),
            topic_arn,
        }));
    }
    if let Some(url) = d.slack_webhook_url {
        out.push(Box::new(Slack {
            http: http.clone(),
            url,
        }));
    }
    match (d.webhook_url, d.webhook_secret) {
        (Some(url), Some(secret)) => out.push(Box::new(Webhook {
            http: http.clone(),
            url,
            secret,
        })),
        (Some(_), None) => anyhow::bail!("TRIPLINE_WEBHOOK_URL is set but TRIPLINE_WEBHOOK_SECRET is not: webhook bodies must be signed"),
        (None, Some(_)) => anyhow::bail!("TRIPLINE_WEBHOOK_SECRET is set but TRIPLINE_WEBHOOK_URL is not"),
        (None, None) => {}
    }
    if let Some(routing_key) = d.pagerduty_routing_key {
        out.push(Box::new(PagerDuty {
            http: http.clone(),
            url: d.pagerduty_url,
            routing_key,
        }));
    }
    match (d.splunk_hec_url, d.splunk_hec_token) {
        (Some(url), Some(token)) => out.push(Box::new(SplunkHec { http, url, token })),
        (None, None) => {}
        _ => anyhow::bail!(
            "Splunk HEC needs both TRIPLINE_SPLUNK_HEC_URL and TRIPLINE_SPLUNK_HEC_TOKEN"
        ),
    }
    Ok(out)
}

/// A destination for tests: records the id of every alert it is asked to send, fails the
/// first `failures` sends, and takes `latency` to answer each one.
#[derive(Clone)]
pub struct Recording {
    name: &'static str,
    latency: Duration,
    state: Arc<Mutex<(Vec<String>, usize)>>,
}

impl Recording {
    /// A destination called `name` that accepts everything at once.
    pub fn new(name: &'static str) -> Self {
        Recording::failing(name, 0)
    }

    /// A destination called `name` whose first `failures` sends fail.
    pub fn failing(name: &'static str, failures: usize) -> Self {
        Recording {
            name,
            latency: Duration::ZERO,
            state: Arc::new(Mutex::new((Vec::new(), failures))),
        }
    }

    /// This destination, taking `latency` to answer each send (a send cut short by its
    /// deadline fails, as an HTTP destination's would).
    pub fn slow(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// The alert ids of every send attempted, failed ones included.
    pub fn sends(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }
}

impl Destination for Recording {
    fn name(&self) -> &'static str {
        self.name
    }

    fn send<'a>(&'a self, alert: &'a Alert, deadline: Instant) -> Sent<'a> {
        let failed = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.0.push(alert.id.clone());
            let fail = state.1 > 0;
            state.1 = state.1.saturating_sub(1);
            fail
        };
        let (name, latency) = (self.name, self.latency);
        Box::pin(async move {
            if tokio::time::timeout_at(deadline, tokio::time::sleep(latency))
                .await
                .is_err()
            {
                anyhow::bail!("{name}: timed out at the invocation's deadline")
            }
            if failed {
                anyhow::bail!("{name}: HTTP 503 after 3 attempt(s): unavailable")
            }
            Ok(format!("{name} accepted"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tripline_aws::Settings;

    fn resolved(vars: &[(&str, &str)]) -> anyhow::Result<Vec<Box<dyn Destination>>> {
        let settings = Settings::from_lookup(&|k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        })?;
        let d = settings.destinations;
        let value = |s: Option<tripline_aws::settings::SecretSource>| {
            s.map(|s| match s {
                tripline_aws::settings::SecretSource::Value(v) => v,
                other => panic!("{other:?}"),
            })
        };
        let d = Destinations {
            sns_topic_arn: d.sns_topic_arn,
            slack_webhook_url: value(d.slack_webhook_url),
            webhook_url: value(d.webhook_url),
            webhook_secret: value(d.webhook_secret),
            pagerduty_routing_key: value(d.pagerduty_routing_key),
            pagerduty_url: d.pagerduty_url,
            splunk_hec_url: value(d.splunk_hec_url),
            splunk_hec_token: value(d.splunk_hec_token),
        };
        destinations(d, || panic!("no SNS client needed"))
    }

    #[test]
    fn each_configured_destination_is_one_implementation_in_order() {
        let all = resolved(&[
            ("TRIPLINE_SPLUNK_HEC_URL", "https://hec.example"),
            ("TRIPLINE_SPLUNK_HEC_TOKEN", "t"),
            ("TRIPLINE_PAGERDUTY_ROUTING_KEY", "k"),
            ("TRIPLINE_WEBHOOK_URL", "https://hook.example"),
            ("TRIPLINE_WEBHOOK_SECRET", "s"),
            ("TRIPLINE_SLACK_WEBHOOK_URL", "https://hooks.slack.example"),
        ])
        .unwrap();
        let names: Vec<&str> = all.iter().map(|d| d.name()).collect();
        assert_eq!(names, ["slack", "webhook", "pagerduty", "splunk"]);
        assert!(resolved(&[]).unwrap().is_empty());
    }

    #[test]
    fn half_configured_destinations_are_errors() {
        let unsigned = resolved(&[("TRIPLINE_WEBHOOK_URL", "https://hook.example")]);
        assert!(unsigned.err().unwrap().to_string().contains("signed"));
        let tokenless = resolved(&[("TRIPLINE_SPLUNK_HEC_URL", "https://hec.example")]);
        assert!(tokenless.is_err());
    }
}
