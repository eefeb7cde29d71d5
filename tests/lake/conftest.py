"""Fixtures for the lake tests: the real `tripline` binary's output over the sample logs.

`tripline parse` writes the normalized events and quarantine entries the parse function
stores, and `tripline scan --format ndjson` the alerts the detect function stores; every
test here reads those, so what the Splunk app and the Athena queries name is checked
against what the code writes, not against a hand-kept list.
"""

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def tripline_bin() -> Path:
    path = Path(os.environ.get("TRIPLINE_BIN", ROOT / "target" / "debug" / "tripline"))
    if not path.is_file():
        pytest.fail(f"{path} not found: build it first (cargo build -p tripline)")
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(tripline_bin()), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def read_lines(path: Path) -> list:
    """NDJSON lines of `path` (plain or .gz), parsed. (zstd objects are read by DuckDB.)"""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


class Lake:
    """What the pipeline writes for the samples, as files and as parsed lines."""

    def __init__(self, root: Path):
        self.root = root
        # normalized/ (zstd, as deployed by default; gzip, as for Splunk) and quarantine/.
        self.zstd = root / "zstd"
        self.gzip = root / "gzip"
        self.broken = root / "broken"
        for out, codec, logs in [
            (self.zstd, "zstd", "events/osquery"),
            (self.gzip, "gzip", "events/osquery"),
            (self.broken, "gzip", "events/broken"),
        ]:
            done = run("parse", logs, "--output", str(out), "--compression", codec)
            # The broken logs end in damage (exit 0 or 2); nothing else may fail.
            assert done.returncode in (0, 2), done.stderr
            assert "records=" in done.stderr, done.stderr
        scan = run("scan", "events/osquery", "--format", "ndjson")
        assert scan.returncode == 0, scan.stderr
        self.alerts_file = root / "alerts.ndjson"
        self.alerts_file.write_text(scan.stdout)

        self.event_files = sorted(self.zstd.rglob("*.ndjson.zst"))
        self.gzip_event_files = sorted(self.gzip.rglob("*.ndjson.gz"))
        self.quarantine_files = [
            p
            for p in [self.zstd / "quarantine.ndjson", self.broken / "quarantine.ndjson"]
            if p.exists()
        ]
        self.events = [e for p in self.gzip_event_files for e in read_lines(p)]
        self.alerts = read_lines(self.alerts_file)
        self.quarantine = [q for p in self.quarantine_files for q in read_lines(p)]
        assert self.event_files and self.events, "tripline parse wrote no events"
        assert self.alerts, "tripline scan found no alerts in the samples"
        assert self.quarantine, "no quarantine entries from events/broken"


@pytest.fixture(scope="session")
def lake(tmp_path_factory) -> Lake:
    return Lake(tmp_path_factory.mktemp("lake"))


def field_paths(value, prefix="", into=None) -> set:
    """Every field path of a JSON value, as Splunk's JSON extraction names them: nested keys
    joined with '.', arrays as '{}' (`attack{}.tactics{}`). Objects and arrays are paths too."""
    into = set() if into is None else into
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else k
            into.add(path)
            field_paths(v, path, into)
    elif isinstance(value, list):
        path = f"{prefix}{{}}"
        into.add(path)
        for v in value:
            field_paths(v, path, into)
    return into


@pytest.fixture(scope="session")
def contract(lake) -> dict:
    """Field paths by kind of object, from the real output."""
    out = {"event": set(), "alert": set(), "quarantine": set()}
    for e in lake.events:
        field_paths(e, into=out["event"])
    for a in lake.alerts:
        field_paths(a, into=out["alert"])
    for q in lake.quarantine:
        field_paths(q, into=out["quarantine"])
    return out
