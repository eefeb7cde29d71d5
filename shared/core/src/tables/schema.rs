//! osquery's table schema (5.23.1, embedded) and the inference of a row's tables from its
//! column names.
//!
//! A result row says which query produced it, not which table. When the query is unknown,
//! its column names still tell: `remote_address`, `remote_port` and `fd` come from
//! `process_open_sockets`, `command`, `minute` and `hour` from `crontab`. The inference takes
//! the smallest set of tables whose columns explain the row's column names, preferring sets
//! that run on the event's platform. When several sets explain the row equally well, all of
//! them are kept and the answer is marked ambiguous: a guess is never presented as certain.

use std::sync::OnceLock;

use rustc_hash::FxHashMap;
use serde::Deserialize;

use crate::platform::Platform;

/// The embedded schema (osquery/osquery-site, CC BY 4.0; see `data/osquery/NOTICE.md`).
const SCHEMA_JSON: &str = include_str!("../../data/osquery/schema-5.23.1.json");

/// Tables in the largest set the inference considers. Rows are rarely joined from more
/// tables than this, and each extra table multiplies the search.
const MAX_TABLES: usize = 3;

/// Equally good sets beyond which the row's columns say too little (a row of `name` and
/// `path` alone fits dozens of tables): only the tables all of them share are kept, and
/// when they share none the tables are unknown, not a long guess.
const MAX_ALTERNATIVES: usize = 4;

/// Sets the search collects before the platform preference narrows them, so that a row
/// with a few platform-specific fits among many others is still decided.
const SEARCH_CAP: usize = 64;

/// One osquery table as the schema describes it.
#[derive(Debug)]
pub struct Table {
    /// The table's name, lower case.
    pub name: String,
    /// Platforms the table exists on, as [`Platform`] bits.
    platforms: u8,
    /// An evented table (`*_events`), whose rows are buffered events.
    pub evented: bool,
    /// Column ids, sorted.
    columns: Vec<u16>,
}

impl Table {
    /// Whether the table exists on `platform`.
    pub fn runs_on(&self, platform: Platform) -> bool {
        self.platforms & bit(platform) != 0
    }
}

fn bit(platform: Platform) -> u8 {
    match platform {
        Platform::Darwin => 1,
        Platform::Linux => 2,
        Platform::Windows => 4,
    }
}

/// osquery's tables and, for each column name, the tables that have it.
#[derive(Debug)]
pub struct Schema {
    /// Sorted by name.
    tables: Vec<Table>,
    /// Column name → id.
    column_ids: FxHashMap<String, u16>,
    /// Column id → name.
    column_names: Vec<String>,
    /// Column id → the tables (indices into `tables`) that have the column.
    postings: Vec<Vec<u16>>,
}

/// The tables a row's column names point to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inference {
    /// The union of every equally good set, the table that explains the row best first.
    pub tables: Vec<String>,
    /// How many equally good sets there were (1 when the answer is unique).
    pub alternatives: usize,
}

/// The embedded osquery schema, parsed on first use.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::parse(SCHEMA_JSON).expect("the embedded schema parses"))
}

#[derive(Deserialize)]
struct RawTable {
    name: String,
    platforms: Vec<String>,
    evented: bool,
    columns: Vec<RawColumn>,
}

#[derive(Deserialize)]
struct RawColumn {
    name: String,
}

impl Schema {
    /// Parses osquery-site's schema JSON (a list of tables with `name`, `platforms`,
    /// `evented` and `columns`).
    pub fn parse(json: &str) -> Result<Schema, serde_json::Error> {
        let mut raw: Vec<RawTable> = serde_json::from_str(json)?;
        raw.sort_by(|a, b| a.name.cmp(&b.name));
        let mut column_ids: FxHashMap<String, u16> = FxHashMap::default();
        let mut postings: Vec<Vec<u16>> = Vec::new();
        let mut column_names: Vec<String> = Vec::new();
        let mut tables = Vec::with_capacity(raw.len());
        for (index, t) in raw.into_iter().enumerate() {
            let mut columns: Vec<u16> = t
                .columns
                .into_iter()
                .map(|c| {
                    let next = column_ids.len() as u16;
                    let id = *column_ids.entry(c.name.clone()).or_insert(next);
                    if id as usize == postings.len() {
                        postings.push(Vec::new());
                        column_names.push(c.name);
                    }
                    id
                })
                .collect();
            columns.sort_unstable();
            columns.dedup();
            for &c in &columns {
                postings[c as usize].push(index as u16);
            }
            let platforms = t
                .platforms
                .iter()
                .filter_map(|p| crate::platform::platform_from_name(p))
                .fold(0, |bits, p| bits | bit(p));
            tables.push(Table {
                name: t.name.to_ascii_lowercase(),
                platforms,
                evented: t.evented,
                columns,
            });
        }
        Ok(Schema {
            tables,
            column_ids,
            column_names,
            postings,
        })
    }

