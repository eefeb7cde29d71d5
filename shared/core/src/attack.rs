//! The MITRE ATT&CK Enterprise catalog, embedded at build time.
//!
//! tripline has to name techniques on every event and alert, and it runs in places (Lambda,
//! air-gapped CLIs) where fetching the 40 MB STIX bundle at run time is not an option. So a small
//! extract of ATT&CK Enterprise v18.1 (tactics, techniques, revoked/deprecated flags, first
//! sentence of each description) is compiled into the binary with `include_str!` and parsed once.
//! See `data/attack/NOTICE.md` for the MITRE attribution that must travel with it.
//!
//! Detection content outlives ATT&CK releases: the osquery-attck packs were written against 2019
//! IDs (T1169 "Sudo"), and community Sigma rules still carry revoked IDs. [`Catalog::resolve`]
//! therefore maps any ID that ATT&CK has revoked to the technique that replaced it, so coverage
//! and alerts are always expressed in current IDs.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

/// ATT&CK release the embedded catalog was extracted from.
pub const ATTACK_VERSION: &str = "18.1";

/// ATT&CK domain of the embedded catalog (the value Navigator layers expect).
pub const ATTACK_DOMAIN: &str = "enterprise-attack";

const EMBEDDED_CATALOG_JSON: &str = include_str!("../data/attack/enterprise-attack-v18.1.json");
const EMBEDDED_REMAP_TSV: &str = include_str!("../data/attack/legacy-id-remap.tsv");

/// Upper bound on revoked-by chains (a revoked ID can point at an ID that was itself revoked
/// later); real chains are short, the bound only protects against a cyclic custom remap file.
const MAX_REMAP_HOPS: usize = 16;

/// Why a catalog or remap source could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The catalog JSON does not have the expected shape.
    #[error("ATT&CK catalog JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    /// A technique or tactic ID is not in `T1234`, `T1234.001` or `TA1234` form.
    #[error("ATT&CK catalog: invalid {kind} ID {id:?}")]
    InvalidId {
        /// "technique" or "tactic".
        kind: &'static str,
        /// The offending ID as written.
        id: String,
    },
    /// The same technique or tactic appears twice.
    #[error("ATT&CK catalog: {kind} {id} is listed twice")]
    Duplicate {
        /// "technique" or "tactic".
        kind: &'static str,
        /// The duplicated ID.
        id: String,
    },
    /// A technique names a tactic that the catalog does not define.
    #[error("ATT&CK catalog: technique {technique} names unknown tactic {tactic:?}")]
    UnknownTactic {
        /// Technique ID.
        technique: String,
        /// Tactic shortname as written.
        tactic: String,
    },
    /// A line of the legacy-ID remap TSV is malformed or inconsistent with the catalog.
    #[error("legacy ID remap, line {line}: {reason}")]
    Remap {
        /// 1-based line number in the TSV.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// One ATT&CK tactic (a column of the matrix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tactic {
    /// `TA0004`.
    pub id: String,
    /// `privilege-escalation`: the key techniques and Navigator layers use.
    pub shortname: String,
    /// `Privilege Escalation`.
    pub name: String,
}

impl Tactic {
    /// Link to the tactic's page on attack.mitre.org.
    pub fn url(&self) -> String {
        format!("https://attack.mitre.org/tactics/{}", self.id)
    }
}

/// One ATT&CK technique or sub-technique, as extracted from the v18.1 STIX bundle.
///
/// Revoked and deprecated entries are kept (flagged) so that old IDs can still be recognised and
/// explained; use [`Catalog::resolve`] to land on a current technique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Technique {
    /// `T1059` or `T1059.004`, upper case.
    pub id: String,
    /// `Unix Shell`.
    pub name: String,
    /// Tactic shortnames, e.g. `["execution"]`.
    pub tactics: Vec<String>,
    /// Platforms as ATT&CK spells them (`Linux`, `macOS`, `Windows`, ...).
    pub platforms: Vec<String>,
    /// True for `T1234.001`-style sub-techniques.
    pub subtechnique: bool,
    /// ATT&CK revoked this ID (it was merged into or replaced by another technique).
    #[serde(default)]
    pub revoked: bool,
    /// ATT&CK deprecated this ID without a replacement.
    #[serde(default)]
    pub deprecated: bool,
    /// Link to the technique's page on attack.mitre.org.
    pub url: String,
    /// First sentence of the ATT&CK description, for tooltips and alert bodies.
    #[serde(default)]
    pub summary: String,
}

impl Technique {
    /// Neither revoked nor deprecated: the only techniques events and layers should name.
    pub fn is_current(&self) -> bool {
        !self.revoked && !self.deprecated
    }

    /// `T1059` for `T1059.004`, the ID itself for a parent technique.
    pub fn parent_id(&self) -> &str {
        self.id.split('.').next().unwrap_or(&self.id)
    }

    /// The compact form events and alerts carry.
    pub fn to_ref(&self) -> TechniqueRef {
        TechniqueRef {
            id: self.id.clone(),
            name: self.name.clone(),
            tactics: self.tactics.clone(),
            url: Some(self.url.clone()),
        }
    }
}

