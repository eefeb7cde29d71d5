//! One site directory, two front ends, the same alerts: `examples/site` uploaded to the
//! bucket's `config/` prefix (as Terraform's `site_dir` does) and read by the real parse and
//! detect binaries under `cargo lambda watch` against moto, and the same directory given to
//! `tripline scan --site`, over the same raw Firehose object. Both must raise the same alerts
//! (same ids, rules, counts, hosts and times) and suppress the same matches per filter; the
//! object holds what each part of the site acts on: a site rule's evidence, a filter's
//! known-good app next to an unknown one, an indicator from the site's IOC list.
//!
//! Needs `moto_server` and `cargo-lambda` in `${VENV:-.venv}` (`scripts/test` installs both).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use flate2::{write::GzEncoder, Compression};
use serde_json::{json, Value};
use tripline_aws::clients;
use tripline_aws::s3io::get_object_bytes;
use tripline_aws::testing::MotoServer;
use tripline_e2e::{cargo_lambda_path, repo_root, Watch};

const BUCKET: &str = "tripline-data";
const RAW_KEY: &str = "raw/2026/11/20/08/tripline-osquery-1-2026-11-20-08-00-07-5173a1b0.gz";
const PARSE: &str = "tripline-parse";
const DETECT: &str = "tripline-detect";

/// Records aimed at the example site: its rule (`acme_unsanctioned_remote_desktop`), its
/// filter (`allow_keytap_productivity_apps`: the first tap is allowed, the second is not) and
/// its IOC list.
fn site_records() -> Vec<Value> {
    let record = |name: &str, host: &str, columns: Value| {
        json!({"name": name, "hostIdentifier": host, "calendarTime": "Fri Nov 20 08:00:00 2026 UTC",
               "unixTime": 1_795_161_600, "epoch": 0, "counter": 1, "numerics": false,
               "action": "added", "columns": columns})
    };
    vec![
        record(
            "pack_incident-response_installed_applications",
            "mbp-jdoe.corp.acme.io",
            json!({"name": "AnyDesk.app", "path": "/Applications/AnyDesk.app",
                   "bundle_identifier": "com.philandro.anydesk", "bundle_name": "AnyDesk",
                   "bundle_short_version": "8.1.0"}),
        ),
        record(
            "pack/Global/keyboard_event_taps",
            "mbp-jdoe.corp.acme.io",
            json!({"path": "/Applications/BetterTouchTool.app/Contents/MacOS/BetterTouchTool",
                   "pid": "511", "name": "BetterTouchTool", "event_tapped": "EventKeyDown"}),
        ),
        record(
            "pack/Global/keyboard_event_taps",
            "mbp-kchen.corp.acme.io",
            json!({"path": "/usr/local/bin/kl", "pid": "812", "name": "kl",
                   "event_tapped": "EventKeyUp"}),
        ),
        record(
            "pack/Global/outbound_connections",
            "web-02.prod.acme.io",
            json!({"pid": "4242", "name": "python3", "path": "/usr/bin/python3",
                   "family": "2", "protocol": "6", "local_address": "10.0.3.14",
                   "local_port": "51522", "remote_address": "198.51.100.23",
                   "remote_port": "443", "state": "ESTABLISHED"}),
        ),
    ]
}

/// The raw object: the attack samples and the site's records, one JSON record a line.
fn raw_lines() -> String {
    let mut text = String::new();
    for sample in ["attack-linux.ndjson", "attack-macos.ndjson"] {
        let body =
            std::fs::read_to_string(repo_root().join("events/osquery").join(sample)).unwrap();
        text.push_str(body.trim_end());
        text.push('\n');
    }
    for r in site_records() {
        text.push_str(&r.to_string());
        text.push('\n');
    }
    text
}

fn gzip(text: &str) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// An S3 `ObjectCreated:Put` event for `key`, as S3 invokes a function with it.
fn s3_event(key: &str) -> Value {
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-20T08:05:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 1}}
    }]})
}

