//! `tripline parse` as a user runs it: the real binary over the bundled fixtures.

mod common;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::tempdir;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tripline(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn ndjson(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Parses `key=value` pairs of the summary line into numbers.
fn summary(stderr: &[u8]) -> std::collections::HashMap<String, u64> {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .find(|l| l.starts_with("tripline parse:"))
        .unwrap_or_else(|| panic!("no summary in {text}"));
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

#[test]
fn every_shape_fixture_decodes_and_counts_add_up() {
    let out = tripline(
        &[
            "parse",
            "events/osquery/shapes-native.log",
            "events/osquery/shapes-firehose.json.gz",
            "events/osquery/shapes-kinesis-concatenated",
            "events/osquery/shapes-fleet.json",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = ndjson(&out.stdout);
    let s = summary(&out.stderr);
    assert_eq!(s["quarantined"], 0);
    assert_eq!(s["events"], events.len() as u64);
    assert_eq!(s["objects"], 4);
    // Firehose form and Kinesis-concatenated form hold the same records.
    let of = |path: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|e| e["source"]["path"].as_str().unwrap().ends_with(path))
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut().unwrap().remove("source");
                e
            })
            .collect()
    };
    assert_eq!(
        of("shapes-firehose.json.gz"),
        of("shapes-kinesis-concatenated")
    );
    assert!(!of("shapes-firehose.json.gz").is_empty());
    // Every documented field is present on a result row.
    let e = events
        .iter()
        .find(|e| e["query"] == "listening_ports")
        .expect("listening_ports row");
    for field in [
        "kind",
        "name",
        "pack",
        "query",
        "host",
        "action",
        "columns",
        "decorations",
        "time",
        "epoch",
        "counter",
        "numerics",
        "source",
        "id",
        "indicators",
    ] {
        assert!(e.get(field).is_some(), "missing {field} in {e}");
    }
    assert_eq!(e["pack"], "tripline-linux");
    assert_eq!(e["action"], "snapshot");
    assert_eq!(e["time"], "2026-11-20T08:00:02Z");
    let usb: Vec<_> = events
        .iter()
        .filter(|e| e["query"] == "All USB devices")
        .collect();
    assert_eq!(usb.len(), 2);
    assert!(usb
        .iter()
        .all(|e| e["pack"] == "Global" && e["action"] == "snapshot"));
    let login = events
        .iter()
        .find(|e| e["query"] == "logged_in_users")
        .unwrap();
    assert_eq!(login["indicators"]["ip"][0], "198.51.100.23");
    assert_eq!(login["indicators"]["user"][0], "alice");
}

#[test]
fn stdin_gzip_and_damaged_objects_are_reported_not_fatal() {
    let gz = std::fs::read(repo().join("events/broken/truncated.gz")).unwrap();
    let out = tripline(&["parse", "-"], Some(&gz));
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("corrupt or truncated gzip"), "{stderr}");
    let s = summary(&out.stderr);
    assert!(s["events"] > 10);
    assert_eq!(s["records"], s["decoded"] + s["quarantined"]);
    assert_eq!(s["events"], ndjson(&out.stdout).len() as u64);
    assert_eq!(s["object_errors"], 1);
}

