//! ATT&CK Navigator layers (format 4.5) and per-tactic coverage tables.
//!
//! A layer is the lingua franca for "where on the ATT&CK matrix are we": analysts drop the JSON
//! into <https://mitre-attack.github.io/attack-navigator/> and get a heat map without any
//! tripline-specific tooling. tripline produces two kinds:
//!
//! * **what fired**: score = number of alerts per technique, comment = which rules and how often
//!   ([`Layer::fired`]);
//! * **coverage**: score = number of distinct sources per technique, comment = their names
//!   ([`Layer::coverage`]). A source is a rule (`rule <name>`), a query mapping entry
//!   (`query: ...`, `glob: ...`, `regex: ...`, optionally `(pack ...)`) or a table mapping entry
//!   (`table: <osquery table>`): a rule detects the technique, a mapping annotates the events
//!   that are evidence of it, by the query's name or by the table the row came from. Colour
//!   runs from light green (one source) to dark green (the most sources of any technique);
//!   techniques with no source are not in the layer.
//!
//! Both are built from a [`TechniqueTally`], which resolves every ID through the catalog first:
//! Navigator silently ignores revoked IDs, so a legacy ID in a rule tag would otherwise vanish
//! from the picture instead of lighting up its current technique.
//!
//! [`Layer`] is also a plain serde model of the format, so hand-built layers and layers read back
//! from disk use the same type.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use tripline_core::attack::{Catalog, ATTACK_DOMAIN, ATTACK_VERSION};
use tripline_core::mapping::MappingEntry;

/// Navigator layer file format written by this module.
pub const LAYER_FORMAT_VERSION: &str = "4.5";

/// Navigator release the layers are written for (format 4.5 requires at least 4.9.0).
pub const NAVIGATOR_VERSION: &str = "5.1.0";

/// Light-to-dark red: "what fired" is about attention, so more alerts read as hotter.
pub const FIRED_COLORS: [&str; 3] = ["#fee0d2", "#fc9272", "#de2d26"];

/// Light-to-dark green: "coverage" is about confidence, so more sources read as greener.
pub const COVERAGE_COLORS: [&str; 3] = ["#e5f5e0", "#a1d99b", "#31a354"];

/// `versions` object of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    /// ATT&CK release the technique IDs belong to, as Navigator names releases: the major
    /// version only (`"18"` for v18.1), which is what it compares against its loaded data.
    pub attack: String,
    /// Navigator release.
    pub navigator: String,
    /// Layer format version.
    pub layer: String,
}

impl Default for Versions {
    fn default() -> Self {
        Versions {
            attack: ATTACK_VERSION
                .split('.')
                .next()
                .unwrap_or(ATTACK_VERSION)
                .to_string(),
            navigator: NAVIGATOR_VERSION.to_string(),
            layer: LAYER_FORMAT_VERSION.to_string(),
        }
    }
}

/// `filters` object: which platforms' techniques Navigator shows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Filters {
    /// ATT&CK platform names (`Linux`, `macOS`, `Windows`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
}

/// `layout` object: how Navigator draws the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Layout {
    /// `side`, `flat` or `mini`.
    pub layout: String,
    /// Show technique IDs in cells.
    #[serde(rename = "showID")]
    pub show_id: bool,
    /// Show technique names in cells.
    pub show_name: bool,
    /// Roll sub-technique scores up into their parent's cell.
    pub show_aggregate_scores: bool,
    /// Count unscored sub-techniques in the aggregate.
    pub count_unscored: bool,
    /// `average`, `min`, `max` or `sum`.
    pub aggregate_function: String,
    /// `none`, `all` or `annotated`.
    pub expanded_subtechniques: String,
}

impl Default for Layout {
    /// Sub-techniques expanded only where annotated, and parents showing the sum of their
    /// sub-techniques: tripline's annotations are often on sub-techniques (T1548.003), which
    /// would otherwise be hidden inside a collapsed parent.
    fn default() -> Self {
        Layout {
            layout: "side".to_string(),
            show_id: true,
            show_name: true,
            show_aggregate_scores: true,
            count_unscored: false,
            aggregate_function: "sum".to_string(),
            expanded_subtechniques: "annotated".to_string(),
        }
    }
}

/// `gradient` object: score-to-color scale.
///
/// The bounds are integers: MITRE's own library (mitreattack-python's `Layer`, which merges
/// layers and exports them to Excel and SVG) refuses a layer whose `minValue` or `maxValue`
/// is a float, even `0.0`. Read leniently: a float bound in a hand-made layer widens to the
/// integers around it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gradient {
    /// At least two hex colors, from `min_value` to `max_value`.
    pub colors: Vec<String>,
    /// Score mapped to the first color.
    #[serde(deserialize_with = "bound_floor")]
    pub min_value: i64,
    /// Score mapped to the last color; must be greater than `min_value`.
    #[serde(deserialize_with = "bound_ceil")]
    pub max_value: i64,
}

