//! Indicator-of-compromise lists, matched against every event's indicators.
//!
//! An [`IocSet`] is loaded once (the detect function at cold start, from the files it reads
//! from S3; the CLI from a directory) from lists in three formats, told apart by extension:
//!
//! - **plain text** (`.txt`, `.ioc`, `.list`; [`plain`]): one IP, CIDR, domain, URL or hash a
//!   line, `#` comments;
//! - **CSV** (`.csv`, or `.tsv` with tabs; [`delimited`]): a header, a type and a value
//!   column, optionally a name or description;
//! - **STIX 2.1** bundles (`.json`; [`stix`]): `indicator` objects whose patterns compare
//!   IPs, domain names, URLs or file hashes.
//!
//! Each list is named by its file's stem (`iocs/advisory-2026-11.txt` is the list
//! `advisory-2026-11`). A [`Detector`](crate::Detector) given a set
//! ([`Detector::with_iocs`](crate::Detector::with_iocs)) looks each event's
//! [`Indicators`] up in it and sets `derived.ioc` ([`IocHit`]) on a hit, which the built-in
//! rule `osquery_ioc_match` fires on.
//!
//! # Matching
//!
//! - **Exact values**: hashes (MD5, SHA-1, SHA-256) against `indicators.md5/sha1/sha256`,
//!   IPs against `indicators.ip`, in canonical form (case, IPv6 spelling, IPv4-mapped
//!   addresses as IPv4) on both sides.
//! - **CIDRs** contain the addresses of `indicators.ip`.
//! - **Domains** match themselves and their subdomains: `evil.example` matches
//!   `a.b.evil.example`, not `notevil.example`.
//! - **URLs**: events carry the hosts of the URLs in their columns, not the URLs, so a URL
//!   is looked up by its host (exactly, no subdomains) and confirmed in the row's text: some
//!   column must hold it from the host on (`evil.example/x.sh`), after `://` or a
//!   userinfo's `@`, compared without regard to case and scheme. A URL that is only a host
//!   (`http://evil.example/`) matches on the host. A URL on a shared host
//!   (`https://github.com/evil/x`) so never fires on every row that names github.com.
//!
//! Every lookup costs a bounded number of hash probes per indicator, whatever the size of
//! the set: one for a hash or an IP, one per prefix length present (at most 32 for IPv4,
//! 128 for IPv6) for CIDRs, one per label of the name for domains. No list is scanned. A
//! probe that would miss (nearly all) is mostly answered by one word of a Bloom filter over
//! the exact keys, and an IPv4 address is probed only at the prefix lengths of the networks
//! that overlap its /16 block.
//!
//! # Which hit
//!
//! An event can hit several entries. `derived.ioc` is the first in this order: SHA-256,
//! SHA-1, MD5, then each domain (a URL on it, then the longest listed suffix), then each IP
//! (a URL on it, then the exact address, then the longest listed prefix), each kind in the
//! event's own order of indicators. `hits` counts all of them.
//!
//! # Validity and duplicates
//!
//! A value listed twice (in one list or in two) keeps its first listing, in the order the
//! files were given ([`IocSet::load_dir`] sorts them by path) and then by line; the others are
//! counted in [`IocStats::duplicates`]. STIX indicators keep their `valid_from` and
//! `valid_until` (CSV rows their `valid_until`): one expired when the set was loaded is
//! skipped (counted, with a warning), and a later expiry is honoured at lookup against the
//! event's time, so a long-lived set stops matching an indicator when it expires.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use memchr::memmem::Finder;
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::{Deserialize, Serialize};

use crate::event::Indicators;
use crate::fields::Fields;

pub mod delimited;
pub mod plain;
pub mod stix;
mod value;

#[cfg(test)]
mod tests;

use value::{decode_hex, mask4, mask6, url_in_text, Value};

/// Problems kept verbatim in an [`IocError`] or [`IocSet::warnings`]; the counts are
/// complete regardless.
pub const MAX_PROBLEMS: usize = 100;

/// What kind of entry an indicator list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IocType {
    /// An IPv4 or IPv6 address.
    Ip,
    /// An IPv4 or IPv6 network.
    Cidr,
    /// A domain name and its subdomains.
    Domain,
    /// A URL.
    Url,
    /// An MD5 hash.
    Md5,
    /// A SHA-1 hash.
    Sha1,
    /// A SHA-256 hash.
    Sha256,
}

impl IocType {
    /// The name in `derived.ioc.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            IocType::Ip => "ip",
            IocType::Cidr => "cidr",
            IocType::Domain => "domain",
            IocType::Url => "url",
            IocType::Md5 => "md5",
            IocType::Sha1 => "sha1",
            IocType::Sha256 => "sha256",
        }
    }
}

