//! The rule model: a loaded [`Rule`], its [`Level`] (the alert format's), and the [`AlertSpec`] (with its dedup
//! [`Window`]) that says how its matches become alerts.

use std::fmt;

use super::Template;
pub use crate::alert::Level;
use crate::attack::TechniqueRef;

impl From<rsigma_parser::Level> for Level {
    fn from(l: rsigma_parser::Level) -> Level {
        match l {
            rsigma_parser::Level::Informational => Level::Informational,
            rsigma_parser::Level::Low => Level::Low,
            rsigma_parser::Level::Medium => Level::Medium,
            rsigma_parser::Level::High => Level::High,
            rsigma_parser::Level::Critical => Level::Critical,
        }
    }
}

/// A dedup window, e.g. `24h`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Length in seconds, from 1 second to 366 days.
    pub seconds: u64,
    /// As the rule wrote it, so alerts say `24h` rather than a normalized `1d`.
    text: String,
}

/// Longest accepted window: beyond a year, "dedup forever" is what is meant, and a year
/// already does that in practice.
const MAX_WINDOW_SECS: u64 = 366 * 86_400;

impl Window {
    /// Parses `<n><unit>` with unit `s`, `m`, `h` or `d`.
    pub fn parse(s: &str) -> Result<Window, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a duration like 30m, 24h or 7d"))?;
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => {
                return Err(format!(
                    "{s:?}: unit must be s, m, h or d (e.g. 30m, 24h, 7d)"
                ))
            }
        };
        let seconds = n.saturating_mul(mult);
        if seconds == 0 || seconds > MAX_WINDOW_SECS {
            return Err(format!("{s:?}: window must be between 1s and 366d"));
        }
        Ok(Window {
            seconds,
            text: t.to_string(),
        })
    }

    /// Start of the window containing `unix_time`: `floor(t / w) * w`, so every process
    /// (CLI run, Lambda invocation) puts an event in the same window without shared state.
    /// `None` when that start is not representable (a hostile `unixTime` near `i64::MIN`).
    pub fn start(&self, unix_time: i64) -> Option<i64> {
        let w = self.seconds as i64;
        unix_time.div_euclid(w).checked_mul(w)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The validated `tripline:` block: how matches become alerts.
#[derive(Debug, Clone)]
pub struct AlertSpec {
    /// Title template, rendered against the first match of each alert (`tripline.title`).
    pub title: Template,
    /// Fields whose values make two matches the same alert (`tripline.dedup`): at least one,
    /// none twice.
    pub dedup: Vec<String>,
    /// Fixed-grid window that groups matches into one alert (`tripline.window`).
    pub window: Window,
    /// Matches a group needs before it becomes an alert (`tripline.threshold`): at least 1,
    /// the default.
    pub threshold: u64,
    /// The rule's own storm threshold (`tripline.storm`): more of its alerts than this in one
    /// window become one roll-up per destination; 0: never. `None`: the site's `[storm]`.
    pub storm: Option<u32>,
    /// Text telling the responder what to do (`tripline.runbook`); `None` when absent or blank.
    pub runbook: Option<String>,
    /// Also alert on `derived.stale` rows.
    pub stale: bool,
    /// Alert on a query's first run (`derived.initial`); `false` suppresses those matches.
    pub initial: bool,
}

/// One loaded rule: Sigma metadata, resolved ATT&CK techniques and the alert spec.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable snake_case identifier used in alerts, tests and `--fail-on` output.
    pub name: String,
    /// The Sigma `id` (UUID).
    pub id: String,
    /// The Sigma `title`.
    pub title: String,
    /// The Sigma `status` (`stable`, `test`, `experimental`…), when given.
    pub status: Option<String>,
    /// The Sigma `description`, when given.
    pub description: Option<String>,
    /// The Sigma `references` (URLs).
    pub references: Vec<String>,
    /// The Sigma `level`: the severity of its alerts.
    pub level: Level,
    /// The Sigma `tags`, as written (ATT&CK tags among them).
    pub tags: Vec<String>,
    /// Techniques from `attack.tNNNN` tags, resolved to current ATT&CK IDs.
    pub techniques: Vec<TechniqueRef>,
    /// Tactic shortnames from `attack.<tactic>` tags.
    pub tactics: Vec<String>,
    /// The Sigma `falsepositives`: known benign causes of a match.
    pub falsepositives: Vec<String>,
    /// The Sigma `logsource.product`, when given.
    pub product: Option<String>,
    /// The Sigma `logsource.service`, when given.
    pub service: Option<String>,
    /// The Sigma `logsource.category`, when given.
    pub category: Option<String>,
    /// Where the rule came from (file name or path), for messages.
    pub source: String,
    /// How matches become alerts (the validated `tripline:` block).
    pub alert: AlertSpec,
}
