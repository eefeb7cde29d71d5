//! A command line's words, split as a POSIX shell splits them (without expansion), and the
//! program a command line runs (`derived.program`).

use std::borrow::Cow;

/// Wrappers whose first real argument is the program that matters.
const WRAPPERS: &[&str] = &["sudo", "doas", "env", "nohup", "exec", "command", "nice"];
/// Wrapper options that consume the following argument (`sudo -u root ...`).
const OPTS_WITH_ARG: &[&str] = &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-n"];

/// The basename of the program a command line runs, skipping `sudo`/`env`-style wrappers,
/// their options and `VAR=value` assignments: `sudo -u root env A=1 /usr/bin/aws s3 ls` is
/// `aws`.
pub fn program_of(cmdline: &str) -> Option<String> {
    let mut tokens = ShellWords::new(cmdline);
    let mut in_wrapper: Option<String> = None;
    while let Some(tok) = tokens.next() {
        if tok.is_empty() {
            continue;
        }
        if let Some(w) = &in_wrapper {
            if tok == "--" {
                in_wrapper = None;
                continue;
            }
            if tok.starts_with('-') && tok.len() > 1 {
                // `nice -n 10`, `sudo -u root`: the option's value is not the program.
                let takes_arg = match w.as_str() {
                    "sudo" | "doas" => OPTS_WITH_ARG.contains(&tok.as_ref()),
                    "env" => tok == "-u" || tok == "-C" || tok == "-S",
                    "nice" => tok == "-n",
                    _ => false,
                };
                if takes_arg {
                    tokens.next();
                }
                continue;
            }
        }
        if is_assignment(&tok) {
            continue;
        }
        let base = basename(&tok);
        if base.is_empty() {
            return None;
        }
        if WRAPPERS.contains(&base) {
            in_wrapper = Some(base.to_string());
            continue;
        }
        return Some(base.to_string());
    }
    None
}

fn is_assignment(tok: &str) -> bool {
    match tok.find('=') {
        Some(i) if i > 0 => {
            let name = &tok[..i];
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        _ => false,
    }
}

pub(super) fn basename(path: &str) -> &str {
    let trimmed = path.trim_end_matches(['/', '\\']);
    match trimmed.rfind(['/', '\\']) {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// Minimal shell-style word splitting (whitespace, single and double quotes; backslashes
/// stay literal because Windows paths use them),
/// enough to find the first word of a logged command line; not a shell parser.
struct ShellWords<'a> {
    s: &'a str,
    /// Where the rest of the command line starts.
    pos: usize,
}

impl<'a> ShellWords<'a> {
    fn new(s: &'a str) -> Self {
        ShellWords { s, pos: 0 }
    }

    /// The words of `s[from..]`, a character at a time: quotes, and blanks beyond ASCII.
    fn general(&mut self, from: usize) -> Option<Cow<'a, str>> {
        // The word starts at `start`; it is `s[start..]` up to the next blank until a quote
        // makes it differ from the text, from where on it is built in `owned`.
        let mut start: Option<usize> = None;
        let mut owned: Option<String> = None;
        let mut quote: Option<char> = None;
        for (i, c) in self.s[from..].char_indices() {
            let i = from + i;
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => owned.get_or_insert_with(String::new).push(c),
                None if c.is_whitespace() => {
                    if let Some(b) = start {
                        self.pos = i + c.len_utf8();
                        return Some(owned.map_or(Cow::Borrowed(&self.s[b..i]), Cow::Owned));
                    }
                }
                None if c == '\'' || c == '"' => {
                    quote = Some(c);
                    if owned.is_none() {
                        owned = Some(start.map_or_else(String::new, |b| self.s[b..i].to_string()));
                    }
                    start.get_or_insert(i);
                }
                None => {
                    if let Some(w) = &mut owned {
                        w.push(c);
                    }
                    start.get_or_insert(i);
                }
            }
        }
        self.pos = self.s.len();
        let b = start?;
        Some(owned.map_or(Cow::Borrowed(&self.s[b..]), Cow::Owned))
    }
}

/// The ASCII characters `char::is_whitespace` accepts.
fn is_ascii_blank(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | b' ')
}

