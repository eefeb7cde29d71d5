//! STIX 2.1 bundles (`.json`): the `indicator` objects whose patterns tripline can evaluate.
//!
//! ```json
//! {"type": "bundle", "id": "bundle--…", "objects": [
//!   {"type": "indicator", "spec_version": "2.1", "id": "indicator--…",
//!    "name": "Cobalt Strike C2", "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z",
//!    "pattern": "[ipv4-addr:value = '185.220.101.47'] OR [domain-name:value = 'evil.example']"}
//! ]}
//! ```
//!
//! The rules:
//!
//! - The file is a bundle (`{"type": "bundle", "objects": [...]}`), a TAXII envelope
//!   (`{"objects": [...]}`) or an array of objects. Objects other than `indicator` are
//!   ignored. JSON that does not parse is an error naming the file, line and column.
//! - An indicator needs an `id` and a string `pattern`; `pattern_type` must be `stix` (or
//!   absent, as in STIX 2.0): other pattern languages (`sigma`, `yara`, `snort`, ...) are
//!   skipped with a warning.
//! - `revoked: true` indicators are skipped and counted. A `valid_until` at or before the
//!   load is skipped with a warning and counted as expired; a later one, and a
//!   `valid_from`, are kept and honoured at lookup against the event's time. A timestamp
//!   that is not RFC 3339 is an error.
//! - The entry's name is the indicator's `name`, else its `id`.
//! - The pattern is parsed with STIX 2.1's whole patterning grammar (a syntax error is an
//!   error naming the indicator's id). tripline evaluates comparisons with `=`, or `IN (...)`,
//!   of `ipv4-addr:value` and `ipv6-addr:value` (an address or a CIDR), `domain-name:value`,
//!   `url:value`, `file:hashes.MD5`, `file:hashes.'SHA-1'`, `file:hashes.'SHA-256'` (hash
//!   names in any case, quoted or not, with or without the dash), and
//!   `network-traffic:dst_ref.value` / `src_ref.value` (an address, CIDR or domain), joined
//!   by `OR` within or between observations (`[a = 'x' OR b = 'y'] OR [c = 'z']`).
//! - Every other construct (`AND`, `FOLLOWEDBY`, `NOT`, `!=`, `LIKE`, `MATCHES`, qualifiers
//!   such as `WITHIN` or `REPEATS`, other objects and properties, other hashes) cannot be
//!   evaluated on one event's indicators. An indicator with none of the comparisons above
//!   is skipped with a warning naming its id and counted as unsupported. In an `OR`, the
//!   branches tripline can evaluate are loaded and the others left out, with a warning and
//!   counted: any event they match, the whole pattern matches. A value that is not of its
//!   comparison's type (`ipv4-addr:value = 'evil.example'`) is an error naming the id.
//!
//! Why unsupported patterns warn instead of failing the load: real feeds mix indicators of
//! every kind (e-mail senders, file names, registry keys), and a feed tripline refused
//! whole would keep every one of its IPs, domains and hashes from matching; the warnings
//! and the `unsupported` count say what was left out.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::value::{parse_domain, parse_hash, parse_ip_or_cidr, parse_url, shorten, Value};
use super::{Builder, EntryInfo};

pub(super) fn load(bytes: &[u8], b: &mut Builder) {
    // Objects are handed over one by one as they are parsed: a feed of a million
    // indicators is never a million objects in memory.
    let mut count = 0usize;
    let mut each = |obj: Object<'_>| {
        count += 1;
        if obj.kind.as_str() != Some("indicator") {
            return;
        }
        match obj.id.as_str() {
            Some(id) => indicator(&obj, id, b),
            None => b.error(
                None,
                None,
                format!("indicator #{count} (of the bundle's objects) has no `id`"),
            ),
        }
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let top = TopSeed { each: &mut each }
        .deserialize(&mut de)
        .and_then(|top| de.end().map(|()| top));
    match top {
        Ok(Top::Objects) => {}
        Err(e) => {
            let line = (e.line() > 0).then_some(e.line() as u64);
            b.error(line, None, format!("not a STIX bundle: {e}"));
        }
        Ok(Top::NoObjects) => b.error(
            None,
            None,
            "not a STIX bundle: no `objects` array (a bundle, a TAXII envelope or an array \
             of objects)"
                .into(),
        ),
        Ok(Top::NotBundle(kind)) => b.error(
            None,
            None,
            format!("a STIX object of type {kind:?}, not a bundle"),
        ),
    }
}

