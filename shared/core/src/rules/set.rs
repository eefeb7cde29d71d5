//! [`RuleSet`]: the validated rules compiled into one rsigma engine, each with its gate,
//! and evaluation of an event against them.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rsigma_eval::Engine;
use rsigma_parser::SigmaRule;

use super::check::{parse_file, problem};
use super::gate::{self, ByPath, EventLookups, Gate, RunMemo, Source};
#[cfg(doc)]
use super::Detector;
use super::{EventView, LoadError, Problem, Rule};
use crate::attack::Catalog;

/// A compiled, validated rule set. Build it once (it compiles every rule) and share it:
/// evaluation takes `&self`.
pub struct RuleSet {
    rules: Vec<Arc<Rule>>,
    engine: Engine,
    /// Per compiled rule (`engine.rules()`, same order): its gate and the index into
    /// `rules` its matches count for.
    gates: Vec<(Gate, Option<usize>)>,
    /// The fields the gates look up.
    pub(super) gate_fields: gate::GateFields,
    /// The gates filed by the field values that can satisfy them.
    pub(super) gate_index: gate::Index,
    by_name: HashMap<String, usize>,
    warnings: Vec<Problem>,
    /// Rules of the base pack a site left out ([`RuleSet::builtin_with`]), sorted.
    disabled: Vec<String>,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field("warnings", &self.warnings.len())
            .finish()
    }
}

impl RuleSet {
    /// Parses, validates and compiles `(file label, YAML text)` pairs. All problems across
    /// all files are collected before failing.
    pub fn from_sources<'a, I>(sources: I) -> Result<RuleSet, LoadError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut parsed = Parsed::default();
        for (file, text) in sources {
            parsed.add_file(file, text);
        }
        parsed.build(Vec::new())
    }
}

/// Rule files parsed and validated one by one, not yet checked against each other or
/// compiled: what [`RuleSet::from_sources`] and the site layering
/// ([`RuleSet::builtin_with`]) build from.
#[derive(Default)]
pub(super) struct Parsed {
    pub(super) rules: Vec<(Rule, SigmaRule)>,
    pub(super) problems: Vec<Problem>,
    pub(super) warnings: Vec<Problem>,
}

impl Parsed {
    pub(super) fn add_file(&mut self, file: &str, text: &str) {
        parse_file(
            Catalog::embedded(),
            file,
            text,
            &mut self.rules,
            &mut self.problems,
            &mut self.warnings,
        );
    }

    /// Checks names and ids across files, compiles, and builds the gates. `disabled` is
    /// recorded in the set (what [`RuleSet::disabled`] answers).
    pub(super) fn build(self, disabled: Vec<String>) -> Result<RuleSet, LoadError> {
        let Parsed {
            rules: parsed,
            mut problems,
            warnings,
        } = self;

        // Uniqueness across files.
        let mut names: HashMap<&str, &str> = HashMap::new();
        let mut ids: HashMap<String, &str> = HashMap::new();
        for (rule, _) in &parsed {
            if let Some(first) = names.insert(&rule.name, &rule.source) {
                problems.push(problem(
                    &rule.source,
                    Some(&rule.name),
                    "name",
                    format!("duplicate rule name, also used in {first}"),
                ));
            }
            if let Some(first) = ids.insert(rule.id.to_ascii_lowercase(), &rule.source) {
                problems.push(problem(
                    &rule.source,
                    Some(&rule.name),
                    "id",
                    format!("duplicate rule id {}, also used in {first}", rule.id),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(LoadError::Invalid(problems));
        }

        let mut engine = Engine::new();
        for (idx, err) in engine.add_rules(parsed.iter().map(|(_, s)| s)) {
            let (rule, _) = &parsed[idx];
            problems.push(problem(
                &rule.source,
                Some(&rule.name),
                "detection",
                format!("does not compile: {err}"),
            ));
        }
        if !problems.is_empty() {
            return Err(LoadError::Invalid(problems));
        }

        let rules: Vec<Arc<Rule>> = parsed.into_iter().map(|(r, _)| Arc::new(r)).collect();
        let by_id: HashMap<&str, usize> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str(), i))
            .collect();
        let mut gate_fields = gate::GateFields::default();
        let gates = engine
            .rules()
            .iter()
            .map(|compiled| {
                // Every compiled rule carries the UUID we validated and indexed, so the
                // lookup only misses if rsigma changes how it keeps ids; such a rule's
                // matches are ignored rather than attributed to the wrong rule.
                let idx = compiled.id.as_deref().and_then(|id| by_id.get(id)).copied();
                (Gate::of_rule(compiled, &mut gate_fields), idx)
            })
            .collect::<Vec<_>>();
        let gate_index = gate::Index::new(gates.iter().map(|(g, _)| g), &gate_fields);
        let by_name = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        Ok(RuleSet {
            rules,
            engine,
            gates,
            gate_fields,
            gate_index,
            by_name,
            warnings,
            disabled,
        })
    }
}

impl RuleSet {
    /// The osquery tables a rule can fire on: what its `tables` selections require of every
    /// match (from its gate), sorted. `None` when a match may come from any table (the rule
    /// also matches on a pack or name, or selects on columns alone).
    pub fn tables_of(&self, rule: usize) -> Option<Vec<String>> {
        let mut tables: Vec<String> = Vec::new();
        let mut any = false;
        for (gate, _) in self.gates.iter().filter(|(_, r)| *r == Some(rule)) {
            any = true;
            tables.extend(gate.required("tables", &self.gate_fields)?);
        }
        tables.sort_unstable();
        tables.dedup();
        any.then_some(tables)
    }