/// The technique annotation carried by events (`attack: [{id, name, tactics}]`) and alerts.
///
/// Self-contained (name and tactics are copied, not looked up later) so that stored events and
/// alerts stay readable even after the catalog moves to a newer ATT&CK release. `url` is optional
/// so that events may drop it to save bytes while alerts keep it for the notification link.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TechniqueRef {
    /// Current technique ID, e.g. `T1548.003`.
    pub id: String,
    /// Technique name, e.g. `Sudo and Sudo Caching`.
    pub name: String,
    /// Tactic shortnames, e.g. `["privilege-escalation", "defense-evasion"]`.
    pub tactics: Vec<String>,
    /// attack.mitre.org link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl TechniqueRef {
    /// A copy without the URL, for compact event records.
    pub fn without_url(&self) -> TechniqueRef {
        TechniqueRef {
            url: None,
            ..self.clone()
        }
    }
}

/// The techniques an event carries (`Event::attack`): a shared, immutable list.
///
/// Every event of a query carries the same techniques, so the stages hand each event a
/// reference to one list instead of copying every technique's strings into it (a copy per
/// event costs more than the mapping lookup itself: BENCHMARKS.md), and the list's JSON is
/// made once for it, so writing an event copies that instead of serializing the list again
/// (the parse stage writes every event's). Serializes and deserializes exactly as a
/// `Vec<TechniqueRef>` (a JSON array); the empty list allocates nothing, so events built
/// before annotation cost no more than with a `Vec`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Techniques(Option<Arc<Shared>>);

struct Shared {
    list: Box<[TechniqueRef]>,
    /// The list as `serde_json` writes it, made the first time it is asked for (lists read
    /// back by the detect stage are never written).
    json: OnceLock<Box<str>>,
}

impl PartialEq for Shared {
    fn eq(&self, other: &Shared) -> bool {
        self.list == other.list
    }
}

impl Eq for Shared {}

impl std::hash::Hash for Shared {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.list.hash(h);
    }
}

impl Techniques {
    /// The empty list.
    pub fn new() -> Techniques {
        Techniques(None)
    }

    /// Whether no technique is listed.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Drops this event's reference to the list.
    pub fn clear(&mut self) {
        self.0 = None;
    }

    /// The techniques, in order.
    pub fn as_slice(&self) -> &[TechniqueRef] {
        self.0.as_deref().map_or(&[], |s| &s.list)
    }

    /// The list as JSON, the bytes `serde_json` writes for it (`[]` when empty).
    pub fn json(&self) -> &str {
        self.0.as_deref().map_or("[]", |s| {
            s.json.get_or_init(|| {
                let json = serde_json::to_string(&s.list).expect("techniques serialize");
                json.into_boxed_str()
            })
        })
    }
}

impl fmt::Debug for Techniques {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl std::ops::Deref for Techniques {
    type Target = [TechniqueRef];

