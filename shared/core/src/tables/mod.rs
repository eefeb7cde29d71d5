//! Which osquery tables a row came from, whatever its query was called.
//!
//! Fleets name their scheduled queries freely (`pack/Global/ATT&CK® - Process_Network_Conn`,
//! `pack_it-ops_procs`, a bare schedule key), so rules and ATT&CK mappings that key on query
//! names miss most of a real fleet. Every event therefore carries `tables`: the osquery tables
//! its row came from, the one that explains the row first. They are known, in this order:
//!
//! 1. from **the user's own query definitions** ([`QueryDefs`]: osquery config and pack files,
//!    Fleet YAML), whose SQL is read with a real SQL parser ([`sql`]);
//! 2. from **the built-in registry** of public packs (osquery's own packs, osquery-attck,
//!    Fleet's standard query library and tripline's `packs/`), read from their SQL into
//!    `data/osquery/registry.tsv` and embedded at build time; a name
//!    logged with its pack resolves by pack and query first;
//! 3. from **the row's column names** and osquery's schema ([`schema`]): a query named after
//!    a table whose columns explain the row is that table's; otherwise the smallest set of
//!    tables that has every column, preferring the event's platform.
//!
//! The first two are `tables_from: sql`, the third `tables_from: columns` (with
//! `tables_ambiguous` when several sets fit equally); `tables` is empty and `tables_from`
//! null when nothing is known. A [`Resolver`] holds the sources; a [`TableCache`] in front of
//! it works each distinct (name, platform, column names) out once, not per row.

pub mod defs;
pub mod schema;
pub mod sql;

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::fields::Fields;
use crate::platform::Platform;
pub use defs::{DefsError, QueryDef, QueryDefs};
pub use schema::{schema, Inference, Schema};

/// How an event's `tables` were known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TablesFrom {
    /// From the SQL of the query that produced the row (the user's or a public pack's).
    Sql,
    /// Inferred from the row's column names and osquery's schema.
    Columns,
}

impl TablesFrom {
    /// `sql` or `columns`, as in the event JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TablesFrom::Sql => "sql",
            TablesFrom::Columns => "columns",
        }
    }
}

/// An event's tables: a shared list, so that the rows of one shape hold one copy, with its
/// JSON written once (events are written by the million; their tables by the shape).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tables(Option<Arc<Shared>>);

#[derive(PartialEq, Eq)]
struct Shared {
    list: Vec<String>,
    /// `["a","b"]`, as `serde_json` writes the list.
    json: String,
}

impl Tables {
    /// No tables.
    pub const fn new() -> Tables {
        Tables(None)
    }

    /// Empties the list (dropping this reference).
    pub fn clear(&mut self) {
        self.0 = None;
    }

    /// The list as JSON (`[]` when empty).
    pub fn json(&self) -> &str {
        self.0.as_deref().map_or("[]", |s| &s.json)
    }
}

impl Deref for Tables {
    type Target = [String];
    fn deref(&self) -> &[String] {
        self.0.as_deref().map_or(&[], |s| &s.list)
    }
}

impl From<Vec<String>> for Tables {
    fn from(list: Vec<String>) -> Tables {
        if list.is_empty() {
            return Tables(None);
        }
        let json = serde_json::to_string(&list).expect("a list of strings serializes");
        Tables(Some(Arc::new(Shared { list, json })))
    }
}

impl fmt::Debug for Tables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Tables {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

/// Reading events back (the detect stage) meets the same few lists over and over: each
/// thread keeps the last one read, and a list equal to it is shared, not built again, so a
/// row's tables cost no allocation.
impl<'de> Deserialize<'de> for Tables {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tables, D::Error> {
        thread_local! {
            static LAST: std::cell::RefCell<Tables> = const { std::cell::RefCell::new(Tables::new()) };
        }
        struct Seq;
        impl<'de> serde::de::Visitor<'de> for Seq {
            type Value = Tables;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of osquery table names")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Tables, A::Error> {
                let last = LAST.with(|l| l.borrow().clone());
                let mut same = 0;
                let mut owned: Option<Vec<String>> = None;
                while let Some(name) = seq.next_element::<std::borrow::Cow<'de, str>>()? {
                    match &mut owned {
                        Some(list) => list.push(name.into_owned()),
                        None if last.get(same).map(String::as_str) == Some(&*name) => same += 1,
                        None => {
                            let mut list: Vec<String> = last[..same].to_vec();
                            list.push(name.into_owned());
                            owned = Some(list);
                        }
                    }
                }
                Ok(match owned {
                    None if same == last.len() => last,
                    None => last[..same].to_vec().into(),
                    Some(list) => {
                        let tables = Tables::from(list);
                        LAST.with(|l| *l.borrow_mut() = tables.clone());
                        tables
                    }
                })
            }
        }
        d.deserialize_seq(Seq)
    }
}

