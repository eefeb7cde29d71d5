//! What a rule set's gates are once derived: atoms, clauses, each rule's [`Gate`], the
//! interned [`GateFields`] and their [`Literals`], and the [`Index`] that files the gates by
//! the field values that can satisfy them.

use memchr::memmem;
use rustc_hash::FxHashMap;

use super::eval::{fold, EventLookups, Source};
use crate::rules::view::FieldPath;

/// One necessary condition on a field.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Atom {
    /// `get_field(field)` is present.
    Present(usize),
    /// The field's value, folded as the `Exact` matcher folds it, is one of these literals
    /// (ids into the field's [`GateFields::literals`], sorted).
    Equals { field: usize, ids: Vec<u32> },
    /// The field's folded string value equals, starts with, ends with or contains one of
    /// these folded literals.
    Text {
        field: usize,
        patterns: Vec<TextPattern>,
    },
    /// The field's value as a number (how the `NumericEq` matcher reads it) is one of these.
    Number { field: usize, values: Vec<f64> },
    /// The field's value as a boolean (how the `BoolEq` matcher reads it) is this one.
    Bool { field: usize, value: bool },
}

/// How a string matcher's literal compares with the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextOp {
    Exact,
    Prefix,
    Suffix,
    Contains,
}

/// A [`Atom::Text`] literal (folded) and how it compares with the folded value.
///
/// Invariant: [`TextPattern::test`] answers what the `str` method of its [`TextOp`] does
/// (`==`, `starts_with`, `ends_with`, `contains`) on the same folded text.
#[derive(Debug, Clone)]
pub(super) enum TextPattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    /// The searcher is built once per rule set; `str::contains` sets one up on every call,
    /// and these run on long command lines. Boxed: a `Finder` is many times the size of a
    /// `String`, and unboxed it would make every pattern that large.
    Contains(Box<memmem::Finder<'static>>),
}

impl TextPattern {
    pub(super) fn new(op: TextOp, text: String) -> TextPattern {
        match op {
            TextOp::Exact => TextPattern::Exact(text),
            TextOp::Prefix => TextPattern::Prefix(text),
            TextOp::Suffix => TextPattern::Suffix(text),
            TextOp::Contains => {
                TextPattern::Contains(Box::new(memmem::Finder::new(&text).into_owned()))
            }
        }
    }

    pub(super) fn test(&self, value: &str) -> bool {
        match self {
            TextPattern::Exact(p) => value == p,
            TextPattern::Prefix(p) => value.starts_with(p.as_str()),
            TextPattern::Suffix(p) => value.ends_with(p.as_str()),
            TextPattern::Contains(finder) => finder.find(value.as_bytes()).is_some(),
        }
    }

    fn parts(&self) -> (TextOp, &[u8]) {
        match self {
            TextPattern::Exact(p) => (TextOp::Exact, p.as_bytes()),
            TextPattern::Prefix(p) => (TextOp::Prefix, p.as_bytes()),
            TextPattern::Suffix(p) => (TextOp::Suffix, p.as_bytes()),
            TextPattern::Contains(finder) => (TextOp::Contains, finder.needle()),
        }
    }
}

impl PartialEq for TextPattern {
    fn eq(&self, other: &TextPattern) -> bool {
        self.parts() == other.parts()
    }
}

/// Atoms of which at least one holds.
pub(super) type Clause = Vec<Atom>;

/// The fields the gates refer to, interned so gates name them by index, and per field the
/// literals its equality atoms compare with, interned so an event's value is looked up
/// once per field rather than once per rule.
///
/// Invariant: `paths`, `literals`, `text`, `number` and `truth` are parallel (index `i` is
/// field `i` in each), and every field index and literal id held by a [`Gate`], the
/// [`Index`] or a [`RunMemo`](super::RunMemo) was handed out by this one value.
#[derive(Debug, Default)]
pub(crate) struct GateFields {
    pub(super) paths: Vec<FieldPath>,
    /// Per field: folded literal -> id.
    pub(super) literals: Vec<Literals>,
    /// Per field: whether a text atom reads its folded value.
    pub(super) text: Vec<bool>,
    /// Per field: whether a number atom reads its value as one.
    pub(super) number: Vec<bool>,
    /// Per field: whether a boolean atom reads its value as one.
    pub(super) truth: Vec<bool>,
}

