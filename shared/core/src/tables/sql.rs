//! The osquery tables a query's SQL reads, found with a real SQL parser.
//!
//! osquery speaks SQLite, so the text is parsed with `sqlparser`'s SQLite dialect and every
//! relation named in a `FROM` or `JOIN` anywhere in the statement is collected: joins,
//! subqueries (in `FROM`, `WHERE`, the select list), CTE bodies and each arm of a `UNION`.
//! Names a CTE introduces are not tables and are left out, and so are table-valued
//! functions (`json_each(...)`) and SQLite's own `sqlite_*` / `pragma_*` relations, which
//! are not osquery tables.

use std::ops::ControlFlow;

use sqlparser::ast::{ObjectNamePart, Query, Statement, TableFactor, Visit, Visitor};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, Tokenizer};

/// SQL the parser could not read; the caller falls back to column inference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse SQL: {0}")]
pub struct SqlError(pub String);

/// The osquery tables `sql` reads, lower-cased, in order of first appearance, each once.
///
/// ```
/// use tripline_core::tables::sql::tables_in;
/// let sql = "WITH s AS (SELECT pid FROM process_open_sockets)
///            SELECT p.name FROM processes p JOIN s USING (pid)
///            UNION SELECT name FROM listening_ports";
/// assert_eq!(tables_in(sql).unwrap(), ["process_open_sockets", "processes", "listening_ports"]);
/// ```
pub fn tables_in(sql: &str) -> Result<Vec<String>, SqlError> {
    let statements = Parser::parse_sql(&SQLiteDialect {}, sql)
        .or_else(|first| parse_sqlite_idioms(sql).map_err(|_| first))
        .map_err(|e| SqlError(e.to_string()))?;
    let mut found = Relations::default();
    // `Relations` never breaks, so the visit always runs to the end.
    let _ = statements.visit(&mut found);
    let Relations { tables, ctes } = found;
    Ok(tables
        .into_iter()
        .filter(|t| !ctes.contains(t))
        .fold(Vec::new(), |mut out, t| {
            if !out.contains(&t) {
                out.push(t);
            }
            out
        }))
}

/// SQLite accepts two idioms that osquery's public packs use and `sqlparser` does not:
/// `CROSS JOIN ... USING (col)` (a cross join with a constraint is an inner join) and
/// `interval` as a column name (`osquery_schedule.interval`). The text is tokenized, those
/// two rewritten (`CROSS` dropped before `JOIN`; `interval` not followed by a literal read
/// as an identifier), and parsed again.
fn parse_sqlite_idioms(sql: &str) -> Result<Vec<Statement>, ParserError> {
    let dialect = SQLiteDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize()
        .map_err(|e| ParserError::TokenizerError(e.to_string()))?;
    let next_word = |i: usize| {
        tokens[i + 1..]
            .iter()
            .find(|t| !matches!(t, Token::Whitespace(_)))
    };
    let mut rewritten = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.iter().enumerate() {
        let next = next_word(i);
        match token {
            Token::Word(w)
                if w.keyword == Keyword::CROSS
                    && matches!(next, Some(Token::Word(n)) if n.keyword == Keyword::JOIN) => {}
            Token::Word(w)
                if w.keyword == Keyword::INTERVAL
                    && !matches!(next, Some(Token::SingleQuotedString(_) | Token::Number(..))) =>
            {
                let mut ident = w.clone();
                ident.keyword = Keyword::NoKeyword;
                ident.quote_style = Some('"');
                rewritten.push(Token::Word(ident));
            }
            _ => rewritten.push(token.clone()),
        }
    }
    Parser::new(&dialect)
        .with_tokens(rewritten)
        .parse_statements()
}

#[derive(Default)]
struct Relations {
    /// Every plain relation name, lower-cased, in visiting order (which is text order).
    tables: Vec<String>,
    /// Names introduced by `WITH`, anywhere in the statement. CTE names shadow tables
    /// lexically; osquery queries never reuse a table's name for a CTE, so one set for the
    /// whole statement is exact in practice and never reports a CTE as a table.
    ctes: Vec<String>,
}