fn indicator(obj: &Object<'_>, id: &str, b: &mut Builder) {
    if obj.revoked == Field::Bool(true) {
        b.revoked();
        return;
    }
    match &obj.pattern_type {
        Field::Missing => {}
        Field::Str(t) if t == "stix" => {}
        Field::Str(t) => {
            b.unsupported(
                None,
                Some(id),
                format!(
                    "pattern_type {:?} skipped: tripline evaluates STIX patterns",
                    shorten(t)
                ),
            );
            return;
        }
        _ => {
            b.error(None, Some(id), "`pattern_type` is not a string".into());
            return;
        }
    }
    let Some(pattern) = obj.pattern.as_str() else {
        b.error(None, Some(id), "no string `pattern`".into());
        return;
    };
    let time = |field: &Field<'_>, key: &str, b: &mut Builder| match field {
        Field::Missing => Ok(None),
        Field::Str(t) => crate::rfc3339::parse(t).map(Some).ok_or_else(|| {
            b.error(
                None,
                Some(id),
                format!("`{key}` {:?} is not an RFC 3339 timestamp", shorten(t)),
            );
        }),
        _ => {
            b.error(None, Some(id), format!("`{key}` is not a string"));
            Err(())
        }
    };
    let Ok(valid_from) = time(&obj.valid_from, "valid_from", b) else {
        return;
    };
    let Ok(valid_until) = time(&obj.valid_until, "valid_until", b) else {
        return;
    };
    let name = obj
        .name
        .as_str()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(id);
    if valid_until.is_some_and(|t| t <= b.now()) {
        b.expired(
            None,
            Some(id),
            format!("{:?} expired (valid_until) and is skipped", shorten(name)),
        );
        return;
    }
    let parsed = match parse(pattern) {
        Ok(p) => p,
        Err(e) => {
            b.error(
                None,
                Some(id),
                format!("pattern {:?}: {e}", shorten(pattern)),
            );
            return;
        }
    };
    let mut wanted = Vec::new();
    let mut skipped = Vec::new();
    collect(&parsed, &mut wanted, &mut skipped);
    let mut values = Vec::with_capacity(wanted.len());
    for (target, literal) in wanted {
        match target.value(&literal) {
            Ok(v) => values.push(v),
            Err(e) => {
                b.error(None, Some(id), format!("{}: {e}", target.path()));
                return;
            }
        }
    }
    skipped.dedup();
    if values.is_empty() {
        b.unsupported(
            None,
            Some(id),
            format!(
                "{:?} skipped: its pattern has no comparison tripline evaluates ({})",
                shorten(name),
                skipped.join("; ")
            ),
        );
        return;
    }
    if !skipped.is_empty() {
        b.unsupported(
            None,
            Some(id),
            format!(
                "{:?}: {} comparison(s) loaded, OR branches left out ({})",
                shorten(name),
                values.len(),
                skipped.join("; ")
            ),
        );
    }
    let record = b.record(&EntryInfo {
        name: Some(name),
        valid_from,
        valid_until,
    });
    for v in values {
        b.add(v, record);
    }
}

// ---------------------------------------------------------------------------------------
// JSON: lenient about every field's type, so that a wrong type is reported against the
// indicator's id rather than as a parse error of the whole file, and without building a
// `Value` tree per object (a feed can hold a million).

/// What the file's top level was.
enum Top {
    /// A bundle, an envelope or an array: its objects were handed over.
    Objects,
    NoObjects,
    NotBundle(String),
}

/// A property's value, as far as the loader cares.
#[derive(Debug, Default, PartialEq)]
enum Field<'a> {
    #[default]
    Missing,
    Str(Cow<'a, str>),
    Bool(bool),
    Other,
}

