//! Each alert written once across invocations, concurrent ones included.
//!
//! An alert's id is `(rule, dedup key, window start)`, the same wherever it is computed, and
//! so is its key ([`Layout::alert_key`]). [`write_once`] creates the alert object only if none
//! exists at its key (`If-None-Match: *`): of any number of runs on one alert id (retries,
//! replays, two copies of one S3 event running at once, later objects in the same window),
//! exactly one creates it, and S3 raises one `ObjectCreated` for it, so notify is invoked for
//! it once. The alert object is its own marker: it exists whole or not at all, so there is no
//! state between two writes for a crash to leave behind and no repair to tell apart from a
//! concurrent writer.

use serde::Serialize;
use tripline_aws::s3io::PutOutcome;
use tripline_aws::ObjectStore;
use tripline_core::alert::Alert;
use tripline_core::layout::Layout;

/// What [`write_once`] did with an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// This run created the alert.
    Written,
    /// The alert was there: another run (earlier, or at the same time) created it.
    Deduplicated,
}

/// Creates `alert` in `bucket` unless a run already did (see the module docs); returns what
/// it did and the alert's key. An error wrote nothing, so the next run writes it.
pub async fn write_once<S: ObjectStore>(
    store: &S,
    layout: &Layout,
    bucket: &str,
    alert: &Alert,
) -> anyhow::Result<(Outcome, String)> {
    let key = layout.alert_key(alert);
    let body = serde_json::to_vec(alert)?;
    let outcome = match store.put_if_absent(bucket, &key, body.into()).await? {
        PutOutcome::Created => {
            tracing::info!(alert = %alert.id, rule = %alert.rule.name, %key, "alert written");
            Outcome::Written
        }
        PutOutcome::AlreadyExists => {
            tracing::info!(alert = %alert.id, rule = %alert.rule.name, "alert already written in this window");
            Outcome::Deduplicated
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

    fn creations(store: &MemStore) -> usize {
        store.created(BUCKET, "alerts/").len()
    }

    #[tokio::test]
    async fn an_alert_is_written_once_and_a_replay_is_deduplicated() {
        let (store, layout, a) = (MemStore::new(), Layout::default(), alert("a1"));
        let (first, key) = write_once(&store, &layout, BUCKET, &a).await.unwrap();
        assert_eq!(first, Outcome::Written);
        assert_eq!(key, "alerts/2026/11/22/a1.json");
        assert_eq!(written(&store, &a), Some(a.clone()));
        let mut later = a.clone();
        later.count = 9;
        let (replay, _) = write_once(&store, &layout, BUCKET, &later).await.unwrap();
        assert_eq!(replay, Outcome::Deduplicated);
        assert_eq!(written(&store, &a), Some(a.clone()), "the first one stays");
        assert_eq!(creations(&store), 1);
        assert_eq!(store.keys(BUCKET, ""), [key]);
    }

    #[tokio::test]
    async fn a_failed_write_writes_nothing_and_the_retry_writes_it() {
        let (store, layout, a) = (MemStore::new(), Layout::default(), alert("a2"));
        store.inject(Op::PutIfAbsent, "alerts/", 1, Fault::Fail(Retry::Transient));
        let err = write_once(&store, &layout, BUCKET, &a).await.unwrap_err();
        assert_eq!(tripline_aws::retry_of(&*err), Retry::Transient, "{err:#}");
        assert!(store.keys(BUCKET, "").is_empty());
        let (retry, _) = write_once(&store, &layout, BUCKET, &a).await.unwrap();
        assert_eq!(retry, Outcome::Written);
        assert_eq!(written(&store, &a), Some(a.clone()));
    }

    /// Two runs on one alert id at once, whichever reaches the store first: one creates the
    /// alert (one `ObjectCreated`, so one notify invocation), the other is told it exists.
    #[tokio::test]
    async fn two_concurrent_runs_create_the_alert_once() {
        for delayed in [0, 1] {
            let (store, layout) = (MemStore::new(), Layout::default());
            let (a, b) = (alert("a4"), {
                let mut b = alert("a4");
                b.count = 3;
                b
            });
            // The first run to reach the store waits; the other overtakes it.
            store.inject(
                Op::PutIfAbsent,
                "alerts/",
                delayed,
                Fault::Delay(Duration::from_millis(30)),
            );
            let (first, second) = tokio::join!(
                write_once(&store, &layout, BUCKET, &a),
                write_once(&store, &layout, BUCKET, &b)
            );
            let mut outcomes = [first.unwrap().0, second.unwrap().0];
            outcomes.sort_by_key(|o| *o == Outcome::Deduplicated);
            assert_eq!(outcomes, [Outcome::Written, Outcome::Deduplicated]);
            assert_eq!(store.keys(BUCKET, ""), ["alerts/2026/11/22/a4.json"]);
            assert_eq!(creations(&store), 1, "one ObjectCreated");
        }
    }
}
