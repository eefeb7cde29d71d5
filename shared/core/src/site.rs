//! A site directory: one team's detections as code, read the same way by the CLI (`--site
//! DIR`) and by the deployed functions (the same files under the bucket's `config/` prefix).
//!
//! ```text
//! tripline.toml   settings, routes, storm control, disabled built-in rules
//! rules/          Sigma rules: added to the built-in pack, or replacing a built-in rule by id
//! filters/        Sigma filters: suppressions, optionally with an expiry
//! queries/        the fleet's query definitions (osquery config or packs, Fleet YAML)
//! iocs/           indicator lists (plain text, CSV, STIX 2.1)
//! ```
//!
//! [`SiteFiles`] is the directory's content by relative path, wherever it came from; a
//! [`Site`] is what it compiles to. Loading either succeeds whole or fails with an error
//! naming the file, so a caller can keep the last good site when a new one is broken.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use time::Date;

use crate::config::{Config, ConfigError};
use crate::ioc::{IocError, IocSet};
use crate::rules::filters::{today_utc, FilterSet};
use crate::rules::{Detector, LoadError, RuleSet, SiteRules};
use crate::tables::{DefsError, QueryDefs, Resolver};

/// The site's settings file.
pub const CONFIG_FILE: &str = "tripline.toml";
/// The folders a site directory may have.
pub const FOLDERS: [&str; 4] = ["rules/", "filters/", "queries/", "iocs/"];
/// Most bytes a site directory may hold: IOC lists of a million indicators are tens of MiB.
pub const MAX_SITE_BYTES: u64 = 512 << 20;

/// Why a site directory could not be read or compiled; each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// A file could not be read.
    #[error("site: cannot read {path}: {error}")]
    Read {
        /// The file or folder.
        path: String,
        /// What reading it said.
        error: std::io::Error,
    },
    /// The directory is larger than [`MAX_SITE_BYTES`].
    #[error("site: more than {MAX_SITE_BYTES} bytes; is this the right directory?")]
    TooLarge,
    /// `tripline.toml` is invalid.
    #[error("site: {0}")]
    Config(#[from] ConfigError),
    /// A query definition file is invalid.
    #[error("site: {0}")]
    Queries(#[from] DefsError),
    /// `tripline.toml` names a query file the site does not have.
    #[error("site: {CONFIG_FILE} names query file {0:?}, which is not in the site directory")]
    MissingQueryFile(String),
    /// A file is not UTF-8 text where text is needed.
    #[error("site: {0} is not UTF-8 text")]
    NotText(String),
    /// A rule in `rules/` is invalid, or `disable_rules` names no built-in rule.
    #[error("site rules: {0}")]
    Rules(LoadError),
    /// A filter in `filters/` is invalid.
    #[error("site filters: {0}")]
    Filters(LoadError),
    /// An indicator list in `iocs/` is invalid.
    #[error("site iocs: {0}")]
    Iocs(#[from] IocError),
}

/// A site directory's files by path relative to it, `/`-separated (`rules/x.yml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteFiles {
    files: BTreeMap<String, Vec<u8>>,
}

impl SiteFiles {
    /// No files: a site that changes nothing.
    pub fn new() -> Self {
        SiteFiles::default()
    }

    /// Adds a file at `path` (relative, `/`-separated).
    pub fn insert(&mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), bytes.into());
    }

    /// Reads every file under `dir`, skipping hidden files and folders (`.git`).
    pub fn read_dir(dir: impl AsRef<Path>) -> Result<SiteFiles, SiteError> {
        let dir = dir.as_ref();
        let read = |path: &Path, error| SiteError::Read {
            path: path.display().to_string(),
            error,
        };
        if !dir.is_dir() {
            return Err(read(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
            ));
        }
        let mut files = SiteFiles::new();
        let mut total = 0u64;
        let walk = walkdir::WalkDir::new(dir)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walk {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(dir).to_path_buf();
                read(&path, e.into())
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let bytes = std::fs::read(entry.path()).map_err(|e| read(entry.path(), e))?;
            total += bytes.len() as u64;
            if total > MAX_SITE_BYTES {
                return Err(SiteError::TooLarge);
            }
            let rel = entry
                .path()
                .strip_prefix(dir)
                .unwrap_or(entry.path())
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.insert(rel, bytes);
        }
        Ok(files)
    }

    /// A file's bytes.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// The files under `folder` (`"rules/"`), in path order.
    pub fn under<'a>(&'a self, folder: &'a str) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        self.files
            .range(folder.to_owned()..)
            .take_while(move |(p, _)| p.starts_with(folder))
            .map(|(p, b)| (p.as_str(), b.as_slice()))
    }

    /// Every file, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(p, b)| (p.as_str(), b.as_slice()))
    }

    /// How many files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Files the layout has no place for (a `rule/` typo, a stray file): they are not read,
    /// so a caller says so. READMEs are expected and not listed.
    pub fn unplaced(&self) -> Vec<&str> {
        self.files
            .keys()
            .map(String::as_str)
            .filter(|p| *p != CONFIG_FILE && !FOLDERS.iter().any(|f| p.starts_with(f)))
            .filter(|p| !p.rsplit('/').next().unwrap_or(p).starts_with("README"))
            .collect()
    }

    fn text<'a>(&self, path: &str, bytes: &'a [u8]) -> Result<&'a str, SiteError> {
        std::str::from_utf8(bytes).map_err(|_| SiteError::NotText(path.to_owned()))
    }
}

