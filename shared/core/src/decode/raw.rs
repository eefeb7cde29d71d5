//! One pass from a record's bytes to its typed parts, without a `serde_json::Value` tree.
//!
//! Parsing the whole record into a `Value` and then picking it apart cost an allocation
//! per top-level key and value (a `BTreeMap` of ~15 entries per record) that was thrown
//! away straight after. Here each known key is deserialized into what it becomes:
//! header scalars borrow from the input (`"unixTime":"1794816000"` is read in place),
//! rows go straight into the [`Fields`] the event keeps, and only unknown keys (top-level
//! decorations) become `Value`s. Wrong types never fail the parse: they are recorded
//! (`Wrong("number")`) so the caller can quarantine with the same reasons as before.

use std::borrow::Cow;
use std::fmt;

use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::{Number, Value};

use crate::fields::{Fields, FieldsVisitor};

/// A top-level value where osquery writes a scalar (natively or stringified).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    Str(Cow<'a, str>),
    Num(Number),
    Bool(bool),
    Null,
    /// An array or object where a scalar belongs; its content is skipped.
    Container(&'static str),
}

impl Scalar<'_> {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Scalar::Str(_) => "string",
            Scalar::Num(_) => "number",
            Scalar::Bool(_) => "boolean",
            Scalar::Null => "null",
            Scalar::Container(kind) => kind,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// `columns`, `decorations`, `diffResults` rows: an object, or nothing (absent, `null`,
