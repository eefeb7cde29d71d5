#!/usr/bin/env python3
"""Writes events/osquery/shapes-* (one file per framing/record variant) and events/broken/*
(damaged input).

The files are committed; this script documents how they were made and regenerates them
byte-for-byte (gzip mtime is fixed at 0). Record shapes follow osquery's and Fleet's
sources (see ARCHITECTURE.md, "Record shapes").
"""
import gzip
import io
import json
import os
import sys

OUT = os.path.join(os.path.dirname(__file__), "..", "events", "osquery")
BROKEN = os.path.join(os.path.dirname(__file__), "..", "events", "broken")
T0 = 1795161600  # 2026-11-20T08:00:00Z


def cal(t):
    import datetime
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return d.strftime("%a %b ") + f"{d.day:2d}" + d.strftime(" %H:%M:%S %Y UTC")


def rec(name, host, t, counter=1, **kw):
    r = {"name": name, "hostIdentifier": host, "calendarTime": cal(t), "unixTime": t,
         "epoch": 0, "counter": counter, "numerics": False}
    r.update(kw)
    return r


def firehose(obj):
    """What osquery's aws_firehose logger does: every scalar a string, empty containers "",
    '/' escaped as '\\/', log_type appended (Boost property_tree round trip)."""
    def conv(v):
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()} if v else ""
        if isinstance(v, list):
            return [conv(x) for x in v] if v else ""
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)
    o = conv(obj)
    o["log_type"] = "status" if "severity" in obj else "result"
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False).replace("/", "\\/")