/// The tables of one distinct row shape, and how they were known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// The tables, the one that explains the row first; empty when unknown.
    pub tables: Tables,
    /// How they were known; `None` when unknown.
    pub from: Option<TablesFrom>,
    /// Several table sets explained the row's columns equally; `tables` is their union (or,
    /// when too many fit to list, the tables all of them share).
    pub ambiguous: bool,
}

/// What a row's tables are worked out from.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// The query name as logged.
    pub name: Option<&'a str>,
    /// The pack split from it, when known.
    pub pack: Option<&'a str>,
    /// The query name without its pack.
    pub query: Option<&'a str>,
    /// The host's platform, when the record says.
    pub platform: Option<Platform>,
}

/// Works out rows' tables from query definitions, the public packs and osquery's schema.
/// Immutable and shared (one per process or Lambda container); put a [`TableCache`] in
/// front of it per stream of events.
#[derive(Debug, Default)]
pub struct Resolver {
    user: QueryDefs,
}

impl Resolver {
    /// The built-in registry and column inference only.
    pub fn builtin() -> Resolver {
        Resolver::default()
    }

    /// The user's definitions first, then the built-in registry and column inference.
    pub fn with_queries(user: QueryDefs) -> Resolver {
        Resolver { user }
    }

    /// The user's definitions.
    pub fn queries(&self) -> &QueryDefs {
        &self.user
    }

    /// Works out one row's tables (uncached; see [`TableCache`]).
    pub fn resolve(&self, row: Row<'_>, columns: &[&str]) -> Resolution {
        let name = row.name.unwrap_or("");
        let query = row.query.unwrap_or(name);
        let named = |defs: &QueryDefs, check: bool| {
            from_defs(defs, row.pack, query, name, columns, check).or_else(|| {
                // `pack_<pack>_<query>` of a pack nobody named: try the name's tails.
                unsplit_tails(name, row.pack)
                    .find_map(|tail| from_defs(defs, None, tail, tail, columns, check))
            })
        };
        // The user's definitions are theirs to trust; a public pack's query name might be
        // reused for other SQL, so its tables must share a column with the row.
        if let Some(tables) = named(&self.user, false).or_else(|| named(registry(), true)) {
            return Resolution {
                tables: tables.into(),
                from: Some(TablesFrom::Sql),
                ambiguous: false,
            };
        }
        let named = std::iter::once(query)
            .chain(unsplit_tails(name, row.pack))
            .find_map(|q| named_table(q, columns));
        if let Some(table) = named {
            return Resolution {
                tables: vec![table].into(),
                from: Some(TablesFrom::Columns),
                ambiguous: false,
            };
        }
        match schema().infer(columns, row.platform) {
            Some(inference) => Resolution {
                ambiguous: inference.alternatives > 1,
                tables: inference.tables.into(),
                from: Some(TablesFrom::Columns),
            },
            None => Resolution::default(),
        }
    }
}

/// The tables the definitions of a name read, ordered by what explains the row. A name
/// logged with its pack (`pack_incident-response_listening_ports`) is that pack's query
/// whatever its row holds. Otherwise a name defined several times (the same query name in several packs) takes the definitions
/// whose tables explain the row best, with the fewest tables (the tightest account of
/// the row), and the union of their tables when they tie. `None`
/// when no definition of it has readable SQL, or (with `check`) the best explains less
/// than half of the row.
fn from_defs(
    defs: &QueryDefs,
    pack: Option<&str>,
    query: &str,
    name: &str,
    columns: &[&str],
    check: bool,
) -> Option<Vec<String>> {
    if query.is_empty() {
        return None;
    }
    let schema = schema();
    // A name logged with its pack names one query exactly: its SQL is the row's.
    if let Some(Ok(tables)) = pack.and_then(|p| defs.in_pack(p, query)).map(|d| &d.tables) {
        let mut tables = tables.clone();
        schema.order_by_explanation(&mut tables, columns);
        return Some(tables);
    }
    let mut best = (0.0, usize::MAX);
    let mut tables: Vec<String> = Vec::new();
    for def in defs.lookup(pack, query, name) {
        let Ok(def_tables) = &def.tables else {
            continue;
        };
        let explained = schema.explained(def_tables, columns);
        let better = explained > best.0 || (explained == best.0 && def_tables.len() < best.1);
        if better {
            (best, tables) = ((explained, def_tables.len()), Vec::new());
        }
        if (explained, def_tables.len()) == best {
            for t in def_tables {
                if !tables.contains(t) {
                    tables.push(t.clone());
                }
            }
        }
    }
    if tables.is_empty() || (check && best.0 < 0.5) {
        return None;
    }
    schema.order_by_explanation(&mut tables, columns);
    Some(tables)
}

/// A query named after an osquery table (`processes`, `pack/Global/socket_events`) whose
/// table has every column of the row the schema knows: the name decides between the
/// tables such a row could come from.
fn named_table(query: &str, columns: &[&str]) -> Option<String> {
    let schema = schema();
    let table = [schema.table(&query.to_ascii_lowercase())?.name.clone()];
    (schema.explained(&table, columns) == 1.0).then(|| table.concat())
}

