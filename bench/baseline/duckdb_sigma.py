#!/usr/bin/env python3
"""The DuckDB baseline: our Sigma rules converted to SQL by pySigma, run over the same
normalized NDJSON that tripline's parse stage writes.

The rule logic is pySigma's: every rule in ``rules/sigma`` is converted with
``pysigma-backend-duckdb`` (``SELECT * FROM logs WHERE ...``) and run unchanged. Around it,
one generic SQL wrapper does what tripline's alerting layer does for every rule: drop
first-run rows (``counter = 0``) for rules with ``tripline.initial: false``, group matches by
the rule's ``tripline.dedup`` fields and fixed ``window``, and keep groups at or above
``threshold``. What SQL over the normalized NDJSON cannot do:

- ``derived.*`` fields are computed by the detect stage and are not in the normalized
  NDJSON, so rules that use them are skipped (listed in the output);
- ``stale`` suppression needs ``derived.stale`` and is not applied.

The ``logs`` table has one column per field the rules reference (``"columns.path"``, as the
backend quotes dotted names), extracted as text with ``json_extract_string`` (osquery's own
representation; tripline's rules also see column numbers as text). DuckDB runs with one thread
(per-core comparison, like ours). Usage::

    .venv-bench/bin/python bench/baseline/duckdb_sigma.py OBJECT.normalized.ndjson.zst

Prints one JSON line with times, counts, alerts and matches per rule, and peak RSS.
"""

import glob
import json
import os
import re
import resource
import sys
import time

import duckdb
import yaml
from sigma.collection import SigmaCollection
from sigma_backend_duckdb import DuckDBBackend

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOP = ["kind", "name", "pack", "query", "host", "action", "time", "id"]
WINDOW = re.compile(r"^(\d+)([smhd])$")
FIELD = re.compile(r'"((?:columns|decorations|derived)\.[^"]+)"')


def main():
    path = sys.argv[1]
    t0 = time.perf_counter()
    backend = DuckDBBackend()
    rules = []
    for p in sorted(glob.glob(os.path.join(ROOT, "rules", "sigma", "*.yml"))):
        text = open(p).read()
        doc = yaml.safe_load(text)
        sql = backend.convert(SigmaCollection.from_yaml(text))[0]
        rules.append((doc, sql))
    convert_s = time.perf_counter() - t0

    needed = set()
    skipped = []
    runnable = []
    for doc, sql in rules:
        fields = set(FIELD.findall(sql)) | {f for f in doc["tripline"]["dedup"] if "." in f}
        if any(f.startswith("derived.") for f in fields):
            skipped.append(doc["name"])
            continue
        needed |= fields
        runnable.append((doc, sql))

    con = duckdb.connect()
    con.execute("SET threads TO 1")
    t1 = time.perf_counter()
    extracts = []
    for f in sorted(needed):
        root, key = f.split(".", 1)
        extracts.append(f"json_extract_string({root}, '$.\"{key}\"') AS \"{f}\"")
    schema = {k: "VARCHAR" for k in TOP}
    schema.update(unix_time="BIGINT", counter="BIGINT", columns="JSON", decorations="JSON")
    con.execute(
        "CREATE TABLE logs AS SELECT " + ", ".join(TOP + ["unix_time", "counter"] + extracts)
        + " FROM read_ndjson(?, columns = " + duckdb_struct(schema) + ")",
        [path],
    )
    load_s = time.perf_counter() - t1
    events = con.execute("SELECT count(*) FROM logs").fetchone()[0]

    t2 = time.perf_counter()
    alerts_by_rule, matches_by_rule, errors = {}, {}, {}
    for doc, sql in runnable:
        spec = doc["tripline"]
        n, unit = WINDOW.match(str(spec["window"])).groups()
        window = int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
        dedup = ", ".join(f'"{f}"' for f in spec["dedup"])
        initial = "" if spec.get("initial", True) else "WHERE coalesce(counter, -1) <> 0"
        wrapped = (
            f"SELECT count(*), coalesce(sum(n), 0) FROM ("
            f" SELECT count(*) AS n FROM ({sql}) AS m {initial}"
            f" GROUP BY {dedup}, floor(unix_time / {window})"
            f" HAVING count(*) >= {int(spec.get('threshold', 1))})"
        )
        try:
            alerts, matches = con.execute(wrapped).fetchone()
        except duckdb.Error as e:
            errors[doc["name"]] = str(e).splitlines()[0][:200]
            continue
        if alerts:
            alerts_by_rule[doc["name"]] = alerts
            matches_by_rule[doc["name"]] = int(matches)
    query_s = time.perf_counter() - t2
    print(json.dumps({
        "mode": "duckdb",
        "wall_s": load_s + query_s,
        "convert_s": convert_s,
        "load_s": load_s,
        "query_s": query_s,
        "events": events,
        "rules_run": len(runnable),
        "rules_skipped_derived": skipped,
        "rule_errors": errors,
        "alerts": sum(alerts_by_rule.values()),
        "alerts_by_rule": dict(sorted(alerts_by_rule.items())),
        "matches_by_rule": dict(sorted(matches_by_rule.items())),
        "duckdb_version": duckdb.__version__,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


def duckdb_struct(d):
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in d.items()) + "}"


if __name__ == "__main__":
    main()
