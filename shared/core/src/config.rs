//! Site settings from `tripline.toml`: the thresholds that turn generic rules into
//! policy for one fleet (which osquery and macOS versions are acceptable, which networks
//! count as the office, when a history row is too old to alert on).
//!
//! Unknown keys are rejected rather than ignored: a typo such as `office_network` would
//! otherwise silently disable a detection while looking configured.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Level};
use crate::tables::{DefsError, QueryDefs};

/// Why a configuration could not be loaded; every variant names the file or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The I/O error is in the message, not chained as a `source`, so reporters that print
    /// the chain (anyhow's `{:#}`) do not repeat it.
    #[error("cannot read config {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// What reading it said.
        error: std::io::Error,
    },
    /// Not TOML, or not the shape of `tripline.toml`.
    #[error("invalid config{}: {message}", location(.path))]
    Parse {
        /// The file, if the config came from one.
        path: Option<String>,
        /// What the parser said, with the line.
        message: String,
    },
    /// A key whose value is not allowed.
    #[error("invalid config{}: key `{key}`: {message}", location(.path))]
    Invalid {
        /// The file, if the config came from one.
        path: Option<String>,
        /// The key, dotted (`dedup.window`).
        key: String,
        /// What is wrong with its value.
        message: String,
    },
}

impl ConfigError {
    /// This error, naming `path` as the file it came from.
    pub fn in_file(self, file: &str) -> ConfigError {
        match self {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: Some(file.to_owned()),
                message,
            },
            ConfigError::Invalid { key, message, .. } => ConfigError::Invalid {
                path: Some(file.to_owned()),
                key,
                message,
            },
            read @ ConfigError::Read { .. } => read,
        }
    }
}

fn location(path: &Option<String>) -> String {
    path.as_deref().map(|p| format!(" {p}")).unwrap_or_default()
}

/// Default for `min_osquery_version`: the oldest release still receiving fixes when this
/// pack was written; sites pin their own in `tripline.toml`.
pub const DEFAULT_MIN_OSQUERY_VERSION: &str = "5.12.1";
/// Default for `min_macos_version`: Apple ships security fixes for the latest three majors.
pub const DEFAULT_MIN_MACOS_VERSION: &str = "14.0";
/// Default for `stale_after_minutes`: one day, so a laptop that was asleep over a weekend
/// does not flood alerts with shell history replayed at wake-up.
pub const DEFAULT_STALE_AFTER_MINUTES: u64 = 1440;
/// Default for `max_samples`: enough for a responder to see variety without bloating
/// notifications.
pub const DEFAULT_MAX_SAMPLES: usize = 5;
/// Upper bound on `max_samples`: alerts travel through SNS/Slack with size limits.
pub const MAX_MAX_SAMPLES: usize = 100;

/// A dotted numeric version (`5.12.1`, `14.0`) compared component-wise, with missing
/// components treated as zero so `14` == `14.0`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Version {
    parts: Vec<u64>,
    text: String,
}

impl Version {
    /// Parses the leading dotted-number part and ignores any build suffix, because osquery
    /// reports development builds as `5.10.2-26-gb9c4d8a` and macOS as `14.2.1 (23C71)`.
    /// Returns `None` when there is no leading number at all.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
        let mut parts = Vec::new();
        for component in s.split('.') {
            let digits: &str = {
                let end = component
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(component.len());
                &component[..end]
            };
            if digits.is_empty() {
                break;
            }
            // Saturate instead of failing: a 30-digit component is still "very new".
            parts.push(digits.parse::<u64>().unwrap_or(u64::MAX));
            if digits.len() != component.len() {
                break;
            }
        }
        if parts.is_empty() {
            return None;
        }
        Some(Version {
            parts,
            text: s.to_string(),
        })
    }

    /// Builds the defaults without a fallible parse (kept equal to the constants by a test).
    fn known(parts: &[u64], text: &str) -> Version {
        Version {
            parts: parts.to_vec(),
            text: text.to_string(),
        }
    }

    /// The numeric parts of the version (`5.12.1` is `[5, 12, 1]`).
    pub fn parts(&self) -> &[u64] {
        &self.parts
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let n = self.parts.len().max(other.parts.len());
        for i in 0..n {
            let a = self.parts.get(i).copied().unwrap_or(0);
            let b = other.parts.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                std::cmp::Ordering::Equal => continue,
                ord => return ord,
            }
        }
        std::cmp::Ordering::Equal
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for Version {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Version::parse(&s).ok_or_else(|| format!("{s:?} is not a dotted version like \"5.12.1\""))
    }
}

