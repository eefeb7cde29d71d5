//! Every Navigator layer tripline writes loads in MITRE's own library: mitreattack-python's
//! `Layer` (from the venv `scripts/test` creates, `requirements-test.txt`) reads it and its
//! `to_dict()` gives back every field written (`mitre_layers.py`).

mod common;
use common::{repo, tripline_ok as tripline};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `${VENV:-<repo>/.venv}/bin/python`, which must have mitreattack-python.
fn python() -> PathBuf {
    let venv = std::env::var_os("VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv"));
    let python = venv.join("bin/python");
    let has = Command::new(&python)
        .args(["-c", "import mitreattack.navlayers"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has,
        "{} with mitreattack-python not found: run scripts/test (it creates the venv from \
         requirements-test.txt), or point VENV at a venv that has it",
        python.display()
    );
    python
}

fn check(layers: &[PathBuf]) -> Output {
    Command::new(python())
        .arg(repo().join("cli/tests/mitre_layers.py"))
        .args(layers)
        .output()
        .expect("run mitre_layers.py")
}

#[test]
fn every_layer_tripline_writes_loads_in_mitreattack_python() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("layers");
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name);
    let arg = |p: &PathBuf| p.to_str().unwrap().to_string();
    let (coverage, fleet, fired, report_layer, report) = (
        path("coverage.json"),
        path("coverage-queries.json"),
        path("fired.json"),
        path("report-fired.json"),
        path("report.html"),
    );
    tripline(&["coverage", "--layer", &arg(&coverage)]);
    tripline(&[
        "coverage",
        "--queries",
        "examples/site/queries/fleet-queries.yml",
        "--layer",
        &arg(&fleet),
    ]);
    tripline(&["scan", "events/osquery", "--layer", &arg(&fired)]);
    tripline(&[
        "report",
        "events/osquery",
        "--out",
        &arg(&report),
        "--layer",
        &arg(&report_layer),
    ]);
    let layers = [coverage, fleet, fired, report_layer];
    // The check is live: beside them, a layer with the float bounds tripline once wrote,
    // which the library refuses (one Python run for all: importing it takes seconds).
    let mut old: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&layers[2]).unwrap()).unwrap();
    old["gradient"]["minValue"] = serde_json::json!(0.0);
    old["gradient"]["maxValue"] = serde_json::json!(4.0);
    let float = path("float-gradient.json");
    std::fs::write(&float, old.to_string()).unwrap();
    let mut all = layers.to_vec();
    all.push(float.clone());
    let out = check(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let said = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for layer in &layers {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("ok {} ", layer.display())))
            .unwrap_or_else(|| panic!("{} did not load: {said}", layer.display()));
        let n: usize = line.rsplit('=').next().unwrap().parse().unwrap();
        assert!(n > 0, "{line}: a layer with techniques");
    }
    assert!(
        stdout.contains(&format!("FAIL {}: ", float.display())),
        "the float gradient was not refused: {said}"
    );
    assert_eq!(out.status.code(), Some(1), "{said}");
}
