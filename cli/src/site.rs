//! `--site DIR`: a site directory (`tripline.toml`, `rules/`, `filters/`, `queries/`,
//! `iocs/`; see `tripline_core::site`) given whole, as the deployed functions read it from
//! the bucket. It stands for the options that give its parts one by one (`--config`,
//! `--site-rules`, `--disable`, `--filters`, `--queries`, `--iocs`), which it fills in; giving
//! both a site and one of those parts is an error, so no part is silently ignored.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tripline_core::site::{Site, CONFIG_FILE};

use crate::rules_cmd::{FilterSource, RuleSource};

#[derive(clap::Args, Clone, Default)]
pub struct SiteArg {
    /// A site directory: tripline.toml, rules/, filters/, queries/, iocs/ (as deployed).
    #[arg(long, value_name = "DIR")]
    pub site: Option<PathBuf>,
}

/// The parts a site directory fills in; `None` where a command has no such option.
pub struct Parts<'a> {
    pub config: Option<&'a mut Option<PathBuf>>,
    pub rules: Option<&'a mut RuleSource>,
    pub filters: Option<&'a mut FilterSource>,
    pub queries: Option<&'a mut Vec<PathBuf>>,
    pub iocs: Option<&'a mut Option<PathBuf>>,
}

impl SiteArg {
    /// Fills `parts` from the site directory, after checking that the whole directory loads
    /// (the same [`Site::load`] the functions run), and returns it.
    pub fn expand(&self, parts: Parts<'_>) -> anyhow::Result<Option<Site>> {
        let Some(dir) = &self.site else {
            return Ok(None);
        };
        let site = Site::load_dir(dir).with_context(|| format!("site {}", dir.display()))?;
        for w in &site.warnings {
            eprintln!("tripline: site: warning: {w}");
        }
        let given = |what: &str| -> anyhow::Result<()> {
            bail!(
                "--site {} and {what} both given: the site directory has its own",
                dir.display()
            )
        };
        let sub = |name: &str| Some(dir.join(name)).filter(|p| p.is_dir());
        if let Some(config) = parts.config {
            if config.is_some() {
                given("--config")?;
            }
            *config = Some(dir.join(CONFIG_FILE)).filter(|p| p.is_file());
        }
        if let Some(rules) = parts.rules {
            if rules.site_rules.is_some() || !rules.disable.is_empty() {
                given("--site-rules/--disable")?;
            }
            rules.site_rules = sub("rules");
            rules.disable = site.config.disable_rules.clone();
        }
        if let Some(filters) = parts.filters {
            if filters.filters.is_some() {
                given("--filters")?;
            }
            filters.filters = sub("filters");
        }
        if let Some(queries) = parts.queries {
            if let Some(q) = sub("queries") {
                queries.extend(files(&q)?);
            }
        }
        if let Some(iocs) = parts.iocs {
            if iocs.is_some() {
                given("--iocs")?;
            }
            *iocs = sub("iocs");
        }
        Ok(Some(site))
    }
}

/// The files under `dir`, in path order, hidden ones left out.
fn files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
    {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if entry.file_type().is_file() {
            out.push(entry.into_path());
        }
    }
    Ok(out)
}
