//! The resolver's order of sources, the registry and the cache.

use super::*;
use crate::fields::Fields;

fn fields(names: &[&str]) -> Fields {
    let map: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .map(|n| (n.to_string(), serde_json::Value::String("x".into())))
        .collect();
    Fields::from(&map)
}

fn row<'a>(name: &'a str) -> Row<'a> {
    let (pack, query) = crate::query_name::parse(name);
    Row {
        name: Some(name),
        pack,
        query: Some(query),
        platform: None,
    }
}

fn resolve(resolver: &Resolver, name: &str, columns: &[&str]) -> Resolution {
    resolver.resolve(row(name), columns)
}

const SOCKETS: &[&str] = &[
    "pid",
    "fd",
    "socket",
    "family",
    "protocol",
    "local_address",
    "remote_address",
    "local_port",
    "remote_port",
    "path",
    "state",
    "net_namespace",
];

/// Every pack file under `packs/`, as the registry is generated from them.
fn pack_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            pack_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("conf" | "yml" | "yaml")
        ) {
            out.push(path);
        }
    }
}

#[test]
fn registry_file_is_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packs");
    let mut files = Vec::new();
    pack_files(&root, &mut files);
    files.sort();
    let mut defs = QueryDefs::new();
    for path in &files {
        let relative = path.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        defs.add_registry_file(&relative, &text)
            .unwrap_or_else(|e| panic!("{relative}: {e}"));
    }
    let unparsed: Vec<String> = defs
        .iter()
        .filter(|d| d.tables.is_err())
        .map(|d| format!("{} ({})", d, d.origin))
        .collect();
    assert!(
        unparsed.is_empty(),
        "SQL the parser can't read: {unparsed:?}"
    );
    let generated = defs.to_registry_tsv();
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/osquery/registry.tsv");
    if std::env::var_os("UPDATE_REGISTRY").is_some() {
        std::fs::write(&file, &generated).unwrap();
    }
    assert!(
        generated == REGISTRY_TSV,
        "data/osquery/registry.tsv is not what packs/ define: run \
         UPDATE_REGISTRY=1 cargo test -p tripline-core registry"
    );
    // What the product loads is what was generated.
    assert_eq!(registry().len(), defs.len());
    assert!(registry().len() > 550, "only {} queries", registry().len());
    let ir = registry().lookup(
        Some("incident-response"),
        "crontab",
        "pack_incident-response_crontab",
    );
    assert_eq!(ir[0].tables.as_ref().unwrap(), &["crontab"]);
}

#[test]
fn public_query_names_resolve_by_sql_whatever_the_prefix() {
    let r = Resolver::builtin();
    for name in [
        "pack_incident-response_suid_bin",
        "pack/Global/suid_bin",
        "suid_bin",
        "pack_my-team_suid_bin", // a pack nobody named: the tail is tried
    ] {
        let got = resolve(&r, name, &["path", "username", "groupname", "permissions"]);
        assert_eq!(got.from, Some(TablesFrom::Sql), "{name}");
        assert_eq!(got.tables[0], "suid_bin", "{name}");
    }
}

#[test]
fn a_public_name_whose_row_it_cannot_explain_falls_back_to_columns() {
    let r = Resolver::builtin();
    // Someone's own query called `crontab` that reads sockets.
    let got = resolve(&r, "crontab", SOCKETS);
    assert_eq!(got.from, Some(TablesFrom::Columns));
    assert_eq!(got.tables[0], "process_open_sockets");
}

#[test]
fn user_definitions_come_first() {
    let mut defs = QueryDefs::new();
    defs.add_text(
        r#"{"schedule": {"crontab": {"query": "SELECT * FROM file WHERE path LIKE '/etc/cron.d/%'"}}}"#,
        "mine.conf",
        None,
    )
    .unwrap();
    let r = Resolver::with_queries(defs);
    let got = resolve(&r, "crontab", &["path", "mode", "size"]);
    assert_eq!(
        (got.tables.to_vec(), got.from),
        (vec!["file".to_string()], Some(TablesFrom::Sql))
    );
}

#[test]
fn unknown_names_are_inferred_from_columns() {
    let r = Resolver::builtin();
    let got = resolve(&r, "pack/Global/ATT&CK® - Process_Network_Conn", SOCKETS);
    assert_eq!(got.from, Some(TablesFrom::Columns));
    assert_eq!(&got.tables[..], ["process_open_sockets"]);
    assert!(!got.ambiguous);
    let none = resolve(&r, "my_query", &["alias_one", "alias_two"]);
    assert_eq!(none, Resolution::default());
}

