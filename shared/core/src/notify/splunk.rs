//! Splunk HTTP Event Collector (`/services/collector/event`, sourcetype `tripline:alert`).

use serde_json::{json, Value};

use crate::alert::Alert;

/// The sourcetype alerts are indexed under.
pub const SOURCETYPE: &str = "tripline:alert";
/// The HEC endpoint path for JSON events.
pub const EVENT_PATH: &str = "/services/collector/event";

/// The HEC envelope; `time` is the alert's last sighting so Splunk indexes it when it
/// happened, not when it was delivered.
pub fn payload(alert: &Alert) -> Value {
    let time = crate::rfc3339::parse(&alert.last_seen);
    let mut envelope = json!({
        "host": alert.hosts.first().map(String::as_str).unwrap_or("tripline"),
        "source": "tripline",
        "sourcetype": SOURCETYPE,
        "event": alert,
    });
    if let Some(t) = time {
        envelope["time"] = json!(t);
    }
    envelope
}

/// The collector endpoint for a configured HEC URL, which users give either as the base
/// (`https://splunk:8088`) or as the full endpoint.
pub fn endpoint(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with(EVENT_PATH) {
        url.to_string()
    } else {
        format!("{url}{EVENT_PATH}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::fixtures;

    #[test]
    fn hec_envelope() {
        let p = payload(&fixtures::alert());
        assert_eq!(p["sourcetype"], "tripline:alert");
        assert_eq!(p["time"], 1795161900);
        assert_eq!(p["host"], "web-1");
        assert_eq!(p["event"]["rule"]["name"], "osquery_suspicious_cron");
    }

    #[test]
    fn endpoint_accepts_base_or_full_url() {
        assert_eq!(
            endpoint("https://s:8088"),
            "https://s:8088/services/collector/event"
        );
        assert_eq!(
            endpoint("https://s:8088/"),
            "https://s:8088/services/collector/event"
        );
        assert_eq!(
            endpoint("https://s:8088/services/collector/event"),
            "https://s:8088/services/collector/event"
        );
    }
}
