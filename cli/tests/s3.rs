//! `tripline parse` and `scan` over `s3://bucket/prefix`: the real binary against a real moto
//! server (one per test), found through `AWS_ENDPOINT_URL` with dummy credentials, as a user
//! points it at a day of the lake. The same objects are also written to a local directory,
//! and what the binary makes of the two must agree.

mod common;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass;
use common::{repo, tempdir};
use serde_json::Value;
use tripline_aws::testing::MotoServer;

const BUCKET: &str = "lake";
const PREFIX: &str = "raw/2026/11/22/";

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("events/osquery").join(name)).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The objects of the day, by key under [`PREFIX`]: osquery samples (some gzip), a PNG, and
/// a gzip whose bytes were damaged in the middle. Keys are listed in this order.
fn day() -> Vec<(&'static str, Vec<u8>)> {
    // Two gzip members, as Firehose concatenates them; the second damaged in its middle,
    // so the first member's records come out before the damage.
    let mut damaged = gzip(&sample("shapes-native.log"));
    let mut second = gzip(&sample("attack-linux.ndjson"));
    let middle = second.len() / 2;
    for b in &mut second[middle..middle + 64] {
        *b ^= 0x5a;
    }
    damaged.extend(second);
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    png.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    vec![
        (
            "00/attack-linux.ndjson.gz",
            gzip(&sample("attack-linux.ndjson")),
        ),
        ("01/attack-macos.ndjson", sample("attack-macos.ndjson")),
        ("02/image.png", png),
        (
            "03/renamed-fleet.ndjson.gz",
            gzip(&sample("renamed-fleet.ndjson")),
        ),
        ("04/damaged.gz", damaged),
        (
            "05/shapes-firehose.json.gz",
            sample("shapes-firehose.json.gz"),
        ),
    ]
}

/// A moto server with [`BUCKET`], and a runtime to drive the uploads.
struct Lake {
    moto: MotoServer,
    runtime: tokio::runtime::Runtime,
    s3: aws_sdk_s3::Client,
}

impl Lake {
    fn new() -> Self {
        let moto = MotoServer::start();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let s3 = runtime.block_on(async {
            let s3 = tripline_aws::clients::s3(&moto.sdk_config().await);
            s3.create_bucket().bucket(BUCKET).send().await.unwrap();
            s3
        });
        Lake { moto, runtime, s3 }
    }

    fn put(&self, key: &str, body: Vec<u8>, class: Option<StorageClass>) {
        self.runtime.block_on(async {
            self.s3
                .put_object()
                .bucket(BUCKET)
                .key(key)
                .set_storage_class(class)
                .body(ByteStream::from(body))
                .send()
                .await
                .unwrap();
        });
    }

