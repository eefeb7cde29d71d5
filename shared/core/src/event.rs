//! The normalized event: one JSON object per osquery row or status line.
//!
//! Field names here are a public contract: Sigma rules address them by dotted path
//! (`columns.cmdline`, `decorations.hostname`), users query them in Athena and Splunk,
//! and the detect function reads them back from the normalized NDJSON. Add fields; never
//! rename them.

use crate::attack::Techniques;
use crate::fields::{is_clean, write_str, Fields};
use crate::tables::{Tables, TablesFrom};
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

/// Whether an event is a query result row or an osquery status (log) line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A row of a scheduled query's result.
    Result,
    /// A line of osquery's own status log.
    Status,
}

/// What happened to a result row: osquery's differential `added`/`removed`, or a
/// `snapshot` row (from a snapshot record or a snapshot logged as events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The row appeared since the query's last run.
    Added,
    /// The row disappeared since the query's last run.
    Removed,
    /// The row is part of a whole result set.
    Snapshot,
}

impl Action {
    /// `added`, `removed` or `snapshot`; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "added" => Some(Action::Added),
            "removed" => Some(Action::Removed),
            "snapshot" => Some(Action::Snapshot),
            _ => None,
        }
    }

    /// The name osquery logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Added => "added",
            Action::Removed => "removed",
            Action::Snapshot => "snapshot",
        }
    }
}

/// Where an event or quarantined record came from, precise enough to find the bytes again.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// The S3 bucket of the object, when it came from S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// The S3 key of the object, when it came from S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The local file, when it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// 1-based index of the record in the object.
    pub record: u64,
    /// 0-based index of the row within the record (always 0 for event and status records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
}

/// Observables pulled out of the columns so responders (and rules) need not know each
/// table's column names. Each list is deduplicated and keeps first-seen order.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicators {
    /// IPv4 and IPv6 addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip: Vec<String>,
    /// Domain names, including the hosts of URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domain: Vec<String>,
    /// MD5 hashes, lower case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub md5: Vec<String>,
    /// SHA-1 hashes, lower case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sha1: Vec<String>,
    /// SHA-256 hashes, lower case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sha256: Vec<String>,
    /// User names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<String>,
}

/// `clone_from` keeps the target's buffers (see [`Event`]'s `Clone`).
impl Clone for SourceRef {
    fn clone(&self) -> Self {
        let SourceRef {
            bucket,
            key,
            path,
            record,
            row,
        } = self;
        SourceRef {
            bucket: bucket.clone(),
            key: key.clone(),
            path: path.clone(),
            record: *record,
            row: *row,
        }
    }

    fn clone_from(&mut self, source: &Self) {
        let SourceRef {
            bucket,
            key,
            path,
            record,
            row,
        } = source;
        self.bucket.clone_from(bucket);
        self.key.clone_from(key);
        self.path.clone_from(path);
        self.record = *record;
        self.row = *row;
    }
}

/// `clone_from` keeps the target's buffers (see [`Event`]'s `Clone`).
impl Clone for Indicators {
    fn clone(&self) -> Self {
        let Indicators {
            ip,
            domain,
            md5,
            sha1,
            sha256,
            user,
        } = self;
        Indicators {
            ip: ip.clone(),
            domain: domain.clone(),
            md5: md5.clone(),
            sha1: sha1.clone(),
            sha256: sha256.clone(),
            user: user.clone(),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        let Indicators {
            ip,
            domain,
            md5,
            sha1,
            sha256,
            user,
        } = source;
        // Most lists are empty, and `clear` is cheaper than a general `clone_from`.
        #[inline]
        fn copy(to: &mut Vec<String>, from: &Vec<String>) {
            if from.is_empty() {
                to.clear();
            } else {
                to.clone_from(from);
            }
        }
        copy(&mut self.ip, ip);
        copy(&mut self.domain, domain);
        copy(&mut self.md5, md5);
        copy(&mut self.sha1, sha1);
        copy(&mut self.sha256, sha256);
        copy(&mut self.user, user);
    }
}

impl Indicators {
    /// Empties every list, keeping the buffers.
    pub fn clear(&mut self) {
        let Indicators {
            ip,
            domain,
            md5,
            sha1,
            sha256,
            user,
        } = self;
        for list in [ip, domain, md5, sha1, sha256, user] {
            list.clear();
        }
    }

