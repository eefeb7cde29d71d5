//! A token scan of Rust source: enough to find SDK calls like `.head_object(` in the adapters
//! (`shared/aws/src`, for [`crate::Deployment::check_adapter_table`]) without being fooled by
//! formatting, comments or doc text. The handlers' source is never scanned: the checks of the
//! Terraform compare it with the code's tables.
//!
//! Source is split into identifiers, string literals (content kept, escapes not processed),
//! other literals and single punctuation characters; whitespace and comments are dropped, and
//! so are `#[cfg(test)]` items (unit tests may call anything; they don't run in Lambda). A
//! pattern is a piece of Rust tokenized the same way and matches a contiguous run of tokens.

use std::path::{Path, PathBuf};

/// One token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// An identifier or keyword.
    Ident(String),
    /// A string literal's content, as written between the quotes.
    Str(String),
    /// A number or char literal (content irrelevant here).
    Lit,
    /// One punctuation character.
    Punct(char),
}

/// Tokens with the 1-based line each starts on.
pub fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        let start_line = line;
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            let (s, next, lines) = quoted(&c, i + 1);
            out.push((Tok::Str(s), start_line));
            line += lines;
            i = next;
        } else if (ch == 'r' || ch == 'b') && raw_string_start(&c, i).is_some() {
            let (hashes, open) = raw_string_start(&c, i).expect("checked");
            let mut j = open + 1;
            let mut s = String::new();
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                if c[j] == '\n' {
                    line += 1;
                }
                s.push(c[j]);
                j += 1;
            }
            out.push((Tok::Str(s), start_line));
            i = j;
        } else if ch == 'b' && c.get(i + 1) == Some(&'"') {
            let (s, next, lines) = quoted(&c, i + 2);
            out.push((Tok::Str(s), start_line));
            line += lines;
            i = next;
        } else if ch == '\'' {
            if c.get(i + 1) == Some(&'\\') {
                // '\n', '\'', '\u{..}'
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push((Tok::Lit, start_line));
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push((Tok::Lit, start_line));
            } else {
                // A lifetime: drop the quote, the name lexes as an identifier.
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(c[start..i].iter().collect()), start_line));
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '.') {
                // `0..n`: a range, not a float.
                if c[i] == '.' && c.get(i + 1) == Some(&'.') {
                    break;
                }
                i += 1;
            }
            out.push((Tok::Lit, start_line));
        } else {
            out.push((Tok::Punct(ch), start_line));
            i += 1;
        }
    }
    out
}

/// A `"…"` body starting at `i`: content, index after the closing quote, newlines inside.
fn quoted(c: &[char], mut i: usize) -> (String, usize, usize) {
    let mut s = String::new();
    let mut lines = 0;
    while i < c.len() && c[i] != '"' {
        if c[i] == '\\' && i + 1 < c.len() {
            s.push(c[i]);
            i += 1;
        }
        if c[i] == '\n' {
            lines += 1;
        }
        s.push(c[i]);
        i += 1;
    }
    (s, i + 1, lines)
}

/// `r"`, `r#"`, `br##"`, …: the number of `#` and the index of the opening quote.
fn raw_string_start(c: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if c[j] == 'b' {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    // Not the tail of an identifier like `for` or `bar`.
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some((hashes, j))
}

/// Drops `#[cfg(test)]` items (the attribute and the item after it, braces matched).
pub fn without_tests(toks: Vec<(Tok, usize)>) -> Vec<(Tok, usize)> {
    let attr = pattern("#[cfg(test)]");
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if matches_at(&toks, i, &attr) {
            i += attr.len();
            // Skip to the item's first `{` or `;`, then past its matching `}`.
            while i < toks.len() && !matches!(toks[i].0, Tok::Punct('{') | Tok::Punct(';')) {
                i += 1;
            }
            if i < toks.len() && toks[i].0 == Tok::Punct('{') {
                let mut depth = 0;
                while i < toks.len() {
                    match toks[i].0 {
                        Tok::Punct('{') => depth += 1,
                        Tok::Punct('}') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            i += 1;
            continue;
        }
        out.push(toks[i].clone());
        i += 1;
    }
    out
}

/// A pattern: Rust text tokenized like source.
pub fn pattern(text: &str) -> Vec<Tok> {
    tokens(text).into_iter().map(|(t, _)| t).collect()
}

fn matches_at(toks: &[(Tok, usize)], i: usize, pat: &[Tok]) -> bool {
    !pat.is_empty()
        && i + pat.len() <= toks.len()
        && toks[i..i + pat.len()]
            .iter()
            .zip(pat)
            .all(|((t, _), p)| t == p)
}

/// A Rust source file, tokenized without its tests.
pub struct Source {
    /// Path for messages (relative to the repository root).
    pub path: PathBuf,
    /// Its tokens.
    pub tokens: Vec<(Tok, usize)>,
}

impl Source {
    /// Tokenizes `text`.
    pub fn new(path: PathBuf, text: &str) -> Self {
        Source {
            path,
            tokens: without_tests(tokens(text)),
        }
    }

    /// Lines where `pattern` (Rust text) occurs.
    pub fn find(&self, pattern_text: &str) -> Vec<usize> {
        let pat = pattern(pattern_text);
        (0..self.tokens.len())
            .filter(|&i| matches_at(&self.tokens, i, &pat))
            .map(|i| self.tokens[i].1)
            .collect()
    }
}

/// Every `*.rs` directly in `dir`, tokenized, paths shown relative to `root`.
pub fn sources(dir: &Path, root: &Path) -> Result<Vec<Source>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).map_err(|e| format!("reading {}: {e}", p.display()))?;
            let shown = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
            Ok(Source::new(shown, &text))
        })
        .collect()
}

/// `(file, line)` of every occurrence of `pattern` in `sources`.
pub fn find_all(sources: &[Source], pattern_text: &str) -> Vec<(PathBuf, usize)> {
    sources
        .iter()
        .flat_map(|s| {
            s.find(pattern_text)
                .into_iter()
                .map(|l| (s.path.clone(), l))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_calls_across_formatting_but_not_in_comments_strings_or_tests() {
        let src = r##"
// object_exists(&self.s3) in a comment
/* put_if_absent( */
/// doc: get_object_bytes(
fn f<'a>(x: &'a str) {
    let s = "put_object(";
    let r = r#"S3Writer::new("#;
    let c = '(';
    let key = format!("{}dedup/{}", self.settings.state_prefix, id);
    match object_exists
        (&self.s3, b, k) {}
}
#[cfg(test)]
mod tests {
    fn t() { put_object(&c, "b", "k", vec![]); }
}
fn g() { for i in 0..3 { S3Writer::new(c, b, k); } }
"##;
        let s = Source::new("x.rs".into(), src);
        assert_eq!(s.find("object_exists("), vec![10]);
        assert!(s.find("put_if_absent(").is_empty());
        assert!(s.find("get_object_bytes(").is_empty());
        assert!(s.find("put_object(").is_empty());
        assert_eq!(s.find("S3Writer::new("), vec![17]);
        assert_eq!(
            s.find(r#"format!("{}dedup/{}", self.settings.state_prefix"#),
            vec![9]
        );
        assert_eq!(s.find("s = \"put_object(\""), vec![6]);
    }
}
