//! Query name and osquery table -> ATT&CK technique mapping.
//!
//! osquery results say *which query* produced a row, not what adversary behaviour the row is
//! evidence of. Mapping files bridge the two: every event is annotated with the techniques its
//! query was written to observe, so that analysts (and Sigma rules) see `T1548.003` next to a
//! `linux_sudoers` diff, and so that coverage reports can count queries as well as rules.
//! Real fleets name their queries freely, so where no entry knows the query, the event is
//! annotated from the osquery tables its row came from instead ("ATT&CK by table", below).
//!
//! # File format (`rules/mappings/*.yml`)
//!
//! ```yaml
//! # where the mapping comes from, and its license
//! mappings:
//!   - query: linux_sudoers            # exact query name (or full logged name)
//!     techniques: [T1548.003]
//!   - query: Snapshot_services
//!     pack: windows_service-persistence   # optional: only for events of this pack
//!     techniques: [T1543.003]
//!   - glob: "*_process_events"        # globset syntax, case-sensitive, `*` crosses `/`
//!     techniques: [T1059]
//!   - regex: "^win_.*_persistence$"   # regex crate syntax, unanchored unless you anchor it
//!     techniques: [T1547.001, t1060]  # any case; revoked IDs resolve to the current one
//!   - table: crontab                  # an osquery table name, lower-case
//!     techniques: [T1053.003]
//!     note: cron entries of users and /etc/cron*   # optional on any entry: why
//!   - table: cpuid
//!     techniques: []                  # only table entries may list none
//!     note: "inventory: CPU features"
//! ```
//!
//! Each entry has exactly one of `query`, `glob`, `regex` or `table`, an optional `pack` (not
//! on `table` entries: a table's rows mean the same in every pack), an optional `note`, and a
//! `techniques` list that must be present and, except on `table` entries, non-empty; unknown
//! keys are rejected so that a typo (`technique:`) cannot silently disable an entry. A table
//! entry may list no techniques so that a mapping file can say, visibly, that a table was
//! looked at and its rows are no evidence of anything (`rules/mappings/tables.yml` notes
//! those `inventory:`, or `generic:` when the evidence depends on what the query asks for).
//! Patterns are tried against the event's parsed query name *and* its full logged name
//! (`pack_<pack>_<query>`), so a mapping can be written either way. Every entry that matches
//! contributes; the result is the union in file order, deduplicated. Several entries for the
//! same table are likewise one union.
//!
//! Every technique ID is checked against the ATT&CK catalog at load time: an unknown or
//! deprecated ID is an error naming the file and entry, because a mapping that silently drops
//! a technique is worse than one that refuses to load.
//!
//! # ATT&CK by table
//!
//! [`Mapper::event_techniques_for`] takes the tables an event's row came from as well, the one
//! that explains the row first, and whether they were read from the query's SQL (certain) or
//! guessed from the row's column names:
//!
//! * a query that any `query`/`glob`/`regex` entry matches is mapped by those entries alone,
//!   tables or not: an entry written for a query knows what the query looks for (a `file`
//!   query over `/etc/ld.so.preload` is T1574.006, which the `file` table cannot know);
//! * otherwise, with tables from SQL, the union over all of them, since the row is made of
//!   all of them; with tables guessed from columns, only the first, so that a guess claims
//!   no more than the one table that best explains the row;
//! * a table no entry names contributes nothing.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use regex::{Regex, RegexSet};
use rustc_hash::FxHashMap;
use serde::Deserialize;

use crate::attack::{Catalog, Resolution, TechniqueRef, Techniques};
use crate::event::Event;
use crate::tables::Tables;

/// The mapping files shipped in the repository's `rules/mappings/`, embedded so that a
/// deployment gets useful annotations with no configuration. `(file name, YAML)`.
pub const BUILTIN_SOURCES: &[(&str, &str)] = &[
    (
        "osquery-attck.yml",
        include_str!("../../../rules/mappings/osquery-attck.yml"),
    ),
    (
        "osquery-attck-curated.yml",
        include_str!("../../../rules/mappings/osquery-attck-curated.yml"),
    ),
    (
        "tripline-packs.yml",
        include_str!("../../../rules/mappings/tripline-packs.yml"),
    ),
    (
        "osquery-packs.yml",
        include_str!("../../../rules/mappings/osquery-packs.yml"),
    ),
    (
        "tables.yml",
        include_str!("../../../rules/mappings/tables.yml"),
    ),
];

/// Bound on cached `(pack, query, name)` lookups, and separately on cached table lists. A
/// fleet logs a few hundred distinct query names (and no more distinct table lists than
/// queries); the bound only matters when names are unbounded (attacker-controlled or buggy
/// input), where it keeps memory flat at the cost of recomputing.
const MAX_CACHE_ENTRIES: usize = 4096;

/// Why mapping files could not be loaded. Every variant names the file; entry-level variants
/// also give the entry's 1-based position and its pattern.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// A mapping file or directory could not be read.
    #[error("cannot read mappings from {}: {source}", path.display())]
    Io {
        /// File or directory.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not valid YAML or does not have the expected shape (unknown keys included).
    #[error("{file}: invalid mapping file: {source}")]
    Yaml {
        /// File name.
        file: String,
        /// Parser error, with line and column.
        source: yaml_serde::Error,
    },
    /// An entry is structurally wrong or names a technique that does not resolve.
    #[error("{file}: mapping #{entry} ({pattern}): {reason}")]
    Entry {
        /// File name.
        file: String,
        /// 1-based position in the file's `mappings` list.
        entry: usize,
        /// The entry's pattern, e.g. `query: linux_sudoers`.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
    /// An entry's glob does not compile.
    #[error("{file}: mapping #{entry} ({pattern}): invalid glob: {source}")]
    Glob {
        /// File name.
        file: String,
        /// 1-based position in the file's `mappings` list.
        entry: usize,
        /// The entry's pattern.
        pattern: String,
        /// globset's error.
        source: globset::Error,
    },
    /// An entry's regex does not compile.
    #[error("{file}: mapping #{entry} ({pattern}): invalid regex: {source}")]
    Regex {
        /// File name.
        file: String,
        /// 1-based position in the file's `mappings` list.
        entry: usize,
        /// The entry's pattern.
        pattern: String,
        /// regex's error.
        source: regex::Error,
    },
    /// The combined glob set could not be built (individually valid globs).
    #[error("cannot combine mapping globs: {0}")]
    GlobSet(#[source] globset::Error),
    /// The combined regex set could not be built (e.g. over the size limit).
    #[error("cannot combine mapping regexes: {0}")]
    RegexSet(#[source] regex::Error),
}

/// How an entry selects events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Exact query name or full logged name.
    Query(String),
    /// globset pattern.
    Glob(String),
    /// regex pattern (unanchored unless anchored explicitly).
    Regex(String),
    /// osquery table the row came from (lower-case); consulted only for queries that no
    /// query, glob or regex entry matches.
    Table(String),
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Query(s) => write!(f, "query: {s}"),
            Pattern::Glob(s) => write!(f, "glob: {s}"),
            Pattern::Regex(s) => write!(f, "regex: {s}"),
            Pattern::Table(s) => write!(f, "table: {s}"),
        }
    }
}

