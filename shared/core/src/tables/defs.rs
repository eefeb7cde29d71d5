//! Query definitions: which SQL runs under which logged name.
//!
//! Read from the files a fleet is configured with:
//! - **osquery** config and pack files (JSON): `schedule` (logged under its own key), `packs`
//!   inline or by path (logged as `pack<delimiter><pack><delimiter><query>`), and pack files
//!   on their own (`queries`, named by the file's stem). osquery's own conventions are
//!   accepted: `//` and `#` comment lines and a backslash continuing a line.
//! - **Fleet** YAML (`fleetctl get queries --yaml`): `kind: query` documents (logged as
//!   `pack/Global/<name>` or `pack/<team>/<name>`), the older `kind: pack` documents that
//!   name queries, and GitOps files with a `queries:` (or `reports:`) list.
//!
//! Each query's SQL is read with [`super::sql::tables_in`]. SQL the parser cannot read is a
//! warning and that query falls back to column inference; a file that is not one of these
//! formats, or a query without SQL, is an error naming the file and the query.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;
use serde::Deserialize;
use serde_json::Value;

use super::sql::{tables_in, SqlError};

/// Why a query file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DefsError {
    /// The file could not be read.
    #[error("cannot read query definitions {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not JSON or YAML of a known shape.
    #[error("{origin}: {message}")]
    Format {
        /// The file (or other origin).
        origin: String,
        /// What is wrong, with the line where the parser gives one.
        message: String,
    },
    /// One query is malformed.
    #[error("{origin}: query {query:?}: {message}")]
    Query {
        /// The file.
        origin: String,
        /// The query's name.
        query: String,
        /// What is wrong.
        message: String,
    },
}

/// One query: its name, the pack it is scheduled in, its SQL and the tables that reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryDef {
    /// The pack, `None` for a bare schedule entry (logged under its own name).
    pub pack: Option<String>,
    /// The query's name within its pack (or schedule).
    pub name: String,
    /// The SQL, as written.
    pub sql: String,
    /// The tables the SQL reads, or why it could not be parsed.
    pub tables: Result<Vec<String>, SqlError>,
    /// The file it came from.
    pub origin: String,
}

/// A set of query definitions, looked up by the names osquery and Fleet log.
#[derive(Debug, Default, Clone)]
pub struct QueryDefs {
    defs: Vec<QueryDef>,
    /// `(pack, query)` → index.
    by_pack: FxHashMap<(String, String), usize>,
    /// Query name (and, for schedule entries, the logged name) → indices, in load order.
    by_name: FxHashMap<String, Vec<usize>>,
    warnings: Vec<String>,
}

impl QueryDefs {
    /// No definitions.
    pub fn new() -> QueryDefs {
        QueryDefs::default()
    }