def line(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def gz(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def write(name, data, out=OUT):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


native = [
    rec("pack_incident-response_crontab", "web-1", T0, columns={
        "command": "/usr/bin/certbot renew", "minute": "0", "hour": "3", "path": "/etc/crontab"}, action="added",
        decorations={"host_uuid": "6B20EF86-325D-E911-B2B6-00D861595693", "hostname": "web-1"}),
    rec("processes", "web-1", T0 + 1, counter=2, columns={"name": "nginx", "pid": "8123", "path": "/usr/sbin/nginx"},
        action="removed"),
    rec("pack_tripline-linux_listening_ports", "web-1", T0 + 2, columns={
        "pid": "911", "port": "22", "protocol": "6", "address": "0.0.0.0"}, action="snapshot"),
    {"diffResults": {"added": [{"name": "osqueryd", "path": "/opt/osquery/bin/osqueryd", "pid": "97830"}],
                     "removed": [{"name": "osqueryd", "path": "/opt/osquery/bin/osqueryd", "pid": "97650"}]},
     "name": "processes", "hostname": "hostname.local", "calendarTime": "Tue Sep 30 17:37:30 2014",
     "unixTime": "1412123850", "epoch": "314159265", "counter": "1", "numerics": False},
    {"action": "snapshot", "snapshot": [{"parent": "0", "path": "/sbin/launchd", "pid": "1"},
                                        {"parent": "1", "path": "/usr/sbin/syslogd", "pid": "51"}],
     "name": "process_snapshot", "hostIdentifier": "hostname.local", "calendarTime": "Mon May  2 22:27:32 2016 UTC",
     "unixTime": "1462228052", "epoch": "314159265", "counter": "1", "numerics": False},
    rec("socket_events", "web-1", T0 + 3, numerics=True, columns={
        "remote_address": "203.0.113.50", "remote_port": 4444, "local_port": 51234, "pid": 7731, "path": "/bin/bash",
        "ratio": 2.5, "family": None}, action="added"),
    {"hostIdentifier": "web-1", "calendarTime": cal(T0 + 4), "unixTime": T0 + 4, "severity": 0,
     "filename": "scheduler.cpp", "line": 84, "message": "Executing scheduled query pack_tripline-linux_crontab",
     "version": "5.12.1", "decorations": {"hostname": "web-1"}},
    # --decorations_top_level: decorations beside the record fields
    {"name": "users", "hostIdentifier": "web-1", "calendarTime": cal(T0 + 5), "unixTime": T0 + 5, "epoch": 0,
     "counter": 4, "numerics": False, "columns": {"username": "deploy", "uid": "1001"}, "action": "added",
     "host_uuid": "6B20EF86-325D-E911-B2B6-00D861595693", "hostname": "web-1.prod.example.com"},
]
# a last record without a newline
write("shapes-native.log", ("\n".join(line(r) for r in native)).encode())

fh = [
    rec("pack/Global/processes", "host-1", T0 + 10, counter=3, decorations={"host_uuid": "ABC", "hostname": "h"},
        columns={"path": "/usr/bin/curl", "pid": "30219", "cmdline": "curl \"x\" caf\u00e9\ttab"}, action="added"),
    {"diffResults": {"removed": [], "added": [{"a": "1", "b": "/tmp"}]}, "name": "q", "hostIdentifier": "h",
     "calendarTime": cal(T0 + 11), "unixTime": T0 + 11, "epoch": 0, "counter": 0, "numerics": True},
    {"snapshot": [], "action": "snapshot", "name": "q", "hostIdentifier": "h", "calendarTime": cal(T0 + 12),
     "unixTime": T0 + 12, "epoch": 0, "counter": 0, "numerics": True},
    {"name": "n", "hostIdentifier": "h", "columns": {"d": 2.5, "i": 42, "nul": None, "empty": ""}, "decorations": {},
     "action": "added", "unixTime": T0 + 13, "numerics": True},
    {"hostIdentifier": "h", "calendarTime": cal(T0 + 14), "unixTime": T0 + 14, "severity": 1,
     "filename": "tls.cpp", "line": 254, "message": "TLS/HTTPS POST request", "version": "5.12.1"},
    {"name": "pack_test_pack_time", "hostIdentifier": "DESKTOP-US4MMSD", "calendarTime": "Fri Nov 22 01:47:25 2019 UTC",
     "unixTime": 1574387245, "epoch": 0, "counter": 728, "logNumericsAsNumbers": True,
     "decorations": {"hostname": "DESKTOP-US4MMSD"}, "columns": {"unix_time": "1574387245", "weekday": "Friday"},
     "action": "added"},
]
# osquery's Firehose logger: one record per line, with \r\n in one place and a blank line
body = "\n".join(firehose(r) for r in fh[:3]) + "\r\n\n" + "\n".join(firehose(r) for r in fh[3:]) + "\n"
write("shapes-firehose.json.gz", gz(body.encode()))

# Kinesis logger records through a Firehose: no separators at all, and two gzip members
kin = "".join(firehose(r) for r in fh[:3]).encode()
kin2 = "".join(firehose(r) for r in fh[3:]).encode()
write("shapes-kinesis-concatenated", gz(kin) + gz(kin2))

fleet = [
    {"snapshot": [{"class": "9", "model": "AppleUSBVHCIBCE Root Hub Simulation", "model_id": "8007", "protocol": "",
                   "removable": "0", "serial": "0", "subclass": "255", "vendor": "Apple Inc.", "vendor_id": "05ac",
                   "version": "0.0"}],
     "action": "snapshot", "name": "pack/Global/All USB devices", "hostIdentifier": "F5B29579-E946-46A2-BB0F-7A8D1E304940",
     "calendarTime": "Wed Jan 29 22:17:17 2025 UTC", "unixTime": 1738189037, "epoch": 0, "counter": 0, "numerics": False,
     "decorations": {"host_uuid": "F5B29579-E946-46A2-BB0F-7A8D1E304940", "hostname": "foobar.local"}},
    {"name": "pack/Global/All USB devices", "hostIdentifier": "F5B29579-E946-46A2-BB0F-7A8D1E304940",
     "calendarTime": "Wed Jan 29 12:32:54 2025 UTC", "unixTime": 1738153974, "epoch": 0, "counter": 0, "numerics": False,
     "decorations": {"host_uuid": "F5B29579-E946-46A2-BB0F-7A8D1E304940", "hostname": "foobar.local"},
     "columns": {"class": "9", "model": "AppleUSBVHCIBCE Root Hub Simulation", "vendor": "Apple Inc."}, "action": "snapshot"},
    rec("pack/Global/logged_in_users", "F5B29579-E946-46A2-BB0F-7A8D1E304940", T0 + 20,
        columns={"user": "alice", "host": "198.51.100.23", "type": "user", "tty": "ttys001"}, action="added",
        decorations={"host_uuid": "F5B29579-E946-46A2-BB0F-7A8D1E304940", "hostname": "foobar.local"}),
]
write("shapes-fleet.json", ("\n".join(line(r) for r in fleet) + "\n").encode())

# Damaged input for the CLI and decoder tests.
good = [firehose(r) for r in fh]
broken = "\n".join([good[0], "this is not json", good[3][:40], '{"name":"q"}', good[4]]) + "\n"
write("mixed.log", broken.encode(), BROKEN)
full = gz(("\n".join(good * 50) + "\n").encode())
write("truncated.gz", full[: len(full) * 2 // 3], BROKEN)
print("wrote fixtures to", os.path.normpath(OUT), file=sys.stderr)