impl Field<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Field::Str(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
struct Object<'a> {
    kind: Field<'a>,
    id: Field<'a>,
    name: Field<'a>,
    pattern: Field<'a>,
    pattern_type: Field<'a>,
    valid_from: Field<'a>,
    valid_until: Field<'a>,
    revoked: Field<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Field::Bool(v))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Field::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Field::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Object<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Object<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a STIX object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut o = Object::default();
                while let Some(key) = a.next_key::<Field<'de>>()? {
                    let slot = match key.as_str() {
                        Some("type") => &mut o.kind,
                        Some("id") => &mut o.id,
                        Some("name") => &mut o.name,
                        Some("pattern") => &mut o.pattern,
                        Some("pattern_type") => &mut o.pattern_type,
                        Some("valid_from") => &mut o.valid_from,
                        Some("valid_until") => &mut o.valid_until,
                        Some("revoked") => &mut o.revoked,
                        _ => {
                            a.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = a.next_value()?;
                }
                Ok(o)
            }
            // Anything else in `objects` is no object at all: ignored like other types.
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Object::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Object::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Object::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Object::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Object::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Object::default())
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Object::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads the top level, handing each object of its `objects` (or of the array it is) to
/// `each`.
struct TopSeed<'f, F> {
    each: &'f mut F,
}

impl<'de, F: FnMut(Object<'de>)> DeserializeSeed<'de> for TopSeed<'_, F> {
    type Value = Top;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Top, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(Object<'de>)> Visitor<'de> for TopSeed<'_, F> {
    type Value = Top;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a STIX bundle")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Top, A::Error> {
        let mut objects = false;
        let mut kind = Field::Missing;
        while let Some(key) = a.next_key::<Field<'de>>()? {
            match key.as_str() {
                Some("objects") => {
                    a.next_value_seed(EachSeed {
                        each: &mut *self.each,
                    })?;
                    objects = true;
                }
                Some("type") => kind = a.next_value()?,
                _ => {
                    a.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match (objects, kind) {
            (_, Field::Str(k)) if k != "bundle" => Top::NotBundle(k.into_owned()),
            (true, _) => Top::Objects,
            (false, _) => Top::NoObjects,
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<Top, A::Error> {
        EachSeed { each: self.each }
            .visit_seq(a)
            .map(|()| Top::Objects)
    }
}

/// Reads an array of objects, handing each to `each`.
struct EachSeed<'f, F> {
    each: &'f mut F,
}

impl<'de, F: FnMut(Object<'de>)> DeserializeSeed<'de> for EachSeed<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Object<'de>)> Visitor<'de> for EachSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of STIX objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        while let Some(o) = a.next_element::<Object<'de>>()? {
            (self.each)(o);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Patterns.

/// A comparison tripline evaluates: the object path it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Ipv4,
    Ipv6,
    Domain,
    Url,
    Md5,
    Sha1,
    Sha256,
    /// `network-traffic:dst_ref.value` / `src_ref.value`: an address, network or name.
    Endpoint,
}

impl Target {
    fn of(path: &ObjectPath) -> Option<Target> {
        let props: Vec<&str> = path.props.iter().map(String::as_str).collect();
        Some(match (path.object.as_str(), props.as_slice()) {
            ("ipv4-addr", ["value"]) => Target::Ipv4,
            ("ipv6-addr", ["value"]) => Target::Ipv6,
            ("domain-name", ["value"]) => Target::Domain,
            ("url", ["value"]) => Target::Url,
            ("network-traffic", ["dst_ref" | "src_ref", "value"]) => Target::Endpoint,
            ("file", ["hashes", hash]) => {
                match hash.to_ascii_uppercase().replace('-', "").as_str() {
                    "MD5" => Target::Md5,
                    "SHA1" => Target::Sha1,
                    "SHA256" => Target::Sha256,
                    _ => return None,
                }
            }
            _ => return None,
        })
    }

    fn path(self) -> &'static str {
        match self {
            Target::Ipv4 => "ipv4-addr:value",
            Target::Ipv6 => "ipv6-addr:value",
            Target::Domain => "domain-name:value",
            Target::Url => "url:value",
            Target::Md5 => "file:hashes.MD5",
            Target::Sha1 => "file:hashes.'SHA-1'",
            Target::Sha256 => "file:hashes.'SHA-256'",
            Target::Endpoint => "network-traffic:*_ref.value",
        }
    }

