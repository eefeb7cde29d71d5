//! Per-rule gates: necessary conditions, derived once per rule set, that an event must meet
//! before rsigma evaluates a rule against it.
//!
//! rsigma's own candidate index keeps one witness set per rule and, between the conjuncts
//! of a selection, prefers an exact literal. In osquery rules that is often
//! `action: [added, snapshot]`, which nearly every row satisfies, so about a dozen of the
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

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};

use memchr::memmem;
use rustc_hash::FxHashMap;

use rsigma_eval::event::{Event, EventValue};
use rsigma_eval::matcher::{ascii_lowercase_cow, CompiledMatcher, GroupMode};
use rsigma_eval::{CompiledDetection, CompiledDetectionItem, CompiledRule};
use rsigma_parser::{ArrayQuantifier, ConditionExpr, Quantifier};

use super::view::{EventView, FieldPath};
use crate::tables::Tables;

/// Cap on the clauses an OR may produce by distribution (`(a ∧ b) ∨ (c ∧ d)` implies four
/// clauses); beyond it each branch contributes only its most selective clause.
const MAX_OR_CLAUSES: usize = 16;

/// One necessary condition on a field.
#[derive(Debug, Clone, PartialEq)]
enum Atom {
    /// `get_field(field)` is present.
    Present(usize),
    /// The field's value, folded as the `Exact` matcher folds it, is one of these literals
    /// (ids into the field's [`Fields::literals`], sorted).
    Equals { field: usize, ids: Vec<u32> },
    /// The field's folded string value equals, starts with, ends with or contains one of
    /// these folded literals.
    Text {
        field: usize,
        patterns: Vec<Pattern>,
    },
    /// The field's value as a number (how the `NumericEq` matcher reads it) is one of these.
    Number { field: usize, values: Vec<f64> },
    /// The field's value as a boolean (how the `BoolEq` matcher reads it) is this one.
    Bool { field: usize, value: bool },
}

/// How a string matcher's literal compares with the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextOp {
    Exact,
    Prefix,
    Suffix,
    Contains,
}

/// A [`Atom::Text`] literal (folded) and how it compares with the folded value.
#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    /// The searcher is built once per rule set; `str::contains` sets one up on every call,
    /// and these run on long command lines. Boxed: it is ten times the size of the others.
    Contains(Box<memmem::Finder<'static>>),
}

impl Pattern {
    fn new(op: TextOp, text: String) -> Pattern {
        match op {
            TextOp::Exact => Pattern::Exact(text),
            TextOp::Prefix => Pattern::Prefix(text),
            TextOp::Suffix => Pattern::Suffix(text),
            TextOp::Contains => {
                Pattern::Contains(Box::new(memmem::Finder::new(&text).into_owned()))
            }
        }
    }

    fn test(&self, value: &str) -> bool {
        match self {
            Pattern::Exact(p) => value == p,
            Pattern::Prefix(p) => value.starts_with(p.as_str()),
            Pattern::Suffix(p) => value.ends_with(p.as_str()),
            Pattern::Contains(finder) => finder.find(value.as_bytes()).is_some(),
        }
    }

    fn parts(&self) -> (TextOp, &[u8]) {
        match self {
            Pattern::Exact(p) => (TextOp::Exact, p.as_bytes()),
            Pattern::Prefix(p) => (TextOp::Prefix, p.as_bytes()),
            Pattern::Suffix(p) => (TextOp::Suffix, p.as_bytes()),
            Pattern::Contains(finder) => (TextOp::Contains, finder.needle()),
        }
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.parts() == other.parts()
    }
}

/// Atoms of which at least one holds.
type Clause = Vec<Atom>;

/// The fields the gates refer to, interned so gates name them by index, and per field the
/// literals its equality atoms compare with, interned so an event's value is looked up
/// once per field rather than once per rule.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    paths: Vec<FieldPath>,
    /// Per field: folded literal -> id.
    literals: Vec<Literals>,
    /// Per field: whether a text atom reads its folded value.
    text: Vec<bool>,
    /// Per field: whether a number atom reads its value as one.
    number: Vec<bool>,
    /// Per field: whether a boolean atom reads its value as one.
    truth: Vec<bool>,
}