impl fmt::Display for IocType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `derived.ioc`: the entry an event hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IocHit {
    /// The event's observable that hit, as the event carries it: the IP, domain name (a
    /// subdomain of a listed domain) or hash; for a URL, the listed URL that the row holds.
    pub value: String,
    /// The kind of entry it hit.
    #[serde(rename = "type")]
    pub kind: IocType,
    /// The entry as listed, in canonical form (`evil.example`, `10.0.0.0/8`, the hash).
    pub indicator: String,
    /// The list: its file's stem.
    pub list: String,
    /// The entry's name: a STIX indicator's `name` (else its id), a CSV row's `name` or
    /// `description`, a plain-text line's trailing comment. Absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// How many entries the event hit in all (at least 1).
    pub hits: u32,
}

impl IocHit {
    /// The object as `derived.ioc` shows it in the eval view and in alert samples.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("value".into(), self.value.clone().into());
        m.insert("type".into(), self.kind.as_str().into());
        m.insert("indicator".into(), self.indicator.clone().into());
        m.insert("list".into(), self.list.clone().into());
        if let Some(name) = &self.name {
            m.insert("name".into(), name.clone().into());
        }
        m.insert("hits".into(), self.hits.into());
        serde_json::Value::Object(m)
    }
}

/// The format of a list, by its file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IocFormat {
    /// `.txt`, `.ioc`, `.list`.
    Text,
    /// `.csv`, `.tsv`.
    Csv,
    /// `.json`: a STIX 2.1 bundle.
    Stix,
}

impl IocFormat {
    /// The format of a file by its name, `None` for a name no list has.
    pub fn of(file: &str) -> Option<IocFormat> {
        let ext = Path::new(file).extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "txt" | "ioc" | "list" => IocFormat::Text,
            "csv" | "tsv" => IocFormat::Csv,
            "json" => IocFormat::Stix,
            _ => return None,
        })
    }
}

/// One problem in a list: where (file, line or STIX object) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IocProblem {
    /// The file, as it was named to the loader.
    pub file: String,
    /// The 1-based line, where the format has lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The STIX object's `id`, for STIX bundles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for IocProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(object) = &self.object {
            write!(f, ": {object}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IocError {
    /// A file or directory could not be read.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: String,
        /// What the system said.
        error: std::io::Error,
    },
    /// Lists with invalid entries: every problem found (the first [`MAX_PROBLEMS`]) and how
    /// many there were. Nothing is loaded, so a caller keeps the set it had.
    #[error("{}", invalid_message(problems, *count))]
    Invalid {
        /// The first problems, in file and line order.
        problems: Vec<IocProblem>,
        /// How many problems there were in all.
        count: usize,
    },
}

fn invalid_message(problems: &[IocProblem], count: usize) -> String {
    let mut s = format!("{count} invalid IOC list entr{}", plural_y(count));
    for p in problems {
        s.push_str("\n  ");
        s.push_str(&p.to_string());
    }
    if count > problems.len() {
        s.push_str(&format!("\n  ... and {} more", count - problems.len()));
    }
    s
}

fn plural_y(n: usize) -> &'static str {
    if n == 1 {
        "y"
    } else {
        "ies"
    }
}

/// Counts of one load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IocStats {
    /// Lists loaded.
    pub lists: usize,
    /// Distinct entries loaded, by type.
    pub by_type: BTreeMap<IocType, usize>,
    /// Entries that repeat one loaded before (the first listing is kept).
    pub duplicates: usize,
    /// STIX indicators skipped because their `valid_until` had passed.
    pub expired: usize,
    /// STIX indicators skipped because they are `revoked`.
    pub revoked: usize,
    /// Entries skipped because no event carries their kind (a SHA-512, an e-mail address, a
    /// STIX pattern on other objects or with `AND`, ...), and STIX indicators loaded only in
    /// part (the supported comparisons of an `OR`). Each has a warning.
    pub unsupported: usize,
    /// Files skipped because their extension names no list format.
    pub skipped_files: usize,
}

/// One list loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IocList {
    /// The list's name: its file's stem.
    pub name: String,
    /// The file, as it was named to the loader.
    pub file: String,
    /// Its format.
    pub format: IocFormat,
    /// Entries it added (not counting duplicates).
    pub entries: usize,
}

/// Where a listed entry came from: its list and its record (name and validity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    list: u32,
    /// Index into [`IocSet::records`], or [`NO_RECORD`].
    record: u32,
}