    fn value(self, text: &str) -> Result<Value, String> {
        match self {
            Target::Ipv4 | Target::Ipv6 => {
                let v = parse_ip_or_cidr(text)?;
                let ip = match &v {
                    Value::Ip(ip) | Value::Cidr(ip, _) => *ip,
                    _ => unreachable!("parse_ip_or_cidr gives addresses"),
                };
                if ip.is_ipv4() != (self == Target::Ipv4) {
                    return Err(format!("{text:?} is not an address of this family"));
                }
                Ok(v)
            }
            Target::Domain => parse_domain(text).map(Value::Domain),
            Target::Url => parse_url(text).map(Value::Url),
            Target::Md5 => parse_hash(text).map(Value::Md5),
            Target::Sha1 => parse_hash(text).map(Value::Sha1),
            Target::Sha256 => parse_hash(text).map(Value::Sha256),
            Target::Endpoint => parse_ip_or_cidr(text)
                .or_else(|_| parse_domain(text).map(Value::Domain))
                .map_err(|_| format!("{:?} is not an address, network or domain", shorten(text))),
        }
    }
}

/// The comparisons tripline can evaluate, with their string values, and why the rest of an
/// `OR` could not be.
fn collect(obs: &Obs, wanted: &mut Vec<(Target, String)>, skipped: &mut Vec<String>) {
    match obs {
        Obs::Or(parts) => parts.iter().for_each(|p| collect(p, wanted, skipped)),
        Obs::Leaf(c) => collect_comparison(c, wanted, skipped),
        Obs::Unsupported(why) => skipped.push(why.clone()),
    }
}

fn collect_comparison(c: &Comp, wanted: &mut Vec<(Target, String)>, skipped: &mut Vec<String>) {
    match c {
        Comp::Or(parts) => parts
            .iter()
            .for_each(|p| collect_comparison(p, wanted, skipped)),
        Comp::Equals(path, literals) => match Target::of(path) {
            None => skipped.push(format!("{path}")),
            Some(t) => {
                for l in literals {
                    match l {
                        Literal::Str(s) => wanted.push((t, s.clone())),
                        Literal::Other => {
                            skipped.push(format!("{path} compared with a non-string"))
                        }
                    }
                }
            }
        },
        Comp::Unsupported(why) => skipped.push(why.clone()),
    }
}

/// An observation expression, as far as tripline evaluates it.
#[derive(Debug, Clone, PartialEq)]
enum Obs {
    Leaf(Comp),
    Or(Vec<Obs>),
    /// `AND`, `FOLLOWEDBY`, a qualifier: needs several observations, not one event.
    Unsupported(String),
}

