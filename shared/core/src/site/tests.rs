use super::*;

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/site")
}

#[test]
fn the_example_site_loads() {
    let files = SiteFiles::read_dir(example()).unwrap();
    assert!(files.get(CONFIG_FILE).is_some());
    assert!(files.under("queries/").count() >= 1);
    let site = Site::load(&files).unwrap();
    assert!(site.warnings.is_empty(), "{:?}", site.warnings);
    assert_eq!(
        site.config.storm.threshold("osquery_outdated_agent", None),
        200
    );
    let own = site.rules.get("acme_unsanctioned_remote_desktop").unwrap();
    assert_eq!(
        own.alert.storm,
        Some(50),
        "tripline.storm in the rule's YAML"
    );
    assert_eq!(
        site.rules
            .get("osquery_outdated_agent")
            .unwrap()
            .alert
            .storm,
        None
    );
    assert!(!site.config.routes_to("pagerduty", &{
        let mut a = crate::notify::fixtures::alert();
        a.severity = crate::alert::Level::High;
        a
    }));
    let defs = site
        .queries
        .lookup(None, "proc_env_sweep", "proc_env_sweep");
    assert_eq!(defs[0].tables.as_ref().unwrap(), &["process_envs"]);
}

#[test]
fn files_from_anywhere_compile_the_same() {
    let from_disk = SiteFiles::read_dir(example()).unwrap();
    let mut by_hand = SiteFiles::new();
    for (path, bytes) in from_disk.iter() {
        by_hand.insert(path, bytes.to_vec());
    }
    assert_eq!(by_hand, from_disk);
    assert_eq!(
        Site::load(&by_hand).unwrap().queries.len(),
        Site::load(&from_disk).unwrap().queries.len()
    );
    assert!(Site::load(&SiteFiles::new()).unwrap().queries.is_empty());
}

#[test]
fn errors_and_warnings_name_the_file() {
    let mut files = SiteFiles::new();
    files.insert(CONFIG_FILE, "max_samples = 1000\n");
    let e = Site::load(&files).unwrap_err().to_string();
    assert!(
        e.contains("tripline.toml") && e.contains("max_samples"),
        "{e}"
    );

    let mut files = SiteFiles::new();
    files.insert(CONFIG_FILE, "queries = [\"fleet.yml\"]\n");
    let e = Site::load(&files).unwrap_err().to_string();
    assert!(e.contains("fleet.yml"), "{e}");
    files.insert(
        "fleet.yml",
        "apiVersion: v1\nkind: query\nspec:\n  name: q\n  query: SELECT * FROM users\n",
    );
    let site = Site::load(&files).unwrap();
    assert_eq!(site.queries.len(), 1);
    assert!(
        site.warnings
            .iter()
            .any(|w| w.starts_with("fleet.yml: not read")),
        "{:?}",
        site.warnings
    );

    let mut files = SiteFiles::new();
    files.insert("queries/broken.conf", "{\"schedule\": ");
    let e = Site::load(&files).unwrap_err().to_string();
    assert!(e.contains("queries/broken.conf"), "{e}");
    files.insert("queries/broken.conf", vec![0xff, 0xfe]);
    let e = Site::load(&files).unwrap_err().to_string();
    assert!(
        e.contains("queries/broken.conf") && e.contains("UTF-8"),
        "{e}"
    );

    let mut files = SiteFiles::new();
    files.insert("rule/typo.yml", "title: x");
    files.insert("README.md", "# our site");
    let site = Site::load(&files).unwrap();
    assert_eq!(site.warnings.len(), 1, "{:?}", site.warnings);
    assert!(site.warnings[0].starts_with("rule/typo.yml"));

    let e = SiteFiles::read_dir(example().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn broken_rules_filters_and_lists_name_their_file() {
    let mut files = SiteFiles::new();
    files.insert(CONFIG_FILE, "disable_rules = [\"osquery_no_such_rule\"]\n");
    let e = Site::load(&files).unwrap_err().to_string();
    assert!(e.contains("osquery_no_such_rule"), "{e}");

    let mut files = SiteFiles::new();
    files.insert(
        CONFIG_FILE,
        "disable_rules = [\"osquery_outdated_agent\"]\n",
    );
    let site = Site::load(&files).unwrap();
    assert!(site.rules.get("osquery_outdated_agent").is_none());

    let mut files = SiteFiles::new();
    files.insert("filters/typo.yml", "title: x\nname: x\nlogsource: {product: osquery}\nfilter:\n  rules: [osquery_nope]\n  a: {host: h}\n  condition: not a\n");
    let e = Site::load(&files).unwrap_err().to_string();
    assert!(e.contains("filters/typo.yml"), "{e}");

    let mut files = SiteFiles::new();
    files.insert("iocs/list.txt", "evil.example\nnot an indicator at all\n");
    let e = Site::load(&files).unwrap_err().to_string();
    assert!(e.contains("iocs/list.txt") && e.contains(":2"), "{e}");
}
