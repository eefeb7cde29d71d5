//! HTTP delivery to alert destinations (Slack, webhooks, PagerDuty, Splunk HEC) with
//! bounded, jittered retries.
//!
//! Retries follow what these services ask for: 429 and 5xx are transient (and a
//! `Retry-After` header, in seconds or as an HTTP date, is honoured up to a cap), other 4xx
//! are the sender's fault and fail at once, because resending an invalid body or a revoked
//! token cannot succeed. Connection errors and timeouts are retried. Every wait and every
//! request ends by the caller's deadline: a retry that would not finish in time is not
//! started, and the failure says so, so a slow or rate-limited destination costs at most the
//! time the caller gave it. The URL is never put in errors or logs: for Slack and some
//! webhooks the URL *is* the secret.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

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
    /// The next attempt (or the wait before it) would end past the caller's deadline.
    #[error("{destination}: {last} after {attempts} attempt(s); the next try, {wait:?} later, would not end within the invocation's time budget")]
    OutOfTime {
        destination: String,
        attempts: u32,
        /// What the last attempt got.
        last: String,
        /// How long the next attempt was to wait (a `Retry-After` or the backoff).
        wait: Duration,
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

/// The least time worth starting a request with: below it, the request could only time out.
const MIN_ATTEMPT: Duration = Duration::from_millis(500);

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

    /// POSTs a JSON body to `url`, retrying transient failures until `deadline`: each
    /// request's timeout is cut to the time left, and a retry whose wait would reach the
    /// deadline is not made ([`DeliveryError::OutOfTime`]). `destination` names the
    /// destination in errors and logs instead of the URL.
    pub async fn post_json(
        &self,
        destination: &str,
        url: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
        deadline: Instant,
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
            let left = deadline.saturating_duration_since(Instant::now());
            let sent = self
                .client
                .post(url)
                .headers(map.clone())
                .body(body.clone())
                .timeout(left.min(self.policy.timeout))
                .send()
                .await;
            let (wait, last) = match sent {
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
                    (
                        retry_after.unwrap_or_else(|| self.backoff(attempt)),
                        format!("HTTP {status}: {}", snippet(&text)),
                    )
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
                    (self.backoff(attempt), message)
                }
            };
            // Waiting, then at least a moment for the request itself, must end in time.
            let left = deadline.saturating_duration_since(Instant::now());
            if wait + MIN_ATTEMPT >= left {
                return Err(DeliveryError::OutOfTime {
                    destination: destination.to_string(),
                    attempts: attempt,
                    last,
                    wait,
                });
            }
            tracing::warn!(destination, attempt, error = %last, ?wait, "transient delivery failure, retrying");
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

    /// A receiver on loopback that answers each request with the next of `responses`
    /// (status, extra header lines), then closes; returns its URL.
    fn receiver(responses: Vec<(u16, &'static str)>) -> String {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for (status, headers) in responses {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let _ = write!(
                    reader.get_mut(),
                    "HTTP/1.1 {status} X\r\n{headers}Content-Length: 2\r\nConnection: close\r\n\r\nno"
                );
            }
        });
        url
    }

    fn sender() -> HttpSender {
        HttpSender::new(RetryPolicy {
            base_delay: Duration::from_millis(10),
            ..RetryPolicy::default()
        })
        .unwrap()
    }

    /// Slack's rate limit asks for 20 s; 3 s are left: the sender gives up at once instead of
    /// sleeping past the deadline, and says why.
    #[tokio::test]
    async fn a_retry_after_past_the_deadline_is_not_waited_for() {
        let url = receiver(vec![(429, "Retry-After: 20\r\n")]);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(3);
        let err = sender()
            .post_json("slack", &url, b"{}".to_vec(), &[], deadline)
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(&err, DeliveryError::OutOfTime { attempts: 1, wait, .. } if *wait == Duration::from_secs(20)),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("HTTP 429") && text.contains("time budget"),
            "{text}"
        );
        assert!(!text.contains("127.0.0.1"), "no URL in errors: {text}");
    }

    /// A `Retry-After` that fits is waited for, and the retry succeeds.
    #[tokio::test]
    async fn a_retry_after_that_fits_is_honoured() {
        let url = receiver(vec![(429, "Retry-After: 1\r\n"), (503, ""), (200, "")]);
        let started = Instant::now();
        let sent = sender()
            .post_json(
                "webhook",
                &url,
                b"{}".to_vec(),
                &[],
                started + Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(
            sent,
            Delivered {
                status: 200,
                attempts: 3
            }
        );
        assert!(started.elapsed() >= Duration::from_secs(1));
    }

    /// A receiver that never answers costs the time left, not the policy's 10 s per attempt.
    #[tokio::test]
    async fn a_hanging_destination_ends_at_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let started = Instant::now();
        let err = sender()
            .post_json(
                "pagerduty",
                &url,
                b"{}".to_vec(),
                &[],
                started + Duration::from_millis(1500),
            )
            .await
            .unwrap_err();
        drop(listener);
        let took = started.elapsed();
        assert!(took < Duration::from_millis(2500), "{took:?}");
        assert!(err.to_string().contains("timed out"), "{err}");
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