    fn deref(&self) -> &[TechniqueRef] {
        self.as_slice()
    }
}

impl<'a> IntoIterator for &'a Techniques {
    type Item = &'a TechniqueRef;
    type IntoIter = std::slice::Iter<'a, TechniqueRef>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

/// Empty lists are kept as `None`, so equality and `is_empty` need not look inside.
impl From<Vec<TechniqueRef>> for Techniques {
    fn from(list: Vec<TechniqueRef>) -> Techniques {
        if list.is_empty() {
            return Techniques(None);
        }
        Techniques(Some(Arc::new(Shared {
            list: list.into_boxed_slice(),
            json: OnceLock::new(),
        })))
    }
}

impl From<Arc<[TechniqueRef]>> for Techniques {
    fn from(list: Arc<[TechniqueRef]>) -> Techniques {
        Techniques::from(list.to_vec())
    }
}

impl Serialize for Techniques {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

/// Reading events back (the detect stage) meets the same few lists over and over, in runs:
/// each thread keeps the last list read, and a list equal to it is shared, not built again,
/// so an event's techniques cost no strings (they are compared where they lie in the input).
impl<'de> Deserialize<'de> for Techniques {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Techniques, D::Error> {
        use std::borrow::Cow;
        thread_local! {
            static LAST: std::cell::RefCell<Techniques> =
                const { std::cell::RefCell::new(Techniques(None)) };
        }
        #[derive(Deserialize)]
        struct Read<'a> {
            #[serde(borrow)]
            id: Cow<'a, str>,
            #[serde(borrow)]
            name: Cow<'a, str>,
            #[serde(borrow)]
            tactics: Vec<Cow<'a, str>>,
            #[serde(borrow, default)]
            url: Option<Cow<'a, str>>,
        }
        let read = Vec::<Read<'de>>::deserialize(d)?;
        let last = LAST.with(|l| l.borrow().clone());
        let same = read.len() == last.len()
            && read.iter().zip(last.iter()).all(|(r, t)| {
                r.id == t.id
                    && r.name == t.name
                    && r.url.as_deref() == t.url.as_deref()
                    && r.tactics.iter().map(Cow::as_ref).eq(t.tactics.iter())
            });
        if same {
            return Ok(last);
        }
        let list: Vec<TechniqueRef> = read
            .into_iter()
            .map(|r| TechniqueRef {
                id: r.id.into_owned(),
                name: r.name.into_owned(),
                tactics: r.tactics.into_iter().map(Cow::into_owned).collect(),
                url: r.url.map(Cow::into_owned),
            })
            .collect();
        let techniques = Techniques::from(list);
        LAST.with(|l| *l.borrow_mut() = techniques.clone());
        Ok(techniques)
    }
}

/// How an ID relates to the current catalog; richer than [`Catalog::resolve`] so that loaders
/// can tell the user *why* an ID is rejected (unknown vs deprecated vs revoked without a
/// known replacement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution<'a> {
    /// The ID names a current technique.
    Current(&'a Technique),
    /// The ID was revoked; `current` replaced it.
    Replaced {
        /// The revoked catalog entry.
        old: &'a Technique,
        /// The current technique that replaced it.
        current: &'a Technique,
    },
    /// ATT&CK deprecated the ID with no replacement.
    Deprecated(&'a Technique),
    /// ATT&CK revoked the ID but neither the remap table nor the catalog says what replaced it.
    RevokedUnmapped(&'a Technique),
    /// Not a technique ID, or not in this catalog.
    Unknown,
}

impl<'a> Resolution<'a> {
    /// The current technique, if there is one.
    pub fn current(self) -> Option<&'a Technique> {
        match self {
            Resolution::Current(t) | Resolution::Replaced { current: t, .. } => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for Resolution<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resolution::Current(t) => write!(f, "{} ({})", t.id, t.name),
            Resolution::Replaced { old, current } => write!(
                f,
                "{} ({}) revoked, replaced by {} ({})",
                old.id, old.name, current.id, current.name
            ),
            Resolution::Deprecated(t) => write!(
                f,
                "{} ({}) is deprecated in ATT&CK v{ATTACK_VERSION} with no replacement",
                t.id, t.name
            ),
            Resolution::RevokedUnmapped(t) => write!(
                f,
                "{} ({}) is revoked in ATT&CK v{ATTACK_VERSION} and its replacement is not known",
                t.id, t.name
            ),
            Resolution::Unknown => write!(f, "not an ATT&CK v{ATTACK_VERSION} technique"),
        }
    }
}

#[derive(Deserialize)]
struct RawCatalog {
    attack_version: String,
    domain: String,
    tactics: Vec<Tactic>,
    techniques: Vec<Technique>,
}

/// The ATT&CK catalog: tactics in matrix order, every technique (current, revoked and deprecated)
/// and the revoked-to-current map.
#[derive(Debug)]
pub struct Catalog {
    version: String,
    domain: String,
    tactics: Vec<Tactic>,
    /// Normalized tactic key (shortname, `ta0004`) -> index into `tactics`.
    tactic_index: HashMap<String, usize>,
    techniques: Vec<Technique>,
    /// Upper-case technique ID -> index into `techniques`.
    by_id: HashMap<String, usize>,
    /// Revoked technique index -> index of the current technique that replaced it (chains
    /// already followed to the end).
    replaced_by: HashMap<usize, usize>,
}

impl Catalog {
    /// The embedded ATT&CK Enterprise v18.1 catalog, parsed on first use and shared afterwards.
    ///
    /// # Panics
    /// Only if the embedded data is corrupt, which the unit tests rule out for every build.
    pub fn embedded() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            Catalog::from_sources(EMBEDDED_CATALOG_JSON, EMBEDDED_REMAP_TSV)
                .expect("embedded ATT&CK catalog is valid (checked by unit tests)")
        })
    }

    /// Builds a catalog from the extract JSON and a legacy-ID remap TSV (the formats of the
    /// files in `data/attack/`). Exposed so that a newer ATT&CK extract can be tried without a
    /// rebuild of the embedded data.
    ///
    /// Revoked techniques get their replacement from the TSV (`legacy_id`, `legacy_name`,
    /// `status`, `current_id`, ...). Where the TSV is silent, a revoked technique is mapped to
    /// the single current technique with exactly the same name: that is how ATT&CK's 2020
    /// sub-technique migration revoked most IDs (T1088 "Bypass User Account Control" became
    /// T1548.002 of the same name), and for the embedded data it agrees with every revoked-by
    /// relationship the TSV records. Anything else stays unresolved rather than guessed.
    pub fn from_sources(catalog_json: &str, remap_tsv: &str) -> Result<Catalog, CatalogError> {
        let raw: RawCatalog = serde_json::from_str(catalog_json)?;

        let mut tactic_index = HashMap::new();
        for (i, tactic) in raw.tactics.iter().enumerate() {
            if !is_tactic_id(&tactic.id) {
                return Err(CatalogError::InvalidId {
                    kind: "tactic",
                    id: tactic.id.clone(),
                });
            }
            for key in [tactic_key(&tactic.id), tactic_key(&tactic.shortname)] {
                if tactic_index.insert(key, i).is_some() {
                    return Err(CatalogError::Duplicate {
                        kind: "tactic",
                        id: tactic.id.clone(),
                    });
                }
            }
        }

        let mut techniques = raw.techniques;
        let mut by_id = HashMap::with_capacity(techniques.len());
        for (i, technique) in techniques.iter_mut().enumerate() {
            let id =
                normalize_technique_id(&technique.id).ok_or_else(|| CatalogError::InvalidId {
                    kind: "technique",
                    id: technique.id.clone(),
                })?;
            technique.id = id.clone();
            for tactic in &technique.tactics {
                if !tactic_index.contains_key(&tactic_key(tactic)) {
                    return Err(CatalogError::UnknownTactic {
                        technique: id,
                        tactic: tactic.clone(),
                    });
                }
            }
            if by_id.insert(id.clone(), i).is_some() {
                return Err(CatalogError::Duplicate {
                    kind: "technique",
                    id,
                });
            }
        }

        let explicit = parse_remap_tsv(remap_tsv, &techniques, &by_id)?;
        let replaced_by = build_replacements(&techniques, &explicit);

        Ok(Catalog {
            version: raw.attack_version,
            domain: raw.domain,
            tactics: raw.tactics,
            tactic_index,
            techniques,
            by_id,
            replaced_by,
        })
    }

