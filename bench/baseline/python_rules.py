#!/usr/bin/env python3
"""The Python baseline: what users run today, doing tripline's parse + detect work.

A straightforward implementation in the style of Panther / StreamAlert Python rules:
stream-gunzip the Firehose object, ``json.loads`` every record, explode batch
(``diffResults``) and ``snapshot`` records into one event per row, normalize each row
(host, time, pack/query, action, counter, decorations, a content id), write the normalized
events as gzip'd NDJSON to a sink, annotate ATT&CK techniques from ``rules/mappings``,
compute tripline's derived fields, evaluate every built-in rule on every event, and
aggregate matches into alerts (dedup key, fixed window, threshold, stale/initial
suppression), serialized as JSON.

The rules are not hand-translated: a small generic Sigma matcher compiles the YAML in
``rules/sigma`` (PyYAML) with the semantics rsigma gives them (case-insensitive string
matching, ``contains``/``startswith``/``endswith``/``re``/``all`` modifiers, wildcards,
numbers compared numerically, lists as OR, ``1 of``/``all of`` conditions). The derived
fields (``derived.program`` etc.) are a line-by-line port of ``shared/core/src/derive/``.
Not done (no rule depends on them): ``indicators`` extraction, the ``calendarTime`` fallback
beyond the common format, ATT&CK revoked-ID remapping, Windows-specific corner cases.

Python 3.11 standard library plus PyYAML. Usage::

    python3 bench/baseline/python_rules.py OBJECT.json.gz [--alerts]

Prints one JSON line: wall time, counts, alerts and matches per rule, peak RSS.
"""

import calendar
import fnmatch
import glob
import gzip
import hashlib
import io
import json
import os
import re
import resource
import sys
import time

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# ----------------------------------------------------------------------------------------
# Query names (shared/core/src/query_name.rs)

KNOWN_PACKS = [
    "hardware-monitoring", "incident-response", "it-compliance", "osquery-monitoring",
    "ossec-rootkit", "osx-attacks", "unwanted-chrome-extensions", "vuln-management",
    "windows-attacks", "windows-hardening", "tripline-common", "tripline-linux",
    "tripline-macos", "generic_linux", "linux_browser_extensions", "linux_command_execution",
    "linux_home_root_hidden_file_directory", "linux_kernel_modules_and_extensions",
    "linux_local_job_scheduling", "linux_network_connections", "linux_relevant_folder_check",
    "linux_running_processes", "linux_users_check", "network_connection_listening",
    "windows-incorrect_parent_process", "windows-incorrect_path_process",
    "windows-registry-monitoring", "windows_anomaly_process-execution",
    "windows_browsere-extensions", "windows_critical_service_status",
    "windows_generic_detection", "windows_new_dir_relevant_infection_path",
    "windows_new_file_relevant_infection_path", "windows_persistence-startup_items",
    "windows_powershell_events", "windows_process_no_disk_binary", "windows_scheduled_tasks",
    "windows_service-persistence", "windows_system_running_processes",
]


def parse_name(name):
    if not name.startswith("pack") or len(name) < 5:
        return None, name
    delim, rest = name[4], name[5:]
    if delim == "/":
        pack, sep, query = rest.partition("/")
        if sep and pack and query:
            return pack, query
        return None, name
    if delim not in "_-:.":
        return None, name
    best = None
    for pack in KNOWN_PACKS:
        if len(rest) > len(pack) + 1 and rest[len(pack)] == delim and rest.startswith(pack):
            if best is None or len(pack) > len(best):
                best = pack
    if best is None:
        return None, name
    return best, rest[len(best) + 1:]


# ----------------------------------------------------------------------------------------
# Decoding one record (shared/core/src/decode/record.rs)

RESULT_KEYS = {
    "name", "hostIdentifier", "calendarTime", "unixTime", "epoch", "counter", "numerics",
    "logNumericsAsNumbers", "columns", "action", "diffResults", "snapshot", "decorations",
    "log_type",
}
STATUS_KEYS = {"severity", "filename", "line", "message", "version"}


