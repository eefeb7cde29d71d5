"""infra/modules/tripline/athena/*.sql: each saved query of the Athena workgroup, transpiled
from Athena's (Trino) dialect to DuckDB with sqlglot and run over what tripline writes for
the samples (conftest.py), through DuckDB views named and typed like the Glue tables in
glue.tf. A query that cannot be transpiled or run fails, and so does a Glue column the data
does not have; each query's answer is compared with the same figure computed here from the
parsed lines."""

import re
from collections import Counter, defaultdict
from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from conftest import ROOT

MODULE = ROOT / "infra" / "modules" / "tripline"
SQL_DIR = MODULE / "athena"
DATABASE = "tripline"
# The hour (and day) the test objects are placed in, as partition projection reads it from
# their keys; the queries' parameters select it.
HOUR, DAY = "2026/11/22/14", "2026/11/22"


# --------------------------------------------------------------------------------------------
# glue.tf, read as far as the tables' columns.


def block(text: str, start: int) -> str:
    """The text of the `{ ... }` block whose `{` is at or after `start`."""
    open_at = text.index("{", start)
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[open_at + 1 : i]
    raise ValueError("unbalanced braces")


def glue_tables() -> dict:
    """Glue table name => [(column, hive type)] and its S3 prefix local."""
    text = (MODULE / "glue.tf").read_text()
    tables = {}
    for m in re.finditer(r'resource "aws_glue_catalog_table" "(\w+)"', text):
        body = block(text, m.end())
        name = re.search(r'^\s*name\s*=\s*"(\w+)"', body, re.M).group(1)
        columns = []
        for c in re.finditer(r"columns\s*\{", body):
            cb = block(body, c.start())
            columns.append(
                (
                    re.search(r'name\s*=\s*"([^"]+)"', cb).group(1),
                    re.search(r'type\s*=\s*"([^"]+)"', cb).group(1),
                )
            )
        location = re.search(r"location\s*=\s*\"s3://\$\{local.bucket_name\}/\$\{local.(\w+)\}\"", body)
        tables[name] = {"columns": columns, "prefix": location.group(1)}
    return tables


def split_top(text: str) -> list:
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += {"<": 1, ">": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur]


def duck_type(hive: str) -> str:
    """A Hive/Glue column type as DuckDB's."""
    hive = hive.strip()
    simple = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "boolean": "BOOLEAN", "double": "DOUBLE"}
    if hive in simple:
        return simple[hive]
    m = re.fullmatch(r"(array|map|struct)<(.*)>", hive)
    assert m, f"unknown Glue type {hive}"
    kind, inner = m.groups()
    if kind == "array":
        return duck_type(inner) + "[]"
    if kind == "map":
        k, v = split_top(inner)
        return f"MAP({duck_type(k)}, {duck_type(v)})"
    fields = []
    for f in split_top(inner):
        name, _, t = f.partition(":")
        fields.append(f'"{name}" {duck_type(t)}')
    return f"STRUCT({', '.join(fields)})"


def test_duck_type():
    assert duck_type("array<struct<id:string,tactics:array<string>>>") == 'STRUCT("id" VARCHAR, "tactics" VARCHAR[])[]'
    assert duck_type("map<string,array<string>>") == "MAP(VARCHAR, VARCHAR[])"


# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def glue() -> dict:
    tables = glue_tables()
    assert set(tables) == {"normalized", "alerts", "quarantine"}, sorted(tables)
    return tables


