//! One osquery record (already framed) into normalized events.
//!
//! The same logical record reaches us in several spellings: native JSON from the
//! filesystem/TLS loggers and Fleet, and the "every scalar is a string, empty containers
//! are `""`" rewrite of osquery's AWS loggers. Everything here accepts both, so the rest
//! of tripline sees one shape.

use serde_json::{Map, Value};
use xxhash_rust::xxh3::Xxh3;

use crate::event::{Action, Event, Kind, SourceRef};
use crate::{indicators, query_name};

/// Keys that belong to osquery's result record format; with `--decorations_top_level`
/// every other top-level key is a decoration.
const RESULT_KEYS: &[&str] = &[
    "name",
    "hostIdentifier",
    "calendarTime",
    "unixTime",
    "epoch",
    "counter",
    "numerics",
    "logNumericsAsNumbers",
    "columns",
    "action",
    "diffResults",
    "snapshot",
    "decorations",
    "log_type",
];

/// Status records additionally own these keys.
const STATUS_KEYS: &[&str] = &["severity", "filename", "line", "message", "version"];

#[derive(Debug)]
/// A decoded record: its events, and how many fields were missing (warnings).
pub(crate) struct Decoded {
    pub events: Vec<Event>,
    pub warnings: u64,
}

/// Why a record was quarantined.
pub(crate) type Reason = String;

/// Decodes one framed record. `source` carries bucket/key/path and the record index.
pub(crate) fn decode(
    bytes: &[u8],
    source: &SourceRef,
    extra_packs: &[String],
) -> Result<Decoded, Reason> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(mut obj) = value else {
        return Err(format!(
            "record is a JSON {}, not an object",
            type_name(&value)
        ));
    };

    let shape = Shape::of(&obj)?;
    let mut warnings = 0;

    // `hostname` names the host only in old records; with hostIdentifier present it is a
    // (top-level) decoration.
    let host = obj
        .remove("hostIdentifier")
        .or_else(|| obj.remove("hostname"))
        .as_ref()
        .and_then(scalar_string);
    let unix_time = obj.get("unixTime").and_then(as_i64).filter(|t| *t > 0);
    let time = unix_time.or_else(|| {
        obj.get("calendarTime")
            .and_then(|v| v.as_str())
            .and_then(parse_calendar_time)
    });
    if host.is_none() {
        warnings += 1;
    }
    if time.is_none() {
        warnings += 1;
    }
    let name = obj.get("name").and_then(scalar_string);
    if shape != Shape::Status && name.is_none() {
        warnings += 1;
    }

    let mut base = Event {
        kind: if shape == Shape::Status {
            Kind::Status
        } else {
            Kind::Result
        },
        pack: None,
        query: None,
        host,
        action: None,
        columns: Map::new(),
        decorations: Map::new(),
        time: time.map(format_rfc3339),
        unix_time: time,
        epoch: obj.get("epoch").and_then(as_i64),
        counter: obj.get("counter").and_then(as_i64),
        numerics: obj
            .get("numerics")
            .or_else(|| obj.get("logNumericsAsNumbers"))
            .and_then(as_bool)
            .unwrap_or(false),
        severity: None,
        filename: None,
        line: None,
        message: None,
        version: None,
        source: source.clone(),
        id: String::new(),
        indicators: Default::default(),
        attack: Vec::new(),
        name,
    };
    if let Some(name) = &base.name {
        let (pack, query) = query_name::parse_with(name, extra_packs);
        base.pack = pack.map(str::to_owned);
        base.query = Some(query.to_owned());
    }

    if shape == Shape::Status {
        base.severity = obj.get("severity").and_then(as_i64);
        base.filename = obj.get("filename").and_then(scalar_string);
        base.line = obj.get("line").and_then(as_i64);
        base.message = obj.get("message").and_then(scalar_string);
        base.version = obj.get("version").and_then(scalar_string);
    }

    // Rows, taken out before the leftover keys become decorations.
    let rows: Vec<(Action, Map<String, Value>)> = match shape {
        Shape::Event(action) => vec![(action, object_or_empty(obj.remove("columns"), "columns")?)],
        Shape::Snapshot => rows_of(obj.remove("snapshot"), "snapshot")?
            .into_iter()
            .map(|r| (Action::Snapshot, r))
            .collect(),
        Shape::Batch => {
            let mut diff = object_or_empty(obj.remove("diffResults"), "diffResults")?;
            let mut rows = Vec::new();
            for (key, action) in [("added", Action::Added), ("removed", Action::Removed)] {
                for row in rows_of(diff.remove(key), key)? {
                    rows.push((action, row));
                }
            }
            rows
        }
        Shape::Status => Vec::new(),
    };

    base.decorations = object_or_empty(obj.remove("decorations"), "decorations")?;
    let owned: &[&[&str]] = if shape == Shape::Status {
        &[RESULT_KEYS, STATUS_KEYS]
    } else {
        &[RESULT_KEYS]
    };
    for (key, value) in obj {
        if !owned.iter().any(|keys| keys.contains(&key.as_str())) {
            base.decorations.entry(key).or_insert(value);
        }
    }

    let events = if shape == Shape::Status {
        base.source.row = Some(0);
        base.id = event_id(&base, 0);
        vec![base]
    } else {
        let count = rows.len();
        let mut events = Vec::with_capacity(count);
        let mut rows = rows.into_iter().enumerate().peekable();
        while let Some((row, (action, columns))) = rows.next() {
            // The last row takes `base` itself, saving a clone for single-row records.
            let mut event = if rows.peek().is_some() {
                base.clone()
            } else {
                std::mem::replace(&mut base, placeholder())
            };
            event.action = Some(action);
            event.indicators = indicators::extract(&columns);
            event.columns = columns;
            event.source.row = Some(row as u64);
            event.id = event_id(&event, row as u64);
            events.push(event);
        }
        events
    };
    Ok(Decoded { events, warnings })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    Event(Action),
    Batch,
    Snapshot,
    Status,
}

