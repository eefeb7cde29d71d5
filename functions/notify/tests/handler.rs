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
    used_rows_are_in_the_table(&store);
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

/// An alert of `rule` on `host` in the 14:00 window, stored, and the S3 event naming it.
fn stored_alert(store: &MemStore, rule: &str, host: &str, severity: &str) -> (String, Value) {
    stored_alert_of(store, rule, None, host, severity)
}

/// [`stored_alert`] of a rule with its own storm threshold (`tripline.storm`).
fn stored_alert_of(
    store: &MemStore,
    rule: &str,
    storm: Option<u32>,
    host: &str,
    severity: &str,
) -> (String, Value) {
    let id = format!("{:016x}", {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (rule, host).hash(&mut h);
        h.finish()
    });
    let key = format!("alerts/2026/11/22/{id}.json");
    let alert = serde_json::json!({
        "id": id,
        "rule": {"name": rule, "id": "r", "title": "Noisy rule", "level": severity, "storm": storm},
        "severity": severity,
        "title": format!("{rule} on {host}"),
        "dedup": {"fields": ["host"], "values": [host], "window": "1h", "window_start": "2026-11-22T14:00:00Z"},
        "first_seen": "2026-11-22T14:01:00Z",
        "last_seen": "2026-11-22T14:02:00Z",
        "count": 1,
        "hosts": [host],
        "host_count": 1,
        "attack": [],
        "samples": []
    });
    store.insert("tripline-data", &key, serde_json::to_vec(&alert).unwrap());
    let event = serde_json::json!({"Records": [{
        "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "tripline-data"}, "object": {"key": key}}
    }]});
    (id, event)
}

fn with_config(notify: Notify<MemStore>, toml: &str) -> Notify<MemStore> {
    notify.with_config(tripline_core::config::Config::from_toml_str(toml).unwrap())
}

/// A destination gets only what its route takes; what no route takes is counted and stays
/// in the alerts prefix.
#[tokio::test]
async fn each_destination_gets_what_its_route_takes() {
    let store = MemStore::new();
    let (slack, pagerduty) = (Recording::new("slack"), Recording::new("pagerduty"));
    let notify = with_config(
        notify(&store, &[&slack, &pagerduty]),
        "[routes.pagerduty]\nmin_level = \"critical\"\n\
         [routes.slack]\nexclude_rules = [\"osquery_noisy_*\"]\n",
    );
    let (high, high_event) = stored_alert(&store, "osquery_reverse_shell", "web-1", "high");
    let (critical, critical_event) =
        stored_alert(&store, "osquery_xz_backdoor", "web-2", "critical");
    let (noisy, noisy_event) = stored_alert(&store, "osquery_noisy_port", "web-3", "critical");
    let mut unrouted = Vec::new();
    for (i, event) in [&high_event, &critical_event, &noisy_event]
        .into_iter()
        .enumerate()
    {
        let report = notify
            .handle(event, &invocation(&format!("req-{i}")))
            .await
            .unwrap()
            .into_result()
            .unwrap();
        unrouted.extend(report.unrouted.clone());
        let line: Value = serde_json::from_str(&tripline_notify::metrics(&report, 1.0)).unwrap();
        assert_eq!(line["DeliveriesUnrouted"], report.unrouted.len() as f64);
    }
    assert_eq!(slack.sends(), [high.clone(), critical.clone()]);
    assert_eq!(pagerduty.sends(), [critical, noisy.clone()]);
    assert_eq!(
        unrouted,
        [format!("{high}/pagerduty"), format!("{noisy}/slack")]
    );
    assert_eq!(
        store.keys("tripline-data", "alerts/").len(),
        3,
        "every alert stays"
    );
}

/// A rule raising more alerts in one window than the storm threshold: the first ones are
/// sent, then each destination gets one roll-up naming the count, the first hosts and where
/// the rest are, and nothing more for that storm.
#[tokio::test]
async fn a_storm_becomes_one_rollup_per_destination() {
    let store = MemStore::new();
    let (slack, webhook) = (Recording::new("slack"), Recording::new("webhook"));
    let notify = with_config(
        notify(&store, &[&slack, &webhook]),
        "[storm]\nthreshold = 3\n",
    );
    let mut ids = Vec::new();
    let mut in_storm = Vec::new();
    let mut delivered = Vec::new();
    for host in 0..8 {
        let (id, event) = stored_alert(
            &store,
            "osquery_noisy_port",
            &format!("host-{host}"),
            "medium",
        );
        ids.push(id);
        let report = notify
            .handle(&event, &invocation(&format!("req-{host}")))
            .await
            .unwrap()
            .into_result()
            .unwrap();
        in_storm.extend(report.in_storm);
        delivered.extend(report.delivered);
    }
    // A storm of another rule, or of the same rule in another window, is its own.
    let (other, other_event) = stored_alert(&store, "osquery_reverse_shell", "host-0", "high");
    notify
        .handle(&other_event, &invocation("req-x"))
        .await
        .unwrap();
    let sent = slack.sends();
    assert_eq!(
        sent.len(),
        5,
        "3 alerts, the roll-up, the other rule's alert: {sent:?}"
    );
    assert_eq!(&sent[..3], &ids[..3]);
    let rollup_id = &sent[3];
    assert!(!ids.contains(rollup_id));
    assert_eq!(sent[4], other);
    assert_eq!(webhook.sends(), sent, "each destination alike");
    assert_eq!(in_storm.len(), 5, "alerts 4 to 8 folded into the roll-up");
    assert_eq!(
        delivered
            .iter()
            .filter(|d| d.starts_with(rollup_id.as_str()))
            .count(),
        2,
        "one roll-up per destination"
    );
    assert_eq!(store.keys("tripline-data", "state/storm/").len(), 9);
    used_rows_are_in_the_table(&store);
}