    /// The table called `name` (lower case).
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.index(name).map(|i| &self.tables[i])
    }

    /// Every table, sorted by name.
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    /// The names of `table`'s columns.
    pub fn columns<'s>(&'s self, table: &'s Table) -> impl Iterator<Item = &'s str> + 's {
        table
            .columns
            .iter()
            .map(|&c| self.column_names[c as usize].as_str())
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.tables
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
    }

    fn has(&self, table: u16, column: u16) -> bool {
        self.tables[table as usize]
            .columns
            .binary_search(&column)
            .is_ok()
    }

    /// The known column ids among `columns`, and how many names the schema does not know
    /// (aliases and computed columns).
    fn known(&self, columns: &[&str]) -> (Vec<u16>, usize) {
        let mut ids: Vec<u16> = columns
            .iter()
            .filter_map(|c| self.column_ids.get(*c).copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let unknown = columns.len() - ids.len();
        (ids, unknown)
    }

    /// How well `table` explains the columns: each column it has counts more the fewer
    /// tables have it (`remote_port` says more than `path`).
    fn weight(&self, table: u16, ids: &[u16]) -> f64 {
        ids.iter()
            .filter(|&&c| self.has(table, c))
            .map(|&c| 1.0 / self.postings[c as usize].len() as f64)
            .sum()
    }

    /// Infers the tables a row with these column names came from. `None` when the names
    /// say too little: no column is osquery's, most are not, no set of up to three tables
    /// has them all, or too many sets fit equally and no table is in all of them (when one
    /// is, only the tables every set has are given).
    pub fn infer(&self, columns: &[&str], platform: Option<Platform>) -> Option<Inference> {
        let (ids, unknown) = self.known(columns);
        // A row mostly of aliases (`SELECT p.name AS process, ...`) is not the schema's.
        if ids.is_empty() || unknown > ids.len() {
            return None;
        }
        let mut sets: Vec<Vec<u16>> = Vec::new();
        for size in 1..=MAX_TABLES {
            self.cover(&ids, &mut Vec::new(), size, &mut sets);
            if !sets.is_empty() {
                break;
            }
        }
        if sets.is_empty() {
            return None;
        }
        if let Some(p) = platform {
            let runs = |set: &Vec<u16>| set.iter().all(|&t| self.tables[t as usize].runs_on(p));
            if sets.iter().any(runs) {
                sets.retain(runs);
            }
        }
        let mut kept: Vec<u16> = sets.iter().flatten().copied().collect();
        kept.sort_unstable();
        kept.dedup();
        if sets.len() > MAX_ALTERNATIVES {
            // Too many fits to list, but the tables every one of them has are certain:
            // `username` with authorized_keys' columns is authorized_keys joined with one of
            // the seven tables that have `username` (users, in osquery's own idiom).
            // (Only over a complete search: a cut-off one saw some of the sets.)
            kept.retain(|t| sets.len() <= SEARCH_CAP && sets.iter().all(|set| set.contains(t)));
            if kept.is_empty() {
                // No table in all of them: the few tables that have the row's rarest column
                // are where it came from (`remote_port` beside a process's `name` and
                // `cmdline`: one of the socket tables, whichever table gave the rest).
                let rarest = self.rarest(&ids);
                kept = self.postings[rarest as usize].clone();
                if kept.len() > MAX_ALTERNATIVES {
                    return None;
                }
            }
        }
        let mut ranked: Vec<(f64, u16)> = kept.iter().map(|&t| (self.weight(t, &ids), t)).collect();
        // Equal weights: a table a scheduled query reads directly before an evented one.
        ranked.sort_by(|a, b| {
            let evented = |t: u16| self.tables[t as usize].evented;
            b.0.total_cmp(&a.0)
                .then(evented(a.1).cmp(&evented(b.1)))
                .then_with(|| {
                    self.tables[a.1 as usize]
                        .name
                        .cmp(&self.tables[b.1 as usize].name)
                })
        });
        Some(Inference {
            tables: ranked
                .into_iter()
                .map(|(_, t)| self.tables[t as usize].name.clone())
                .collect(),
            alternatives: sets.len(),
        })
    }

    /// Every set of `size` tables (added to `chosen`) that has all of `remaining`, into
    /// `out` (deduplicated, at most [`SEARCH_CAP`] + 1 of them). Branches on the column the
    /// fewest tables have, so rare columns prune the search early.
    fn cover(
        &self,
        remaining: &[u16],
        chosen: &mut Vec<u16>,
        size: usize,
        out: &mut Vec<Vec<u16>>,
    ) {
        if remaining.is_empty() {
            let mut set = chosen.clone();
            set.sort_unstable();
            if !out.contains(&set) {
                out.push(set);
            }
            return;
        }
        if chosen.len() == size || out.len() > SEARCH_CAP {
            return;
        }
        let rarest = self.rarest(remaining);
        for &table in &self.postings[rarest as usize] {
            if chosen.contains(&table) {
                continue;
            }
            let rest: Vec<u16> = remaining
                .iter()
                .copied()
                .filter(|&c| !self.has(table, c))
                .collect();
            chosen.push(table);
            self.cover(&rest, chosen, size, out);
            chosen.pop();
            if out.len() > SEARCH_CAP {
                return;
            }
        }
    }

    /// The column (of a non-empty list) the fewest tables have.
    fn rarest(&self, columns: &[u16]) -> u16 {
        columns
            .iter()
            .copied()
            .min_by_key(|&c| self.postings[c as usize].len())
            .expect("a non-empty list of columns")
    }

    /// Orders `tables` (named in a query's SQL) so that the one that best explains the
    /// row's columns comes first; ties keep the SQL's order.
    pub fn order_by_explanation(&self, tables: &mut [String], columns: &[&str]) {
        let (ids, _) = self.known(columns);
        if ids.is_empty() || tables.len() < 2 {
            return;
        }
        let weight = |name: &str| {
            self.index(name)
                .map_or(0.0, |t| self.weight(t as u16, &ids))
        };
        // A stable sort, so equal weights keep the SQL's order.
        let mut keyed: Vec<(f64, String)> = tables
            .iter_mut()
            .map(|t| (weight(t), std::mem::take(t)))
            .collect();
        keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (slot, (_, name)) in tables.iter_mut().zip(keyed) {
            *slot = name;
        }
    }

    /// The share of the row's columns that the schema knows which `tables` have: how well a
    /// query's tables (found by its name) explain the row. Tables or columns the schema
    /// does not know (extension tables, aliases) give no evidence either way: `1.0`.
    pub fn explained(&self, tables: &[String], columns: &[&str]) -> f64 {
        let (ids, _) = self.known(columns);
        let known: Vec<u16> = tables
            .iter()
            .filter_map(|t| self.index(t))
            .map(|t| t as u16)
            .collect();
        if ids.is_empty() || known.is_empty() {
            return 1.0;
        }
        let explained = ids
            .iter()
            .filter(|&&c| known.iter().any(|&t| self.has(t, c)))
            .count();
        explained as f64 / ids.len() as f64
    }

    /// Whether `tables` plausibly produced a row with these columns: they have at least half
    /// of the row's columns that the schema knows. A public query's name reused for other
    /// SQL fails this, and its row is then inferred from its columns instead.
    pub fn consistent(&self, tables: &[String], columns: &[&str]) -> bool {
        self.explained(tables, columns) >= 0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(cols: &[&str], platform: Option<Platform>) -> Option<Inference> {
        schema().infer(cols, platform)
    }

    #[test]
    fn the_embedded_schema_has_every_table() {
        let s = schema();
        assert_eq!(s.tables().len(), 286);
        let pos = s.table("process_open_sockets").unwrap();
        assert!(pos.runs_on(Platform::Linux) && pos.runs_on(Platform::Windows));
        assert!(s.columns(pos).any(|c| c == "remote_port"));
        assert!(s.table("socket_events").unwrap().evented);
        assert!(s.table("no_such_table").is_none());
    }

    #[test]
    fn select_star_rows_name_their_table() {
        let crontab = [
            "command",
            "day_of_month",
            "day_of_week",
            "event",
            "hour",
            "minute",
            "month",
            "path",
        ];
        assert_eq!(
            infer(&crontab, None),
            Some(Inference {
                tables: vec!["crontab".into()],
                alternatives: 1
            })
        );
        let keys = ["uid", "algorithm", "key", "key_file", "comment", "options"];
        assert_eq!(infer(&keys, None).unwrap().tables, ["authorized_keys"]);
    }

    #[test]
    fn a_join_is_explained_by_two_tables_the_distinctive_one_first() {
        // The Fleet article's Process_Network_Conn columns.
        let cols = [
            "name",
            "path",
            "cmdline",
            "pid",
            "protocol",
            "local_address",
            "local_port",
            "remote_address",
            "remote_port",
            "fd",
            "socket",
            "family",
        ];
        let got = infer(&cols, Some(Platform::Linux)).unwrap();
        assert_eq!(got.tables[0], "process_open_sockets", "{got:?}");
        assert!(got.tables.contains(&"processes".to_string()), "{got:?}");
    }

    #[test]
    fn equally_good_sets_are_all_kept_and_counted() {
        // `remote_address`, `remote_port`, `pid` and `path` are in process_open_sockets,
        // socket_events and bpf_socket_events alike.
        let got = infer(&["pid", "path", "remote_address", "remote_port"], None).unwrap();
        assert!(got.alternatives > 1, "{got:?}");
        assert!(got.tables.contains(&"process_open_sockets".to_string()));
        assert!(got.tables.contains(&"socket_events".to_string()));
    }

    #[test]
    fn too_many_fits_keep_the_tables_they_all_share() {
        // `SELECT username, authorized_keys.* FROM users CROSS JOIN authorized_keys`:
        // `username` is in users, last, shadow, startup_items, ... on Linux.
        let cols = [
            "username",
            "uid",
            "algorithm",
            "key",
            "options",
            "comment",
            "key_file",
        ];
        for platform in [None, Some(Platform::Linux)] {
            let got = infer(&cols, platform).unwrap();
            assert_eq!(got.tables, ["authorized_keys"], "{platform:?}");
            assert!(got.alternatives > MAX_ALTERNATIVES, "{got:?}");
        }
        // Single-table fits share nothing.
        assert_eq!(infer(&["name", "path"], None), None);
    }

    #[test]
    fn too_many_fits_sharing_nothing_fall_back_to_the_rarest_columns_tables() {
        // The Fleet article's Process_Network_Conn: processes' name and cmdline with a
        // socket's addresses, without fd or socket.
        let cols = [
            "name",
            "path",
            "cmdline",
            "pid",
            "family",
            "protocol",
            "local_address",
            "local_port",
            "remote_address",
            "remote_port",
        ];
        for platform in [None, Some(Platform::Linux), Some(Platform::Darwin)] {
            let got = infer(&cols, platform).unwrap();
            assert_eq!(
                got.tables[0], "process_open_sockets",
                "{platform:?}: {got:?}"
            );
            assert!(got.tables.contains(&"socket_events".to_string()), "{got:?}");
            assert!(got.alternatives > 1);
        }
        // osquery-attck's narrow list.
        let got = infer(&["name", "path", "remote_address", "remote_port"], None).unwrap();
        assert!(
            got.tables.contains(&"process_open_sockets".to_string()),
            "{got:?}"
        );
    }

    #[test]
    fn the_platform_narrows_equal_fits() {
        // `name`, `path`, `state` with `service_type` are Windows services or macOS/linux
        // units; the platform picks.
        let cols = [
            "name",
            "display_name",
            "status",
            "start_type",
            "path",
            "service_type",
        ];
        let got = infer(&cols, Some(Platform::Windows)).unwrap();
        assert_eq!(got.tables, ["services"]);
    }

    #[test]
    fn rows_that_say_too_little_are_unknown() {
        assert_eq!(infer(&[], None), None);
        assert_eq!(infer(&["my_alias", "other_alias"], None), None);
        assert_eq!(
            infer(&["name", "path"], None),
            None,
            "fits dozens of tables"
        );
        assert_eq!(infer(&["name", "alias_a", "alias_b"], None), None);
    }

    #[test]
    fn sql_tables_are_ordered_by_what_explains_the_row() {
        let mut tables = vec!["processes".to_string(), "process_open_sockets".to_string()];
        schema().order_by_explanation(&mut tables, &["pid", "remote_address", "remote_port"]);
        assert_eq!(tables, ["process_open_sockets", "processes"]);
        // Ties keep the SQL order.
        let mut tables = vec!["users".to_string(), "groups".to_string()];
        schema().order_by_explanation(&mut tables, &["my_alias"]);
        assert_eq!(tables, ["users", "groups"]);
    }

    #[test]
    fn consistency_of_a_name_with_its_row() {
        let s = schema();
        assert!(s.consistent(&["crontab".into()], &["command", "minute"]));
        assert!(!s.consistent(&["crontab".into()], &["remote_address", "remote_port"]));
        // One common column in a dozen is no evidence.
        let sockets = [
            "pid",
            "fd",
            "socket",
            "remote_address",
            "remote_port",
            "path",
        ];
        assert!(!s.consistent(&["crontab".into()], &sockets));
        assert!(
            s.consistent(&["mdm".into()], &["enrolled"]),
            "extension tables"
        );
        assert!(s.consistent(&["crontab".into()], &["my_alias"]));
    }
}