impl Shape {
    fn of(obj: &Map<String, Value>) -> Result<Shape, Reason> {
        if obj.contains_key("diffResults") {
            return Ok(Shape::Batch);
        }
        if obj.contains_key("snapshot") {
            return Ok(Shape::Snapshot);
        }
        if obj.contains_key("columns") {
            return match obj.get("action") {
                Some(Value::String(a)) => Action::parse(a).map(Shape::Event).ok_or_else(|| {
                    format!("unknown action {a:?} (expected added, removed or snapshot)")
                }),
                Some(other) => Err(format!(
                    "action is a JSON {}, not a string",
                    type_name(other)
                )),
                None => Err("result record with columns but no action".to_string()),
            };
        }
        let status_fields = ["severity", "filename", "line", "message"];
        if status_fields
            .iter()
            .filter(|k| obj.contains_key(**k))
            .count()
            >= 2
        {
            return Ok(Shape::Status);
        }
        Err("unrecognized record: no columns, diffResults, snapshot or status fields".to_string())
    }
}

/// An event with nothing in it, left behind when the last row takes the template.
fn placeholder() -> Event {
    Event {
        kind: Kind::Result,
        name: None,
        pack: None,
        query: None,
        host: None,
        action: None,
        columns: Map::new(),
        decorations: Map::new(),
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
        attack: Vec::new(),
    }
}

/// osquery's AWS loggers turn `{}` into `""`; both mean "no fields".
fn object_or_empty(value: Option<Value>, what: &str) -> Result<Map<String, Value>, Reason> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(Value::String(s)) if s.is_empty() => Ok(Map::new()),
        Some(other) => Err(format!(
            "{what} is a JSON {}, not an object",
            type_name(&other)
        )),
    }
}

/// A list of rows, where the AWS loggers' `""` means an empty list or an empty row.
fn rows_of(value: Option<Value>, what: &str) -> Result<Vec<Map<String, Value>>, Reason> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::Array(rows)) => rows
            .into_iter()
            .enumerate()
            .map(|(i, row)| object_or_empty(Some(row), what).map_err(|e| format!("{e} (row {i})")))
            .collect(),
        Some(other) => Err(format!(
            "{what} is a JSON {}, not an array",
            type_name(&other)
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Integers as osquery writes them: native, or stringified by the AWS loggers.
fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|i| i != 0),
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

/// RFC 3339 UTC with a `Z`; out-of-range times (garbage input) fall back to the epoch
/// second count rather than failing the record.
pub(crate) fn format_rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A content hash of what identifies a row: the same row of the same record always gets
/// the same id, wherever and however often it is decoded.
fn event_id(e: &Event, row: u64) -> String {
    let mut h = Xxh3::new();
    let mut field = |bytes: &[u8]| {
        h.update(bytes);
        h.update(&[0x1f]);
    };
    field(if e.kind == Kind::Status {
        b"status"
    } else {
        b"result"
    });
    field(e.host.as_deref().unwrap_or("").as_bytes());
    field(e.name.as_deref().unwrap_or("").as_bytes());
    field(&e.unix_time.unwrap_or(0).to_le_bytes());
    field(&e.epoch.unwrap_or(0).to_le_bytes());
    field(&e.counter.unwrap_or(0).to_le_bytes());
    field(e.action.map_or("", Action::as_str).as_bytes());
    field(&row.to_le_bytes());
    field(e.message.as_deref().unwrap_or("").as_bytes());
    field(e.filename.as_deref().unwrap_or("").as_bytes());
    field(&e.line.unwrap_or(0).to_le_bytes());
    // serde_json's Map is sorted by key, so this is canonical. Streamed into the hasher
    // (the same bytes as serializing first) to save an allocation per row.
    let _ = serde_json::to_writer(HashWriter(&mut h), &e.columns);
    h.update(&[0x1f]);
    format!("{:032x}", h.digest128())
}

/// Lets serde_json write straight into the hasher.
struct HashWriter<'a>(&'a mut Xxh3);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> SourceRef {
        SourceRef {
            path: Some("t.log".into()),
            record: 1,
            ..Default::default()
        }
    }

    fn one(s: &str) -> Result<Decoded, Reason> {
        decode(s.as_bytes(), &src(), &[])
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
        assert_eq!(e.columns["path"], "/usr/bin/curl");
        assert_eq!(native.warnings, 0);
    }

    #[test]
    fn firehose_empty_containers_mean_empty() {
        let d = one(r#"{"diffResults":{"removed":"","added":[{"a":"1","b":"\/tmp"}]},"name":"q","hostIdentifier":"h","calendarTime":"x","unixTime":"1","epoch":"0","counter":"0","numerics":"true","log_type":"result"}"#).unwrap();
        assert_eq!(d.events.len(), 1);
        assert!(d.events[0].numerics);
        assert_eq!(d.events[0].columns["b"], "/tmp");
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
        assert_eq!(e.decorations["hostname"], "h1.example.com");
        assert_eq!(e.decorations["host_uuid"], "U");
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
}