    /// Reads one file: osquery JSON (config or pack) or Fleet YAML, told apart by content.
    /// Packs given by path in an osquery config are read relative to the config's folder
    /// when the path as written does not exist (configs name deployed paths such as
    /// `/etc/osquery/packs/x.conf`); one of osquery's own packs that isn't there either is
    /// taken from the built-in registry; any other pack file that can't be found is a
    /// warning.
    pub fn load(path: impl AsRef<Path>) -> Result<QueryDefs, DefsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| DefsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut defs = QueryDefs::new();
        defs.add_text(&text, &path.display().to_string(), Some(path))?;
        Ok(defs)
    }

    /// Reads definitions from text (`origin` names it in errors). `path`, when given, is
    /// where pack paths are resolved from and what names a standalone pack file.
    pub fn add_text(
        &mut self,
        text: &str,
        origin: &str,
        path: Option<&Path>,
    ) -> Result<(), DefsError> {
        if looks_like_json(text) {
            let value = parse_osquery_json(text).map_err(|message| DefsError::Format {
                origin: origin.to_string(),
                message,
            })?;
            self.add_osquery(&value, origin, path)
        } else {
            self.add_fleet_yaml(text, origin, false)
        }
    }

    /// The registry file's definitions (see [`super::registry`]): the tables are already
    /// read, so no SQL is parsed at run time and `sql` is empty.
    pub(crate) fn from_registry_tsv(tsv: &str) -> QueryDefs {
        let mut defs = QueryDefs::new();
        for line in tsv.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let mut cols = line.split('\t');
            let (Some(pack), Some(name), Some(tables), Some(origin)) =
                (cols.next(), cols.next(), cols.next(), cols.next())
            else {
                continue;
            };
            defs.push(QueryDef {
                pack: (!pack.is_empty()).then(|| pack.to_string()),
                name: name.to_string(),
                sql: String::new(),
                tables: Ok(tables
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect()),
                origin: origin.to_string(),
            });
        }
        defs
    }

    /// The definitions as registry lines (see [`QueryDefs::from_registry_tsv`]); a query
    /// whose SQL could not be read is left out (it falls back to column inference).
    #[cfg(test)]
    pub(crate) fn to_registry_tsv(&self) -> String {
        let mut out = String::from(
            "# Generated from packs/ by `UPDATE_REGISTRY=1 cargo test -p tripline-core registry`; do not edit.\n\
             # pack\tquery\ttables (as its SQL reads them)\tfile under packs/\n",
        );
        for def in &self.defs {
            if let Ok(tables) = &def.tables {
                use std::fmt::Write as _;
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\t{}",
                    def.pack.as_deref().unwrap_or(""),
                    def.name,
                    tables.join(","),
                    def.origin
                );
            }
        }
        out
    }

    /// Adds one registry source file: a pack file (`.conf`, named by its stem) or Fleet
    /// YAML. An osquery config among them (one without `queries`) only names packs that
    /// are embedded on their own, so it adds nothing.
    #[cfg(test)]
    pub(crate) fn add_registry_file(&mut self, path: &str, text: &str) -> Result<(), DefsError> {
        if !looks_like_json(text) {
            return self.add_fleet_yaml(text, path, true);
        }
        let value = parse_osquery_json(text).map_err(|message| format_error(path, &message))?;
        let Some(queries_of) = value.get("queries") else {
            return Ok(());
        };
        let pack = Path::new(path).file_stem().and_then(|s| s.to_str());
        self.define_all(pack, queries_of, path, "queries")?;
        Ok(())
    }

    /// Adds every definition of `other` (later definitions of the same pack and name win).
    pub fn extend(&mut self, other: QueryDefs) {
        for def in other.defs {
            self.push(def);
        }
        self.warnings.extend(other.warnings);
    }

    /// Every definition, in load order.
    pub fn iter(&self) -> impl Iterator<Item = &QueryDef> {
        self.defs.iter()
    }

    /// How many definitions there are.
    pub fn len(&self) -> usize {
        self.defs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// Problems that did not stop loading: SQL that could not be parsed, pack files not
    /// found. Each names the file and the query.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The pack names defined, so that `pack_<pack>_<query>` splits for them.
    pub fn pack_names(&self) -> Vec<String> {
        let packs: BTreeSet<&str> = self.defs.iter().filter_map(|d| d.pack.as_deref()).collect();
        packs.into_iter().map(str::to_string).collect()
    }

    /// The definition of `query` in `pack`, exactly.
    pub fn in_pack(&self, pack: &str, query: &str) -> Option<&QueryDef> {
        self.by_pack
            .get(&(pack.to_string(), query.to_string()))
            .map(|&i| &self.defs[i])
    }

    /// The definitions an event's names point to: its `(pack, query)` first, then its full
    /// logged name, then its query name alone (Fleet logs every query under a team or
    /// `Global` pack that no definition names). Several definitions of one name are all
    /// returned.
    pub fn lookup(&self, pack: Option<&str>, query: &str, name: &str) -> Vec<&QueryDef> {
        if let Some(def) = pack.and_then(|pack| self.in_pack(pack, query)) {
            return vec![def];
        }
        for key in [name, query] {
            if let Some(found) = self.by_name.get(key) {
                return found.iter().map(|&i| &self.defs[i]).collect();
            }
        }
        Vec::new()
    }

    fn push(&mut self, def: QueryDef) {
        let index = match &def.pack {
            Some(pack) => {
                let key = (pack.clone(), def.name.clone());
                match self.by_pack.get(&key) {
                    Some(&i) => {
                        self.defs[i] = def;
                        return;
                    }
                    None => {
                        self.by_pack.insert(key, self.defs.len());
                        self.defs.len()
                    }
                }
            }
            None => self.defs.len(),
        };
        self.by_name
            .entry(def.name.clone())
            .or_default()
            .push(index);
        if let Err(e) = &def.tables {
            self.warnings.push(format!(
                "{}: query {:?}: {e}; its rows fall back to column inference",
                def.origin, def.name
            ));
        }
        self.defs.push(def);
    }

    /// Adds one query (`pack: None` for a schedule entry), reading its SQL's tables.
    pub fn define(&mut self, pack: Option<&str>, name: &str, sql: &str, origin: &str) {
        self.push(QueryDef {
            pack: pack.map(str::to_string),
            name: name.to_string(),
            sql: sql.to_string(),
            tables: tables_in(sql),
            origin: origin.to_string(),
        });
    }

    /// Defines every query of an osquery `schedule` or pack `queries` object (`within`
    /// names it in errors) in `pack`.
    fn define_all(
        &mut self,
        pack: Option<&str>,
        value: &Value,
        origin: &str,
        within: &str,
    ) -> Result<(), DefsError> {
        for (name, sql) in queries(value, origin, within)? {
            self.define(pack, &name, &sql, origin);
        }
        Ok(())
    }

    fn add_osquery(
        &mut self,
        value: &Value,
        origin: &str,
        path: Option<&Path>,
    ) -> Result<(), DefsError> {
        let Value::Object(root) = value else {
            return Err(format_error(
                origin,
                "expected a JSON object (an osquery config or pack)",
            ));
        };
        let mut found = false;
        if let Some(schedule) = root.get("schedule") {
            found = true;
            self.define_all(None, schedule, origin, "schedule")?;
        }
        if let Some(packs) = root.get("packs") {
            found = true;
            let Value::Object(packs) = packs else {
                return Err(format_error(
                    origin,
                    "\"packs\" is not an object of pack name to pack",
                ));
            };
            for (pack, body) in packs {
                match body {
                    Value::String(file) => self.add_pack_file(pack, file, origin, path)?,
                    Value::Object(_) => {
                        let queries_of = body.get("queries").ok_or_else(|| {
                            format_error(origin, &format!("pack {pack:?} has no \"queries\""))
                        })?;
                        self.define_all(Some(pack), queries_of, origin, pack)?;
                    }
                    _ => {
                        return Err(format_error(
                            origin,
                            &format!("pack {pack:?} is neither a path nor an inline pack"),
                        ))
                    }
                }
            }
        }
        if let Some(queries_of) = root.get("queries") {
            // A pack file on its own: osquery names the pack where a config refers to it,
            // and by convention that is the file's stem.
            found = true;
            let stem = path
                .and_then(|p| p.file_stem())
                .and_then(|s| s.to_str())
                .map(str::to_string);
            self.define_all(stem.as_deref(), queries_of, origin, "queries")?;
        }
        if !found {
            return Err(format_error(
                origin,
                "no \"schedule\", \"packs\" or \"queries\": not an osquery config or pack",
            ));
        }
        Ok(())
    }

    fn add_pack_file(
        &mut self,
        pack: &str,
        file: &str,
        origin: &str,
        config: Option<&Path>,
    ) -> Result<(), DefsError> {
        let written = Path::new(file);
        let dir = config.and_then(Path::parent).unwrap_or(Path::new("."));
        let candidates = [
            written.to_path_buf(),
            dir.join(written),
            dir.join(written.file_name().unwrap_or_default()),
        ];
        let Some(found) = candidates.iter().find(|p| p.is_file()) else {
            // osquery's own packs ship with osquery (`/opt/osquery/share/osquery/packs`):
            // the embedded copies stand in for them.
            let public: Vec<QueryDef> = super::registry()
                .iter()
                .filter(|d| d.pack.as_deref() == Some(pack))
                .cloned()
                .collect();
            if !public.is_empty() {
                public.into_iter().for_each(|d| self.push(d));
                return Ok(());
            }
            self.warnings.push(format!(
                "{origin}: pack {pack:?}: file {file} not found (looked beside the config too); \
                 its queries fall back to column inference"
            ));
            return Ok(());
        };
        let text = std::fs::read_to_string(found).map_err(|source| DefsError::Io {
            path: found.clone(),
            source,
        })?;
        let pack_origin = found.display().to_string();
        let value = parse_osquery_json(&text).map_err(|message| DefsError::Format {
            origin: pack_origin.clone(),
            message,
        })?;
        let queries_of = value
            .get("queries")
            .ok_or_else(|| format_error(&pack_origin, "a pack file needs a \"queries\" object"))?;
        self.define_all(Some(pack), queries_of, &pack_origin, pack)?;
        Ok(())
    }

    /// Fleet YAML, document by document (split at `---` lines, so that an error names its
    /// document and line). `lenient` skips documents that are not valid YAML, for the
    /// embedded library, one of whose documents is invalid upstream.
    fn add_fleet_yaml(&mut self, text: &str, origin: &str, lenient: bool) -> Result<(), DefsError> {
        let mut found = false;
        for (index, (first_line, document)) in yaml_documents(text).into_iter().enumerate() {
            let doc = match yaml_serde::from_str::<yaml_serde::Value>(document) {
                Ok(doc) => doc,
                Err(_) if lenient => continue,
                Err(e) => {
                    return Err(format_error(
                        origin,
                        &format!("document {} (from line {first_line}): {e}", index + 1),
                    ))
                }
            };
            if let Some(kind) = doc.get("kind").and_then(yaml_serde::Value::as_str) {
                found = true;
                let spec = doc.get("spec").cloned().ok_or_else(|| {
                    format_error(
                        origin,
                        &format!("document {}: `kind: {kind}` without `spec`", index + 1),
                    )
                })?;
                match kind {
                    "query" => {
                        let spec: FleetQuery = from_spec(spec, origin, index)?;
                        let sql = spec.sql(origin)?;
                        self.define(None, &spec.name, sql, origin);
                    }
                    "pack" => {
                        let spec: FleetPack = from_spec(spec, origin, index)?;
                        self.add_fleet_pack(spec, origin);
                    }
                    // Policies, labels and the rest log no query results.
                    _ => {}
                }
                continue;
            }
            // GitOps files list queries (renamed reports in newer Fleet) under a key.
            for key in ["queries", "reports"] {
                if let Some(list) = doc.get(key) {
                    found = true;
                    let specs: Vec<FleetQuery> = from_spec(list.clone(), origin, index)?;
                    for spec in specs {
                        let sql = spec.sql(origin)?;
                        self.define(None, &spec.name, sql, origin);
                    }
                }
            }
        }
        if !found {
            return Err(format_error(
                origin,
                "not an osquery config (JSON) or Fleet YAML (`kind: query` documents or a `queries:` list)",
            ));
        }
        Ok(())
    }

    /// An old Fleet pack names queries defined elsewhere (`query:`), each logged under its
    /// own `name:` within the pack.
    fn add_fleet_pack(&mut self, pack: FleetPack, origin: &str) {
        for entry in pack.queries {
            let logged = entry.name.clone().unwrap_or_else(|| entry.query.clone());
            let sql = self
                .lookup(None, &entry.query, &entry.query)
                .first()
                .map(|d| d.sql.clone());
            match sql {
                Some(sql) => self.define(Some(&pack.name), &logged, &sql, origin),
                None => self.warnings.push(format!(
                    "{origin}: pack {:?}: query {:?} is not defined in this file; \
                     its rows fall back to column inference",
                    pack.name, entry.query
                )),
            }
        }
    }
}