impl From<Version> for String {
    fn from(v: Version) -> String {
        v.text
    }
}

/// Validated settings. Construct with [`Config::default`], [`Config::from_toml_str`] or
/// [`Config::load`]; fields are public so embedders (tests, the Lambda) can adjust them.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `osquery_info` rows below this version get `derived.osquery_outdated = true`.
    pub min_osquery_version: Version,
    /// macOS `os_version` rows below this version get `derived.macos_unsupported = true`.
    pub min_macos_version: Version,
    /// Networks logins are expected from; empty means "unknown", which leaves
    /// `derived.remote_outside_office` absent instead of flagging every login.
    pub office_networks: Vec<IpNet>,
    /// History rows whose own timestamp is older than this (relative to the event time)
    /// are `derived.stale`.
    pub stale_after_minutes: u64,
    /// Events kept in each alert as evidence.
    pub max_samples: usize,
    /// The fleet's query definition files (osquery config or packs, Fleet YAML), as the
    /// file named them, relative to its folder ([`Config::query_defs`] reads them).
    pub query_files: Vec<PathBuf>,
    /// Query definitions written inline (`[query_sql]`: `"<query>"` or `"<pack>/<query>"`
    /// to its SQL), the form the detect function's `TRIPLINE_CONFIG` can carry.
    pub query_sql: BTreeMap<String, String>,
    /// Which alerts each destination gets (`[routes.<destination>]`); a destination without
    /// a route gets every alert.
    pub routes: BTreeMap<String, Route>,
    /// When one rule's alerts in a window become one roll-up message (`[storm]`).
    pub storm: Storm,
    /// Built-in rules the site switches off, by name (`disable_rules`).
    pub disable_rules: Vec<String>,
}

/// The destinations a route can name, as the notify function calls them.
pub const DESTINATIONS: [&str; 5] = ["sns", "slack", "webhook", "pagerduty", "splunk"];

/// Default for `[storm] threshold`: more alerts than this from one rule in one dedup window
/// is a storm, and each destination gets one roll-up instead of the rest.
pub const DEFAULT_STORM_THRESHOLD: u32 = 25;

/// Which alerts one destination gets: those at or above `min_level`, of a rule `rules`
/// names (every rule when empty), and of no rule `exclude_rules` names. Rule names may be
/// globs (`osquery_*_backdoor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The least severe level sent.
    pub min_level: Level,
    /// Rules sent; empty: all.
    pub rules: RulePatterns,
    /// Rules never sent, whatever `rules` says.
    pub exclude_rules: RulePatterns,
}

impl Route {
    /// Whether this route sends `alert`.
    pub fn takes(&self, alert: &Alert) -> bool {
        alert.severity >= self.min_level
            && (self.rules.is_empty() || self.rules.matches(&alert.rule.name))
            && !self.exclude_rules.matches(&alert.rule.name)
    }
}

/// Rule-name globs, compiled once.
#[derive(Debug, Clone, Default)]
pub struct RulePatterns {
    text: Vec<String>,
    set: globset::GlobSet,
}

impl PartialEq for RulePatterns {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for RulePatterns {}

impl RulePatterns {
    fn new(patterns: Vec<String>) -> Result<RulePatterns, String> {
        let mut builder = globset::GlobSetBuilder::new();
        for p in &patterns {
            builder.add(globset::Glob::new(p).map_err(|e| format!("{p:?}: {e}"))?);
        }
        let set = builder.build().map_err(|e| e.to_string())?;
        Ok(RulePatterns {
            text: patterns,
            set,
        })
    }