/// An entry without a name or validity, as most plain-text lines are.
const NO_RECORD: u32 = u32::MAX;

/// An entry's name and validity, shared by the entries of one STIX indicator or every row
/// with the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    name: Option<Box<str>>,
    valid_from: Option<i64>,
    valid_until: Option<i64>,
}

/// Networks by prefix length: a lookup probes one hash map per length present, longest
/// first, so it costs at most 32 (IPv4) or 128 (IPv6) probes whatever the number of
/// networks, and finds the most specific network.
#[derive(Debug, Clone)]
struct Prefixes<K> {
    /// Sorted by length, longest first; no empty map.
    by_len: Vec<(u8, FxHashMap<K, Meta>)>,
}

impl<K> Default for Prefixes<K> {
    fn default() -> Self {
        Prefixes { by_len: Vec::new() }
    }
}

impl<K: std::hash::Hash + Eq + Copy> Prefixes<K> {
    /// Adds a network (`key` already masked); `false` if it was there.
    fn insert(&mut self, len: u8, key: K, meta: Meta) -> bool {
        let at = match self.by_len.binary_search_by(|(l, _)| len.cmp(l)) {
            Ok(at) => at,
            Err(at) => {
                self.by_len.insert(at, (len, FxHashMap::default()));
                at
            }
        };
        match self.by_len[at].1.entry(key) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(meta);
                true
            }
        }
    }

    /// The networks holding `addr`, longest first, probed only at the lengths `L` whose bit
    /// `L - 1` is set in `lens` (lengths over 32, IPv6's, always).
    fn lookup(
        &self,
        addr: K,
        mask: fn(K, u8) -> K,
        lens: u32,
    ) -> impl Iterator<Item = (u8, K, Meta)> + '_ {
        self.by_len
            .iter()
            .filter(move |(len, _)| *len > 32 || lens & (1 << (len - 1)) != 0)
            .filter_map(move |(len, map)| {
                let key = mask(addr, *len);
                map.get(&key).map(|m| (*len, key, *m))
            })
    }

    fn keys(&self) -> impl Iterator<Item = (u8, K)> + '_ {
        self.by_len
            .iter()
            .flat_map(|(len, map)| map.keys().map(move |k| (*len, *k)))
    }

    fn heap_bytes(&self) -> usize {
        self.by_len.iter().map(|(_, m)| map_bytes(m)).sum::<usize>()
            + self.by_len.capacity() * std::mem::size_of::<(u8, FxHashMap<K, Meta>)>()
    }

    fn len(&self) -> usize {
        self.by_len.iter().map(|(_, m)| m.len()).sum()
    }

    fn shrink(&mut self) {
        for (_, m) in &mut self.by_len {
            m.shrink_to_fit();
        }
    }
}

/// A URL listed on a host.
#[derive(Debug, Clone)]
struct UrlEntry {
    /// The URL as listed (canonical).
    text: Box<str>,
    /// What the row's text must hold ([`value::UrlValue::needle`]); `None`: the host alone.
    needle: Option<Box<str>>,
    meta: Meta,
}

/// Indicator lists, compiled for constant-time lookups. Build one with
/// [`IocSet::from_sources`] or [`IocSet::load_dir`]; share it (`Arc`) between detectors.
#[derive(Clone, Default)]
pub struct IocSet {
    lists: Vec<IocList>,
    records: Vec<Record>,
    md5: FxHashMap<[u8; 16], Meta>,
    sha1: FxHashMap<[u8; 20], Meta>,
    sha256: FxHashMap<[u8; 32], Meta>,
    ipv4: FxHashMap<u32, Meta>,
    ipv6: FxHashMap<u128, Meta>,
    cidr4: Prefixes<u32>,
    cidr6: Prefixes<u128>,
    /// Listed names; a name's subdomains are found by probing each of its suffixes.
    domains: FxHashMap<Box<str>, Meta>,
    /// URLs by host (a domain name or an IP's canonical text).
    urls: FxHashMap<Box<str>, Vec<UrlEntry>>,
    /// Every exact key (hashes, addresses, domains), so that a lookup that misses, as
    /// nearly all do, reads one word of this instead of a bucket of a table too large for
    /// the cache. Built by [`Builder::finish`].
    bloom: Bloom,
    /// For each /16 block of the IPv4 space, bit `L - 1` for each prefix length `L` of a
    /// listed network that overlaps it: an address is probed only at those lengths (none,
    /// for most). Empty without IPv4 networks.
    summary4: Vec<u32>,
    stats: IocStats,
    warnings: Vec<IocProblem>,
}