/// One loaded mapping entry, kept after compilation for coverage reports and linting.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingEntry {
    /// File the entry came from (file name for directories and built-ins).
    pub source: String,
    /// 1-based position in the file's `mappings` list.
    pub position: usize,
    /// What the entry matches.
    pub pattern: Pattern,
    /// Pack restriction, if any.
    pub pack: Option<String>,
    /// Technique IDs as written (upper-cased), so a linter can flag legacy IDs.
    pub declared: Vec<String>,
    /// Current techniques, legacy IDs resolved, deduplicated, in declared order. Empty only
    /// for a [`Pattern::Table`] entry (a table whose rows are no evidence of a technique).
    pub techniques: Vec<TechniqueRef>,
    /// The entry's `note`: why these techniques (or none).
    pub note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    mappings: Option<Vec<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    query: Option<String>,
    glob: Option<String>,
    regex: Option<String>,
    table: Option<String>,
    pack: Option<String>,
    /// Missing is an error on every entry, and an empty list on all but table entries.
    techniques: Option<Vec<String>>,
    note: Option<String>,
}

/// Compiled mappings with a lookup cache.
///
/// Lookups go through an internal, bounded cache keyed by `(pack, query, name)` and return
/// `Arc<[TechniqueRef]>`. The cache lives inside the mapper (rather than in a caller-owned
/// `MapperCache`) because the mapper is built once and shared by everything that annotates
/// events (the parse Lambda, the CLI, tests): one shared cache means every call site gets O(1)
/// repeated lookups without plumbing extra state. It sits behind an `RwLock`, so concurrent
/// readers do not serialize and the lock is uncontended in a single-threaded Lambda; a hit is
/// one hash lookup with no allocation plus an `Arc` clone, instead of running a glob set and a
/// regex set and cloning every technique's strings per event.
///
/// Table entries are merged per table once, at load ([`TableTechniques`]), so mapping an
/// event by one table is one hash lookup; a union over several tables from SQL is computed
/// once per distinct table list and cached in a second bounded map.
#[derive(Debug)]
pub struct Mapper {
    entries: Vec<MappingEntry>,
    exact: HashMap<String, Vec<usize>>,
    globs: GlobSet,
    glob_entries: Vec<usize>,
    regexes: RegexSet,
    regex_entries: Vec<usize>,
    /// Every table that some table entry names (with no techniques too), keyed lower-case.
    tables: FxHashMap<Box<str>, TableTechniques>,
    /// Fx-hashed: the keys are our own query names, hashed once per event.
    cache: RwLock<FxHashMap<CacheKey, Cached>>,
    /// Unions over the table lists of SQL-read events, keyed by the list as given.
    table_cache: RwLock<FxHashMap<TablesKey, Techniques>>,
}

/// The techniques of one table: the union of its entries in load order, in both forms
/// handed out (with URLs for reports, compact for events).
#[derive(Debug)]
struct TableTechniques {
    full: Vec<TechniqueRef>,
    compact: Techniques,
}

/// One cached lookup, in both forms handed out.
#[derive(Debug, Clone)]
struct Cached {
    full: Arc<[TechniqueRef]>,
    compact: Techniques,
}

impl Mapper {
    /// The mappings shipped with tripline ([`BUILTIN_SOURCES`]), against the embedded catalog.
    /// An error here means the repository's `rules/mappings/` is broken (the unit tests check it).
    pub fn builtin() -> Result<Mapper, MappingError> {
        Mapper::from_yaml_strs(BUILTIN_SOURCES.iter().copied())
    }

