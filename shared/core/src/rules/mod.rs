//! Sigma rules with a `tripline:` block: loaded and validated once, compiled once with
//! rsigma-eval, evaluated against every event.
//!
//! Validation is strict and reports every problem at once, naming the file and field:
//! a rule that loads but can never fire (misspelt field, unknown technique, bad window)
//! is worse than one that refuses to load, because nobody notices the silence.
//!
//! Rules are compiled into one [`rsigma_eval::Engine`]. Each rule also gets a gate (see
//! `rules/gate/`), a necessary condition such as `query == crontab` derived once per rule set,
//! so most rules are skipped with a string comparison; the rest are evaluated by rsigma,
//! reading the event through one zero-copy [`EventView`].
//!
//! A site adds to the built-in pack without editing it: rules of its own that add to or
//! replace the pack's ([`SiteRules`], [`RuleSet::builtin_with`]), and suppressions as Sigma
//! filters ([`filters::FilterSet`], applied by [`Detector::with_filters`]).

pub mod aggregate;
mod check;
pub mod detector;
pub mod filters;
mod gate;
mod load;
mod locate;
mod model;
pub mod paths;
mod set;
mod site;
pub mod testing;
mod view;

pub use check::Problem;
pub use detector::{DetectReport, DetectStats, Detector};
pub use load::LoadError;
pub use model::{AlertSpec, Level, Rule, Window};
pub use paths::Template;
pub use set::RuleSet;
pub use site::SiteRules;
pub use view::{eval_view, EventView};

/// The rule files and test files of the repository's `rules/` directory, embedded at build
/// time by `build.rs`: `(file name, contents)`, sorted by file name.
pub mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_content.rs"));
}

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_site;