    /// The patterns as written.
    pub fn patterns(&self) -> &[String] {
        &self.text
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Whether a pattern matches `rule`.
    pub fn matches(&self, rule: &str) -> bool {
        self.set.is_match(rule)
    }
}

/// Storm control: more than `threshold` alerts from one rule in one dedup window (a rule's own
/// threshold in `rules` first) become one roll-up message per destination; 0 turns it off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storm {
    /// Site-wide threshold.
    pub threshold: u32,
    /// Per-rule thresholds, by rule name.
    pub rules: BTreeMap<String, u32>,
}

impl Default for Storm {
    fn default() -> Self {
        Storm {
            threshold: DEFAULT_STORM_THRESHOLD,
            rules: BTreeMap::new(),
        }
    }
}

impl Storm {
    /// The threshold for `rule`, whose own (`tripline.storm`) is `own`; 0: no storm control.
    /// The site's `[storm.rules]` entry comes first (the site tunes the rules it runs), then
    /// the rule's own, then the site-wide threshold.
    pub fn threshold(&self, rule: &str, own: Option<u32>) -> u32 {
        self.rules
            .get(rule)
            .copied()
            .or(own)
            .unwrap_or(self.threshold)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_osquery_version: Version::known(&[5, 12, 1], DEFAULT_MIN_OSQUERY_VERSION),
            min_macos_version: Version::known(&[14, 0], DEFAULT_MIN_MACOS_VERSION),
            office_networks: Vec::new(),
            stale_after_minutes: DEFAULT_STALE_AFTER_MINUTES,
            max_samples: DEFAULT_MAX_SAMPLES,
            query_files: Vec::new(),
            query_sql: BTreeMap::new(),
            routes: BTreeMap::new(),
            storm: Storm::default(),
            disable_rules: Vec::new(),
        }
    }
}

/// The file as written: strings, so that errors can name the offending key and value
/// instead of surfacing a bare serde message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    min_osquery_version: Option<String>,
    min_macos_version: Option<String>,
    office_networks: Option<Vec<String>>,
    stale_after_minutes: Option<i64>,
    max_samples: Option<i64>,
    queries: Option<Vec<String>>,
    query_sql: Option<BTreeMap<String, String>>,
    routes: Option<BTreeMap<String, RawRoute>>,
    storm: Option<RawStorm>,
    disable_rules: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    min_level: Option<String>,
    rules: Option<Vec<String>>,
    exclude_rules: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorm {
    threshold: Option<i64>,
    rules: Option<BTreeMap<String, i64>>,
}

