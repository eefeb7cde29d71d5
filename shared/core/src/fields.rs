//! [`Fields`]: a row's columns (or its decorations) as one flat, sorted block.
//!
//! An osquery row is a flat JSON object of 5 to 40 short strings. Held as a
//! `serde_json::Map`, each row cost two heap allocations per column plus a B-tree node
//! per few columns, all made while parsing and freed again once the row was written out:
//! about a fifth of the parse stage's time went to allocating and freeing. `Fields` keeps
//! every name and value of a row back to back in one `String` and indexes them with one
//! `Vec`, so a row is two allocations whatever its width, cloning it (decorations are
//! copied into every row of a batch) is two `memcpy`s, and dropping it is two frees.
//!
//! Entries are sorted by name and names are unique (a repeated name keeps its last value,
//! as a JSON object does). That order is the contract the normalized output had with a
//! `Map` (a `BTreeMap`): the same NDJSON bytes, the same event ids, and lookups by binary
//! search.
//!
//! Values keep their JSON type. osquery columns are strings, or numbers and `null` with
//! `--log_numerics_as_numbers`; the rare array or object (a decoration added by hand, an
//! extension's column) is kept as its compact JSON text and parsed only when asked for.

use std::fmt::{self, Write as _};

use memchr::memmem::Finder;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// A flat JSON object of one row's columns (or decorations), sorted by name.
///
/// Build one by deserializing a JSON object, from a [`serde_json::Map`], or with
/// [`Fields::insert`]. Serializes as a JSON object with its keys in sorted order.
#[derive(Default)]
pub struct Fields {
    /// Every name and value's text, back to back.
    text: String,
    /// Sorted by name, names unique (once [`Builder::finish`] has run).
    entries: Vec<Entry>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The name's first 8 bytes, big-endian and zero-padded: ordering by it agrees with
    /// ordering by name wherever the two differ, so sorting and lookups compare integers
    /// and only look at the text on a tie.
    prefix: u64,
    key: Span,
    /// The name needs no JSON escaping (see [`Fields::write_json`]).
    key_clean: bool,
    /// The value's text: a string's contents, a number's JSON text, or an array's or
    /// object's compact JSON; empty for booleans and `null`.
    value: Span,
    kind: Kind,
}

#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    end: u32,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `clean`: the string needs no JSON escaping, so it is written as it is.
    Str {
        clean: bool,
    },
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Null,
    /// An array or object, as compact JSON text (keys sorted, as `serde_json::Value`
    /// writes them).
    Json,
}

/// One value in [`Fields`], borrowed.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    /// A JSON string's contents.
    Str(&'a str),
    /// A JSON number: its value and its decimal text (as `serde_json` writes it).
    Number(Number, &'a str),
    /// `true` or `false`.
    Bool(bool),
    /// JSON `null`.
    Null,
    /// An array or object, as compact JSON text.
    Json(&'a str),
}

impl<'a> FieldValue<'a> {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            FieldValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A string, or a number as its decimal text: how osquery itself spells a column
    /// unless `--log_numerics_as_numbers` is set.
    pub fn text(&self) -> Option<&'a str> {
        match self {
            FieldValue::Str(s) | FieldValue::Number(_, s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            FieldValue::Number(n, _) => Some(n),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, FieldValue::Null)
    }

    /// The value as a `serde_json::Value` (allocates).
    pub fn to_value(&self) -> Value {
        match *self {
            FieldValue::Str(s) => Value::String(s.to_owned()),
            FieldValue::Number(ref n, _) => Value::Number(n.clone()),
            FieldValue::Bool(b) => Value::Bool(b),
            FieldValue::Null => Value::Null,
            FieldValue::Json(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        }
    }
}

impl PartialEq<&str> for FieldValue<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl PartialEq<str> for FieldValue<'_> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl Serialize for FieldValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldValue::Str(v) => s.serialize_str(v),
            FieldValue::Number(n, _) => n.serialize(s),
            FieldValue::Bool(b) => s.serialize_bool(*b),
            FieldValue::Null => s.serialize_unit(),
            FieldValue::Json(text) => {
                // Written by us from a `Value`, so it parses; a `null` would only hide a
                // bug, and the rare nested value is not worth a raw-value feature.
                let v: Value = serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
                v.serialize(s)
            }
        }
    }
}

