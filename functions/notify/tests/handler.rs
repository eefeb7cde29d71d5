//! The notify handler on the in-memory store with recording destinations, fed the S3 event
//! fixtures in `events/s3`: no moto, no network.

use std::collections::BTreeSet;

use serde_json::Value;
use tripline_aws::error::Retry;
use tripline_aws::store::Fault;
use tripline_aws::{s3event, MemStore, Settings};
use tripline_core::layout::{self, Op};
use tripline_notify::destination::Recording;
use tripline_notify::{Destination, Invocation, Notify};

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

/// An invocation with Lambda's default notify timeout.
fn invocation(id: &str) -> Invocation {
    Invocation::new(id, std::time::Duration::from_secs(60))
}

fn notify_access_table() -> BTreeSet<(Op, layout::Area)> {
    layout::ACCESS
        .iter()
        .filter(|a| a.function == "notify")
        .map(|a| (a.op, a.area))
        .collect()
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
    let report = notify
        .handle(&event, &invocation("req-1"))
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(report.alerts, std::slice::from_ref(&id));
    assert_eq!(
        report.delivered,
        [format!("{id}/slack"), format!("{id}/pagerduty")]
    );
    assert_eq!(
        store.keys("tripline-data", "state/delivery/"),
        [
            format!("state/delivery/{id}/pagerduty"),
            format!("state/delivery/{id}/slack")
        ]
    );
    let replay = notify
        .handle(&event, &invocation("req-2"))
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert!(replay.delivered.is_empty());
    assert_eq!(replay.skipped.len(), 2);
    assert_eq!((slack.sends().len(), pagerduty.sends().len()), (1, 1));

    let used = store.areas_touched("notify");
    assert!(used.is_subset(&notify_access_table()), "{used:?}");
}

#[tokio::test]
async fn a_failing_destination_fails_the_invocation_and_only_it_is_retried() {
    let (store, event, id) = setup();
    let (sns, webhook) = (Recording::new("sns"), Recording::failing("webhook", 1));
    let notify = notify(&store, &[&webhook, &sns]);
    let report = notify.handle(&event, &invocation("req-3")).await.unwrap();
    assert_eq!(
        report.delivered,
        [format!("{id}/sns")],
        "the others are tried"
    );
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].starts_with(&format!("{id}/webhook: ")));
    let err = report.into_result().unwrap_err();
    assert!(err.to_string().contains("1 delivery failure"), "{err}");

    let retry = notify
        .handle(&event, &invocation("req-4"))
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(retry.delivered, [format!("{id}/webhook")]);
    assert_eq!(retry.skipped, [format!("{id}/sns")]);
    assert_eq!((webhook.sends().len(), sns.sends().len()), (2, 1));
    // Claim, release, re-claim, skip, mark: every notify row of the access table.
    assert_eq!(store.areas_touched("notify"), notify_access_table());
}

#[tokio::test]
async fn store_failures_are_typed_and_other_keys_ignored() {
    let (store, event, _) = setup();
    let slack = Recording::new("slack");
    let notify = notify(&store, &[&slack]);
    for other in ["parse-put.json", "detect-put.json"] {
        let report = notify
            .handle(&self::event(other), &invocation("req-5"))
            .await
            .unwrap();
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
    let err = notify
        .handle(&event, &invocation("req-6"))
        .await
        .unwrap_err();
    assert_eq!(tripline_aws::retry_of(&*err), Retry::Permanent, "{err:#}");
    assert!(slack.sends().is_empty());

    // An alert object that is gone: nothing to deliver and nothing to retry.
    let empty = MemStore::new();
    let report = self::notify(&empty, &[&slack])
        .handle(&event, &invocation("req-7"))
        .await
        .unwrap();
    assert!(report.alerts.is_empty());
    assert_eq!(report.unreadable.len(), 1);
    assert_eq!(report.unreadable[0].kind, "NotFound");
    let line: Value = serde_json::from_str(&tripline_notify::metrics(&report, 1.0)).unwrap();
    assert_eq!(line["Unreadable"], 1.0);
    assert!(slack.sends().is_empty());
}

/// Two copies of one alert event at once, as S3 and Lambda may deliver them, with a slow
/// destination among fast ones: every destination gets the alert exactly once, and neither
/// invocation fails.
#[tokio::test]
async fn two_concurrent_invocations_deliver_once_per_destination() {
    let (store, event, id) = setup();
    let slack = Recording::new("slack").slow(std::time::Duration::from_millis(50));
    let (sns, webhook) = (Recording::new("sns"), Recording::new("webhook"));
    let notify = notify(&store, &[&sns, &slack, &webhook]);
    let (req_a, req_b) = (invocation("req-a"), invocation("req-b"));
    let (a, b) = tokio::join!(notify.handle(&event, &req_a), notify.handle(&event, &req_b));
    let (a, b) = (
        a.unwrap().into_result().unwrap(),
        b.unwrap().into_result().unwrap(),
    );
    assert_eq!(
        (sns.sends(), slack.sends(), webhook.sends()),
        (vec![id.clone()], vec![id.clone()], vec![id.clone()])
    );
    let mut delivered: Vec<String> = a.delivered.iter().chain(&b.delivered).cloned().collect();
    delivered.sort();
    assert_eq!(
        delivered,
        [
            format!("{id}/slack"),
            format!("{id}/sns"),
            format!("{id}/webhook")
        ]
    );
    // What one run did not deliver, the other delivered or was delivering.
    for report in [&a, &b] {
        assert_eq!(
            report.delivered.len() + report.skipped.len() + report.claimed_by_another.len(),
            3,
            "{report:?}"
        );
    }
    let line: Value = serde_json::from_str(&tripline_notify::metrics(&a, 1.0)).unwrap();
    assert_eq!(
        line["DeliveriesClaimedByAnother"].as_f64().unwrap() as usize,
        a.claimed_by_another.len()
    );
}

/// A destination that cannot answer within the invocation's budget (a rate limit asking to
/// wait longer than is left, or a hang) does not hold the others up: they are delivered at
/// once, it is reported as failed when the budget ends, and the retry sends only to it.
#[tokio::test]
async fn a_slow_destination_does_not_starve_the_others() {
    let (store, event, id) = setup();
    let slack = Recording::new("slack").slow(std::time::Duration::from_secs(20));
    let (sns, webhook, pagerduty) = (
        Recording::new("sns"),
        Recording::new("webhook"),
        Recording::new("pagerduty"),
    );
    let notify = notify(&store, &[&slack, &sns, &webhook, &pagerduty]);
    let budget = tripline_notify::delivery::RESERVE + std::time::Duration::from_millis(400);
    let started = std::time::Instant::now();
    let report = notify
        .handle(&event, &Invocation::new("req-1", budget))
        .await
        .unwrap();
    assert!(started.elapsed() < budget, "{:?}", started.elapsed());
    assert_eq!(
        report.delivered,
        [
            format!("{id}/sns"),
            format!("{id}/webhook"),
            format!("{id}/pagerduty")
        ]
    );
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].starts_with(&format!("{id}/slack: ")));
    let err = report.into_result().unwrap_err();
    assert!(err.to_string().contains("slack"), "{err}");

    let fast = Recording::new("slack");
    let retry = self::notify(&store, &[&fast, &sns, &webhook, &pagerduty])
        .handle(&event, &invocation("req-2"))
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(retry.delivered, [format!("{id}/slack")]);
    assert_eq!(retry.skipped.len(), 3);
    assert_eq!(fast.sends(), std::slice::from_ref(&id));
    assert_eq!(
        sns.sends().len() + webhook.sends().len() + pagerduty.sends().len(),
        3
    );
}