/// A rule's own threshold (`tripline.storm`, carried in its alerts) applies where the site
/// sets none for it; the site's `[storm.rules]` entry wins over it.
#[tokio::test]
async fn a_rules_own_storm_threshold_applies_unless_the_site_sets_one() {
    async fn sent(site: &str, own: u32) -> usize {
        let store = MemStore::new();
        let slack = Recording::new("slack");
        let notify = with_config(notify(&store, &[&slack]), site);
        for host in 0..6 {
            let (_, event) = stored_alert_of(
                &store,
                "osquery_noisy_port",
                Some(own),
                &format!("host-{host}"),
                "medium",
            );
            notify
                .handle(&event, &invocation(&format!("req-{host}")))
                .await
                .unwrap()
                .into_result()
                .unwrap();
        }
        slack.sends().len()
    }
    assert_eq!(sent("", 2).await, 3, "2 alerts and the roll-up");
    assert_eq!(
        sent("[storm]\nthreshold = 1\n", 4).await,
        5,
        "the rule's 4 over the site's 1"
    );
    assert_eq!(
        sent("[storm.rules]\nosquery_noisy_port = 1\n", 4).await,
        2,
        "the site's entry for the rule over the rule's own"
    );
    assert_eq!(sent("", 0).await, 6, "0: no storm control for this rule");
}

fn used_rows_are_in_the_table(store: &MemStore) {
    let used = store.areas_touched("notify");
    assert!(used.is_subset(&notify_access_table()), "{used:?}");
}

/// Claims taken, released and taken again, markers, a storm counted and rolled up: every
/// notify row of the access table is used, and nothing else.
#[tokio::test]
async fn every_access_row_is_used_and_no_other() {
    let store = MemStore::new();
    let webhook = Recording::failing("webhook", 1);
    let settings =
        Settings::from_lookup(&|k| (k == "TRIPLINE_BUCKET").then(|| "tripline-data".into()))
            .unwrap();
    store.insert(
        "tripline-data",
        "config/tripline.toml",
        "[storm]\nthreshold = 1\n",
    );
    let notify = Notify::new(store.clone(), settings, vec![Box::new(webhook.clone())]).unwrap();
    let (_, first) = stored_alert(&store, "osquery_noisy_port", "host-1", "medium");
    let (_, second) = stored_alert(&store, "osquery_noisy_port", "host-2", "medium");
    assert_eq!(
        notify
            .handle(&first, &invocation("req-1"))
            .await
            .unwrap()
            .failed
            .len(),
        1
    );
    notify
        .handle(&first, &invocation("req-2"))
        .await
        .unwrap()
        .into_result()
        .unwrap();
    let storm = notify.handle(&second, &invocation("req-3")).await.unwrap();
    assert_eq!(storm.in_storm.len(), 1);
    assert_eq!(store.areas_touched("notify"), notify_access_table());
}

/// Routes follow the site directory in the bucket: a change applies to the next invocation,
/// and a broken `tripline.toml` keeps the last good routes (and is reported for the alarm).
#[tokio::test]
async fn routes_follow_the_site_in_the_bucket() {
    let store = MemStore::new();
    let pagerduty = Recording::new("pagerduty");
    let settings =
        Settings::from_lookup(&|k| (k == "TRIPLINE_BUCKET").then(|| "tripline-data".into()))
            .unwrap();
    let notify = Notify::new(store.clone(), settings, vec![Box::new(pagerduty.clone())])
        .unwrap()
        .with_site_every(std::time::Duration::ZERO);
    store.insert(
        "tripline-data",
        "config/tripline.toml",
        "[routes.pagerduty]\nmin_level = \"critical\"\n",
    );
    let (_, high) = stored_alert(&store, "osquery_reverse_shell", "web-1", "high");
    let report = notify.handle(&high, &invocation("req-1")).await.unwrap();
    assert_eq!(report.unrouted.len(), 1, "{report:?}");
    assert!(pagerduty.sends().is_empty());

    store.insert(
        "tripline-data",
        "config/tripline.toml",
        "[routes.pagerduty]\nmin_level = \"hihg\"\n",
    );
    let (_, other) = stored_alert(&store, "osquery_reverse_shell", "web-2", "high");
    let report = notify.handle(&other, &invocation("req-2")).await.unwrap();
    assert!(
        report.site_error.as_deref().unwrap().contains("min_level"),
        "{report:?}"
    );
    assert_eq!(report.unrouted.len(), 1, "the last good routes still apply");

    store.insert(
        "tripline-data",
        "config/tripline.toml",
        "[routes.pagerduty]\nmin_level = \"high\"\n",
    );
    let (third, event) = stored_alert(&store, "osquery_reverse_shell", "web-3", "high");
    let report = notify.handle(&event, &invocation("req-3")).await.unwrap();
    assert!(
        report.site_error.is_none() && report.unrouted.is_empty(),
        "{report:?}"
    );
    assert_eq!(pagerduty.sends(), [third]);
}