impl Fields {
    fn intern(&mut self, path: &str) -> usize {
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

    fn literal(&mut self, field: usize, folded: String) -> u32 {
        self.literals[field].intern(folded)
    }
}

/// A rule's gate: clauses that must all hold. No clauses means "always evaluate".
#[derive(Debug, Clone, Default)]
pub(crate) struct Gate {
    clauses: Vec<Clause>,
}

impl Gate {
    /// The values `path` must equal for the rule to match: the literals (folded) of a clause
    /// made only of equality atoms on that field. `None` when no clause constrains the field
    /// so (the rule may match whatever the field holds).
    pub(crate) fn required(&self, path: &str, fields: &Fields) -> Option<Vec<String>> {
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

    /// Derives the gate of one compiled rule, interning its fields into `fields`.
    pub(crate) fn of_rule(rule: &CompiledRule, fields: &mut Fields) -> Gate {
        let mut a = Analyzer { rule, fields };
        // A rule matches when any of its conditions does.
        let parts: Vec<Vec<Clause>> = rule.conditions.iter().map(|c| a.condition(c)).collect();
        let mut clauses = if parts.is_empty() {
            Vec::new()
        } else {
            a.or(parts)
        };
        sort_by_cost(&mut clauses, &a.fields.paths);
        Gate { clauses }
    }

    /// Whether the event can match the rule (false means it certainly cannot).
    pub(crate) fn admits<S: Source>(&self, facts: &Facts<'_, S>) -> bool {
        self.clauses
            .iter()
            .all(|clause| clause.iter().any(|atom| facts.holds(atom)))
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
/// values or fields pick them out: one lookup of `query` stands in for a few dozen gate
/// checks that would each fail on it. The candidates still have their whole gate checked,
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
    pub(crate) fn new<'g>(gates: impl IntoIterator<Item = &'g Gate>, fields: &Fields) -> Index {
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

    fn literal_table(&mut self, field: usize, fields: &Fields) -> &mut Vec<Vec<u32>> {
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
    pub(crate) fn candidates<S: Source>(&self, facts: &Facts<'_, S>) -> Vec<u32> {
        let mut out = self.always.clone();
        for (field, table) in &self.by_literal {
            facts.each_id(*field, |id| out.extend_from_slice(&table[id as usize]));
        }
        for (field, list) in &self.by_presence {
            if facts.look(*field).present {
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

/// The literal ids one field's value equals (more than one only for arrays).
#[derive(Clone, Copy)]
enum Ids {
    None,
    One(u32),
    /// `Facts::spilled[start..end]`.
    Many {
        start: u32,
        end: u32,
    },
}

impl Ids {
    /// The ids pushed onto `spilled` since `start`: none, one (taken back off), or a span.
    fn since(spilled: &mut Vec<u32>, start: usize) -> Ids {
        match spilled.len() - start {
            0 => Ids::None,
            1 => Ids::One(spilled.pop().unwrap_or_default()),
            _ => Ids::Many {
                start: start as u32,
                end: spilled.len() as u32,
            },
        }
    }
}

/// One field of one event, as the gates see it. Nothing in it needs dropping (what it
/// owns is kept in [`Facts`]), so a fact table of a few dozen fields is freed at once.
#[derive(Clone, Copy)]
struct Looked<'e> {
    present: bool,
    ids: Ids,
    text: Folded<'e>,
    number: Scalar<f64>,
    truth: Scalar<bool>,
}

/// A field's value read as a number or a boolean, as rsigma's `NumericEq` and `BoolEq`
/// matchers read it.
#[derive(Clone, Copy)]
enum Scalar<T> {
    /// Absent, or nothing the matcher accepts (text that is not a number, null, a map).
    Nothing,
    Is(T),
    /// Arrays (any member may match), or not needed by any atom: the atoms hold.
    Unknown,
}

impl Scalar<f64> {
    /// `match_numeric_value`: integers, floats and text that parses as a float.
    fn number(v: &EventValue<'_>) -> Scalar<f64> {
        match v {
            EventValue::Int(n) => Scalar::Is(*n as f64),
            EventValue::Float(f) => Scalar::Is(*f),
            EventValue::Str(s) => s.parse::<f64>().map_or(Scalar::Nothing, Scalar::Is),
            EventValue::Array(_) => Scalar::Unknown,
            _ => Scalar::Nothing,
        }
    }
}

impl Scalar<bool> {
    /// `BoolEq`'s reading: booleans, and `true`/`1`/`yes` or `false`/`0`/`no` in any case.
    /// The matcher lower-cases with `to_lowercase`; the only non-ASCII character that
    /// lower-cases to ASCII is the Kelvin sign (to `k`, in none of these words), so
    /// comparing ASCII text without case gives the same answer without allocating.
    fn truth(v: &EventValue<'_>) -> Scalar<bool> {
        let is = |s: &str, words: [&str; 3]| words.iter().any(|w| s.eq_ignore_ascii_case(w));
        match v {
            EventValue::Bool(b) => Scalar::Is(*b),
            EventValue::Str(s) if is(s, ["true", "1", "yes"]) => Scalar::Is(true),
            EventValue::Str(s) if is(s, ["false", "0", "no"]) => Scalar::Is(false),
            EventValue::Array(_) => Scalar::Unknown,
            _ => Scalar::Nothing,
        }
    }
}

/// A field's value folded for text atoms.
#[derive(Clone, Copy)]
enum Folded<'e> {
    /// Absent, null or a map: no string matcher can match it.
    Nothing,
    /// A string that folds to itself, or a string folded into `Facts::folded[i]`, folded
    /// as the matchers fold it.
    Str(&'e str),
    Owned(usize),
    /// Numbers, booleans, arrays, or not needed by any text atom: text atoms hold (the
    /// conservative answer; rsigma decides).
    Unknown,
}

/// How the gates read an event's fields.
pub(crate) trait Source {
    fn value(&self, field: &FieldPath) -> Option<EventValue<'_>>;

    /// The event's tables as the event holds them, where the source has an event.
    fn tables(&self) -> Option<&Tables> {
        None
    }
}

/// The detector's view: fields found through their resolved paths.
impl Source for EventView<'_> {
    fn value(&self, field: &FieldPath) -> Option<EventValue<'_>> {
        self.get(field)
    }

    fn tables(&self) -> Option<&Tables> {
        Some(&self.event.tables)
    }
}

/// Any other rsigma event, read by the paths' text.
pub(crate) struct ByPath<'a, E>(pub(crate) &'a E);

impl<E: Event> Source for ByPath<'_, E> {
    fn value(&self, field: &FieldPath) -> Option<EventValue<'_>> {
        self.0.get_field(field.as_str())
    }
}

/// What the gates carry from one event to the next: per header field (the query, pack,
/// action, ...), the last string value whose literal id was worked out, and that id. Events
/// come in runs of one query (a batch or snapshot record is one run, and hosts log their
/// queries in bursts), so these mostly repeat, and comparing a value with the last one
/// costs less than folding and hashing it again. Columns change from row to row, so they
/// are not remembered. Only meaningful with the [`Fields`] it was filled from, so it
/// belongs to one rule set.
#[derive(Debug, Default)]
pub(crate) struct Recall {
    last: Vec<Option<(String, Option<u32>)>>,
    /// The last event's tables and their literal ids: a table rule's gate reads every
    /// event's tables, and runs of events share them.
    tables: Tables,
    table_ids: Vec<u32>,
}

impl Recall {
    /// The literal ids of `tables`' members, from memory when the last event's were the same.
    fn table_ids(&mut self, tables: &Tables, literals: &Literals) -> &[u32] {
        if self.tables != *tables || self.tables.is_empty() {
            self.tables.clone_from(tables);
            self.table_ids.clear();
            self.table_ids
                .extend(tables.iter().filter_map(|t| literals.id_of(t)));
        }
        &self.table_ids
    }

