//! Plain-text lists (`.txt`, `.ioc`, `.list`): one indicator a line.
//!
//! ```text
//! # Advisory 2026-11: infrastructure       <- a comment line
//! 185.220.101.47          # C2 server      <- an IP; its trailing comment is its name
//! 45.61.136.0/24                           <- a CIDR
//! evil.example                             <- a domain, and its subdomains
//! hxxps://cdn.evil[.]example/x.sh          <- a URL (defanged spellings are undone)
//! 0.0.0.0 tracker.example                  <- a hosts-file line: the name
//! 44d88612fea8a8f36de82e1278abb02f         <- an MD5 (32 hex digits), SHA-1 (40), SHA-256 (64)
//! ```
//!
//! The rules:
//!
//! - The file is UTF-8 (a byte-order mark is skipped); lines end in `\n` or `\r\n`.
//! - A comment runs from a `#` at the start of a line or after a blank to the end of the
//!   line; a `#` inside a value (a URL's fragment) is part of it. A line's trailing comment,
//!   trimmed, is the entry's name (`derived.ioc.name`).
//! - Blank lines and comment lines are skipped.
//! - What remains is one value, whose type is inferred from its shape: a URL (it has `://`),
//!   an IP (IPv4, IPv6, `[IPv6]`), a CIDR (`address/length`), a hash by its number of hex
//!   digits, a domain name (two labels or more; a leading `*.` is dropped). Advisories'
//!   defanging (`[.]`, `(.)`, `[dot]`, `hxxp`, `[:]`) is undone first.
//! - A hosts-file line (`0.0.0.0 name`, `127.0.0.1 name`, `::`, `::1`) is its name.
//! - A well-formed value no event carries (a SHA-384 or SHA-512 hash, an e-mail address) is
//!   skipped with a warning and counted ([`super::IocStats::unsupported`]).
//! - Anything else (two values on a line, a value of no known shape, a bad CIDR) is an
//!   error naming the file and line.

use super::value::{infer, refang, shorten, Classified};
use super::{Builder, EntryInfo};

/// Addresses a hosts-file blocklist points names at: the name is the entry.
const HOSTS_FILE_SINKS: &[&str] = &["0.0.0.0", "127.0.0.1", "::", "::1"];

pub(super) fn load(bytes: &[u8], b: &mut Builder) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // UTF-8 is checked once for the whole file, and line by line only when that fails, to
    // name the lines that are not.
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            for (n, line) in text.split('\n').enumerate() {
                load_line(n as u64 + 1, line, b);
            }
        }
        Err(_) => {
            for (n, line) in bytes.split(|&c| c == b'\n').enumerate() {
                match std::str::from_utf8(line) {
                    Ok(line) => load_line(n as u64 + 1, line, b),
                    Err(_) => b.error(Some(n as u64 + 1), None, "not UTF-8 text".into()),
                }
            }
        }
    }
}

fn load_line(line_no: u64, line: &str, b: &mut Builder) {
    let line_no = Some(line_no);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (value, comment) = split_comment(line);
    let mut tokens = value.split_ascii_whitespace();
    let Some(first) = tokens.next() else {
        return;
    };
    let value = match (tokens.next(), tokens.next()) {
        (None, _) => first,
        (Some(name), None) if HOSTS_FILE_SINKS.contains(&first) => name,
        _ => {
            b.error(
                line_no,
                None,
                format!(
                    "{:?}: one indicator a line (start a comment with ` #`)",
                    shorten(value.trim())
                ),
            );
            return;
        }
    };
    match infer(&refang(value)) {
        Ok(Classified::Value(v)) => {
            let record = b.record(&EntryInfo {
                name: comment,
                ..EntryInfo::default()
            });
            b.add(v, record);
        }
        Ok(Classified::Unsupported(what)) => b.unsupported(
            line_no,
            None,
            format!(
                "{what} {:?} skipped: events carry no such indicator",
                shorten(value)
            ),
        ),
        Err(message) => b.error(line_no, None, message),
    }
}

/// The line's value part and its trailing comment (`None` for none or an empty one). A
/// comment starts at a `#` that begins the line or follows a blank.
fn split_comment(line: &str) -> (&str, Option<&str>) {
    let bytes = line.as_bytes();
    let start =
        memchr::memchr_iter(b'#', bytes).find(|&i| i == 0 || bytes[i - 1].is_ascii_whitespace());
    match start {
        None => (line, None),
        Some(i) => {
            let comment = line[i + 1..].trim();
            (&line[..i], (!comment.is_empty()).then_some(comment))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments() {
        assert_eq!(split_comment("# all"), ("", Some("all")));
        assert_eq!(split_comment("1.2.3.4  # C2 "), ("1.2.3.4  ", Some("C2")));
        assert_eq!(split_comment("1.2.3.4\t#"), ("1.2.3.4\t", None));
        assert_eq!(
            split_comment("http://a.example/x#frag"),
            ("http://a.example/x#frag", None)
        );
        assert_eq!(split_comment("  "), ("  ", None));
    }
}