/// or the AWS loggers' `""`).
#[derive(Debug, Default)]
pub(crate) enum Object {
    Map(Fields),
    #[default]
    Empty,
    Wrong(&'static str),
}

/// `snapshot`, `diffResults.added`/`removed`: a list of rows, or nothing.
#[derive(Debug, Default)]
pub(crate) enum Rows {
    List(Vec<Fields>),
    #[default]
    Empty,
    Wrong(&'static str),
    /// Row `.0` is a JSON `.1`, not an object.
    BadRow(usize, &'static str),
}

/// `diffResults`: `added` and `removed` row lists (other keys ignored).
#[derive(Debug, Default)]
pub(crate) enum Diff {
    Lists {
        added: Rows,
        removed: Rows,
    },
    #[default]
    Empty,
    Wrong(&'static str),
}

/// A record's top-level keys, each already in the form the decoder needs.
#[derive(Debug, Default)]
pub(crate) struct RawRecord<'a> {
    pub name: Option<Scalar<'a>>,
    pub host_identifier: Option<Scalar<'a>>,
    /// The host in old records; a top-level decoration when `hostIdentifier` is present.
    pub hostname: Option<Value>,
    pub calendar_time: Option<Scalar<'a>>,
    pub unix_time: Option<Scalar<'a>>,
    pub epoch: Option<Scalar<'a>>,
    pub counter: Option<Scalar<'a>>,
    pub numerics: Option<Scalar<'a>>,
    pub log_numerics_as_numbers: Option<Scalar<'a>>,
    pub action: Option<Scalar<'a>>,
    pub columns: Option<Object>,
    pub diff_results: Option<Diff>,
    pub snapshot: Option<Rows>,
    pub decorations: Option<Object>,
    /// `severity`, `filename`, `line`, `message`, `version`: status fields in status
    /// records, top-level decorations in result records, so kept as values until the
    /// shape is known.
    pub status: [Option<Value>; 5],
    /// Every other key: top-level decorations (`--decorations_top_level`).
    pub extra: Vec<(String, Value)>,
}

/// The status fields' names, in [`RawRecord::status`] order.
pub(crate) const STATUS_KEYS: [&str; 5] = ["severity", "filename", "line", "message", "version"];
/// Indexes into [`RawRecord::status`] of the fields that tell a status record apart.
pub(crate) const SEVERITY: usize = 0;
pub(crate) const FILENAME: usize = 1;
pub(crate) const LINE: usize = 2;
pub(crate) const MESSAGE: usize = 3;

/// What a record's bytes turned out to be.
#[derive(Debug)]
pub(crate) enum Parsed<'a> {
    Record(Box<RawRecord<'a>>),
    /// Valid JSON that isn't an object: its type name.
    NotObject(&'static str),
}

/// Parses one record. `Err` only for invalid JSON. Rows and decorations are deserialized
/// into `Fields` taken from `spare` (emptied first) while it has any.
pub(crate) fn parse<'a>(
    text: &'a str,
    spare: &mut Vec<Fields>,
) -> Result<Parsed<'a>, serde_json::Error> {
    // What `serde_json::from_str` does, with a seed.
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = RecordSeed(spare).deserialize(&mut de)?;
    de.end()?;
    Ok(parsed)
}

/// Deserializes a record, taking the `Fields` to fill from the vector it holds.
struct RecordSeed<'s>(&'s mut Vec<Fields>);

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Parsed<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = Parsed<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an osquery record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut r = RawRecord::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Name => r.name = Some(map.next_value()?),
                Key::HostIdentifier => r.host_identifier = Some(map.next_value()?),
                Key::Hostname => r.hostname = Some(map.next_value()?),
                Key::CalendarTime => r.calendar_time = Some(map.next_value()?),
                Key::UnixTime => r.unix_time = Some(map.next_value()?),
                Key::Epoch => r.epoch = Some(map.next_value()?),
                Key::Counter => r.counter = Some(map.next_value()?),
                Key::Numerics => r.numerics = Some(map.next_value()?),
                Key::LogNumericsAsNumbers => r.log_numerics_as_numbers = Some(map.next_value()?),
                Key::Action => r.action = Some(map.next_value()?),
                Key::Columns => r.columns = Some(map.next_value_seed(ObjectSeed(&mut *self.0))?),
                Key::DiffResults => {
                    r.diff_results = Some(map.next_value_seed(DiffSeed(&mut *self.0))?)
                }
                Key::Snapshot => r.snapshot = Some(map.next_value_seed(RowsSeed(&mut *self.0))?),
                Key::Decorations => {
                    r.decorations = Some(map.next_value_seed(ObjectSeed(&mut *self.0))?)
                }
                Key::LogType => {
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Status(i) => r.status[i] = Some(map.next_value()?),
                Key::Other(name) => {
                    let value = map.next_value()?;
                    // Like a JSON object, a repeated key keeps its last value.
                    match r.extra.iter_mut().find(|(k, _)| *k == name) {
                        Some((_, v)) => *v = value,
                        None => r.extra.push((name, value)),
                    }
                }
            }
        }
        Ok(Parsed::Record(Box::new(r)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain(seq).map(|()| Parsed::NotObject("array"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Parsed::NotObject("string"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Parsed::NotObject("number"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Parsed::NotObject("number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Parsed::NotObject("number"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Parsed::NotObject("boolean"))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Parsed::NotObject("null"))
    }
}

/// A top-level key, matched without allocating unless it is unknown.
enum Key {
    Name,
    HostIdentifier,
    Hostname,
    CalendarTime,
    UnixTime,
    Epoch,
    Counter,
    Numerics,
    LogNumericsAsNumbers,
    Action,
    Columns,
    DiffResults,
    Snapshot,
    Decorations,
    LogType,
    Status(usize),
    Other(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "name" => Key::Name,
                    "hostIdentifier" => Key::HostIdentifier,
                    "hostname" => Key::Hostname,
                    "calendarTime" => Key::CalendarTime,
                    "unixTime" => Key::UnixTime,
                    "epoch" => Key::Epoch,
                    "counter" => Key::Counter,
                    "numerics" => Key::Numerics,
                    "logNumericsAsNumbers" => Key::LogNumericsAsNumbers,
                    "action" => Key::Action,
                    "columns" => Key::Columns,
                    "diffResults" => Key::DiffResults,
                    "snapshot" => Key::Snapshot,
                    "decorations" => Key::Decorations,
                    "log_type" => Key::LogType,
                    other => match STATUS_KEYS.iter().position(|k| *k == other) {
                        Some(i) => Key::Status(i),
                        None => Key::Other(other.to_owned()),
                    },
                })
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

fn drain<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(s)))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                Ok(Scalar::Num(n.into()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Num(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
                Ok(Number::from_f64(n).map_or(Scalar::Null, Scalar::Num))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(b))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain(seq).map(|()| Scalar::Container("array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                drain_map(map).map(|()| Scalar::Container("object"))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

/// The visits shared by every "container or a wrong type" field: scalars other than `""`
/// and `null` are wrong types, reported by name.
macro_rules! wrong_scalars {
    ($wrong:expr, $empty:expr) => {
        fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
            Ok(if s.is_empty() {
                $empty
            } else {
                $wrong("string")
            })
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($wrong("number"))
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($wrong("number"))
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($wrong("number"))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($wrong("boolean"))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($empty)
        }
    };
}

/// Deserializes an [`Object`] (into a spare `Fields` if there is one).
struct ObjectSeed<'s>(&'s mut Vec<Fields>);

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = Object;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Object, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = Object;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    wrong_scalars!(Object::Wrong, Object::Empty);
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object, A::Error> {
        let fields = self.0.pop().unwrap_or_default();
        FieldsVisitor(fields).visit_map(map).map(Object::Map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Object, A::Error> {
        drain(seq).map(|()| Object::Wrong("array"))
    }
}

/// Deserializes [`Rows`] (into spare `Fields` while there are any).
struct RowsSeed<'s>(&'s mut Vec<Fields>);

impl<'de> DeserializeSeed<'de> for RowsSeed<'_> {
    type Value = Rows;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Rows, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_> {
    type Value = Rows;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of rows")
    }
    wrong_scalars!(Rows::Wrong, Rows::Empty);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Rows, A::Error> {
        let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(row) = seq.next_element_seed(ObjectSeed(&mut *self.0))? {
            match row {
                Object::Map(map) => rows.push(map),
                Object::Empty => rows.push(Fields::new()),
                Object::Wrong(kind) => {
                    let at = rows.len();
                    return drain(seq).map(|()| Rows::BadRow(at, kind));
                }
            }
        }
        Ok(Rows::List(rows))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Rows, A::Error> {
        drain_map(map).map(|()| Rows::Wrong("object"))
    }
}

/// Deserializes a [`Diff`] (its rows into spare `Fields` while there are any).
struct DiffSeed<'s>(&'s mut Vec<Fields>);

impl<'de> DeserializeSeed<'de> for DiffSeed<'_> {
    type Value = Diff;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Diff, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DiffSeed<'_> {
    type Value = Diff;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("diffResults")
    }
    wrong_scalars!(Diff::Wrong, Diff::Empty);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Diff, A::Error> {
        let (mut added, mut removed) = (Rows::Empty, Rows::Empty);
        while let Some(key) = map.next_key::<DiffKey>()? {
            match key {
                DiffKey::Added => added = map.next_value_seed(RowsSeed(&mut *self.0))?,
                DiffKey::Removed => removed = map.next_value_seed(RowsSeed(&mut *self.0))?,
                DiffKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Diff::Lists { added, removed })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Diff, A::Error> {
        drain(seq).map(|()| Diff::Wrong("array"))
    }
}

/// `added`, `removed`, or a key `diffResults` doesn't use (matched without allocating).
enum DiffKey {
    Added,
    Removed,
    Other,
}

impl<'de> Deserialize<'de> for DiffKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DiffKeyVisitor;
        impl Visitor<'_> for DiffKeyVisitor {
            type Value = DiffKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, s: &str) -> Result<DiffKey, E> {
                Ok(match s {
                    "added" => DiffKey::Added,
                    "removed" => DiffKey::Removed,
                    _ => DiffKey::Other,
                })
            }
        }
        d.deserialize_str(DiffKeyVisitor)
    }
}