    /// [`Literals::id_of`] `value`, from memory when the field's last value was the same.
    fn literal_id(&mut self, field: usize, value: &str, literals: &Literals) -> Option<u32> {
        if self.last.len() <= field {
            self.last.resize_with(field + 1, || None);
        }
        match &mut self.last[field] {
            Some((last, id)) if last.as_str() == value => *id,
            Some((last, id)) => {
                last.clear();
                last.push_str(value);
                *id = literals.id_of(value);
                *id
            }
            slot @ None => {
                let id = literals.id_of(value);
                *slot = Some((value.to_string(), id));
                id
            }
        }
    }
}

/// One field's literals: folded text -> id, and the lengths (in bytes) they come in.
#[derive(Debug, Default)]
struct Literals {
    ids: FxHashMap<String, u32>,
    lens: Vec<usize>,
}

impl Literals {
    fn intern(&mut self, folded: String) -> u32 {
        if let Err(at) = self.lens.binary_search(&folded.len()) {
            self.lens.insert(at, folded.len());
        }
        let next = self.ids.len() as u32;
        *self.ids.entry(folded).or_insert(next)
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of the literal a string value equals as the `Exact` matcher compares (folded).
    fn id_of(&self, value: &str) -> Option<u32> {
        // Folding keeps an ASCII string's length, so most values of a column are ruled out
        // by theirs, without being folded and hashed (every path is compared with
        // `/etc/ld.so.preload`).
        if value.is_ascii() && self.lens.binary_search(&value.len()).is_err() {
            return None;
        }
        self.ids.get(fold(value).as_ref()).copied()
    }
}

/// What the gates need to know about one event: each field is looked up at most once,
/// however many gates ask.
pub(crate) struct Facts<'e, S: Source> {
    event: &'e S,
    fields: &'e Fields,
    looked: Vec<OnceCell<Looked<'e>>>,
    /// The ids of values that equal more than one literal (arrays).
    spilled: RefCell<Vec<u32>>,
    /// Folded values that differ from the value.
    folded: RefCell<Vec<String>>,
    recall: Option<RefCell<&'e mut Recall>>,
}

impl<'e, S: Source> Facts<'e, S> {
    /// `recall`, when given, must have been used with `fields` only.
    pub(crate) fn new(event: &'e S, fields: &'e Fields, recall: Option<&'e mut Recall>) -> Self {
        Facts {
            event,
            fields,
            looked: (0..fields.paths.len()).map(|_| OnceCell::new()).collect(),
            spilled: RefCell::default(),
            folded: RefCell::default(),
            recall: recall.map(RefCell::new),
        }
    }