    /// ATT&CK release, e.g. `18.1`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// ATT&CK domain, e.g. `enterprise-attack`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Tactics in matrix order (Reconnaissance first, Impact last), for tables and layers.
    pub fn tactics(&self) -> &[Tactic] {
        &self.tactics
    }

    /// A tactic by shortname (`privilege-escalation`), Sigma spelling (`privilege_escalation`),
    /// display name (`Privilege Escalation`) or ID (`TA0004`), case-insensitively: each source
    /// of tactic names spells them differently.
    pub fn tactic(&self, key: &str) -> Option<&Tactic> {
        self.tactic_index
            .get(&tactic_key(key))
            .map(|&i| &self.tactics[i])
    }

    /// Matrix position of a tactic (0 = Reconnaissance), for sorting.
    pub fn tactic_position(&self, key: &str) -> Option<usize> {
        self.tactic_index.get(&tactic_key(key)).copied()
    }

    /// The catalog entry for an ID exactly as ATT&CK has it, including revoked and deprecated
    /// entries. Case-insensitive (`t1059.004`). Use [`Catalog::resolve`] to follow revocations.
    pub fn technique(&self, id: &str) -> Option<&Technique> {
        let id = normalize_technique_id(id)?;
        self.by_id.get(&id).map(|&i| &self.techniques[i])
    }

    /// The current technique an ID stands for: itself if current, its replacement if revoked
    /// (T1169 -> T1548.003), `None` if deprecated without replacement or unknown.
    pub fn resolve(&self, id: &str) -> Option<&Technique> {
        self.resolution(id).current()
    }

    /// Like [`Catalog::resolve`] but says why an ID does not resolve.
    pub fn resolution(&self, id: &str) -> Resolution<'_> {
        let Some(id) = normalize_technique_id(id) else {
            return Resolution::Unknown;
        };
        let Some(&i) = self.by_id.get(&id) else {
            return Resolution::Unknown;
        };
        let technique = &self.techniques[i];
        if technique.is_current() {
            return Resolution::Current(technique);
        }
        match self.replaced_by.get(&i) {
            Some(&j) => Resolution::Replaced {
                old: technique,
                current: &self.techniques[j],
            },
            None if technique.revoked => Resolution::RevokedUnmapped(technique),
            None => Resolution::Deprecated(technique),
        }
    }

    /// [`Catalog::resolve`] turned into the form events carry.
    pub fn technique_ref(&self, id: &str) -> Option<TechniqueRef> {
        self.resolve(id).map(Technique::to_ref)
    }

    /// Every catalog entry, current or not, in catalog (ID) order.
    pub fn techniques(&self) -> impl Iterator<Item = &Technique> + '_ {
        self.techniques.iter()
    }

    /// Current techniques and sub-techniques only.
    pub fn current_techniques(&self) -> impl Iterator<Item = &Technique> + '_ {
        self.techniques.iter().filter(|t| t.is_current())
    }

    /// Current techniques and sub-techniques under a tactic (any spelling [`Catalog::tactic`]
    /// accepts); empty if the tactic is unknown.
    pub fn techniques_in_tactic<'a>(
        &'a self,
        tactic: &str,
    ) -> impl Iterator<Item = &'a Technique> + 'a {
        let shortname = self.tactic(tactic).map(|t| t.shortname.as_str());
        self.current_techniques()
            .filter(move |t| shortname.is_some_and(|s| t.tactics.iter().any(|x| x == s)))
    }

    /// Current sub-techniques of a parent technique.
    pub fn subtechniques<'a>(&'a self, parent: &str) -> impl Iterator<Item = &'a Technique> + 'a {
        let parent = normalize_technique_id(parent).filter(|p| !p.contains('.'));
        self.current_techniques().filter(move |t| {
            t.subtechnique && parent.as_deref().is_some_and(|p| t.parent_id() == p)
        })
    }

    /// The current technique a Sigma-style tag names (`attack.t1059.004`, legacy IDs resolved).
    pub fn technique_for_tag(&self, tag: &str) -> Option<&Technique> {
        parse_tag(tag).and_then(|id| self.resolve(&id))
    }

    /// The tactic a Sigma-style tag names (`attack.privilege_escalation`, `attack.ta0004`).
    pub fn tactic_for_tag(&self, tag: &str) -> Option<&Tactic> {
        let rest = strip_attack_prefix(tag)?;
        if normalize_technique_id(rest).is_some() {
            return None;
        }
        self.tactic(rest)
    }
}

