//! The eval view: what every rule is evaluated against, built once per event.
//!
//! [`EventView`] implements rsigma's [`Event`] trait directly over a borrowed
//! [`crate::event::Event`] and its [`Derived`] fields, so preparing an event for the rules
//! costs nothing: no JSON copy of the event, no per-field allocations. Field names are the
//! dotted paths of the event contract (`columns.command`, `derived.program`), resolved by a
//! `match` on the root and one hash lookup.
//!
//! Numbers in `columns` and `decorations` are presented as their decimal text. osquery logs
//! every column as a string unless `--log_numerics_as_numbers` is set, so the same row
//! arrives as `"port": "22"` from one host and `"port": 22` from another. rsigma already
//! matches across the two for plain values (`22` compiles to a numeric comparison that
//! parses strings, `'22'` to a string comparison that formats integers), but not
//! everywhere: keyword searches only see strings, and integers beyond `i64` (`u64` inode or
//! size columns) reach rsigma as lossy floats. Text is the form osquery itself uses by
//! default, so presenting it makes every matcher, dedup key and alert id independent of the
//! host's logging flag.
//!
//! [`eval_view`] renders the same view as a flat JSON object (for `to_json`, debugging and
//! the differential tests that keep the two in step).

use std::borrow::Cow;

use rsigma_eval::event::{Event as SigmaEvent, EventValue};
use serde_json::{Map, Value};

use crate::derive::Derived;
use crate::event::{Event, Kind};
use crate::fields::{FieldName, FieldValue, Fields};
use crate::ioc::IocHit;

/// The rules' view of one event: borrowed, zero-copy.
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    /// The event as decoded.
    pub event: &'a Event,
    /// Its derived fields, seen under `derived.`.
    pub derived: &'a Derived,
}

impl<'a> EventView<'a> {
    /// The view of `event` with `derived`.
    pub fn new(event: &'a Event, derived: &'a Derived) -> Self {
        EventView { event, derived }
    }
}

/// A column value as the rules see it: numbers as text, strings borrowed.
fn column_value(v: FieldValue<'_>) -> EventValue<'_> {
    match v {
        FieldValue::Str(s) | FieldValue::Number(_, s) => EventValue::Str(Cow::Borrowed(s)),
        FieldValue::Bool(b) => EventValue::Bool(b),
        FieldValue::Null => EventValue::Null,
        FieldValue::Json(_) => nested_value(&v.to_value()).to_owned_value(),
    }
}

/// A value inside a JSON-valued column, with numbers as text like the columns themselves.
fn nested_value(v: &Value) -> EventValue<'_> {
    match v {
        Value::String(s) => EventValue::Str(Cow::Borrowed(s)),
        Value::Number(n) => EventValue::Str(Cow::Owned(n.to_string())),
        other => EventValue::from(other),
    }
}

fn columns_map(m: &Fields) -> EventValue<'_> {
    EventValue::Map(
        m.iter()
            .map(|(k, v)| (Cow::Borrowed(k), column_value(v)))
            .collect(),
    )
}

/// `columns.<name>`: the column itself, else (for JSON-valued columns) a nested walk.
fn column<'v>(m: &'v Fields, name: FieldName<'_>) -> Option<EventValue<'v>> {
    if let Some(v) = m.get_name(name) {
        return Some(column_value(v));
    }
    let key = name.as_str();
    // Without a dot the walk would repeat the lookup that just missed; absent columns are
    // the common case for rules about other tables.
    if !key.contains('.') {
        return None;
    }
    let mut segments = key.split('.');
    let root = m.get(segments.next()?)?.to_value();
    let mut cur = &root;
    for seg in segments {
        cur = cur.as_object()?.get(seg)?;
    }
    Some(nested_value(cur).to_owned_value())
}

fn opt_str(v: &Option<String>) -> Option<EventValue<'_>> {
    Some(match v {
        Some(s) => EventValue::Str(Cow::Borrowed(s)),
        None => EventValue::Null,
    })
}

fn text(v: &Option<String>) -> Option<EventValue<'_>> {
    v.as_deref().map(|x| EventValue::Str(Cow::Borrowed(x)))
}

fn opt_int(v: Option<i64>) -> Option<EventValue<'static>> {
    Some(v.map(EventValue::Int).unwrap_or(EventValue::Null))
}