    fn holds(&self, atom: &Atom) -> bool {
        match atom {
            Atom::Present(f) => self.look(*f).present,
            Atom::Equals { field, ids } => {
                let mut any = false;
                self.each_id(*field, |id| any |= ids.binary_search(&id).is_ok());
                any
            }
            Atom::Text { field, patterns } => {
                let test = |v: &str| patterns.iter().any(|p| p.test(v));
                match self.look(*field).text {
                    Folded::Nothing => false,
                    Folded::Str(v) => test(v),
                    Folded::Owned(i) => test(&self.folded.borrow()[i]),
                    Folded::Unknown => true,
                }
            }
            // The `NumericEq` matcher's own comparison.
            Atom::Number { field, values } => match self.look(*field).number {
                Scalar::Nothing => false,
                Scalar::Is(v) => values.iter().any(|n| (v - n).abs() < f64::EPSILON),
                Scalar::Unknown => true,
            },
            Atom::Bool { field, value } => match self.look(*field).truth {
                Scalar::Nothing => false,
                Scalar::Is(b) => b == *value,
                Scalar::Unknown => true,
            },
        }
    }

    /// Calls `f` with every literal id the field's value equals.
    fn each_id(&self, field: usize, mut f: impl FnMut(u32)) {
        match self.look(field).ids {
            Ids::None => {}
            Ids::One(id) => f(id),
            Ids::Many { start, end } => self.spilled.borrow()[start as usize..end as usize]
                .iter()
                .for_each(|&id| f(id)),
        }
    }

    fn look(&self, field: usize) -> &Looked<'e> {
        self.looked[field].get_or_init(|| {
            let path = &self.fields.paths[field];
            // The tables list, by the ids remembered for it: no list of values built and no
            // member hashed again while events share their tables. (As a list it is no
            // number, boolean or text for those atoms: `Unknown`, as below.)
            if let (true, Some(recall), Some(tables)) =
                (path.is_tables(), &self.recall, self.event.tables())
            {
                if !tables.is_empty() {
                    let mut spilled = self.spilled.borrow_mut();
                    let start = spilled.len();
                    let literals = &self.fields.literals[field];
                    spilled.extend_from_slice(recall.borrow_mut().table_ids(tables, literals));
                    return Looked {
                        present: true,
                        ids: Ids::since(&mut spilled, start),
                        text: Folded::Unknown,
                        number: Scalar::Unknown,
                        truth: Scalar::Unknown,
                    };
                }
            }
            let Some(value) = self.event.value(path) else {
                return Looked {
                    present: false,
                    ids: Ids::None,
                    text: Folded::Nothing,
                    number: Scalar::Nothing,
                    truth: Scalar::Nothing,
                };
            };
            let literals = &self.fields.literals[field];
            let mut ids = Ids::None;
            match (&value, &self.recall) {
                _ if literals.is_empty() => {}
                (EventValue::Str(s), Some(recall)) if self.fields.paths[field].is_header() => {
                    if let Some(id) = recall.borrow_mut().literal_id(field, s, literals) {
                        ids = Ids::One(id);
                    }
                }
                _ => {
                    let mut spilled = self.spilled.borrow_mut();
                    let start = spilled.len();
                    each_str_value(&value, &mut |s| spilled.extend(literals.id_of(s)));
                    ids = Ids::since(&mut spilled, start);
                }
            }
            let number = if self.fields.number[field] {
                Scalar::number(&value)
            } else {
                Scalar::Unknown
            };
            let truth = if self.fields.truth[field] {
                Scalar::truth(&value)
            } else {
                Scalar::Unknown
            };
            let text = if !self.fields.text[field] {
                Folded::Unknown
            } else {
                let own = |s: String| {
                    let mut folded = self.folded.borrow_mut();
                    folded.push(s);
                    Folded::Owned(folded.len() - 1)
                };
                match value {
                    EventValue::Str(Cow::Borrowed(s)) => match fold(s) {
                        Cow::Borrowed(s) => Folded::Str(s),
                        Cow::Owned(s) => own(s),
                    },
                    EventValue::Str(Cow::Owned(s)) => own(ascii_lowercase_cow(&s).into_owned()),
                    EventValue::Null | EventValue::Map(_) => Folded::Nothing,
                    _ => Folded::Unknown,
                }
            };
            Looked {
                present: true,
                ids,
                text,
                number,
                truth,
            }
        })
    }
}

/// [`ascii_lowercase_cow`], rsigma's folding, with its common case (ASCII without capitals:
/// nothing to do) found in one pass without early exits, which vectorizes; rsigma's check
/// goes a byte at a time and was a third of the gates' own cost on long command lines.
fn fold(s: &str) -> Cow<'_, str> {
    let plain = s.bytes().fold(true, |plain, b| {
        plain & b.is_ascii() & !b.is_ascii_uppercase()
    });
    if plain {
        Cow::Borrowed(s)
    } else {
        ascii_lowercase_cow(s)
    }
}