    /// Compiles `(file name, YAML text)` pairs against the embedded ATT&CK catalog.
    pub fn from_yaml_strs<'a, I>(sources: I) -> Result<Mapper, MappingError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        Mapper::from_yaml_strs_with_catalog(Catalog::embedded(), sources)
    }

    /// Like [`Mapper::from_yaml_strs`] with an explicit catalog.
    pub fn from_yaml_strs_with_catalog<'a, I>(
        catalog: &Catalog,
        sources: I,
    ) -> Result<Mapper, MappingError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut entries = Vec::new();
        for (file, yaml) in sources {
            parse_file(catalog, file, yaml, &mut entries)?;
        }
        Mapper::compile(entries)
    }

    /// Loads every `*.yml` / `*.yaml` file directly inside `dir` (not recursive), in file-name
    /// order so that results and error messages are deterministic.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Mapper, MappingError> {
        let sources = read_dir_sources(dir.as_ref())?;
        Mapper::from_yaml_strs(sources.iter().map(|(n, y)| (n.as_str(), y.as_str())))
    }

    fn compile(entries: Vec<MappingEntry>) -> Result<Mapper, MappingError> {
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
        let mut globs = GlobSetBuilder::new();
        let mut glob_entries = Vec::new();
        let mut regex_sources = Vec::new();
        let mut regex_entries = Vec::new();
        let mut tables: FxHashMap<Box<str>, Vec<TechniqueRef>> = FxHashMap::default();
        for (i, entry) in entries.iter().enumerate() {
            let err_ctx = || {
                (
                    entry.source.clone(),
                    entry.position,
                    entry.pattern.to_string(),
                )
            };
            match &entry.pattern {
                Pattern::Query(q) => exact.entry(q.clone()).or_default().push(i),
                Pattern::Glob(g) => {
                    let glob = GlobBuilder::new(g)
                        .backslash_escape(true) // same meaning on every OS
                        .build()
                        .map_err(|source| {
                            let (file, entry, pattern) = err_ctx();
                            MappingError::Glob {
                                file,
                                entry,
                                pattern,
                                source,
                            }
                        })?;
                    globs.add(glob);
                    glob_entries.push(i);
                }
                Pattern::Regex(r) => {
                    // Compiled alone first so that an error can name its entry; the set
                    // below would only say which pattern index failed.
                    Regex::new(r).map_err(|source| {
                        let (file, entry, pattern) = err_ctx();
                        MappingError::Regex {
                            file,
                            entry,
                            pattern,
                            source,
                        }
                    })?;
                    regex_sources.push(r.as_str());
                    regex_entries.push(i);
                }
                Pattern::Table(t) => {
                    let merged = tables.entry(t.as_str().into()).or_default();
                    for technique in &entry.techniques {
                        if !merged.iter().any(|m| m.id == technique.id) {
                            merged.push(technique.clone());
                        }
                    }
                }
            }
        }
        let tables = tables
            .into_iter()
            .map(|(table, full)| {
                let compact = full
                    .iter()
                    .map(TechniqueRef::without_url)
                    .collect::<Vec<_>>()
                    .into();
                (table, TableTechniques { full, compact })
            })
            .collect();
        let globs = globs.build().map_err(MappingError::GlobSet)?;
        let regexes = RegexSet::new(&regex_sources).map_err(MappingError::RegexSet)?;
        Ok(Mapper {
            entries,
            exact,
            globs,
            glob_entries,
            regexes,
            regex_entries,
            tables,
            cache: RwLock::new(FxHashMap::default()),
            table_cache: RwLock::new(FxHashMap::default()),
        })
    }

    /// Techniques for an event, given its pack (if any), parsed query name and full logged
    /// name. Cached: repeated lookups of the same triple cost one hash lookup.
    ///
    /// Surrounding whitespace is ignored and an empty pack counts as no pack, because osquery
    /// configs in the wild contain both (osquery-attck has a query named
    /// `" Sophos_Anti-Virus_Services_1"`).
    pub fn techniques(&self, pack: Option<&str>, query: &str, name: &str) -> Arc<[TechniqueRef]> {
        self.cached(pack, query, name).full
    }

    /// The techniques as events carry them: [`Mapper::techniques`] without the URLs (alerts
    /// add those), one shared list per cached lookup, so annotating an event copies no
    /// strings.
    pub fn event_techniques(&self, pack: Option<&str>, query: &str, name: &str) -> Techniques {
        self.cached(pack, query, name).compact
    }

    /// The techniques an event carries, by its query where an entry knows the query and by
    /// the osquery tables its row came from otherwise (the rule is in the module docs, "ATT&CK
    /// by table"). `tables` lists the row's tables, the one that explains the row first;
    /// `tables_certain` says they were read from the query's SQL rather than guessed from the
    /// row's column names, and only then is every table claimed.
    ///
    /// Cached like [`Mapper::event_techniques`]: the query part per `(pack, query, name)`, one
    /// table's techniques merged at load, a union over several tables per distinct list.
    pub fn event_techniques_for(
        &self,
        pack: Option<&str>,
        query: &str,
        name: &str,
        tables: &[String],
        tables_certain: bool,
    ) -> Techniques {
        let by_query = self.event_techniques(pack, query, name);
        // Query, glob and regex entries list at least one technique (checked at load), so an
        // empty answer means that no entry knows the query.
        if !by_query.is_empty() {
            return by_query;
        }
        match tables {
            [] => by_query,
            [first, ..] if !tables_certain => self.table_compact(first),
            [only] => self.table_compact(only),
            _ => self.tables_union(tables),
        }
    }

    /// The techniques a table's rows are evidence for, with URLs: the union of the table's
    /// entries. Empty for a table that no entry names, or that its entries map to nothing.
    /// Table names match in any case, as in osquery's SQL.
    pub fn table_techniques(&self, table: &str) -> &[TechniqueRef] {
        self.table(table).map_or(&[], |t| &t.full)
    }

    fn table(&self, table: &str) -> Option<&TableTechniques> {
        match self.tables.get(table) {
            Some(found) => Some(found),
            // Keys are lower-case, as osquery names its tables and as events normally carry
            // them, so only another spelling pays for a lower-cased copy.
            None if table.bytes().any(|b| b.is_ascii_uppercase()) => {
                self.tables.get(table.to_ascii_lowercase().as_str())
            }
            None => None,
        }
    }

    fn table_compact(&self, table: &str) -> Techniques {
        self.table(table)
            .map(|t| t.compact.clone())
            .unwrap_or_default()
    }

    fn tables_union(&self, tables: &[String]) -> Techniques {
        let probe = TablesRef(tables);
        if let Some(hit) = read_lock(&self.table_cache).get(&probe as &dyn TablesView) {
            return hit.clone();
        }
        let mut union: Vec<TechniqueRef> = Vec::new();
        for table in tables {
            let Some(found) = self.table(table) else {
                continue;
            };
            for t in found.compact.iter() {
                if !union.iter().any(|u| u.id == t.id) {
                    union.push(t.clone());
                }
            }
        }
        let result = Techniques::from(union);
        let mut cache = write_lock(&self.table_cache);
        if cache.len() >= MAX_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(
            TablesKey(tables.iter().map(|t| t.as_str().into()).collect()),
            result.clone(),
        );
        result
    }

    fn cached(&self, pack: Option<&str>, query: &str, name: &str) -> Cached {
        let (pack, query, name) = normalize_inputs(pack, query, name);
        let probe = KeyRef { pack, query, name };
        if let Some(hit) = read_lock(&self.cache).get(&probe as &dyn KeyView) {
            return hit.clone();
        }
        let full = self.lookup(pack, query, name);
        let result = Cached {
            compact: full
                .iter()
                .map(TechniqueRef::without_url)
                .collect::<Vec<_>>()
                .into(),
            full: full.into(),
        };
        let mut cache = write_lock(&self.cache);
        if cache.len() >= MAX_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(
            CacheKey {
                pack: pack.map(Box::from),
                query: query.into(),
                name: name.into(),
            },
            result.clone(),
        );
        result
    }

    /// The same answer as [`Mapper::techniques`] without touching the cache (for one-off
    /// lookups such as `tripline explain`, where caching would only cost memory).
    pub fn techniques_uncached(
        &self,
        pack: Option<&str>,
        query: &str,
        name: &str,
    ) -> Vec<TechniqueRef> {
        let (pack, query, name) = normalize_inputs(pack, query, name);
        self.lookup(pack, query, name)
    }

    /// Entries that apply to an event, in load order (for explaining an annotation).
    pub fn matching_entries(
        &self,
        pack: Option<&str>,
        query: &str,
        name: &str,
    ) -> Vec<&MappingEntry> {
        let (pack, query, name) = normalize_inputs(pack, query, name);
        self.matching_indices(pack, query, name)
            .into_iter()
            .map(|i| &self.entries[i])
            .collect()
    }

    /// Every loaded entry with its techniques and source file, in load order.
    pub fn entries(&self) -> &[MappingEntry] {
        &self.entries
    }

    /// Current technique ID -> the entries that map to it, for coverage reports.
    pub fn coverage(&self) -> BTreeMap<&str, Vec<&MappingEntry>> {
        let mut out: BTreeMap<&str, Vec<&MappingEntry>> = BTreeMap::new();
        for entry in &self.entries {
            for t in &entry.techniques {
                out.entry(t.id.as_str()).or_default().push(entry);
            }
        }
        out
    }

    /// Number of cached lookups, query and table-list ones together (for metrics and tests).
    pub fn cache_len(&self) -> usize {
        read_lock(&self.cache).len() + read_lock(&self.table_cache).len()
    }

    fn matching_indices(&self, pack: Option<&str>, query: &str, name: &str) -> Vec<usize> {
        let mut hits = Vec::new();
        let candidates = [Some(query), (name != query).then_some(name)];
        for candidate in candidates.into_iter().flatten().filter(|c| !c.is_empty()) {
            if let Some(ids) = self.exact.get(candidate) {
                hits.extend_from_slice(ids);
            }
            if !self.glob_entries.is_empty() {
                hits.extend(
                    self.globs
                        .matches(candidate)
                        .into_iter()
                        .map(|i| self.glob_entries[i]),
                );
            }
            if !self.regex_entries.is_empty() {
                hits.extend(
                    self.regexes
                        .matches(candidate)
                        .into_iter()
                        .map(|i| self.regex_entries[i]),
                );
            }
        }
        hits.sort_unstable();
        hits.dedup();
        hits.retain(|&i| match &self.entries[i].pack {
            None => true,
            Some(p) => pack == Some(p.as_str()),
        });
        hits
    }

    fn lookup(&self, pack: Option<&str>, query: &str, name: &str) -> Vec<TechniqueRef> {
        let mut out: Vec<TechniqueRef> = Vec::new();
        for i in self.matching_indices(pack, query, name) {
            for t in &self.entries[i].techniques {
                if !out.iter().any(|o| o.id == t.id) {
                    out.push(t.clone());
                }
            }
        }
        out
    }
}