/// The technique ID a Sigma-style tag carries: `attack.t1059.004` -> `T1059.004`.
///
/// Syntax only (no catalog check, no legacy resolution) so that rule loaders can report a
/// malformed tag separately from an unknown one; feed the result to [`Catalog::resolve`].
/// Group (`attack.g0016`), software (`attack.s0002`) and tactic tags return `None`.
pub fn parse_tag(tag: &str) -> Option<String> {
    normalize_technique_id(strip_attack_prefix(tag)?)
}

/// The tactic a Sigma-style tag names, against the embedded catalog:
/// `attack.persistence`, `attack.privilege_escalation`, `attack.ta0003`.
pub fn parse_tactic_tag(tag: &str) -> Option<&'static Tactic> {
    Catalog::embedded().tactic_for_tag(tag)
}

/// `T1059.004` from ` t1059.004 `; `None` for anything that is not a technique ID.
pub fn normalize_technique_id(id: &str) -> Option<String> {
    let id = id.trim();
    let b = id.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let ok = match b.len() {
        5 => digits(&b[1..5]),
        9 => digits(&b[1..5]) && b[5] == b'.' && digits(&b[6..9]),
        _ => false,
    };
    (ok && (b[0] == b'T' || b[0] == b't')).then(|| id.to_ascii_uppercase())
}

fn strip_attack_prefix(tag: &str) -> Option<&str> {
    let tag = tag.trim();
    let prefix = tag.get(..7)?;
    prefix
        .eq_ignore_ascii_case("attack.")
        .then(|| &tag[7..])
        .filter(|rest| !rest.is_empty())
}

fn is_tactic_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 6 && b[..2].eq_ignore_ascii_case(b"TA") && b[2..].iter().all(u8::is_ascii_digit)
}

