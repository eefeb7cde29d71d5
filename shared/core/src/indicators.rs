//! Observables (IPs, domains, hashes, users) pulled out of a row's columns.
//!
//! osquery has hundreds of tables and no common schema, so responders pivot on these
//! lists instead of knowing that `socket_events` says `remote_address` while `last`
//! says `host`. Extraction goes by column name first (cheap, and it avoids treating any
//! 32-hex-digit string as an MD5) and then validates the value's shape.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::event::Indicators;
use crate::fields::Fields;

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
                if let Some(ip) = parse_ip(text) {
                    push_ip(&mut out.ip, ip);
                }
            }
            Class::Host => match parse_ip(text) {
                Some(ip) => push_ip(&mut out.ip, ip),
                None if is_domain(text) => push(&mut out.domain, text.to_ascii_lowercase()),
                None => {}
            },
            Class::Url => {
                if let Some(host) = url_host(text) {
                    match parse_ip(host) {
                        Some(ip) => push_ip(&mut out.ip, ip),
                        None if is_domain(host) => push(&mut out.domain, host.to_ascii_lowercase()),
                        None => {}
                    }
                }
            }
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
}

enum Class {
    Address,
    Host,
    Url,
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
            b's' | b'p' | b'l' | b't' | b'e' | b'n' | b'r' | b'5' | b'1' | b'6' | b'h'
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
        "url" => Some(Class::Url),
        _ if key.ends_with("address") || key == "ip" || key.ends_with("_ip") => {
            Some(Class::Address)
        }
        _ if key.ends_with("_url") => Some(Class::Url),
        _ if key.ends_with("_md5") || key.ends_with("_sha1") || key.ends_with("_sha256") => {
            Some(Class::Hash)
        }
        _ => None,
    }
}

/// Parses an IP as osquery prints it: possibly with an IPv6 zone (`fe80::1%en0`) or
/// brackets. The unspecified address (`0.0.0.0`, `::`) means "any", not an observable.
/// Returns the address with the text it was parsed from (brackets and zone removed).
fn parse_ip(text: &str) -> Option<(IpAddr, &str)> {
    let text = text.trim_start_matches('[').trim_end_matches(']');
    let text = text.split_once('%').map_or(text, |(ip, _zone)| ip);
    let ip: IpAddr = text.parse().ok()?;
    (!ip.is_unspecified()).then_some((ip, text))
}

/// IPs are kept in their canonical text. An IPv4 address that parsed is already in it
/// (the parser rejects leading zeros and other spellings), which saves formatting one or
/// two addresses per socket row; IPv6 has many spellings, so it is formatted.
fn push_ip(list: &mut Vec<String>, (ip, text): (IpAddr, &str)) {
    match ip {
        IpAddr::V4(_) => push(list, text.to_owned()),
        IpAddr::V6(_) => push(list, ip.to_string()),
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

fn url_host(text: &str) -> Option<&str> {
    let (scheme, rest) = text.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    let host = authority.split_once(':').map_or(authority, |(h, _)| h);
    (!host.is_empty()).then_some(host)
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