/// Sets each event's `attack` from a [`Mapper`], the one rule every stage uses: by the query
/// when an entry knows it, otherwise by the first of the row's tables
/// ([`Mapper::event_techniques_for`] with the tables taken as guessed), so that a table joined
/// in to name a uid is no evidence of what the query looks for.
///
/// Events come in runs of one query and shape, so the last event's answer is usually the next
/// one's: it is kept and handed out again without trimming and hashing the names for the
/// mapper's cache. Per thread (the mapper behind it is shared).
#[derive(Debug, Clone)]
pub struct EventMapper {
    mapper: Arc<Mapper>,
    last: Option<LastMapped>,
}

/// One event's mapping inputs and the techniques they map to.
#[derive(Debug, Clone)]
struct LastMapped {
    pack: Option<String>,
    query: String,
    name: String,
    tables: Tables,
    techniques: Techniques,
}

impl EventMapper {
    /// Maps with `mapper`.
    pub fn new(mapper: Arc<Mapper>) -> EventMapper {
        EventMapper { mapper, last: None }
    }

    /// The mapper behind it.
    pub fn mapper(&self) -> &Arc<Mapper> {
        &self.mapper
    }

    /// Sets `event.attack` from its pack, query, logged name and tables. Events carry the
    /// compact form (no URLs; alerts add them), shared, not copied.
    pub fn annotate(&mut self, event: &mut Event) {
        let name = event.name.as_deref().unwrap_or("");
        let query = event.query.as_deref().unwrap_or(name);
        let pack = event.pack.as_deref();
        event.attack = match &self.last {
            Some(last)
                if last.query == query
                    && last.name == name
                    && last.pack.as_deref() == pack
                    && last.tables == event.tables =>
            {
                last.techniques.clone()
            }
            _ => {
                let techniques =
                    self.mapper
                        .event_techniques_for(pack, query, name, &event.tables, false);
                self.last = Some(LastMapped {
                    pack: pack.map(str::to_string),
                    query: query.to_string(),
                    name: name.to_string(),
                    tables: event.tables.clone(),
                    techniques: techniques.clone(),
                });
                techniques
            }
        };
    }
}

/// Reads every `*.yml` / `*.yaml` file directly inside `dir`, sorted by file name, as
/// `(file name, contents)`; for combining a directory with [`BUILTIN_SOURCES`] in
/// [`Mapper::from_yaml_strs`].
pub fn read_dir_sources(dir: &Path) -> Result<Vec<(String, String)>, MappingError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MappingError::Io { path, source }
    };
    let mut files = Vec::new();
    for dirent in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = dirent.map_err(io_err(dir))?.path();
        let is_yaml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"));
        if is_yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let yaml = std::fs::read_to_string(&path).map_err(io_err(&path))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            Ok((name, yaml))
        })
        .collect()
}

// A panic while holding a cache lock cannot leave a half-written entry behind (entries are
// built before the lock is taken and inserted whole), so the cache is still valid after
// poisoning.
fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn normalize_inputs<'a>(
    pack: Option<&'a str>,
    query: &'a str,
    name: &'a str,
) -> (Option<&'a str>, &'a str, &'a str) {
    (
        pack.map(str::trim).filter(|p| !p.is_empty()),
        query.trim(),
        name.trim(),
    )
}

fn parse_file(
    catalog: &Catalog,
    file: &str,
    yaml: &str,
    out: &mut Vec<MappingEntry>,
) -> Result<(), MappingError> {
    let raw: RawFile = yaml_serde::from_str(yaml).map_err(|source| MappingError::Yaml {
        file: file.to_string(),
        source,
    })?;
    for (i, raw) in raw.mappings.unwrap_or_default().into_iter().enumerate() {
        out.push(parse_entry(catalog, file, i + 1, raw)?);
    }
    Ok(())
}

fn parse_entry(
    catalog: &Catalog,
    file: &str,
    position: usize,
    raw: RawEntry,
) -> Result<MappingEntry, MappingError> {
    let patterns: Vec<Pattern> = [
        raw.query.map(|s| Pattern::Query(s.trim().to_string())),
        raw.glob.map(Pattern::Glob),
        raw.regex.map(Pattern::Regex),
        raw.table.map(|s| Pattern::Table(s.trim().to_string())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let err = |pattern: String, reason: String| MappingError::Entry {
        file: file.to_string(),
        entry: position,
        pattern,
        reason,
    };
    let pattern = match <[Pattern; 1]>::try_from(patterns) {
        Ok([p]) => p,
        Err(ps) if ps.is_empty() => {
            return Err(err(
                "no pattern".into(),
                "needs one of `query`, `glob`, `regex` or `table`".into(),
            ))
        }
        Err(ps) => {
            let all: Vec<String> = ps.iter().map(Pattern::to_string).collect();
            return Err(err(
                all.join(", "),
                "has more than one of `query`, `glob`, `regex` and `table`; split it into separate \
                 entries"
                    .into(),
            ));
        }
    };
    let shown = pattern.to_string();
    let (Pattern::Query(text) | Pattern::Glob(text) | Pattern::Regex(text) | Pattern::Table(text)) =
        &pattern;
    if text.is_empty() {
        return Err(err(shown, "pattern is empty".into()));
    }
    let is_table = matches!(&pattern, Pattern::Table(_));
    if let Pattern::Table(table) = &pattern {
        // Lookups lower-case what they are given, so an entry spelled otherwise could
        // never match.
        if !table
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(err(
                shown,
                "a table name is lower-case letters, digits and `_`, as osquery names tables"
                    .into(),
            ));
        }
        if raw.pack.is_some() {
            return Err(err(
                shown,
                "`pack` does not apply to a `table` entry: a table's rows are the same evidence \
                 in every pack"
                    .into(),
            ));
        }
    }
    let pack = match raw.pack.map(|p| p.trim().to_string()) {
        Some(p) if p.is_empty() => return Err(err(shown, "`pack` is empty".into())),
        other => other,
    };
    let raw_techniques = match raw.techniques {
        None => return Err(err(shown, "`techniques` is missing".into())),
        // `event_techniques_for` reads an empty query answer as "no entry knows this query"
        // and falls back to the tables; a query entry listing none would break that
        // equivalence, so only a table may say "nothing" explicitly.
        Some(list) if list.is_empty() && !is_table => {
            return Err(err(
                shown,
                "`techniques` is empty (only a `table` entry may list none)".into(),
            ))
        }
        Some(list) => list,
    };

    let mut declared = Vec::with_capacity(raw_techniques.len());
    let mut techniques: Vec<TechniqueRef> = Vec::with_capacity(raw_techniques.len());
    for id in &raw_techniques {
        let current = match catalog.resolution(id) {
            Resolution::Current(t) | Resolution::Replaced { current: t, .. } => t,
            Resolution::Unknown => {
                return Err(err(
                    shown,
                    format!(
                        "technique {id:?} is not an ATT&CK v{} technique ID",
                        catalog.version()
                    ),
                ))
            }
            other => return Err(err(shown, format!("technique {other}"))),
        };
        declared.push(id.trim().to_ascii_uppercase());
        if !techniques.iter().any(|t| t.id == current.id) {
            techniques.push(current.to_ref());
        }
    }
    Ok(MappingEntry {
        source: file.to_string(),
        position,
        pattern,
        pack,
        declared,
        techniques,
        note: raw.note.map(|n| n.trim().to_string()),
    })
}

/// Owned cache key. Hashes and compares through [`KeyView`] so that lookups can use a
/// borrowed [`KeyRef`] and a cache hit allocates nothing.
#[derive(Debug)]
struct CacheKey {
    pack: Option<Box<str>>,
    query: Box<str>,
    name: Box<str>,
}

struct KeyRef<'a> {
    pack: Option<&'a str>,
    query: &'a str,
    name: &'a str,
}

