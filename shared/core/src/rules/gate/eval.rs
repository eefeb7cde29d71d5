//! Per-event evaluation: how the gates read one event's fields (each at most once, however
//! many gates ask) and what they carry from one event to the next.

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};

use rsigma_eval::event::{Event, EventValue};
use rsigma_eval::matcher::ascii_lowercase_cow;

use super::compiled::{Atom, GateFields, Literals};
use crate::rules::view::{EventView, FieldPath};
use crate::tables::Tables;

/// The literal ids one field's value equals (more than one only for arrays).
///
/// Invariant: a `Many` span indexes the `spilled` list of the [`EventLookups`] that made
/// it, which only grows while that event is read, so the span stays valid.
#[derive(Clone, Copy)]
enum Ids {
    None,
    One(u32),
    /// `EventLookups::spilled[start..end]`.
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

/// One field of one event, worked out once for every atom that can ask about it: whether
/// it is present, the literal ids it equals, and its value folded for text atoms and read
/// as a number and a boolean.
///
/// Invariant: each part answers as the rsigma matcher of its atom kind would on this value,
/// or says `Unknown` (the atom holds), never a stricter answer, so a gate stays a necessary
/// condition. Nothing in it needs dropping (what it owns is kept in [`EventLookups`], which
/// its indices point into), so an event's lookups are freed at once, however many fields.
#[derive(Clone, Copy)]
pub(super) struct FieldLookup<'e> {
    pub(super) present: bool,
    ids: Ids,
    text: FoldedText<'e>,
    number: Coerced<f64>,
    truth: Coerced<bool>,
}

/// A field's value coerced to a number or a boolean, as rsigma's `NumericEq` and `BoolEq`
/// matchers coerce it.
///
/// Invariant: `Nothing` only when the matcher would certainly reject the value; anything
/// the gate cannot decide is `Unknown`, on which the atom holds.
#[derive(Clone, Copy)]
enum Coerced<T> {
    /// Absent, or nothing the matcher accepts (text that is not a number, null, a map).
    Nothing,
    Is(T),
    /// Arrays (any member may match), or not needed by any atom: the atoms hold.
    Unknown,
}

impl Coerced<f64> {
    /// `match_numeric_value`: integers, floats and text that parses as a float.
    fn number(v: &EventValue<'_>) -> Coerced<f64> {
        match v {
            EventValue::Int(n) => Coerced::Is(*n as f64),
            EventValue::Float(f) => Coerced::Is(*f),
            EventValue::Str(s) => s.parse::<f64>().map_or(Coerced::Nothing, Coerced::Is),
            EventValue::Array(_) => Coerced::Unknown,
            _ => Coerced::Nothing,
        }
    }
}

impl Coerced<bool> {
    /// `BoolEq`'s reading: booleans, and `true`/`1`/`yes` or `false`/`0`/`no` in any case.
    /// The matcher lower-cases with `to_lowercase`; the only non-ASCII character that
    /// lower-cases to ASCII is the Kelvin sign (to `k`, in none of these words), so
    /// comparing ASCII text without case gives the same answer without allocating.
    fn truth(v: &EventValue<'_>) -> Coerced<bool> {
        let is = |s: &str, words: [&str; 3]| words.iter().any(|w| s.eq_ignore_ascii_case(w));
        match v {
            EventValue::Bool(b) => Coerced::Is(*b),
            EventValue::Str(s) if is(s, ["true", "1", "yes"]) => Coerced::Is(true),
            EventValue::Str(s) if is(s, ["false", "0", "no"]) => Coerced::Is(false),
            EventValue::Array(_) => Coerced::Unknown,
            _ => Coerced::Nothing,
        }
    }
}

/// A field's value as the text atoms compare it: folded the way rsigma's string matchers
/// fold it (see [`fold`]).
///
/// Invariant: `Str` and `Owned` hold the folding of the whole string value; `Owned(i)`
/// indexes the `folded` list of the [`EventLookups`] that made it.
#[derive(Clone, Copy)]
enum FoldedText<'e> {
    /// Absent, null or a map: no string matcher can match it.
    Nothing,
    /// A string that folds to itself, or a string folded into `EventLookups::folded[i]`,
    /// folded as the matchers fold it.
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

/// The gates' memo across a run of events: what they carry from one event to the next.
/// Per header field (the query, pack, action, ...), the last string value whose literal id
/// was worked out, and that id; and the last event's tables with their ids. Events
/// come in runs of one query (a batch or snapshot record is one run, and hosts log their
/// queries in bursts), so these mostly repeat, and comparing a value with the last one
/// costs less than folding and hashing it again. Columns change from row to row, so they
/// are not remembered.
///
/// Invariant: every remembered id is [`Literals::id_of`] its remembered value, against the
/// [`GateFields`] the memo was filled from, so a memo is only meaningful with that one rule
/// set (a [`Detector`](crate::rules::Detector) keeps one beside its rule set).
#[derive(Debug, Default)]
pub(crate) struct RunMemo {
    last: Vec<Option<(String, Option<u32>)>>,
    /// The last event's tables and their literal ids: a table rule's gate reads every
    /// event's tables, and runs of events share them.
    tables: Tables,
    table_ids: Vec<u32>,
}