#[test]
fn unreadable_user_sql_falls_back_to_columns() {
    let mut defs = QueryDefs::new();
    defs.add_text(
        r#"{"schedule": {"sockets": {"query": "SELEKT junk"}}}"#,
        "bad.conf",
        None,
    )
    .unwrap();
    let r = Resolver::with_queries(defs);
    let got = resolve(&r, "sockets", SOCKETS);
    assert_eq!(got.from, Some(TablesFrom::Columns));
}

#[test]
fn the_cache_answers_like_the_resolver_and_tells_shapes_apart() {
    let resolver = Arc::new(Resolver::builtin());
    let mut cache = TableCache::new(resolver.clone());
    let shapes: [(&str, &[&str]); 4] = [
        ("pack/Global/x", SOCKETS),
        ("pack/Global/x", &["command", "minute", "hour", "path"]),
        ("pack/Global/y", SOCKETS),
        ("pack/Global/x", SOCKETS),
    ];
    for _ in 0..2 {
        for (name, cols) in shapes {
            let want = resolver.resolve(row(name), cols);
            assert_eq!(
                cache.resolve(row(name), &fields(cols)),
                &want,
                "{name} {cols:?}"
            );
        }
    }
    // A column more or less is another shape.
    let fewer = &SOCKETS[..4];
    let want = resolver.resolve(row("pack/Global/x"), fewer);
    assert_eq!(cache.resolve(row("pack/Global/x"), &fields(fewer)), &want);
}

#[test]
fn tables_serialize_as_a_list() {
    let t: Tables = vec!["a".to_string(), "b".to_string()].into();
    assert_eq!(serde_json::to_string(&t).unwrap(), r#"["a","b"]"#);
    let back: Tables = serde_json::from_str(r#"["a","b"]"#).unwrap();
    assert_eq!(back, t);
    assert_eq!(serde_json::to_string(&Tables::new()).unwrap(), "[]");
    // Read back in any order: a repeat shares the last list, others are their own.
    for json in [
        r#"["a","b"]"#,
        r#"["a","b"]"#,
        r#"["a"]"#,
        r#"["a","c"]"#,
        "[]",
        r#"["a","b","c"]"#,
        r#"["a","b"]"#,
    ] {
        let want: Vec<String> = serde_json::from_str(json).unwrap();
        let got: Tables = serde_json::from_str(json).unwrap();
        assert_eq!(got.to_vec(), want, "{json}");
        assert_eq!(got.json(), serde_json::to_string(&want).unwrap());
    }
}

#[test]
fn a_name_defined_in_several_packs_takes_the_definition_that_explains_the_row() {
    // `osquery_info` is a query in several public packs, one of which also reads `time`
    // and `processes`; a plain osquery_info row is explained by osquery_info alone.
    let r = Resolver::builtin();
    let cols = [
        "version",
        "build_platform",
        "build_distro",
        "config_hash",
        "pid",
        "uuid",
    ];
    let got = resolve(&r, "osquery_info", &cols);
    assert_eq!(&got.tables[..], ["osquery_info"]);
}

#[test]
fn a_query_named_after_a_table_is_that_table_when_its_columns_fit() {
    let r = Resolver::builtin();
    let got = resolve(&r, "pack/Global/processes", &["pid", "name", "path"]);
    assert_eq!(
        (&got.tables[..], got.from),
        (&["processes".to_string()][..], Some(TablesFrom::Columns))
    );
    // ...but not when the row has columns the table lacks.
    let got = resolve(&r, "processes", SOCKETS);
    assert_eq!(got.tables[0], "process_open_sockets");
}

#[test]
fn a_name_logged_with_its_pack_is_that_query_whatever_the_row() {
    // Panther's own test events carry osquery_info columns under listening_ports' name.
    let r = Resolver::builtin();
    let cols = [
        "build_distro",
        "build_platform",
        "config_hash",
        "pid",
        "port",
        "uuid",
        "version",
    ];
    let got = resolve(&r, "pack_incident-response_listening_ports", &cols);
    assert_eq!(got.from, Some(TablesFrom::Sql));
    assert!(
        got.tables.contains(&"listening_ports".to_string()),
        "{got:?}"
    );
    // Without the pack, the same row's tables are only what its columns say.
    let got = resolve(&r, "pack/Global/listening_ports", &cols);
    assert_eq!(got.from, Some(TablesFrom::Columns), "{got:?}");
    assert_eq!(got.tables[0], "osquery_info", "{got:?}");
}