/// A comparison expression inside `[...]`.
#[derive(Debug, Clone, PartialEq)]
enum Comp {
    /// `path = literal` or `path IN (literals)`.
    Equals(ObjectPath, Vec<Literal>),
    Or(Vec<Comp>),
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    /// Numbers, booleans, `t'…'`, `h'…'`, `b'…'`.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ObjectPath {
    object: String,
    props: Vec<String>,
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.object)?;
        for (i, p) in self.props.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            if p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                f.write_str(p)?;
            } else {
                write!(f, "'{p}'")?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBrack,
    RBrack,
    LParen,
    RParen,
    Comma,
    Op(&'static str),
    Str(String),
    /// `t'…'`, `h'…'`, `b'…'`.
    Typed(char, String),
    Num,
    Word(String),
    Path(ObjectPath),
}

/// Deepest nesting of parentheses and brackets a pattern may have: deeper is an error, not
/// a stack overflow.
const MAX_DEPTH: usize = 64;

fn tokenize(p: &str) -> Result<Vec<Tok>, String> {
    let b = p.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            c if c.is_ascii_whitespace() => i += 1,
            b'[' => {
                out.push(Tok::LBrack);
                i += 1;
            }
            b']' => {
                out.push(Tok::RBrack);
                i += 1;
            }
            b'(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            b',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            b'=' => {
                out.push(Tok::Op("="));
                i += 1;
            }
            b'!' if b.get(i + 1) == Some(&b'=') => {
                out.push(Tok::Op("!="));
                i += 2;
            }
            b'<' | b'>' => {
                let eq = b.get(i + 1) == Some(&b'=');
                out.push(Tok::Op(match (c, eq) {
                    (b'<', true) => "<=",
                    (b'<', false) => "<",
                    (_, true) => ">=",
                    _ => ">",
                }));
                i += if eq { 2 } else { 1 };
            }
            b'\'' => {
                let (s, next) = string(p, i)?;
                out.push(Tok::Str(s));
                i = next;
            }
            b'0'..=b'9' | b'-' | b'+' => {
                let start = i;
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_digit() || matches!(b[i], b'.' | b'e' | b'E' | b'+' | b'-'))
                {
                    i += 1;
                }
                if !p[start..i].bytes().any(|c| c.is_ascii_digit()) {
                    return Err(format!("unexpected {:?} at {start}", &p[start..i]));
                }
                out.push(Tok::Num);
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'-')) {
                    i += 1;
                }
                let word = &p[start..i];
                if b.get(i) == Some(&b':') {
                    let (path, next) = object_path(p, word, i + 1)?;
                    out.push(Tok::Path(path));
                    i = next;
                } else if word.len() == 1
                    && matches!(word, "t" | "h" | "b")
                    && b.get(i) == Some(&b'\'')
                {
                    let (s, next) = string(p, i)?;
                    out.push(Tok::Typed(word.chars().next().unwrap_or('t'), s));
                    i = next;
                } else {
                    out.push(Tok::Word(word.to_string()));
                }
            }
            _ => {
                let ch = p[i..].chars().next().unwrap_or('?');
                return Err(format!("unexpected {ch:?} at {i}"));
            }
        }
    }
    Ok(out)
}

/// The quoted string starting at `p[at]` (a `'`), with `\'` and `\\` unescaped; returns it
/// and the index after its closing quote.
fn string(p: &str, at: usize) -> Result<(String, usize), String> {
    let mut s = String::new();
    let mut chars = p[at + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' => return Ok((s, at + 1 + i + 1)),
            '\\' => match chars.next() {
                Some((_, e @ ('\'' | '\\'))) => s.push(e),
                _ => {
                    return Err(format!(
                        "an escape other than \\' or \\\\ at {}",
                        at + 1 + i
                    ))
                }
            },
            c => s.push(c),
        }
    }
    Err(format!("a string at {at} is not closed"))
}

/// An object path after `object:`, starting at `p[at]`: properties joined by `.`, each a
/// name or a quoted string, with list indexes (`[0]`, `[*]`).
fn object_path(p: &str, object: &str, mut at: usize) -> Result<(ObjectPath, usize), String> {
    let b = p.as_bytes();
    let mut props = Vec::new();
    loop {
        match b.get(at) {
            Some(b'\'') => {
                let (s, next) = string(p, at)?;
                props.push(s);
                at = next;
            }
            Some(c) if c.is_ascii_alphanumeric() || *c == b'_' => {
                let start = at;
                while at < b.len()
                    && (b[at].is_ascii_alphanumeric() || matches!(b[at], b'_' | b'-'))
                {
                    at += 1;
                }
                props.push(p[start..at].to_string());
            }
            _ => {
                return Err(format!(
                    "a property name expected at {at} in the path of {object}"
                ))
            }
        }
        // List indexes: `[0]`, `[*]`; kept in the path as `*` so the path names no target.
        while b.get(at) == Some(&b'[') {
            let close = p[at..]
                .find(']')
                .ok_or_else(|| format!("an unclosed `[` at {at}"))?;
            let index = &p[at + 1..at + close];
            if !(index == "*" || (!index.is_empty() && index.bytes().all(|c| c.is_ascii_digit()))) {
                return Err(format!("a list index is a number or `*`, not {index:?}"));
            }
            props.push(format!("[{index}]"));
            at += close + 1;
        }
        if b.get(at) == Some(&b'.') {
            at += 1;
        } else {
            break;
        }
    }
    Ok((
        ObjectPath {
            object: object.to_string(),
            props,
        },
        at,
    ))
}

