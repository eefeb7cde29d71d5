//! Line numbers for problems: the YAML parsers report where the text is malformed, but not
//! where a well-formed document holds a wrong value (an unknown rule id, a bad date). These
//! find the line of a key or value in the text, so every problem can name its line.
//!
//! They read the text as block-style YAML the way rule and filter files are written (one key
//! per line, nesting by indentation). On flow style (`{a: 1}`) or a key they cannot find they
//! answer `None`, never a wrong line they could have avoided: a problem without a line still
//! names its file and field.

/// The 1-based line of the key at dotted `path` (`tripline.window`, `filter.rules`) in the
/// first YAML document of `text`: each segment is looked for among the keys indented under
/// the previous one.
pub(crate) fn key_line(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    // (line index, indentation) of the last segment found; top-level keys have indent 0.
    let mut parent: Option<(usize, usize)> = None;
    for segment in path.split('.') {
        let start = parent.map_or(0, |(i, _)| i + 1);
        let mut found = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let body = line.trim_start();
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            if i > 0 && (body == "---" || body.starts_with("--- ")) && line.len() == body.len() {
                break; // the next document
            }
            let indent = line.len() - body.len();
            match parent {
                None if indent != 0 => continue,
                Some((_, p)) if indent <= p => break, // left the parent's block
                _ => {}
            }
            if is_key(body, segment) {
                found = Some((i, indent));
                break;
            }
        }
        parent = Some(found?);
    }
    parent.map(|(i, _)| i + 1)
}

/// The 1-based line of the first occurrence of `needle` at or after line `from` (1-based).
pub(crate) fn value_line(text: &str, from: usize, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
}

/// Whether `body` (a line without its indentation) starts with the key `key`, bare or
/// quoted, followed by a colon.
fn is_key(body: &str, key: &str) -> bool {
    let rest = if let Some(r) = body.strip_prefix(key) {
        r
    } else {
        let quoted = ['"', '\''].iter().find_map(|q| {
            body.strip_prefix(*q)
                .and_then(|r| r.strip_prefix(key))
                .and_then(|r| r.strip_prefix(*q))
        });
        match quoted {
            Some(r) => r,
            None => return false,
        }
    };
    rest.trim_start().starts_with(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "title: t\n# comment\nname: x\nfilter:\n  rules:\n    - a\n    - b\n  \
                        selection:\n    name: y\n  condition: not selection\ntripline:\n  \
                        window: 1h\n---\nwindow: 2h\n";

    #[test]
    fn keys_by_path() {
        assert_eq!(key_line(TEXT, "title"), Some(1));
        assert_eq!(key_line(TEXT, "name"), Some(3));
        assert_eq!(key_line(TEXT, "filter.rules"), Some(5));
        assert_eq!(key_line(TEXT, "filter.condition"), Some(10));
        // `name` under `filter.selection`, not the top-level one.
        assert_eq!(key_line(TEXT, "filter.selection.name"), Some(9));
        assert_eq!(key_line(TEXT, "tripline.window"), Some(12));
        // Not a key of this document, nor under another parent.
        assert_eq!(key_line(TEXT, "window"), None);
        assert_eq!(key_line(TEXT, "filter.window"), None);
        assert_eq!(key_line("'expires': 2027-01-01\n", "expires"), Some(1));
    }

    #[test]
    fn values_from_a_line() {
        assert_eq!(value_line(TEXT, 5, "- b"), Some(7));
        assert_eq!(value_line(TEXT, 8, "- b"), None);
        assert_eq!(value_line(TEXT, 1, ""), None);
    }
}