fn str_list(list: &[String]) -> Option<EventValue<'_>> {
    (!list.is_empty()).then(|| {
        EventValue::Array(
            list.iter()
                .map(|s| EventValue::Str(Cow::Borrowed(s)))
                .collect(),
        )
    })
}

/// One hit as itself, several as an array: how rsigma's `JsonEvent` reports a path that
/// crosses an array, so dedup keys look the same either way.
fn hits(mut v: Vec<EventValue<'_>>) -> Option<EventValue<'_>> {
    match v.len() {
        0 => None,
        1 => v.pop(),
        _ => Some(EventValue::Array(v)),
    }
}

fn kind_str(kind: Kind) -> &'static str {
    match kind {
        Kind::Result => "result",
        Kind::Status => "status",
    }
}

/// A field of [`Derived`], named in a path as `derived.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DerivedField {
    Program,
    Platform,
    OsqueryOutdated,
    MacosUnsupported,
    RemoteOutsideOffice,
    Stale,
    Initial,
    /// `derived.ioc`, the whole hit.
    Ioc,
    /// `derived.ioc.<field>`.
    IocField(IocField),
}

/// A field of `derived.ioc` ([`crate::ioc::IocHit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IocField {
    Value,
    Type,
    Indicator,
    List,
    Name,
    Hits,
}

impl DerivedField {
    fn of(name: &str) -> Option<DerivedField> {
        Some(match name {
            "program" => DerivedField::Program,
            "platform" => DerivedField::Platform,
            "osquery_outdated" => DerivedField::OsqueryOutdated,
            "macos_unsupported" => DerivedField::MacosUnsupported,
            "remote_outside_office" => DerivedField::RemoteOutsideOffice,
            "stale" => DerivedField::Stale,
            "initial" => DerivedField::Initial,
            "ioc" => DerivedField::Ioc,
            "ioc.value" => DerivedField::IocField(IocField::Value),
            "ioc.type" => DerivedField::IocField(IocField::Type),
            "ioc.indicator" => DerivedField::IocField(IocField::Indicator),
            "ioc.list" => DerivedField::IocField(IocField::List),
            "ioc.name" => DerivedField::IocField(IocField::Name),
            "ioc.hits" => DerivedField::IocField(IocField::Hits),
            _ => return None,
        })
    }
}

/// One field of an IOC hit as the rules see it.
fn ioc_field(hit: &IocHit, field: IocField) -> Option<EventValue<'_>> {
    fn text(s: &str) -> Option<EventValue<'_>> {
        Some(EventValue::Str(Cow::Borrowed(s)))
    }
    match field {
        IocField::Value => text(&hit.value),
        IocField::Type => Some(EventValue::Str(Cow::Borrowed(hit.kind.as_str()))),
        IocField::Indicator => text(&hit.indicator),
        IocField::List => text(&hit.list),
        IocField::Name => hit.name.as_deref().and_then(text),
        IocField::Hits => Some(EventValue::Int(i64::from(hit.hits))),
    }
}

/// A dotted path with where it points in an [`EventView`] worked out. Working that out is
/// string matching on the path; the gates look the same few paths up on every event, so
/// they do it once per rule set ([`EventView::get`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldPath {
    path: String,
    access: Access,
}

impl FieldPath {
    pub(crate) fn new(path: &str) -> FieldPath {
        FieldPath {
            path: path.to_string(),
            access: Access::of(path),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.path
    }

    /// Whether the path names a field of the record rather than of the row (the query,
    /// its pack, the host, the action): one value for a whole batch or snapshot.
    /// The path is `tables`.
    pub(crate) fn is_tables(&self) -> bool {
        matches!(self.access, Access::Tables)
    }

    pub(crate) fn is_header(&self) -> bool {
        matches!(
            self.access,
            Access::Kind
                | Access::Name
                | Access::Pack
                | Access::Query
                | Access::Host
                | Access::Action
        )
    }
}

/// Where a path points: a header field, a column, a derived field, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Kind,
    Name,
    Pack,
    Query,
    /// The row's osquery tables (a list: a selection matches when any of them does).
    Tables,
    TablesFrom,
    Host,
    Action,
    /// `columns.<name>`, the name being the rest of the path; with the name's search key
    /// ([`FieldName::key`]), worked out once per rule set rather than on every lookup.
    Column(u64),
    /// `decorations.<name>`, likewise.
    Decoration(u64),
    Derived(DerivedField),
    /// `derived.<name>` with a name that is not a derived field: never present.
    NoDerived,
    /// Anything else, looked up by the path's text each time (rules rarely name these).
    Path,
}