class Quarantine(Exception):
    pass


def as_int(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if v == int(v) else None
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            return None
    return None


def as_bool(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        return {"true": True, "1": True, "false": False, "0": False}.get(v)
    if isinstance(v, int):
        return v != 0
    return None


def scalar_string(v):
    if isinstance(v, str):
        return v or None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return None


def object_or_empty(v, what):
    if v is None or v == "":
        return {}
    if isinstance(v, dict):
        return v
    raise Quarantine(f"{what} is not an object")


def rows_of(v, what):
    if v is None or v == "":
        return []
    if isinstance(v, list):
        return [object_or_empty(r, what) for r in v]
    raise Quarantine(f"{what} is not an array")


def parse_calendar_time(s):
    try:
        s = s.replace(" UTC", "")
        return calendar.timegm(time.strptime(s, "%a %b %d %H:%M:%S %Y"))
    except (ValueError, OverflowError):
        return None


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def decode_record(line, path, record_no):
    """One record to a list of normalized events (dicts)."""
    try:
        obj = json.loads(line)
    except ValueError as e:
        raise Quarantine(f"invalid JSON: {e}")
    if not isinstance(obj, dict):
        raise Quarantine("record is not an object")
    if "diffResults" in obj:
        shape = "batch"
    elif "snapshot" in obj:
        shape = "snapshot"
    elif "columns" in obj:
        action = obj.get("action")
        if action not in ("added", "removed", "snapshot"):
            raise Quarantine(f"unknown action {action!r}")
        shape = "event"
    elif sum(k in obj for k in ("severity", "filename", "line", "message")) >= 2:
        shape = "status"
    else:
        raise Quarantine("unrecognized record")

    host_v = obj.pop("hostIdentifier", None)
    if host_v is None:
        host_v = obj.pop("hostname", None)
    host = scalar_string(host_v) if host_v is not None else None
    t = as_int(obj.get("unixTime"))
    if t is not None and t <= 0:
        t = None
    if t is None and isinstance(obj.get("calendarTime"), str):
        t = parse_calendar_time(obj["calendarTime"])
    name = scalar_string(obj.get("name")) if "name" in obj else None
    pack, query = (None, None)
    if name is not None:
        pack, query = parse_name(name)
    numerics = as_bool(obj.get("numerics", obj.get("logNumericsAsNumbers")))

    base = {
        "kind": "status" if shape == "status" else "result",
        "name": name,
        "pack": pack,
        "query": query,
        "host": host,
        "action": None,
        "columns": {},
        "decorations": {},
        "time": rfc3339(t) if t is not None else None,
        "unix_time": t,
        "epoch": as_int(obj.get("epoch")),
        "counter": as_int(obj.get("counter")),
        "numerics": bool(numerics),
    }
    if shape == "event":
        rows = [(obj["action"], object_or_empty(obj.pop("columns"), "columns"))]
    elif shape == "snapshot":
        rows = [("snapshot", r) for r in rows_of(obj.pop("snapshot"), "snapshot")]
    elif shape == "batch":
        diff = object_or_empty(obj.pop("diffResults"), "diffResults")
        rows = [("added", r) for r in rows_of(diff.get("added"), "added")]
        rows += [("removed", r) for r in rows_of(diff.get("removed"), "removed")]
    else:
        rows = []

    decorations = object_or_empty(obj.pop("decorations", None), "decorations")
    owned = RESULT_KEYS | STATUS_KEYS if shape == "status" else RESULT_KEYS
    for k, v in obj.items():
        if k not in owned and k not in decorations:
            decorations[k] = v
    base["decorations"] = decorations

    if shape == "status":
        base.update(
            severity=as_int(obj.get("severity")), filename=scalar_string(obj.get("filename")),
            line=as_int(obj.get("line")), message=scalar_string(obj.get("message")),
            version=scalar_string(obj.get("version")),
            source={"path": path, "record": record_no, "row": 0},
        )
        base["id"] = event_id(base, 0)
        return [base]

    events = []
    for row, (action, columns) in enumerate(rows):
        e = dict(base)
        e["action"] = action
        e["columns"] = columns
        e["source"] = {"path": path, "record": record_no, "row": row}
        e["id"] = event_id(e, row)
        e["attack"] = []
        events.append(e)
    return events


def event_id(e, row):
    h = hashlib.blake2b(digest_size=16)
    for part in (e["kind"], e["host"] or "", e["name"] or "", str(e["unix_time"] or 0),
                 str(e["epoch"] or 0), str(e["counter"] or 0), e["action"] or "", str(row)):
        h.update(part.encode())
        h.update(b"\x1f")
    h.update(json.dumps(e["columns"], sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------------------
# ATT&CK mapping (shared/core/src/mapping.rs): exact, glob and regex entries, cached.

class Mapper:
    def __init__(self):
        self.entries = []
        for path in sorted(glob.glob(os.path.join(ROOT, "rules", "mappings", "*.yml"))):
            with open(path) as f:
                doc = yaml.safe_load(f) or {}
            for m in doc.get("mappings") or []:
                self.entries.append(m)
        self.exact = {}
        self.patterns = []
        for i, m in enumerate(self.entries):
            if "query" in m:
                self.exact.setdefault(m["query"], []).append(i)
            elif "glob" in m:
                self.patterns.append((i, re.compile(fnmatch.translate(m["glob"]))))
            elif "regex" in m:
                self.patterns.append((i, re.compile(m["regex"])))
        self.cache = {}

    def techniques(self, pack, query, name):
        key = (pack, query, name)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        pack = (pack or "").strip() or None
        hits = set()
        for cand in {query.strip(), name.strip()}:
            if not cand:
                continue
            hits.update(self.exact.get(cand, ()))
            for i, rx in self.patterns:
                if rx.search(cand) if "regex" in self.entries[i] else rx.match(cand):
                    hits.add(i)
        out = []
        for i in sorted(hits):
            p = self.entries[i].get("pack")
            if p is not None and p != pack:
                continue
            for t in self.entries[i]["techniques"]:
                if t not in out:
                    out.append(t)
        self.cache[key] = out
        return out


# ----------------------------------------------------------------------------------------
# Derived fields (shared/core/src/derive/)

WRAPPERS = {"sudo", "doas", "env", "nohup", "exec", "command", "nice"}
OPTS_WITH_ARG = {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-n"}
PLATFORM_KEYS = ["platform", "os_platform", "build_platform", "os", "platform_like", "os_family"]
LINUX_NAMES = {
    "linux", "ubuntu", "debian", "rhel", "centos", "fedora", "amzn", "amazon", "arch", "suse",
    "opensuse", "gentoo", "alpine", "rocky", "almalinux", "manjaro", "kali", "oracle", "ol",
    "pop", "mint", "nixos",
}
DARWIN_PREFIXES = ("/Users/", "/Applications/", "/Library/", "/System/Library/", "/private/var/",
                   "/private/etc/")
LINUX_PREFIXES = ("/home/", "/proc/", "/etc/systemd/", "/lib/systemd/", "/snap/")
TIME_COLUMNS = ["time", "timestamp", "unix_time", "event_time", "login_time"]
MIN_OSQUERY = (5, 12, 1)
MIN_MACOS = (14, 0)
STALE_AFTER_S = 1440 * 60
ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
NON_ALNUM = re.compile(r"[^A-Za-z0-9]")


def col_str(cols, key):
    v = cols.get(key)
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return None


def shell_words(s):
    word, started, quote = [], False, None
    for c in s:
        if quote is not None:
            if c == quote:
                quote = None
            else:
                word.append(c)
        elif c.isspace():
            if started:
                yield "".join(word)
                word, started = [], False
        elif c in "'\"":
            quote, started = c, True
        else:
            word.append(c)
            started = True
    if started:
        yield "".join(word)


def basename(p):
    t = p.rstrip("/\\")
    i = max(t.rfind("/"), t.rfind("\\"))
    return t[i + 1:] if i >= 0 else t


def program_of(cmd):
    tokens = shell_words(cmd)
    wrapper = None
    for tok in tokens:
        if not tok:
            continue
        if wrapper is not None:
            if tok == "--":
                wrapper = None
                continue
            if tok.startswith("-") and len(tok) > 1:
                if wrapper in ("sudo", "doas"):
                    takes = tok in OPTS_WITH_ARG
                elif wrapper == "env":
                    takes = tok in ("-u", "-C", "-S")
                elif wrapper == "nice":
                    takes = tok == "-n"
                else:
                    takes = False
                if takes:
                    next(tokens, None)
                continue
        if ASSIGN.match(tok):
            continue
        b = basename(tok)
        if not b:
            return None
        if b in WRAPPERS:
            wrapper = b
            continue
        return b
    return None


def program(cols):
    for key in ("command", "cmdline"):
        c = col_str(cols, key)
        if c is not None:
            p = program_of(c)
            if p is not None:
                return p
    if "cmdline" in cols:
        p = col_str(cols, "path")
        if p is not None:
            b = basename(p.strip())
            if b:
                return b
    return None


def platform_from_name(name):
    n = name.strip().lower()
    if not n:
        return None
    if "darwin" in n or "macos" in n or "mac os" in n or n == "osx":
        return "darwin"
    if "windows" in n or n in ("win32", "win64"):
        return "windows"
    first = NON_ALNUM.split(n, 1)[0]
    if first in LINUX_NAMES or "linux" in n:
        return "linux"
    return None


def platform_from_path(s):
    if len(s) >= 3 and s[0].isascii() and s[0].isalpha() and s[1] == ":" and s[2] == "\\":
        return "windows"
    if s.startswith("\\\\") and len(s) > 2:
        return "windows"
    if s.startswith(DARWIN_PREFIXES):
        return "darwin"
    if s.startswith(LINUX_PREFIXES):
        return "linux"
    return None


def platform(e):
    for m in (e["decorations"], e["columns"]):
        for k in PLATFORM_KEYS:
            v = col_str(m, k)
            if v is not None:
                p = platform_from_name(v)
                if p:
                    return p
    for m in (e["columns"], e["decorations"]):
        for v in m.values():
            if isinstance(v, str):
                p = platform_from_path(v)
                if p:
                    return p
    pack = (e["pack"] or "").lower()
    if not pack:
        return None
    if "osx" in pack or "macos" in pack or "darwin" in pack:
        return "darwin"
    if "windows" in pack:
        return "windows"
    if "linux" in pack:
        return "linux"
    return None


def normalize_query(q):
    return "".join(c.lower() if c.isascii() and c.isalnum() else "_" for c in q.strip())


def query_is(q, table):
    if q == table:
        return True
    start = 0
    while True:
        i = q.find(table, start)
        if i < 0:
            return False
        end = i + len(table)
        if (i == 0 or q[i - 1] == "_") and (end == len(q) or q[end] == "_"):
            return True
        start = i + 1


def parse_version(s):
    s = s.strip()
    if s[:1] in ("v", "V"):
        s = s[1:]
    parts = []
    for comp in s.split("."):
        m = re.match(r"\d*", comp).group(0)
        if not m:
            break
        parts.append(int(m))
        if len(m) != len(comp):
            break
    return tuple(parts) if parts else None


def version_lt(a, b):
    n = max(len(a), len(b))
    return a + (0,) * (n - len(a)) < b + (0,) * (n - len(b))


def osquery_outdated(q, cols):
    info = query_is(q, "osquery_info") or (
        "version" in cols
        and any(k in cols for k in ("build_platform", "config_hash", "instance_id", "extensions")))
    if not info:
        return None
    v = col_str(cols, "version")
    v = parse_version(v) if v is not None else None
    if v is None:
        return None
    return version_lt(v, MIN_OSQUERY)


def macos_unsupported(q, cols, plat):
    if not (query_is(q, "os_version") or ("major" in cols and "minor" in cols)):
        return None
    p = col_str(cols, "platform")
    if p is not None:
        is_mac = platform_from_name(p) == "darwin"
    else:
        n = col_str(cols, "name")
        if n is not None:
            n = n.lower()
            is_mac = "macos" in n or "mac os" in n
        else:
            is_mac = plat == "darwin"
    if not is_mac:
        return None
    v = col_str(cols, "version")
    v = parse_version(v) if v is not None else None
    if v is None:
        major = col_str(cols, "major")
        if major is None:
            return None
        minor = col_str(cols, "minor") or "0"
        patch = col_str(cols, "patch") or "0"
        v = parse_version(f"{major}.{minor}.{patch}")
        if v is None:
            return None
    return version_lt(v, MIN_MACOS)


def column_time(v):
    n = None
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        n = int(v)
    elif isinstance(v, str):
        s = v.strip()
        try:
            n = int(s)
        except ValueError:
            try:
                n = int(float(s))
            except ValueError:
                return None
    if n is None or n <= 0:
        return None
    return n // 1000 if n > 100_000_000_000 else n


def stale(q, e):
    cols = e["columns"]
    hist = (query_is(q, "shell_history") or query_is(q, "last") or q.endswith("_events")
            or "_events_" in q or q == "events" or ("command" in cols and "history_file" in cols))
    if not hist:
        return False
    now = e["unix_time"]
    if now is None:
        return False
    for k in TIME_COLUMNS:
        if k in cols:
            t = column_time(cols[k])
            if t is not None:
                age = now - t
                return age > 0 and age > STALE_AFTER_S
    return False


def derive(e):
    q = e["query"] if e["query"] is not None else e["name"]
    q = normalize_query(q) if q is not None else ""
    cols = e["columns"]
    plat = platform(e)
    d = {
        "program": program(cols),
        "platform": plat,
        "osquery_outdated": osquery_outdated(q, cols),
        "macos_unsupported": macos_unsupported(q, cols, plat),
        # office_networks is empty by default, which turns this field off (as in tripline).
        "remote_outside_office": None,
        "stale": stale(q, e),
        "initial": e["counter"] == 0,
    }
    return d


# ----------------------------------------------------------------------------------------
# The rules' view of an event (shared/core/src/rules/view.rs): numbers in columns as text.

MISSING = object()


def view_value(v):
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        return str(v)
    return v


def get_field(e, d, path):
    root, _, rest = path.partition(".")
    if rest:
        if root == "columns" or root == "decorations":
            m = e[root]
            if rest in m:
                return view_value(m[rest])
            cur = m
            for seg in rest.split("."):
                if not isinstance(cur, dict) or seg not in cur:
                    return MISSING
                cur = cur[seg]
            return view_value(cur)
        if root == "derived":
            v = d.get(rest, MISSING)
            return MISSING if v is None else v
        if root == "attack":
            vals = [t for t in e.get("attack") or []] if rest == "id" else []
            return vals or MISSING
        if root == "source":
            return e["source"].get(rest, MISSING)
        return MISSING
    if root in ("unix_time", "severity", "line", "filename", "message", "version"):
        v = e.get(root)
        return MISSING if v is None else v
    return e.get(root, MISSING)


# ----------------------------------------------------------------------------------------
# A small generic Sigma matcher


def sigma_wildcard(s, ci):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "*?\\":
            out.append(re.escape(s[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$", re.I | re.S if ci else re.S)


def has_wildcard(s):
    return any(c in "*?" for c in s)


def str_pred(v, mods):
    """A predicate over one field value for one rule value."""
    if "re" in mods:
        rx = re.compile(str(v))
        return lambda x: isinstance(x, str) and rx.search(x) is not None
    if isinstance(v, bool):
        def boolean(x, v=v):
            if isinstance(x, bool):
                return x == v
            if isinstance(x, str):
                lx = x.lower()
                return v if lx in ("true", "1", "yes") else (not v) if lx in ("false", "0", "no") else False
            return False
        return boolean
    if v is None:
        return lambda x: x is None
    op = "contains" if "contains" in mods else "startswith" if "startswith" in mods else (
        "endswith" if "endswith" in mods else "exact")
    if isinstance(v, (int, float)) and op == "exact":
        n = float(v)

        def numeric(x):
            if isinstance(x, bool) or x is None:
                return False
            try:
                return float(x) == n
            except (TypeError, ValueError):
                return False
        return numeric
    s = str(v)
    ci = "cased" not in mods
    if has_wildcard(s):
        body = s if op == "exact" else ("*" + s + "*" if op == "contains" else
                                         s + "*" if op == "startswith" else "*" + s)
        rx = sigma_wildcard(body, ci)
        return lambda x: isinstance(x, str) and rx.match(x) is not None
    needle = s.lower() if ci else s

    def text(x):
        if isinstance(x, bool):
            x = "true" if x else "false"
        elif not isinstance(x, str):
            return False
        h = x.lower() if ci else x
        if op == "exact":
            return h == needle
        if op == "contains":
            return needle in h
        if op == "startswith":
            return h.startswith(needle)
        return h.endswith(needle)
    return text


def compile_item(key, values):
    field, *mods = key.split("|")
    mods = set(mods)
    vals = values if isinstance(values, list) else [values]
    preds = [str_pred(v, mods) for v in vals]
    need_all = "all" in mods

    def item(e, d):
        x = get_field(e, d, field)
        if x is MISSING:
            return False
        xs = x if isinstance(x, list) else [x]
        if need_all:
            return all(any(p(y) for y in xs) for p in preds)
        return any(p(y) for y in xs for p in preds)
    return item


def compile_selection(sel):
    if isinstance(sel, list):
        alts = [compile_selection(s) for s in sel]
        return lambda e, d: any(a(e, d) for a in alts)
    if isinstance(sel, dict):
        items = [compile_item(k, v) for k, v in sel.items()]
        return lambda e, d: all(i(e, d) for i in items)
    raise ValueError(f"unsupported selection {sel!r}")


TOKEN = re.compile(r"\s*(\(|\)|[A-Za-z0-9_*]+)")


def compile_condition(cond, sels):
    tokens = TOKEN.findall(cond)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def matching(pattern):
        if pattern == "them":
            return list(sels.values())
        rx = re.compile("^" + re.escape(pattern).replace(r"\*", ".*") + "$")
        return [f for n, f in sels.items() if rx.match(n)]

    def atom():
        t = take()
        if t == "(":
            f = expr()
            take()
            return f
        if t == "not":
            f = atom()
            return lambda e, d: not f(e, d)
        if t in ("1", "all") and peek() == "of":
            take()
            group = matching(take())
            if t == "1":
                return lambda e, d: any(g(e, d) for g in group)
            return lambda e, d: all(g(e, d) for g in group)
        return sels[t]

    def conj():
        f = atom()
        while peek() == "and":
            take()
            g, f0 = atom(), f
            f = (lambda a, b: lambda e, d: a(e, d) and b(e, d))(f0, g)
        return f

    def expr():
        f = conj()
        while peek() == "or":
            take()
            g, f0 = conj(), f
            f = (lambda a, b: lambda e, d: a(e, d) or b(e, d))(f0, g)
        return f

    return expr()


WINDOW = re.compile(r"^(\d+)([smhd])$")


class Rule:
    def __init__(self, doc):
        self.name = doc["name"]
        self.level = doc.get("level")
        det = dict(doc["detection"])
        cond = det.pop("condition")
        sels = {k: compile_selection(v) for k, v in det.items()}
        self.match = compile_condition(cond, sels)
        spec = doc["tripline"]
        self.title = spec["title"]
        self.dedup = spec["dedup"]
        n, unit = WINDOW.match(str(spec["window"])).groups()
        self.window = int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
        self.threshold = spec.get("threshold", 1)
        self.stale = spec.get("stale", False)
        self.initial = spec.get("initial", True)


def load_rules():
    rules = []
    for path in sorted(glob.glob(os.path.join(ROOT, "rules", "sigma", "*.yml"))):
        with open(path) as f:
            rules.append(Rule(yaml.safe_load(f)))
    return rules


PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def render(template, e, d):
    def one(m):
        v = get_field(e, d, m.group(1))
        return "-" if v is MISSING or v is None else str(v)[:160]
    return PLACEHOLDER.sub(one, template)


# ----------------------------------------------------------------------------------------
# The run


class NullSink(io.RawIOBase):
    def __init__(self):
        self.n = 0

    def writable(self):
        return True

    def write(self, b):
        self.n += len(b)
        return len(b)


def main():
    path = sys.argv[1]
    start = time.perf_counter()
    rules = load_rules()
    mapper = Mapper()
    sink = NullSink()
    out = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=1)
    quarantined = records = events = 0
    groups = {}
    with gzip.open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            records += 1
            try:
                evs = decode_record(line, path, records)
            except Quarantine:
                quarantined += 1
                continue
            for e in evs:
                events += 1
                out.write((json.dumps(e, separators=(",", ":")) + "\n").encode())
                name = e["name"] or ""
                query = e["query"] or name
                if query:
                    e["attack"] = mapper.techniques(e["pack"], query, name)
                d = derive(e)
                for rule in rules:
                    if not rule.match(e, d):
                        continue
                    if d["stale"] and not rule.stale:
                        continue
                    if d["initial"] and not rule.initial:
                        continue
                    t = e["unix_time"]
                    if t is None:
                        continue
                    ws = t // rule.window * rule.window
                    values = []
                    for f_ in rule.dedup:
                        v = get_field(e, d, f_)
                        values.append(None if v is MISSING else v)
                    key = (rule.name, json.dumps(values), ws)
                    g = groups.get(key)
                    if g is None:
                        g = groups[key] = {
                            "rule": rule.name, "severity": rule.level,
                            "title": render(rule.title, e, d), "values": values,
                            "window_start": rfc3339(ws), "first": t, "last": t, "count": 0,
                            "hosts": set(), "attack": [], "samples": [], "threshold": rule.threshold,
                        }
                    g["count"] += 1
                    g["first"] = min(g["first"], t)
                    g["last"] = max(g["last"], t)
                    if e["host"]:
                        g["hosts"].add(e["host"])
                    for tid in e["attack"]:
                        if tid not in g["attack"]:
                            g["attack"].append(tid)
                    if len(g["samples"]) < 5:
                        g["samples"].append(dict(e, derived=d))
    out.close()
    alerts_by_rule, matches_by_rule, alert_bytes = {}, {}, 0
    for g in groups.values():
        if g["count"] < g["threshold"]:
            continue
        g["hosts"] = sorted(g["hosts"])
        g["first_seen"], g["last_seen"] = rfc3339(g["first"]), rfc3339(g["last"])
        alert_bytes += len(json.dumps(g))
        alerts_by_rule[g["rule"]] = alerts_by_rule.get(g["rule"], 0) + 1
        matches_by_rule[g["rule"]] = matches_by_rule.get(g["rule"], 0) + g["count"]
    wall = time.perf_counter() - start
    print(json.dumps({
        "mode": "python",
        "wall_s": wall,
        "bytes_in": os.path.getsize(path),
        "bytes_decoded": 0,
        "records": records,
        "events": events,
        "quarantined": quarantined,
        "normalized_bytes": sink.n,
        "alerts": sum(alerts_by_rule.values()),
        "matches": sum(matches_by_rule.values()),
        "alert_json_bytes": alert_bytes,
        "alerts_by_rule": dict(sorted(alerts_by_rule.items())),
        "matches_by_rule": dict(sorted(matches_by_rule.items())),
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == "__main__":
    main()