@pytest.fixture(scope="session")
def db(lake, glue):
    """DuckDB with a view per Glue table over the samples' output: normalized over the zstd
    objects (as deployed by default), quarantine over the quarantine files, alerts over the
    scan's alerts; each typed by glue.tf, with the partition column `dt`."""
    con = duckdb.connect()
    con.execute(f"CREATE SCHEMA {DATABASE}")
    files = {
        "normalized": lake.event_files,
        "alerts": [lake.alerts_file],
        "quarantine": lake.quarantine_files,
    }
    for name, table in glue.items():
        columns = ", ".join(f"'{c}': '{duck_type(t)}'" for c, t in table["columns"])
        paths = ", ".join(f"'{p}'" for p in files[name])
        dt = DAY if name == "alerts" else HOUR
        con.execute(
            f"CREATE VIEW {DATABASE}.{name} AS SELECT *, '{dt}' AS dt "
            f"FROM read_json([{paths}], format = 'newline_delimited', columns = {{{columns}}})"
        )
    return con


def test_every_glue_column_is_in_the_data_and_every_field_in_glue(glue, contract):
    """A Glue column no output has would read as null forever; a field Glue lacks is invisible
    to Athena. Both fail."""
    kinds = {"normalized": "event", "alerts": "alert", "quarantine": "quarantine"}
    for table, kind in kinds.items():
        top = {p for p in contract[kind] if "." not in p and "{" not in p}
        columns = {c for c, _ in glue[table]["columns"]}
        assert columns - top == set(), f"{table}: Glue columns no output has"
        assert top - columns == set(), f"{table}: fields Glue does not declare"


def test_views_read_every_line(db, lake):
    for table, want in [("normalized", len(lake.events)), ("alerts", len(lake.alerts)),
                        ("quarantine", len(lake.quarantine))]:
        (got,) = db.execute(f"SELECT count(*) FROM {DATABASE}.{table}").fetchone()
        assert got == want, table
    # zstd and gzip objects hold the same events.
    paths = ", ".join(f"'{p}'" for p in lake.gzip_event_files)
    (n,) = db.execute(f"SELECT count(*) FROM read_json([{paths}], format = 'newline_delimited')").fetchone()
    assert n == len(lake.events)


def test_named_queries_match_the_sql_files():
    text = (MODULE / "athena.tf").read_text()
    body = block(text, text.index("athena_queries = {"))
    names = set(re.findall(r"^\s*(\w+)\s*=", body, re.M))
    files = {p.stem for p in SQL_DIR.glob("*.sql")}
    assert names and names == files


# --------------------------------------------------------------------------------------------


def athena_sql(name: str) -> str:
    text = (SQL_DIR / f"{name}.sql").read_text()
    assert "${database}" in text, f"{name}.sql must name its tables in ${{database}}"
    text = text.replace("${database}", DATABASE)
    assert "${" not in text and "%{" not in text, f"{name}.sql: templatefile would interpolate"
    return text