impl Config {
    /// Parses `tripline.toml` text; missing keys take their defaults.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        Self::parse(text, None)
    }

    /// Reads and parses a `tripline.toml` file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.display().to_string(),
            error,
        })?;
        let mut cfg = Self::parse(&text, Some(path.display().to_string()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for file in &mut cfg.query_files {
            if file.is_relative() {
                *file = dir.join(&*file);
            }
        }
        Ok(cfg)
    }

    /// The query definitions this config names: its `queries` files, then its
    /// `[query_sql]` table (a key `"<pack>/<query>"` defines a pack query).
    pub fn query_defs(&self) -> Result<QueryDefs, DefsError> {
        let mut defs = QueryDefs::new();
        for file in &self.query_files {
            defs.extend(QueryDefs::load(file)?);
        }
        self.define_inline_queries(&mut defs);
        Ok(defs)
    }

    /// Adds the `[query_sql]` table to `defs` (a key `"<pack>/<query>"` defines a pack query).
    pub fn define_inline_queries(&self, defs: &mut QueryDefs) {
        for (key, sql) in &self.query_sql {
            let (pack, name) = match key.split_once('/') {
                Some((pack, name)) if !pack.is_empty() && !name.is_empty() => (Some(pack), name),
                _ => (None, key.as_str()),
            };
            defs.define(pack, name, sql, "tripline.toml [query_sql]");
        }
    }

    /// Builds a config from an already-parsed TOML/YAML/JSON-like table, so rule test files
    /// can carry a `config:` block with the same keys and the same validation.
    pub fn from_json_value(value: &serde_json::Value) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            serde_json::from_value(value.clone()).map_err(|e| ConfigError::Parse {
                path: None,
                message: e.to_string(),
            })?;
        Self::from_raw(raw, None)
    }

    fn parse(text: &str, path: Option<String>) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Self::from_raw(raw, path)
    }

    fn from_raw(raw: RawConfig, path: Option<String>) -> Result<Config, ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.clone(),
            key: key.to_string(),
            message,
        };
        let mut cfg = Config::default();
        if let Some(v) = raw.min_osquery_version {
            cfg.min_osquery_version =
                Version::try_from(v.clone()).map_err(|m| invalid("min_osquery_version", m))?;
        }
        if let Some(v) = raw.min_macos_version {
            cfg.min_macos_version =
                Version::try_from(v.clone()).map_err(|m| invalid("min_macos_version", m))?;
        }
        if let Some(nets) = raw.office_networks {
            let mut parsed = Vec::with_capacity(nets.len());
            for (i, net) in nets.iter().enumerate() {
                parsed.push(parse_network(net).map_err(|m| {
                    invalid(&format!("office_networks[{i}]"), format!("{net:?}: {m}"))
                })?);
            }
            cfg.office_networks = parsed;
        }
        if let Some(m) = raw.stale_after_minutes {
            if m <= 0 {
                return Err(invalid(
                    "stale_after_minutes",
                    format!("must be a positive number of minutes, got {m}"),
                ));
            }
            cfg.stale_after_minutes = m as u64;
        }
        if let Some(n) = raw.max_samples {
            if !(0..=MAX_MAX_SAMPLES as i64).contains(&n) {
                return Err(invalid(
                    "max_samples",
                    format!("must be between 0 and {MAX_MAX_SAMPLES}, got {n}"),
                ));
            }
            cfg.max_samples = n as usize;
        }
        cfg.query_files = raw
            .queries
            .unwrap_or_default()
            .into_iter()
            .map(PathBuf::from)
            .collect();
        cfg.query_sql = raw.query_sql.unwrap_or_default();
        cfg.disable_rules = raw.disable_rules.unwrap_or_default();
        for (dest, route) in raw.routes.unwrap_or_default() {
            let key = |k: &str| format!("routes.{dest}.{k}");
            if !DESTINATIONS.contains(&dest.as_str()) {
                return Err(invalid(
                    &format!("routes.{dest}"),
                    format!("no destination called {dest:?}; destinations are {DESTINATIONS:?}"),
                ));
            }
            let min_level = match route.min_level {
                Some(l) => l
                    .parse()
                    .map_err(|m: String| invalid(&key("min_level"), m))?,
                None => Level::Informational,
            };
            let patterns = |k: &str, v: Option<Vec<String>>| {
                RulePatterns::new(v.unwrap_or_default()).map_err(|m| invalid(&key(k), m))
            };
            let route = Route {
                min_level,
                rules: patterns("rules", route.rules)?,
                exclude_rules: patterns("exclude_rules", route.exclude_rules)?,
            };
            cfg.routes.insert(dest, route);
        }
        if let Some(storm) = raw.storm {
            let count = |k: &str, n: i64| {
                u32::try_from(n).map_err(|_| {
                    invalid(k, format!("must be a number of alerts (0: off), got {n}"))
                })
            };
            if let Some(n) = storm.threshold {
                cfg.storm.threshold = count("storm.threshold", n)?;
            }
            for (rule, n) in storm.rules.unwrap_or_default() {
                let n = count(&format!("storm.rules.{rule}"), n)?;
                cfg.storm.rules.insert(rule, n);
            }
        }
        Ok(cfg)
    }

    /// Whether `destination` sends `alert` (`[routes]`; no route: every alert).
    pub fn routes_to(&self, destination: &str, alert: &Alert) -> bool {
        self.routes
            .get(destination)
            .is_none_or(|route| route.takes(alert))
    }

    /// Whether an address falls inside one of `office_networks`.
    pub fn in_office(&self, ip: std::net::IpAddr) -> bool {
        self.office_networks.iter().any(|n| n.contains(&ip))
    }
}