/// The string forms rsigma's `Exact` matcher compares (its `match_str_value`): strings,
/// numbers and booleans as text, array members; null and maps never match. The matcher
/// folds them with [`ascii_lowercase_cow`] (`to_lowercase`) before comparing.
fn each_str_value(v: &EventValue<'_>, f: &mut dyn FnMut(&str)) {
    match v {
        EventValue::Str(s) => f(s),
        EventValue::Int(n) => f(&n.to_string()),
        EventValue::Float(x) => f(&x.to_string()),
        EventValue::Bool(b) => f(if *b { "true" } else { "false" }),
        EventValue::Array(items) => items.iter().for_each(|x| each_str_value(x, f)),
        _ => {}
    }
}

struct Analyzer<'r, 'f> {
    rule: &'r CompiledRule,
    fields: &'f mut Fields,
}

impl Analyzer<'_, '_> {
    fn condition(&mut self, cond: &ConditionExpr) -> Vec<Clause> {
        match cond {
            // A dangling identifier never matches; no clause is the conservative answer.
            ConditionExpr::Identifier(name) => match self.rule.detections.get(name) {
                Some(det) => self.detection(det),
                None => Vec::new(),
            },
            ConditionExpr::And(parts) => parts.iter().flat_map(|p| self.condition(p)).collect(),
            ConditionExpr::Or(parts) => {
                let parts = parts.iter().map(|p| self.condition(p)).collect();
                self.or(parts)
            }
            // Negation inverts polarity: nothing positive follows.
            ConditionExpr::Not(_) => Vec::new(),
            ConditionExpr::Selector {
                quantifier,
                pattern,
            } => {
                let selected: Vec<&CompiledDetection> = self
                    .rule
                    .detections
                    .iter()
                    .filter(|(name, _)| pattern.matches_detection_name(name))
                    .map(|(_, det)| det)
                    .collect();
                match quantifier {
                    // Vacuously true when nothing (or zero detections) must match.
                    Quantifier::All if selected.is_empty() => Vec::new(),
                    Quantifier::Count(0) => Vec::new(),
                    Quantifier::All => selected.iter().flat_map(|d| self.detection(d)).collect(),
                    Quantifier::Any | Quantifier::Count(_) => {
                        let parts = selected.iter().map(|d| self.detection(d)).collect();
                        self.or(parts)
                    }
                }
            }
        }
    }

    fn detection(&mut self, det: &CompiledDetection) -> Vec<Clause> {
        match det {
            CompiledDetection::AllOf(items) => items.iter().flat_map(|i| self.item(i)).collect(),
            // An empty any-of never matches; no clause is the conservative answer.
            CompiledDetection::AnyOf(subs) if subs.is_empty() => Vec::new(),
            CompiledDetection::AnyOf(subs) => {
                let parts = subs.iter().map(|d| self.detection(d)).collect();
                self.or(parts)
            }
            CompiledDetection::And(subs) => subs.iter().flat_map(|d| self.detection(d)).collect(),
            // `any`/`all` need at least one member, so the array must be present.
            CompiledDetection::ArrayMatch {
                field,
                quantifier: ArrayQuantifier::Any | ArrayQuantifier::All,
                ..
            } => vec![vec![Atom::Present(self.fields.intern(field))]],
            CompiledDetection::ArrayMatch { .. }
            | CompiledDetection::Keywords(_)
            | CompiledDetection::Conditional { .. } => Vec::new(),
        }
    }

