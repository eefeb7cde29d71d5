//! Dotted field paths over the eval view (`columns.command`, `derived.program`) and the
//! alert title templates built from them.
//!
//! Paths are checked against the [`crate::event::Event`] contract when rules load, because
//! a misspelt field (`colums.cmdline`) in a Sigma rule or a dedup key never errors at run
//! time: it just never matches, or silently merges unrelated events into one alert.

use std::fmt;

use rsigma_eval::event::Event as SigmaEvent;
use serde_json::Value;

use crate::derive::{DERIVED_FIELDS, IOC_FIELDS};

/// Top-level event fields that hold a scalar (no sub-path allowed).
const SCALAR_ROOTS: &[&str] = &[
    "kind",
    "name",
    "pack",
    "query",
    "tables",
    "tables_from",
    "host",
    "action",
    "time",
    "unix_time",
    "epoch",
    "counter",
    "numerics",
    "severity",
    "filename",
    "line",
    "message",
    "version",
    "id",
];

const INDICATOR_FIELDS: &[&str] = &["ip", "domain", "md5", "sha1", "sha256", "user"];
const ATTACK_FIELDS: &[&str] = &["id", "name", "tactics"];
const SOURCE_FIELDS: &[&str] = &["bucket", "key", "path", "record", "row"];

/// Checks that `path` names a field the eval view can contain; the message says what is
/// allowed instead.
pub fn check_path(path: &str) -> Result<(), String> {
    let (root, rest) = match path.split_once('.') {
        Some((r, rest)) => (r, Some(rest)),
        None => (path, None),
    };
    let sub = |allowed: &[&str], what: &str| -> Result<(), String> {
        match rest {
            None => Ok(()),
            Some(r) if allowed.contains(&r) => Ok(()),
            Some(r) => Err(format!(
                "`{path}`: `{r}` is not a {what} field (expected one of {})",
                allowed.join(", ")
            )),
        }
    };
    match root {
        r if SCALAR_ROOTS.contains(&r) => match rest {
            None => Ok(()),
            Some(_) => Err(format!("`{path}`: `{root}` is a scalar field")),
        },
        "columns" | "decorations" => match rest {
            Some(r) if !r.is_empty() => Ok(()),
            _ => Err(format!("`{path}`: name a column, e.g. `{root}.path`")),
        },
        "derived" => match rest {
            Some(r) if DERIVED_FIELDS.contains(&r) => Ok(()),
            Some(r)
                if r.strip_prefix("ioc.")
                    .is_some_and(|f| IOC_FIELDS.contains(&f)) =>
            {
                Ok(())
            }
            Some(r) if r.starts_with("ioc.") => Err(format!(
                "`{path}`: derived.ioc's fields are {}",
                IOC_FIELDS.join(", ")
            )),
            _ => Err(format!(
                "`{path}`: derived fields are {}",
                DERIVED_FIELDS.join(", ")
            )),
        },
        "indicators" => sub(INDICATOR_FIELDS, "indicators"),
        "attack" => sub(ATTACK_FIELDS, "attack"),
        "source" => sub(SOURCE_FIELDS, "source"),
        _ => Err(format!(
            "`{path}`: unknown field `{root}` (events have {}, columns.*, decorations.*, \
             derived.*, indicators.*, attack.*, source.*)",
            SCALAR_ROOTS.join(", ")
        )),
    }
}

/// Looks a dotted path up in the eval view with the same semantics the rule engine uses
/// (flat key first, then nested traversal, arrays fanned out), so a dedup key sees exactly
/// the value a rule matched on.
pub fn lookup(view: &impl SigmaEvent, path: &str) -> Option<Value> {
    view.get_field(path).map(|v| v.to_json())
}

/// Renders a value for a human-facing title: strings bare, arrays comma-joined.
fn display_value(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Null => out.push('-'),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                display_value(item, out);
            }
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Longest rendering of one placeholder: command lines can be kilobytes, and titles end up
/// in Slack and e-mail subjects.
const MAX_PLACEHOLDER_CHARS: usize = 160;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// `{a|b}`: the first of these fields the event has.
    Field(Vec<String>),
}

/// A parsed `"Suspicious cron job on {host}: {columns.command}"` template. `{{` and `}}`
/// are literal braces. A placeholder may name alternatives, `{columns.key_file|columns.path}`:
/// the first that the event has (not absent, null or empty) is shown, for rules whose tables
/// name the same thing differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses and validates every placeholder path.
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let rest = &source[i + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!("unclosed `{{` at byte {i}"));
                    };
                    let field = rest[..end].trim();
                    if field.is_empty() {
                        return Err(format!("empty placeholder `{{}}` at byte {i}"));
                    }
                    let alternatives: Vec<String> =
                        field.split('|').map(|f| f.trim().to_string()).collect();
                    for f in &alternatives {
                        if f.is_empty() {
                            return Err(format!("empty alternative in `{{{field}}}` at byte {i}"));
                        }
                        check_path(f)?;
                    }
                    // Skip the placeholder's characters.
                    for _ in 0..rest[..=end].chars().count() {
                        chars.next();
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Field(alternatives));
                }
                '}' => return Err(format!("unmatched `}}` at byte {i} (write `}}}}`)")),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// The fields the template refers to.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Field(f) => Some(f.iter().map(String::as_str)),
                Part::Text(_) => None,
            })
            .flatten()
    }

    /// Renders against an eval view; a missing field renders as `?` (titles must never fail).
    pub fn render(&self, view: &impl SigmaEvent) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(alternatives) => {
                    // The first value with something to show; failing that, the first
                    // present one (null renders as `-`, the empty string as nothing).
                    let mut found = None;
                    for f in alternatives {
                        match lookup(view, f) {
                            Some(Value::Null) => found = found.or(Some(Value::Null)),
                            Some(Value::String(s)) if s.is_empty() => {
                                found = found.or(Some(Value::String(s)))
                            }
                            Some(v) => {
                                found = Some(v);
                                break;
                            }
                            None => {}
                        }
                    }
                    match found {
                        Some(v) => {
                            let mut s = String::new();
                            display_value(&v, &mut s);
                            push_truncated(&mut out, &s, MAX_PLACEHOLDER_CHARS);
                        }
                        None => out.push('?'),
                    }
                }
            }
        }
        out
    }
}