impl fmt::Debug for IocSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IocSet")
            .field("lists", &self.lists.len())
            .field("entries", &self.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// What [`crate::indicators`] searches a row's text for to find URLs.
static SCHEME_SEPARATOR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("://"));

impl IocSet {
    /// Loads lists given as `(file name, contents)`: the name (a relative path such as
    /// `iocs/advisory-2026-11.txt`) gives the format by its extension and the list's name by
    /// its stem. Files with other extensions are skipped and counted
    /// ([`IocStats::skipped_files`]), with a warning. Expiry is judged against the current
    /// time.
    ///
    /// Every invalid entry of every file is reported at once ([`IocError::Invalid`]: the
    /// first [`MAX_PROBLEMS`], and how many); then nothing is loaded, and a caller keeps the
    /// set it had.
    pub fn from_sources<I, N, B>(sources: I) -> Result<IocSet, IocError>
    where
        I: IntoIterator<Item = (N, B)>,
        N: AsRef<str>,
        B: AsRef<[u8]>,
    {
        IocSet::from_sources_at(sources, now())
    }

    /// [`IocSet::from_sources`] with `now` (unix seconds) as the time STIX indicators'
    /// `valid_until` is judged against: for tests, and for callers with a clock of their own.
    pub fn from_sources_at<I, N, B>(sources: I, now: i64) -> Result<IocSet, IocError>
    where
        I: IntoIterator<Item = (N, B)>,
        N: AsRef<str>,
        B: AsRef<[u8]>,
    {
        let mut b = Builder::new(now);
        for (name, bytes) in sources {
            b.load(name.as_ref(), bytes.as_ref());
        }
        b.finish()
    }