    fn item(&mut self, item: &CompiledDetectionItem) -> Vec<Clause> {
        let Some(field) = item.field.as_deref() else {
            return Vec::new(); // keyword item: not scoped to a field
        };
        match item.exists {
            Some(false) => return Vec::new(),
            Some(true) => return vec![vec![Atom::Present(self.fields.intern(field))]],
            None => {}
        }
        // `Null` is the one matcher an absent field satisfies.
        if matches!(item.matcher, CompiledMatcher::Null) {
            return Vec::new();
        }
        let field = self.fields.intern(field);
        let atom = match text_patterns(&item.matcher) {
            Some(patterns) if patterns.iter().all(|(op, _)| *op == TextOp::Exact) => {
                let mut ids: Vec<u32> = patterns
                    .into_iter()
                    .map(|(_, v)| self.fields.literal(field, v))
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                Atom::Equals { field, ids }
            }
            Some(patterns) => {
                self.fields.text[field] = true;
                let patterns = patterns
                    .into_iter()
                    .map(|(op, text)| Pattern::new(op, text))
                    .collect();
                Atom::Text { field, patterns }
            }
            None => match scalar_atom(field, &item.matcher) {
                Some(atom) => {
                    match atom {
                        Atom::Number { .. } => self.fields.number[field] = true,
                        _ => self.fields.truth[field] = true,
                    }
                    atom
                }
                None => Atom::Present(field),
            },
        };
        vec![vec![atom]]
    }

    /// Clauses implied by a disjunction of conjunctions: every `a ∨ b` with `a` a clause of
    /// one branch and `b` of another. An unconstrained branch leaves nothing.
    fn or(&mut self, parts: Vec<Vec<Clause>>) -> Vec<Clause> {
        if parts.iter().any(Vec::is_empty) {
            return Vec::new();
        }
        let mut acc: Vec<Clause> = vec![Vec::new()];
        for mut part in parts {
            sort_by_cost(&mut part, &self.fields.paths);
            if acc.len() * part.len() > MAX_OR_CLAUSES {
                part.truncate(1);
            }
            let mut next = Vec::with_capacity(acc.len() * part.len());
            for a in &acc {
                for b in &part {
                    let mut clause = a.clone();
                    for atom in b {
                        if !clause.contains(atom) {
                            clause.push(atom.clone());
                        }
                    }
                    next.push(clause);
                }
            }
            acc = next;
        }
        acc
    }
}