/// A name to look up in many rows (a rule's column, a column `derive` reads), with its
/// search key (its first 8 bytes as an integer, which is how rows index their names) worked out once
/// instead of on every lookup. `const`, so fixed names cost nothing at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldName<'a> {
    prefix: u64,
    name: &'a str,
}

impl<'a> FieldName<'a> {
    /// The name `name`, with its search key worked out (at compile time in a `const`).
    pub const fn new(name: &'a str) -> FieldName<'a> {
        // `prefix`, spelled so that it can run at compile time.
        let b = name.as_bytes();
        let mut prefix = 0u64;
        let mut i = 0;
        while i < 8 {
            prefix = (prefix << 8) | if i < b.len() { b[i] as u64 } else { 0 };
            i += 1;
        }
        FieldName { prefix, name }
    }

    /// The name's text.
    pub fn as_str(&self) -> &'a str {
        self.name
    }

    /// The search key alone, for a caller that keeps the name's text elsewhere.
    pub(crate) fn key(&self) -> u64 {
        self.prefix
    }

    /// `name` with the search key `key` that [`FieldName::key`] gave for it earlier.
    pub(crate) fn with_key(key: u64, name: &'a str) -> FieldName<'a> {
        debug_assert_eq!(key, FieldName::new(name).prefix);
        FieldName { prefix: key, name }
    }
}

impl Fields {
    /// An empty row.
    pub fn new() -> Self {
        Fields::default()
    }

    /// How many names the row has.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the row has no names.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every entry, keeping the buffers.
    pub fn clear(&mut self) {
        self.text.clear();
        self.entries.clear();
    }

    /// The value of `key`, found by binary search.
    pub fn get(&self, key: &str) -> Option<FieldValue<'_>> {
        self.find(key).ok().map(|i| self.value(&self.entries[i]))
    }

    /// Whether `key` is present (with any value, `null` included).
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// [`Fields::get`] with the name's search key prepared beforehand.
    pub fn get_name(&self, name: FieldName<'_>) -> Option<FieldValue<'_>> {
        self.find_prefixed(name.prefix, name.name)
            .ok()
            .map(|i| self.value(&self.entries[i]))
    }

    /// [`Fields::contains_key`] with the name's search key prepared beforehand.
    pub fn contains_name(&self, name: FieldName<'_>) -> bool {
        self.find_prefixed(name.prefix, name.name).is_ok()
    }

    /// The text of each string value, and of each nested value's JSON, that contains
    /// `finder`'s needle, in name order. The row's whole text is searched once, so a row
    /// without the needle costs one scan and no look at its entries; a match that spans a
    /// name and a value, or lies in a name, selects nothing.
    pub(crate) fn values_containing<'a>(
        &'a self,
        finder: &Finder<'_>,
    ) -> impl Iterator<Item = &'a str> + 'a {
        let text = self.text.as_bytes();
        let needle = finder.needle().len();
        let hits: Vec<usize> = match finder.find(text) {
            None => Vec::new(),
            Some(first) => std::iter::once(first)
                .chain(
                    finder
                        .find_iter(&text[first + 1..])
                        .map(move |at| first + 1 + at),
                )
                .collect(),
        };
        let entries = if hits.is_empty() {
            &self.entries[..0]
        } else {
            &self.entries[..]
        };
        entries
            .iter()
            .filter(move |e| {
                matches!(e.kind, Kind::Str { .. } | Kind::Json)
                    && hits.iter().any(|&at| {
                        e.value.start as usize <= at && at + needle <= e.value.end as usize
                    })
            })
            .map(move |e| self.slice(e.value))
    }