    /// Loads every list under `dir`, its subdirectories included, in the order of their
    /// paths (so duplicates resolve the same way on every machine). Files are named by their
    /// path relative to `dir`; hidden files and directories (`.git`, `.DS_Store`) are left
    /// out, and other extensions are skipped with a warning.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<IocSet, IocError> {
        let dir = dir.as_ref();
        let mut files = Vec::new();
        walk(dir, &mut files)?;
        files.sort();
        let mut b = Builder::new(now());
        for path in files {
            let label = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let bytes = std::fs::read(&path).map_err(|error| IocError::Io {
                path: path.display().to_string(),
                error,
            })?;
            b.load(&label, &bytes);
        }
        b.finish()
    }

    /// Whether the set holds no entry: a detector with an empty set does no lookups.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Distinct entries.
    pub fn len(&self) -> usize {
        self.md5.len()
            + self.sha1.len()
            + self.sha256.len()
            + self.ipv4.len()
            + self.ipv6.len()
            + self.cidr4.len()
            + self.cidr6.len()
            + self.domains.len()
            + self.urls.values().map(Vec::len).sum::<usize>()
    }

    /// An estimate of the heap memory the set holds: its tables by their capacity, and the
    /// text of its domains, URLs and names.
    pub fn heap_bytes(&self) -> usize {
        let boxed = |s: &str| s.len().next_multiple_of(8);
        map_bytes(&self.md5)
            + map_bytes(&self.sha1)
            + map_bytes(&self.sha256)
            + map_bytes(&self.ipv4)
            + map_bytes(&self.ipv6)
            + self.cidr4.heap_bytes()
            + self.cidr6.heap_bytes()
            + map_bytes(&self.domains)
            + self.domains.keys().map(|k| boxed(k)).sum::<usize>()
            + map_bytes(&self.urls)
            + self
                .urls
                .values()
                .flatten()
                .map(|u| {
                    std::mem::size_of::<UrlEntry>()
                        + boxed(&u.text)
                        + u.needle.as_deref().map_or(0, boxed)
                })
                .sum::<usize>()
            + self.records.capacity() * std::mem::size_of::<Record>()
            + self
                .records
                .iter()
                .map(|r| r.name.as_deref().map_or(0, boxed))
                .sum::<usize>()
            + self.bloom.words.capacity() * 8
            + self.summary4.capacity() * 4
    }

    /// The lists, in load order.
    pub fn lists(&self) -> &[IocList] {
        &self.lists
    }

    /// The load's counts.
    pub fn stats(&self) -> &IocStats {
        &self.stats
    }

    /// What was skipped, and why (the first [`MAX_PROBLEMS`]; [`IocSet::stats`] counts
    /// them all).
    pub fn warnings(&self) -> &[IocProblem] {
        &self.warnings
    }

    /// The entry an event's indicators hit, if any ([`IocHit`]; see the module
    /// documentation for the order). `columns` are the event's columns, where a URL entry is
    /// confirmed; `at` is the event's time in unix seconds, against which STIX validity is
    /// judged.
    pub fn lookup(&self, indicators: &Indicators, columns: &Fields, at: i64) -> Option<IocHit> {
        let mut found = Found::default();
        if !self.sha256.is_empty() {
            self.hashes(
                &indicators.sha256,
                &self.sha256,
                IocType::Sha256,
                at,
                &mut found,
            );
        }
        if !self.sha1.is_empty() {
            self.hashes(&indicators.sha1, &self.sha1, IocType::Sha1, at, &mut found);
        }
        if !self.md5.is_empty() {
            self.hashes(&indicators.md5, &self.md5, IocType::Md5, at, &mut found);
        }
        // The row's text that may hold URLs, lower-cased once, when a URL entry needs it.
        let mut texts: Option<Vec<String>> = None;
        for name in &indicators.domain {
            self.urls_on(name, columns, &mut texts, at, &mut found);
            if self.domains.is_empty() {
                continue;
            }
            // The name, then each suffix after a dot: the longest listed suffix is the most
            // specific entry. One-label suffixes are never listed (`parse_domain`).
            let mut suffix = name.as_str();
            loop {
                let listed = match self.bloom.may_contain(text_hash(suffix)) {
                    true => self.domains.get(suffix),
                    false => None,
                };
                if let Some(meta) = listed {
                    if self.valid(*meta, at) {
                        found.note(name, IocType::Domain, Listed::Domain(suffix), *meta);
                        break;
                    }
                }
                match suffix.split_once('.') {
                    Some((_, rest)) if rest.contains('.') => suffix = rest,
                    _ => break,
                }
            }
        }
        for text in &indicators.ip {
            self.urls_on(text, columns, &mut texts, at, &mut found);
            let Ok(ip) = text.parse::<IpAddr>() else {
                continue;
            };
            match ip {
                IpAddr::V4(v4) => {
                    let a = u32::from(v4);
                    let exact = match self.bloom.may_contain(ip4_hash(a)) {
                        true => self.ipv4.get(&a).filter(|m| self.valid(**m, at)),
                        false => None,
                    };
                    let lens = self.summary4.get((a >> 16) as usize).copied().unwrap_or(0);
                    if let Some(meta) = exact {
                        found.note(text, IocType::Ip, Listed::Same, *meta);
                    } else if let Some((len, _, meta)) = self
                        .cidr4
                        .lookup(a, mask4, lens)
                        .find(|(_, _, m)| self.valid(*m, at))
                    {
                        found.note(
                            text,
                            IocType::Cidr,
                            Listed::Net(value::mask(ip, len), len),
                            meta,
                        );
                    }
                }
                IpAddr::V6(v6) => {
                    let a = u128::from(v6);
                    let exact = match self.bloom.may_contain(ip6_hash(a)) {
                        true => self.ipv6.get(&a).filter(|m| self.valid(**m, at)),
                        false => None,
                    };
                    if let Some(meta) = exact {
                        found.note(text, IocType::Ip, Listed::Same, *meta);
                    } else if let Some((len, _, meta)) = self
                        .cidr6
                        .lookup(a, mask6, u32::MAX)
                        .find(|(_, _, m)| self.valid(*m, at))
                    {
                        found.note(
                            text,
                            IocType::Cidr,
                            Listed::Net(value::mask(ip, len), len),
                            meta,
                        );
                    }
                }
            }
        }
        let first = found.first?;
        let record = self.records.get(first.meta.record as usize);
        Some(IocHit {
            value: first.value.to_string(),
            kind: first.kind,
            indicator: match first.listed {
                Listed::Same => first.value.to_string(),
                Listed::Domain(d) => d.to_string(),
                Listed::Net(net, len) => format!("{net}/{len}"),
                Listed::Url(u) => u.to_string(),
            },
            list: self.lists[first.meta.list as usize].name.clone(),
            name: record.and_then(|r| r.name.as_deref()).map(str::to_string),
            hits: found.hits,
        })
    }

    fn hashes<'a, const N: usize>(
        &self,
        values: &'a [String],
        map: &FxHashMap<[u8; N], Meta>,
        kind: IocType,
        at: i64,
        found: &mut Found<'a>,
    ) {
        for h in values {
            let Some(key) = decode_hex::<N>(h.as_bytes()) else {
                continue;
            };
            if !self.bloom.may_contain(digest_hash(&key)) {
                continue;
            }
            if let Some(meta) = map.get(&key).filter(|m| self.valid(**m, at)) {
                found.note(h, kind, Listed::Same, *meta);
            }
        }
    }

    /// URL entries on `host` whose URL the row's text holds.
    fn urls_on<'a>(
        &'a self,
        host: &'a str,
        columns: &Fields,
        texts: &mut Option<Vec<String>>,
        at: i64,
        found: &mut Found<'a>,
    ) {
        if self.urls.is_empty() {
            return;
        }
        let Some(entries) = self.urls.get(host) else {
            return;
        };
        for e in entries {
            if !self.valid(e.meta, at) {
                continue;
            }
            let holds = match &e.needle {
                None => true,
                Some(needle) => texts
                    .get_or_insert_with(|| {
                        columns
                            .values_containing(&SCHEME_SEPARATOR)
                            .map(str::to_ascii_lowercase)
                            .collect()
                    })
                    .iter()
                    .any(|t| url_in_text(needle, t)),
            };
            if holds {
                found.note(&e.text, IocType::Url, Listed::Url(&e.text), e.meta);
            }
        }
    }

    fn valid(&self, meta: Meta, at: i64) -> bool {
        match self.records.get(meta.record as usize) {
            None => true,
            Some(r) => {
                r.valid_from.is_none_or(|from| at >= from)
                    && r.valid_until.is_none_or(|until| at < until)
            }
        }
    }
}