trait KeyView {
    fn parts(&self) -> (Option<&str>, &str, &str);
}

impl KeyView for CacheKey {
    fn parts(&self) -> (Option<&str>, &str, &str) {
        (self.pack.as_deref(), &self.query, &self.name)
    }
}

impl KeyView for KeyRef<'_> {
    fn parts(&self) -> (Option<&str>, &str, &str) {
        (self.pack, self.query, self.name)
    }
}

impl<'a> Borrow<dyn KeyView + 'a> for CacheKey {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

impl Hash for dyn KeyView + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn KeyView + '_ {}

impl Hash for CacheKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for CacheKey {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for CacheKey {}

/// Owned key of the table-union cache: the tables as the event listed them. Hashes and
/// compares through [`TablesView`], like [`CacheKey`], so a hit allocates nothing.
#[derive(Debug)]
struct TablesKey(Box<[Box<str>]>);

/// A borrowed table list, as events carry it.
struct TablesRef<'a>(&'a [String]);

trait TablesView {
    fn len(&self) -> usize;
    fn get(&self, i: usize) -> &str;
}

impl TablesView for TablesKey {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, i: usize) -> &str {
        &self.0[i]
    }
}

impl TablesView for TablesRef<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, i: usize) -> &str {
        &self.0[i]
    }
}

impl<'a> Borrow<dyn TablesView + 'a> for TablesKey {
    fn borrow(&self) -> &(dyn TablesView + 'a) {
        self
    }
}

impl Hash for dyn TablesView + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for i in 0..self.len() {
            self.get(i).hash(state);
        }
    }
}

impl PartialEq for dyn TablesView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && (0..self.len()).all(|i| self.get(i) == other.get(i))
    }
}

impl Eq for dyn TablesView + '_ {}

impl Hash for TablesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn TablesView).hash(state);
    }
}

impl PartialEq for TablesKey {
    fn eq(&self, other: &Self) -> bool {
        (self as &dyn TablesView) == (other as &dyn TablesView)
    }
}

impl Eq for TablesKey {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn mapper(yaml: &str) -> Mapper {
        Mapper::from_yaml_strs([("test.yml", yaml)]).unwrap()
    }

    fn ids(refs: &[TechniqueRef]) -> Vec<&str> {
        refs.iter().map(|t| t.id.as_str()).collect()
    }

    fn load_err(yaml: &str) -> MappingError {
        Mapper::from_yaml_strs([("bad.yml", yaml)]).unwrap_err()
    }

    const SAMPLE: &str = r#"
mappings:
  - query: linux_sudoers
    techniques: [T1169, t1206]          # both legacy -> T1548.003 once
  - query: Snapshot_services
    pack: windows_critical_service_status
    techniques: [T1562.001]
  - query: Snapshot_services
    pack: windows_service-persistence
    techniques: [T1543.003]
  - glob: "*_process_events"
    techniques: [T1059]
  - regex: "^win_.*_persistence$"
    techniques: [T1547.001]
  - query: pack_it_shell_history        # a full logged name
    techniques: [T1552.003]
"#;

    #[test]
    fn exact_match_resolves_legacy_ids_and_dedups() {
        let m = mapper(SAMPLE);
        let t = m.techniques(None, "linux_sudoers", "pack_generic_linux_linux_sudoers");
        assert_eq!(ids(&t), ["T1548.003"]);
        assert_eq!(t[0].name, "Sudo and Sudo Caching");
        assert!(t[0].tactics.iter().any(|x| x == "privilege-escalation"));
        assert_eq!(m.entries()[0].declared, ["T1169", "T1206"]);
        assert!(m.techniques(None, "linux_sudoers2", "x").is_empty());
        assert!(
            m.techniques(None, "LINUX_SUDOERS", "x").is_empty(),
            "query names are case-sensitive, like osquery"
        );
    }

    #[test]
    fn pack_restriction_disambiguates_shared_query_names() {
        let m = mapper(SAMPLE);
        let crit = m.techniques(
            Some("windows_critical_service_status"),
            "Snapshot_services",
            "pack_windows_critical_service_status_Snapshot_services",
        );
        assert_eq!(ids(&crit), ["T1562.001"]);
        let persist = m.techniques(Some("windows_service-persistence"), "Snapshot_services", "");
        assert_eq!(ids(&persist), ["T1543.003"]);
        assert!(m
            .techniques(None, "Snapshot_services", "Snapshot_services")
            .is_empty());
        assert!(m
            .techniques(Some("other"), "Snapshot_services", "")
            .is_empty());
    }

    #[test]
    fn glob_and_regex_match_query_or_full_name() {
        let m = mapper(SAMPLE);
        assert_eq!(
            ids(&m.techniques(None, "bpf_process_events", "pack_x_bpf_process_events")),
            ["T1059"]
        );
        // The glob needs an underscore before `process_events`; the full name supplies one.
        assert_eq!(
            ids(&m.techniques(Some("x"), "process_events", "pack_x_process_events")),
            ["T1059"]
        );
        assert!(m
            .techniques(None, "process_events", "process_events")
            .is_empty());
        // `*` crosses `/` so `pack/<team>/<query>` names match too.
        assert_eq!(
            ids(&m.techniques(None, "", "pack/team/bpf_process_events")),
            ["T1059"]
        );
        assert_eq!(
            ids(&m.techniques(None, "win_registry_persistence", "")),
            ["T1547.001"]
        );
        assert!(m
            .techniques(None, "xwin_registry_persistence", "")
            .is_empty());
        assert_eq!(
            ids(&m.techniques(Some("it"), "shell_history", "pack_it_shell_history")),
            ["T1552.003"],
            "an exact entry may name the full logged name"
        );
    }