    /// Names and values in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, FieldValue<'_>)> + '_ {
        self.entries
            .iter()
            .map(|e| (self.slice(e.key), self.value(e)))
    }

    /// The names, sorted.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.entries.iter().map(|e| self.slice(e.key))
    }

    /// The values, in name order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = FieldValue<'_>> + '_ {
        self.entries.iter().map(|e| self.value(e))
    }

    /// Sets `key` to `value`, replacing any value it had. Rebuilding order makes this
    /// `O(n)`; it is for building fields by hand (tests, decorations), while rows are
    /// built by deserializing.
    pub fn insert(&mut self, key: &str, value: &Value) {
        let mut b = Builder::from(std::mem::take(self));
        b.push(key, value);
        *self = b.finish();
    }

    /// Sets `key` to `value` unless `key` is already present (as `Map::entry(..)
    /// .or_insert(..)`). Returns whether it was set.
    pub fn insert_if_absent(&mut self, key: &str, value: &Value) -> bool {
        if self.contains_key(key) {
            return false;
        }
        self.insert(key, value);
        true
    }

    /// A `serde_json::Map` with the same contents (allocates).
    pub fn to_map(&self) -> Map<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_value()))
            .collect()
    }

    /// Appends the same JSON object that serializing with `serde_json` gives, byte for
    /// byte, without its per-byte escaping scan: names and strings that came in without
    /// escapes (most of them) are copied as they are, and numbers and nested values are
    /// already JSON text.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Room for every name and value with its quotes, colon and comma, reserved once:
        // enough for the usual row, whose strings need no escaping.
        out.reserve(self.text.len() + self.entries.len() * 6 + 2);
        out.push(b'{');
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            self.write_string(out, e.key, e.key_clean);
            out.push(b':');
            match e.kind {
                Kind::Str { clean } => self.write_string(out, e.value, clean),
                Kind::Bool(true) => out.extend_from_slice(b"true"),
                Kind::Bool(false) => out.extend_from_slice(b"false"),
                Kind::Null => out.extend_from_slice(b"null"),
                Kind::U64(_) | Kind::I64(_) | Kind::F64(_) | Kind::Json => {
                    out.extend_from_slice(self.bytes(e.value))
                }
            }
        }
        out.push(b'}');
    }

    /// [`write_str`] for a name or string value, the clean case copied as bytes.
    #[inline]
    fn write_string(&self, out: &mut Vec<u8>, span: Span, clean: bool) {
        if clean {
            out.push(b'"');
            out.extend_from_slice(self.bytes(span));
            out.push(b'"');
        } else {
            write_str(out, self.slice(span), false);
        }
    }

    /// Appends the columns' part of an event id's layout (`decode::record::event_id`): for
    /// each entry in name order, the name length-prefixed, then a type tag and the value's
    /// text length-prefixed (`s` a string, `j` a number's or nested value's JSON text) or
    /// a tag alone (`0` null, `t`/`f` a boolean). Straight from the entries, without a
    /// [`FieldValue`] per column, and with room reserved once: this layout was the biggest
    /// part of computing ids.
    pub(crate) fn write_id_layout(&self, out: &mut Vec<u8>) {
        out.reserve(self.text.len() + self.entries.len() * 17);
        for e in &self.entries {
            put_prefixed(out, self.bytes(e.key));
            let tag = match e.kind {
                Kind::Str { .. } => b's',
                Kind::Null => {
                    out.push(b'0');
                    continue;
                }
                Kind::Bool(b) => {
                    out.push(if b { b't' } else { b'f' });
                    continue;
                }
                Kind::U64(_) | Kind::I64(_) | Kind::F64(_) | Kind::Json => b'j',
            };
            out.push(tag);
            put_prefixed(out, self.bytes(e.value));
        }
    }

    /// Binary search on the 8-byte prefixes without branches on the data (rules look up
    /// many columns a row doesn't have, so hits and misses are equally unpredictable),
    /// then the names sharing that prefix in order.
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.find_prefixed(prefix(key), key)
    }

    /// [`Fields::find`] with `needle == prefix(key)` given.
    fn find_prefixed(&self, needle: u64, key: &str) -> Result<usize, usize> {
        let entries = &self.entries;
        if entries.is_empty() {
            return Err(0);
        }
        let (mut base, mut size) = (0, entries.len());
        while size > 1 {
            let half = size / 2;
            let mid = base + half;
            base = if entries[mid].prefix < needle {
                mid
            } else {
                base
            };
            size -= half;
        }
        let mut i = base + usize::from(entries[base].prefix < needle);
        while i < entries.len() && entries[i].prefix == needle {
            let name = self.slice(entries[i].key);
            let order = if name.len() <= 8 && key.len() <= 8 {
                // Same first 8 bytes, zero-padded: the shorter name is the smaller.
                name.len().cmp(&key.len())
            } else {
                name.cmp(key)
            };
            match order {
                std::cmp::Ordering::Equal => return Ok(i),
                std::cmp::Ordering::Greater => return Err(i),
                std::cmp::Ordering::Less => i += 1,
            }
        }
        Err(i)
    }

    fn slice(&self, span: Span) -> &str {
        &self.text[span.start as usize..span.end as usize]
    }

    /// [`Fields::slice`] as bytes, without its checks that the span falls on character
    /// boundaries (where only the bytes are copied).
    fn bytes(&self, span: Span) -> &[u8] {
        &self.text.as_bytes()[span.start as usize..span.end as usize]
    }

    fn value(&self, e: &Entry) -> FieldValue<'_> {
        let text = self.slice(e.value);
        match e.kind {
            Kind::Str { .. } => FieldValue::Str(text),
            Kind::U64(n) => FieldValue::Number(n.into(), text),
            Kind::I64(n) => FieldValue::Number(n.into(), text),
            Kind::F64(f) => {
                FieldValue::Number(Number::from_f64(f).unwrap_or_else(|| 0.into()), text)
            }
            Kind::Bool(b) => FieldValue::Bool(b),
            Kind::Null => FieldValue::Null,
            Kind::Json => FieldValue::Json(text),
        }
    }
}