    /// Whether no indicator was found.
    pub fn is_empty(&self) -> bool {
        self.ip.is_empty()
            && self.domain.is_empty()
            && self.md5.is_empty()
            && self.sha1.is_empty()
            && self.sha256.is_empty()
            && self.user.is_empty()
    }
}

/// One normalized osquery row (or status line).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// A result row or a status line.
    pub kind: Kind,
    /// The query name exactly as logged (`pack/Global/crontab`, `pack_osx-attacks_Keylogger`).
    pub name: Option<String>,
    /// The pack the query belongs to, when the name carries one we can resolve.
    pub pack: Option<String>,
    /// The query name without its pack prefix.
    pub query: Option<String>,
    /// The osquery tables the row came from, the one that explains the row first; empty
    /// when nothing is known (see [`crate::tables`]).
    #[serde(default)]
    pub tables: Tables,
    /// How `tables` were known: `sql` (the query's SQL), `columns` (inferred from the
    /// row's column names), or null.
    #[serde(default)]
    pub tables_from: Option<TablesFrom>,
    /// Several sets of tables explained the row's columns equally; `tables` holds them all
    /// (or, when too many fit to list, the tables every one of them has).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tables_ambiguous: bool,
    /// The host identifier osquery logged (`hostIdentifier`).
    pub host: Option<String>,
    /// `added`, `removed` or `snapshot`; `None` for status lines.
    pub action: Option<Action>,
    /// Column values exactly as logged (strings, numbers or null), sorted by name.
    pub columns: Fields,
    /// osquery decorations (host-wide values added to every record), sorted by name.
    pub decorations: Fields,
    /// RFC 3339 UTC, from `unixTime`, else `calendarTime`.
    pub time: Option<String>,
    /// Seconds since the Unix epoch behind `time`, kept so consumers need not re-parse it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unix_time: Option<i64>,
    /// osquery's `epoch` (changes when a query's history is reset).
    pub epoch: Option<i64>,
    /// osquery's `counter`: 0 on a query's first run on a host.
    pub counter: Option<i64>,
    /// Whether osquery logged numbers as JSON numbers (`numerics`).
    pub numerics: bool,
    /// Status lines: glog severity (0 info, 1 warning, 2 error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<i64>,
    /// Status lines: the osquery source file that logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Status lines: the line in that file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<i64>,
    /// Status lines: the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Status lines: the osquery version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where the record came from.
    pub source: SourceRef,
    /// Stable content hash: the same record and row always give the same id, so
    /// Firehose's at-least-once duplicates and replays can be recognized downstream.
    pub id: String,
    /// Observables found in the columns.
    pub indicators: Indicators,
    /// ATT&CK techniques (`{id, name, tactics}`) from the query mapping; filled in by the
    /// detect stage.
    #[serde(default, skip_serializing_if = "Techniques::is_empty")]
    pub attack: Techniques,
}

/// Written out so that `clone_from` keeps the target's buffers: the decoder fills events
/// handed back to it ([`crate::decode::ObjectDecoder::recycle`]) from a record's template
/// with `clone_from`, so its strings and fields are copied into capacity the event already
/// has instead of being allocated per row. Destructured so that a new field is a compile
/// error here.
impl Clone for Event {
    fn clone(&self) -> Self {
        let Event {
            kind,
            name,
            pack,
            query,
            tables,
            tables_from,
            tables_ambiguous,
            host,
            action,
            columns,
            decorations,
            time,
            unix_time,
            epoch,
            counter,
            numerics,
            severity,
            filename,
            line,
            message,
            version,
            source,
            id,
            indicators,
            attack,
        } = self;
        Event {
            kind: *kind,
            name: name.clone(),
            pack: pack.clone(),
            query: query.clone(),
            tables: tables.clone(),
            tables_from: *tables_from,
            tables_ambiguous: *tables_ambiguous,
            host: host.clone(),
            action: *action,
            columns: columns.clone(),
            decorations: decorations.clone(),
            time: time.clone(),
            unix_time: *unix_time,
            epoch: *epoch,
            counter: *counter,
            numerics: *numerics,
            severity: *severity,
            filename: filename.clone(),
            line: *line,
            message: message.clone(),
            version: version.clone(),
            source: source.clone(),
            id: id.clone(),
            indicators: indicators.clone(),
            attack: attack.clone(),
        }
    }

