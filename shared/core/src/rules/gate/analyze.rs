//! Rule analysis: the clauses a compiled rsigma rule implies, derived once per rule set.

use rsigma_eval::matcher::{ascii_lowercase_cow, CompiledMatcher, GroupMode};
use rsigma_eval::{CompiledDetection, CompiledDetectionItem, CompiledRule};
use rsigma_parser::{ArrayQuantifier, ConditionExpr, Quantifier};

use super::compiled::{Atom, Clause, Gate, GateFields, TextOp, TextPattern};
use crate::rules::view::FieldPath;

/// Cap on the clauses an OR may produce by distribution (`(a ∧ b) ∨ (c ∧ d)` implies four
/// clauses); beyond it each branch contributes only its most selective clause.
const MAX_OR_CLAUSES: usize = 16;

impl Gate {
    /// Derives the gate of one compiled rule, interning its fields into `fields`.
    pub(crate) fn of_rule(rule: &CompiledRule, fields: &mut GateFields) -> Gate {
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
}

struct Analyzer<'r, 'f> {
    rule: &'r CompiledRule,
    fields: &'f mut GateFields,
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
                    .map(|(op, text)| TextPattern::new(op, text))
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
}