impl GateFields {
    pub(super) fn intern(&mut self, path: &str) -> usize {
        match self.paths.iter().position(|p| p.as_str() == path) {
            Some(i) => i,
            None => {
                self.paths.push(FieldPath::new(path));
                self.literals.push(Literals::default());
                self.text.push(false);
                self.number.push(false);
                self.truth.push(false);
                self.paths.len() - 1
            }
        }
    }

    pub(super) fn literal(&mut self, field: usize, folded: String) -> u32 {
        self.literals[field].intern(folded)
    }
}

/// A rule's gate: clauses that must all hold. No clauses means "always evaluate".
///
/// Invariant (soundness, see the module doc): whenever the rule matches an event, every
/// clause holds on it. Clauses are sorted cheapest and most selective first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gate {
    pub(super) clauses: Vec<Clause>,
}

impl Gate {
    /// The values `path` must equal for the rule to match: the literals (folded) of a clause
    /// made only of equality atoms on that field. `None` when no clause constrains the field
    /// so (the rule may match whatever the field holds).
    pub(crate) fn required(&self, path: &str, fields: &GateFields) -> Option<Vec<String>> {
        let f = fields.paths.iter().position(|p| p.as_str() == path)?;
        let clause = self.clauses.iter().find(|clause| {
            clause
                .iter()
                .all(|atom| matches!(atom, Atom::Equals { field, .. } if *field == f))
        })?;
        let mut ids: Vec<u32> = clause
            .iter()
            .flat_map(|atom| match atom {
                Atom::Equals { ids, .. } => ids.clone(),
                _ => Vec::new(),
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let literals = &fields.literals[f].ids;
        Some(
            ids.into_iter()
                .filter_map(|id| literals.iter().find(|(_, &i)| i == id))
                .map(|(text, _)| text.clone())
                .collect(),
        )
    }

    /// Whether the event can match the rule (false means it certainly cannot).
    pub(crate) fn admits<S: Source>(&self, lookups: &EventLookups<'_, S>) -> bool {
        self.clauses
            .iter()
            .all(|clause| clause.iter().any(|atom| lookups.holds(atom)))
    }

    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.clauses.is_empty()
    }
}

/// Which gates an event can pass, found with a few field lookups instead of by testing
/// every gate.
///
/// A clause holds only if one of its atoms does, and an atom only holds if its field has
/// one of the atom's literals (an [`Atom::Equals`]) or, for any other atom, if the field is
/// present (every atom is false on an absent field). So each gate is filed under every
/// atom of its first clause in cost order, usually `query` (or `pack`) equal to one of a
/// few names, by literal or by field, and an event only has its gates tested when its own
/// values or fields pick them out: one lookup of `query` stands in for the checks of every
/// gate filed under another query, each of which would fail on it. The candidates still have their whole gate checked,
/// so this only skips gates that would have rejected the event.
///
/// Filing by the first clause matters when a rule's query condition is an OR (`pack` is
/// `ossec-rootkit` or `query` is one of a hundred names): that clause spans two fields,
/// and the next clause alone would be `action`, which nearly every row satisfies.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Per keyed field: for each of its literal ids, the gates filed under it.
    by_literal: Vec<(usize, Vec<Vec<u32>>)>,
    /// Per keyed field: the gates filed under its presence.
    by_presence: Vec<(usize, Vec<u32>)>,
    /// Gates without clauses: tested on every event.
    always: Vec<u32>,
}