/// One key for every spelling of a tactic: `Privilege Escalation`, `privilege_escalation`
/// and `privilege-escalation` all become `privilege-escalation`; `TA0004` becomes `ta0004`.
fn tactic_key(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| match c {
            '_' | ' ' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Parses the remap TSV into revoked index -> replacement index (one hop, not yet followed).
fn parse_remap_tsv(
    tsv: &str,
    techniques: &[Technique],
    by_id: &HashMap<String, usize>,
) -> Result<HashMap<usize, usize>, CatalogError> {
    let mut explicit = HashMap::new();
    let mut seen_header = false;
    for (n, line) in tsv.lines().enumerate() {
        let line_no = n + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').map(str::trim).collect();
        if !seen_header {
            seen_header = true;
            if cols.first() == Some(&"legacy_id") {
                continue;
            }
        }
        let err = |reason: String| CatalogError::Remap {
            line: line_no,
            reason,
        };
        if cols.len() < 4 {
            return Err(err(format!(
                "expected at least 4 tab-separated columns, found {}",
                cols.len()
            )));
        }
        let (legacy, status, current) = (cols[0], cols[2], cols[3]);
        let lookup = |id: &str| {
            normalize_technique_id(id)
                .and_then(|n| by_id.get(&n).copied())
                .ok_or_else(|| err(format!("{id:?} is not a technique in the catalog")))
        };
        let old = lookup(legacy)?;
        match status {
            "active" | "deprecated" => {}
            "revoked" if current.is_empty() => {}
            "revoked" => {
                let new = lookup(current)?;
                if techniques[old].is_current() {
                    return Err(err(format!(
                        "{legacy} is current in the catalog but remapped to {current}"
                    )));
                }
                explicit.insert(old, new);
            }
            other => {
                return Err(err(format!(
                    "unknown status {other:?} (expected active, revoked or deprecated)"
                )))
            }
        }
    }
    Ok(explicit)
}

/// Combines explicit remaps with the same-name rule and follows chains to a current technique.
fn build_replacements(
    techniques: &[Technique],
    explicit: &HashMap<usize, usize>,
) -> HashMap<usize, usize> {
    let mut current_by_name: HashMap<String, Option<usize>> = HashMap::new();
    for (i, t) in techniques.iter().enumerate() {
        if t.is_current() {
            current_by_name
                .entry(t.name.to_lowercase())
                .and_modify(|slot| *slot = None) // ambiguous name: never guess
                .or_insert(Some(i));
        }
    }
    let one_hop = |i: usize| -> Option<usize> {
        if let Some(&j) = explicit.get(&i) {
            return Some(j);
        }
        let t = &techniques[i];
        if !t.revoked {
            return None;
        }
        current_by_name
            .get(&t.name.to_lowercase())
            .copied()
            .flatten()
    };

    let mut replaced_by = HashMap::new();
    for (i, t) in techniques.iter().enumerate() {
        if t.is_current() {
            continue;
        }
        let mut at = i;
        for _ in 0..MAX_REMAP_HOPS {
            match one_hop(at) {
                Some(next) if techniques[next].is_current() => {
                    replaced_by.insert(i, next);
                    break;
                }
                Some(next) if next != at => at = next,
                _ => break,
            }
        }
    }
    replaced_by
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat() -> &'static Catalog {
        Catalog::embedded()
    }

    #[test]
    fn embedded_catalog_loads_with_expected_shape() {
        let c = cat();
        assert_eq!(c.version(), ATTACK_VERSION);
        assert_eq!(c.domain(), ATTACK_DOMAIN);
        assert_eq!(c.tactics().len(), 14);
        assert_eq!(c.techniques().count(), 835);
        assert!(c.current_techniques().count() > 600);
    }

    #[test]
    fn tactics_are_in_matrix_order() {
        let names: Vec<&str> = cat()
            .tactics()
            .iter()
            .map(|t| t.shortname.as_str())
            .collect();
        assert_eq!(names.first(), Some(&"reconnaissance"));
        assert_eq!(names.last(), Some(&"impact"));
        let pos = |s| names.iter().position(|n| *n == s).unwrap();
        assert!(pos("initial-access") < pos("execution"));
        assert!(pos("command-and-control") < pos("exfiltration"));
        assert_eq!(cat().tactic_position("impact"), Some(13));
    }

    #[test]
    fn tactic_lookup_accepts_every_spelling() {
        let c = cat();
        for key in [
            "privilege-escalation",
            "privilege_escalation",
            "Privilege Escalation",
            "PRIVILEGE-ESCALATION",
            "TA0004",
            "ta0004",
        ] {
            let t = c.tactic(key).unwrap_or_else(|| panic!("{key}"));
            assert_eq!(t.id, "TA0004");
            assert_eq!(t.shortname, "privilege-escalation");
            assert_eq!(t.name, "Privilege Escalation");
        }
        assert_eq!(
            c.tactic("command_and_control").unwrap().id,
            "TA0011",
            "Sigma spells multi-word tactics with underscores"
        );
        assert!(c.tactic("no-such-tactic").is_none());
        assert!(c.tactic("").is_none());
        assert_eq!(
            c.tactic("TA0001").unwrap().url(),
            "https://attack.mitre.org/tactics/TA0001"
        );
    }

    #[test]
    fn technique_lookup_is_case_insensitive_and_covers_subtechniques() {
        let c = cat();
        let t = c.technique("t1059.004").unwrap();
        assert_eq!(t.id, "T1059.004");
        assert_eq!(t.name, "Unix Shell");
        assert!(t.subtechnique);
        assert_eq!(t.parent_id(), "T1059");
        assert_eq!(t.tactics, vec!["execution"]);
        assert!(t.platforms.iter().any(|p| p == "Linux"));
        assert_eq!(t.url, "https://attack.mitre.org/techniques/T1059/004");
        assert!(!t.summary.is_empty());

        let parent = c.technique(" T1059 ").unwrap();
        assert!(!parent.subtechnique);
        assert_eq!(parent.parent_id(), "T1059");

        let subs: Vec<&str> = c.subtechniques("t1059").map(|t| t.id.as_str()).collect();
        assert!(subs.contains(&"T1059.004"));
        assert!(subs.iter().all(|s| s.starts_with("T1059.")));
        assert_eq!(c.subtechniques("T1059.004").count(), 0);
    }

    #[test]
    fn technique_lookup_rejects_garbage() {
        let c = cat();
        for bad in [
            "",
            "T",
            "T105",
            "T10599",
            "T1059.",
            "T1059.04",
            "X1059",
            "T1059.0041",
            "TA0004",
            "T99999",
            "T9999",
        ] {
            assert!(c.technique(bad).is_none(), "{bad:?}");
            assert_eq!(c.resolution(bad), Resolution::Unknown, "{bad:?}");
        }
    }

    #[test]
    fn legacy_ids_resolve_to_current_techniques() {
        let c = cat();
        // (legacy, current) pairs from legacy-id-remap.tsv.
        for (old, new) in [
            ("T1169", "T1548.003"), // Sudo
            ("T1206", "T1548.003"), // Sudo Caching
            ("t1086", "T1059.001"), // PowerShell
            ("T1060", "T1547.001"), // Registry Run Keys / Startup Folder
            ("T1050", "T1543.003"), // New Service -> Windows Service
            ("T1089", "T1562.001"), // Disabling Security Tools
            ("T1168", "T1053"),     // Local Job Scheduling -> Scheduled Task/Job
            ("T1002", "T1560"),     // Data Compressed -> Archive Collected Data
            ("T1044", "T1574.010"),
        ] {
            let r = c.resolve(old).unwrap_or_else(|| panic!("{old}"));
            assert_eq!(r.id, new, "{old}");
            assert!(r.is_current());
            assert!(c.technique(old).unwrap().revoked, "{old} is kept, flagged");
        }
        match c.resolution("T1169") {
            Resolution::Replaced { old, current } => {
                assert_eq!(old.id, "T1169");
                assert_eq!(current.id, "T1548.003");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn revoked_ids_outside_the_remap_table_resolve_by_name() {
        let c = cat();
        assert_eq!(c.resolve("T1088").unwrap().id, "T1548.002"); // Bypass UAC
        assert_eq!(c.resolve("T1099").unwrap().id, "T1070.006"); // Timestomp
    }

    #[test]
    fn current_ids_resolve_to_themselves() {
        let c = cat();
        assert_eq!(c.resolve("T1548.003").unwrap().id, "T1548.003");
        assert_eq!(c.resolve("T1003").unwrap().id, "T1003");
        assert!(matches!(c.resolution("T1003"), Resolution::Current(_)));
    }

    #[test]
    fn deprecated_ids_do_not_resolve() {
        let c = cat();
        for id in ["T1034", "T1043", "T1064", "T1108", "T1153"] {
            assert!(c.resolve(id).is_none(), "{id}");
            assert!(
                matches!(c.resolution(id), Resolution::Deprecated(_)),
                "{id}"
            );
            assert!(c.resolution(id).to_string().contains("deprecated"));
        }
    }

    #[test]
    fn every_remap_row_resolves_consistently() {
        let c = cat();
        for line in EMBEDDED_REMAP_TSV
            .lines()
            .skip_while(|l| l.starts_with('#'))
            .skip(1)
        {
            let cols: Vec<&str> = line.split('\t').collect();
            let (legacy, status, current) = (cols[0], cols[2], cols[3]);
            match status {
                "active" => assert_eq!(c.resolve(legacy).unwrap().id, legacy),
                "revoked" => assert_eq!(c.resolve(legacy).unwrap().id, current, "{legacy}"),
                "deprecated" => assert!(c.resolve(legacy).is_none(), "{legacy}"),
                other => panic!("status {other}"),
            }
        }
    }

    #[test]
    fn every_revoked_or_deprecated_entry_is_explained() {
        let c = cat();
        for t in c.techniques().filter(|t| !t.is_current()) {
            match c.resolution(&t.id) {
                Resolution::Replaced { current, .. } => assert!(current.is_current()),
                Resolution::Deprecated(_) => assert!(t.deprecated),
                Resolution::RevokedUnmapped(_) => assert!(t.revoked),
                other => panic!("{}: {other:?}", t.id),
            }
        }
    }

    #[test]
    fn tags_parse() {
        assert_eq!(parse_tag("attack.t1059.004").as_deref(), Some("T1059.004"));
        assert_eq!(parse_tag("ATTACK.T1169").as_deref(), Some("T1169"));
        assert_eq!(parse_tag(" attack.t1003 ").as_deref(), Some("T1003"));
        for not_technique in [
            "attack.persistence",
            "attack.g0016",
            "attack.s0002",
            "attack.",
            "attack",
            "t1059",
            "cve.2021-44228",
            "",
        ] {
            assert_eq!(parse_tag(not_technique), None, "{not_technique:?}");
        }

        let c = cat();
        assert_eq!(c.technique_for_tag("attack.t1169").unwrap().id, "T1548.003");
        assert!(c.technique_for_tag("attack.t1064").is_none());

        assert_eq!(parse_tactic_tag("attack.persistence").unwrap().id, "TA0003");
        assert_eq!(
            parse_tactic_tag("attack.privilege_escalation").unwrap().id,
            "TA0004"
        );
        assert_eq!(parse_tactic_tag("attack.ta0011").unwrap().id, "TA0011");
        assert!(parse_tactic_tag("attack.t1059").is_none());
        assert!(parse_tactic_tag("attack.g0016").is_none());
        assert!(parse_tactic_tag("persistence").is_none());
    }

    #[test]
    fn techniques_in_tactic_lists_current_ones() {
        let c = cat();
        let persistence: Vec<&Technique> = c.techniques_in_tactic("attack.persistence").collect();
        assert!(persistence.is_empty(), "tags are not tactic keys");
        let persistence: Vec<&Technique> = c.techniques_in_tactic("persistence").collect();
        assert!(persistence.iter().any(|t| t.id == "T1547.001"));
        assert!(persistence.iter().all(|t| t.is_current()));
        assert!(persistence
            .iter()
            .all(|t| t.tactics.iter().any(|x| x == "persistence")));
        assert_eq!(c.techniques_in_tactic("nope").count(), 0);
    }

    #[test]
    fn technique_ref_round_trips_through_json() {
        let r = cat().technique_ref("T1169").unwrap();
        assert_eq!(r.id, "T1548.003");
        assert_eq!(r.name, "Sudo and Sudo Caching");
        assert!(r.tactics.contains(&"privilege-escalation".to_string()));
        assert_eq!(
            r.url.as_deref(),
            Some("https://attack.mitre.org/techniques/T1548/003")
        );
        let json = serde_json::to_string(&r).unwrap();
        let back: TechniqueRef = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);

        let compact = serde_json::to_value(r.without_url()).unwrap();
        assert!(compact.get("url").is_none());
        let back: TechniqueRef = serde_json::from_value(compact).unwrap();
        assert_eq!(back.url, None);
    }

    #[test]
    fn bad_sources_are_errors_not_panics() {
        assert!(matches!(
            Catalog::from_sources("{", ""),
            Err(CatalogError::Json(_))
        ));
        let minimal = |techniques: &str| {
            format!(
                r#"{{"attack_version":"x","domain":"d",
                "tactics":[{{"id":"TA0001","shortname":"initial-access","name":"Initial Access"}}],
                "techniques":[{techniques}]}}"#
            )
        };
        let tech = |id: &str, tactic: &str, revoked: bool| {
            format!(
                r#"{{"id":"{id}","name":"N {id}","tactics":["{tactic}"],"platforms":[],
                "subtechnique":false,"revoked":{revoked},"deprecated":false,"url":"u"}}"#
            )
        };
        let ok = minimal(&format!(
            "{},{}",
            tech("T0001", "initial-access", true),
            tech("T0002", "initial-access", false)
        ));
        assert!(Catalog::from_sources(&ok, "").is_ok());

        let c = Catalog::from_sources(
            &ok,
            "legacy_id\tn\tstatus\tcurrent_id\nT0001\tx\trevoked\tT0002\n",
        )
        .unwrap();
        assert_eq!(c.resolve("T0001").unwrap().id, "T0002");

        assert!(matches!(
            Catalog::from_sources(&minimal(&tech("T1", "initial-access", false)), ""),
            Err(CatalogError::InvalidId { .. })
        ));
        assert!(matches!(
            Catalog::from_sources(&minimal(&tech("T0001", "nope", false)), ""),
            Err(CatalogError::UnknownTactic { .. })
        ));
        let dup = minimal(&format!(
            "{},{}",
            tech("T0001", "initial-access", false),
            tech("t0001", "initial-access", false)
        ));
        assert!(matches!(
            Catalog::from_sources(&dup, ""),
            Err(CatalogError::Duplicate { .. })
        ));
        for bad_tsv in [
            "T0001\tx\n",
            "T9999\tx\trevoked\tT0002\n",
            "T0001\tx\trevoked\tT9999\n",
            "T0001\tx\tmaybe\tT0002\n",
            "T0002\tx\trevoked\tT0001\n",
        ] {
            assert!(
                matches!(
                    Catalog::from_sources(&ok, bad_tsv),
                    Err(CatalogError::Remap { line: 1, .. })
                ),
                "{bad_tsv:?}"
            );
        }
    }

    #[test]
    fn cyclic_remaps_terminate() {
        let json = r#"{"attack_version":"x","domain":"d","tactics":[],"techniques":[
            {"id":"T0001","name":"A","tactics":[],"platforms":[],"subtechnique":false,"revoked":true,"url":"u"},
            {"id":"T0002","name":"B","tactics":[],"platforms":[],"subtechnique":false,"revoked":true,"url":"u"}]}"#;
        let tsv = "T0001\ta\trevoked\tT0002\nT0002\tb\trevoked\tT0001\n";
        let c = Catalog::from_sources(json, tsv).unwrap();
        assert!(c.resolve("T0001").is_none());
        assert!(matches!(
            c.resolution("T0002"),
            Resolution::RevokedUnmapped(_)
        ));
    }

    fn technique(id: &str, tactics: &[&str]) -> TechniqueRef {
        TechniqueRef {
            id: id.into(),
            name: format!("name of {id} \"quoted\""),
            tactics: tactics.iter().map(|t| t.to_string()).collect(),
            url: None,
        }
    }

    /// The cached JSON is what serde_json writes for the list, and reading lists back shares
    /// a list equal to the last one read instead of building it again.
    #[test]
    fn techniques_json_and_shared_reads() {
        let list = vec![
            technique("T1059.004", &["execution"]),
            technique("T1014", &["defense-evasion", "persistence"]),
        ];
        let t = Techniques::from(list.clone());
        assert_eq!(t.json(), serde_json::to_string(&list).unwrap());
        assert_eq!(serde_json::to_string(&t).unwrap(), t.json());
        assert_eq!(Techniques::new().json(), "[]");
        assert!(Techniques::from(Vec::new()).is_empty());

        let read = |text: &str| serde_json::from_str::<Techniques>(text).unwrap();
        let (a, b) = (read(t.json()), read(t.json()));
        assert_eq!((a.as_slice(), b.as_slice()), (&list[..], &list[..]));
        assert!(
            std::ptr::eq(a.json(), b.json()),
            "the second read shares the first"
        );
        // Another list, or the same with one tactic more or less, is read as it is.
        let mut other = list.clone();
        other[1].tactics.pop();
        let c = read(&serde_json::to_string(&other).unwrap());
        assert_eq!(c.as_slice(), &other[..]);
        other[1].tactics.push("persistence".into());
        other[1].tactics.push("execution".into());
        assert_eq!(
            read(&serde_json::to_string(&other).unwrap()).as_slice(),
            &other[..]
        );
        // Escaped strings (owned while read) compare and share too.
        let (d, e) = (read(t.json()), read(t.json()));
        assert!(std::ptr::eq(d.json(), e.json()));
        assert_eq!(read("[]"), Techniques::new());
        let with_url = vec![TechniqueRef {
            url: Some("https://attack.mitre.org/techniques/T1014".into()),
            ..technique("T1014", &[])
        }];
        assert_eq!(
            read(&serde_json::to_string(&with_url).unwrap()).as_slice(),
            &with_url[..]
        );
    }
}
