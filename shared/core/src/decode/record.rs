//! One osquery record (already framed) into normalized events.
//!
//! The same logical record reaches us in several spellings: native JSON from the
//! filesystem/TLS loggers and Fleet, and the "every scalar is a string, empty containers
//! are `""`" rewrite of osquery's AWS loggers. Everything here accepts both, so the rest
//! of tripline sees one shape. [`super::raw`] does the JSON parsing in one pass; this
//! module turns its parts into events.

use std::borrow::Cow;
use std::collections::VecDeque;

use serde_json::Value;
use xxhash_rust::xxh3::xxh3_128;

use super::raw::{self, Diff, Object, Parsed, RawRecord, Rows, Scalar};
use super::Origin;
use crate::event::{Action, Event, Kind, SourceRef};
use crate::fields::{put_prefixed, Fields};
use crate::tables::{Row, TableCache, Tables, TablesFrom};
use crate::worker::{EVENT_BATCH, EVENT_BATCHES};
use crate::{derive, indicators, query_name};

/// Why a record was quarantined.
pub(crate) type Reason = String;

/// A record [`decode`] could not normalize: why, and whether it is a record at all.
#[derive(Debug)]
pub(crate) struct Rejected {
    pub(crate) reason: Reason,
    /// A JSON object with at least one member: a record of some shape, whatever made it
    /// unusable. Bytes that are not JSON, a JSON array and `{}` are not: those are what
    /// binary or foreign data framed by chance looks like, so they do not show that an
    /// object holds records (see `super::Verdict`).
    pub(crate) record_like: bool,
}

impl From<Reason> for Rejected {
    /// A reason found after the record parsed as a JSON object with members.
    fn from(reason: Reason) -> Self {
        Rejected {
            reason,
            record_like: true,
        }
    }
}

impl Rejected {
    fn not_a_record(reason: Reason) -> Self {
        Rejected {
            reason,
            record_like: false,
        }
    }
}

/// Most events [`Reuse::spare`] holds: what a detection thread can have in flight
/// ([`EVENT_BATCH`] × [`EVENT_BATCHES`]) plus one batch,
/// so a one-process run reuses every event, while memory stays bounded whatever the caller
/// hands back.
pub(crate) const MAX_SPARE: usize = (EVENT_BATCHES + 1) * EVENT_BATCH;

/// What the decoder keeps from record to record so that an event costs few allocations.
///
/// Every row of a record shares most of its event (name, pack, query, host, time, source,
/// decorations...): that part is built once per record into `template`, whose strings keep
/// their capacity from record to record, and copied into each row's event with
/// [`Event::clone_from`]. Events the caller is done with come back into `spare`
/// ([`super::ObjectDecoder::recycle`]) and are refilled that way, so a recycled event's
/// strings and fields are overwritten in place, not freed and allocated again: building
/// every event afresh takes an allocation per string and field, which with their frees is
/// a large share of the decoding thread (BENCHMARKS.md, "figures moved out of code").
pub(crate) struct Reuse {
    /// Event-id layout.
    scratch: Vec<u8>,
    template: Event,
    /// Boxed, as the decoder yields them: handing one back and out again moves a pointer.
    #[allow(clippy::vec_box)]
    pub(crate) spare: Vec<Box<Event>>,
    /// Emptied rows and decorations for [`raw::parse`] to fill: the columns a refilled
    /// event had, and the template's previous decorations.
    fields: Vec<Fields>,
}

impl Default for Reuse {
    fn default() -> Self {
        Reuse {
            scratch: Vec::new(),
            template: placeholder(),
            spare: Vec::new(),
            fields: Vec::new(),
        }
    }
}

impl Reuse {
    /// A spare event, or a new empty one.
    fn event(&mut self) -> Box<Event> {
        self.spare.pop().unwrap_or_else(|| Box::new(placeholder()))
    }

    /// Keeps `fields`' buffers for a later row (as many as events are kept).
    fn give_back(&mut self, fields: Fields) {
        if self.fields.len() < MAX_SPARE {
            self.fields.push(fields);
        }
    }
}