    fn clone_from(&mut self, other: &Self) {
        let Event {
            kind,
            name,
            pack,
            query,
            tables,
            tables_from,
            tables_ambiguous,
            host,
            action,
            columns,
            decorations,
            time,
            unix_time,
            epoch,
            counter,
            numerics,
            severity,
            filename,
            line,
            message,
            version,
            source,
            id,
            indicators,
            attack,
        } = other;
        self.kind = *kind;
        self.name.clone_from(name);
        self.pack.clone_from(pack);
        self.query.clone_from(query);
        // A shared list: copying it is a reference count.
        self.tables.clone_from(tables);
        self.tables_from = *tables_from;
        self.tables_ambiguous = *tables_ambiguous;
        self.host.clone_from(host);
        self.action = *action;
        self.columns.clone_from(columns);
        self.decorations.clone_from(decorations);
        self.time.clone_from(time);
        self.unix_time = *unix_time;
        self.epoch = *epoch;
        self.counter = *counter;
        self.numerics = *numerics;
        self.severity = *severity;
        self.filename.clone_from(filename);
        self.line = *line;
        self.message.clone_from(message);
        self.version.clone_from(version);
        self.source.clone_from(source);
        self.id.clone_from(id);
        self.indicators.clone_from(indicators);
        // A shared list: copying it is a reference count, not the techniques.
        self.attack.clone_from(attack);
    }
}

impl Event {
    /// Writes the event as one NDJSON line ([`Event::write_json`] and a newline) with one
    /// `write_all`, building it in `scratch`, a buffer the caller keeps between events.
    pub fn write_line(
        &self,
        out: &mut (impl Write + ?Sized),
        scratch: &mut Vec<u8>,
    ) -> io::Result<()> {
        scratch.clear();
        self.write_json(scratch);
        scratch.push(b'\n');
        out.write_all(scratch)
    }