impl fmt::Display for QueryDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pack {
            Some(pack) => write!(f, "{pack}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

fn format_error(origin: &str, message: &str) -> DefsError {
    DefsError::Format {
        origin: origin.to_string(),
        message: message.to_string(),
    }
}

/// The YAML documents of a stream, each with the line it starts on (1-based).
fn yaml_documents(text: &str) -> Vec<(usize, &str)> {
    let mut docs = Vec::new();
    let (mut start, mut start_line, mut offset) = (0, 1, 0);
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let marker = line.trim_end();
        if marker == "---" || marker.starts_with("--- ") {
            docs.push((start_line, &text[start..offset]));
            start = offset + line.len();
            start_line = n + 2;
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start..]));
    docs.retain(|(_, doc)| !doc.trim().is_empty());
    docs
}

fn looks_like_json(text: &str) -> bool {
    text.lines()
        .map(str::trim_start)
        .find(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with('#'))
        .is_some_and(|l| l.starts_with('{'))
}

/// osquery's JSON: whole-line `//` and `#` comments, and a backslash at the end of a line
/// inside a string continuing it on the next (osquery's packs write long queries so).
fn parse_osquery_json(text: &str) -> Result<Value, String> {
    let mut clean = String::with_capacity(text.len());
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") || trimmed.starts_with('#') {
            clean.push('\n'); // keep line numbers for error messages
            continue;
        }
        let body = line.trim_end_matches(['\n', '\r']);
        let backslashes = body.len() - body.trim_end_matches('\\').len();
        if backslashes % 2 == 1 && lines.peek().is_some() {
            clean.push_str(&body[..body.len() - 1]);
            continue;
        }
        clean.push_str(line);
    }
    serde_json::from_str(&clean).map_err(|e| format!("invalid JSON: {e}"))
}