/// `clone_from` keeps this one's buffers: the decoder copies a record's decorations into
/// events it recycles (see `ObjectDecoder::recycle`), so a copy is two `memcpy`s into
/// capacity it already has, not two allocations.
impl Clone for Fields {
    fn clone(&self) -> Self {
        Fields {
            text: self.text.clone(),
            entries: self.entries.clone(),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.text.clone_from(&source.text);
        self.entries.clone_from(&source.entries);
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Equal when they hold the same names with the same values (as JSON values: the
/// number 22 is not the string "22").
impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl From<&Map<String, Value>> for Fields {
    fn from(map: &Map<String, Value>) -> Self {
        let mut b = Builder::default();
        for (k, v) in map {
            b.push(k, v);
        }
        b.finish()
    }
}

impl From<Map<String, Value>> for Fields {
    fn from(map: Map<String, Value>) -> Self {
        Fields::from(&map)
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, &v)?;
        }
        map.end()
    }
}

/// Appends `s` as a JSON string; `clean` (from [`is_clean`]) skips the escaping scan.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str, clean: bool) {
    if clean {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // `serde_json`'s own escaping, so the bytes stay exactly what it writes.
        serde_json::to_writer(&mut *out, s).expect("writing JSON to a Vec");
    }
}

/// Appends `bytes` after its length (8 bytes, little-endian), so that no value can imitate
/// a boundary in an event id's layout.
pub(crate) fn put_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A name as pushed: where its text is, and whether it needs JSON escaping.
#[derive(Clone, Copy)]
struct Key {
    span: Span,
    clean: bool,
}

/// Whether `serde_json` would write `s` between quotes unchanged: no `"`, `\` or
/// control character. No early exit, so the loop vectorizes.
pub(crate) fn is_clean(s: &str) -> bool {
    !s.bytes().fold(false, |dirty, b| {
        dirty | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// A name's first 8 bytes as a big-endian integer, zero-padded.
///
/// One 8-byte load for the usual name, and a byte loop for short ones: a copy of a
/// variable length into a padded buffer was a `memcpy` call per entry built and per
/// lookup.
fn prefix(name: &str) -> u64 {
    let b = name.as_bytes();
    let n = b.len();
    let byte = |i: usize| u64::from(b[i]) << (56 - 8 * i);
    match b.first_chunk::<8>() {
        Some(first) => u64::from_be_bytes(*first),
        // Two 4-byte loads that overlap: the shared bytes land in the same places.
        None if n >= 4 => {
            let head = u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            let tail = u64::from(u32::from_be_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]));
            head << 32 | tail << (64 - 8 * n)
        }
        // First, middle and last byte (some the same) cover 1 to 3 bytes.
        None if n > 0 => byte(0) | byte(n / 2) | byte(n - 1),
        None => 0,
    }
}

/// Fills a [`Fields`] in any order, then sorts it once.
#[derive(Default)]
struct Builder {
    fields: Fields,
}

impl From<Fields> for Builder {
    fn from(fields: Fields) -> Self {
        Builder { fields }
    }
}

impl Builder {
    fn span_from(&self, start: usize) -> Span {
        let end = self.fields.text.len();
        // Records are capped at 1 MiB and normalized lines at 8 MiB long before this.
        assert!(end <= u32::MAX as usize, "fields text over 4 GiB");
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    fn push_key(&mut self, key: &str, clean: bool) -> Key {
        let start = self.fields.text.len();
        self.fields.text.push_str(key);
        Key {
            span: self.span_from(start),
            clean,
        }
    }

    fn push_entry(&mut self, Key { span: key, clean }: Key, start: usize, kind: Kind) {
        let value = self.span_from(start);
        let prefix = prefix(&self.fields.text[key.start as usize..key.end as usize]);
        if value.end == key.start {
            // An empty name with a textless value (`"":null`): one filler byte keeps every
            // entry's name starting at its own offset, which is how `finish` tells which
            // of two equal names came last.
            self.fields.text.push('\0');
        }
        self.fields.entries.push(Entry {
            prefix,
            key,
            key_clean: clean,
            value,
            kind,
        });
    }

    fn push_number(&mut self, key: Key, n: Number) {
        let start = self.fields.text.len();
        // `Number`'s `Display` is the text `serde_json` writes for it.
        let _ = write!(self.fields.text, "{n}");
        let kind = if let Some(u) = n.as_u64() {
            Kind::U64(u)
        } else if let Some(i) = n.as_i64() {
            Kind::I64(i)
        } else {
            Kind::F64(n.as_f64().unwrap_or(0.0))
        };
        self.push_entry(key, start, kind);
    }

    fn push(&mut self, key: &str, value: &Value) {
        let key = self.push_key(key, is_clean(key));
        let start = self.fields.text.len();
        match value {
            Value::String(s) => {
                self.fields.text.push_str(s);
                self.push_entry(key, start, Kind::Str { clean: is_clean(s) });
            }
            Value::Number(n) => self.push_number(key, n.clone()),
            Value::Bool(b) => self.push_entry(key, start, Kind::Bool(*b)),
            Value::Null => self.push_entry(key, start, Kind::Null),
            nested => {
                let _ = write!(self.fields.text, "{nested}");
                self.push_entry(key, start, Kind::Json);
            }
        }
    }

    /// Sorts by name; of repeated names the last one pushed wins.
    fn finish(self) -> Fields {
        let Fields { text, mut entries } = self.fields;
        let name = |e: &Entry| &text[e.key.start as usize..e.key.end as usize];
        let by_name =
            |a: &Entry, b: &Entry| a.prefix.cmp(&b.prefix).then_with(|| name(a).cmp(name(b)));
        if !entries.is_sorted_by(|a, b| by_name(a, b).is_lt()) {
            // Names pushed later start later in `text`: that tie-break puts the last of
            // a repeated name last in its run.
            entries.sort_unstable_by(|a, b| by_name(a, b).then(a.key.start.cmp(&b.key.start)));
            let mut kept = 0;
            for i in 0..entries.len() {
                if kept > 0 && by_name(&entries[kept - 1], &entries[i]).is_eq() {
                    entries[kept - 1] = entries[i];
                } else {
                    entries[kept] = entries[i];
                    kept += 1;
                }
            }
            entries.truncate(kept);
        }
        Fields { text, entries }
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsVisitor(Fields::new()))
    }
}

/// Deserializes a JSON object's entries straight into a [`Fields`]: names and string
/// values are copied from the input (or from serde's unescaping scratch) into the one
/// text buffer, without a `String` of their own. The entries go into the `Fields` it
/// holds (emptied first), so a recycled one's buffers are filled again rather than new
/// ones allocated.
pub(crate) struct FieldsVisitor(pub(crate) Fields);

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut fields = self.0;
        fields.clear();
        // Room for a typical osquery row, so most rows never grow either buffer.
        fields.text.reserve(384);
        fields.entries.reserve(map.size_hint().unwrap_or(24));
        let mut b = Builder::from(fields);
        while let Some(key) = map.next_key_seed(KeySeed(&mut b))? {
            map.next_value_seed(ValueSeed { b: &mut b, key })?;
        }
        Ok(b.finish())
    }
}