fn bound_floor<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    bound(d, f64::floor)
}

fn bound_ceil<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    bound(d, f64::ceil)
}

/// An integer as is; a finite float rounded by `round` (saturating at `i64`'s range).
fn bound<'de, D: serde::Deserializer<'de>>(d: D, round: fn(f64) -> f64) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.is_finite() => Ok(round(f) as i64),
        _ => Err(serde::de::Error::custom(format!(
            "gradient bound {n} is not a finite number"
        ))),
    }
}

impl Default for Gradient {
    /// Navigator's own default (red-yellow-green, 0..100).
    fn default() -> Self {
        Gradient {
            colors: vec!["#ff6666".into(), "#ffe766".into(), "#8ec843".into()],
            min_value: 0,
            max_value: 100,
        }
    }
}

/// `legendItems` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegendItem {
    /// Text.
    pub label: String,
    /// Hex color.
    pub color: String,
}

/// A `metadata` entry: a name/value pair or a divider line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetadataItem {
    /// `{"name": ..., "value": ...}`.
    Entry {
        /// Name.
        name: String,
        /// Value.
        value: String,
    },
    /// `{"divider": true}`.
    Divider {
        /// Always true when written by tripline.
        divider: bool,
    },
}

/// A `links` entry: a hyperlink or a divider line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LinkItem {
    /// `{"label": ..., "url": ...}`; Navigator requires a protocol prefix on the URL.
    Link {
        /// Text.
        label: String,
        /// `https://...`.
        url: String,
    },
    /// `{"divider": true}`.
    Divider {
        /// Always true when written by tripline.
        divider: bool,
    },
}

/// One annotated technique (or sub-technique) in a layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerTechnique {
    /// `T1059` or `T1059.004`.
    #[serde(rename = "techniqueID")]
    pub technique_id: String,
    /// Restrict the annotation to one tactic column (shortname); all columns when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tactic: Option<String>,
    /// Score; colored through the gradient unless `color` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Explicit hex color, overriding the gradient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Free text shown in the tooltip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// `false` greys the technique out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Name/value pairs shown in the tooltip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<MetadataItem>,
    /// Links in the technique's context menu.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkItem>,
    /// Expand the technique's sub-techniques by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_subtechniques: Option<bool>,
}

// The whole builder of the format: `scan --layer` and `coverage` use part of it today, the
// format tests the rest, and the HTML report will read layers back.
#[allow(dead_code)]
impl LayerTechnique {
    /// An unannotated entry for `technique_id`.
    pub fn new(technique_id: impl Into<String>) -> Self {
        LayerTechnique {
            technique_id: technique_id.into(),
            tactic: None,
            score: None,
            color: None,
            comment: None,
            enabled: None,
            metadata: Vec::new(),
            links: Vec::new(),
            show_subtechniques: None,
        }
    }

    /// Sets the score.
    pub fn score(&mut self, score: f64) -> &mut Self {
        self.score = Some(score);
        self
    }

    /// Sets the comment.
    pub fn comment(&mut self, comment: impl Into<String>) -> &mut Self {
        self.comment = Some(comment.into());
        self
    }

    /// Sets an explicit color.
    pub fn color(&mut self, color: impl Into<String>) -> &mut Self {
        self.color = Some(color.into());
        self
    }

    /// Enables or disables (greys out) the technique.
    pub fn enabled(&mut self, enabled: bool) -> &mut Self {
        self.enabled = Some(enabled);
        self
    }