/// How a hit's entry is written, from what the lookup has at hand.
#[derive(Debug, Clone, Copy)]
enum Listed<'a> {
    /// As the event's value (an exact match).
    Same,
    Domain(&'a str),
    Net(IpAddr, u8),
    Url(&'a str),
}

#[derive(Debug, Clone, Copy)]
struct FoundHit<'a> {
    value: &'a str,
    kind: IocType,
    listed: Listed<'a>,
    meta: Meta,
}

/// The hits of one lookup: the first, and how many.
#[derive(Debug, Default)]
struct Found<'a> {
    first: Option<FoundHit<'a>>,
    hits: u32,
}

impl<'a> Found<'a> {
    fn note(&mut self, value: &'a str, kind: IocType, listed: Listed<'a>, meta: Meta) {
        self.hits = self.hits.saturating_add(1);
        if self.first.is_none() {
            self.first = Some(FoundHit {
                value,
                kind,
                listed,
                meta,
            });
        }
    }
}

/// Collects the files under `dir` (not hidden ones), following symbolic links to files but
/// not to directories (which could loop).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), IocError> {
    let io = |path: &Path, error| IocError::Io {
        path: path.display().to_string(),
        error,
    };
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| io(&path, e))?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

/// Now, in unix seconds.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// An entry's name and validity, as a format reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EntryInfo<'a> {
    pub name: Option<&'a str>,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
}

/// Longest entry name kept: names come from free text (comments, descriptions).
const MAX_NAME_BYTES: usize = 256;

/// Builds an [`IocSet`] file by file; the formats add entries and report problems to it.
pub(crate) struct Builder {
    now: i64,
    set: IocSet,
    /// Records of entries with a name and no validity, by name: rows that share a name
    /// (a CSV's `description`) share one.
    named: FxHashMap<Box<str>, u32>,
    problems: Vec<IocProblem>,
    problem_count: usize,
    warning_count: usize,
    /// The list being loaded.
    list: u32,
    /// The file being loaded, as named to the loader.
    file: String,
}

impl Builder {
    fn new(now: i64) -> Builder {
        Builder {
            now,
            set: IocSet::default(),
            named: FxHashMap::with_hasher(FxBuildHasher),
            problems: Vec::new(),
            problem_count: 0,
            warning_count: 0,
            list: 0,
            file: String::new(),
        }
    }

    /// The time expiry is judged against.
    pub(crate) fn now(&self) -> i64 {
        self.now
    }

    fn load(&mut self, file: &str, bytes: &[u8]) {
        let Some(format) = IocFormat::of(file) else {
            self.set.stats.skipped_files += 1;
            self.file = file.to_string();
            self.warn(
                None,
                None,
                "not an IOC list: lists end in .txt, .ioc, .list, .csv, .tsv or .json".into(),
            );
            return;
        };
        let name = Path::new(file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.list = self.set.lists.len() as u32;
        self.file = file.to_string();
        self.set.lists.push(IocList {
            name,
            file: file.to_string(),
            format,
            entries: 0,
        });
        self.set.stats.lists += 1;
        match format {
            IocFormat::Text => plain::load(bytes, self),
            IocFormat::Csv => {
                delimited::load(bytes, file.to_ascii_lowercase().ends_with(".tsv"), self)
            }
            IocFormat::Stix => stix::load(bytes, self),
        }
    }

    /// Reports an invalid entry of the current file.
    pub(crate) fn error(&mut self, line: Option<u64>, object: Option<&str>, message: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(IocProblem {
                file: self.file.clone(),
                line,
                object: object.map(str::to_string),
                message,
            });
        }
    }