/// What a site directory compiles to.
#[derive(Debug)]
pub struct Site {
    /// `tripline.toml` (defaults when absent).
    pub config: Config,
    /// Whether the site has a `tripline.toml` (a caller's own settings apply otherwise).
    pub has_config_file: bool,
    /// The fleet's query definitions: `queries/` and what `tripline.toml` names or inlines.
    pub queries: QueryDefs,
    /// The built-in pack with `rules/` added (or replacing built-in rules by id), less
    /// `disable_rules`.
    pub rules: Arc<RuleSet>,
    /// `filters/`, compiled against `rules` and judged for expiry on the day of loading.
    pub filters: Arc<FilterSet>,
    /// `iocs/`.
    pub iocs: Arc<IocSet>,
    /// Things worth saying that do not stop the site loading (stray files, query warnings).
    pub warnings: Vec<String>,
}

impl Site {
    /// Compiles `files`, judging filters' expiry by today's date (UTC).
    pub fn load(files: &SiteFiles) -> Result<Site, SiteError> {
        Site::load_on(files, today_utc())
    }

    /// Compiles `files`, judging filters' expiry by `today`.
    pub fn load_on(files: &SiteFiles, today: Date) -> Result<Site, SiteError> {
        let mut warnings: Vec<String> = files
            .unplaced()
            .into_iter()
            .map(|p| {
                format!(
                    "{p}: not read (a site has {CONFIG_FILE} and the folders {})",
                    FOLDERS.join(", ")
                )
            })
            .collect();
        let config = match files.get(CONFIG_FILE) {
            Some(bytes) => Config::from_toml_str(files.text(CONFIG_FILE, bytes)?)
                .map_err(|e| e.in_file(CONFIG_FILE))?,
            None => Config::default(),
        };
        let mut queries = QueryDefs::new();
        for file in &config.query_files {
            let path = file.to_string_lossy().replace('\\', "/");
            let path = path.trim_start_matches("./");
            let bytes = files
                .get(path)
                .ok_or_else(|| SiteError::MissingQueryFile(path.to_owned()))?;
            queries.add_text(files.text(path, bytes)?, path, Some(Path::new(path)))?;
        }
        for (path, bytes) in files.under("queries/") {
            queries.add_text(files.text(path, bytes)?, path, Some(Path::new(path)))?;
        }
        config.define_inline_queries(&mut queries);
        warnings.extend(queries.warnings().iter().cloned());

        let texts = |folder: &'static str| -> Result<Vec<(String, String)>, SiteError> {
            files
                .under(folder)
                .map(|(p, b)| Ok((p.to_owned(), files.text(p, b)?.to_owned())))
                .collect()
        };
        let site_rules =
            SiteRules::from_sources(texts("rules/")?).disable(config.disable_rules.clone());
        let rules = RuleSet::builtin_with(&site_rules).map_err(SiteError::Rules)?;
        warnings.extend(rules.warnings().iter().map(|w| w.to_string()));
        let filters = FilterSet::from_sources(&rules, texts("filters/")?, today)
            .map_err(SiteError::Filters)?;
        warnings.extend(filters.warnings().iter().map(|w| w.to_string()));
        let iocs = IocSet::from_sources(files.under("iocs/"))?;
        Ok(Site {
            config,
            has_config_file: files.get(CONFIG_FILE).is_some(),
            queries,
            rules: Arc::new(rules),
            filters: Arc::new(filters),
            iocs: Arc::new(iocs),
            warnings,
        })
    }

    /// Reads and compiles the site directory at `dir`.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Site, SiteError> {
        Site::load(&SiteFiles::read_dir(dir)?)
    }

    /// The table resolver with the site's query definitions.
    pub fn resolver(&self) -> Resolver {
        Resolver::with_queries(self.queries.clone())
    }

    /// `detector` with the site's filters and indicator lists.
    pub fn equip(&self, detector: Detector) -> Detector {
        detector
            .with_filters(Arc::clone(&self.filters))
            .with_iocs(Arc::clone(&self.iocs))
    }
}

#[cfg(test)]
mod tests;