    /// Appends a metadata pair.
    pub fn metadata(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.metadata.push(MetadataItem::Entry {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// Appends a link.
    pub fn link(&mut self, label: impl Into<String>, url: impl Into<String>) -> &mut Self {
        self.links.push(LinkItem::Link {
            label: label.into(),
            url: url.into(),
        });
        self
    }

    /// Expands (or collapses) sub-techniques by default.
    pub fn show_subtechniques(&mut self, show: bool) -> &mut Self {
        self.show_subtechniques = Some(show);
        self
    }
}

/// An ATT&CK Navigator layer, format 4.5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    /// Layer name (tab title in Navigator).
    pub name: String,
    /// ATT&CK, Navigator and format versions.
    #[serde(default)]
    pub versions: Versions,
    /// `enterprise-attack`.
    pub domain: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Platform filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
    /// 0/1: by name asc/desc, 2/3: by score asc/desc.
    #[serde(default)]
    pub sorting: u8,
    /// Matrix drawing options.
    #[serde(default)]
    pub layout: Layout,
    /// Omit disabled techniques instead of greying them out.
    #[serde(default)]
    pub hide_disabled: bool,
    /// Annotated techniques.
    #[serde(default)]
    pub techniques: Vec<LayerTechnique>,
    /// Score-to-color scale.
    #[serde(default)]
    pub gradient: Gradient,
    /// Legend entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legend_items: Vec<LegendItem>,
    /// Layer-level metadata.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<MetadataItem>,
    /// Layer-level links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkItem>,
    /// Color the tactic header row.
    #[serde(default)]
    pub show_tactic_row_background: bool,
    /// Tactic header row color.
    #[serde(default = "default_tactic_row_background")]
    pub tactic_row_background: String,
    /// Selecting a technique selects it in every tactic.
    #[serde(default = "yes")]
    pub select_techniques_across_tactics: bool,
    /// Selecting a technique selects its sub-techniques.
    #[serde(default = "yes")]
    pub select_subtechniques_with_parent: bool,
    /// Selection skips hidden techniques.
    #[serde(default)]
    pub select_visible_techniques: bool,
}

fn default_tactic_row_background() -> String {
    "#dddddd".to_string()
}

fn yes() -> bool {
    true
}

// The whole builder of the format: `scan --layer` and `coverage` use part of it today, the
// format tests the rest, and the HTML report will read layers back.
#[allow(dead_code)]
impl Layer {
    /// An empty enterprise layer for the embedded ATT&CK release, with tripline's layout.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Layer {
        Layer {
            name: name.into(),
            versions: Versions::default(),
            domain: ATTACK_DOMAIN.to_string(),
            description: description.into(),
            filters: None,
            sorting: 3,
            layout: Layout::default(),
            hide_disabled: false,
            techniques: Vec::new(),
            gradient: Gradient::default(),
            legend_items: Vec::new(),
            metadata: Vec::new(),
            links: Vec::new(),
            show_tactic_row_background: false,
            tactic_row_background: default_tactic_row_background(),
            select_techniques_across_tactics: true,
            select_subtechniques_with_parent: true,
            select_visible_techniques: false,
        }
    }

    /// The annotation for `technique_id` across all tactics, created if absent, so that
    /// callers can accumulate onto it (`layer.technique("T1059").score(3.0)`).
    pub fn technique(&mut self, technique_id: &str) -> &mut LayerTechnique {
        self.technique_entry(technique_id, None)
    }

    /// The annotation for `technique_id` in one tactic column only, created if absent.
    pub fn technique_in_tactic(&mut self, technique_id: &str, tactic: &str) -> &mut LayerTechnique {
        self.technique_entry(technique_id, Some(tactic))
    }

    fn technique_entry(&mut self, technique_id: &str, tactic: Option<&str>) -> &mut LayerTechnique {
        let pos = self.techniques.iter().position(|t| {
            t.technique_id.eq_ignore_ascii_case(technique_id) && t.tactic.as_deref() == tactic
        });
        let pos = match pos {
            Some(pos) => pos,
            None => {
                let mut entry = LayerTechnique::new(technique_id.trim().to_ascii_uppercase());
                entry.tactic = tactic.map(str::to_string);
                self.techniques.push(entry);
                self.techniques.len() - 1
            }
        };
        &mut self.techniques[pos]
    }

    /// Adds a fully built annotation as is.
    pub fn push_technique(&mut self, technique: LayerTechnique) -> &mut Self {
        self.techniques.push(technique);
        self
    }

    /// Replaces the gradient. `colors` needs at least two entries and `max_value` must exceed
    /// `min_value`; otherwise the call is ignored and `false` returned, because Navigator
    /// rejects such a layer outright.
    pub fn set_gradient(&mut self, colors: &[&str], min_value: i64, max_value: i64) -> bool {
        if colors.len() < 2 || max_value <= min_value {
            return false;
        }
        self.gradient = Gradient {
            colors: colors.iter().map(|c| c.to_string()).collect(),
            min_value,
            max_value,
        };
        true
    }

    /// Shows only techniques of these ATT&CK platforms (`Linux`, `macOS`, `Windows`).
    pub fn set_platforms<I, S>(&mut self, platforms: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.filters = Some(Filters {
            platforms: platforms.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Appends a layer-level metadata pair.
    pub fn add_metadata(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.metadata.push(MetadataItem::Entry {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// Appends a layer-level link.
    pub fn add_link(&mut self, label: impl Into<String>, url: impl Into<String>) -> &mut Self {
        self.links.push(LinkItem::Link {
            label: label.into(),
            url: url.into(),
        });
        self
    }

    /// Appends a legend entry.
    pub fn add_legend_item(
        &mut self,
        label: impl Into<String>,
        color: impl Into<String>,
    ) -> &mut Self {
        self.legend_items.push(LegendItem {
            label: label.into(),
            color: color.into(),
        });
        self
    }

    /// "What fired": score = alerts per technique, comment = rules with their alert counts.
    pub fn fired(
        name: impl Into<String>,
        description: impl Into<String>,
        tally: &TechniqueTally<'_>,
    ) -> Layer {
        Layer::from_tally(name, description, tally, TallyScore::Occurrences)
    }

    /// "Coverage": score = distinct sources (rules, query mappings, table mappings) per
    /// technique, comment = them.
    pub fn coverage(
        name: impl Into<String>,
        description: impl Into<String>,
        tally: &TechniqueTally<'_>,
    ) -> Layer {
        Layer::from_tally(name, description, tally, TallyScore::DistinctSources)
    }

    fn from_tally(
        name: impl Into<String>,
        description: impl Into<String>,
        tally: &TechniqueTally<'_>,
        mode: TallyScore,
    ) -> Layer {
        let mut layer = Layer::new(name, description);
        let (colors, legend) = match mode {
            TallyScore::Occurrences => (FIRED_COLORS, "alerts"),
            TallyScore::DistinctSources => (COVERAGE_COLORS, "rules and mappings"),
        };
        let mut max_score = 0u64;
        for (id, sources) in &tally.by_technique {
            let total: u64 = sources.values().sum();
            let score = match mode {
                TallyScore::Occurrences => total,
                TallyScore::DistinctSources => sources.len() as u64,
            };
            max_score = max_score.max(score);
            let listed: Vec<String> = match mode {
                TallyScore::Occurrences => {
                    let mut by_count: Vec<(&String, &u64)> = sources.iter().collect();
                    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                    by_count
                        .into_iter()
                        .map(|(source, n)| format!("{source} ({n})"))
                        .collect()
                }
                TallyScore::DistinctSources => sources.keys().cloned().collect(),
            };
            let comment = match mode {
                TallyScore::Occurrences => format!("{total} alert(s): {}", listed.join(", ")),
                TallyScore::DistinctSources => {
                    format!("covered by {score}: {}", listed.join("; "))
                }
            };
            layer.technique(id).score(score as f64).comment(comment);
        }
        let max_score = i64::try_from(max_score).unwrap_or(i64::MAX);
        layer.set_gradient(&colors, 0, max_score.max(1));
        layer.add_legend_item(format!("fewer {legend}"), colors[0]);
        layer.add_legend_item(format!("more {legend}"), colors[colors.len() - 1]);
        layer.add_metadata("generator", "tripline");
        layer.add_metadata("ATT&CK", format!("Enterprise v{}", tally.catalog.version()));
        layer
    }

    /// Pretty-printed JSON, ready to upload to Navigator.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// Reads a layer (e.g. a previous run's output, to compare or merge).
    pub fn from_json(json: &str) -> Result<Layer, serde_json::Error> {
        serde_json::from_str(json)
    }
}

#[derive(Clone, Copy)]
enum TallyScore {
    Occurrences,
    DistinctSources,
}

/// Per-technique counts of where a technique came from (rule names, query names), the input to
/// [`Layer::fired`], [`Layer::coverage`] and [`TechniqueTally::tactic_coverage`].
///
/// IDs are resolved through the catalog as they are added, so a rule tagged with the 2019 ID
/// T1169 and a query mapped to T1548.003 count towards the same cell. IDs that do not resolve are
/// kept aside in [`TechniqueTally::unresolved`] for reporting rather than dropped silently.
#[derive(Debug, Clone)]
pub struct TechniqueTally<'c> {
    catalog: &'c Catalog,
    by_technique: BTreeMap<String, BTreeMap<String, u64>>,
    unresolved: BTreeSet<String>,
}

impl Default for TechniqueTally<'static> {
    fn default() -> Self {
        TechniqueTally::new()
    }
}

impl TechniqueTally<'static> {
    /// An empty tally against the embedded catalog.
    pub fn new() -> Self {
        TechniqueTally::with_catalog(Catalog::embedded())
    }
}

// The whole builder of the format: `scan --layer` and `coverage` use part of it today, the
// format tests the rest, and the HTML report will read layers back.
#[allow(dead_code)]
impl<'c> TechniqueTally<'c> {
    /// An empty tally against a given catalog.
    pub fn with_catalog(catalog: &'c Catalog) -> Self {
        TechniqueTally {
            catalog,
            by_technique: BTreeMap::new(),
            unresolved: BTreeSet::new(),
        }
    }

    /// Counts one occurrence of `technique_id` from `source` (e.g. one alert of a rule).
    /// Returns false, and records the ID as unresolved, if it does not resolve.
    pub fn add(&mut self, technique_id: &str, source: &str) -> bool {
        self.add_n(technique_id, source, 1)
    }

    /// Counts `n` occurrences at once (e.g. pre-aggregated alert counts).
    pub fn add_n(&mut self, technique_id: &str, source: &str, n: u64) -> bool {
        match self.catalog.resolve(technique_id) {
            Some(t) => {
                let count = self
                    .by_technique
                    .entry(t.id.clone())
                    .or_default()
                    .entry(source.to_string())
                    .or_insert(0);
                *count = count.saturating_add(n);
                true
            }
            None => {
                self.unresolved.insert(technique_id.trim().to_string());
                false
            }
        }
    }

    /// Adds every technique of every mapping entry, with the entry's pattern (and pack) as the
    /// source, for coverage layers: `query: linux_sudoers (pack generic_linux)`,
    /// `table: sudoers`. Several entries for one table are one source, as they are one
    /// table's techniques; a table entry listing no techniques adds nothing.
    pub fn add_mapping_entries<'e>(&mut self, entries: impl IntoIterator<Item = &'e MappingEntry>) {
        for entry in entries {
            let source = match &entry.pack {
                Some(pack) => format!("{} (pack {pack})", entry.pattern),
                None => entry.pattern.to_string(),
            };
            for t in &entry.techniques {
                self.add(&t.id, &source);
            }
        }
    }

    /// Current technique IDs with at least one count, in ID order.
    pub fn technique_ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.by_technique.keys().map(String::as_str)
    }

    /// `(source, count)` pairs for a technique (any ID spelling; legacy IDs resolve).
    pub fn sources(&self, technique_id: &str) -> Vec<(&str, u64)> {
        self.catalog
            .resolve(technique_id)
            .and_then(|t| self.by_technique.get(&t.id))
            .map(|m| m.iter().map(|(s, n)| (s.as_str(), *n)).collect())
            .unwrap_or_default()
    }

    /// Total count for a technique.
    pub fn total(&self, technique_id: &str) -> u64 {
        self.sources(technique_id).iter().map(|(_, n)| n).sum()
    }

    /// IDs that were added but do not resolve to a current technique.
    pub fn unresolved(&self) -> impl Iterator<Item = &str> + '_ {
        self.unresolved.iter().map(String::as_str)
    }

    /// True when nothing resolvable was added.
    pub fn is_empty(&self) -> bool {
        self.by_technique.is_empty()
    }

    /// Per-tactic coverage of the tallied techniques; see [`tactic_coverage`].
    pub fn tactic_coverage(&self) -> Vec<TacticCoverage> {
        tactic_coverage(self.catalog, self.technique_ids())
    }
}

/// One row of the per-tactic coverage table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TacticCoverage {
    /// `TA0004`.
    pub tactic_id: String,
    /// `privilege-escalation`.
    pub shortname: String,
    /// `Privilege Escalation`.
    pub name: String,
    /// Parent techniques in this tactic that are covered themselves or through a sub-technique.
    pub techniques_covered: usize,
    /// Current parent techniques in this tactic.
    pub techniques_total: usize,
    /// Covered sub-techniques in this tactic.
    pub subtechniques_covered: usize,
    /// Current sub-techniques in this tactic.
    pub subtechniques_total: usize,
}