fn push_truncated(out: &mut String, s: &str, max_chars: usize) {
    // Control characters in a title would let a logged command line forge extra lines in
    // notifications.
    for (n, c) in s.chars().enumerate() {
        if n == max_chars {
            out.push('…');
            return;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsigma_eval::event::JsonEvent;
    use serde_json::json;

    #[test]
    fn paths() {
        for ok in [
            "host",
            "query",
            "columns.command",
            "columns.a.b",
            "decorations.hostname",
            "derived.program",
            "derived.ioc",
            "derived.ioc.value",
            "derived.ioc.hits",
            "indicators.ip",
            "attack.id",
            "attack",
            "source.key",
        ] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "colums.command",
            "columns",
            "columns.",
            "derived.programme",
            "derived.ioc.values",
            "derived.ioc.",
            "host.name",
            "indicators.ipv4",
            "",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        assert!(check_path("derived.prog").unwrap_err().contains("program"));
    }

    #[test]
    fn template_parse_and_render() {
        let t = Template::parse("Cron on {host}: {columns.command} {{literal}}").unwrap();
        assert_eq!(t.fields().collect::<Vec<_>>(), ["host", "columns.command"]);
        let v = json!({"host": "mac-1", "columns": {"command": "curl x | sh\nevil"}});
        let view = JsonEvent::borrow(&v);
        assert_eq!(t.render(&view), "Cron on mac-1: curl x | sh evil {literal}");
        let t = Template::parse("{columns.missing} on {host}").unwrap();
        assert_eq!(t.render(&view), "? on mac-1");
        let t = Template::parse("ünï {host}").unwrap();
        assert_eq!(t.render(&view), "ünï mac-1");
    }

    #[test]
    fn template_alternatives_show_the_first_present_field() {
        let t = Template::parse("Key {columns.key_file | columns.path} on {host}").unwrap();
        assert_eq!(
            t.fields().collect::<Vec<_>>(),
            ["columns.key_file", "columns.path", "host"]
        );
        let file_row = json!({"host": "h", "columns": {"path": "/root/.ssh/authorized_keys"}});
        assert_eq!(
            t.render(&JsonEvent::borrow(&file_row)),
            "Key /root/.ssh/authorized_keys on h"
        );
        let both = json!({"host": "h", "columns": {"key_file": "/a", "path": "/b"}});
        assert_eq!(t.render(&JsonEvent::borrow(&both)), "Key /a on h");
        // A null or empty value gives way to a later alternative, and shows as it would
        // alone when no alternative has more to show.
        let null_first = json!({"host": "h", "columns": {"key_file": null, "path": "/b"}});
        assert_eq!(t.render(&JsonEvent::borrow(&null_first)), "Key /b on h");
        let empty_first = json!({"host": "h", "columns": {"key_file": "", "path": "/b"}});
        assert_eq!(t.render(&JsonEvent::borrow(&empty_first)), "Key /b on h");
        let only_null = json!({"host": "h", "columns": {"key_file": null}});
        assert_eq!(t.render(&JsonEvent::borrow(&only_null)), "Key - on h");
        let empty_then_null = json!({"host": "h", "columns": {"key_file": "", "path": null}});
        assert_eq!(t.render(&JsonEvent::borrow(&empty_then_null)), "Key  on h");
        let neither = json!({"host": "h", "columns": {}});
        assert_eq!(t.render(&JsonEvent::borrow(&neither)), "Key ? on h");
        assert!(Template::parse("{columns.a|}")
            .unwrap_err()
            .contains("empty"));
        assert!(Template::parse("{columns.a|colums.b}")
            .unwrap_err()
            .contains("colums"));
    }

    #[test]
    fn template_errors() {
        assert!(Template::parse("x {host").unwrap_err().contains("unclosed"));
        assert!(Template::parse("x {}").unwrap_err().contains("empty"));
        assert!(Template::parse("x } y").unwrap_err().contains("unmatched"));
        assert!(Template::parse("{colums.x}")
            .unwrap_err()
            .contains("colums"));
    }

    #[test]
    fn long_values_truncated() {
        let t = Template::parse("{columns.c}").unwrap();
        let v = json!({"columns": {"c": "a".repeat(1000)}});
        let s = t.render(&JsonEvent::borrow(&v));
        assert_eq!(s.chars().count(), MAX_PLACEHOLDER_CHARS + 1);
    }
}