const COLUMNS: &str = "columns.";
const DECORATIONS: &str = "decorations.";
const DERIVED: &str = "derived.";

impl Access {
    fn of(path: &str) -> Access {
        if let Some(k) = path.strip_prefix(COLUMNS) {
            return Access::Column(FieldName::new(k).key());
        }
        if let Some(k) = path.strip_prefix(DERIVED) {
            return DerivedField::of(k).map_or(Access::NoDerived, Access::Derived);
        }
        if let Some(k) = path.strip_prefix(DECORATIONS) {
            return Access::Decoration(FieldName::new(k).key());
        }
        match path {
            "kind" => Access::Kind,
            "name" => Access::Name,
            "pack" => Access::Pack,
            "query" => Access::Query,
            "tables" => Access::Tables,
            "tables_from" => Access::TablesFrom,
            "host" => Access::Host,
            "action" => Access::Action,
            _ => Access::Path,
        }
    }
}

impl EventView<'_> {
    /// The value at a path resolved beforehand: what `get_field` answers, without looking
    /// at the path's text.
    pub(crate) fn get(&self, field: &FieldPath) -> Option<EventValue<'_>> {
        self.get_at(field.access, &field.path)
    }

    /// `access` must be `Access::of(path)`.
    fn get_at(&self, access: Access, path: &str) -> Option<EventValue<'_>> {
        let e = self.event;
        match access {
            Access::Kind => Some(EventValue::Str(Cow::Borrowed(kind_str(e.kind)))),
            Access::Name => opt_str(&e.name),
            Access::Pack => opt_str(&e.pack),
            Access::Query => opt_str(&e.query),
            Access::Tables => str_list(&e.tables),
            Access::TablesFrom => Some(match e.tables_from {
                Some(from) => EventValue::Str(Cow::Borrowed(from.as_str())),
                None => EventValue::Null,
            }),
            Access::Host => opt_str(&e.host),
            Access::Action => Some(match e.action {
                Some(a) => EventValue::Str(Cow::Borrowed(a.as_str())),
                None => EventValue::Null,
            }),
            Access::Column(key) => {
                column(&e.columns, FieldName::with_key(key, &path[COLUMNS.len()..]))
            }
            Access::Decoration(key) => column(
                &e.decorations,
                FieldName::with_key(key, &path[DECORATIONS.len()..]),
            ),
            Access::Derived(f) => self.derived_field(f),
            Access::NoDerived => None,
            Access::Path => self.by_path(path),
        }
    }

    fn derived_field(&self, field: DerivedField) -> Option<EventValue<'_>> {
        let d = self.derived;
        match field {
            DerivedField::Program => d
                .program
                .as_deref()
                .map(|p| EventValue::Str(Cow::Borrowed(p))),
            DerivedField::Platform => d
                .platform
                .map(|p| EventValue::Str(Cow::Borrowed(p.as_str()))),
            DerivedField::OsqueryOutdated => d.osquery_outdated.map(EventValue::Bool),
            DerivedField::MacosUnsupported => d.macos_unsupported.map(EventValue::Bool),
            DerivedField::RemoteOutsideOffice => d.remote_outside_office.map(EventValue::Bool),
            DerivedField::Stale => Some(EventValue::Bool(d.stale)),
            DerivedField::Initial => Some(EventValue::Bool(d.initial)),
            DerivedField::Ioc => d.ioc.as_ref().map(|hit| {
                EventValue::Map(
                    [
                        ("value", IocField::Value),
                        ("type", IocField::Type),
                        ("indicator", IocField::Indicator),
                        ("list", IocField::List),
                        ("name", IocField::Name),
                        ("hits", IocField::Hits),
                    ]
                    .into_iter()
                    .filter_map(|(k, f)| Some((Cow::Borrowed(k), ioc_field(hit, f)?)))
                    .collect(),
                )
            }),
            DerivedField::IocField(f) => d.ioc.as_ref().and_then(|hit| ioc_field(hit, f)),
        }
    }

    /// The paths [`Access::of`] leaves to their text (`Access::Path`), which rules rarely
    /// name.
    fn by_path(&self, path: &str) -> Option<EventValue<'_>> {
        let e = self.event;
        let (root, rest) = match path.split_once('.') {
            Some((r, rest)) => (r, Some(rest)),
            None => (path, None),
        };
        match (root, rest) {
            ("columns", None) => Some(columns_map(&e.columns)),
            ("decorations", None) => Some(columns_map(&e.decorations)),
            ("derived", None) => Some(EventValue::from(&self.derived.to_json()).to_owned_value()),
            ("indicators", Some(k)) => self.indicator(k),
            ("attack", k) => self.attack(k),
            ("source", Some(k)) => self.source(k),
            (_, Some(_)) => None,
            ("time", None) => opt_str(&e.time),
            ("epoch", None) => opt_int(e.epoch),
            ("counter", None) => opt_int(e.counter),
            ("numerics", None) => Some(EventValue::Bool(e.numerics)),
            ("id", None) => Some(EventValue::Str(Cow::Borrowed(&e.id))),
            ("unix_time", None) => e.unix_time.map(EventValue::Int),
            ("severity", None) => e.severity.map(EventValue::Int),
            ("line", None) => e.line.map(EventValue::Int),
            ("filename", None) => e
                .filename
                .as_deref()
                .map(|s| EventValue::Str(Cow::Borrowed(s))),
            ("message", None) => e
                .message
                .as_deref()
                .map(|s| EventValue::Str(Cow::Borrowed(s))),
            ("version", None) => e
                .version
                .as_deref()
                .map(|s| EventValue::Str(Cow::Borrowed(s))),
            _ => None,
        }
    }

    fn indicator(&self, key: &str) -> Option<EventValue<'_>> {
        let i = &self.event.indicators;
        match key {
            "ip" => str_list(&i.ip),
            "domain" => str_list(&i.domain),
            "md5" => str_list(&i.md5),
            "sha1" => str_list(&i.sha1),
            "sha256" => str_list(&i.sha256),
            "user" => str_list(&i.user),
            _ => None,
        }
    }

    fn attack(&self, key: Option<&str>) -> Option<EventValue<'_>> {
        let tags = &self.event.attack;
        match key {
            None => (!tags.is_empty()).then(|| {
                EventValue::Array(
                    tags.iter()
                        .map(|t| {
                            EventValue::Map(vec![
                                (Cow::Borrowed("id"), EventValue::Str(Cow::Borrowed(&t.id))),
                                (
                                    Cow::Borrowed("name"),
                                    EventValue::Str(Cow::Borrowed(&t.name)),
                                ),
                                (
                                    Cow::Borrowed("tactics"),
                                    str_list(&t.tactics).unwrap_or(EventValue::Array(vec![])),
                                ),
                            ])
                        })
                        .collect(),
                )
            }),
            Some("id") => hits(
                tags.iter()
                    .map(|t| EventValue::Str(Cow::Borrowed(t.id.as_str())))
                    .collect(),
            ),
            Some("name") => hits(
                tags.iter()
                    .map(|t| EventValue::Str(Cow::Borrowed(t.name.as_str())))
                    .collect(),
            ),
            Some("tactics") => hits(tags.iter().filter_map(|t| str_list(&t.tactics)).collect()),
            Some(_) => None,
        }
    }

    fn source(&self, key: &str) -> Option<EventValue<'_>> {
        let s = &self.event.source;
        match key {
            "bucket" => text(&s.bucket),
            "key" => text(&s.key),
            "path" => text(&s.path),
            "record" => Some(EventValue::Int(s.record.min(i64::MAX as u64) as i64)),
            "row" => s
                .row
                .map(|r| EventValue::Int(r.min(i64::MAX as u64) as i64)),
            _ => None,
        }
    }

    fn each_string(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        let e = self.event;
        let scalars = [
            &e.name,
            &e.pack,
            &e.query,
            &e.host,
            &e.time,
            &e.filename,
            &e.message,
            &e.version,
            &e.source.bucket,
            &e.source.key,
            &e.source.path,
        ];
        for s in scalars.into_iter().flatten() {
            if f(s) {
                return true;
            }
        }
        if f(kind_str(e.kind)) || f(&e.id) {
            return true;
        }
        if let Some(a) = e.action {
            if f(a.as_str()) {
                return true;
            }
        }
        for map in [&e.columns, &e.decorations] {
            for v in map.values() {
                let hit = match v {
                    FieldValue::Str(s) | FieldValue::Number(_, s) => f(s),
                    FieldValue::Json(_) => visit_value(&v.to_value(), f, 16),
                    FieldValue::Bool(_) | FieldValue::Null => false,
                };
                if hit {
                    return true;
                }
            }
        }
        let i = &e.indicators;
        for list in [&i.ip, &i.domain, &i.md5, &i.sha1, &i.sha256, &i.user] {
            for s in list {
                if f(s) {
                    return true;
                }
            }
        }
        for t in &e.attack {
            if f(&t.id) || f(&t.name) || t.tactics.iter().any(|x| f(x)) {
                return true;
            }
        }
        if let Some(p) = &self.derived.program {
            if f(p) {
                return true;
            }
        }
        if let Some(p) = self.derived.platform {
            if f(p.as_str()) {
                return true;
            }
        }
        if let Some(hit) = &self.derived.ioc {
            let texts = [&hit.value, &hit.indicator, &hit.list];
            if texts.into_iter().any(|s| f(s))
                || f(hit.kind.as_str())
                || hit.name.as_deref().is_some_and(&mut *f)
            {
                return true;
            }
        }
        false
    }
}