    /// Reports something skipped in the current file.
    pub(crate) fn warn(&mut self, line: Option<u64>, object: Option<&str>, message: String) {
        self.warning_count += 1;
        if self.set.warnings.len() < MAX_PROBLEMS {
            self.set.warnings.push(IocProblem {
                file: self.file.clone(),
                line,
                object: object.map(str::to_string),
                message,
            });
        }
    }

    /// Counts an entry skipped as unsupported, with its warning.
    pub(crate) fn unsupported(&mut self, line: Option<u64>, object: Option<&str>, message: String) {
        self.set.stats.unsupported += 1;
        self.warn(line, object, message);
    }

    pub(crate) fn expired(&mut self, line: Option<u64>, object: Option<&str>, message: String) {
        self.set.stats.expired += 1;
        self.warn(line, object, message);
    }

    pub(crate) fn revoked(&mut self) {
        self.set.stats.revoked += 1;
    }

    /// The record for an entry's name and validity ([`NO_RECORD`] for none of them).
    pub(crate) fn record(&mut self, info: &EntryInfo<'_>) -> u32 {
        let name = info.name.map(str::trim).filter(|n| !n.is_empty()).map(|n| {
            match n.char_indices().nth(MAX_NAME_BYTES) {
                Some((at, _)) if at < n.len() => &n[..at],
                _ => n,
            }
        });
        if name.is_none() && info.valid_from.is_none() && info.valid_until.is_none() {
            return NO_RECORD;
        }
        let timeless = info.valid_from.is_none() && info.valid_until.is_none();
        if timeless {
            if let Some(&id) = name.and_then(|n| self.named.get(n)) {
                return id;
            }
        }
        let id = self.set.records.len() as u32;
        self.set.records.push(Record {
            name: name.map(Box::from),
            valid_from: info.valid_from,
            valid_until: info.valid_until,
        });
        if let (true, Some(n)) = (timeless, name) {
            self.named.insert(n.into(), id);
        }
        id
    }

    /// Adds one entry of the current list with `record`'s name and validity.
    pub(crate) fn add(&mut self, value: Value, record: u32) {
        let meta = Meta {
            list: self.list,
            record,
        };
        let s = &mut self.set;
        let (kind, new) = match value {
            Value::Md5(k) => (IocType::Md5, insert(&mut s.md5, k, meta)),
            Value::Sha1(k) => (IocType::Sha1, insert(&mut s.sha1, k, meta)),
            Value::Sha256(k) => (IocType::Sha256, insert(&mut s.sha256, k, meta)),
            Value::Ip(IpAddr::V4(a)) => (IocType::Ip, insert(&mut s.ipv4, u32::from(a), meta)),
            Value::Ip(IpAddr::V6(a)) => (IocType::Ip, insert(&mut s.ipv6, u128::from(a), meta)),
            Value::Cidr(IpAddr::V4(a), len) => {
                (IocType::Cidr, s.cidr4.insert(len, u32::from(a), meta))
            }
            Value::Cidr(IpAddr::V6(a), len) => {
                (IocType::Cidr, s.cidr6.insert(len, u128::from(a), meta))
            }
            Value::Domain(d) => (
                IocType::Domain,
                insert(&mut s.domains, d.into_boxed_str(), meta),
            ),
            Value::Url(u) => {
                let on_host = s.urls.entry(u.host.into_boxed_str()).or_default();
                let dup = on_host
                    .iter()
                    .any(|e| e.needle.as_deref() == u.needle.as_deref());
                if !dup {
                    on_host.push(UrlEntry {
                        text: u.text.into_boxed_str(),
                        needle: u.needle.map(String::into_boxed_str),
                        meta,
                    });
                }
                (IocType::Url, !dup)
            }
        };
        if new {
            *s.stats.by_type.entry(kind).or_default() += 1;
            s.lists[self.list as usize].entries += 1;
        } else {
            s.stats.duplicates += 1;
        }
    }