/// Decodes one framed record (number `record`, 1-based, of the object from `origin`) into
/// `out`, one event per row. Returns the number of warnings (missing fields).
pub(crate) fn decode(
    bytes: &[u8],
    origin: &Origin,
    record: u64,
    extra_packs: &[String],
    tables: &mut TableCache,
    reuse: &mut Reuse,
    out: &mut VecDeque<Box<Event>>,
) -> Result<u64, Rejected> {
    // One UTF-8 check for the whole record lets serde_json skip it per string.
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Rejected::not_a_record(format!(
            "invalid JSON: not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let mut r = match raw::parse(text, &mut reuse.fields)
        .map_err(|e| Rejected::not_a_record(format!("invalid JSON: {e}")))?
    {
        Parsed::Record(r) => r,
        Parsed::NotObject(kind) => {
            return Err(Rejected::not_a_record(format!(
                "record is a JSON {kind}, not an object"
            )))
        }
    };

    // Only a record without any known field fails here, so only here can it be `{}`: the
    // frame's first and last bytes are its braces.
    let shape = Shape::of(&r).map_err(|reason| Rejected {
        reason,
        record_like: !bytes[1..bytes.len() - 1].trim_ascii().is_empty(),
    })?;
    let mut warnings = 0;

    // Rows, taken out before the leftover keys become decorations (and before anything is
    // written to the template, so a record quarantined here leaves nothing half-built).
    let rows: Vec<(Action, Fields)> = match shape {
        Shape::Event(action) => vec![(action, object_or_empty(r.columns.take(), "columns")?)],
        Shape::Snapshot => rows_of(r.snapshot.take(), "snapshot")?
            .into_iter()
            .map(|r| (Action::Snapshot, r))
            .collect(),
        Shape::Batch => {
            let (added, removed) = match r.diff_results.take() {
                None | Some(Diff::Empty) => (None, None),
                Some(Diff::Lists { added, removed }) => (Some(added), Some(removed)),
                Some(Diff::Wrong(kind)) => {
                    return Err(format!("diffResults is a JSON {kind}, not an object").into())
                }
            };
            let mut rows = Vec::new();
            for (list, key, action) in [
                (added, "added", Action::Added),
                (removed, "removed", Action::Removed),
            ] {
                for row in rows_of(list, key)? {
                    rows.push((action, row));
                }
            }
            rows
        }
        Shape::Status => Vec::new(),
    };
    let mut decorations = object_or_empty(r.decorations.take(), "decorations")?;

    // The template: every field set here, for every record (destructured so that a new
    // field is a compile error until it is).
    let Event {
        kind,
        name,
        pack,
        query,
        tables: template_tables,
        tables_from,
        tables_ambiguous,
        host,
        action,
        columns,
        decorations: template_decorations,
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
    } = &mut reuse.template;

    *kind = if shape == Shape::Status {
        Kind::Status
    } else {
        Kind::Result
    };
    // `hostname` names the host only in old records; with hostIdentifier present it is a
    // (top-level) decoration.
    match r.host_identifier.take() {
        Some(host_id) => set(host, scalar_text(&host_id).as_deref()),
        None => set(
            host,
            r.hostname.take().as_ref().and_then(value_text).as_deref(),
        ),
    }
    let seconds = r.unix_time.as_ref().and_then(as_i64).filter(|t| *t > 0);
    let seconds = seconds.or_else(|| {
        r.calendar_time
            .as_ref()
            .and_then(Scalar::as_str)
            .and_then(parse_calendar_time)
    });
    if host.is_none() {
        warnings += 1;
    }
    if seconds.is_none() {
        warnings += 1;
    }
    // The template's `time` is always `unix_time` formatted: the same second (most
    // records of a batch) is not formatted again.
    if *unix_time != seconds {
        *time = seconds.map(crate::rfc3339::format);
    }
    *unix_time = seconds;
    // Consecutive records mostly come from the same query: the name is compared before
    // it is split again.
    let new_name = r.name.as_ref().and_then(scalar_text);
    if name.as_deref() != new_name.as_deref() {
        set(name, new_name.as_deref());
        match name.as_deref() {
            Some(full) => {
                let (p, q) = query_name::parse_with(full, extra_packs);
                set(pack, p);
                set(query, Some(q));
            }
            None => (*pack, *query) = (None, None),
        }
    }
    if shape != Shape::Status && name.is_none() {
        warnings += 1;
    }
    *action = None;
    columns.clear();
    *epoch = r.epoch.as_ref().and_then(as_i64);
    *counter = r.counter.as_ref().and_then(as_i64);
    *numerics = r
        .numerics
        .as_ref()
        .or(r.log_numerics_as_numbers.as_ref())
        .and_then(as_bool)
        .unwrap_or(false);

    // Status fields belong to status records; in result records they are decorations.
    let status = std::mem::take(&mut r.status);
    if shape == Shape::Status {
        let [sev, file, ln, msg, ver] = &status;
        *severity = sev.as_ref().and_then(value_i64);
        set(filename, file.as_ref().and_then(value_text).as_deref());
        *line = ln.as_ref().and_then(value_i64);
        set(message, msg.as_ref().and_then(value_text).as_deref());
        set(version, ver.as_ref().and_then(value_text).as_deref());
    } else {
        (*severity, *filename, *line, *message, *version) = (None, None, None, None, None);
    }
    source.bucket.clone_from(&origin.bucket);
    source.key.clone_from(&origin.key);
    source.path.clone_from(&origin.path);
    source.record = record;
    source.row = None;
    id.clear();
    indicators.clear();
    attack.clear();
    // Set per row: a row's tables depend on its columns.
    template_tables.clear();
    (*tables_from, *tables_ambiguous) = (None, false);

    // Top-level keys osquery doesn't own are decorations (`--decorations_top_level`);
    // the `decorations` object wins over a top-level key of the same name.
    if let Some(hostname) = r.hostname.take() {
        decorations.insert_if_absent("hostname", &hostname);
    }
    if shape != Shape::Status {
        for (key, value) in raw::STATUS_KEYS.into_iter().zip(status) {
            if let Some(value) = value {
                decorations.insert_if_absent(key, &value);
            }
        }
    }
    for (key, value) in r.extra.drain(..) {
        decorations.insert_if_absent(&key, &value);
    }
    let old = std::mem::replace(template_decorations, decorations);
    reuse.give_back(old);
    let platform =
        derive::declared_platform(&reuse.template.decorations, reuse.template.pack.as_deref());

    if shape == Shape::Status {
        let mut event = reuse.event();
        Event::clone_from(&mut event, &reuse.template);
        event.source.row = Some(0);
        let hash = event_id(&event, 0, &mut reuse.scratch);
        set_hex128(&mut event.id, hash);
        out.push_back(event);
    } else {
        let mut previous = PreviousRow::default();
        for (row, (action, columns)) in rows.into_iter().enumerate() {
            let mut event = reuse.event();
            Event::clone_from(&mut event, &reuse.template);
            event.action = Some(action);
            indicators::extract_into(&columns, &mut event.indicators);
            // The rows of one record are one query's result: their column names are the
            // same, so the previous row's tables stand unless its column count or first
            // and last names say otherwise.
            if !previous.same_shape(&columns) {
                let row_names = Row {
                    name: event.name.as_deref(),
                    pack: event.pack.as_deref(),
                    query: event.query.as_deref(),
                    platform,
                };
                let resolved = tables.resolve(row_names, &columns);
                previous.tables.clone_from(&resolved.tables);
                previous.tables_from = resolved.from;
                previous.tables_ambiguous = resolved.ambiguous;
                previous.remember(&columns);
            }
            event.tables.clone_from(&previous.tables);
            event.tables_from = previous.tables_from;
            event.tables_ambiguous = previous.tables_ambiguous;
            let old = std::mem::replace(&mut event.columns, columns);
            reuse.give_back(old);
            event.source.row = Some(row as u64);
            let hash = event_id(&event, row as u64, &mut reuse.scratch);
            set_hex128(&mut event.id, hash);
            out.push_back(event);
        }
    }
    Ok(warnings)
}

/// A record's previous row: its tables, and the column count and first and last column
/// names that [`PreviousRow::same_shape`] compares.
#[derive(Default)]
struct PreviousRow {
    tables: Tables,
    tables_from: Option<TablesFrom>,
    tables_ambiguous: bool,
    len: usize,
    first: String,
    last: String,
}

impl PreviousRow {
    fn same_shape(&self, columns: &Fields) -> bool {
        self.len > 0
            && self.len == columns.len()
            && columns.keys().next() == Some(self.first.as_str())
            && columns.keys().last() == Some(self.last.as_str())
    }

    fn remember(&mut self, columns: &Fields) {
        self.len = columns.len();
        self.first.clear();
        self.first.push_str(columns.keys().next().unwrap_or(""));
        self.last.clear();
        self.last.push_str(columns.keys().last().unwrap_or(""));
    }
}

/// Sets an optional string, reusing the one there.
fn set(dst: &mut Option<String>, value: Option<&str>) {
    match (dst.as_mut(), value) {
        (Some(d), Some(v)) => {
            d.clear();
            d.push_str(v);
        }
        (None, Some(v)) => *dst = Some(v.to_owned()),
        (_, None) => *dst = None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    Event(Action),
    Batch,
    Snapshot,
    Status,
}

impl Shape {
    fn of(r: &RawRecord<'_>) -> Result<Shape, Reason> {
        if r.diff_results.is_some() {
            return Ok(Shape::Batch);
        }
        if r.snapshot.is_some() {
            return Ok(Shape::Snapshot);
        }
        if r.columns.is_some() {
            return match &r.action {
                Some(Scalar::Str(a)) => Action::parse(a).map(Shape::Event).ok_or_else(|| {
                    format!("unknown action {a:?} (expected added, removed or snapshot)")
                }),
                Some(other) => Err(format!(
                    "action is a JSON {}, not a string",
                    other.type_name()
                )),
                None => Err("result record with columns but no action".to_string()),
            };
        }
        let status_fields = [raw::SEVERITY, raw::FILENAME, raw::LINE, raw::MESSAGE];
        if status_fields
            .iter()
            .filter(|i| r.status[**i].is_some())
            .count()
            >= 2
        {
            return Ok(Shape::Status);
        }
        Err("unrecognized record: no columns, diffResults, snapshot or status fields".to_string())
    }
}

/// An event with nothing in it: the first template, and a new event's start.
fn placeholder() -> Event {
    Event {
        kind: Kind::Result,
        name: None,
        pack: None,
        query: None,
        tables: Tables::new(),
        tables_from: None,
        tables_ambiguous: false,
        host: None,
        action: None,
        columns: Fields::new(),
        decorations: Fields::new(),
        time: None,
        unix_time: None,
        epoch: None,
        counter: None,
        numerics: false,
        severity: None,
        filename: None,
        line: None,
        message: None,
        version: None,
        source: SourceRef::default(),
        id: String::new(),
        indicators: Default::default(),
        attack: Default::default(),
    }
}

/// osquery's AWS loggers turn `{}` into `""`; both mean "no fields".
fn object_or_empty(value: Option<Object>, what: &str) -> Result<Fields, Reason> {
    match value {
        None | Some(Object::Empty) => Ok(Fields::new()),
        Some(Object::Map(map)) => Ok(map),
        Some(Object::Wrong(kind)) => Err(format!("{what} is a JSON {kind}, not an object")),
    }
}

/// A list of rows, where the AWS loggers' `""` means an empty list or an empty row.
fn rows_of(value: Option<Rows>, what: &str) -> Result<Vec<Fields>, Reason> {
    match value {
        None | Some(Rows::Empty) => Ok(Vec::new()),
        Some(Rows::List(rows)) => Ok(rows),
        Some(Rows::BadRow(i, kind)) => {
            Err(format!("{what} is a JSON {kind}, not an object (row {i})"))
        }
        Some(Rows::Wrong(kind)) => Err(format!("{what} is a JSON {kind}, not an array")),
    }
}

/// A scalar as the text a string field holds (`None` for `""`, `null` and containers).
fn scalar_text<'a>(v: &'a Scalar<'_>) -> Option<Cow<'a, str>> {
    match v {
        Scalar::Str(s) if !s.is_empty() => Some(Cow::Borrowed(s)),
        Scalar::Num(n) => Some(Cow::Owned(n.to_string())),
        Scalar::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// Integers as osquery writes them: native, or stringified by the AWS loggers.
fn as_i64(v: &Scalar<'_>) -> Option<i64> {
    match v {
        Scalar::Num(n) => number_i64(n),
        Scalar::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn number_i64(n: &serde_json::Number) -> Option<i64> {
    n.as_i64()
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

fn as_bool(v: &Scalar<'_>) -> Option<bool> {
    match v {
        Scalar::Bool(b) => Some(*b),
        Scalar::Str(s) => match &**s {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Scalar::Num(n) => n.as_i64().map(|i| i != 0),
        _ => None,
    }
}

/// [`scalar_text`] for the few fields kept as `Value`s (status fields, `hostname`).
fn value_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) if !s.is_empty() => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

fn value_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => number_i64(n),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses osquery's `calendarTime` (`Wed Jun  9 18:29:49 2021 UTC`, older records
/// without the zone) into Unix seconds. osquery always writes it in UTC.
fn parse_calendar_time(s: &str) -> Option<i64> {
    let mut parts = s.split_ascii_whitespace();
    let _weekday = parts.next()?;
    let month = match parts.next()? {
        "Jan" => time::Month::January,
        "Feb" => time::Month::February,
        "Mar" => time::Month::March,
        "Apr" => time::Month::April,
        "May" => time::Month::May,
        "Jun" => time::Month::June,
        "Jul" => time::Month::July,
        "Aug" => time::Month::August,
        "Sep" => time::Month::September,
        "Oct" => time::Month::October,
        "Nov" => time::Month::November,
        "Dec" => time::Month::December,
        _ => return None,
    };
    let day: u8 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let (h, m, sec): (u8, u8, u8) = (
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
    );
    let year: i32 = parts.next()?.parse().ok()?;
    match parts.next() {
        None | Some("UTC") => {}
        Some(_) => return None,
    }
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let t = time::Time::from_hms(h, m, sec).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// A content hash of what identifies a row: the same row of the same record always gets
/// the same id, wherever and however often it is decoded, whichever logger spelled it.
///
/// The fields are laid out in `scratch`, each length-prefixed so no value can imitate a
/// boundary, and hashed in one call (xxh3's one-shot hash is much cheaper than feeding
/// its streaming state field by field). Columns come sorted by name ([`Fields`] keeps
/// them so) with their decoded values, so `\/` and `/` hash alike.
fn event_id(e: &Event, row: u64, scratch: &mut Vec<u8>) -> u128 {
    scratch.clear();
    event_id_header(e, row, scratch);
    // Names sorted, values tagged by type: `"22"` and `22` differ.
    e.columns.write_id_layout(scratch);
    xxh3_128(scratch)
}

/// The event-id layout of everything but the columns.
fn event_id_header(e: &Event, row: u64, scratch: &mut Vec<u8>) {
    let put = put_prefixed;
    let kind: &[u8] = match e.kind {
        Kind::Status => b"status",
        Kind::Result => b"result",
    };
    put(scratch, kind);
    put(scratch, e.host.as_deref().unwrap_or("").as_bytes());
    put(scratch, e.name.as_deref().unwrap_or("").as_bytes());
    for n in [e.unix_time, e.epoch, e.counter] {
        put(scratch, &n.unwrap_or(0).to_le_bytes());
    }
    put(scratch, e.action.map_or("", Action::as_str).as_bytes());
    put(scratch, &row.to_le_bytes());
    put(scratch, e.message.as_deref().unwrap_or("").as_bytes());
    put(scratch, e.filename.as_deref().unwrap_or("").as_bytes());
    put(scratch, &e.line.unwrap_or(0).to_le_bytes());
}

/// `format!("{:032x}", n)` into `out` (its old contents replaced), without the formatting
/// machinery or an allocation (one id per event).
fn set_hex128(out: &mut String, n: u128) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 32];
    for (i, byte) in n.to_be_bytes().iter().enumerate() {
        hex[2 * i] = DIGITS[usize::from(byte >> 4)];
        hex[2 * i + 1] = DIGITS[usize::from(byte & 0xf)];
    }
    out.clear();
    out.push_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::FieldValue;

    /// A decoded record: its events, and how many fields were missing (warnings).
    #[derive(Debug)]
    struct Decoded {
        events: Vec<Event>,
        warnings: u64,
    }

    fn one(s: &str) -> Result<Decoded, Reason> {
        let mut out = VecDeque::new();
        let origin = Origin::path("t.log");
        let warnings = decode(
            s.as_bytes(),
            &origin,
            1,
            &[],
            &mut TableCache::new(Default::default()),
            &mut Reuse::default(),
            &mut out,
        )
        .map_err(|r| r.reason)?;
        Ok(Decoded {
            events: out.into_iter().map(|e| *e).collect(),
            warnings,
        })
    }

    #[test]
    fn calendar_time_formats() {
        assert_eq!(
            parse_calendar_time("Wed Jun  9 18:29:49 2021 UTC"),
            Some(1623263389)
        );
        assert_eq!(
            parse_calendar_time("Tue Sep 30 17:37:30 2014"),
            Some(1412098650)
        );
        assert_eq!(parse_calendar_time("no_time"), None);
        assert_eq!(parse_calendar_time("Wed Jun 31 18:29:49 2021 UTC"), None);
        assert_eq!(parse_calendar_time("Wed Jun 9 18:29:49 2021 PDT"), None);
    }

    #[test]
    fn differential_event_native_and_stringified_agree() {
        let native = one(r#"{"name":"pack/Global/processes","hostIdentifier":"host-1","calendarTime":"Mon Aug 25 12:10:57 2014 UTC","unixTime":1408993857,"epoch":0,"counter":3,"numerics":false,"decorations":{"host_uuid":"ABC","hostname":"h"},"columns":{"path":"/usr/bin/curl","pid":"30219"},"action":"added"}"#).unwrap();
        let firehose = one(r#"{"name":"pack\/Global\/processes","hostIdentifier":"host-1","calendarTime":"Mon Aug 25 12:10:57 2014 UTC","unixTime":"1408993857","epoch":"0","counter":"3","numerics":"false","decorations":{"host_uuid":"ABC","hostname":"h"},"columns":{"path":"\/usr\/bin\/curl","pid":"30219"},"action":"added","log_type":"result"}"#).unwrap();
        assert_eq!(native.events, firehose.events);
        let e = &native.events[0];
        assert_eq!(e.pack.as_deref(), Some("Global"));
        assert_eq!(e.query.as_deref(), Some("processes"));
        assert_eq!(e.time.as_deref(), Some("2014-08-25T19:10:57Z"));
        assert_eq!(e.counter, Some(3));
        assert_eq!(e.columns.get("path").unwrap(), "/usr/bin/curl");
        assert_eq!(native.warnings, 0);
    }

    #[test]
    fn firehose_empty_containers_mean_empty() {
        let d = one(r#"{"diffResults":{"removed":"","added":[{"a":"1","b":"\/tmp"}]},"name":"q","hostIdentifier":"h","calendarTime":"x","unixTime":"1","epoch":"0","counter":"0","numerics":"true","log_type":"result"}"#).unwrap();
        assert_eq!(d.events.len(), 1);
        assert!(d.events[0].numerics);
        assert_eq!(d.events[0].columns.get("b").unwrap(), "/tmp");
        let d = one(
            r#"{"snapshot":"","action":"snapshot","name":"q","hostIdentifier":"h","unixTime":"1"}"#,
        )
        .unwrap();
        assert!(d.events.is_empty());
        let d = one(r#"{"name":"n","columns":{"d":"2.5"},"decorations":"","action":"added","unixTime":"1","numerics":"true","log_type":"result"}"#).unwrap();
        assert!(d.events[0].decorations.is_empty());
    }

    #[test]
    fn batch_and_snapshot_rows_explode() {
        let d = one(r#"{"diffResults":{"added":[{"pid":"1"},{"pid":"2"}],"removed":[{"pid":"3"}]},"name":"processes","hostname":"h.local","unixTime":"1412123850","counter":"1","numerics":false}"#).unwrap();
        let actions: Vec<_> = d
            .events
            .iter()
            .map(|e| (e.action.unwrap(), e.source.row.unwrap()))
            .collect();
        assert_eq!(
            actions,
            vec![(Action::Added, 0), (Action::Added, 1), (Action::Removed, 2)]
        );
        assert_eq!(d.events[0].host.as_deref(), Some("h.local"));
        let ids: std::collections::HashSet<_> = d.events.iter().map(|e| &e.id).collect();
        assert_eq!(ids.len(), 3);

        let d = one(r#"{"action":"snapshot","snapshot":[{"pid":"1"},{"pid":"51"}],"name":"process_snapshot","hostIdentifier":"h","calendarTime":"Mon May  2 22:27:32 2016 UTC","unixTime":"1462228052"}"#).unwrap();
        assert_eq!(d.events.len(), 2);
        assert!(d.events.iter().all(|e| e.action == Some(Action::Snapshot)));
    }

    #[test]
    fn status_records() {
        let d = one(r#"{"hostIdentifier":"CPU","calendarTime":"Wed Jun  9 18:29:49 2021 UTC","unixTime":"1623263389","severity":"0","filename":"tls.cpp","line":"254","message":"TLS\/HTTPS POST request","version":"4.6.0.2","decorations":{"hostname":"CPU"},"log_type":"status"}"#).unwrap();
        let e = &d.events[0];
        assert_eq!(e.kind, Kind::Status);
        assert_eq!((e.severity, e.line), (Some(0), Some(254)));
        assert_eq!(e.message.as_deref(), Some("TLS/HTTPS POST request"));
        assert_eq!(e.version.as_deref(), Some("4.6.0.2"));
        assert!(!e.decorations.contains_key("log_type"));
        assert_eq!(d.warnings, 0);
    }

    #[test]
    fn top_level_decorations_and_hostname_as_decoration() {
        let d = one(r#"{"name":"q","hostIdentifier":"h1","hostname":"h1.example.com","unixTime":5,"columns":{},"action":"added","host_uuid":"U"}"#).unwrap();
        let e = &d.events[0];
        assert_eq!(e.host.as_deref(), Some("h1"));
        assert_eq!(e.decorations.get("hostname").unwrap(), "h1.example.com");
        assert_eq!(e.decorations.get("host_uuid").unwrap(), "U");
    }

    #[test]
    fn missing_fields_warn_but_decode() {
        let d = one(r#"{"name":"q","columns":{"a":1},"action":"removed"}"#).unwrap();
        assert_eq!(d.warnings, 2);
        assert_eq!(d.events[0].time, None);
        assert_eq!(d.events[0].host, None);
        let d = one(r#"{"name":"q","hostIdentifier":"h","calendarTime":"no_time","unixTime":0,"columns":{},"action":"added"}"#).unwrap();
        assert_eq!(d.warnings, 1);
    }

    #[test]
    fn unrecognized_records_are_rejected_with_reasons() {
        assert!(one("[1,2]").unwrap_err().contains("array"));
        assert!(one(r#"{"name":"q"}"#).unwrap_err().contains("unrecognized"));
        assert!(one(r#"{"columns":{},"action":"changed"}"#)
            .unwrap_err()
            .contains("unknown action"));
        assert!(one(r#"{"columns":{}}"#).unwrap_err().contains("no action"));
        assert!(one(r#"{"snapshot":[1],"name":"q"}"#)
            .unwrap_err()
            .contains("row 0"));
        assert!(one(r#"{"columns":[],"action":"added"}"#)
            .unwrap_err()
            .contains("columns"));
        assert!(one(r#"{"a":"#).unwrap_err().starts_with("invalid JSON"));
    }

    #[test]
    fn ids_are_stable_and_content_based() {
        let a = one(r#"{"name":"q","hostIdentifier":"h","unixTime":5,"columns":{"x":"1","y":"2"},"action":"added"}"#).unwrap();
        let b = one(r#"{"action":"added","columns":{"y":"2","x":"1"},"unixTime":"5","hostIdentifier":"h","name":"q"}"#).unwrap();
        let c = one(r#"{"name":"q","hostIdentifier":"h","unixTime":5,"columns":{"x":"1","y":"3"},"action":"added"}"#).unwrap();
        assert_eq!(a.events[0].id, b.events[0].id);
        assert_ne!(a.events[0].id, c.events[0].id);
        assert_eq!(a.events[0].id.len(), 32);
    }

    /// The id layout as it was first written, through the public `Fields` API: the
    /// reference `Fields::write_id_layout` must match byte for byte (ids are a contract).
    fn reference_layout(e: &Event, row: u64) -> Vec<u8> {
        let mut out = Vec::new();
        event_id_header(e, row, &mut out);
        for (key, value) in e.columns.iter() {
            put_prefixed(&mut out, key.as_bytes());
            match value {
                FieldValue::Str(s) => {
                    out.push(b's');
                    put_prefixed(&mut out, s.as_bytes());
                }
                FieldValue::Null => out.push(b'0'),
                FieldValue::Bool(b) => out.push(if b { b't' } else { b'f' }),
                FieldValue::Number(_, json) | FieldValue::Json(json) => {
                    out.push(b'j');
                    put_prefixed(&mut out, json.as_bytes());
                }
            }
        }
        out
    }

    #[test]
    fn id_layout_matches_the_reference() {
        let mut events = Vec::new();
        for cols in [
            r#"{}"#,
            r#"{"a":"22","b":22,"c":-3,"d":2.5,"e":null,"f":true,"g":false}"#,
            r#"{"":null,"n":[1,{"y":1,"x":2}],"o":{},"s":"a\"b\u0001","é":"\/x"}"#,
            r#"{"z":"1","a":"2","a":"3","long_column_name":"v","long_column_namf":"w"}"#,
        ] {
            let r = format!(
                r#"{{"name":"q","hostIdentifier":"h","unixTime":5,"columns":{cols},"action":"added"}}"#
            );
            events.extend(one(&r).unwrap().events);
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/osquery");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let file = std::fs::File::open(&path).unwrap();
            for item in
                super::super::ObjectDecoder::new(file, Origin::path("t"), Default::default())
            {
                if let super::super::Decoded::Event(e) = item {
                    events.push(*e);
                }
            }
        }
        assert!(events.len() > 200);
        let mut scratch = Vec::new();
        for e in &events {
            let row = e.source.row.unwrap_or(0);
            let reference = reference_layout(e, row);
            let id = event_id(e, row, &mut scratch);
            assert_eq!(scratch, reference, "{e:?}");
            assert_eq!(id, xxh3_128(&reference));
        }
    }

    #[test]
    fn hex128_is_zero_padded_lowercase_hex() {
        for n in [
            0u128,
            1,
            0xabc,
            u128::MAX,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        ] {
            let mut out = "left over".to_string();
            set_hex128(&mut out, n);
            assert_eq!(out, format!("{n:032x}"));
        }
    }

    #[test]
    fn ids_tell_column_types_and_boundaries_apart() {
        let id = |cols: &str| {
            let r = format!(
                r#"{{"name":"q","hostIdentifier":"h","unixTime":5,"columns":{cols},"action":"added"}}"#
            );
            one(&r).unwrap().events[0].id.clone()
        };
        let ids = [
            id(r#"{"a":"22"}"#),
            id(r#"{"a":22}"#),
            id(r#"{"a":22.5}"#),
            id(r#"{"a":null}"#),
            id(r#"{"a":""}"#),
            id(r#"{"a":true}"#),
            id(r#"{"a":[1]}"#),
            id(r#"{"ab":"c"}"#),
            id(r#"{"a":"bc"}"#),
            id(r#"{}"#),
        ];
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "{ids:?}");
        // Spelling doesn't matter, content does.
        assert_eq!(id(r#"{"p":"\/bin"}"#), id(r#"{"p":"/bin"}"#));
        assert_eq!(
            id(r#"{"a":[1,{"y":1,"x":2}]}"#),
            id(r#"{"a":[1,{"x":2,"y":1}]}"#)
        );
    }
}