impl<'a> Iterator for ShellWords<'a> {
    /// Borrowed from the command line unless the word had quotes to remove: this runs for
    /// every process and shell-history row.
    type Item = Cow<'a, str>;
    fn next(&mut self) -> Option<Cow<'a, str>> {
        // Nearly every word is plain ASCII up to an ASCII blank, and is taken a byte at a
        // time; a quote or a non-ASCII character (which may be a blank) sends the word
        // through the general loop instead.
        let bytes = self.s.as_bytes();
        let mut at = self.pos;
        while at < bytes.len() && is_ascii_blank(bytes[at]) {
            at += 1;
        }
        let start = at;
        while at < bytes.len()
            && bytes[at].is_ascii()
            && !is_ascii_blank(bytes[at])
            && bytes[at] != b'\''
            && bytes[at] != b'"'
        {
            at += 1;
        }
        if at < bytes.len() && !is_ascii_blank(bytes[at]) {
            return self.general(start);
        }
        self.pos = (at + 1).min(bytes.len());
        (at > start).then(|| Cow::Borrowed(&self.s[start..at]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word splitting as first written (always allocating), kept as the reference for
    /// the borrowing [`ShellWords`].
    fn reference_words(s: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = s.chars();
        loop {
            let mut word = String::new();
            let mut started = false;
            let mut quote: Option<char> = None;
            let mut ended = false;
            for c in rest.by_ref() {
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => word.push(c),
                    None if c.is_whitespace() => {
                        if started {
                            ended = true;
                            break;
                        }
                    }
                    None if c == '\'' || c == '"' => {
                        quote = Some(c);
                        started = true;
                    }
                    None => {
                        word.push(c);
                        started = true;
                    }
                }
            }
            if started {
                out.push(word);
            }
            if !ended {
                return out;
            }
        }
    }

    proptest::proptest! {
        /// Plain ASCII words, quotes, every ASCII blank and blanks beyond ASCII, mixed.
        #[test]
        fn shell_words_split_like_the_reference(
            s in "[a-c/=\\-'\" \t\n\u{b}\u{c}\r\u{1c}\u{85}\u{a0}\u{3000}é]{0,16}"
        ) {
            let got: Vec<String> = ShellWords::new(&s).map(|w| w.into_owned()).collect();
            proptest::prop_assert_eq!(got, reference_words(&s), "{:?}", s);
        }
    }

    #[test]
    fn shell_words_borrow_like_the_reference_splits() {
        for s in [
            "",
            "   ",
            "a",
            " sudo  -u root\tenv A=1 /usr/bin/aws s3 ls ",
            "\"/Applications/My App.app/x\" --y",
            "pre'quoted part'post next",
            "''",
            "a '' b",
            "\"unterminated quote",
            "mixed\"dq\"'sq'end\u{3000}ideographic space",
            "é ü 'ö ä'",
        ] {
            let got: Vec<String> = ShellWords::new(s).map(|w| w.into_owned()).collect();
            assert_eq!(got, reference_words(s), "{s:?}");
        }
    }

    #[test]
    fn program_basename_skips_wrappers() {
        let p = |s: &str| program_of(s);
        assert_eq!(p("sudo /usr/local/bin/aws s3 ls").as_deref(), Some("aws"));
        assert_eq!(
            p("/usr/bin/curl -fsSL http://x | sh").as_deref(),
            Some("curl")
        );
        assert_eq!(p("env AWS_PROFILE=prod aws s3 ls").as_deref(), Some("aws"));
        assert_eq!(p("FOO=1 BAR=2 python3 x.py").as_deref(), Some("python3"));
        assert_eq!(
            p("sudo -u root -E nohup /opt/x/bin/agent").as_deref(),
            Some("agent")
        );
        assert_eq!(
            p("  \"/Applications/My App.app/Contents/MacOS/My App\" --x").as_deref(),
            Some("My App")
        );
        assert_eq!(
            p(r"C:\Windows\System32\cmd.exe /c whoami").as_deref(),
            Some("cmd.exe")
        );
        assert_eq!(p("sudo").as_deref(), None);
        assert_eq!(p("").as_deref(), None);
        assert_eq!(p("sudo -- rm -rf /").as_deref(), Some("rm"));
        assert_eq!(p("nice -n 10 make").as_deref(), Some("make"));
    }
}
