#!/usr/bin/env python3
"""Generate rules/mappings/osquery-attck.yml from the osquery-attck query/technique table.

For maintainers only: the generated YAML is committed and tripline never runs this script.
Re-run it when the input table or the embedded ATT&CK release changes:

    python3 scripts/gen-osquery-attck-mapping.py path/to/query-technique-mapping.tsv \
        > rules/mappings/osquery-attck.yml

Input: the TSV describing every query of the public teoseller/osquery-attck packs (columns:
pack_file, query_name, platform, interval_s, logging, query_attck_ids, current_ids_attck_v18.1,
pack_attck_ids, description). The ATT&CK catalog and legacy-ID remap embedded in tripline-core
(shared/core/data/attack/) are used to resolve pack-level IDs and to check that every emitted ID
is a current technique, so the output is guaranteed to load.

Policy (also written into the output header):
  * technique IDs come from column 7 (query-level IDs already resolved to ATT&CK v18.1);
  * where column 7 is empty, the pack-level IDs are resolved to current IDs and used only if
    they come to at most PACK_FALLBACK_MAX techniques: a longer pack list describes the theme of
    a whole pack, not what a given query observes, and would bury every event under dozens of
    techniques;
  * otherwise the query is left out, with a comment saying why;
  * a query name used by several packs gets one unscoped entry if every pack maps it the same
    way, else one entry per pack with `pack:` (the pack file name without `.conf`);
  * a query name that tripline's own packs also use (rules/mappings/tripline-packs.yml, e.g.
    `shell_history`) is always scoped with `pack:`, so osquery-attck's pack-wide technique lists
    don't attach to our queries of the same name.

Only the Python standard library is used.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

PACK_FALLBACK_MAX = 3
REPO = Path(__file__).resolve().parent.parent
DEFAULT_CATALOG = REPO / "shared/core/data/attack/enterprise-attack-v18.1.json"
DEFAULT_REMAP = REPO / "shared/core/data/attack/legacy-id-remap.tsv"
TECHNIQUE_RE = re.compile(r"\bT\d{4}(?:\.\d{3})?\b")
PLAIN_SCALAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.+-]*$")
YAML_KEYWORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def die(msg: str) -> None:
    print(f"gen-osquery-attck-mapping: {msg}", file=sys.stderr)
    sys.exit(1)


def yaml_scalar(s: str) -> str:
    """Plain scalar when unambiguous, else a JSON string (a valid YAML double-quoted scalar)."""
    if PLAIN_SCALAR_RE.match(s) and s.lower() not in YAML_KEYWORDS:
        return s
    return json.dumps(s, ensure_ascii=False)


def comment(s: str) -> str:
    return " ".join(s.split())


def load_catalog(path: Path) -> dict[str, dict]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {t["id"]: t for t in data["techniques"]}


def load_remap(path: Path) -> dict[str, tuple[str, str]]:
    """legacy_id -> (status, current_id)."""
    remap = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("legacy_id\t"):
            continue
        cols = line.split("\t")
        remap[cols[0]] = (cols[2], cols[3])
    return remap


def resolve(tid: str, catalog: dict, remap: dict) -> str | None:
    """Current ID for a (possibly 2019-era) ID, None if deprecated without replacement."""
    if tid in remap:
        status, current = remap[tid]
        if status == "active":
            return tid
        return current or None
    t = catalog.get(tid)
    if t is None:
        die(f"{tid} is neither in the ATT&CK catalog nor in the remap table")
    if t["revoked"] or t["deprecated"]:
        die(f"{tid} is revoked/deprecated and not in the remap table; extend the table")
    return tid


def dedup(ids):
    seen, out = set(), []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tsv", type=Path, help="query-technique-mapping.tsv")
    ap.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    ap.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    ap.add_argument("--remap", type=Path, default=DEFAULT_REMAP)
    ap.add_argument(
        "--own-mapping",
        type=Path,
        default=REPO / "rules/mappings/tripline-packs.yml",
        help="tripline's own pack mapping; its query names are scoped here",
    )
    args = ap.parse_args()

    catalog = load_catalog(args.catalog)
    own_names = set(re.findall(r"^\s*- query: (\S+)\s*$", args.own_mapping.read_text(encoding="utf-8"), re.M))
    remap = load_remap(args.remap)

    source_notes, rows = [], []
    for n, line in enumerate(args.tsv.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("#"):
            source_notes.append(line.lstrip("# ").strip())
            continue
        if not line.strip() or line.startswith("pack_file\t"):
            continue
        cols = line.split("\t")
        if len(cols) < 9:
            die(f"{args.tsv}:{n}: expected 9 columns, found {len(cols)}")
        pack_file, query, platform = cols[0], cols[1], cols[2]
        as_written, current, pack_ids, description = cols[5], cols[6], cols[7], cols[8]
        row = {
            "line": n,
            "pack_file": pack_file,
            "pack": Path(pack_file).name.removesuffix(".conf"),
            "query": query.strip(),
            "raw_query": query,
            "platform": platform,
            "as_written": comment(as_written),
            "description": comment(description),
            "techniques": dedup(TECHNIQUE_RE.findall(current)),
            "origin": "query",
            "why_missing": None,
        }
        if not row["techniques"]:
            resolved = dedup(
                r for r in (resolve(t, catalog, remap) for t in TECHNIQUE_RE.findall(pack_ids)) if r
            )
            if not pack_ids.strip():
                row["why_missing"] = "no ATT&CK IDs upstream, neither for the query nor its pack"
            elif not resolved:
                row["why_missing"] = (
                    f"pack-level IDs ({comment(pack_ids)}) are all deprecated in ATT&CK v18.1"
                )
            elif len(resolved) > PACK_FALLBACK_MAX:
                row["why_missing"] = (
                    f"no query-level IDs; the pack-level list resolves to {len(resolved)} "
                    f"techniques, too broad to attribute to this query"
                )
            else:
                row["techniques"] = resolved
                row["origin"] = "pack"
        for tid in row["techniques"]:
            t = catalog.get(tid)
            if t is None or t["revoked"] or t["deprecated"]:
                die(f"{args.tsv}:{n}: {tid} is not a current ATT&CK technique")
        rows.append(row)

    # Group by query name, in first-seen order.
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["query"], []).append(row)

    out = []
    w = out.append
    w("# osquery-attck: ATT&CK techniques for the queries of the teoseller/osquery-attck packs.")
    w("#")
    w("# GENERATED by scripts/gen-osquery-attck-mapping.py; edit the generator, not this file.")
    w("#")
    w("# Derived from teoseller/osquery-attck (https://github.com/teoseller/osquery-attck),")
    w("# licensed under the Apache License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0).")
    for note in source_notes:
        w(f"# Input table: {note}")
    w("# Changes from upstream: only query names and ATT&CK IDs are kept; the 2019-era IDs written in")
    w("# the packs are replaced by the ATT&CK v18.1 techniques that revoked them, deprecated IDs are")
    w("# dropped.")
    w("#")
    w("# Policy:")
    w("#  - techniques: the query's own IDs (from its upstream description), resolved to v18.1;")
    w("#  - a query without its own IDs falls back to its pack's IDs only when those resolve to at")
    w(f"#    most {PACK_FALLBACK_MAX} techniques (marked 'from pack-level IDs'); a longer pack list is the")
    w("#    theme of the whole pack, not what this query observes;")
    w("#  - otherwise the query is left out, with a '# not mapped' comment saying why;")
    w("#  - a query name shared by several packs is scoped with `pack:` (the pack file name without")
    w("#    .conf) only where the packs map it differently. If you register the packs under other")
    w("#    names, adjust those entries (or map the full logged name instead);")
    w("#  - a query name that tripline's own packs also use (rules/mappings/tripline-packs.yml) is")
    w("#    always scoped with `pack:`, so these pack-wide lists don't attach to our queries.")
    w("")
    w("mappings:")

    emitted = skipped = 0
    for query, group in groups.items():
        mapped = [r for r in group if r["techniques"]]
        for r in group:
            if not r["techniques"]:
                w(f"  # not mapped: {yaml_scalar(query)} ({r['pack_file']}): {r['why_missing']}")
                skipped += 1
        if not mapped:
            continue
        same = len({tuple(r["techniques"]) for r in mapped}) == 1
        scoped = not same or query in own_names
        entries = mapped if scoped else [mapped[0]]
        for r in entries:
            packs = [r] if scoped else mapped
            for p in packs:
                line = f"  # {p['pack_file']} ({p['platform']}): {p['description']}"
                w(line.rstrip())
                if p["raw_query"] != p["query"]:
                    w(f"  #   upstream query name has surrounding whitespace: {json.dumps(p['raw_query'])}")
                written = TECHNIQUE_RE.findall(p["as_written"])
                if written and not all(t in p["description"] for t in written):
                    w(f"  #   upstream IDs: {p['as_written']}")
            if r["origin"] == "pack":
                w("  #   from pack-level IDs (the query has none of its own)")
            w(f"  - query: {yaml_scalar(query)}")
            if scoped:
                w(f"    pack: {yaml_scalar(r['pack'])}")
            w(f"    techniques: [{', '.join(r['techniques'])}]")
            emitted += 1

    text = "\n".join(out) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    print(
        f"gen-osquery-attck-mapping: {len(rows)} queries -> {emitted} entries, {skipped} left out",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
