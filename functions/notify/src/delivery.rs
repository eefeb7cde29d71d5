//! One alert to one destination, once per destination as far as S3 can make it.
//!
//! [`deliver`] skips a destination whose delivery marker ([`Layout::delivery_marker`])
//! exists, sends otherwise, and creates the marker (`If-None-Match: *`) once the destination
//! accepted. So a retried or replayed invocation re-sends only to destinations that failed.
//! A crash (or a failed marker write) between a successful send and its marker re-sends once
//! on retry: at least once, never lost; PagerDuty folds that into the same incident through its
//! `dedup_key`. Two runs that check the marker before either wrote it both send, for the same
//! reason. A claim marker with a lease, written before the send, would go between the check
//! and the send; the outcomes below stay the same.

use serde::Serialize;
use tripline_aws::ObjectStore;
use tripline_core::alert::Alert;
use tripline_core::layout::Layout;

use crate::destination::Destination;

/// What [`deliver`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Delivery {
    /// Sent now, and marked; the destination's description of the result.
    Delivered(String),
    /// The marker was there: an earlier run delivered it.
    Skipped,
    /// The destination failed after its retries (safe to log: no URL or secret); nothing was
    /// marked, so the next run sends again.
    Failed(String),
}

/// Delivers `alert` to `dest` unless its marker in `bucket` says an earlier run did. Errors
/// are the store's (checking or writing the marker); a destination's failure is
/// [`Delivery::Failed`], so the caller can try the other destinations first.
pub async fn deliver<S: ObjectStore, D: Destination + ?Sized>(
    store: &S,
    layout: &Layout,
    bucket: &str,
    alert: &Alert,
    dest: &D,
) -> anyhow::Result<Delivery> {
    let marker = layout.delivery_marker(&alert.id, dest.name());
    if store.exists(bucket, &marker).await? {
        return Ok(Delivery::Skipped);
    }
    match dest.send(alert).await {
        Ok(detail) => {
            let body = serde_json::to_vec(&serde_json::json!({
                "alert": alert.id, "destination": dest.name(), "delivered_at": crate::now(), "detail": detail,
            }))?;
            store.put_if_absent(bucket, &marker, body.into()).await?;
            tracing::info!(alert = %alert.id, destination = dest.name(), %detail, "delivered");
            Ok(Delivery::Delivered(detail))
        }
        Err(e) => {
            tracing::error!(alert = %alert.id, destination = dest.name(), error = %e, "delivery failed");
            Ok(Delivery::Failed(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tripline_aws::error::Retry;
    use tripline_aws::store::Fault;
    use tripline_aws::MemStore;
    use tripline_core::layout::Op;

    use crate::destination::Recording;

    const BUCKET: &str = "b";

    fn alert(id: &str) -> Alert {
        serde_json::from_value(serde_json::json!({
            "id": id,
            "rule": {"name": "osquery_suspicious_cron", "id": "r", "title": "t", "level": "high"},
            "severity": "high",
            "title": "t",
            "dedup": {"fields": [], "values": [], "window": "1h", "window_start": "2026-11-22T14:00:00Z"},
            "first_seen": "2026-11-22T14:01:00Z",
            "last_seen": "2026-11-22T14:02:00Z",
            "count": 1,
            "hosts": ["h"],
            "host_count": 1,
            "attack": [],
            "samples": []
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_delivery_is_marked_and_a_replay_skips_it() {
        let (store, layout, a, dest) = (
            MemStore::new(),
            Layout::default(),
            alert("d1"),
            Recording::new("slack"),
        );
        let first = deliver(&store, &layout, BUCKET, &a, &dest).await.unwrap();
        assert_eq!(first, Delivery::Delivered("slack accepted".into()));
        let marker: serde_json::Value =
            serde_json::from_slice(&store.object(BUCKET, "state/delivery/d1/slack").unwrap())
                .unwrap();
        assert_eq!(
            (marker["alert"].as_str(), marker["destination"].as_str()),
            (Some("d1"), Some("slack"))
        );
        let replay = deliver(&store, &layout, BUCKET, &a, &dest).await.unwrap();
        assert_eq!(replay, Delivery::Skipped);
        assert_eq!(dest.sends(), ["d1"]);
    }

    #[tokio::test]
    async fn a_destination_failing_then_succeeding_is_sent_again_on_retry() {
        let (store, layout, a) = (MemStore::new(), Layout::default(), alert("d2"));
        let dest = Recording::failing("webhook", 1);
        let failed = deliver(&store, &layout, BUCKET, &a, &dest).await.unwrap();
        assert!(
            matches!(&failed, Delivery::Failed(e) if e.contains("503")),
            "{failed:?}"
        );
        assert!(store.keys(BUCKET, "state/").is_empty());
        let retry = deliver(&store, &layout, BUCKET, &a, &dest).await.unwrap();
        assert!(matches!(retry, Delivery::Delivered(_)));
        assert_eq!(dest.sends(), ["d2", "d2"]);
        assert_eq!(
            deliver(&store, &layout, BUCKET, &a, &dest).await.unwrap(),
            Delivery::Skipped
        );
    }

    #[tokio::test]
    async fn a_crash_between_send_and_marker_sends_again_never_loses() {
        let (store, layout, a, dest) = (
            MemStore::new(),
            Layout::default(),
            alert("d3"),
            Recording::new("pagerduty"),
        );
        store.inject(
            Op::PutIfAbsent,
            "state/delivery/",
            1,
            Fault::Fail(Retry::Transient),
        );
        let err = deliver(&store, &layout, BUCKET, &a, &dest)
            .await
            .unwrap_err();
        assert_eq!(tripline_aws::retry_of(&*err), Retry::Transient, "{err:#}");
        assert_eq!(dest.sends(), ["d3"]);
        let retry = deliver(&store, &layout, BUCKET, &a, &dest).await.unwrap();
        assert!(matches!(retry, Delivery::Delivered(_)));
        assert_eq!(dest.sends(), ["d3", "d3"], "at least once");
        assert_eq!(
            store.keys(BUCKET, "state/"),
            ["state/delivery/d3/pagerduty"]
        );
    }

    /// Two runs that both check before either marks both send (at least once); one marker
    /// is left, and a third run skips.
    #[tokio::test]
    async fn two_interleaved_runs_both_send_and_leave_one_marker() {
        let (store, layout, a, dest) = (
            MemStore::new(),
            Layout::default(),
            alert("d4"),
            Recording::new("splunk"),
        );
        store.inject(
            Op::PutIfAbsent,
            "state/delivery/",
            1,
            Fault::Delay(Duration::from_millis(50)),
        );
        let (first, second) = tokio::join!(
            deliver(&store, &layout, BUCKET, &a, &dest),
            deliver(&store, &layout, BUCKET, &a, &dest)
        );
        assert!(matches!(first.unwrap(), Delivery::Delivered(_)));
        assert!(matches!(second.unwrap(), Delivery::Delivered(_)));
        assert_eq!(dest.sends(), ["d4", "d4"]);
        assert_eq!(store.keys(BUCKET, "state/"), ["state/delivery/d4/splunk"]);
        assert_eq!(
            deliver(&store, &layout, BUCKET, &a, &dest).await.unwrap(),
            Delivery::Skipped
        );
    }
}