impl TacticCoverage {
    /// Share of parent techniques covered, 0..=100.
    pub fn percent(&self) -> f64 {
        if self.techniques_total == 0 {
            0.0
        } else {
            100.0 * self.techniques_covered as f64 / self.techniques_total as f64
        }
    }
}

/// Per-tactic coverage, one row per tactic in matrix order.
///
/// Counted in parent techniques, the unit people compare across tools, where a parent counts as
/// covered when it or any of its sub-techniques is (detecting T1548.003 does cover part of
/// T1548); sub-technique counts are reported alongside for the finer picture. IDs are resolved
/// through the catalog (legacy IDs count for their replacement); unresolvable ones are ignored.
pub fn tactic_coverage<'a>(
    catalog: &Catalog,
    covered: impl IntoIterator<Item = &'a str>,
) -> Vec<TacticCoverage> {
    let covered: HashSet<&str> = covered
        .into_iter()
        .filter_map(|id| catalog.resolve(id))
        .map(|t| t.id.as_str())
        .collect();
    let covered_parents: HashSet<&str> = covered
        .iter()
        .filter_map(|id| catalog.technique(id))
        .map(|t| t.parent_id())
        .collect();

    catalog
        .tactics()
        .iter()
        .map(|tactic| {
            let mut row = TacticCoverage {
                tactic_id: tactic.id.clone(),
                shortname: tactic.shortname.clone(),
                name: tactic.name.clone(),
                techniques_covered: 0,
                techniques_total: 0,
                subtechniques_covered: 0,
                subtechniques_total: 0,
            };
            for t in catalog.techniques_in_tactic(&tactic.shortname) {
                if t.subtechnique {
                    row.subtechniques_total += 1;
                    row.subtechniques_covered += usize::from(covered.contains(t.id.as_str()));
                } else {
                    row.techniques_total += 1;
                    row.techniques_covered += usize::from(covered_parents.contains(t.id.as_str()));
                }
            }
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parse(layer: &Layer) -> Value {
        serde_json::from_str(&layer.to_json().unwrap()).unwrap()
    }

    #[test]
    fn new_layer_has_the_4_5_shape() {
        let mut layer = Layer::new("tripline", "test layer");
        layer
            .technique("t1059.004")
            .score(3.0)
            .comment("fired 3 times")
            .color("#ff0000")
            .metadata("rule", "Reverse shell")
            .link("rule", "https://example.com/rules/1")
            .show_subtechniques(true);
        layer
            .technique_in_tactic("T1053", "persistence")
            .enabled(false);
        layer.set_platforms(["Linux", "macOS"]);
        layer.add_metadata("run", "2025-01-01");
        layer.add_link("tripline", "https://github.com/tripline/tripline");

        let v = parse(&layer);
        assert_eq!(v["name"], "tripline");
        assert_eq!(v["description"], "test layer");
        assert_eq!(v["domain"], "enterprise-attack");
        assert_eq!(v["versions"]["attack"], "18");
        assert_eq!(v["versions"]["navigator"], "5.1.0");
        assert_eq!(v["versions"]["layer"], "4.5");
        assert_eq!(
            v["filters"]["platforms"],
            serde_json::json!(["Linux", "macOS"])
        );
        assert_eq!(v["layout"]["showID"], true);
        assert_eq!(v["layout"]["expandedSubtechniques"], "annotated");
        assert_eq!(v["layout"]["aggregateFunction"], "sum");
        assert_eq!(v["gradient"]["colors"].as_array().unwrap().len(), 3);
        // Integers, as mitreattack-python requires (a Value compares equal to 0.0 too).
        assert!(v["gradient"]["minValue"].is_i64(), "{}", v["gradient"]);
        assert_eq!(v["gradient"]["minValue"].as_i64(), Some(0));
        assert_eq!(v["gradient"]["maxValue"].as_i64(), Some(100));
        assert_eq!(v["metadata"][0]["name"], "run");
        assert_eq!(v["links"][0]["url"], "https://github.com/tripline/tripline");
        assert_eq!(v["selectTechniquesAcrossTactics"], true);
        assert_eq!(v["tacticRowBackground"], "#dddddd");

        let t = &v["techniques"][0];
        assert_eq!(t["techniqueID"], "T1059.004");
        assert_eq!(t["score"], 3.0);
        assert_eq!(t["comment"], "fired 3 times");
        assert_eq!(t["color"], "#ff0000");
        assert_eq!(t["metadata"][0]["value"], "Reverse shell");
        assert_eq!(t["links"][0]["label"], "rule");
        assert_eq!(t["showSubtechniques"], true);
        assert!(t.get("tactic").is_none(), "absent means every tactic");
        assert!(t.get("enabled").is_none());

        let t = &v["techniques"][1];
        assert_eq!(t["techniqueID"], "T1053");
        assert_eq!(t["tactic"], "persistence");
        assert_eq!(t["enabled"], false);
        assert!(t.get("score").is_none(), "unscored stays unscored");
        assert!(t.get("metadata").is_none());

        let back = Layer::from_json(&layer.to_json().unwrap()).unwrap();
        assert_eq!(back, layer);
    }

    #[test]
    fn technique_accessor_accumulates_instead_of_duplicating() {
        let mut layer = Layer::new("n", "d");
        layer.technique("T1059").score(1.0);
        layer.technique("t1059").comment("again");
        layer.technique_in_tactic("T1059", "execution");
        assert_eq!(layer.techniques.len(), 2);
        assert_eq!(layer.techniques[0].score, Some(1.0));
        assert_eq!(layer.techniques[0].comment.as_deref(), Some("again"));
    }

    #[test]
    fn dividers_serialize_as_navigator_expects() {
        let mut t = LayerTechnique::new("T1110");
        t.metadata("a", "1");
        t.metadata.push(MetadataItem::Divider { divider: true });
        t.links.push(LinkItem::Divider { divider: true });
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["metadata"][1], serde_json::json!({"divider": true}));
        assert_eq!(v["links"][0], serde_json::json!({"divider": true}));
        let back: LayerTechnique = serde_json::from_value(v).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn navigator_example_layer_parses() {
        // Trimmed from the layer format 4.5 example in mitre-attack/attack-navigator.
        let example = r##"{
            "name": "example layer",
            "versions": {"attack": "13", "navigator": "5.1.0", "layer": "4.5"},
            "domain": "enterprise-attack",
            "description": "hello, world",
            "filters": {"platforms": ["Windows", "macOS"]},
            "sorting": 2,
            "layout": {"layout": "side", "showName": true, "showID": false,
                       "showAggregateScores": true, "countUnscored": true,
                       "aggregateFunction": "average", "expandedSubtechniques": "annotated"},
            "hideDisabled": false,
            "techniques": [
                {"techniqueID": "T1110", "score": 0, "color": "#fd8d3c", "comment": "c", "showSubtechniques": true},
                {"techniqueID": "T1078", "tactic": "discovery", "enabled": false},
                {"techniqueID": "T1053", "tactic": "privilege-escalation",
                 "metadata": [{"name": "m1", "value": "v1"}, {"divider": true}]}
            ],
            "gradient": {"colors": ["#ff6666", "#ffe766", "#8ec843"], "minValue": 0, "maxValue": 100},
            "legendItems": [{"label": "Legend Item Label", "color": "#FF00FF"}],
            "showTacticRowBackground": true,
            "tacticRowBackground": "#dddddd",
            "selectTechniquesAcrossTactics": false,
            "selectSubtechniquesWithParent": false,
            "selectVisibleTechniques": false,
            "metadata": [{"name": "layer metadata 1", "value": "v"}, {"divider": true}]
        }"##;
        let layer = Layer::from_json(example).unwrap();
        assert_eq!(layer.versions.attack, "13");
        assert_eq!(layer.techniques.len(), 3);
        assert_eq!(layer.techniques[0].score, Some(0.0));
        assert_eq!(
            layer.techniques[2].metadata[1],
            MetadataItem::Divider { divider: true }
        );
        assert_eq!(layer.legend_items[0].color, "#FF00FF");
        assert!(!layer.select_techniques_across_tactics);
        assert!(!layer.layout.show_id);

        let minimal = Layer::from_json(r#"{"name": "m", "domain": "enterprise-attack"}"#).unwrap();
        assert!(
            minimal.select_techniques_across_tactics,
            "spec default is true"
        );
        assert!(Layer::from_json(r#"{"domain": "enterprise-attack"}"#).is_err());
    }

    #[test]
    fn float_gradient_bounds_read_as_the_integers_around_them() {
        let read = |min: &str, max: &str| {
            let json = format!(
                r##"{{"name": "m", "domain": "enterprise-attack",
                "gradient": {{"colors": ["#fff", "#000"], "minValue": {min}, "maxValue": {max}}}}}"##
            );
            Layer::from_json(&json).map(|l| (l.gradient.min_value, l.gradient.max_value))
        };
        assert_eq!(read("0.0", "4.0").unwrap(), (0, 4));
        assert_eq!(read("0.5", "2.5").unwrap(), (0, 3));
        assert_eq!(read("-1", "7").unwrap(), (-1, 7));
        assert!(read("\"0\"", "1").is_err());
        // Written back as integers.
        let layer = Layer::from_json(&Layer::new("n", "d").to_json().unwrap()).unwrap();
        let v = parse(&layer);
        assert!(v["gradient"]["maxValue"].is_i64(), "{}", v["gradient"]);
    }

    #[test]
    fn gradient_rejects_what_navigator_rejects() {
        let mut layer = Layer::new("n", "d");
        assert!(!layer.set_gradient(&["#fff"], 0, 1));
        assert!(!layer.set_gradient(&["#fff", "#000"], 1, 1));
        assert!(!layer.set_gradient(&["#fff", "#000"], 2, 1));
        assert_eq!(layer.gradient, Gradient::default());
        assert!(layer.set_gradient(&["#fff", "#000"], 0, 5));
        assert_eq!(layer.gradient.max_value, 5);
    }

    #[test]
    fn fired_layer_scores_alert_counts_and_names_rules() {
        let mut tally = TechniqueTally::new();
        for _ in 0..3 {
            tally.add("T1548.003", "Sudoers modified");
        }
        tally.add("t1169", "Legacy sudo rule"); // resolves to T1548.003
        tally.add_n("T1059.004", "Reverse shell", 2);
        assert!(!tally.add("T1034", "Deprecated"));
        assert!(!tally.add("bogus", "Nope"));

        assert_eq!(tally.total("T1548.003"), 4);
        assert_eq!(
            tally.total("T1169"),
            4,
            "legacy spelling finds the same cell"
        );
        assert_eq!(tally.unresolved().collect::<Vec<_>>(), ["T1034", "bogus"]);

        let layer = Layer::fired("Fired", "last 24h", &tally);
        let v = parse(&layer);
        let techniques = v["techniques"].as_array().unwrap();
        assert_eq!(techniques.len(), 2);
        let sudo = techniques
            .iter()
            .find(|t| t["techniqueID"] == "T1548.003")
            .unwrap();
        assert_eq!(sudo["score"], 4.0);
        assert_eq!(
            sudo["comment"],
            "4 alert(s): Sudoers modified (3), Legacy sudo rule (1)"
        );
        assert_eq!(v["gradient"]["minValue"].as_i64(), Some(0));
        assert_eq!(v["gradient"]["maxValue"].as_i64(), Some(4));
        assert_eq!(v["gradient"]["colors"][0], FIRED_COLORS[0]);
        assert_eq!(v["legendItems"].as_array().unwrap().len(), 2);
        assert_eq!(v["versions"]["layer"], "4.5");
    }

    #[test]
    fn coverage_layer_counts_distinct_sources() {
        let mapper = tripline_core::mapping::Mapper::from_yaml_strs([(
            "m.yml",
            "mappings:\n  - query: linux_sudoers\n    techniques: [T1169]\n  - query: Snapshot_services\n    pack: svc\n    techniques: [T1543.003]\n",
        )])
        .unwrap();
        let mut tally = TechniqueTally::new();
        tally.add_mapping_entries(mapper.entries());
        tally.add("T1548.003", "rule: Sudoers modified");
        tally.add("T1548.003", "rule: Sudoers modified"); // same source twice: still one

        let layer = Layer::coverage("Coverage", "rules + queries", &tally);
        let v = parse(&layer);
        let sudo = v["techniques"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["techniqueID"] == "T1548.003")
            .unwrap()
            .clone();
        assert_eq!(sudo["score"], 2.0);
        assert_eq!(
            sudo["comment"],
            "covered by 2: query: linux_sudoers; rule: Sudoers modified"
        );
        let svc = v["techniques"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["techniqueID"] == "T1543.003")
            .unwrap()
            .clone();
        assert_eq!(
            svc["comment"],
            "covered by 1: query: Snapshot_services (pack svc)"
        );
        assert_eq!(v["gradient"]["maxValue"].as_i64(), Some(2));
        assert_eq!(v["gradient"]["colors"][2], COVERAGE_COLORS[2]);
    }

    #[test]
    fn coverage_layer_counts_table_mappings_as_sources() {
        let mapper = tripline_core::mapping::Mapper::from_yaml_strs([(
            "m.yml",
            "mappings:
  - query: linux_sudoers
    techniques: [T1548.003]
  - table: sudoers
    techniques: [T1548.003]
  - table: sudoers
    techniques: [T1548.003, T1098]
  - table: interface_details
    techniques: [T1040]
  - table: cpuid
    techniques: []
",
        )])
        .unwrap();
        let mut tally = TechniqueTally::new();
        tally.add_mapping_entries(mapper.entries());
        tally.add("T1548.003", "rule Sudoers modified");

        let layer = Layer::coverage("Coverage", "rules + mappings", &tally);
        let v = parse(&layer);
        let techniques = v["techniques"].as_array().unwrap();
        let find = |id: &str| techniques.iter().find(|t| t["techniqueID"] == id).unwrap();
        assert_eq!(find("T1548.003")["score"], 3.0);
        assert_eq!(
            find("T1548.003")["comment"],
            "covered by 3: query: linux_sudoers; rule Sudoers modified; table: sudoers",
            "two entries for one table are one source"
        );
        assert_eq!(
            find("T1040")["comment"],
            "covered by 1: table: interface_details"
        );
        assert_eq!(find("T1098")["score"], 1.0);
        assert_eq!(
            techniques.len(),
            3,
            "a table mapped to nothing covers nothing"
        );
        assert_eq!(v["legendItems"][1]["label"], "more rules and mappings");
    }

    #[test]
    fn empty_tally_still_makes_a_valid_layer() {
        let layer = Layer::fired("Nothing", "", &TechniqueTally::new());
        let v = parse(&layer);
        assert_eq!(v["techniques"], serde_json::json!([]));
        assert!(
            v["gradient"]["maxValue"].as_i64().unwrap()
                > v["gradient"]["minValue"].as_i64().unwrap()
        );
    }

    #[test]
    fn tactic_coverage_counts_parents_and_subtechniques() {
        let catalog = Catalog::embedded();
        let rows = tactic_coverage(catalog, ["T1548.003", "T1059", "T1169", "nope", "T1034"]);
        assert_eq!(rows.len(), 14);
        assert_eq!(rows[0].shortname, "reconnaissance");
        assert_eq!(rows[13].shortname, "impact");

        let priv_esc = rows
            .iter()
            .find(|r| r.shortname == "privilege-escalation")
            .unwrap();
        assert_eq!(priv_esc.tactic_id, "TA0004");
        assert_eq!(priv_esc.name, "Privilege Escalation");
        assert_eq!(
            priv_esc.techniques_covered, 1,
            "T1548 via its sub-technique"
        );
        assert_eq!(
            priv_esc.subtechniques_covered, 1,
            "T1169 is T1548.003, counted once"
        );
        assert_eq!(
            priv_esc.techniques_total,
            catalog
                .techniques_in_tactic("privilege-escalation")
                .filter(|t| !t.subtechnique)
                .count()
        );
        assert!(priv_esc.percent() > 0.0 && priv_esc.percent() < 100.0);

        let exec = rows.iter().find(|r| r.shortname == "execution").unwrap();
        assert_eq!(exec.techniques_covered, 1);
        assert_eq!(
            exec.subtechniques_covered, 0,
            "a parent does not cover its subs"
        );

        let recon = &rows[0];
        assert_eq!(recon.techniques_covered, 0);
        assert_eq!(recon.percent(), 0.0);
        assert!(recon.techniques_total > 0);

        let mut tally = TechniqueTally::new();
        tally.add("T1548.003", "r");
        assert_eq!(
            tally.tactic_coverage(),
            tactic_coverage(catalog, ["T1548.003"])
        );
    }
}