impl Visitor for Relations {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.push(cte.alias.name.value.to_ascii_lowercase());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name, args: None, ..
        } = factor
        {
            // `main.processes` names the table `processes` in SQLite's `main` schema.
            if let Some(ObjectNamePart::Identifier(ident)) = name.0.last() {
                let table = ident.value.to_ascii_lowercase();
                if !is_sqlite_internal(&table) {
                    self.tables.push(table);
                }
            }
        }
        ControlFlow::Continue(())
    }
}

fn is_sqlite_internal(name: &str) -> bool {
    name.starts_with("sqlite_") || name.starts_with("pragma_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(sql: &str) -> Vec<String> {
        tables_in(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    #[test]
    fn plain_select() {
        assert_eq!(t("select * from crontab;"), ["crontab"]);
        assert_eq!(t("SELECT * FROM Processes"), ["processes"]);
        assert_eq!(t("SELECT * FROM main.processes"), ["processes"]);
    }

    #[test]
    fn joins_with_aliases_and_using() {
        let sql = "SELECT DISTINCT p.name, p.path, pos.remote_address \
                   FROM process_open_sockets AS pos \
                   JOIN processes p USING (pid) \
                   LEFT JOIN hash h ON h.path = p.path \
                   WHERE pos.remote_port != 0";
        assert_eq!(t(sql), ["process_open_sockets", "processes", "hash"]);
        // The implicit (comma) join
        assert_eq!(
            t("select u.username, k.key from users u, authorized_keys k where k.uid = u.uid"),
            ["users", "authorized_keys"]
        );
    }

    #[test]
    fn subqueries_everywhere() {
        assert_eq!(
            t(
                "SELECT * FROM (SELECT pid, name FROM processes) p WHERE p.pid IN \
               (SELECT pid FROM process_open_sockets WHERE remote_port = 4444)"
            ),
            ["processes", "process_open_sockets"]
        );
        assert_eq!(
            t("SELECT name, (SELECT count(*) FROM users) AS n FROM groups"),
            ["users", "groups"]
        );
        assert_eq!(
            t("SELECT 1 WHERE EXISTS (SELECT 1 FROM managed_policies WHERE name = 'x')"),
            ["managed_policies"]
        );
    }

    #[test]
    fn ctes_are_not_tables() {
        let sql = "WITH RECURSIVE tree(pid) AS (SELECT pid FROM processes WHERE pid = 1 \
                   UNION ALL SELECT p.pid FROM processes p JOIN tree t ON p.parent = t.pid) \
                   SELECT * FROM tree JOIN process_open_sockets USING (pid)";
        assert_eq!(t(sql), ["processes", "process_open_sockets"]);
    }

    #[test]
    fn unions_and_osquery_idioms() {
        let sql =
            "SELECT name AS name, version AS version, 'deb_packages' AS source FROM deb_packages \
                   WHERE name LIKE 'openssl%' UNION SELECT name, version, 'rpm' FROM rpm_packages";
        assert_eq!(t(sql), ["deb_packages", "rpm_packages"]);
        // osquery's pack style: LIKE with %%, GLOB, hidden columns, double quotes
        assert_eq!(
            t(
                "select * from file where path like '/Users/%/Library/LaunchAgents/%%' \
               and directory glob \"/tmp/*\";"
            ),
            ["file"]
        );
    }

    #[test]
    fn table_valued_functions_and_sqlite_tables_are_not_osquery_tables() {
        assert_eq!(
            t("SELECT j.value FROM osquery_flags f, json_each(f.value) j"),
            ["osquery_flags"]
        );
        assert_eq!(t("SELECT name FROM sqlite_master"), Vec::<String>::new());
    }

    #[test]
    fn sqlite_idioms_the_parser_lacks() {
        assert_eq!(
            t("SELECT * FROM users CROSS JOIN chrome_extensions USING (uid) WHERE identifier='x';"),
            ["users", "chrome_extensions"]
        );
        assert_eq!(
            t("select name, interval, executions from osquery_schedule;"),
            ["osquery_schedule"]
        );
        assert_eq!(
            t("SELECT * FROM users CROSS JOIN groups"),
            ["users", "groups"]
        );
    }

    #[test]
    fn unreadable_sql_is_an_error_not_a_guess() {
        assert!(tables_in("SELEKT * FROM processes").is_err());
        assert!(tables_in("select * from").is_err());
    }
}