/// Accepts CIDRs and bare addresses (a single office egress IP is common), the latter as
/// a host route.
fn parse_network(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    match s.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(IpNet::from(ip)),
        Err(_) => Err("not a CIDR such as \"10.0.0.0/8\" or an IP address".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commented-out setting (`key = value`, `"key" = value` or `[table]`), not prose.
    fn is_setting(line: &str) -> bool {
        line.starts_with('[')
            || line.split_once(" = ").is_some_and(|(key, _)| {
                key.starts_with('"') || key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            })
    }

    #[test]
    fn the_example_file_parses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tripline.example.toml");
        let c = Config::load(path).unwrap();
        assert_eq!(c, Config::default(), "the example shows the defaults");
        assert!(c.query_files.is_empty() && c.query_sql.is_empty());
        // Its commented-out examples parse too.
        let text = std::fs::read_to_string(path).unwrap();
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if is_setting(rest) => rest,
                _ => l,
            })
            .filter(|l| !l.starts_with("office_networks = []") && !l.starts_with("queries = []"))
            .filter(|l| !l.starts_with("queries = [\"osquery.conf"))
            .collect::<Vec<_>>()
            .join("\n");
        let all = Config::from_toml_str(&uncommented).unwrap();
        assert_eq!(all.routes["pagerduty"].min_level, Level::Critical);
        assert_eq!(all.storm.threshold("osquery_new_listening_port", None), 100);
        assert_eq!(all.office_networks.len(), 4);
        assert!(c.query_defs().unwrap().is_empty());
    }

    #[test]
    fn query_definitions_inline_and_by_file() {
        let c = Config::from_toml_str(
            "[query_sql]\n\"conns\" = \"SELECT * FROM process_open_sockets\"\n\
             \"it-ops/cron\" = \"SELECT * FROM crontab\"\n",
        )
        .unwrap();
        let defs = c.query_defs().unwrap();
        let tables = |pack, q| defs.lookup(pack, q, q)[0].tables.clone().unwrap();
        assert_eq!(tables(None, "conns"), ["process_open_sockets"]);
        assert_eq!(tables(Some("it-ops"), "cron"), ["crontab"]);
        // Files are read relative to the config file, and a missing one is an error.
        let dir = std::env::temp_dir().join(format!("tripline-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tripline.toml"), "queries = [\"q.conf\"]\n").unwrap();
        let c = Config::load(dir.join("tripline.toml")).unwrap();
        assert_eq!(c.query_files, [dir.join("q.conf")]);
        let e = c.query_defs().unwrap_err().to_string();
        assert!(e.contains("q.conf"), "{e}");
        std::fs::write(
            dir.join("q.conf"),
            r#"{"schedule": {"u": {"query": "select * from users"}}}"#,
        )
        .unwrap();
        assert_eq!(c.query_defs().unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn alert(rule: &str, severity: Level) -> Alert {
        let mut a = crate::notify::fixtures::alert();
        let mut r = (*a.rule).clone();
        r.name = rule.into();
        a.rule = std::sync::Arc::new(r);
        a.severity = severity;
        a
    }

    #[test]
    fn routes_by_level_and_rule_globs() {
        let c = Config::from_toml_str(
            r#"
            [routes.pagerduty]
            min_level = "critical"
            [routes.slack]
            min_level = "medium"
            rules = ["osquery_*shell*", "osquery_suspicious_cron"]
            exclude_rules = ["osquery_bind_shell"]
            [storm]
            threshold = 10
            [storm.rules]
            osquery_new_listening_port = 0
            "#,
        )
        .unwrap();
        let cron_high = alert("osquery_suspicious_cron", Level::High);
        assert!(!c.routes_to("pagerduty", &cron_high));
        assert!(c.routes_to("pagerduty", &alert("x", Level::Critical)));
        assert!(c.routes_to("slack", &cron_high));
        assert!(c.routes_to("slack", &alert("osquery_reverse_shell", Level::Medium)));
        assert!(!c.routes_to("slack", &alert("osquery_reverse_shell", Level::Low)));
        assert!(!c.routes_to("slack", &alert("osquery_bind_shell", Level::Critical)));
        assert!(!c.routes_to("slack", &alert("osquery_ld_preload", Level::Critical)));
        assert!(
            c.routes_to("webhook", &alert("anything", Level::Informational)),
            "no route: all"
        );
        assert_eq!(c.storm.threshold("osquery_suspicious_cron", None), 10);
        assert_eq!(c.storm.threshold("osquery_new_listening_port", None), 0);
        assert_eq!(
            Config::default().storm.threshold("x", None),
            DEFAULT_STORM_THRESHOLD
        );
        // The site's [storm.rules] over the rule's own tripline.storm, over the site-wide one.
        assert_eq!(
            c.storm.threshold("osquery_new_listening_port", Some(500)),
            0
        );
        assert_eq!(c.storm.threshold("osquery_other", Some(500)), 500);
        assert_eq!(c.storm.threshold("osquery_other", Some(0)), 0);
    }

    #[test]
    fn bad_routes_name_the_key() {
        for (text, key) in [
            ("[routes.email]\nmin_level = \"high\"", "routes.email"),
            (
                "[routes.slack]\nmin_level = \"severe\"",
                "routes.slack.min_level",
            ),
            ("[routes.slack]\nrules = [\"a[\"]", "routes.slack.rules"),
            ("[routes.slack]\nlevel = \"high\"", "level"),
            ("[storm]\nthreshold = -1", "storm.threshold"),
        ] {
            let e = Config::from_toml_str(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn defaults_when_empty() {
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.stale_after_minutes, 1440);
        assert_eq!(c.min_osquery_version.to_string(), "5.12.1");
        assert!(c.office_networks.is_empty());
        assert_eq!(
            c.min_osquery_version,
            Version::parse(DEFAULT_MIN_OSQUERY_VERSION).unwrap()
        );
        assert_eq!(
            c.min_macos_version,
            Version::parse(DEFAULT_MIN_MACOS_VERSION).unwrap()
        );
    }

    #[test]
    fn parses_all_keys() {
        let c = Config::from_toml_str(
            r#"
            min_osquery_version = "5.13.0"
            min_macos_version = "15.1"
            office_networks = ["10.0.0.0/8", "2001:db8::/32", "203.0.113.7"]
            stale_after_minutes = 60
            max_samples = 3
            "#,
        )
        .unwrap();
        assert_eq!(c.min_osquery_version, Version::parse("5.13").unwrap());
        assert_eq!(c.office_networks.len(), 3);
        assert!(c.in_office("10.1.2.3".parse().unwrap()));
        assert!(c.in_office("203.0.113.7".parse().unwrap()));
        assert!(!c.in_office("203.0.113.8".parse().unwrap()));
        assert!(c.in_office("2001:db8::1".parse().unwrap()));
        assert_eq!(c.stale_after_minutes, 60);
        assert_eq!(c.max_samples, 3);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml_str("office_network = []").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("office_network"), "{msg}");
        assert!(msg.contains("unknown field"), "{msg}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Config::from_toml_str(r#"office_networks = ["10.0.0.0/8", "nope"]"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("office_networks[1]") && e.contains("nope"),
            "{e}"
        );
        let e = Config::from_toml_str(r#"min_osquery_version = "latest""#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("min_osquery_version"), "{e}");
        let e = Config::from_toml_str("stale_after_minutes = 0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("stale_after_minutes"), "{e}");
        let e = Config::from_toml_str("max_samples = 100000")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_samples"), "{e}");
        let e = Config::from_toml_str("stale_after_minutes = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("stale_after_minutes"), "{e}");
    }

    #[test]
    fn load_reports_path() {
        let e = Config::load("/nonexistent/tripline.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/tripline.toml"), "{e}");
    }

    #[test]
    fn from_json_value_rejects_unknown() {
        let v = serde_json::json!({"office_networks": ["192.168.0.0/16"], "max_samples": 2});
        let c = Config::from_json_value(&v).unwrap();
        assert_eq!(c.max_samples, 2);
        let v = serde_json::json!({"stale_minutes": 5});
        assert!(Config::from_json_value(&v)
            .unwrap_err()
            .to_string()
            .contains("stale_minutes"));
    }

    #[test]
    fn version_compare() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("5.10.2-26-gb9c4d8a") < v("5.12.1"));
        assert!(v("5.12.1") >= v("5.12.1"));
        assert!(v("5.12") < v("5.12.1"));
        assert_eq!(v("14"), v("14.0.0"));
        assert!(v("5.9.1") < v("5.10.0"), "numeric, not lexicographic");
        assert!(v("14.2.1 (23C71)") > v("14.0"));
        assert!(v("v5.13.1") > v("5.12.1"));
        assert_eq!(v("5.10.2-26-gb9c4d8a").parts(), &[5, 10, 2]);
        assert!(Version::parse("").is_none());
        assert!(Version::parse("abc").is_none());
        assert!(Version::parse("99999999999999999999999.1").is_some());
    }
}
