//! HTTP delivery to alert destinations (Slack, webhooks, PagerDuty, Splunk HEC) with
//! bounded, jittered retries.
//!
//! Retries follow what these services ask for: 429 and 5xx are transient (and a
//! `Retry-After` header, in seconds or as an HTTP date, is honoured up to a cap), other 4xx
//! are the sender's fault and fail at once, because resending an invalid body or a revoked
//! token cannot succeed. Connection errors and timeouts are retried. The URL is never put in
//! errors or logs: for Slack and some webhooks the URL *is* the secret.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};

/// How hard to try one delivery.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub attempts: u32,
    /// Backoff before retry `n` is a random duration in `[0, min(max_delay, base * 2^n))`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` we wait for; longer means "fail now, let Lambda retry later".
    pub max_retry_after: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(20),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A failed delivery, safe to log (no URL, no secret, a bounded piece of the response).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{destination}: HTTP {status} after {attempts} attempt(s): {body}")]
    Status {
        destination: String,
        status: u16,
        attempts: u32,
        body: String,
    },
    #[error("{destination}: {message} after {attempts} attempt(s)")]
    Transport {
        destination: String,
        attempts: u32,
        message: String,
    },
    #[error("{destination}: invalid header {name}")]
    Header { destination: String, name: String },
}

/// What a successful delivery took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub status: u16,
    pub attempts: u32,
}

/// A shared HTTP client plus the retry policy.
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    policy: RetryPolicy,
}

impl HttpSender {
    pub fn new(policy: RetryPolicy) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .user_agent(concat!("tripline/", env!("CARGO_PKG_VERSION")))
            // A destination must not bounce us to a URL nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(HttpSender { client, policy })
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// POSTs a JSON body to `url`, retrying transient failures. `destination` names the
    /// destination in errors and logs instead of the URL.
    pub async fn post_json(
        &self,
        destination: &str,
        url: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Result<Delivered, DeliveryError> {
        let mut map = HeaderMap::new();
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in headers {
            let header_error = || DeliveryError::Header {
                destination: destination.to_string(),
                name: name.to_string(),
            };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| header_error())?;
            let mut value = HeaderValue::from_str(value).map_err(|_| header_error())?;
            if name == reqwest::header::AUTHORIZATION {
                value.set_sensitive(true);
            }
            map.insert(name, value);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .client
                .post(url)
                .headers(map.clone())
                .body(body.clone())
                .send()
                .await;
            let wait = match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if response.status().is_success() {
                        return Ok(Delivered {
                            status,
                            attempts: attempt,
                        });
                    }
                    let retry_after = retry_after(response.headers(), SystemTime::now());
                    let text = response.text().await.unwrap_or_default();
                    let transient = status == 429 || status >= 500;
                    let too_long = retry_after.is_some_and(|d| d > self.policy.max_retry_after);
                    if !transient || attempt >= self.policy.attempts || too_long {
                        return Err(DeliveryError::Status {
                            destination: destination.to_string(),
                            status,
                            attempts: attempt,
                            body: snippet(&text),
                        });
                    }
                    tracing::warn!(
                        destination,
                        status,
                        attempt,
                        "transient delivery failure, retrying"
                    );
                    retry_after.unwrap_or_else(|| self.backoff(attempt))
                }
                Err(e) => {
                    // reqwest's Display may include the URL; keep only the kind of failure.
                    let message = transport_kind(&e);
                    if attempt >= self.policy.attempts {
                        return Err(DeliveryError::Transport {
                            destination: destination.to_string(),
                            attempts: attempt,
                            message,
                        });
                    }
                    tracing::warn!(destination, attempt, error = %message, "delivery failed, retrying");
                    self.backoff(attempt)
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Full jitter: spreads retries from many concurrent invocations instead of having them
    /// hit a recovering service in lockstep.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .policy
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.policy.max_delay);
        exp.mul_f64(fastrand::f64())
    }
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate(value)?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses the IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`), the one servers send.
fn httpdate(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, hms, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let mut t = hms.split(':').map(|x| x.parse::<i64>());
    let (h, m, sec) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + sec;
    u64::try_from(secs)
        .ok()
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

fn transport_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_body() || e.is_decode() {
        "response body error".into()
    } else {
        "request failed".into()
    }
}

fn snippet(text: &str) -> String {
    let t: String = text.chars().take(200).collect();
    t.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            retry_after(&h, SystemTime::now()),
            Some(Duration::from_secs(7))
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let s = HttpSender::new(RetryPolicy::default()).unwrap();
        let waits: Vec<_> = (1..50).map(|a| s.backoff(a)).collect();
        assert!(waits.iter().all(|w| *w <= RetryPolicy::default().max_delay));
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 10);
    }
}