/// Parses a STIX 2.1 pattern.
fn parse(pattern: &str) -> Result<Obs, String> {
    let toks = tokenize(pattern)?;
    let mut p = Parser {
        toks: &toks,
        at: 0,
        depth: 0,
    };
    let obs = p.obs_or()?;
    match p.toks.get(p.at) {
        None => Ok(obs),
        Some(t) => Err(format!("unexpected {} after the pattern", describe(t))),
    }
}

struct Parser<'t> {
    toks: &'t [Tok],
    at: usize,
    depth: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::LBrack => "`[`".into(),
        Tok::RBrack => "`]`".into(),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Op(o) => format!("`{o}`"),
        Tok::Str(s) => format!("'{}'", shorten(s)),
        Tok::Typed(c, s) => format!("{c}'{}'", shorten(s)),
        Tok::Num => "a number".into(),
        Tok::Word(w) => format!("`{w}`"),
        Tok::Path(p) => format!("`{p}`"),
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<&Tok> {
        let t = self.toks.get(self.at);
        self.at += 1;
        t
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), String> {
        match self.next() {
            Some(t) if *t == want => Ok(()),
            Some(t) => Err(format!("{what} expected, found {}", describe(t))),
            None => Err(format!("{what} expected at the end")),
        }
    }

    fn deeper(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }

    fn obs_or(&mut self) -> Result<Obs, String> {
        let mut parts = vec![self.obs_and()?];
        while self.keyword("OR") {
            self.at += 1;
            parts.push(self.obs_and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or(Obs::Or(Vec::new()))
        } else {
            Obs::Or(parts)
        })
    }

    fn obs_and(&mut self) -> Result<Obs, String> {
        let first = self.obs_followed()?;
        if !self.keyword("AND") {
            return Ok(first);
        }
        while self.keyword("AND") {
            self.at += 1;
            self.obs_followed()?;
        }
        Ok(Obs::Unsupported("observations joined by AND".into()))
    }

    fn obs_followed(&mut self) -> Result<Obs, String> {
        let first = self.obs_qualified()?;
        if !self.keyword("FOLLOWEDBY") {
            return Ok(first);
        }
        while self.keyword("FOLLOWEDBY") {
            self.at += 1;
            self.obs_qualified()?;
        }
        Ok(Obs::Unsupported("FOLLOWEDBY".into()))
    }

    fn obs_qualified(&mut self) -> Result<Obs, String> {
        let mut obs = self.obs_primary()?;
        loop {
            let q = if self.keyword("WITHIN") {
                self.at += 1;
                self.number("WITHIN")?;
                self.word("SECONDS")?;
                "WITHIN"
            } else if self.keyword("REPEATS") {
                self.at += 1;
                self.number("REPEATS")?;
                self.word("TIMES")?;
                "REPEATS"
            } else if self.keyword("START") {
                self.at += 1;
                self.timestamp("START")?;
                self.word("STOP")?;
                self.timestamp("STOP")?;
                "START ... STOP"
            } else {
                return Ok(obs);
            };
            obs = Obs::Unsupported(format!("the qualifier {q}"));
        }
    }

    fn number(&mut self, after: &str) -> Result<(), String> {
        match self.next() {
            Some(Tok::Num) => Ok(()),
            _ => Err(format!("a number expected after {after}")),
        }
    }

    fn timestamp(&mut self, after: &str) -> Result<(), String> {
        match self.next() {
            Some(Tok::Typed('t', _)) => Ok(()),
            _ => Err(format!("a t'…' timestamp expected after {after}")),
        }
    }

    fn word(&mut self, kw: &str) -> Result<(), String> {
        if self.keyword(kw) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("{kw} expected"))
        }
    }

    fn obs_primary(&mut self) -> Result<Obs, String> {
        self.deeper()?;
        let obs = match self.next() {
            Some(Tok::LBrack) => {
                let c = self.comp_or()?;
                self.expect(Tok::RBrack, "`]`")?;
                Obs::Leaf(c)
            }
            Some(Tok::LParen) => {
                let o = self.obs_or()?;
                self.expect(Tok::RParen, "`)`")?;
                o
            }
            Some(t) => return Err(format!("`[` or `(` expected, found {}", describe(t))),
            None => return Err("`[` expected, found the end".into()),
        };
        self.depth -= 1;
        Ok(obs)
    }

    fn comp_or(&mut self) -> Result<Comp, String> {
        let mut parts = vec![self.comp_and()?];
        while self.keyword("OR") {
            self.at += 1;
            parts.push(self.comp_and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or(Comp::Or(Vec::new()))
        } else {
            Comp::Or(parts)
        })
    }

    fn comp_and(&mut self) -> Result<Comp, String> {
        let first = self.comp_unit()?;
        if !self.keyword("AND") {
            return Ok(first);
        }
        while self.keyword("AND") {
            self.at += 1;
            self.comp_unit()?;
        }
        Ok(Comp::Unsupported("comparisons joined by AND".into()))
    }

    fn comp_unit(&mut self) -> Result<Comp, String> {
        if self.peek() == Some(&Tok::LParen) {
            self.deeper()?;
            self.at += 1;
            let c = self.comp_or()?;
            self.expect(Tok::RParen, "`)`")?;
            self.depth -= 1;
            return Ok(c);
        }
        if self.keyword("EXISTS") {
            self.at += 1;
            return match self.next() {
                Some(Tok::Path(p)) => Ok(Comp::Unsupported(format!("EXISTS {p}"))),
                _ => Err("an object path expected after EXISTS".into()),
            };
        }
        let path = match self.next() {
            Some(Tok::Path(p)) => p.clone(),
            Some(t) => return Err(format!("an object path expected, found {}", describe(t))),
            None => return Err("an object path expected, found the end".into()),
        };
        let negated = self.keyword("NOT");
        if negated {
            self.at += 1;
        }
        let op = match self.next() {
            Some(Tok::Op(o)) => o.to_string(),
            Some(Tok::Word(w)) => w.to_ascii_uppercase(),
            Some(t) => {
                return Err(format!(
                    "an operator expected after {path}, found {}",
                    describe(t)
                ))
            }
            None => return Err(format!("an operator expected after {path}")),
        };
        let literals = match op.as_str() {
            "=" | "!=" | "<" | "<=" | ">" | ">=" => vec![self.literal()?],
            "LIKE" | "MATCHES" | "ISSUBSET" | "ISSUPERSET" => match self.literal()? {
                s @ Literal::Str(_) => vec![s],
                Literal::Other => return Err(format!("{op} takes a string")),
            },
            "IN" => {
                self.expect(Tok::LParen, "`(` after IN")?;
                let mut list = vec![self.literal()?];
                while self.peek() == Some(&Tok::Comma) {
                    self.at += 1;
                    list.push(self.literal()?);
                }
                self.expect(Tok::RParen, "`)` closing IN")?;
                list
            }
            other => return Err(format!("unknown operator {other:?}")),
        };
        Ok(match (negated, op.as_str()) {
            (false, "=" | "IN") => Comp::Equals(path, literals),
            (true, _) => Comp::Unsupported(format!("{path} NOT {op}")),
            (false, _) => Comp::Unsupported(format!("{path} {op}")),
        })
    }

    fn literal(&mut self) -> Result<Literal, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Literal::Str(s.clone())),
            Some(Tok::Typed(..) | Tok::Num) => Ok(Literal::Other),
            Some(Tok::Word(w))
                if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") =>
            {
                Ok(Literal::Other)
            }
            Some(t) => Err(format!("a value expected, found {}", describe(t))),
            None => Err("a value expected, found the end".into()),
        }
    }
}