    /// [`day`] under [`PREFIX`] and in `dir`, a folder marker, and an object of the next
    /// day (which a scan of this day must not read).
    fn with_day(self, dir: &Path) -> Self {
        for (name, body) in day() {
            self.put(&format!("{PREFIX}{name}"), body.clone(), None);
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        self.put(PREFIX, Vec::new(), None);
        self.put(
            "raw/2026/11/23/00/next-day.ndjson",
            sample("attack-linux.ndjson"),
            None,
        );
        self
    }

    /// The binary with only the AWS settings given here: the moto endpoint, dummy
    /// credentials, a region, no profile files and no instance metadata.
    fn tripline(&self, args: &[&str]) -> Output {
        self.tripline_env(args, &[])
    }

    fn tripline_env(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tripline"));
        cmd.args(args)
            .current_dir(repo())
            .env_clear()
            .env("AWS_ENDPOINT_URL", self.moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.output().expect("run tripline")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ndjson(bytes: &[u8]) -> Vec<Value> {
    text(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `key=value` numbers of the summary line that starts with `start`.
fn summary(out: &Output, start: &str) -> std::collections::HashMap<String, u64> {
    let err = text(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no summary in {err}"));
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

/// `value` without its `source` members at any depth (where the record came from: a path
/// locally, bucket and key on S3), for comparing what was made of the same bytes.
fn without_source(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| *k != "source")
                .map(|(k, v)| (k.clone(), without_source(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_source).collect()),
        other => other.clone(),
    }
}

#[test]
fn scan_of_a_prefix_finds_what_a_scan_of_the_same_files_finds() {
    let dir = tempdir("s3");
    let local = dir.join("day");
    let lake = Lake::new().with_day(&local);
    let url = format!("s3://{BUCKET}/{PREFIX}");
    let (q_s3, q_local) = (dir.join("q-s3.ndjson"), dir.join("q-local.ndjson"));
    let args = |q: &Path, input: &str| -> Vec<String> {
        [
            "scan",
            "--format",
            "ndjson",
            "--quarantine",
            q.to_str().unwrap(),
            input,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let on_s3 = lake.tripline(
        &args(&q_s3, &url)
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
    );
    let on_disk = lake.tripline(
        &args(&q_local, local.to_str().unwrap())
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
    );
    assert!(on_s3.status.success(), "{}", text(&on_s3.stderr));
    assert!(on_disk.status.success(), "{}", text(&on_disk.stderr));

    // The same alerts, with the same ids, and the same counts.
    let (alerts_s3, alerts_local) = (ndjson(&on_s3.stdout), ndjson(&on_disk.stdout));
    let ids = |alerts: &[Value]| -> Vec<String> {
        let mut ids: Vec<String> = alerts.iter().map(|a| a["id"].to_string()).collect();
        ids.sort();
        ids
    };
    assert!(alerts_s3.len() >= 10, "{}", text(&on_s3.stderr));
    assert_eq!(ids(&alerts_s3), ids(&alerts_local));
    assert_eq!(
        alerts_s3.iter().map(without_source).collect::<Vec<_>>(),
        alerts_local.iter().map(without_source).collect::<Vec<_>>()
    );
    let (s_s3, s_local) = (
        summary(&on_s3, "tripline scan: records="),
        summary(&on_disk, "tripline scan: records="),
    );
    assert_eq!(s_s3, s_local);
    assert_eq!(s_s3["objects_quarantined"], 2);

    // Two object entries (the PNG, the damaged gzip), named by bucket and key, with the
    // local run's reasons; every entry in key order.
    let (q_s3, q_local) = (
        ndjson(&std::fs::read(q_s3).unwrap()),
        ndjson(&std::fs::read(q_local).unwrap()),
    );
    assert_eq!(
        q_s3.len() as u64,
        s_s3["quarantined"] + s_s3["objects_quarantined"]
    );
    let objects: Vec<(&str, &str, &str)> = q_s3
        .iter()
        .filter(|q| q.get("object").is_some())
        .map(|q| {
            (
                q["source"]["bucket"].as_str().unwrap(),
                q["source"]["key"].as_str().unwrap(),
                q["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        objects,
        [
            (BUCKET, "raw/2026/11/22/02/image.png", "not_osquery"),
            (BUCKET, "raw/2026/11/22/04/damaged.gz", "gzip_corrupt"),
        ]
    );
    for q in q_s3.iter().filter(|q| q.get("object").is_some()) {
        assert!(!q["object"]["message"].as_str().unwrap().is_empty(), "{q}");
        assert_eq!(q["source"]["record"], 0);
        assert!(q["source"].get("path").is_none(), "{q}");
    }
    let keys: Vec<&str> = q_s3
        .iter()
        .map(|q| q["source"]["key"].as_str().unwrap())
        .collect();
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{keys:?}");
    assert_eq!(
        q_s3.iter().map(without_source).collect::<Vec<_>>(),
        q_local.iter().map(without_source).collect::<Vec<_>>()
    );
    for (s3, local) in q_s3.iter().zip(&q_local) {
        let key = s3["source"]["key"].as_str().unwrap();
        let path = local["source"]["path"].as_str().unwrap();
        assert!(
            path.ends_with(key.strip_prefix(PREFIX).unwrap()),
            "{key} vs {path}"
        );
        assert_eq!(s3["source"]["record"], local["source"]["record"]);
    }
}

#[test]
fn parse_of_a_prefix_streams_each_object_in_key_order_with_bucket_and_key() {
    let dir = tempdir("s3");
    let local = dir.join("day");
    let lake = Lake::new().with_day(&local);
    let url = format!("s3://{BUCKET}/{PREFIX}");
    let out = lake.tripline(&["parse", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = ndjson(&out.stdout);
    let s = summary(&out, "tripline parse: objects=");
    assert_eq!(
        s["objects"],
        day().len() as u64,
        "the next day and the folder marker are not read"
    );
    assert_eq!(events.len() as u64, s["events"]);

    let keys: Vec<&str> = events
        .iter()
        .map(|e| {
            assert_eq!(e["source"]["bucket"], BUCKET, "{e}");
            assert!(e["source"].get("path").is_none(), "{e}");
            e["source"]["key"].as_str().unwrap()
        })
        .collect();
    let mut seen: Vec<&str> = keys.clone();
    seen.dedup();
    assert_eq!(
        seen,
        [
            "raw/2026/11/22/00/attack-linux.ndjson.gz",
            "raw/2026/11/22/01/attack-macos.ndjson",
            "raw/2026/11/22/03/renamed-fleet.ndjson.gz",
            "raw/2026/11/22/04/damaged.gz",
            "raw/2026/11/22/05/shapes-firehose.json.gz",
        ],
        "each object once, whole, in key order"
    );

    // The same events as from the files, record for record.
    let on_disk = lake.tripline(&["parse", local.to_str().unwrap()]);
    let local_events = ndjson(&on_disk.stdout);
    assert_eq!(
        events.iter().map(without_source).collect::<Vec<_>>(),
        local_events.iter().map(without_source).collect::<Vec<_>>()
    );

    // --output names each object's file by its key after the prefix.
    let out_dir = dir.join("out");
    let out = lake.tripline(&["parse", &url, "--output", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for name in [
        "00/attack-linux.ndjson.gz.ndjson.zst",
        "01/attack-macos.ndjson.ndjson.zst",
        "05/shapes-firehose.json.gz.ndjson.zst",
        "quarantine.ndjson",
    ] {
        assert!(out_dir.join(name).is_file(), "{name}");
    }

    // One object named by its key: that object alone, not the keys that start with it.
    lake.put(
        "raw/2026/11/22/01/attack-macos.ndjson.bak",
        b"{}\n".to_vec(),
        None,
    );
    let one = format!("s3://{BUCKET}/raw/2026/11/22/01/attack-macos.ndjson");
    let out = lake.tripline(&["parse", &one]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = summary(&out, "tripline parse: objects=");
    assert_eq!((s["objects"], s["quarantined"]), (1, 0));
    assert!(ndjson(&out.stdout)
        .iter()
        .all(|e| e["source"]["key"] == "raw/2026/11/22/01/attack-macos.ndjson"));
}

#[test]
fn an_object_that_cannot_be_read_is_quarantined_and_the_others_are_read() {
    let dir = tempdir("s3");
    let lake = Lake::new();
    let linux = sample("attack-linux.ndjson");
    lake.put("raw/a.ndjson", linux.clone(), None);
    // Archived to Glacier: listed, but GetObject refuses it (InvalidObjectState).
    lake.put("raw/b.ndjson.gz", gzip(&linux), Some(StorageClass::Glacier));
    lake.put("raw/c.ndjson", sample("attack-macos.ndjson"), None);
    let q = dir.join("q.ndjson");
    let out = lake.tripline(&[
        "scan",
        "--format",
        "json",
        "--quarantine",
        q.to_str().unwrap(),
        "s3://lake/raw/",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unread object is an I/O error: {stderr}"
    );
    assert!(
        stderr.contains("tripline: s3://lake/raw/b.ndjson.gz: read failed: GetObject s3://lake/raw/b.ndjson.gz: InvalidObjectState"),
        "{stderr}"
    );
    let s = summary(&out, "tripline scan: records=");
    assert_eq!(s["objects_quarantined"], 1);
    let entries = ndjson(&std::fs::read(&q).unwrap());
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e["reason"], "read_failed");
    assert_eq!(e["source"]["bucket"], "lake");
    assert_eq!(e["source"]["key"], "raw/b.ndjson.gz");
    assert_eq!(e["source"]["record"], 0);
    let message = e["object"]["message"].as_str().unwrap();
    assert!(
        message.contains("InvalidObjectState") && message.contains("after 0 of"),
        "{message}"
    );

    // The objects around it were read whole: their records, and their alerts.
    let only = |key: &str| {
        let out = lake.tripline(&["scan", "--format", "json", &format!("s3://lake/{key}")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        summary(&out, "tripline scan: records=")["records"]
    };
    assert_eq!(s["records"], only("raw/a.ndjson") + only("raw/c.ndjson"));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts: std::collections::BTreeSet<String> = report["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["hosts"].as_array().unwrap().iter())
        .map(|h| h.as_str().unwrap().to_owned())
        .collect();
    assert!(
        hosts.len() >= 2,
        "alerts from both readable objects: {hosts:?}"
    );
}

#[test]
fn listing_failures_are_one_line_and_exit_2_before_any_output() {
    let lake = Lake::new();
    lake.put("raw/a.ndjson", sample("attack-linux.ndjson"), None);

    let out = lake.tripline(&["scan", "s3://no-such-bucket/raw/"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr.trim_end(),
        "tripline: ListObjectsV2 s3://no-such-bucket/raw/: NoSuchBucket: The specified bucket does not exist"
    );

    let out = lake.tripline(&["parse", "s3://lake/raw/2026/"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr).trim_end(),
        "tripline: s3://lake/raw/2026/: no objects under this prefix"
    );

    // No credentials anywhere in the chain.
    let out = lake.tripline_env(
        &["scan", "s3://lake/raw/"],
        &[("AWS_ACCESS_KEY_ID", None), ("AWS_SECRET_ACCESS_KEY", None)],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("tripline: s3://lake/raw/: no AWS credentials found")
            && stderr.contains("AWS_PROFILE"),
        "{stderr}"
    );

    // A file and an object together: the missing bucket still stops the run first.
    let out = lake.tripline(&["parse", "events/osquery", "s3://no-such-bucket/"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn without_a_region_it_says_which_it_uses() {
    let lake = Lake::new();
    lake.put("raw/a.ndjson", sample("attack-macos.ndjson"), None);
    let out = lake.tripline_env(
        &["parse", "s3://lake/raw/"],
        &[("AWS_REGION", None), ("AWS_DEFAULT_REGION", None)],
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.starts_with("tripline: no AWS region configured (AWS_REGION or a profile's region): using us-east-1\n"),
        "{stderr}"
    );
    assert!(!out.stdout.is_empty());
}

/// `report` over a prefix: the same page data as over the same files, the unreadable
/// objects counted in its parse accounting.
#[test]
fn report_of_a_prefix_shows_what_a_report_of_the_same_files_shows() {
    let dir = tempdir("s3");
    let local = dir.join("day");
    let lake = Lake::new().with_day(&local);
    let url = format!("s3://{BUCKET}/{PREFIX}");
    let run = |input: &str, name: &str| -> (Value, String) {
        let (page, layer) = (
            dir.join(format!("{name}.html")),
            dir.join(format!("{name}.json")),
        );
        let out = lake.tripline(&[
            "report",
            "--out",
            page.to_str().unwrap(),
            "--layer",
            layer.to_str().unwrap(),
            "--quarantine",
            dir.join(format!("{name}-q.ndjson")).to_str().unwrap(),
            input,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let layer: Value = serde_json::from_slice(&std::fs::read(layer).unwrap()).unwrap();
        (layer, std::fs::read_to_string(page).unwrap())
    };
    let (layer_s3, page_s3) = run(&url, "s3");
    let (layer_local, _) = run(local.to_str().unwrap(), "local");
    assert!(!layer_s3["techniques"].as_array().unwrap().is_empty());
    assert_eq!(layer_s3["techniques"], layer_local["techniques"]);
    assert!(page_s3.contains("not_osquery") && page_s3.contains("gzip_corrupt"));
}
