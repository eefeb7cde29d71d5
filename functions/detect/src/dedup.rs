//! Each alert written once across invocations: the dedup marker, then the alert, and the
//! repair of a marker left without its alert.
//!
//! An alert's id is `(rule, dedup key, window start)`, the same wherever it is computed.
//! [`write_once`] first creates the alert's dedup marker ([`Layout::dedup_marker`]) if absent:
//! only the run that creates it writes the alert, so retries, replays and later objects in the
//! same window never produce a second alert (or a second notification). A run that finds the
//! marker checks that the alert exists and writes it if not, so a crash between the two
//! writes loses nothing.
//!
//! Two runs that race on one alert id can both write it: the second finds the marker, and the
//! alert not yet written by the first, and repairs it. The alert's key is the same and its
//! notification is delivered once per destination by notify's markers. Claims with a lease
//! (a marker that says "being written since", and a grace period before a repair) would go
//! between the marker and the existence check; the outcomes below stay the same.

use serde::Serialize;
use tripline_aws::s3io::PutOutcome;
use tripline_aws::ObjectStore;
use tripline_core::alert::Alert;
use tripline_core::layout::Layout;

/// What [`write_once`] did with an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// This run created the marker and wrote the alert.
    Written,
    /// The marker and the alert were there: another run wrote it.
    Deduplicated,
    /// The marker was there but the alert was not (a run died between the two): written now.
    Repaired,
}

/// Writes `alert` to `bucket` unless a run already did (see the module docs); returns what it
/// did and the alert's key. An error leaves what was written so far, which the next run
/// completes.
pub async fn write_once<S: ObjectStore>(
    store: &S,
    layout: &Layout,
    bucket: &str,
    alert: &Alert,
) -> anyhow::Result<(Outcome, String)> {
    let key = layout.alert_key(alert);
    let marker = layout.dedup_marker(&alert.id);
    let body = serde_json::to_vec(alert)?;
    let marker_body = serde_json::to_vec(&serde_json::json!({
        "alert": alert.id, "key": key, "rule": alert.rule.name, "window_start": alert.dedup.window_start,
    }))?;
    let outcome = match store
        .put_if_absent(bucket, &marker, marker_body.into())
        .await?
    {
        PutOutcome::Created => {
            store.put(bucket, &key, body.into()).await?;
            tracing::info!(alert = %alert.id, rule = %alert.rule.name, %key, "alert written");
            Outcome::Written
        }
        PutOutcome::AlreadyExists => {
            if store.exists(bucket, &key).await? {
                tracing::info!(alert = %alert.id, rule = %alert.rule.name, "alert already written in this window");
                Outcome::Deduplicated
            } else {
                store.put(bucket, &key, body.into()).await?;
                tracing::warn!(alert = %alert.id, %key, "dedup marker without alert: written now");
                Outcome::Repaired
            }
        }
    };
    Ok((outcome, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tripline_aws::error::Retry;
    use tripline_aws::store::Fault;
    use tripline_aws::MemStore;
    use tripline_core::layout::Op;

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
            "count": 2,
            "hosts": ["h"],
            "host_count": 1,
            "attack": [],
            "samples": []
        }))
        .unwrap()
    }

    fn written(store: &MemStore, a: &Alert) -> Option<Alert> {
        let key = Layout::default().alert_key(a);
        store
            .object(BUCKET, &key)
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[tokio::test]
    async fn an_alert_is_written_once_and_a_replay_is_deduplicated() {
        let (store, layout, a) = (MemStore::new(), Layout::default(), alert("a1"));
        let (first, key) = write_once(&store, &layout, BUCKET, &a).await.unwrap();
        assert_eq!(first, Outcome::Written);
        assert_eq!(key, "alerts/2026/11/22/a1.json");
        assert_eq!(written(&store, &a), Some(a.clone()));
        let marker: serde_json::Value =
            serde_json::from_slice(&store.object(BUCKET, "state/dedup/a1").unwrap()).unwrap();
        assert_eq!(marker["key"], key.as_str());
        let (replay, _) = write_once(&store, &layout, BUCKET, &a).await.unwrap();
        assert_eq!(replay, Outcome::Deduplicated);
        let puts = store.accesses().iter().filter(|x| x.op == Op::Put).count();
        assert_eq!(puts, 1, "the replay writes nothing");
    }

    #[tokio::test]
    async fn a_crash_between_marker_and_alert_is_repaired_by_the_next_run() {
        let (store, layout, a) = (MemStore::new(), Layout::default(), alert("a2"));
        store.inject(Op::Put, "alerts/", 1, Fault::Fail(Retry::Transient));
        let err = write_once(&store, &layout, BUCKET, &a).await.unwrap_err();
        assert!(tripline_aws::retry_of(&*err) == Retry::Transient, "{err:#}");
        assert!(store.object(BUCKET, "state/dedup/a2").is_some());
        assert_eq!(written(&store, &a), None);
        let (retry, _) = write_once(&store, &layout, BUCKET, &a).await.unwrap();
        assert_eq!(retry, Outcome::Repaired);
        assert_eq!(written(&store, &a), Some(a.clone()));
        let (again, _) = write_once(&store, &layout, BUCKET, &a).await.unwrap();
        assert_eq!(again, Outcome::Deduplicated);
    }

    #[tokio::test]
    async fn a_failed_marker_write_writes_no_alert() {
        let (store, layout, a) = (MemStore::new(), Layout::default(), alert("a3"));
        store.inject(
            Op::PutIfAbsent,
            "state/dedup/",
            1,
            Fault::Fail(Retry::Permanent),
        );
        let err = write_once(&store, &layout, BUCKET, &a).await.unwrap_err();
        assert_eq!(tripline_aws::retry_of(&*err), Retry::Permanent, "{err:#}");
        assert!(store.keys(BUCKET, "").is_empty());
        let (next, _) = write_once(&store, &layout, BUCKET, &a).await.unwrap();
        assert_eq!(next, Outcome::Written);
    }

    /// Two runs on one alert id, the second starting while the first is between its two
    /// writes: today the second repairs (writes the same key), and the alert exists once.
    #[tokio::test]
    async fn two_interleaved_runs_leave_one_alert() {
        let (store, layout) = (MemStore::new(), Layout::default());
        let (a, b) = (alert("a4"), {
            let mut b = alert("a4");
            b.count = 3;
            b
        });
        // The first run's alert write waits; the second run's does not.
        store.inject(
            Op::Put,
            "alerts/",
            1,
            Fault::Delay(Duration::from_millis(50)),
        );
        let (first, second) = tokio::join!(
            write_once(&store, &layout, BUCKET, &a),
            write_once(&store, &layout, BUCKET, &b)
        );
        assert_eq!(first.unwrap().0, Outcome::Written);
        assert_eq!(second.unwrap().0, Outcome::Repaired);
        assert_eq!(store.keys(BUCKET, "alerts/"), ["alerts/2026/11/22/a4.json"]);
        assert_eq!(store.keys(BUCKET, "state/dedup/"), ["state/dedup/a4"]);
        // The marker's run wrote last.
        assert_eq!(written(&store, &a), Some(a.clone()));
        // A third run finds both.
        let (third, _) = write_once(&store, &layout, BUCKET, &b).await.unwrap();
        assert_eq!(third, Outcome::Deduplicated);
    }
}