/// Whether a pattern parses (for the no-panic property test).
#[cfg(test)]
pub(super) fn parse_for_tests(pattern: &str) -> bool {
    parse(pattern).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(p: &str) -> (Vec<(Target, String)>, Vec<String>) {
        let obs = parse(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        let (mut w, mut s) = (Vec::new(), Vec::new());
        collect(&obs, &mut w, &mut s);
        (w, s)
    }

    #[test]
    fn supported_patterns() {
        let (w, s) = wanted("[ipv4-addr:value = '10.0.0.1']");
        assert_eq!(w, vec![(Target::Ipv4, "10.0.0.1".into())]);
        assert!(s.is_empty());
        let (w, s) = wanted(
            "[domain-name:value = 'a.example' OR url:value = 'http://b.example/x'] OR \
             ([file:hashes.'SHA-256' = 'ab'] OR [file:hashes.MD5 IN ('c', 'd')])",
        );
        assert_eq!(
            w,
            vec![
                (Target::Domain, "a.example".into()),
                (Target::Url, "http://b.example/x".into()),
                (Target::Sha256, "ab".into()),
                (Target::Md5, "c".into()),
                (Target::Md5, "d".into()),
            ]
        );
        assert!(s.is_empty());
        let (w, _) = wanted("[file:hashes.sha1 = 'x'] OR [network-traffic:dst_ref.value = 'y']");
        assert_eq!(
            w,
            vec![(Target::Sha1, "x".into()), (Target::Endpoint, "y".into())]
        );
        let (w, _) = wanted(r"[url:value = 'http://a.example/it\'s']");
        assert_eq!(w, vec![(Target::Url, "http://a.example/it's".into())]);
    }

    #[test]
    fn unsupported_patterns_say_why() {
        for (p, why) in [
            ("[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'a.b']", "AND"),
            ("[ipv4-addr:value = '1.2.3.4'] AND [domain-name:value = 'a.b']", "AND"),
            ("[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [domain-name:value = 'a.b']", "FOLLOWEDBY"),
            ("[ipv4-addr:value = '1.2.3.4'] REPEATS 5 TIMES", "REPEATS"),
            ("[ipv4-addr:value = '1.2.3.4'] WITHIN 300 SECONDS", "WITHIN"),
            (
                "[ipv4-addr:value = '1.2.3.4'] START t'2026-01-01T00:00:00Z' STOP t'2026-02-01T00:00:00Z'",
                "START",
            ),
            ("[ipv4-addr:value != '1.2.3.4']", "!="),
            ("[ipv4-addr:value NOT = '1.2.3.4']", "NOT"),
            ("[email-addr:value = 'a@b.example']", "email-addr:value"),
            ("[file:name = 'x.exe']", "file:name"),
            ("[file:hashes.'SHA-512' = 'ab']", "SHA-512"),
            ("[url:value MATCHES '^http']", "MATCHES"),
            ("[file:size = 10]", "file:size"),
            ("[EXISTS file:name]", "EXISTS"),
            ("[process:extensions.'x'.list[*] = 'a']", "[*]"),
        ] {
            let (w, s) = wanted(p);
            assert!(w.is_empty(), "{p}: {w:?}");
            assert!(s.iter().any(|x| x.contains(why)), "{p}: {s:?}");
        }
        // In an OR, the evaluable branches stay.
        let (w, s) = wanted(
            "[file:name = 'x.exe' OR file:hashes.MD5 = 'ab'] OR [email-addr:value = 'a@b.c']",
        );
        assert_eq!(w, vec![(Target::Md5, "ab".into())]);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn syntax_errors() {
        for p in [
            "",
            "[",
            "[ipv4-addr:value = '1.2.3.4'",
            "ipv4-addr:value = '1.2.3.4'",
            "[ipv4-addr:value = ]",
            "[ipv4-addr:value '1.2.3.4']",
            "[ipv4-addr:value = '1.2.3.4] ",
            "[ipv4-addr:value = '1.2.3.4'] OR",
            "[ipv4-addr:value = '1.2.3.4'] [x:y = 'z']",
            "[ipv4-addr:value IN ('a',)]",
            "[ipv4-addr:value = 'a\\x']",
            "[ipv4-addr: = 'a']",
            "[a:b = 'c'] WITHIN SECONDS",
            "[a:b[x] = 'c']",
            "[a:b ~ 'c']",
            "[a:b LOOKS 'c']",
        ] {
            assert!(parse(p).is_err(), "{p:?} parsed");
        }
        let deep = format!("{}[a:b = 'c']{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).unwrap_err().contains("nested deeper"));
    }
}