impl RunMemo {
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

/// One event as the gates read it: each field the gates refer to is looked up in the event
/// at most once, when an atom first asks, however many gates ask after it.
///
/// Invariant: `by_field[i]`, once set, is the [`FieldLookup`] of `fields.paths[i]` in
/// `event`; `spilled` and `folded` only grow while the event is read, so the indices those
/// lookups hold stay valid. Lives for one event; what carries over to the next is in the
/// [`RunMemo`].
pub(crate) struct EventLookups<'e, S: Source> {
    event: &'e S,
    fields: &'e GateFields,
    by_field: Vec<OnceCell<FieldLookup<'e>>>,
    /// The ids of values that equal more than one literal (arrays).
    spilled: RefCell<Vec<u32>>,
    /// Folded values that differ from the value.
    folded: RefCell<Vec<String>>,
    memo: Option<RefCell<&'e mut RunMemo>>,
}

impl<'e, S: Source> EventLookups<'e, S> {
    /// `memo`, when given, must have been used with `fields` only.
    pub(crate) fn new(event: &'e S, fields: &'e GateFields, memo: Option<&'e mut RunMemo>) -> Self {
        EventLookups {
            event,
            fields,
            by_field: (0..fields.paths.len()).map(|_| OnceCell::new()).collect(),
            spilled: RefCell::default(),
            folded: RefCell::default(),
            memo: memo.map(RefCell::new),
        }
    }

    pub(super) fn holds(&self, atom: &Atom) -> bool {
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
                    FoldedText::Nothing => false,
                    FoldedText::Str(v) => test(v),
                    FoldedText::Owned(i) => test(&self.folded.borrow()[i]),
                    FoldedText::Unknown => true,
                }
            }
            // The `NumericEq` matcher's own comparison.
            Atom::Number { field, values } => match self.look(*field).number {
                Coerced::Nothing => false,
                Coerced::Is(v) => values.iter().any(|n| (v - n).abs() < f64::EPSILON),
                Coerced::Unknown => true,
            },
            Atom::Bool { field, value } => match self.look(*field).truth {
                Coerced::Nothing => false,
                Coerced::Is(b) => b == *value,
                Coerced::Unknown => true,
            },
        }
    }

    /// Calls `f` with every literal id the field's value equals.
    pub(super) fn each_id(&self, field: usize, mut f: impl FnMut(u32)) {
        match self.look(field).ids {
            Ids::None => {}
            Ids::One(id) => f(id),
            Ids::Many { start, end } => self.spilled.borrow()[start as usize..end as usize]
                .iter()
                .for_each(|&id| f(id)),
        }
    }

    pub(super) fn look(&self, field: usize) -> &FieldLookup<'e> {
        self.by_field[field].get_or_init(|| {
            let path = &self.fields.paths[field];
            // The tables list, by the ids remembered for it: no list of values built and no
            // member hashed again while events share their tables. (As a list it is no
            // number, boolean or text for those atoms: `Unknown`, as below.)
            if let (true, Some(memo), Some(tables)) =
                (path.is_tables(), &self.memo, self.event.tables())
            {
                if !tables.is_empty() {
                    let mut spilled = self.spilled.borrow_mut();
                    let start = spilled.len();
                    let literals = &self.fields.literals[field];
                    spilled.extend_from_slice(memo.borrow_mut().table_ids(tables, literals));
                    return FieldLookup {
                        present: true,
                        ids: Ids::since(&mut spilled, start),
                        text: FoldedText::Unknown,
                        number: Coerced::Unknown,
                        truth: Coerced::Unknown,
                    };
                }
            }
            let Some(value) = self.event.value(path) else {
                return FieldLookup {
                    present: false,
                    ids: Ids::None,
                    text: FoldedText::Nothing,
                    number: Coerced::Nothing,
                    truth: Coerced::Nothing,
                };
            };
            let literals = &self.fields.literals[field];
            let mut ids = Ids::None;
            match (&value, &self.memo) {
                _ if literals.is_empty() => {}
                (EventValue::Str(s), Some(memo)) if self.fields.paths[field].is_header() => {
                    if let Some(id) = memo.borrow_mut().literal_id(field, s, literals) {
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
                Coerced::number(&value)
            } else {
                Coerced::Unknown
            };
            let truth = if self.fields.truth[field] {
                Coerced::truth(&value)
            } else {
                Coerced::Unknown
            };
            let text = if !self.fields.text[field] {
                FoldedText::Unknown
            } else {
                let own = |s: String| {
                    let mut folded = self.folded.borrow_mut();
                    folded.push(s);
                    FoldedText::Owned(folded.len() - 1)
                };
                match value {
                    EventValue::Str(Cow::Borrowed(s)) => match fold(s) {
                        Cow::Borrowed(s) => FoldedText::Str(s),
                        Cow::Owned(s) => own(s),
                    },
                    EventValue::Str(Cow::Owned(s)) => own(ascii_lowercase_cow(&s).into_owned()),
                    EventValue::Null | EventValue::Map(_) => FoldedText::Nothing,
                    _ => FoldedText::Unknown,
                }
            };
            FieldLookup {
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
/// goes a byte at a time, which on long command lines was a large part of the gates' own
/// cost.
pub(super) fn fold(s: &str) -> Cow<'_, str> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `fold` is rsigma's folding, borrowing exactly when it does.
        #[test]
        fn fold_is_rsigmas_folding(s in "[a-zA-Z0-9 /._@-]{0,40}|\\PC{0,12}|[aZ]{0,20}[İK\u{212a}ſé]?[aZ]{0,20}") {
            let (ours, theirs) = (fold(&s), ascii_lowercase_cow(&s));
            prop_assert_eq!(matches!(ours, Cow::Borrowed(_)), matches!(theirs, Cow::Borrowed(_)));
            prop_assert_eq!(ours, theirs);
        }
    }
}