    #[test]
    fn all_matching_entries_contribute_in_file_order() {
        let m = mapper(
            r#"
mappings:
  - regex: "persistence"
    techniques: [T1547.001]
  - query: win_run_persistence
    techniques: [T1112, T1547.001]
  - glob: "win_*"
    techniques: [T1012]
"#,
        );
        let t = m.techniques(None, "win_run_persistence", "pack_p_win_run_persistence");
        assert_eq!(ids(&t), ["T1547.001", "T1112", "T1012"]);
        let entries = m.matching_entries(None, "win_run_persistence", "");
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[1].pattern,
            Pattern::Query("win_run_persistence".into())
        );
    }

    #[test]
    fn whitespace_and_empty_pack_are_normalized() {
        let m = mapper(SAMPLE);
        assert_eq!(
            ids(&m.techniques(Some(""), " linux_sudoers ", "")),
            ["T1548.003"]
        );
        assert_eq!(
            ids(&m.techniques(
                Some(" windows_service-persistence "),
                "Snapshot_services",
                ""
            )),
            ["T1543.003"]
        );
    }

    #[test]
    fn lookups_are_cached_and_shared() {
        let m = mapper(SAMPLE);
        assert_eq!(m.cache_len(), 0);
        let a = m.techniques(Some("p"), "linux_sudoers", "pack_p_linux_sudoers");
        let b = m.techniques(Some("p"), "linux_sudoers", "pack_p_linux_sudoers");
        assert!(
            Arc::ptr_eq(&a, &b),
            "second lookup is served from the cache"
        );
        assert_eq!(m.cache_len(), 1);
        let c = m.techniques(Some("q"), "linux_sudoers", "pack_p_linux_sudoers");
        assert!(!Arc::ptr_eq(&a, &c), "pack is part of the key");
        assert_eq!(m.cache_len(), 2);
        assert_eq!(*a, *c);
        assert_eq!(
            m.techniques_uncached(Some("p"), "linux_sudoers", "pack_p_linux_sudoers"),
            a.to_vec()
        );
        assert_eq!(m.cache_len(), 2);
    }

    #[test]
    fn cache_stays_bounded() {
        let m = mapper(SAMPLE);
        for i in 0..(MAX_CACHE_ENTRIES + 10) {
            m.techniques(None, &format!("q{i}"), "");
        }
        assert!(m.cache_len() <= MAX_CACHE_ENTRIES);
        assert_eq!(ids(&m.techniques(None, "linux_sudoers", "")), ["T1548.003"]);
    }

    #[test]
    fn mapper_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Mapper>();
        let m = Arc::new(mapper(SAMPLE));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        assert_eq!(m.techniques(None, "linux_sudoers", "").len(), 1);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn unknown_and_deprecated_ids_are_load_errors_naming_file_and_entry() {
        let e = load_err("mappings:\n  - query: a\n    techniques: [T1059]\n  - query: b\n    techniques: [T9999]\n");
        let msg = e.to_string();
        assert!(matches!(e, MappingError::Entry { entry: 2, .. }), "{msg}");
        assert!(msg.contains("bad.yml"), "{msg}");
        assert!(msg.contains("#2"), "{msg}");
        assert!(msg.contains("query: b"), "{msg}");
        assert!(msg.contains("T9999"), "{msg}");

        let msg = load_err("mappings:\n  - query: a\n    techniques: [T1034]\n").to_string();
        assert!(msg.contains("deprecated"), "{msg}");

        let msg = load_err("mappings:\n  - query: a\n    techniques: [attack.t1059]\n").to_string();
        assert!(msg.contains("not an ATT&CK"), "{msg}");
    }

    #[test]
    fn bad_patterns_are_load_errors() {
        let e = load_err("mappings:\n  - regex: \"(unclosed\"\n    techniques: [T1059]\n");
        assert!(matches!(e, MappingError::Regex { entry: 1, .. }), "{e}");
        assert!(e.to_string().contains("bad.yml"));

        let e = load_err("mappings:\n  - glob: \"a[\"\n    techniques: [T1059]\n");
        assert!(matches!(e, MappingError::Glob { entry: 1, .. }), "{e}");

        for (yaml, needle) in [
            ("mappings:\n  - techniques: [T1059]\n", "needs one of"),
            (
                "mappings:\n  - table: crontab\n    query: crontab\n    techniques: [T1053.003]\n",
                "more than one",
            ),
            (
                "mappings:\n  - table: crontab\n    techniques: [T9999]\n",
                "T9999",
            ),
            (
                "mappings:\n  - table: crontab\n    pack: p\n    techniques: [T1053.003]\n",
                "`pack` does not apply",
            ),
            (
                "mappings:\n  - table: Crontab\n    techniques: [T1053.003]\n",
                "lower-case",
            ),
            (
                "mappings:\n  - table: \" \"\n    techniques: [T1053.003]\n",
                "empty",
            ),
            ("mappings:\n  - table: crontab\n", "`techniques` is missing"),
            (
                "mappings:\n  - query: a\n    glob: b\n    techniques: [T1059]\n",
                "more than one",
            ),
            (
                "mappings:\n  - query: \"\"\n    techniques: [T1059]\n",
                "empty",
            ),
            ("mappings:\n  - query: a\n", "techniques"),
            (
                "mappings:\n  - query: a\n    techniques: []\n",
                "only a `table` entry may list none",
            ),
            (
                "mappings:\n  - query: a\n    pack: \" \"\n    techniques: [T1059]\n",
                "pack",
            ),
        ] {
            let e = load_err(yaml);
            assert!(matches!(e, MappingError::Entry { .. }), "{yaml}: {e}");
            assert!(e.to_string().contains(needle), "{yaml}: {e}");
        }
    }

    #[test]
    fn malformed_yaml_and_unknown_keys_are_errors() {
        for yaml in [
            "mappings:\n  - query: a\n    technique: [T1059]\n",
            "mapping:\n  - query: a\n    techniques: [T1059]\n",
            "mappings: {query: a}\n",
            "mappings:\n  - query: [a\n",
            "---\nmappings: []\n---\nmappings: []\n",
        ] {
            let e = load_err(yaml);
            assert!(matches!(e, MappingError::Yaml { .. }), "{yaml}: {e}");
            assert!(e.to_string().starts_with("bad.yml"), "{e}");
        }
    }

    #[test]
    fn empty_files_load_as_no_mappings() {
        for yaml in ["", "# only a comment\n", "mappings:\n", "mappings: []\n"] {
            let m = mapper(yaml);
            assert!(m.entries().is_empty());
            assert!(m.techniques(None, "anything", "").is_empty());
        }
    }

    #[test]
    fn coverage_lists_entries_per_technique() {
        let m = mapper(SAMPLE);
        let cov = m.coverage();
        assert_eq!(cov["T1548.003"].len(), 1);
        assert_eq!(cov["T1548.003"][0].source, "test.yml");
        assert_eq!(cov["T1548.003"][0].position, 1);
        assert!(cov.contains_key("T1543.003"));
        assert!(!cov.contains_key("T1169"), "coverage is in current IDs");
    }

    #[test]
    fn load_dir_reads_yaml_files_in_name_order() {
        let dir = std::env::temp_dir().join(format!(
            "tripline-mapping-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("b.yaml"),
            "mappings:\n  - query: q\n    techniques: [T1012]\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("a.yml"),
            "mappings:\n  - query: q\n    techniques: [T1059]\n",
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "not yaml: [").unwrap();
        let m = Mapper::load_dir(&dir).unwrap();
        assert_eq!(ids(&m.techniques(None, "q", "")), ["T1059", "T1012"]);
        assert_eq!(m.entries()[0].source, "a.yml");

        std::fs::write(
            dir.join("c.yml"),
            "mappings:\n  - query: q\n    techniques: [T0000]\n",
        )
        .unwrap();
        let e = Mapper::load_dir(&dir).unwrap_err();
        assert!(e.to_string().starts_with("c.yml"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();

        assert!(matches!(
            Mapper::load_dir(dir.join("missing")),
            Err(MappingError::Io { .. })
        ));
    }

    #[test]
    fn builtin_osquery_attck_mapping_loads_and_every_entry_resolves() {
        let m = Mapper::builtin().unwrap();
        let catalog = Catalog::embedded();
        assert!(m.entries().len() > 100);
        for entry in m.entries() {
            assert!(BUILTIN_SOURCES
                .iter()
                .any(|(file, _)| *file == entry.source));
            assert!(
                !entry.techniques.is_empty() || matches!(entry.pattern, Pattern::Table(_)),
                "{}",
                entry.pattern
            );
            for t in &entry.techniques {
                let current = catalog.technique(&t.id).unwrap();
                assert!(current.is_current(), "{} in {}", t.id, entry.pattern);
                assert_eq!(t.name, current.name);
            }
            for id in &entry.declared {
                assert!(catalog.resolve(id).is_some(), "{id} in {}", entry.pattern);
            }
        }
        // Our own queries are not buried under osquery-attck's pack-wide lists for the same name.
        assert_eq!(
            m.techniques(
                Some("tripline-common"),
                "shell_history",
                "pack_tripline-common_shell_history"
            )
            .len(),
            m.techniques(None, "shell_history", "shell_history").len()
        );
        assert!(m.techniques(None, "shell_history", "shell_history").len() < 5);
        assert!(
            m.techniques(Some("linux_command_execution"), "shell_history", "")
                .len()
                > 10
        );
        // Every osquery-attck query is mapped: upstream's IDs, or our curated attribution.
        assert_eq!(ids(&m.techniques(None, "vssadmin.exe", "")), ["T1490"]);
        assert_eq!(
            ids(&m.techniques(None, "lsass.exe_incorrect_path", "")),
            ["T1036.005"]
        );
        assert!(m.techniques(None, "uptime", "uptime").is_empty());
        // Spot checks against the upstream table.
        assert_eq!(
            ids(&m.techniques(Some("generic_linux"), "linux_sudoers", "")),
            ["T1548.003"]
        );
        assert_eq!(
            ids(&m.techniques(None, "powershell_events_script_blocks", "")),
            ["T1059.001"]
        );
        assert_eq!(
            ids(&m.techniques(None, " Sophos_Anti-Virus_Services_1", "")),
            ["T1562.001"]
        );
        assert_eq!(
            ids(&m.techniques(
                Some("windows_system_running_processes"),
                "system_running_processes",
                ""
            )),
            ["T1218.009", "T1218.010", "T1218.011"]
        );
        // Left unmapped upstream, attributed by osquery-attck-curated.yml.
        assert_eq!(ids(&m.techniques(None, "linux_setuid", "")), ["T1548.001"]);
        assert_eq!(ids(&m.techniques(None, "whoami.exe", "")), ["T1033"]);
    }

    const TABLES: &str = r#"
mappings:
  - query: shell_network_connections
    techniques: [T1059.004, T1095]
  - glob: "*_sockets_watch"
    techniques: [T1571]
  - table: process_open_sockets
    techniques: [T1059, T1071, T1095]
    note: sockets
  - table: processes
    techniques: [T1059, T1036.005]
  - table: processes
    techniques: [T1070.004, T1059]       # a second entry for a table adds to the first
  - table: cpuid
    techniques: []
    note: "inventory: CPU features"
"#;

    fn event_ids(t: &Techniques) -> Vec<&str> {
        t.iter().map(|t| t.id.as_str()).collect()
    }

    fn owned(tables: &[&str]) -> Vec<String> {
        tables.iter().map(|t| t.to_string()).collect()
    }

    fn sockets_first() -> Vec<String> {
        owned(&["process_open_sockets", "processes"])
    }

    #[test]
    fn known_query_maps_by_its_entries_whatever_the_tables() {
        let m = mapper(TABLES);
        for certain in [true, false] {
            let t = m.event_techniques_for(
                Some("tripline-common"),
                "shell_network_connections",
                "pack_tripline-common_shell_network_connections",
                &sockets_first(),
                certain,
            );
            assert_eq!(event_ids(&t), ["T1059.004", "T1095"], "certain: {certain}");
            assert!(t.iter().all(|t| t.url.is_none()), "events carry no URLs");
        }
        // A glob entry knows the query as well as an exact one does.
        let t = m.event_techniques_for(None, "team_sockets_watch", "", &sockets_first(), true);
        assert_eq!(event_ids(&t), ["T1571"]);
        // And without tables it is the existing answer.
        assert_eq!(
            m.event_techniques_for(None, "shell_network_connections", "", &[], false),
            m.event_techniques(None, "shell_network_connections", "")
        );
    }

    #[test]
    fn unknown_query_maps_by_all_tables_from_sql_and_the_first_from_columns() {
        let m = mapper(TABLES);
        let name = "pack/Global/ATT&CK® - Process_Network_Conn";
        let from_sql = m.event_techniques_for(
            Some("Global"),
            "ATT&CK® - Process_Network_Conn",
            name,
            &sockets_first(),
            true,
        );
        assert_eq!(
            event_ids(&from_sql),
            ["T1059", "T1071", "T1095", "T1036.005", "T1070.004"],
            "union in table order, then entry order, deduplicated"
        );
        let from_columns = m.event_techniques_for(
            Some("Global"),
            "ATT&CK® - Process_Network_Conn",
            name,
            &sockets_first(),
            false,
        );
        assert_eq!(event_ids(&from_columns), ["T1059", "T1071", "T1095"]);
        // The first table decides a guess, whichever it is.
        let reversed = owned(&["processes", "process_open_sockets"]);
        assert_eq!(
            event_ids(&m.event_techniques_for(None, "q", "", &reversed, false)),
            ["T1059", "T1036.005", "T1070.004"]
        );
        // An event's own list is passed as it is.
        let tables = crate::tables::Tables::from(sockets_first());
        assert_eq!(
            m.event_techniques_for(None, "q", "", &tables, true),
            from_sql
        );
        // osquery's SQL takes table names in any case.
        assert_eq!(
            m.event_techniques_for(
                None,
                "q",
                "",
                &owned(&["Process_Open_Sockets", "PROCESSES"]),
                true
            ),
            from_sql
        );
    }

    #[test]
    fn unknown_and_inventory_tables_map_to_nothing() {
        let m = mapper(TABLES);
        for certain in [true, false] {
            assert!(m
                .event_techniques_for(None, "q", "", &owned(&["no_such_table"]), certain)
                .is_empty());
            assert!(m
                .event_techniques_for(None, "q", "", &owned(&["cpuid"]), certain)
                .is_empty());
            assert!(m
                .event_techniques_for(None, "q", "", &[], certain)
                .is_empty());
        }
        // An unknown table beside known ones adds nothing, and a guess led by it claims nothing.
        assert_eq!(
            event_ids(&m.event_techniques_for(
                None,
                "q",
                "",
                &owned(&["no_such_table", "processes"]),
                true
            )),
            ["T1059", "T1036.005", "T1070.004"]
        );
        assert!(m
            .event_techniques_for(
                None,
                "q",
                "",
                &owned(&["no_such_table", "processes"]),
                false
            )
            .is_empty());
        assert!(m.table_techniques("no_such_table").is_empty());
        assert!(m.table_techniques("cpuid").is_empty());
        let cpuid = m
            .entries()
            .iter()
            .find(|e| e.pattern == Pattern::Table("cpuid".into()))
            .unwrap();
        assert_eq!(cpuid.note.as_deref(), Some("inventory: CPU features"));
        assert!(
            !m.coverage()
                .values()
                .flatten()
                .any(|e| e.pattern == cpuid.pattern),
            "an empty table entry covers nothing"
        );
    }

    #[test]
    fn table_techniques_merge_entries_and_keep_urls() {
        let m = mapper(TABLES);
        let processes = m.table_techniques("processes");
        assert_eq!(ids(processes), ["T1059", "T1036.005", "T1070.004"]);
        assert!(
            processes.iter().all(|t| t.url.is_some()),
            "reports link them"
        );
        assert_eq!(ids(m.table_techniques("PROCESSES")), ids(processes));
        // Table entries never answer for a query of the same name.
        assert!(m.techniques(None, "processes", "processes").is_empty());
    }

    #[test]
    fn table_lookups_are_cached_and_shared() {
        let m = mapper(TABLES);
        let first = m.event_techniques_for(None, "q", "", &sockets_first(), true);
        let len = m.cache_len();
        let again = m.event_techniques_for(None, "q", "", &sockets_first(), true);
        assert_eq!(again, first);
        assert_eq!(
            again.as_ptr(),
            first.as_ptr(),
            "the second union is served from the cache, not rebuilt"
        );
        assert_eq!(m.cache_len(), len, "a hit adds nothing");
        // The key is the table list, whatever the query: another query over the same tables
        // (an event's shared `Tables` here) is served the same list.
        let tables = crate::tables::Tables::from(sockets_first());
        let other = m.event_techniques_for(None, "q2", "", &tables, true);
        assert_eq!(other.as_ptr(), first.as_ptr());
        // One table needs no union: every event of it shares the list merged at load.
        let a = m.event_techniques_for(None, "q", "", &owned(&["processes"]), true);
        let b = m.event_techniques_for(None, "other", "", &sockets_first()[1..], false);
        assert_eq!(a.as_ptr(), b.as_ptr());
        let reversed = owned(&["processes", "process_open_sockets"]);
        let guessed = m.event_techniques_for(None, "q3", "", &reversed, false);
        assert_eq!(
            guessed.as_ptr(),
            a.as_ptr(),
            "a guess is its first table's list"
        );
    }

    #[test]
    fn table_cache_stays_bounded() {
        let m = mapper(TABLES);
        for i in 0..(MAX_CACHE_ENTRIES + 10) {
            let tables = ["processes".to_string(), format!("t{i}")];
            m.event_techniques_for(None, "q", "", &tables, true);
        }
        assert!(m.cache_len() <= 2 * MAX_CACHE_ENTRIES);
        assert!(read_lock(&m.table_cache).len() <= MAX_CACHE_ENTRIES);
        assert_eq!(
            event_ids(&m.event_techniques_for(None, "q", "", &sockets_first(), true)),
            ["T1059", "T1071", "T1095", "T1036.005", "T1070.004"]
        );
    }

    #[test]
    fn every_table_rules_and_packs_read_and_every_evented_table_is_mapped() {
        let m = Mapper::builtin().unwrap();
        let mapped: BTreeSet<&str> = m
            .entries()
            .iter()
            .filter_map(|e| match &e.pattern {
                Pattern::Table(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        // The query registry is every pack under packs/ (ours and the public ones), read with
        // the SQL parser that gives events their `tables`.
        let registry = crate::tables::registry();
        let packs = registry.pack_names();
        assert!(packs.iter().any(|p| p == "tripline-common"), "{packs:?}");
        assert!(packs.iter().any(|p| p == "osx-attacks"), "{packs:?}");

        let mut missing: Vec<String> = Vec::new();
        for (file, yaml) in crate::rules::builtin::SIGMA_RULES {
            let rule: yaml_serde::Value = yaml_serde::from_str(yaml).unwrap();
            // A rule's service is its main table, or the public pack whose queries it reads;
            // a rule with a `category` instead reads queries of our packs, checked below, or
            // every row (`ioc`: the indicator lists' rule).
            let Some(service) = rule["logsource"]["service"].as_str() else {
                assert!(rule["logsource"]["category"].is_string(), "{file}");
                continue;
            };
            if !mapped.contains(service) && !packs.iter().any(|p| p == service) {
                missing.push(format!("{service} (service of {file})"));
            }
        }
        for def in registry.iter() {
            let tables = def
                .tables
                .as_ref()
                .unwrap_or_else(|e| panic!("{def:?}: {e}"));
            for table in tables {
                if !mapped.contains(table.as_str()) {
                    missing.push(format!("{table} ({})", def.origin));
                }
            }
        }
        // Decorators are no pack's queries, but their rows are logged all the same.
        let conf: serde_json::Value =
            serde_json::from_str(include_str!("../../../packs/osquery.conf")).unwrap();
        for sql in conf["decorators"]["load"].as_array().unwrap() {
            for table in crate::tables::sql::tables_in(sql.as_str().unwrap()).unwrap() {
                if !mapped.contains(table.as_str()) {
                    missing.push(format!("{table} (decorator in packs/osquery.conf)"));
                }
            }
        }
        // Evented tables are what fleets schedule under names of their own (`SELECT * FROM
        // process_events`), so they need an entry whether or not a pack reads them.
        for table in crate::tables::schema().tables() {
            if table.evented && !mapped.contains(table.name.as_str()) {
                missing.push(format!("{} (evented)", table.name));
            }
        }
        missing.sort();
        missing.dedup();
        assert!(
            missing.is_empty(),
            "tables without an entry in rules/mappings/tables.yml: {missing:?}"
        );
    }

    #[test]
    fn builtin_table_entries_are_documented_osquery_tables() {
        let m = Mapper::builtin().unwrap();
        let schema = crate::tables::schema();
        let mut seen = BTreeSet::new();
        let mut count = 0;
        for entry in m.entries() {
            let Pattern::Table(table) = &entry.pattern else {
                continue;
            };
            count += 1;
            assert_eq!(entry.source, "tables.yml", "{table}");
            assert!(seen.insert(table.as_str()), "{table} has two entries");
            let note = entry.note.as_deref().unwrap_or_default();
            assert!(!note.is_empty(), "{table} says nothing about its evidence");
            if entry.techniques.is_empty() {
                assert!(
                    note.starts_with("inventory:") || note.starts_with("generic:"),
                    "{table} maps to nothing without saying why: {note}"
                );
            }
            assert!(
                schema.table(table).is_some()
                    || note.contains("not in osquery 5.23.1")
                    || note.contains("removed"),
                "{table} is not an osquery 5.23.1 table and its note does not say so"
            );
        }
        assert!(count > 100, "{count} table entries");
        // Spot checks of what the table mapping claims.
        for (table, want) in [
            ("crontab", &["T1053.003"][..]),
            ("authorized_keys", &["T1098.004"]),
            ("kernel_modules", &["T1547.006", "T1014"]),
            ("launchd", &["T1543.001", "T1543.004"]),
            ("shell_history", &["T1059.004", "T1552.003", "T1070.003"]),
            ("process_open_sockets", &["T1059", "T1071", "T1095"]),
            ("system_info", &[]),
            ("cpuid", &[]),
        ] {
            assert_eq!(ids(m.table_techniques(table)), want, "{table}");
        }
        // A fleet's own name for a query falls back to its tables; ours keep their mapping.
        let t = m.event_techniques_for(
            Some("Global"),
            "ATT&CK® - Process_Network_Conn",
            "pack/Global/ATT&CK® - Process_Network_Conn",
            &sockets_first(),
            true,
        );
        assert!(
            event_ids(&t).starts_with(&["T1059", "T1071", "T1095"]),
            "{:?}",
            event_ids(&t)
        );
        assert_eq!(
            event_ids(&m.event_techniques_for(
                None,
                "crontab",
                "pack_tripline-common_crontab",
                &owned(&["crontab"]),
                true
            )),
            ["T1053.003"]
        );
    }
}