    /// Appends this event as one JSON object, byte for byte what `serde_json` writes for
    /// it (a test holds the two together), without a trailing newline.
    ///
    /// Writing the normalized NDJSON is a large part of the parse stage, and `serde_json`
    /// scans every string byte by byte for characters to escape. Here the columns and
    /// decorations skip that scan for what came in without escapes ([`Fields::write_json`]),
    /// and the header fields, short and mostly plain, take a vectorized check first.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Destructured so that a new field is a compile error here, not a silent omission.
        let Event {
            kind,
            name,
            pack,
            query,
            tables,
            tables_from,
            tables_ambiguous,
            host,
            action,
            columns,
            decorations,
            time,
            unix_time,
            epoch,
            counter,
            numerics,
            severity,
            filename,
            line,
            message,
            version,
            source,
            id,
            indicators,
            attack,
        } = self;
        out.extend_from_slice(match kind {
            Kind::Result => br#"{"kind":"result","name":"#,
            Kind::Status => br#"{"kind":"status","name":"#,
        });
        opt_str(out, name);
        out.extend_from_slice(br#","pack":"#);
        opt_str(out, pack);
        out.extend_from_slice(br#","query":"#);
        opt_str(out, query);
        out.extend_from_slice(br#","tables":"#);
        out.extend_from_slice(tables.json().as_bytes());
        out.extend_from_slice(match tables_from {
            None => br#","tables_from":null"#,
            Some(TablesFrom::Sql) => br#","tables_from":"sql""#,
            Some(TablesFrom::Columns) => br#","tables_from":"columns""#,
        });
        if *tables_ambiguous {
            out.extend_from_slice(br#","tables_ambiguous":true"#);
        }
        out.extend_from_slice(br#","host":"#);
        opt_str(out, host);
        out.extend_from_slice(br#","action":"#);
        out.extend_from_slice(match action {
            None => b"null",
            Some(Action::Added) => br#""added""#,
            Some(Action::Removed) => br#""removed""#,
            Some(Action::Snapshot) => br#""snapshot""#,
        });
        out.extend_from_slice(br#","columns":"#);
        columns.write_json(out);
        out.extend_from_slice(br#","decorations":"#);
        decorations.write_json(out);
        out.extend_from_slice(br#","time":"#);
        opt_str(out, time);
        if let Some(t) = unix_time {
            out.extend_from_slice(br#","unix_time":"#);
            int(out, *t);
        }
        out.extend_from_slice(br#","epoch":"#);
        opt_int(out, *epoch);
        out.extend_from_slice(br#","counter":"#);
        opt_int(out, *counter);
        out.extend_from_slice(if *numerics {
            br#","numerics":true"#
        } else {
            br#","numerics":false"#
        });
        if let Some(v) = severity {
            out.extend_from_slice(br#","severity":"#);
            int(out, *v);
        }
        if let Some(v) = filename {
            out.extend_from_slice(br#","filename":"#);
            string(out, v);
        }
        if let Some(v) = line {
            out.extend_from_slice(br#","line":"#);
            int(out, *v);
        }
        if let Some(v) = message {
            out.extend_from_slice(br#","message":"#);
            string(out, v);
        }
        if let Some(v) = version {
            out.extend_from_slice(br#","version":"#);
            string(out, v);
        }
        let SourceRef {
            bucket,
            key,
            path,
            record,
            row,
        } = source;
        out.extend_from_slice(br#","source":{"#);
        for (label, v) in [
            (&br#""bucket":"#[..], bucket),
            (br#""key":"#, key),
            (br#""path":"#, path),
        ] {
            if let Some(v) = v {
                out.extend_from_slice(label);
                string(out, v);
                out.push(b',');
            }
        }
        out.extend_from_slice(br#""record":"#);
        out.extend_from_slice(itoa::Buffer::new().format(*record).as_bytes());
        if let Some(row) = row {
            out.extend_from_slice(br#","row":"#);
            out.extend_from_slice(itoa::Buffer::new().format(*row).as_bytes());
        }
        out.extend_from_slice(br#"},"id":"#);
        string(out, id);
        out.extend_from_slice(br#","indicators":"#);
        if indicators.is_empty() {
            out.extend_from_slice(b"{}");
        } else {
            json(out, indicators);
        }
        if !attack.is_empty() {
            out.extend_from_slice(br#","attack":"#);
            out.extend_from_slice(attack.json().as_bytes());
        }
        out.push(b'}');
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    write_str(out, s, is_clean(s));
}

fn opt_str(out: &mut Vec<u8>, s: &Option<String>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn opt_int(out: &mut Vec<u8>, n: Option<i64>) {
    match n {
        Some(n) => int(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

/// The rarer parts (non-empty indicators, ATT&CK references) through `serde_json` itself.
fn json(out: &mut Vec<u8>, v: &impl Serialize) {
    serde_json::to_writer(&mut *out, v).expect("writing JSON to a Vec");
}

/// One quarantine entry: a record that could not be decoded or recognized, kept with the
/// reason and its first bytes; or, with [`Quarantined::object`], the object itself (at most
/// one such entry per object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// Where the record came from. An object entry's `record` is 0 (records count from 1).
    pub source: SourceRef,
    /// Why the record could not be normalized: a sentence. For an object entry, one of the
    /// codes of [`crate::decode::ObjectReason`], the sentence being `object.message`.
    pub reason: String,
    /// The first [`crate::decode::QUARANTINE_RAW_BYTES`] bytes of the record, lossily UTF-8.
    /// For an object entry, those of the first line it stands for (empty if none).
    pub raw: String,
    /// The record's full length in bytes (it may be longer than `raw`). For an object
    /// entry, the decompressed bytes of the lines it stands for.
    pub bytes: u64,
    /// Present only on an object entry: where in the object its problem was met.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectDetail>,
}

/// What an object-level quarantine entry says about its object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectDetail {
    /// Decompressed bytes read before the problem was met: where inflating failed, the
    /// decompression cap; 0 for an entry about the object from its start (`not_osquery`,
    /// `not_json`, `empty`).
    pub offset: u64,
    /// Gzip objects with a decompression problem only: bytes of the stored (compressed)
    /// object the inflater had consumed when it stopped, gzip headers included. The
    /// damage was detected there, which is at or after the damaged byte: a changed byte
    /// can inflate to wrong bytes and fail only the member's CRC-32 at its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressed_offset: Option<u64>,
    /// Lines that are not records and that this entry stands for instead of an entry each
    /// (their bytes are the entry's `bytes`).
    pub lines: u64,
    /// What happened, in at most [`crate::decode::MAX_MESSAGE_BYTES`] bytes.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::TechniqueRef;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn same_bytes(e: &Event) {
        let mut ours = Vec::new();
        e.write_json(&mut ours);
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string(e).unwrap()
        );
    }

    fn sample() -> Event {
        Event {
            kind: Kind::Result,
            name: Some("pack/p/q".into()),
            pack: Some("p".into()),
            query: Some("q".into()),
            tables: vec!["processes".to_string(), "process_open_sockets".to_string()].into(),
            tables_from: Some(TablesFrom::Sql),
            tables_ambiguous: true,
            host: Some("h\"1".into()),
            action: Some(Action::Removed),
            columns: json!({"a": "x\ny", "b": 2}).as_object().unwrap().into(),
            decorations: json!({"hostname": "h"}).as_object().unwrap().into(),
            time: Some("2024-01-01T00:00:00Z".into()),
            unix_time: Some(1_704_067_200),
            epoch: Some(-1),
            counter: None,
            numerics: true,
            severity: Some(2),
            filename: Some("tls.cpp".into()),
            line: Some(7),
            message: Some("a\\b".into()),
            version: Some("5.1".into()),
            source: SourceRef {
                bucket: Some("b".into()),
                key: Some("k/1.gz".into()),
                path: None,
                record: 3,
                row: Some(1),
            },
            id: "abc".into(),
            indicators: Indicators {
                ip: vec!["10.0.0.1".into()],
                ..Default::default()
            },
            attack: vec![TechniqueRef {
                id: "T1".into(),
                name: "N".into(),
                tactics: vec!["t".into()],
                url: None,
            }]
            .into(),
        }
    }

    #[test]
    fn write_json_is_serde_json_byte_for_byte() {
        let full = sample();
        same_bytes(&full);
        let mut e = full.clone();
        e.kind = Kind::Status;
        e.name = None;
        e.pack = None;
        e.query = None;
        e.tables = Tables::new();
        e.tables_from = None;
        e.tables_ambiguous = false;
        e.host = None;
        e.action = None;
        e.time = None;
        e.unix_time = None;
        e.epoch = None;
        e.counter = Some(0);
        e.numerics = false;
        e.severity = None;
        e.filename = None;
        e.line = None;
        e.message = None;
        e.version = None;
        e.source = SourceRef::default();
        e.indicators = Indicators::default();
        e.attack = Techniques::new();
        e.columns = Fields::new();
        same_bytes(&e);
        for action in [Action::Added, Action::Snapshot] {
            e.action = Some(action);
            same_bytes(&e);
        }
    }

    #[test]
    fn write_json_matches_on_every_fixture() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");
        let mut events = 0;
        for sub in ["osquery", "broken"] {
            for entry in std::fs::read_dir(format!("{dir}/{sub}")).unwrap() {
                let path = entry.unwrap().path();
                let file = std::fs::File::open(&path).unwrap();
                for item in crate::decode::ObjectDecoder::new(
                    file,
                    crate::decode::Origin::path(path.display().to_string()),
                    Default::default(),
                ) {
                    if let crate::decode::Decoded::Event(e) = item {
                        same_bytes(&e);
                        events += 1;
                    }
                }
            }
        }
        assert!(events > 200, "only {events} fixture events");
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z/._-]{0,12}", "\\PC{0,8}", any::<String>()]
    }

    proptest! {
        #[test]
        fn write_json_matches_on_any_event(
            strs in prop::collection::vec(prop::option::of(text()), 10),
            ints in prop::collection::vec(prop::option::of(any::<i64>()), 6),
            cols in prop::collection::btree_map(text(), text(), 0..6),
            record in any::<u64>(),
            row in prop::option::of(any::<u64>()),
            numerics in any::<bool>(),
        ) {
            let mut e = sample();
            let s = |i: usize| strs[i].clone();
            (e.name, e.pack, e.query, e.host, e.time) = (s(0), s(1), s(2), s(3), s(4));
            (e.filename, e.message, e.version) = (s(5), s(6), s(7));
            (e.source.bucket, e.source.path) = (s(8), s(9));
            (e.unix_time, e.epoch, e.counter) = (ints[0], ints[1], ints[2]);
            (e.severity, e.line) = (ints[3], ints[4]);
            e.source.record = record;
            e.source.row = row;
            e.numerics = numerics;
            e.id = s(0).unwrap_or_default();
            let map: serde_json::Map<String, Value> =
                cols.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            e.columns = Fields::from(&map);
            let mut ours = Vec::new();
            e.write_json(&mut ours);
            prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&e).unwrap());
        }
    }
}