/// Strings (and numbers, as text) inside a column value; `true` stops the walk.
fn visit_value(v: &Value, f: &mut dyn FnMut(&str) -> bool, depth: usize) -> bool {
    match v {
        Value::String(s) => f(s),
        Value::Number(n) => f(&n.to_string()),
        Value::Array(items) if depth > 0 => items.iter().any(|x| visit_value(x, f, depth - 1)),
        Value::Object(m) if depth > 0 => m.values().any(|x| visit_value(x, f, depth - 1)),
        _ => false,
    }
}

impl SigmaEvent for EventView<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        self.get_at(Access::of(path), path)
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.each_string(&mut |s| pred(s))
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        let mut out = Vec::new();
        self.each_string(&mut |s| {
            out.push(Cow::Owned(s.to_string()));
            false
        });
        out
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        self.each_string(&mut |s| {
            visit(s);
            false
        });
    }

    fn to_json(&self) -> Value {
        eval_view(self.event, self.derived)
    }
}

/// Owned copy of a value built from a temporary (only for the rarely used whole-`derived`
/// lookup).
trait ToOwnedValue {
    fn to_owned_value(self) -> EventValue<'static>;
}

impl ToOwnedValue for EventValue<'_> {
    fn to_owned_value(self) -> EventValue<'static> {
        match self {
            EventValue::Str(s) => EventValue::Str(Cow::Owned(s.into_owned())),
            EventValue::Int(n) => EventValue::Int(n),
            EventValue::Float(f) => EventValue::Float(f),
            EventValue::Bool(b) => EventValue::Bool(b),
            EventValue::Null => EventValue::Null,
            EventValue::Array(a) => {
                EventValue::Array(a.into_iter().map(ToOwnedValue::to_owned_value).collect())
            }
            EventValue::Map(m) => EventValue::Map(
                m.into_iter()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), v.to_owned_value()))
                    .collect(),
            ),
        }
    }
}