    fn finish(mut self) -> Result<IocSet, IocError> {
        if self.problem_count > 0 {
            return Err(IocError::Invalid {
                problems: self.problems,
                count: self.problem_count,
            });
        }
        let s = &mut self.set;
        s.md5.shrink_to_fit();
        s.sha1.shrink_to_fit();
        s.sha256.shrink_to_fit();
        s.ipv4.shrink_to_fit();
        s.ipv6.shrink_to_fit();
        s.cidr4.shrink();
        s.cidr6.shrink();
        s.domains.shrink_to_fit();
        s.urls.shrink_to_fit();
        s.records.shrink_to_fit();
        let exact = s.md5.len()
            + s.sha1.len()
            + s.sha256.len()
            + s.ipv4.len()
            + s.ipv6.len()
            + s.domains.len();
        if exact > 0 {
            let mut bloom = Bloom::with_keys(exact);
            s.md5.keys().for_each(|k| bloom.insert(digest_hash(k)));
            s.sha1.keys().for_each(|k| bloom.insert(digest_hash(k)));
            s.sha256.keys().for_each(|k| bloom.insert(digest_hash(k)));
            s.ipv4.keys().for_each(|&a| bloom.insert(ip4_hash(a)));
            s.ipv6.keys().for_each(|&a| bloom.insert(ip6_hash(a)));
            s.domains.keys().for_each(|d| bloom.insert(text_hash(d)));
            s.bloom = bloom;
        }
        if s.cidr4.len() > 0 {
            // A network of length >= 16 lies in one block; a shorter one spans
            // 2^(16 - len) blocks. At most 2^len distinct networks have a given length, so
            // marking them all takes at most 16 * 65,536 steps whatever the list holds.
            let mut summary = vec![0u32; 1 << 16];
            for (len, net) in s.cidr4.keys() {
                let bit = 1u32 << (len - 1);
                let first = (net >> 16) as usize;
                let blocks = if len >= 16 { 1 } else { 1usize << (16 - len) };
                for block in &mut summary[first..first + blocks] {
                    *block |= bit;
                }
            }
            s.summary4 = summary;
        }
        if self.warning_count > s.warnings.len() {
            let more = self.warning_count - s.warnings.len();
            s.warnings.push(IocProblem {
                file: String::new(),
                line: None,
                object: None,
                message: format!("... and {more} more warnings"),
            });
        }
        Ok(self.set)
    }
}

/// Heap bytes of a hash map's table: hashbrown keeps a power of two of buckets, at most
/// 7/8 full, each an entry and a control byte.
fn map_bytes<K, V>(map: &FxHashMap<K, V>) -> usize {
    match map.capacity() {
        0 => 0,
        cap => {
            let buckets = (cap * 8 / 7).next_power_of_two();
            buckets * (std::mem::size_of::<(K, V)>() + 1) + 16
        }
    }
}

/// A blocked Bloom filter: each key sets three bits of one 64-bit word, about 16 bits a
/// key, so a lookup reads one word (false positives: about 0.5%) and only a key that may
/// be there costs a probe of its table.
#[derive(Debug, Clone, Default)]
struct Bloom {
    /// A power of two of words; empty: everything may be there.
    words: Vec<u64>,
}

impl Bloom {
    fn with_keys(keys: usize) -> Bloom {
        Bloom {
            words: vec![0; keys.div_ceil(4).max(1).next_power_of_two()],
        }
    }

    fn slot(&self, h: u64) -> usize {
        (h >> 32) as usize & (self.words.len() - 1)
    }

    fn bits(h: u64) -> u64 {
        (1 << (h & 63)) | (1 << ((h >> 6) & 63)) | (1 << ((h >> 12) & 63))
    }

    fn insert(&mut self, h: u64) {
        let i = self.slot(h);
        self.words[i] |= Bloom::bits(h);
    }

    fn may_contain(&self, h: u64) -> bool {
        if self.words.is_empty() {
            return true;
        }
        let bits = Bloom::bits(h);
        self.words[self.slot(h)] & bits == bits
    }
}

/// The Bloom hashes of the kinds of keys. A digest is already uniform: its first bytes are
/// its hash. Addresses are mixed (splitmix64's finalizer), names hashed with xxh3. Kinds
/// share the filter; a collision between them costs one probe, never a wrong hit.
fn digest_hash(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[..8]);
    u64::from_le_bytes(b)
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn ip4_hash(a: u32) -> u64 {
    mix(u64::from(a) ^ 0x4000_0000_0000_0000)
}

fn ip6_hash(a: u128) -> u64 {
    mix((a as u64) ^ mix((a >> 64) as u64) ^ 0x6000_0000_0000_0000)
}

fn text_hash(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

/// Inserts unless present (the first listing wins); `true` if it was new.
fn insert<K: std::hash::Hash + Eq>(map: &mut FxHashMap<K, Meta>, key: K, meta: Meta) -> bool {
    match map.entry(key) {
        std::collections::hash_map::Entry::Occupied(_) => false,
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(meta);
            true
        }
    }
}
