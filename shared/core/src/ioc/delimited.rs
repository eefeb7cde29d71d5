//! CSV lists (`.csv`; `.tsv` is the same with tabs), as threat-intel platforms export them.
//!
//! ```csv
//! type,value,name
//! ip,185.220.101.47,Cobalt Strike C2
//! cidr,45.61.136.0/24,
//! domain,evil.example,Phishing kit
//! url,https://cdn.evil.example/x.sh,Dropper
//! sha256,9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08,Loader
//! ```
//!
//! The rules:
//!
//! - The first row is the header. Column names are matched without regard to case or
//!   surrounding blanks: the type is `type` or `indicator_type`, the value `value` or
//!   `indicator` (both required); the entry's name is `name`, else `description`
//!   (optional); `valid_until` (optional, RFC 3339) is an expiry, as in STIX. Other columns
//!   are ignored.
//! - Fields follow RFC 4180 (double quotes, `""` inside them) and are trimmed. Lines
//!   starting with `#` are comments; blank lines are skipped. Every row has as many fields
//!   as the header.
//! - Types (any case): `ip`, `ipv4`, `ipv6`, `ip-src`, `ip-dst`, `ipv4-addr`, `ipv6-addr`
//!   (an address, or a network when the value has a `/`); `cidr`, `network`, `subnet`,
//!   `ip-range`; `domain`, `domain-name`, `hostname`, `fqdn`; `url`, `uri`, `link`; `md5`,
//!   `sha1`/`sha-1`, `sha256`/`sha-256`; `hash`, `filehash`, `file-hash` (by the number
//!   of hex digits); an empty type is inferred from the value as in plain text.
//! - Types that name indicators no event carries ([`SKIPPED_TYPES`]: e-mail addresses,
//!   file names, other hashes, registry keys, ...) are skipped with a warning and counted.
//! - Any other type, and a value that is not of its row's type, is an error naming the file
//!   and line.

use super::value::{
    infer, parse_domain, parse_hash, parse_ip_or_cidr, parse_url, refang, shorten, Classified,
    Value,
};
use super::{Builder, EntryInfo};

/// Types that threat-intel exports use for indicators no event carries.
pub const SKIPPED_TYPES: &[&str] = &[
    "email",
    "email-addr",
    "email-src",
    "email-dst",
    "email-subject",
    "filename",
    "file-name",
    "file",
    "path",
    "filepath",
    "sha224",
    "sha384",
    "sha512",
    "sha-224",
    "sha-384",
    "sha-512",
    "sha3-256",
    "ssdeep",
    "imphash",
    "tlsh",
    "authentihash",
    "pehash",
    "mutex",
    "regkey",
    "registry",
    "windows-registry-key",
    "user-agent",
    "useragent",
    "asn",
    "as",
    "ja3",
    "ja3-fingerprint",
    "ja3s",
    "jarm",
    "port",
    "btc",
    "bitcoin",
    "cve",
    "vulnerability",
    "yara",
    "snort",
    "sigma",
    "text",
    "comment",
    "other",
    "mac-addr",
    "x509-fingerprint-sha1",
    "x509-fingerprint-sha256",
];

/// How a row's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum As {
    IpOrCidr,
    Cidr,
    Domain,
    Url,
    Md5,
    Sha1,
    Sha256,
    AnyHash,
    Inferred,
}

fn kind_of(ty: &str) -> Option<As> {
    Some(match ty.to_ascii_lowercase().as_str() {
        "ip" | "ipv4" | "ipv6" | "ip-src" | "ip-dst" | "ipv4-addr" | "ipv6-addr" | "ip-addr"
        | "address" => As::IpOrCidr,
        "cidr" | "network" | "subnet" | "ip-range" | "netblock" => As::Cidr,
        "domain" | "domain-name" | "hostname" | "fqdn" | "host" => As::Domain,
        "url" | "uri" | "link" => As::Url,
        "md5" => As::Md5,
        "sha1" | "sha-1" => As::Sha1,
        "sha256" | "sha-256" => As::Sha256,
        "hash" | "filehash" | "file-hash" => As::AnyHash,
        "" => As::Inferred,
        _ => return None,
    })
}