/// The view as a flat JSON object with dotted keys (what [`EventView`] resolves, written
/// out).
pub fn eval_view(event: &Event, derived: &Derived) -> Value {
    let mut m = Map::new();
    let opt_str = |v: &Option<String>| v.clone().map(Value::String).unwrap_or(Value::Null);
    let opt_int = |v: Option<i64>| v.map(Value::from).unwrap_or(Value::Null);

    m.insert("kind".into(), Value::String(kind_str(event.kind).into()));
    m.insert("name".into(), opt_str(&event.name));
    m.insert("pack".into(), opt_str(&event.pack));
    m.insert("query".into(), opt_str(&event.query));
    if !event.tables.is_empty() {
        m.insert(
            "tables".into(),
            Value::Array(event.tables.iter().cloned().map(Value::String).collect()),
        );
    }
    m.insert(
        "tables_from".into(),
        event
            .tables_from
            .map(|f| Value::String(f.as_str().into()))
            .unwrap_or(Value::Null),
    );
    m.insert("host".into(), opt_str(&event.host));
    m.insert(
        "action".into(),
        event
            .action
            .map(|a| Value::String(a.as_str().into()))
            .unwrap_or(Value::Null),
    );
    m.insert("time".into(), opt_str(&event.time));
    m.insert("epoch".into(), opt_int(event.epoch));
    m.insert("counter".into(), opt_int(event.counter));
    m.insert("numerics".into(), Value::Bool(event.numerics));
    m.insert("id".into(), Value::String(event.id.clone()));
    // Optional fields appear only when set, as in the event's own JSON.
    for (k, v) in [
        ("unix_time", event.unix_time),
        ("severity", event.severity),
        ("line", event.line),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), Value::from(v));
        }
    }
    for (k, v) in [
        ("filename", &event.filename),
        ("message", &event.message),
        ("version", &event.version),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), Value::String(v.clone()));
        }
    }

    flatten_into(&mut m, "columns.", &event.columns);
    flatten_into(&mut m, "decorations.", &event.decorations);

    let ind = &event.indicators;
    for (k, list) in [
        ("indicators.ip", &ind.ip),
        ("indicators.domain", &ind.domain),
        ("indicators.md5", &ind.md5),
        ("indicators.sha1", &ind.sha1),
        ("indicators.sha256", &ind.sha256),
        ("indicators.user", &ind.user),
    ] {
        if !list.is_empty() {
            m.insert(
                k.into(),
                Value::Array(list.iter().cloned().map(Value::String).collect()),
            );
        }
    }
    if !event.attack.is_empty() {
        m.insert(
            "attack".into(),
            serde_json::to_value(&event.attack).unwrap_or(Value::Null),
        );
    }

    let src = &event.source;
    for (k, v) in [
        ("source.bucket", &src.bucket),
        ("source.key", &src.key),
        ("source.path", &src.path),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), Value::String(v.clone()));
        }
    }
    m.insert("source.record".into(), Value::from(src.record));
    if let Some(row) = src.row {
        m.insert("source.row".into(), Value::from(row));
    }

    if let Value::Object(d) = derived.to_json() {
        for (k, v) in d {
            // An object (`derived.ioc`) is there whole and by each of its fields, as the
            // view resolves both.
            if let Value::Object(inner) = &v {
                for (ik, iv) in inner {
                    m.insert(format!("derived.{k}.{ik}"), iv.clone());
                }
            }
            m.insert(format!("derived.{k}"), v);
        }
    }
    Value::Object(m)
}