def run(db, name: str, params: list) -> list:
    """The query transpiled to DuckDB and run; rows as dicts."""
    sql = athena_sql(name)
    (duck,) = sqlglot.transpile(sql, read="athena", write="duckdb", unsupported_level=ErrorLevel.RAISE)
    assert duck.count("?") == len(params), f"{name}: {duck}"
    cur = db.execute(duck, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


HOURS = [HOUR, HOUR]


def techniques_of(e):
    return e.get("attack") or []


def test_every_query_transpiles_runs_and_selects_by_its_parameters(db, lake):
    host = lake.alerts[0]["hosts"][0]
    other_hour = ["2026/11/22/15", "2026/11/22/23"]
    for path in sorted(SQL_DIR.glob("*.sql")):
        name = path.stem
        params = {"host_activity": [host] + HOURS, "alerts_by_rule": [DAY, DAY]}.get(name, HOURS)
        assert run(db, name, params), f"{name}: no rows"
        outside = {"host_activity": [host] + other_hour, "alerts_by_rule": ["2026/11/23", "2026/11/30"]}
        assert run(db, name, outside.get(name, other_hour)) == [], f"{name}: dt is not filtered"


def test_techniques(db, lake):
    want_n, want_hosts, names = Counter(), defaultdict(set), {}
    for e in lake.events:
        for t in techniques_of(e):
            want_n[t["id"]] += 1
            if e["host"] is not None:
                want_hosts[t["id"]].add(e["host"])
            names[t["id"]] = (t["name"], ", ".join(t["tactics"]))
    rows = run(db, "techniques", HOURS)
    assert {r["technique"]: r["observations"] for r in rows} == dict(want_n)
    assert {r["technique"]: r["hosts"] for r in rows} == {k: len(v) for k, v in want_hosts.items()} | {
        k: 0 for k in want_n if k not in want_hosts
    }
    assert all((r["technique_name"], r["tactics"]) == names[r["technique"]] for r in rows)
    assert any(r["technique"].startswith("T1059") for r in rows), "the samples' shells"
    assert rows == sorted(rows, key=lambda r: (-r["observations"], r["technique"]))


def test_tactics(db, lake):
    events, techniques = defaultdict(set), defaultdict(set)
    for e in lake.events:
        for t in techniques_of(e):
            for tactic in t["tactics"]:
                events[tactic].add(e["id"])
                techniques[tactic].add(t["id"])
    rows = run(db, "tactics", HOURS)
    assert {r["tactic"]: r["observations"] for r in rows} == {k: len(v) for k, v in events.items()}
    assert {r["tactic"]: r["techniques"] for r in rows} == {k: len(v) for k, v in techniques.items()}
    assert "execution" in events


def test_tables(db, lake):
    want = Counter(t for e in lake.events for t in e.get("tables") or [])
    rows = run(db, "tables", HOURS)
    assert {r["table_name"]: r["observations"] for r in rows} == dict(want)
    assert "process_open_sockets" in want


def test_network_connections(db, lake):
    want = {
        (e["host"], str(e["columns"].get("pid")), e["columns"].get("remote_address"), str(e["columns"].get("remote_port")))
        for e in lake.events
        if {"process_open_sockets", "socket_events"} & set(e.get("tables") or [])
    }
    rows = run(db, "network_connections", HOURS)
    assert len(rows) == min(1000, sum(
        1 for e in lake.events if {"process_open_sockets", "socket_events"} & set(e.get("tables") or [])
    ))
    assert {(r["host"], r["pid"], r["remote_address"], r["remote_port"]) for r in rows} == want
    # The reverse shell of attack-linux.ndjson, with its process and command line.
    assert any(r["process"] == "bash" and r["remote_port"] == "4444" and r["cmdline"] for r in rows)
    times = [r["time"] for r in rows if r["time"]]
    assert times == sorted(times, reverse=True)


def test_host_activity(db, lake):
    host = lake.alerts[0]["hosts"][0]
    want = Counter(
        (t["id"], e["query"]) for e in lake.events if e["host"] == host for t in techniques_of(e)
    )
    rows = run(db, "host_activity", [host] + HOURS)
    got = Counter()
    for r in rows:
        got[(r["technique"], r["query"])] += r["observations"]
    assert got == want and want


def test_alerts_by_rule(db, lake):
    want = Counter((a["rule"]["name"], a["severity"]) for a in lake.alerts)
    matches = Counter()
    for a in lake.alerts:
        matches[(a["rule"]["name"], a["severity"])] += a["count"]
    rows = run(db, "alerts_by_rule", [DAY, DAY])
    assert {(r["rule"], r["severity"]): r["alerts"] for r in rows} == dict(want)
    assert {(r["rule"], r["severity"]): r["matches"] for r in rows} == dict(matches)
    order = ["critical", "high", "medium", "low", "informational"]
    ranks = [order.index(r["severity"]) for r in rows]
    assert ranks == sorted(ranks)


def test_quarantine(db, lake):
    want = Counter(("object" if q.get("object") else "record", q["reason"]) for q in lake.quarantine)
    rows = run(db, "quarantine", HOURS)
    assert {(r["kind"], r["reason"]): r["entries"] for r in rows} == dict(want)
    assert any(kind == "object" for kind, _ in want), "events/broken has a damaged object"
