use super::*;
use std::time::Instant;
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

fn invocation(id: &str) -> Invocation {
    Invocation::new(id, Duration::from_secs(60))
}

fn claim_of(store: &MemStore, key: &str) -> serde_json::Value {
    serde_json::from_slice(&store.object(BUCKET, key).unwrap()).unwrap()
}

/// A claim another invocation left, with its lease ending `lease_ms` from now (negative:
/// ended).
fn leave_claim(store: &MemStore, key: &str, owner: &str, lease_ms: i64) {
    let now = epoch_ms(SystemTime::now()) as i64;
    let claim = serde_json::json!({
        "alert": "x", "destination": "slack", "owner": owner,
        "lease_until_ms": now + lease_ms,
    });
    store.insert(BUCKET, key, serde_json::to_vec(&claim).unwrap());
}

#[tokio::test]
async fn a_delivery_is_claimed_then_marked_and_a_replay_skips_it() {
    let (store, layout, a, dest) = (
        MemStore::new(),
        Layout::default(),
        alert("d1"),
        Recording::new("slack"),
    );
    let inv = invocation("req-1");
    let first = deliver(&store, &layout, BUCKET, &a, &dest, &inv)
        .await
        .unwrap();
    assert_eq!(first, Delivery::Delivered("slack accepted".into()));
    let marker = claim_of(&store, "state/delivery/d1/slack");
    assert_eq!(
        (marker["alert"].as_str(), marker["by"].as_str()),
        (Some("d1"), Some("req-1"))
    );
    let claim = claim_of(&store, "state/claim/d1/slack/0");
    assert_eq!(claim["owner"], "req-1");
    assert!(
        claim["lease_until_ms"].as_u64().unwrap() >= epoch_ms(inv.deadline + LEASE_MARGIN) - 1_000,
        "the lease outlives the deadline: {claim}"
    );
    let replay = deliver(&store, &layout, BUCKET, &a, &dest, &invocation("req-2"))
        .await
        .unwrap();
    assert_eq!(replay, Delivery::Skipped);
    assert_eq!(dest.sends(), ["d1"]);
}

/// A failure releases the claim, so the retry sends at once even under a new request id
/// (an SQS redelivery), and only the destination that failed is sent again.
#[tokio::test]
async fn a_failed_send_releases_its_claim_for_the_retry() {
    let (store, layout, a) = (MemStore::new(), Layout::default(), alert("d2"));
    let dest = Recording::failing("webhook", 1);
    let failed = deliver(&store, &layout, BUCKET, &a, &dest, &invocation("req-1"))
        .await
        .unwrap();
    assert!(
        matches!(&failed, Delivery::Failed(e) if e.contains("503")),
        "{failed:?}"
    );
    assert_eq!(
        claim_of(&store, "state/claim/d2/webhook/0")["released"],
        true
    );
    assert!(store.keys(BUCKET, "state/delivery/").is_empty());
    let retry = deliver(&store, &layout, BUCKET, &a, &dest, &invocation("req-2"))
        .await
        .unwrap();
    assert!(matches!(retry, Delivery::Delivered(_)), "{retry:?}");
    assert_eq!(
        claim_of(&store, "state/claim/d2/webhook/1")["owner"],
        "req-2"
    );
    assert_eq!(dest.sends(), ["d2", "d2"]);
    assert_eq!(
        deliver(&store, &layout, BUCKET, &a, &dest, &invocation("req-3"))
            .await
            .unwrap(),
        Delivery::Skipped
    );
}

/// The marker write fails after a successful send (as a crash there would): the claim
/// stays, so another invocation leaves the destination alone while the lease holds; Lambda's
/// retry of the same request sends again (at least once, never lost).
#[tokio::test]
async fn a_crash_after_the_send_is_resent_by_the_owners_retry_only() {
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
    let err = deliver(&store, &layout, BUCKET, &a, &dest, &invocation("req-1"))
        .await
        .unwrap_err();
    assert_eq!(tripline_aws::retry_of(&*err), Retry::Transient, "{err:#}");
    assert_eq!(dest.sends(), ["d3"]);
    let other = deliver(&store, &layout, BUCKET, &a, &dest, &invocation("dup"))
        .await
        .unwrap();
    assert_eq!(other, Delivery::ClaimedByAnother("req-1".into()));
    let retry = deliver(&store, &layout, BUCKET, &a, &dest, &invocation("req-1"))
        .await
        .unwrap();
    assert!(matches!(retry, Delivery::Delivered(_)), "{retry:?}");
    assert_eq!(dest.sends(), ["d3", "d3"], "at least once");
    assert_eq!(
        store.keys(BUCKET, "state/"),
        ["state/claim/d3/pagerduty/0", "state/delivery/d3/pagerduty"]
    );
}

