//! Per-rule gates: necessary conditions, derived once per rule set, that an event must meet
//! before rsigma evaluates a rule against it.
//!
//! rsigma's own candidate index keeps one witness set per rule and, between the conjuncts
//! of a selection, prefers an exact literal. In osquery rules that is often
//! `action: [added, snapshot]`, which nearly every row satisfies, so many of the
//! built-in rules were evaluated on every event (the rootkit and malware packs among them,
//! each comparing the query against a hundred names). A gate keeps *every* positive
//! conjunct instead, as clauses that must all hold (a conjunction of disjunctions), and
//! checks the cheap, selective ones first: `tables`/`query`/`pack`/`name` equal to a
//! literal, then a derived field or column being present. A non-matching event is usually
//! rejected by one string comparison.
//!
//! # Soundness
//!
//! A gate may only ever *weaken* a rule: whenever the rule matches, its gate holds. The
//! derivation follows rsigma's evaluator (`rsigma_eval::compiler`) and its witness
//! analysis: a field-scoped item is false on an absent field unless its matcher is `Null`
//! (so presence is necessary), `exists: false`, negations, keyword items and vacuously
//! true selectors give no clause, and an OR only yields clauses that every branch
//! implies. Equality atoms are only taken from `Exact` matchers (alone or in an any-of
//! list) and are checked with the matcher's own string coercion and case folding. The
//! differential tests in `rules::tests` compare gated evaluation with rsigma's engine.

mod analyze;
mod compiled;
mod eval;

pub(crate) use compiled::{Gate, GateFields, Index};
pub(crate) use eval::{ByPath, EventLookups, RunMemo, Source};
