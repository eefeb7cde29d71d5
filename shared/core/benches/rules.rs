//! Rule engine throughput over the built-in pack, single-threaded (events/s per core).
//!
//! The mix is what a fleet sends: mostly benign rows from common tables (processes,
//! listening ports, cron, shell history, logins, packages) on many hosts, and about 5%
//! rows that fire a rule (the positives of the built-in rule tests).
//!
//! Groups:
//! - `detector/observe`: the whole detect stage per event (ATT&CK annotation, derived
//!   fields, eval view, every rule, aggregation), as the Lambda and `tripline scan` run it;
//! - `rules/matching`: rule evaluation alone (each rule's gate, then rsigma for the rules
//!   it admits), through the zero-copy `EventView`;
//! - `rules/matching_json_view`: the same over the view rendered as flat JSON (what a
//!   `serde_json::Value`-based view would cost, for comparison);
//! - `prepare/derive`: the derived fields, computed once per event before the rules run.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rsigma_eval::event::JsonEvent;
use serde::Deserialize;
use serde_json::{json, Value};
use tripline_core::config::Config;
use tripline_core::derive::derive;
use tripline_core::derive::Derived;
use tripline_core::event::Event;
use tripline_core::mapping::Mapper;
use tripline_core::rules::testing::TestEvent;
use tripline_core::rules::{builtin, eval_view, Detector, EventView, RuleSet};

const EVENTS: usize = 10_000;
const MATCHING_PERCENT: usize = 5;

#[derive(Deserialize)]
struct TestFile {
    #[serde(default)]
    positive: Vec<TestEvent>,
    #[serde(default)]
    negative: Vec<TestEvent>,
}

fn benign(i: usize) -> TestEvent {
    let host = format!("host-{:03}.prod.example.com", i % 250);
    let (name, columns) = match i % 10 {
        0..=2 => (
            "pack/tripline-linux/processes",
            json!({"pid": (1000 + i).to_string(), "name": "nginx", "path": "/usr/sbin/nginx",
                   "cmdline": "nginx: worker process", "uid": "33", "parent": "1", "on_disk": "1"}),
        ),
        3 => (
            "pack/tripline-common/listening_ports",
            json!({"pid": "812", "port": "443", "protocol": "6", "address": "0.0.0.0", "path": "/usr/sbin/nginx"}),
        ),
        4 => (
            "pack/tripline-linux/crontab",
            json!({"event": "", "minute": "17", "hour": "*", "command": "cd / && run-parts --report /etc/cron.hourly",
                   "path": "/etc/crontab"}),
        ),
        5 => (
            "pack/tripline-common/shell_history",
            json!({"uid": "1000", "username": "deploy", "time": "0", "command": format!("git pull origin main && make -j{}", i % 8),
                   "history_file": "/home/deploy/.bash_history"}),
        ),
        6 => (
            "pack/tripline-common/logged_in_users",
            json!({"type": "user", "user": "deploy", "tty": "pts/0", "host": "10.1.2.3", "time": "1714564000", "pid": "4242"}),
        ),
        7 => (
            "pack/tripline-linux/deb_packages",
            json!({"name": "openssl", "version": "3.0.2-0ubuntu1.15", "source": "openssl", "arch": "amd64"}),
        ),
        8 => (
            "pack/tripline-common/osquery_info",
            json!({"version": "5.13.1", "build_platform": "ubuntu", "config_hash": "abc", "instance_id": "x", "pid": "77"}),
        ),
        _ => (
            "pack/tripline-common/process_open_sockets",
            json!({"pid": "812", "fd": "12", "family": "2", "protocol": "6", "local_address": "10.0.0.5",
                   "remote_address": "10.0.3.9", "local_port": 443, "remote_port": 51234, "path": "/usr/sbin/nginx"}),
        ),
    };
    TestEvent {
        name: Some(name.to_string()),
        host: Some(host),
        columns: columns.as_object().cloned().unwrap_or_default(),
        ..TestEvent::default()
    }
}

fn workload() -> Vec<Event> {
    let mut matching = Vec::new();
    let mut negatives = Vec::new();
    for (file, text) in builtin::RULE_TESTS {
        let Ok(f) = yaml_serde::from_str::<TestFile>(text) else {
            continue;
        };
        for (i, te) in f.positive.iter().enumerate() {
            if let Ok(e) = te.to_event(&format!("{file}#p{i}")) {
                matching.push(e);
            }
        }
        for (i, te) in f.negative.iter().enumerate() {
            if let Ok(e) = te.to_event(&format!("{file}#n{i}")) {
                negatives.push(e);
            }
        }
    }
    assert!(!matching.is_empty(), "built-in rule tests are missing");
    let mut events = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        let e = if i % 100 < MATCHING_PERCENT {
            matching[i % matching.len()].clone()
        } else if i % 10 == 9 && !negatives.is_empty() {
            // Near misses: the rules' own negative examples.
            negatives[i % negatives.len()].clone()
        } else {
            benign(i)
                .to_event(&format!("benign#{i}"))
                .expect("valid benign event")
        };
        events.push(e);
    }
    events
}

fn bench(c: &mut Criterion) {
    let rules = Arc::new(RuleSet::builtin().expect("built-in rules load"));
    let mapper = Arc::new(Mapper::builtin().expect("built-in mappings load"));
    let config = Arc::new(Config::default());
    let events = workload();

    // Report the mix once, so the numbers can be read against it.
    let mut probe = Detector::new(
        Arc::clone(&rules),
        Some(Arc::clone(&mapper)),
        Arc::clone(&config),
    );
    let fired = events
        .iter()
        .filter(|e| !probe.observe(&mut (*e).clone()).is_empty())
        .count();
    let report = probe.finish();
    eprintln!(
        "rules bench: {} rules, {} events, {} ({:.1}%) match at least one rule, {} alerts",
        rules.len(),
        events.len(),
        fired,
        100.0 * fired as f64 / events.len() as f64,
        report.alerts.len()
    );

    let mut g = c.benchmark_group("detector");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(20);
    g.bench_function("observe", |b| {
        b.iter_batched(
            || {
                (
                    Detector::new(
                        Arc::clone(&rules),
                        Some(Arc::clone(&mapper)),
                        Arc::clone(&config),
                    ),
                    events.clone(),
                )
            },
            |(mut det, evs)| {
                for mut e in evs {
                    black_box(det.observe(&mut e));
                }
                black_box(det.finish())
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let derived: Vec<Derived> = events.iter().map(|e| derive(e, &config)).collect();
    let json_views: Vec<Value> = events
        .iter()
        .zip(&derived)
        .map(|(e, d)| eval_view(e, d))
        .collect();
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(20);
    g.bench_function("matching", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for (e, d) in events.iter().zip(&derived) {
                n += rules.matching(&EventView::new(e, d)).len();
            }
            black_box(n)
        })
    });
    g.bench_function("matching_json_view", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for v in &json_views {
                n += rules.matching(&JsonEvent::borrow(v)).len();
            }
            black_box(n)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("prepare");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(20);
    g.bench_function("derive", |b| {
        b.iter(|| {
            for e in &events {
                black_box(derive(e, &config));
            }
        })
    });
    g.bench_function("json_view", |b| {
        b.iter(|| {
            for (e, d) in events.iter().zip(&derived) {
                black_box(eval_view(e, d));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