#[test]
fn output_dir_gets_compressed_ndjson_and_a_quarantine_file() {
    let dir = tempdir("parse");
    let out = tripline(
        &[
            "parse",
            "events/osquery",
            "events/broken",
            "--output",
            dir.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    // zstd by default; the same lines with --compression gzip.
    let zst = dir.join("osquery/shapes-native.log.ndjson.zst");
    let mut text = String::new();
    let file = std::io::BufReader::new(std::fs::File::open(&zst).unwrap());
    tripline_core::compress::Codec::Zstd
        .decoder(file)
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text.lines().count(), 10);
    let gz_dir = tempdir("parse");
    let gzip = [
        "parse",
        "events/osquery/shapes-native.log",
        "--compression",
        "gzip",
        "--output",
        gz_dir.to_str().unwrap(),
    ];
    assert!(tripline(&gzip, None).status.success());
    let gz = gz_dir.join("shapes-native.log.ndjson.gz");
    let mut gz_text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap())
        .read_to_string(&mut gz_text)
        .unwrap();
    assert_eq!(gz_text, text);
    std::fs::remove_dir_all(gz_dir).unwrap();
    let bad = tripline(&["parse", "events/osquery", "--compression", "lz4"], None);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("lz4"));
    let quarantine = std::fs::read(dir.join("quarantine.ndjson")).unwrap();
    let q = ndjson(&quarantine);
    let s = summary(&out.stderr);
    // The records' entries, and one for the cut gzip object itself (record 0).
    assert_eq!(q.len() as u64, s["quarantined"] + s["objects_quarantined"]);
    assert_eq!(s["objects_quarantined"], 1);
    assert!(q
        .iter()
        .any(|q| q["reason"].as_str().unwrap().starts_with("not JSON")));
    let (objects, records): (Vec<_>, Vec<_>) = q.iter().partition(|q| q.get("object").is_some());
    assert!(records
        .iter()
        .all(|q| q["source"]["record"].as_u64().unwrap() >= 1 && q["raw"].is_string()));
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["reason"], "gzip_truncated");
    assert_eq!(objects[0]["source"]["record"], 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn record_limit_is_configurable() {
    let out = tripline(
        &[
            "parse",
            "--max-record-bytes",
            "200",
            "events/osquery/shapes-native.log",
        ],
        None,
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exceeds the 200-byte limit"), "{stderr}");
    let s = summary(&out.stderr);
    assert!(s["quarantined"] > 0);
    assert_eq!(s["records"], 8);
}

#[test]
fn usage_and_missing_paths_exit_2_with_one_line() {
    let out = tripline(&["parse", "no/such/file.gz"], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no/such/file.gz"));
    let out = tripline(&["parse"], None);
    assert_eq!(out.status.code(), Some(2));
    let out = tripline(&["parse", "--bogus", "x"], None);
    assert_eq!(out.status.code(), Some(2));
}

/// A fleet's own query definitions, as a user keeps them: an osquery config with a private
/// pack by path, and Fleet YAML.
fn query_files(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("secops.conf"),
        r#"{"queries": {"conns": {"query": "SELECT p.name, p.cmdline, s.remote_address, s.remote_port FROM process_open_sockets s JOIN processes p USING (pid)", "interval": 60}}}"#,
    )
    .unwrap();
    let conf = dir.join("osquery.conf");
    std::fs::write(
        &conf,
        r#"{"schedule": {"weird": {"query": "SELEKT nonsense"}}, "packs": {"secops": "/etc/osquery/packs/secops.conf"}}"#,
    )
    .unwrap();
    let fleet = dir.join("fleet.yml");
    std::fs::write(
        &fleet,
        "apiVersion: v1\nkind: query\nspec:\n  name: Daily cron review\n  query: SELECT * FROM crontab WHERE command LIKE '%curl%'\n",
    )
    .unwrap();
    (conf, fleet)
}

#[test]
fn queries_files_name_each_rows_tables() {
    let dir = std::env::temp_dir().join(format!("tripline-queries-{}", std::process::id()));
    let (conf, fleet) = query_files(&dir);
    let input = concat!(
        r#"{"name":"pack_secops_conns","hostIdentifier":"h1","unixTime":1700000000,"action":"added","columns":{"name":"bash","cmdline":"bash -i","remote_address":"203.0.113.9","remote_port":"4444"}}"#,
        "\n",
        r#"{"name":"pack/Global/Daily cron review","hostIdentifier":"h2","unixTime":1700000000,"action":"added","columns":{"command":"curl x | sh","minute":"*"}}"#,
        "\n",
        r#"{"name":"weird","hostIdentifier":"h3","unixTime":1700000000,"action":"added","columns":{"alias_a":"1"}}"#,
        "\n",
    );
    let out = tripline(
        &[
            "parse",
            "-",
            "--queries",
            conf.to_str().unwrap(),
            "--queries",
            fleet.to_str().unwrap(),
        ],
        Some(input.as_bytes()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let events = ndjson(&out.stdout);
    let tables = |i: usize| {
        (
            events[i]["tables"].clone(),
            events[i]["tables_from"].clone(),
        )
    };
    // The private pack's name splits (its pack is defined) and its SQL names the tables,
    // the one the row's columns come from most first.
    assert_eq!(events[0]["pack"], "secops");
    assert_eq!(
        tables(0),
        (
            serde_json::json!(["process_open_sockets", "processes"]),
            "sql".into()
        )
    );
    assert_eq!(tables(1), (serde_json::json!(["crontab"]), "sql".into()));
    // SQL the parser can't read: a warning naming file and query, and column inference.
    assert!(
        stderr.contains("warning") && stderr.contains("\"weird\""),
        "{stderr}"
    );
    assert_eq!(tables(2), (serde_json::json!([]), Value::Null));
    assert_eq!(summary(&out.stderr)["tables_unknown"], 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_broken_query_file_is_an_error_naming_file_and_query() {
    let dir = std::env::temp_dir().join(format!("tripline-badq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.conf");
    std::fs::write(&bad, r#"{"schedule": {"no_sql": {"interval": 60}}}"#).unwrap();
    let out = tripline(
        &["parse", "-", "--queries", bad.to_str().unwrap()],
        Some(b""),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.conf") && stderr.contains("\"no_sql\""),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Objects that are not osquery, as they turn up in a raw prefix: a blob that merely starts
/// with gzip's magic bytes, a PNG, a CSV export, an empty file; and one good object.
fn foreign_objects(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    let mut x = 0x243f_6a88_85a3_08d3u64;
    while png.len() < 64 << 10 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        png.extend_from_slice(&x.to_le_bytes());
    }
    let files: [(&str, Vec<u8>); 4] = [
        ("blob.gz", b"\x1f\x8b but not gzip\n".to_vec()),
        ("image.png", png),
        (
            "export.csv",
            "host,pid\nweb-1,42\n".repeat(500).into_bytes(),
        ),
        ("empty.log", Vec::new()),
    ];
    let mut paths: Vec<PathBuf> = files
        .into_iter()
        .map(|(name, bytes)| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect();
    paths.push(repo().join("events/osquery/shapes-native.log"));
    paths
}

#[test]
fn each_object_that_is_not_osquery_leaves_one_quarantine_entry() {
    let dir = tempdir("parse");
    let paths = foreign_objects(&dir.join("in"));
    let out_dir = dir.join("out");
    let mut args = vec!["parse", "--output", out_dir.to_str().unwrap()];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    let out = tripline(&args, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let s = summary(&out.stderr);
    let q = ndjson(&std::fs::read(out_dir.join("quarantine.ndjson")).unwrap());
    // One entry per foreign object, not one per line of the PNG or the CSV; the good
    // object adds none, and its records are all there is.
    let reasons: Vec<(&str, &str)> = q
        .iter()
        .map(|q| {
            let path = q["source"]["path"].as_str().unwrap();
            (
                &path[path.rfind('/').unwrap() + 1..],
                q["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("blob.gz", "gzip_corrupt"),
            ("image.png", "not_osquery"),
            ("export.csv", "not_osquery"),
            ("empty.log", "empty"),
        ]
    );
    assert!(q.iter().all(|q| q["source"]["record"] == 0));
    assert_eq!((s["objects_quarantined"], s["quarantined"]), (4, 0));
    assert_eq!(s["records"], s["decoded"] + s["quarantined"]);
    assert_eq!(s["records"], 8, "the good object's records only");
    assert_eq!(q[0]["object"]["offset"], 0);
    assert!(q[0]["object"]["compressed_offset"].as_u64().is_some());
    assert_eq!(q[2]["object"]["lines"], 1000);
    assert!(q[1]["object"]["message"]
        .as_str()
        .unwrap()
        .contains("magic bytes of PNG"));
    // The foreign objects' normalized outputs hold nothing.
    for name in ["image.png", "export.csv"] {
        let path = out_dir.join(format!("{name}.ndjson.zst"));
        let mut text = String::new();
        tripline_core::compress::Codec::Zstd
            .decoder(std::io::BufReader::new(std::fs::File::open(&path).unwrap()))
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "", "{name}");
    }

    // Without a quarantine file, each object's entry is one line on stderr.
    let mut args = vec!["parse"];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    let out = tripline(&args, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let as_a_whole: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("as a whole"))
        .collect();
    assert_eq!(as_a_whole.len(), 4, "{stderr}");
    assert!(
        as_a_whole[1].contains("image.png as a whole: not_osquery: no record in the object"),
        "{stderr}"
    );
    assert_eq!(
        ndjson(&out.stdout).len() as u64,
        summary(&out.stderr)["events"]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_gzip_magic_blob_on_stdin_is_quarantined_as_a_whole() {
    let out = tripline(
        &["parse", "-"],
        Some(b"\x1f\x8b\x08\x00 and then nothing like gzip"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "quarantined - as a whole: gzip_corrupt: corrupt gzip after 0 decompressed bytes"
        ),
        "{stderr}"
    );
    let s = summary(&out.stderr);
    assert_eq!(
        (s["records"], s["objects_quarantined"], s["object_errors"]),
        (0, 1, 1)
    );
    assert!(out.stdout.is_empty());
}