/// The `name → SQL` pairs of an osquery `schedule` or pack `queries` object.
fn queries(value: &Value, origin: &str, within: &str) -> Result<Vec<(String, String)>, DefsError> {
    let Value::Object(map) = value else {
        return Err(format_error(
            origin,
            &format!("{within}: expected an object of queries"),
        ));
    };
    map.iter()
        .map(|(name, q)| {
            let sql = q
                .get("query")
                .and_then(Value::as_str)
                .ok_or_else(|| DefsError::Query {
                    origin: origin.to_string(),
                    query: name.clone(),
                    message: "no \"query\" string".to_string(),
                })?;
            Ok((name.clone(), sql.to_string()))
        })
        .collect()
}

#[derive(Deserialize)]
struct FleetQuery {
    name: String,
    #[serde(default)]
    query: Option<String>,
}

impl FleetQuery {
    fn sql(&self, origin: &str) -> Result<&str, DefsError> {
        self.query.as_deref().ok_or_else(|| DefsError::Query {
            origin: origin.to_string(),
            query: self.name.clone(),
            message: "no `query`".to_string(),
        })
    }
}

#[derive(Deserialize)]
struct FleetPack {
    name: String,
    #[serde(default)]
    queries: Vec<FleetPackEntry>,
}

#[derive(Deserialize)]
struct FleetPackEntry {
    query: String,
    #[serde(default)]
    name: Option<String>,
}