/// The literals a string matcher (or an any-of list of them) accepts, with how each is
/// compared, folded the way the event side is folded before comparing; for a regex, the
/// literals one of which each match contains ([`required_literals`]). `None` for every
/// other matcher (numbers, negations, regexes without required literals, ...), which then
/// only imply presence.
fn text_patterns(m: &CompiledMatcher) -> Option<Vec<(TextOp, String)>> {
    // Case-insensitive matchers compare the folded value with a literal the compiler stored
    // folded. A cased match implies a match of the foldings: always for whole-string
    // equality, and for prefixes, suffixes and substrings when the literal is ASCII (folding
    // maps characters one by one except for non-ASCII context rules).
    let lit = |op: TextOp, value: &str, case_insensitive: bool| -> Option<Vec<(TextOp, String)>> {
        let folded = if case_insensitive {
            value.to_string()
        } else if op == TextOp::Exact || value.is_ascii() {
            ascii_lowercase_cow(value).into_owned()
        } else {
            return None;
        };
        Some(vec![(op, folded)])
    };
    match m {
        CompiledMatcher::Exact {
            value,
            case_insensitive,
        } => lit(TextOp::Exact, value, *case_insensitive),
        CompiledMatcher::StartsWith {
            value,
            case_insensitive,
        } => lit(TextOp::Prefix, value, *case_insensitive),
        CompiledMatcher::EndsWith {
            value,
            case_insensitive,
        } => lit(TextOp::Suffix, value, *case_insensitive),
        CompiledMatcher::Contains {
            value,
            case_insensitive,
        } => lit(TextOp::Contains, value, *case_insensitive),
        // The automaton searches the folded value for these pre-folded needles.
        CompiledMatcher::AhoCorasickSet {
            needles,
            case_insensitive: true,
            ..
        } => Some(
            needles
                .iter()
                .map(|n| (TextOp::Contains, n.clone()))
                .collect(),
        ),
        // Any match contains one of the regex's required literals; a cased literal found in
        // the value is found, folded, in the folded value (as for `Contains` above, so only
        // ASCII literals are taken).
        CompiledMatcher::Regex(re) => Some(
            required_literals(re.as_str())?
                .into_iter()
                .map(|l| (TextOp::Contains, l.to_ascii_lowercase()))
                .collect(),
        ),
        // Every child holds (`contains|all`): any one child's literals are necessary; the
        // ones whose shortest literal is longest are likely the rarest.
        CompiledMatcher::AllOf(children)
        | CompiledMatcher::CaseInsensitiveGroup {
            children,
            mode: GroupMode::All,
        } => children
            .iter()
            .filter_map(text_patterns)
            .max_by_key(|p| p.iter().map(|(_, l)| l.len()).min().unwrap_or(0)),
        CompiledMatcher::AnyOf(children)
        | CompiledMatcher::CaseInsensitiveGroup {
            children,
            mode: GroupMode::Any,
        } => {
            let mut out = Vec::new();
            for c in children {
                out.extend(text_patterns(c)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// Most literals [`required_literals`] returns; a longer alternation is no use to a gate.
const MAX_REQUIRED_LITERALS: usize = 16;

/// Literals one of which every match of `pattern` contains, all non-empty and ASCII, or
/// `None` when the regex guarantees no such set (or is not one we can parse). Within a
/// concatenation every part is required, so the part with the longest shortest literal is
/// taken; an alternation needs every branch to require something, and contributes the
/// union. Classes, anchors, `?` and `*` require nothing; a case-insensitive regex parses
/// into classes, so it yields `None`.
fn required_literals(pattern: &str) -> Option<Vec<String>> {
    use regex_syntax::hir::{Hir, HirKind};

    fn walk(hir: &Hir) -> Option<Vec<Vec<u8>>> {
        match hir.kind() {
            HirKind::Literal(lit) => (!lit.0.is_empty()).then(|| vec![lit.0.to_vec()]),
            HirKind::Capture(cap) => walk(&cap.sub),
            HirKind::Repetition(rep) if rep.min >= 1 => walk(&rep.sub),
            HirKind::Alternation(branches) => {
                let mut all = Vec::new();
                for b in branches {
                    all.extend(walk(b)?);
                    if all.len() > MAX_REQUIRED_LITERALS {
                        return None;
                    }
                }
                all.sort();
                all.dedup();
                Some(all)
            }
            HirKind::Concat(parts) => parts
                .iter()
                .filter_map(walk)
                .max_by_key(|lits| lits.iter().map(Vec::len).min().unwrap_or(0)),
            HirKind::Empty | HirKind::Class(_) | HirKind::Look(_) | HirKind::Repetition(_) => None,
        }
    }

    // The parser the `regex` crate itself uses, with its default settings (flags such as
    // `(?i)` are part of the pattern text).
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    walk(&hir)?
        .into_iter()
        .map(|l| String::from_utf8(l).ok().filter(|l| l.is_ascii()))
        .collect()
}

/// A number (`port: 22`, or a list of them) or boolean (`enabled: true`) matcher as an atom.
fn scalar_atom(field: usize, m: &CompiledMatcher) -> Option<Atom> {
    match m {
        CompiledMatcher::NumericEq(n) => Some(Atom::Number {
            field,
            values: vec![*n],
        }),
        CompiledMatcher::AnyOf(children) => {
            let values = children
                .iter()
                .map(|c| match c {
                    CompiledMatcher::NumericEq(n) => Some(*n),
                    _ => None,
                })
                .collect::<Option<Vec<f64>>>()?;
            Some(Atom::Number { field, values })
        }
        CompiledMatcher::BoolEq(value) => Some(Atom::Bool {
            field,
            value: *value,
        }),
        _ => None,
    }
}

/// Orders clauses so the cheapest, most selective checks run first. Only affects speed.
fn sort_by_cost(clauses: &mut [Clause], paths: &[FieldPath]) {
    let atom_cost = |a: &Atom| -> u8 {
        let (field, equals) = match a {
            Atom::Present(f) => (*f, false),
            Atom::Equals { field, .. }
            | Atom::Text { field, .. }
            | Atom::Number { field, .. }
            | Atom::Bool { field, .. } => (*field, true),
        };
        match (paths[field].as_str(), equals) {
            // The row's tables (or its query) name its shape; the pack and name narrow it
            // as well.
            ("tables" | "query" | "pack" | "name", true) => 0,
            // Derived fields are absent unless the row is of the one table they describe.
            (p, _) if p.starts_with("derived.") => 1,
            (p, _) if p.starts_with("columns.") || p.starts_with("decorations.") => 2,
            // `action` and `kind` hold one of two or three values on every row.
            ("action" | "kind", true) => 4,
            _ => 3,
        }
    };
    clauses.sort_by_key(|c| c.iter().map(atom_cost).max().unwrap_or(0));
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
                    prop_assert_eq!(Pattern::new(op, text.clone()).test(&value), want, "{:?} {:?} {:?}", op, value, t);
                }
            }
        }
    }

    fn lits(pattern: &str) -> Option<Vec<String>> {
        required_literals(pattern).map(|mut l| {
            l.sort();
            l
        })
    }

    #[test]
    fn required_literals_of_regexes() {
        let some = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        // The built-in rules' regexes.
        assert_eq!(
            lits(r"(^|[\s;&|])(rm|shred|unlink|truncate)\s.*(_history|\.histfile)"),
            some(&[".histfile", "_history"])
        );
        assert_eq!(
            lits(r"(^|[^>0-9])>\s*\S*(_history|\.histfile)(\s|;|$)"),
            some(&[".histfile", "_history"])
        );
        assert_eq!(
            lits(r"(^|[\s;&|(`/])(curl|wget|nc|ncat|dig)(\s|$)"),
            some(&["curl", "dig", "nc", "ncat", "wget"])
        );
        assert_eq!(
            lits(r"(^|[^|])\|\s*(sudo\s+)?(\S*/)?(ba|da|z|k)?sh(\s|$)"),
            some(&["sh"])
        );
        // Every part of a concatenation is required; one with the longest literals is taken.
        assert_eq!(lits("ab+cd"), some(&["cd"]));
        assert_eq!(lits("x(abc)+y"), some(&["abc"]));
        assert_eq!(lits("abc|de"), some(&["abc", "de"]));
        // Nothing is required: optional parts, empty branches, classes, anchors.
        assert_eq!(lits("(abc)?"), None);
        assert_eq!(lits("(abc)*d?"), None);
        assert_eq!(lits("abc|"), None);
        assert_eq!(lits("abc|[a-z]"), None);
        assert_eq!(lits("^$"), None);
        assert_eq!(lits("[ab]"), None);
        // Case-insensitive letters are classes; what is left is caseless.
        assert_eq!(lits("(?i)abc"), None);
        assert_eq!(lits("(?i)/tmp/"), some(&["/"]));
        // Non-ASCII literals are not taken (their folding is not character by character).
        assert_eq!(lits("é"), None);
        assert_eq!(lits("éé|a"), None);
        // Too many alternatives, or not a regex.
        let many = (0..20)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join("|");
        assert_eq!(lits(&many), None);
        assert_eq!(lits("(unclosed"), None);
    }

    /// Pieces random regexes are built from: literals, classes, anchors, optional and
    /// repeated groups, alternations (with and without an empty branch), case flags.
    fn regex_piece() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            "[abcAB/_.-]{1,3}".prop_map(|s| regex::escape(&s)),
            Just("[ab]".to_string()),
            Just("\\s".to_string()),
            Just(".".to_string()),
            Just("^".to_string()),
            Just("$".to_string()),
            Just("\\b".to_string()),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(|v| v.concat()),
                prop::collection::vec(inner.clone(), 1..4)
                    .prop_map(|v| format!("({})", v.join("|"))),
                prop::collection::vec(inner.clone(), 1..3)
                    .prop_map(|v| format!("({}|)", v.join("|"))),
                (
                    inner.clone(),
                    prop_oneof![Just("?"), Just("*"), Just("+"), Just("{2}"), Just("{0,2}")]
                )
                    .prop_map(|(p, q)| format!("({p}){q}")),
                inner.prop_map(|p| format!("(?i:{p})")),
            ]
        })
    }

    proptest! {
        /// Whatever a regex matches contains one of its required literals, compared folded
        /// as a gate compares them.
        #[test]
        fn required_literals_are_in_every_match(pattern in regex_piece(), hay in prop::collection::vec("[abcAB/_. -]{0,4}|é|K|\u{212a}|ſ", 0..8)) {
            let hay = hay.concat();
            let re = regex::Regex::new(&pattern).unwrap();
            if let Some(lits) = required_literals(&pattern) {
                prop_assert!(lits.iter().all(|l| !l.is_empty() && l.is_ascii()));
                if re.is_match(&hay) {
                    let folded = ascii_lowercase_cow(&hay);
                    prop_assert!(
                        lits.iter().any(|l| folded.contains(&l.to_ascii_lowercase())),
                        "{:?} matches {:?} without any of {:?}", pattern, hay, lits
                    );
                }
            }
        }
    }

    proptest! {
        /// `fold` is rsigma's folding, borrowing exactly when it does.
        #[test]
        fn fold_is_rsigmas_folding(s in "[a-zA-Z0-9 /._@-]{0,40}|\\PC{0,12}|[aZ]{0,20}[İK\u{212a}ſé]?[aZ]{0,20}") {
            let (ours, theirs) = (fold(&s), ascii_lowercase_cow(&s));
            prop_assert_eq!(matches!(ours, Cow::Borrowed(_)), matches!(theirs, Cow::Borrowed(_)));
            prop_assert_eq!(ours, theirs);
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