    /// Every rule, in load order (a rule's index here is the `rule` of [`RuleSet::tables_of`]).
    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// How many rules the set holds.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the set holds no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule named `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Arc<Rule>> {
        self.by_name.get(name).map(|&i| &self.rules[i])
    }

    /// The index (into [`RuleSet::rules`]) of the rule named `name`, if any.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The names of the base pack's rules that a site disabled, sorted: they are not in
    /// the set ([`RuleSet::builtin_with`]).
    pub fn disabled(&self) -> &[String] {
        &self.disabled
    }

    /// Non-fatal findings (revoked technique IDs that were remapped, rules without ATT&CK
    /// techniques, file names that differ from the rule name, rules that select on a query
    /// name without a table).
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// Indices (into [`RuleSet::rules`]) of the rules matching one eval view, in ascending
    /// order. Never fails: rsigma does all fallible work (regexes, CIDRs, modifiers) at
    /// compile time, and evaluation itself is total.
    ///
    /// Each rule's gate is checked first and rsigma evaluates only the rules it admits;
    /// the gate is a necessary condition, so the answer is the engine's own. Here the gates
    /// read `view` by field path; the [`Detector`] has them read its [`EventView`] through
    /// paths resolved once per rule set, and remember values from one event to the next.
    pub fn matching(&self, view: &impl rsigma_eval::Event) -> Vec<usize> {
        self.matching_through(&ByPath(view), view, None)
    }

    /// [`RuleSet::matching`] of the view the [`Detector`] builds. `memo` carries what the
    /// gates can reuse from one event to the next; it must only ever be used with this
    /// rule set.
    pub(crate) fn matching_view(&self, view: &EventView<'_>, memo: &mut RunMemo) -> Vec<usize> {
        self.matching_through(view, view, Some(memo))
    }

    /// The gates read `source`, rsigma reads `view`: the same event.
    fn matching_through(
        &self,
        source: &impl Source,
        view: &impl rsigma_eval::Event,
        memo: Option<&mut RunMemo>,
    ) -> Vec<usize> {
        let lookups = EventLookups::new(source, &self.gate_fields, memo);
        let compiled = self.engine.rules();
        // Only the gates the index picks out can pass; the rest are skipped unchecked.
        let mut out: Vec<usize> = self
            .gate_index
            .candidates(&lookups)
            .into_iter()
            .filter_map(|pos| {
                let (gate, idx) = &self.gates[pos as usize];
                let hit = gate.admits(&lookups)
                    && rsigma_eval::evaluate_rule(&compiled[pos as usize], view).is_some();
                hit.then_some(*idx).flatten()
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// [`RuleSet::matching`] through rsigma's engine alone, without the gates: the
    /// reference the gates are tested against.
    #[cfg(test)]
    pub(crate) fn matching_ungated(&self, view: &impl rsigma_eval::Event) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .engine
            .evaluate(view)
            .iter()
            .filter_map(|r| {
                let id = r.header.rule_id.as_deref()?;
                self.rules.iter().position(|rule| rule.id == id)
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    #[cfg(test)]
    pub(crate) fn open_gates(&self) -> Vec<&str> {
        self.gates
            .iter()
            .filter(|(g, _)| g.is_open())
            .filter_map(|(_, idx)| idx.map(|i| self.rules[i].name.as_str()))
            .collect()
    }
}
