"""deploy/splunk/tripline: the props.conf sourcetypes and the dashboard against what tripline
writes (see conftest.py): the XML is well-formed, every field a panel's SPL names exists in
the event, alert or quarantine contract, and the timestamp and host extraction find the
top-level time and host of every sample event."""

import configparser
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import ROOT

APP = ROOT / "deploy" / "splunk" / "tripline"
DASHBOARD = APP / "default" / "data" / "ui" / "views" / "tripline_attack.xml"

SOURCETYPES = {
    "tripline:event": "event",
    "tripline:alert": "alert",
    "tripline:quarantine": "quarantine",
}

# Fields Splunk itself gives every event (host is set from the event's own host by
# transforms.conf for tripline:event).
SPLUNK_FIELDS = {"_time", "_raw", "host", "source", "sourcetype", "index", "splunk_server"}

# Words of SPL expressions that are not fields.
EXPR_WORDS = {"AND", "OR", "NOT", "LIKE", "IN", "true", "false", "null", "AS", "as", "BY", "by"}


def conf(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # Splunk keys are case-sensitive
    text = (APP / "default" / name).read_text()
    parser.read_string(text, source=name)
    return parser


def macros() -> dict:
    m = conf("macros.conf")
    return {s: m[s]["definition"] for s in m.sections()}


def queries() -> list:
    """The SPL of every search in the dashboard (panels and inputs), tokens left in."""
    out = []
    for search in ET.parse(DASHBOARD).iter("search"):
        query = search.find("query")
        assert query is not None and query.text, "a <search> without a <query>"
        out.append(query.text)
    return out


# --------------------------------------------------------------------------------------------
# A reasonable reader of the SPL the dashboard uses: which fields each command reads, which it
# creates.


def split_outside_quotes(text: str, sep: str) -> list:
    """`text` split at each `sep` outside quotes and parentheses."""
    parts, cur, quote, depth = [], [], None, 0
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


FIELD = r"[A-Za-z_][\w.{}]*"


def expr_fields(expr: str) -> set:
    """Fields an eval/where expression reads: 'quoted' names, and bare names that are not
    functions, keywords or numbers (string literals removed first)."""
    fields = set(re.findall(r"'([^']+)'", expr))
    bare = re.sub(r'"[^"]*"', " ", re.sub(r"'[^']*'", " ", expr))
    for m in re.finditer(FIELD, bare):
        name, after = m.group(0), bare[m.end() :].lstrip()
        if after.startswith("(") or name in EXPR_WORDS:
            continue
        fields.add(name)
    return fields


def search_fields(terms: str) -> set:
    """Fields a search's field=value terms name."""
    unquoted = re.sub(r'"[^"]*"', '""', terms)
    return set(re.findall(rf"(?:^|[\s(])({FIELD})\s*(?:!=|=|<|>)", unquoted))


def parse_spl(spl: str, macro_defs: dict) -> tuple:
    """(sourcetypes searched, fields read) of one search. A field counts as read where a
    command reads it before any earlier command created it (eval, rename, stats ... AS)."""
    spl = re.sub(r"`(\w+)`", lambda m: macro_defs[m.group(1)], spl)
    spl = re.sub(r"\$[\w.]+\$", "*", spl)
    created, read = set(), set()

    def use(fields):
        read.update(f for f in fields if f and f not in created)

    def names(text):
        return [f.strip('"') for f in re.findall(r'"[^"]+"|[^\s,]+', text)]

    sourcetypes = set(re.findall(r'sourcetype="?([\w:]+)"?', spl))
    for i, segment in enumerate(split_outside_quotes(spl, "|")):
        segment = " ".join(segment.split())
        if i == 0:
            use(search_fields(segment) - {"index", "sourcetype"})
            continue
        command, _, rest = segment.partition(" ")
        if command == "search":
            use(search_fields(rest))
        elif command in ("eval", "where"):
            for clause in split_outside_quotes(rest, ","):
                if command == "eval":
                    name, _, expr = clause.partition("=")
                    use(expr_fields(expr))
                    created.add(name.strip())
                else:
                    use(expr_fields(clause))
        elif command in ("stats", "eventstats", "chart", "timechart"):
            body, *by = re.split(r"\s(?:BY|by)\s", rest, maxsplit=1)
            use(arg.strip().strip('"') for arg in re.findall(r"\w+\(([^)]*)\)", body))
            group = names(" ".join(by))
            use(group)
            # After stats, its outputs are what exists: the aggregates and the by-fields.
            created |= set(re.findall(rf"\s(?:AS|as)\s+({FIELD})", body)) | set(group) | {"count"}
        elif command == "rename":
            for pair in split_outside_quotes(rest, ","):
                old, new = re.split(r"\s+(?:AS|as)\s+", pair.strip())
                use([old.strip('"')])
                created.add(new.strip('"'))
        elif command in ("table", "fields", "sort", "dedup"):
            use(f.lstrip("+-") for f in names(rest) if not f.lstrip("+-").isdigit())
        elif command == "convert":
            use(re.findall(r"\w+\(([^)]*)\)", rest))
        elif command != "head":
            pytest.fail(f"the SPL reader does not know the command {command!r}: {segment}")
    return sourcetypes, read


def test_parse_spl_reads_fields_and_skips_what_it_creates():
    spl = (
        '`m` sourcetype="tripline:event" host="$host$" attack{}.id=* (tables{}="a" OR x.y="b")'
        " | eval t=mvzip('attack{}.id', 'attack{}.name', \" \"), o=case(sev==\"high\", 1, true(), 2)"
        ' | rename "rule.name" AS rule | stats count AS n sum(count) AS m dc(h) AS hosts BY t rule'
        " | sort - n | table t n hosts columns.pid | fields - o"
    )
    sourcetypes, read = parse_spl(spl, {"m": "index=main"})
    assert sourcetypes == {"tripline:event"}
    assert read == {
        "host", "attack{}.id", "tables{}", "x.y", "attack{}.name", "sev", "rule.name",
        "count", "h", "columns.pid",
    }


# --------------------------------------------------------------------------------------------


def test_dashboard_is_well_formed_simple_xml():
    root = ET.parse(DASHBOARD).getroot()
    assert root.tag in ("form", "dashboard")
    assert root.find("label") is not None
    panels = list(root.iter("panel"))
    assert len(panels) >= 6, "technique, tactic, table, network, host, alerts, quarantine panels"
    # The host drill-down is a dropdown token the panels use, and a table click sets it.
    assert any(i.get("type") == "dropdown" and i.get("token") == "host" for i in root.iter("input"))
    assert any(s.text == "$row.host$" and s.get("token") == "form.host" for s in root.iter("set"))


def test_no_panel_needs_spath_or_mvexpand():
    for spl in queries():
        assert not re.search(r"\b(spath|mvexpand)\b", spl), spl


def test_every_field_a_search_names_is_in_the_contract(contract):
    macro_defs = macros()
    props = conf("props.conf")
    unknown = []
    for spl in queries():
        sourcetypes, read = parse_spl(spl, macro_defs)
        assert sourcetypes, f"a search without a sourcetype: {spl}"
        for st in sourcetypes:
            assert props.has_section(st), f"{st} is not in props.conf"
            kind = SOURCETYPES[st]
            missing = sorted(f for f in read if f not in contract[kind] and f not in SPLUNK_FIELDS)
            unknown += [f"{st}: {f}   in: {spl.splitlines()[-1]}" for f in missing]
    assert not unknown, "fields no tripline output has:\n" + "\n".join(unknown)


def test_the_contract_check_catches_a_wrong_field(contract):
    _, read = parse_spl('sourcetype="tripline:event" | stats count BY columns.no_such_column', {})
    assert "columns.no_such_column" in read
    assert "columns.no_such_column" not in contract["event"]


def test_each_panel_reads_what_the_issue_asks_for(contract):
    """The network panel names every column of the article's table, the technique and tactic
    panels the attack arrays, the alert panel rule and severity, the quarantine panel reason."""
    text = DASHBOARD.read_text()
    for column in ["name", "path", "pid", "protocol", "local_address", "local_port",
                   "remote_address", "remote_port", "cmdline"]:
        assert f"columns.{column}" in text, column
        assert f"columns.{column}" in contract["event"], column
    for needle in ["'attack{}.id'", "'attack{}.tactics{}'", '"tables{}"', '"rule.name"',
                   "severity", "reason"]:
        assert needle in text, needle


# --------------------------------------------------------------------------------------------
# props.conf and transforms.conf against the real lines.


def splunk_strptime(fmt: str) -> str:
    """The subset of Splunk's TIME_FORMAT used here, in Python's strptime."""
    assert set(re.findall(r"%.", fmt)) <= {"%Y", "%m", "%d", "%H", "%M", "%S"}, fmt
    return fmt


def test_props_defines_the_three_sourcetypes_with_json_extraction():
    props = conf("props.conf")
    for st in SOURCETYPES:
        s = props[st]
        assert s["KV_MODE"] == "json", st
        assert s["SHOULD_LINEMERGE"] == "false", st
        assert s["TRUNCATE"] == "0", st


@pytest.mark.parametrize("sourcetype,field", [("tripline:event", "time"), ("tripline:alert", "first_seen")])
def test_time_prefix_finds_the_top_level_time_of_every_line(lake, sourcetype, field):
    s = conf("props.conf")[sourcetype]
    prefix = re.compile(s["TIME_PREFIX"])
    fmt = splunk_strptime(s["TIME_FORMAT"])
    lookahead = int(s["MAX_TIMESTAMP_LOOKAHEAD"])
    lines = (
        [p for f in lake.gzip_event_files for p in _raw_lines(f)]
        if sourcetype == "tripline:event"
        else lake.alerts_file.read_text().splitlines()
    )
    checked = 0
    for line in lines:
        want = json.loads(line)[field]
        m = prefix.search(line)
        if want is None:
            continue
        assert m, f"no {s['TIME_PREFIX']} in {line[:200]}"
        text = line[m.end() : m.end() + lookahead]
        got = datetime.strptime(text[: len(want)], fmt).replace(tzinfo=timezone.utc)
        assert got == datetime.fromisoformat(want.replace("Z", "+00:00")), line[:200]
        checked += 1
    assert checked > 10
    if sourcetype == "tripline:event":
        # Some rows have a column named time before the event's own: the prefix skipped them.
        assert any('"time":"' in line[: prefix.search(line).start()] for line in lines if prefix.search(line))


def _raw_lines(path: Path) -> list:
    import gzip

    return gzip.decompress(path.read_bytes()).decode().splitlines()


def test_host_transform_takes_the_events_own_host(lake):
    t = conf("transforms.conf")["tripline_event_host"]
    assert conf("props.conf")["tripline:event"]["TRANSFORMS-tripline_host"] == "tripline_event_host"
    assert t["DEST_KEY"] == "MetaData:Host" and t["FORMAT"] == "host::$1"
    regex = re.compile(t["REGEX"])
    hosts = 0
    for f in lake.gzip_event_files:
        for line in _raw_lines(f):
            event = json.loads(line)
            m = regex.search(line)
            if event["host"] is None:
                assert m is None, line[:200]
                continue
            assert m, line[:200]
            assert json.loads(f'"{m.group(1)}"') == event["host"]
            hosts += 1
    assert hosts > 10


def test_the_readme_shows_each_panels_spl():
    """deploy/README.md shows every panel's search as the dashboard runs it."""
    readme = (ROOT / "deploy" / "README.md").read_text()
    shown = [" ".join(b.split()) for b in re.findall(r"```spl\n(.*?)```", readme, re.S)]
    panels = [
        " ".join(p.find(".//query").text.split())
        for p in ET.parse(DASHBOARD).getroot().iter("panel")
    ]
    assert sorted(shown) == sorted(panels)