/// For a name like `pack_it_ops_crontab` whose pack was not recognized (`pack` is `None`),
/// the candidate query names after each delimiter, longest first.
fn unsplit_tails<'a>(name: &'a str, pack: Option<&str>) -> impl Iterator<Item = &'a str> {
    let delimiter = match (pack, name.strip_prefix("pack")) {
        (None, Some(rest)) => rest.chars().next().filter(|c| "_-:./".contains(*c)),
        _ => None,
    };
    let body = delimiter.map_or("", |d| &name[4 + d.len_utf8()..]);
    body.match_indices(delimiter.unwrap_or('\0'))
        .map(move |(i, d)| &body[i + d.len()..])
        .filter(|tail| !tail.is_empty())
}

/// The built-in registry as `packs/` defines it: one line per query, `pack<TAB>query<TAB>
/// tables<TAB>file`, generated from every pack file under `packs/` (ours and, verbatim,
/// `packs/public/`) by reading each query's SQL. Kept generated in the repository rather than
/// parsed at start-up, which cost a cold start ~600 SQL parses; the test
/// `registry_file_is_current` regenerates it and fails when it differs
/// (`UPDATE_REGISTRY=1 cargo test -p tripline-core registry` rewrites it).
const REGISTRY_TSV: &str = include_str!("../../data/osquery/registry.tsv");

/// The built-in registry of public queries, read once on first use.
pub fn registry() -> &'static QueryDefs {
    static REGISTRY: OnceLock<QueryDefs> = OnceLock::new();
    REGISTRY.get_or_init(|| QueryDefs::from_registry_tsv(REGISTRY_TSV))
}

/// Bound on cached row shapes: a fleet has a few hundred; the bound only matters for
/// unbounded names or columns (hostile or broken input), where it keeps memory flat.
const MAX_CACHED: usize = 4096;

/// A [`Resolver`] with a cache in front: each distinct (name, platform, column names) is
/// worked out once. One per stream of events (not shared between threads).
#[derive(Debug)]
pub struct TableCache {
    resolver: Arc<Resolver>,
    /// The last row's key, so rows of one record (which share their shape) skip hashing.
    last_key: Vec<u8>,
    last: Resolution,
    seen: FxHashMap<u128, Resolution>,
}

impl TableCache {
    /// A cache in front of `resolver`.
    pub fn new(resolver: Arc<Resolver>) -> TableCache {
        TableCache {
            resolver,
            last_key: Vec::new(),
            last: Resolution::default(),
            seen: FxHashMap::default(),
        }
    }

    /// The resolver behind the cache.
    pub fn resolver(&self) -> &Arc<Resolver> {
        &self.resolver
    }

    /// The tables of a row with these names and `columns`.
    pub fn resolve(&mut self, row: Row<'_>, columns: &Fields) -> &Resolution {
        if !self.same_key(row, columns) {
            self.last_key.clear();
            write_key(&mut self.last_key, row, columns);
            let hash = xxhash_rust::xxh3::xxh3_128(&self.last_key);
            self.last = match self.seen.get(&hash) {
                Some(known) => known.clone(),
                None => {
                    let names: Vec<&str> = columns.keys().collect();
                    let resolved = self.resolver.resolve(row, &names);
                    if self.seen.len() >= MAX_CACHED {
                        self.seen.clear();
                    }
                    self.seen.insert(hash, resolved.clone());
                    resolved
                }
            };
        }
        &self.last
    }

    /// Whether `row` and `columns` spell the key of the previous call, compared in place.
    fn same_key(&self, row: Row<'_>, columns: &Fields) -> bool {
        let mut rest = self.last_key.as_slice();
        let mut take = |part: &str| {
            let (len, after) = rest.split_at_checked(4).unwrap_or((&[], &[]));
            let matches = len == (part.len() as u32).to_le_bytes()
                && after.get(..part.len()) == Some(part.as_bytes());
            if matches {
                rest = &after[part.len()..];
            }
            matches
        };
        !self.last_key.is_empty()
            && key_parts(row).all(&mut take)
            && columns.keys().all(&mut take)
            && rest.is_empty()
    }
}

fn key_parts(row: Row<'_>) -> impl Iterator<Item = &str> {
    [
        row.name.unwrap_or(""),
        row.pack.unwrap_or(""),
        row.query.unwrap_or(""),
        row.platform.map_or("", Platform::as_str),
    ]
    .into_iter()
}

/// The cache key: every part with its length before it, so no two different rows spell
/// the same key.
fn write_key(key: &mut Vec<u8>, row: Row<'_>, columns: &Fields) {
    for part in key_parts(row).chain(columns.keys()) {
        key.extend_from_slice(&(part.len() as u32).to_le_bytes());
        key.extend_from_slice(part.as_bytes());
    }
}

#[cfg(test)]
mod tests;
