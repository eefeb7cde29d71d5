//! The notify handler on the in-memory store with recording destinations, fed the S3 event
//! fixtures in `events/s3`: no moto, no network.

use std::collections::BTreeSet;

use serde_json::Value;
use tripline_aws::error::Retry;
use tripline_aws::store::Fault;
use tripline_aws::{s3event, MemStore, Settings};
use tripline_core::layout::{self, Op};
use tripline_notify::destination::Recording;
use tripline_notify::{Destination, Notify};

fn event(name: &str) -> Value {
    let path = format!("{}/../../events/s3/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The alert `notify-put.json` names, in a store, and the event.
fn setup() -> (MemStore, Value, String) {
    let event = event("notify-put.json");
    let object = &s3event::parse_value(&event).unwrap()[0];
    let id = object
        .key
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".json")
        .to_owned();
    let alert = serde_json::json!({
        "id": id,
        "rule": {"name": "osquery_suspicious_cron", "id": "r", "title": "Suspicious cron job", "level": "high"},
        "severity": "high",
        "title": "Suspicious cron job on web-1",
        "dedup": {"fields": ["host"], "values": ["web-1"], "window": "1h", "window_start": "2026-11-22T14:00:00Z"},
        "first_seen": "2026-11-22T14:01:00Z",
        "last_seen": "2026-11-22T14:02:00Z",
        "count": 1,
        "hosts": ["web-1"],
        "host_count": 1,
        "attack": [],
        "samples": []
    });
    let store = MemStore::new();
    store.insert(
        &object.bucket,
        &object.key,
        serde_json::to_vec(&alert).unwrap(),
    );
    (store, event, id)
}

fn notify(store: &MemStore, destinations: &[&Recording]) -> Notify<MemStore> {
    let destinations = destinations
        .iter()
        .map(|d| Box::new((*d).clone()) as Box<dyn Destination>)
        .collect();
    Notify::new(
        store.clone(),
        Settings::from_lookup(&|_| None).unwrap(),
        destinations,
    )
    .unwrap()
}

#[tokio::test]
async fn each_destination_gets_the_alert_once_across_replays() {
    let (store, event, id) = setup();
    let (slack, pagerduty) = (Recording::new("slack"), Recording::new("pagerduty"));
    let notify = notify(&store, &[&slack, &pagerduty]);
    let report = notify.handle(&event).await.unwrap().into_result().unwrap();
    assert_eq!(report.alerts, std::slice::from_ref(&id));
    assert_eq!(
        report.delivered,
        [format!("{id}/slack"), format!("{id}/pagerduty")]
    );
    assert_eq!(
        store.keys("tripline-data", "state/"),
        [
            format!("state/delivery/{id}/pagerduty"),
            format!("state/delivery/{id}/slack")
        ]
    );
    let replay = notify.handle(&event).await.unwrap().into_result().unwrap();
    assert!(replay.delivered.is_empty());
    assert_eq!(replay.skipped.len(), 2);
    assert_eq!((slack.sends().len(), pagerduty.sends().len()), (1, 1));

    let used = store.areas_touched("notify");
    let table: BTreeSet<_> = layout::ACCESS
        .iter()
        .filter(|a| a.function == "notify")
        .map(|a| (a.op, a.area))
        .collect();
    assert_eq!(used, table);
}

#[tokio::test]
async fn a_failing_destination_fails_the_invocation_and_only_it_is_retried() {
    let (store, event, id) = setup();
    let (sns, webhook) = (Recording::new("sns"), Recording::failing("webhook", 1));
    let notify = notify(&store, &[&webhook, &sns]);
    let report = notify.handle(&event).await.unwrap();
    assert_eq!(
        report.delivered,
        [format!("{id}/sns")],
        "the others are tried"
    );
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].starts_with(&format!("{id}/webhook: ")));
    let err = report.into_result().unwrap_err();
    assert!(err.to_string().contains("1 delivery failure"), "{err}");

    let retry = notify.handle(&event).await.unwrap().into_result().unwrap();
    assert_eq!(retry.delivered, [format!("{id}/webhook")]);
    assert_eq!(retry.skipped, [format!("{id}/sns")]);
    assert_eq!((webhook.sends().len(), sns.sends().len()), (2, 1));
    store.areas_touched("notify");
}

#[tokio::test]
async fn store_failures_are_typed_and_other_keys_ignored() {
    let (store, event, _) = setup();
    let slack = Recording::new("slack");
    let notify = notify(&store, &[&slack]);
    for other in ["parse-put.json", "detect-put.json"] {
        let report = notify.handle(&self::event(other)).await.unwrap();
        assert!(
            report.alerts.is_empty() && report.ignored.len() == 1,
            "{other}"
        );
    }
    store.inject(
        Op::Exists,
        "state/delivery/",
        1,
        Fault::Fail(Retry::Permanent),
    );
    let err = notify.handle(&event).await.unwrap_err();
    assert_eq!(tripline_aws::retry_of(&*err), Retry::Permanent, "{err:#}");
    assert!(slack.sends().is_empty());

    // An alert object that is gone: nothing to deliver and nothing to retry.
    let empty = MemStore::new();
    let report = self::notify(&empty, &[&slack])
        .handle(&event)
        .await
        .unwrap();
    assert!(report.alerts.is_empty());
    assert_eq!(report.unreadable.len(), 1);
    assert_eq!(report.unreadable[0].kind, "NotFound");
    let line: Value = serde_json::from_str(&tripline_notify::metrics(&report, 1.0)).unwrap();
    assert_eq!(line["Unreadable"], 1.0);
    assert!(slack.sends().is_empty());
}