fn from_spec<T: for<'de> Deserialize<'de>>(
    spec: yaml_serde::Value,
    origin: &str,
    index: usize,
) -> Result<T, DefsError> {
    yaml_serde::from_value(spec)
        .map_err(|e| format_error(origin, &format!("document {}: {e}", index + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> QueryDefs {
        let mut defs = QueryDefs::new();
        defs.add_text(text, "test.conf", None).unwrap();
        defs
    }

    fn tables(defs: &QueryDefs, pack: Option<&str>, query: &str, name: &str) -> Vec<String> {
        defs.lookup(pack, query, name)[0].tables.clone().unwrap()
    }

    #[test]
    fn osquery_schedule_and_inline_packs() {
        let defs = parse(
            r#"{
              // osquery accepts comment lines
              "schedule": {
                "procs_with_sockets": {"query": "SELECT p.name FROM processes p JOIN process_open_sockets s USING (pid)", "interval": 60}
              },
              "packs": {
                "it_ops": {"queries": {"cron": {"query": "select * from \
                   crontab;", "interval": "3600"}}}
              }
            }"#,
        );
        assert_eq!(defs.len(), 2);
        assert_eq!(
            tables(&defs, None, "procs_with_sockets", "procs_with_sockets"),
            ["processes", "process_open_sockets"]
        );
        assert_eq!(
            tables(&defs, Some("it_ops"), "cron", "pack_it_ops_cron"),
            ["crontab"]
        );
        assert_eq!(defs.pack_names(), ["it_ops"]);
        assert!(defs.warnings().is_empty());
    }

    #[test]
    fn fleet_yaml_queries_packs_and_gitops() {
        let defs = parse(
            "apiVersion: v1\nkind: query\nspec:\n  name: ATT&CK® - Process_Network_Conn\n  query: \
             SELECT * FROM process_open_sockets\n---\napiVersion: v1\nkind: pack\nspec:\n  name: ir\n  \
             queries:\n    - query: ATT&CK® - Process_Network_Conn\n      name: conns\n---\n\
             kind: policy\nspec:\n  name: p\n  query: SELECT 1 FROM os_version\n",
        );
        // Fleet logs `pack/Global/<name>`: found by the query name alone.
        assert_eq!(
            tables(
                &defs,
                Some("Global"),
                "ATT&CK® - Process_Network_Conn",
                "pack/Global/ATT&CK® - Process_Network_Conn"
            ),
            ["process_open_sockets"]
        );
        assert_eq!(
            tables(&defs, Some("ir"), "conns", "pack/ir/conns"),
            ["process_open_sockets"]
        );
        let gitops = parse(
            "queries:\n  - name: usb\n    query: SELECT * FROM usb_devices\n    interval: 300\n",
        );
        assert_eq!(
            tables(&gitops, Some("Global"), "usb", "pack/Global/usb"),
            ["usb_devices"]
        );
    }

    #[test]
    fn unreadable_sql_is_a_warning_naming_the_query() {
        let defs = parse(r#"{"schedule": {"weird": {"query": "SELEKT nonsense"}}}"#);
        assert_eq!(defs.len(), 1);
        assert!(defs.lookup(None, "weird", "weird")[0].tables.is_err());
        assert!(
            defs.warnings()[0].contains("test.conf: query \"weird\""),
            "{:?}",
            defs.warnings()
        );
    }

    #[test]
    fn malformed_files_are_errors_naming_file_and_query() {
        let mut defs = QueryDefs::new();
        let e = defs
            .add_text(
                r#"{"schedule": {"q1": {"interval": 5}}}"#,
                "site.conf",
                None,
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("site.conf") && e.contains("\"q1\""), "{e}");
        let e = defs
            .add_text("{\"schedule\": {", "cut.conf", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cut.conf") && e.contains("invalid JSON"), "{e}");
        let e = defs
            .add_text("just: words\n", "x.yml", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.yml"), "{e}");
        let e = defs
            .add_text("kind: query\nspec:\n  name: nosql\n", "q.yml", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("q.yml") && e.contains("nosql"), "{e}");
    }

    #[test]
    fn packs_by_path_are_found_beside_the_config() {
        let dir = std::env::temp_dir().join(format!("tripline-defs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("mine.conf"),
            r#"{"queries": {"keys": {"query": "select * from authorized_keys"}}}"#,
        )
        .unwrap();
        let config = dir.join("osquery.conf");
        std::fs::write(
            &config,
            r#"{"packs": {"mine": "/etc/osquery/packs/mine.conf", "gone": "/nowhere/gone.conf",
                "osx-attacks": "/opt/osquery/share/osquery/packs/osx-attacks.conf"}}"#,
        )
        .unwrap();
        let defs = QueryDefs::load(&config).unwrap();
        assert_eq!(
            tables(&defs, Some("mine"), "keys", "pack_mine_keys"),
            ["authorized_keys"]
        );
        assert!(
            defs.warnings().iter().any(|w| w.contains("\"gone\"")),
            "{:?}",
            defs.warnings()
        );
        // osquery's own pack, not beside the config: the embedded copy.
        assert_eq!(
            tables(
                &defs,
                Some("osx-attacks"),
                "WireLurker",
                "pack_osx-attacks_WireLurker"
            ),
            ["launchd"]
        );
        assert_eq!(defs.warnings().len(), 1, "{:?}", defs.warnings());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