fn flatten_into(out: &mut Map<String, Value>, prefix: &str, cols: &Fields) {
    let mut key = String::with_capacity(prefix.len() + 24);
    for (k, v) in cols.iter() {
        key.clear();
        key.push_str(prefix);
        key.push_str(k);
        let v = match v {
            FieldValue::Number(_, text) => Value::String(text.to_owned()),
            other => other.to_value(),
        };
        out.insert(key.clone(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::TechniqueRef;
    use crate::event::{Action, Indicators, Kind, SourceRef};
    use rsigma_eval::event::JsonEvent;
    use serde_json::json;

    #[test]
    fn view_resolves_paths_like_the_flat_json() {
        let event = Event {
            kind: Kind::Result,
            name: Some("pack/p/q".into()),
            pack: Some("p".into()),
            query: Some("q".into()),
            tables: Default::default(),
            tables_from: None,
            tables_ambiguous: false,
            host: Some("h".into()),
            action: Some(Action::Added),
            columns: json!({"port": 22, "cmd": "x", "big": 18446744073709551615u64,
                            "nested": {"inner": 5}})
            .as_object()
            .unwrap()
            .into(),
            decorations: json!({"hostname": "h.local"}).as_object().unwrap().into(),
            time: Some("2024-01-01T00:00:00Z".into()),
            unix_time: Some(1_704_067_200),
            epoch: Some(0),
            counter: Some(1),
            numerics: true,
            severity: None,
            filename: None,
            line: None,
            message: None,
            version: None,
            source: SourceRef {
                path: Some("f".into()),
                record: 3,
                ..Default::default()
            },
            id: "id1".into(),
            indicators: Indicators {
                ip: vec!["10.0.0.1".into()],
                ..Default::default()
            },
            attack: vec![
                TechniqueRef {
                    id: "T1059".into(),
                    name: "x".into(),
                    tactics: vec!["execution".into()],
                    url: None,
                },
                TechniqueRef {
                    id: "T1053.003".into(),
                    name: "y".into(),
                    tactics: vec!["persistence".into()],
                    url: None,
                },
            ]
            .into(),
        };
        let derived = Derived {
            program: Some("aws".into()),
            ioc: Some(Box::new(IocHit {
                value: "10.0.0.1".into(),
                kind: crate::ioc::IocType::Cidr,
                indicator: "10.0.0.0/8".into(),
                list: "internal".into(),
                name: None,
                hits: 1,
            })),
            ..Default::default()
        };
        let view = EventView::new(&event, &derived);
        let get = |p: &str| view.get_field(p).map(|v| v.to_json());
        assert_eq!(get("columns.port"), Some(json!("22")));
        assert_eq!(get("columns.big"), Some(json!("18446744073709551615")));
        assert_eq!(get("decorations.hostname"), Some(json!("h.local")));
        assert_eq!(get("derived.program"), Some(json!("aws")));
        assert_eq!(get("derived.stale"), Some(json!(false)));
        assert_eq!(get("derived.platform"), None);
        assert_eq!(get("derived.ioc.indicator"), Some(json!("10.0.0.0/8")));
        assert_eq!(get("derived.ioc.name"), None);
        assert_eq!(
            get("derived.ioc"),
            Some(
                json!({"value": "10.0.0.1", "type": "cidr", "indicator": "10.0.0.0/8",
                        "list": "internal", "hits": 1})
            )
        );
        assert_eq!(get("action"), Some(json!("added")));
        assert_eq!(get("indicators.ip"), Some(json!(["10.0.0.1"])));
        assert_eq!(get("attack.id"), Some(json!(["T1059", "T1053.003"])));
        assert_eq!(get("source.record"), Some(json!(3)));
        assert_eq!(get("columns.missing"), None);
        assert_eq!(get("severity"), None);
        assert_eq!(get("columns.nested.inner"), Some(json!("5")));

        // The zero-copy view and the flat JSON rendering agree on every path.
        let flat = eval_view(&event, &derived);
        let json_view = JsonEvent::borrow(&flat);
        for path in [
            "kind",
            "name",
            "pack",
            "query",
            "host",
            "action",
            "time",
            "unix_time",
            "epoch",
            "counter",
            "numerics",
            "id",
            "severity",
            "message",
            "columns.port",
            "columns.cmd",
            "columns.big",
            "columns.nope",
            "decorations.hostname",
            "derived.program",
            "derived.stale",
            "derived.initial",
            "derived.platform",
            "derived.ioc",
            "derived.ioc.value",
            "derived.ioc.type",
            "derived.ioc.list",
            "derived.ioc.name",
            "derived.ioc.hits",
            "derived.ioc.nope",
            "indicators.ip",
            "indicators.md5",
            "attack.id",
            "attack.name",
            "source.path",
            "source.record",
            "source.row",
            "nonsense",
        ] {
            let expected = json_view.get_field(path).map(|v| v.to_json());
            assert_eq!(
                view.get_field(path).map(|v| v.to_json()),
                expected,
                "{path}"
            );
            let resolved = FieldPath::new(path);
            assert_eq!(view.get(&resolved).map(|v| v.to_json()), expected, "{path}");
        }
        let mut a = view.all_string_values();
        let mut b = json_view.all_string_values();
        a.sort();
        b.sort();
        b.retain(|s| s != "1"); // source.record is a number in JSON, text nowhere
        assert!(
            a.iter().any(|s| s == "22"),
            "numbers are searchable text: {a:?}"
        );
        assert!(b.iter().all(|s| a.contains(s)), "{a:?} vs {b:?}");
    }
}