impl Index {
    /// Files each gate (by position in `gates`) under the atoms of its most selective clause.
    pub(crate) fn new<'g>(gates: impl IntoIterator<Item = &'g Gate>, fields: &GateFields) -> Index {
        let mut index = Index::default();
        for (pos, gate) in gates.into_iter().enumerate() {
            let pos = pos as u32;
            // Clauses are sorted by cost, which puts the selective fields first.
            let Some(clause) = gate.clauses.first() else {
                index.always.push(pos);
                continue;
            };
            for atom in clause {
                match atom {
                    Atom::Equals { field, ids } => {
                        let table = index.literal_table(*field, fields);
                        for &id in ids {
                            file(&mut table[id as usize], pos);
                        }
                    }
                    Atom::Present(field)
                    | Atom::Text { field, .. }
                    | Atom::Number { field, .. }
                    | Atom::Bool { field, .. } => file(index.presence_list(*field), pos),
                }
            }
        }
        index
    }

    fn literal_table(&mut self, field: usize, fields: &GateFields) -> &mut Vec<Vec<u32>> {
        let slot = match self.by_literal.iter().position(|(f, _)| *f == field) {
            Some(i) => i,
            None => {
                let n = fields.literals[field].len();
                self.by_literal.push((field, vec![Vec::new(); n]));
                self.by_literal.len() - 1
            }
        };
        &mut self.by_literal[slot].1
    }

    fn presence_list(&mut self, field: usize) -> &mut Vec<u32> {
        let slot = match self.by_presence.iter().position(|(f, _)| *f == field) {
            Some(i) => i,
            None => {
                self.by_presence.push((field, Vec::new()));
                self.by_presence.len() - 1
            }
        };
        &mut self.by_presence[slot].1
    }

    /// The gates (positions, ascending, no repeats) the event may pass; every gate it
    /// passes is among them.
    pub(crate) fn candidates<S: Source>(&self, lookups: &EventLookups<'_, S>) -> Vec<u32> {
        let mut out = self.always.clone();
        for (field, table) in &self.by_literal {
            lookups.each_id(*field, |id| out.extend_from_slice(&table[id as usize]));
        }
        for (field, list) in &self.by_presence {
            if lookups.look(*field).present {
                out.extend_from_slice(list);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Adds gate `pos` to a list, once (gates are filed in ascending order).
fn file(list: &mut Vec<u32>, pos: u32) {
    if list.last() != Some(&pos) {
        list.push(pos);
    }
}

/// One field's literals: folded text -> id, and the lengths (in bytes) they come in.
///
/// Invariant: ids are dense (`0..len()`, in order of interning) and `lens` is the sorted,
/// deduplicated set of the literals' byte lengths.
#[derive(Debug, Default)]
pub(super) struct Literals {
    pub(super) ids: FxHashMap<String, u32>,
    lens: Vec<usize>,
}

impl Literals {
    pub(super) fn intern(&mut self, folded: String) -> u32 {
        if let Err(at) = self.lens.binary_search(&folded.len()) {
            self.lens.insert(at, folded.len());
        }
        let next = self.ids.len() as u32;
        *self.ids.entry(folded).or_insert(next)
    }

    pub(super) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of the literal a string value equals as the `Exact` matcher compares (folded).
    pub(super) fn id_of(&self, value: &str) -> Option<u32> {
        // Folding keeps an ASCII string's length, so most values of a column are ruled out
        // by theirs, without being folded and hashed (every path is compared with
        // `/etc/ld.so.preload`).
        if value.is_ascii() && self.lens.binary_search(&value.len()).is_err() {
            return None;
        }
        self.ids.get(fold(value).as_ref()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Each pattern answers what the `str` method of its kind does.
        #[test]
        fn patterns_compare_like_str(value in "[a-c/é]{0,12}", cut in (0usize..13, 0usize..13), other in "[a-c/é]{0,3}") {
            let chars: Vec<char> = value.chars().collect();
            let (a, b) = (cut.0.min(chars.len()), cut.1.min(chars.len()));
            let piece: String = chars[a.min(b)..a.max(b)].iter().collect();
            for text in [piece, other.clone()] {
                let t = text.as_str();
                let cases = [
                    (TextOp::Exact, value == t),
                    (TextOp::Prefix, value.starts_with(t)),
                    (TextOp::Suffix, value.ends_with(t)),
                    (TextOp::Contains, value.contains(t)),
                ];
                for (op, want) in cases {
                    prop_assert_eq!(TextPattern::new(op, text.clone()).test(&value), want, "{:?} {:?} {:?}", op, value, t);
                }
            }
        }
    }

    #[test]
    fn literal_ids_compare_folded_values_whatever_their_length() {
        let mut lits = Literals::default();
        let preload = lits.intern("/etc/ld.so.preload".into());
        // Folding `İ` (2 bytes) gives `i̇` (3 bytes): the value is shorter than the literal.
        let dotted = lits.intern("İx".to_lowercase());
        assert_eq!(lits.id_of("/etc/ld.so.preload"), Some(preload));
        assert_eq!(lits.id_of("/ETC/ld.so.PRELOAD"), Some(preload));
        assert_eq!(lits.id_of("/etc/ld.so.preloa"), None);
        assert_eq!(lits.id_of("/etc/ld.so.preload2"), None);
        assert_eq!(lits.id_of("İx"), Some(dotted));
        assert_eq!(lits.id_of("İX"), Some(dotted));
        assert_eq!(lits.id_of(""), None);
    }
}