/// The value of a row of type `kind`, or why it is not one.
fn read(kind: As, text: &str) -> Result<Classified, String> {
    let v = |r: Result<Value, String>| r.map(Classified::Value);
    match kind {
        As::IpOrCidr => v(parse_ip_or_cidr(text)),
        As::Cidr => match parse_ip_or_cidr(text)? {
            Value::Ip(ip) => Ok(Classified::Value(Value::Cidr(
                ip,
                if ip.is_ipv4() { 32 } else { 128 },
            ))),
            net => Ok(Classified::Value(net)),
        },
        As::Domain => v(parse_domain(text).map(Value::Domain)),
        As::Url => v(parse_url(text).map(Value::Url)),
        As::Md5 => v(parse_hash(text).map(Value::Md5)),
        As::Sha1 => v(parse_hash(text).map(Value::Sha1)),
        As::Sha256 => v(parse_hash(text).map(Value::Sha256)),
        As::AnyHash => match infer(text)? {
            c @ Classified::Value(Value::Md5(_) | Value::Sha1(_) | Value::Sha256(_)) => Ok(c),
            c @ Classified::Unsupported(_) => Ok(c),
            _ => Err(format!(
                "{:?} is not an MD5, SHA-1 or SHA-256 hash",
                shorten(text)
            )),
        },
        As::Inferred => infer(text),
    }
}

/// The header's columns that a list reads.
struct Columns {
    ty: usize,
    value: usize,
    name: Option<usize>,
    valid_until: Option<usize>,
}

fn columns(header: &csv::ByteRecord) -> Result<Columns, String> {
    let find = |names: &[&str]| {
        header.iter().position(|h| {
            let h = String::from_utf8_lossy(h);
            let h = h.trim().trim_start_matches('\u{feff}');
            names.iter().any(|n| h.eq_ignore_ascii_case(n))
        })
    };
    let ty = find(&["type", "indicator_type"]);
    let value = find(&["value", "indicator"]);
    match (ty, value) {
        (Some(ty), Some(value)) => Ok(Columns {
            ty,
            value,
            name: find(&["name"]).or_else(|| find(&["description"])),
            valid_until: find(&["valid_until"]),
        }),
        _ => Err(
            "the header needs a type column (`type` or `indicator_type`) and a value column \
             (`value` or `indicator`)"
                .into(),
        ),
    }
}

pub(super) fn load(bytes: &[u8], tabs: bool, b: &mut Builder) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(if tabs { b'\t' } else { b',' })
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let cols = match reader
        .byte_headers()
        .map_err(|e| e.to_string())
        .and_then(columns)
    {
        Ok(c) => c,
        Err(message) => {
            b.error(Some(1), None, message);
            return;
        }
    };
    let mut record = csv::ByteRecord::new();
    loop {
        let line = Some(reader.position().line());
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).or(line);
                b.error(line, None, csv_message(&e));
                // A malformed row leaves the reader where it can go on; an I/O error (none
                // from a byte slice) could not.
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
                continue;
            }
        }
        let line = record.position().map(|p| p.line()).or(line);
        let field = |i: usize| std::str::from_utf8(record.get(i).unwrap_or_default());
        let (Ok(ty), Ok(text)) = (field(cols.ty), field(cols.value)) else {
            b.error(line, None, "not UTF-8 text".into());
            continue;
        };
        let name = cols.name.map(field).transpose().ok().flatten();
        if text.is_empty() {
            b.error(line, None, "an empty value".into());
            continue;
        }
        let Some(kind) = kind_of(ty) else {
            if SKIPPED_TYPES.iter().any(|s| s.eq_ignore_ascii_case(ty)) {
                b.unsupported(
                    line,
                    None,
                    format!("type {ty:?} skipped: events carry no such indicator"),
                );
            } else {
                b.error(
                    line,
                    None,
                    format!(
                        "unknown type {:?} (ip, cidr, domain, url, md5, sha1, sha256, hash, \
                         or empty to infer it)",
                        shorten(ty)
                    ),
                );
            }
            continue;
        };
        let valid_until = match cols.valid_until.map(field) {
            None | Some(Ok("")) => None,
            Some(Ok(t)) => match crate::rfc3339::parse(t) {
                Some(t) => Some(t),
                None => {
                    b.error(
                        line,
                        None,
                        format!("valid_until {:?} is not RFC 3339", shorten(t)),
                    );
                    continue;
                }
            },
            Some(Err(_)) => {
                b.error(line, None, "not UTF-8 text".into());
                continue;
            }
        };
        if valid_until.is_some_and(|t| t <= b.now()) {
            b.expired(
                line,
                None,
                format!("{:?} expired (valid_until) and is skipped", shorten(text)),
            );
            continue;
        }
        match read(kind, &refang(text)) {
            Ok(Classified::Value(v)) => {
                let record = b.record(&EntryInfo {
                    name,
                    valid_from: None,
                    valid_until,
                });
                b.add(v, record);
            }
            Ok(Classified::Unsupported(what)) => b.unsupported(
                line,
                None,
                format!(
                    "{what} {:?} skipped: events carry no such indicator",
                    shorten(text)
                ),
            ),
            Err(message) => b.error(line, None, format!("type {ty}: {message}")),
        }
    }
}

/// A CSV error in words, without the position (the problem has it).
fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".into(),
        _ => e.to_string(),
    }
}