#[tokio::test]
async fn a_claim_whose_lease_ended_is_taken_over_and_a_live_one_is_left_alone() {
    let (store, layout, a, dest) = (
        MemStore::new(),
        Layout::default(),
        alert("d5"),
        Recording::new("slack"),
    );
    leave_claim(&store, "state/claim/d5/slack/0", "alive", 60_000);
    let live = deliver(&store, &layout, BUCKET, &a, &dest, &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(live, Delivery::ClaimedByAnother("alive".into()));
    assert!(dest.sends().is_empty());

    leave_claim(&store, "state/claim/d5/slack/0", "dead", -1);
    let taken = deliver(&store, &layout, BUCKET, &a, &dest, &invocation("req-1"))
        .await
        .unwrap();
    assert!(matches!(taken, Delivery::Delivered(_)), "{taken:?}");
    assert_eq!(claim_of(&store, "state/claim/d5/slack/1")["owner"], "req-1");
    assert_eq!(
        claim_of(&store, "state/claim/d5/slack/0")["owner"],
        "dead",
        "an ended claim is never rewritten by another"
    );
    assert_eq!(dest.sends(), ["d5"]);

    // The dead owner's delivery marker appears after our first check (its last write
    // landing late): the takeover checks again and sends nothing.
    let (store, b) = (MemStore::new(), alert("d6"));
    leave_claim(&store, "state/claim/d6/slack/0", "dead", -1);
    store.inject(
        Op::PutIfAbsent,
        "state/claim/d6/slack/1",
        1,
        Fault::Delay(Duration::from_millis(30)),
    );
    let late_marker = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        store.insert(BUCKET, "state/delivery/d6/slack", b"{}".to_vec());
    };
    let inv = invocation("req-2");
    let (got, ()) = tokio::join!(
        deliver(&store, &layout, BUCKET, &b, &dest, &inv),
        late_marker
    );
    assert_eq!(got.unwrap(), Delivery::Skipped);
    assert_eq!(dest.sends(), ["d5"]);
}

/// Two invocations of one alert event at once (different request ids), the first to reach
/// each step of the protocol held there while the other overtakes it, with a fast and a slow
/// destination: the destination gets the alert exactly once, and the other run either finds
/// it delivered or leaves it to the claim's owner. Neither fails.
#[tokio::test]
async fn two_concurrent_runs_interleaved_at_every_step_send_once() {
    let steps = [
        (Op::Exists, "state/delivery/"),
        (Op::PutIfAbsent, "state/claim/"),
        (Op::Read, "state/claim/"),
        (Op::PutIfAbsent, "state/delivery/"),
    ];
    for (op, area) in steps {
        for latency in [Duration::ZERO, Duration::from_millis(40)] {
            let (store, layout, a) = (MemStore::new(), Layout::default(), alert("d4"));
            let dest = Recording::new("splunk").slow(latency);
            store.inject(op, area, 1, Fault::Delay(Duration::from_millis(25)));
            let (inv1, inv2) = (invocation("req-1"), invocation("req-2"));
            let (first, second) = tokio::join!(
                deliver(&store, &layout, BUCKET, &a, &dest, &inv1),
                deliver(&store, &layout, BUCKET, &a, &dest, &inv2)
            );
            let outcomes = [first.unwrap(), second.unwrap()];
            let case = format!("{op:?} {area} latency {latency:?}: {outcomes:?}");
            assert_eq!(dest.sends(), ["d4"], "{case}");
            let delivered = outcomes
                .iter()
                .filter(|o| matches!(o, Delivery::Delivered(_)))
                .count();
            assert_eq!(delivered, 1, "{case}");
            assert!(
                outcomes.iter().all(|o| matches!(
                    o,
                    Delivery::Delivered(_) | Delivery::Skipped | Delivery::ClaimedByAnother(_)
                )),
                "{case}"
            );
            assert_eq!(
                store.keys(BUCKET, "state/"),
                ["state/claim/d4/splunk/0", "state/delivery/d4/splunk"],
                "{case}"
            );
        }
    }
}

/// A destination slower than the invocation's budget is cut off at the budget, reported as
/// failed, and its claim released for the retry.
#[tokio::test]
async fn a_slow_destination_ends_within_the_budget() {
    let (store, layout, a) = (MemStore::new(), Layout::default(), alert("d7"));
    let dest = Recording::new("slack").slow(Duration::from_secs(30));
    let inv = Invocation::new("req-1", RESERVE + Duration::from_millis(300));
    let started = Instant::now();
    let out = deliver(&store, &layout, BUCKET, &a, &dest, &inv)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        matches!(&out, Delivery::Failed(e) if e.contains("deadline") || e.contains("budget")),
        "{out:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(claim_of(&store, "state/claim/d7/slack/0")["released"], true);
}

#[test]
fn a_deadline_that_has_passed_is_an_emulators_and_gets_the_fallback() {
    let real = epoch_ms(SystemTime::now() + Duration::from_secs(30));
    let inv = Invocation::with_deadline_ms("r", real, Duration::from_secs(60));
    assert_eq!(epoch_ms(inv.deadline), real);
    let watch = Invocation::with_deadline_ms("r", 600_000, Duration::from_secs(60));
    let budget = watch.budget();
    assert!(
        budget > Duration::from_secs(55) && budget <= Duration::from_secs(60) - RESERVE,
        "{budget:?}"
    );
}