/// What must agree about an alert, by id.
fn summary(alerts: impl IntoIterator<Item = Value>) -> BTreeMap<String, Value> {
    alerts
        .into_iter()
        .map(|a| {
            let id = a["id"].as_str().unwrap().to_owned();
            let kept = json!({
                "rule": a["rule"]["name"], "severity": a["severity"], "title": a["title"],
                "count": a["count"], "hosts": a["hosts"], "first_seen": a["first_seen"],
                "last_seen": a["last_seen"], "attack": a["attack"], "dedup": a["dedup"],
            });
            (id, kept)
        })
        .collect()
}

/// Every file of the site directory, by its path inside it (hidden files are not part of it).
fn site_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_the_functions_raise_the_same_alerts_from_one_site_directory() {
    let site = repo_root().join("examples/site");
    let moto = MotoServer::start();
    let config = moto.sdk_config().await;
    let s3 = clients::s3(&config);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let files = site_files(&site);
    assert!(
        files.iter().any(|(p, _)| p.starts_with("iocs/")),
        "{files:?}"
    );
    for (path, body) in files {
        s3.put_object()
            .bucket(BUCKET)
            .key(format!("config/{path}"))
            .body(body.into())
            .send()
            .await
            .unwrap();
    }
    let lines = raw_lines();
    s3.put_object()
        .bucket(BUCKET)
        .key(RAW_KEY)
        .body(gzip(&lines).into())
        .send()
        .await
        .unwrap();

    // The functions, configured as the Terraform module does.
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", moto.endpoint().to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("RUST_LOG", "info".into()),
        ("TRIPLINE_BUCKET", BUCKET.into()),
        ("TRIPLINE_SITE_PREFIX", "config/".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let watch = Watch::start(&cargo_lambda_path(), &repo_root(), &env);
    watch
        .warm_up(
            &[PARSE, DETECT],
            &json!({"Records": []}),
            Duration::from_secs(25 * 60),
        )
        .await;
    let parsed = watch.invoke_ok(PARSE, &s3_event(RAW_KEY)).await;
    let listed = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("normalized/")
        .send()
        .await
        .unwrap();
    let normalized: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(normalized.len(), 1, "{parsed}");
    let detected = watch.invoke_ok(DETECT, &s3_event(&normalized[0])).await;
    assert_eq!(detected["site_error"], Value::Null, "{detected}");
    let mut function_alerts = Vec::new();
    for key in detected["written"].as_array().unwrap() {
        let body = get_object_bytes(&s3, BUCKET, key.as_str().unwrap())
            .await
            .unwrap();
        function_alerts.push(serde_json::from_slice::<Value>(&body).unwrap());
    }

    // The CLI on the same directory and the same object, as downloaded.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("site-e2e");
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join("object.gz");
    std::fs::write(&raw, gzip(&lines)).unwrap();
    let build = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--locked", "-p", "tripline"])
        .current_dir(repo_root())
        .status()
        .unwrap();
    assert!(build.success());
    let out = Command::new(repo_root().join("target/debug/tripline"))
        .arg("scan")
        .arg("--site")
        .arg(&site)
        .args(["--format", "ndjson"])
        .arg(&raw)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let cli_alerts: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let (function, cli) = (summary(function_alerts), summary(cli_alerts));
    assert_eq!(function, cli, "CLI stderr:\n{stderr}");
    let rules: Vec<&str> = function
        .values()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    for rule in [
        "acme_unsanctioned_remote_desktop",
        "osquery_ioc_match",
        "osquery_xz_backdoor",
    ] {
        assert!(rules.contains(&rule), "{rule} not raised: {rules:?}");
    }
    let taps: Vec<&Value> = function
        .values()
        .filter(|a| a["rule"] == "osquery_keyboard_event_tap")
        .collect();
    assert!(
        taps.iter()
            .all(|a| !a["hosts"].to_string().contains("mbp-jdoe")),
        "the allowed app alerted: {taps:?}"
    );
    assert!(taps
        .iter()
        .any(|a| a["hosts"].to_string().contains("mbp-kchen")));

    // The filter's count, the same on both sides.
    let suppressed = &detected["stats"]["suppressed_by_filter"]["allow_keytap_productivity_apps"];
    assert_eq!(suppressed, 1, "{detected}");
    assert!(
        stderr.contains("filter allow_keytap_productivity_apps: suppressed 1 match(es)"),
        "{stderr}"
    );
}