struct KeySeed<'b>(&'b mut Builder);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    /// Borrowed means the input spelled it without escapes, so it needs none.
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key, E> {
        Ok(self.0.push_key(s, true))
    }

    fn visit_str<E>(self, s: &str) -> Result<Key, E> {
        Ok(self.0.push_key(s, is_clean(s)))
    }
}

struct ValueSeed<'b> {
    b: &'b mut Builder,
    key: Key,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl ValueSeed<'_> {
    fn nested(self, value: Value) {
        let start = self.b.fields.text.len();
        let _ = write!(self.b.fields.text, "{value}");
        self.b.push_entry(self.key, start, Kind::Json);
    }

    fn empty(self, kind: Kind) {
        let start = self.b.fields.text.len();
        self.b.push_entry(self.key, start, kind);
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    /// Borrowed means the input spelled it without escapes (JSON strings cannot hold raw
    /// control characters), so it needs none.
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<(), E> {
        let start = self.b.fields.text.len();
        self.b.fields.text.push_str(s);
        self.b
            .push_entry(self.key, start, Kind::Str { clean: true });
        Ok(())
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        let start = self.b.fields.text.len();
        self.b.fields.text.push_str(s);
        self.b
            .push_entry(self.key, start, Kind::Str { clean: is_clean(s) });
        Ok(())
    }

    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        self.b.push_number(self.key, n.into());
        Ok(())
    }

    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        self.b.push_number(self.key, n.into());
        Ok(())
    }

    fn visit_f64<E>(self, f: f64) -> Result<(), E> {
        // What `serde_json::Value` does with a float it cannot hold.
        match Number::from_f64(f) {
            Some(n) => self.b.push_number(self.key, n),
            None => self.empty(Kind::Null),
        }
        Ok(())
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.empty(Kind::Bool(v));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.empty(Kind::Null);
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        self.empty(Kind::Null);
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let v = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        self.nested(v);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let v = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        self.nested(v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn values_containing_a_needle() {
        let finder = Finder::new("://");
        let found = |f: &Fields| -> Vec<String> {
            f.values_containing(&finder).map(str::to_owned).collect()
        };
        // Name order, strings and nested values' JSON; never numbers, names or a seam
        // between a name and its value.
        let mut f: Fields = serde_json::from_str(
            r#"{"z": "curl http://a/ http://b/", "n": 3, "a:": "//x", "h://": "no",
                "j": ["ftp://c/"], "m": "plain"}"#,
        )
        .unwrap();
        assert_eq!(found(&f), ["[\"ftp://c/\"]", "curl http://a/ http://b/"]);
        // A value replaced by a repeated name no longer counts.
        f.insert("z", &json!("now plain"));
        assert_eq!(found(&f), ["[\"ftp://c/\"]"]);
        assert!(found(&Fields::new()).is_empty());
        assert!(found(&Fields::from(
            json!({"a": "x", "b": "y"}).as_object().unwrap()
        ))
        .is_empty());
    }

    #[test]
    fn prefix_is_the_first_8_bytes_zero_padded() {
        let name = "abcdefghij\u{e9}";
        for end in 0..=name.len() {
            let Some(key) = name.get(..end) else { continue };
            let mut buf = [0u8; 8];
            let n = key.len().min(8);
            buf[..n].copy_from_slice(&key.as_bytes()[..n]);
            assert_eq!(prefix(key), u64::from_be_bytes(buf), "{key:?}");
        }
    }

    fn parse(s: &str) -> Fields {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn writes_what_a_map_writes() {
        let text = r#"{"z":"1","a":"\/bin\/sh","n":22,"neg":-3,"f":2.5,"big":18446744073709551615,"t":true,"nul":null,"arr":[1,{"y":1,"x":"2"}],"obj":{},"esc":"a\"b\\c\u0001é"}"#;
        let map: Map<String, Value> = serde_json::from_str(text).unwrap();
        let fields = parse(text);
        assert_eq!(
            serde_json::to_string(&fields).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert_eq!(fields.to_map(), map);
        assert_eq!(Fields::from(&map), fields);
        assert_eq!(fields.len(), map.len());
    }

    #[test]
    fn write_json_is_serde_json_byte_for_byte() {
        let text = r#"{"z\"q":"a\u0001","a":"\/bin\/sh","n":22,"f":2.5,"t":true,"nul":null,"arr":[1,{"y":"\n"}],"k":"plain","é":"ü\\"}"#;
        let f = parse(text);
        let mut out = Vec::new();
        f.write_json(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&f).unwrap()
        );
        let mut built = Fields::new();
        built.insert("q\"", &json!("tab\t"));
        built.insert("ok", &json!("fine"));
        let mut out = Vec::new();
        built.write_json(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"ok":"fine","q\"":"tab\t"}"#
        );
        assert!(
            is_clean("/usr/bin/curl é")
                && !is_clean("a\"b")
                && !is_clean("a\\b")
                && !is_clean("\u{1f}")
        );
    }

    #[test]
    fn lookups_and_types() {
        let f = parse(r#"{"port":22,"path":"/tmp/x","ok":false,"none":null,"f":1.5}"#);
        assert_eq!(f.get("path"), Some(FieldValue::Str("/tmp/x")));
        assert_eq!(f.get("path").unwrap(), "/tmp/x");
        assert_eq!(f.get("port").unwrap().text(), Some("22"));
        assert_eq!(f.get("port").unwrap().as_str(), None);
        assert_eq!(
            f.get("port").unwrap().as_number().unwrap().as_u64(),
            Some(22)
        );
        assert_eq!(f.get("f").unwrap().text(), Some("1.5"));
        assert_eq!(f.get("ok"), Some(FieldValue::Bool(false)));
        assert!(f.get("none").unwrap().is_null());
        assert_eq!(f.get("missing"), None);
        assert!(f.contains_key("ok") && !f.contains_key("o"));
        assert_eq!(
            f.keys().collect::<Vec<_>>(),
            ["f", "none", "ok", "path", "port"]
        );
    }

    #[test]
    fn repeated_names_keep_the_last_value() {
        let f = parse(r#"{"a":"1","b":"2","a":"3"}"#);
        assert_eq!(f.len(), 2);
        assert_eq!(f.get("a").unwrap(), "3");
        let map: Map<String, Value> = serde_json::from_str(r#"{"a":"1","b":"2","a":"3"}"#).unwrap();
        assert_eq!(f.to_map(), map);
        // Empty names and textless values still tell first from last.
        let f = parse(r#"{"":null,"":true,"":false,"x":null}"#);
        assert_eq!(f.get(""), Some(FieldValue::Bool(false)));
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn names_sharing_their_first_eight_bytes_sort_by_the_rest() {
        let f =
            parse(r#"{"abcdefgh2":1,"abcdefgh1":2,"abcdefgh":3,"a\u0000":4,"a":5,"abcdefgh1":6}"#);
        assert_eq!(
            f.keys().collect::<Vec<_>>(),
            ["a", "a\0", "abcdefgh", "abcdefgh1", "abcdefgh2"]
        );
        assert_eq!(f.get("abcdefgh1").unwrap().text(), Some("6"));
        assert_eq!(f.get("a\0").unwrap().text(), Some("4"));
        assert_eq!(f.get("abcdefgh3"), None);
    }

    #[test]
    fn field_names_key_as_rows_do() {
        // Worked out at compile time.
        const CMDLINE: FieldName = FieldName::new("cmdline");
        assert_eq!(CMDLINE.key(), u64::from_be_bytes(*b"cmdline\0"));
        for name in [
            "",
            "a",
            "a\0",
            "abcdefg",
            "abcdefgh",
            "abcdefgh1",
            "é",
            "日本語のキー",
            "x\u{10ffff}",
        ] {
            assert_eq!(FieldName::new(name).key(), prefix(name), "{name:?}");
            assert_eq!(FieldName::new(name).as_str(), name);
        }
        let f = parse(r#"{"abcdefgh2":1,"abcdefgh1":2,"abcdefgh":3,"a\u0000":4,"a":5}"#);
        for name in [
            "a",
            "a\0",
            "abcdefgh",
            "abcdefgh1",
            "abcdefgh2",
            "abcdefgh3",
            "b",
            "",
        ] {
            assert_eq!(f.get_name(FieldName::new(name)), f.get(name), "{name:?}");
            assert_eq!(f.contains_name(FieldName::new(name)), f.contains_key(name));
        }
    }

    #[test]
    fn insert_replaces_and_insert_if_absent_keeps() {
        let mut f = parse(r#"{"b":"2"}"#);
        f.insert("a", &json!("1"));
        f.insert("b", &json!(3));
        assert!(!f.insert_if_absent("a", &json!("x")));
        assert!(f.insert_if_absent("c", &json!(null)));
        assert_eq!(
            f.to_map(),
            json!({"a":"1","b":3,"c":null})
                .as_object()
                .cloned()
                .unwrap()
        );
    }

    #[test]
    fn strings_and_numbers_stay_apart() {
        assert_ne!(parse(r#"{"a":"22"}"#), parse(r#"{"a":22}"#));
        assert_eq!(parse(r#"{"a":"\/x"}"#), parse(r#"{"a":"/x"}"#));
        assert_eq!(parse(r#"{"b":1,"a":2}"#), parse(r#"{"a":2,"b":1}"#));
    }

    #[test]
    fn not_an_object_is_an_error() {
        assert!(serde_json::from_str::<Fields>("[1]").is_err());
        assert!(serde_json::from_str::<Fields>(r#"{"a":"#).is_err());
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<String>().prop_map(Value::String),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(2, 8, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{0,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any object reads and writes exactly as a `serde_json::Map` does.
        #[test]
        fn same_as_a_map(entries in prop::collection::vec(("[a-d]{0,2}|\\PC{0,6}|abcdefgh[a-b\\x00]{0,2}", value()), 0..12)) {
            let mut text = String::from("{");
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 { text.push(','); }
                text.push_str(&serde_json::to_string(k).unwrap());
                text.push(':');
                text.push_str(&serde_json::to_string(v).unwrap());
            }
            text.push('}');
            let map: Map<String, Value> = serde_json::from_str(&text).unwrap();
            let fields: Fields = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(serde_json::to_string(&fields).unwrap(), serde_json::to_string(&map).unwrap());
            let mut written = Vec::new();
            fields.write_json(&mut written);
            prop_assert_eq!(String::from_utf8(written).unwrap(), serde_json::to_string(&map).unwrap());
            let mut written = Vec::new();
            Fields::from(&map).write_json(&mut written);
            prop_assert_eq!(String::from_utf8(written).unwrap(), serde_json::to_string(&map).unwrap());
            prop_assert_eq!(fields.to_map(), map.clone());
            prop_assert_eq!(&Fields::from(&map), &fields);
            for probe in ["", "a", "a\0", "abcdefgh", "abcdefgha", "zz", "\u{10ffff}"] {
                prop_assert_eq!(fields.get(probe).map(|f| f.to_value()), map.get(probe).cloned());
                prop_assert_eq!(fields.get_name(FieldName::new(probe)), fields.get(probe));
                prop_assert_eq!(fields.contains_name(FieldName::new(probe)), map.contains_key(probe));
            }
            for (k, v) in &map {
                prop_assert_eq!(fields.get(k).map(|f| f.to_value()), Some(v.clone()));
                prop_assert_eq!(fields.get_name(FieldName::new(k)), fields.get(k));
                prop_assert!(fields.contains_name(FieldName::new(k)));
                if let Value::Number(n) = v {
                    // The text is both what views show (`Display`) and what ids hash (JSON).
                    let text = n.to_string();
                    prop_assert_eq!(fields.get(k).unwrap().text(), Some(text.as_str()));
                    prop_assert_eq!(serde_json::to_string(n).unwrap(), text);
                }
            }
        }
    }
}
