//! Just enough Terraform evaluation to read a module without a provider: locals, `each.key`,
//! `count.index`, `merge(...)`, conditionals, `for` expressions, `dynamic` blocks, string
//! templates and the objects inside `jsonencode(...)`.
//!
//! Nothing is computed that Terraform only knows at plan time. Instead:
//!
//! - [`Eval::entries`] lists every key an object expression **can** have: both branches of a
//!   conditional, every argument of `merge`, every element a `for` expression can produce
//!   (its `if` clause is assumed true). So an environment variable that is only set when a
//!   destination is enabled still counts as set.
//! - [`Eval::strings`] lists every string an expression can evaluate to.
//! - Input variables are unknown, except those an evaluator is given
//!   ([`Eval::with_vars`]): a check of one configuration (`s3_event_delivery =
//!   "eventbridge"`) sets them, and a conditional those variables decide
//!   ([`Eval::condition`]: `==`, `!=`, `!`, `&&`, `||` over literals) takes only the branch
//!   they choose. A conditional on anything else still counts both branches.
//! - [`Eval::render`] turns an expression into a string with what is known filled in and the
//!   rest left as `${reference}`: `"${aws_s3_bucket.data.arn}/${local.raw_prefix}*"` renders as
//!   `${aws_s3_bucket.data.arn}/raw/*`, and `aws_lambda_function.function[each.key].arn` with
//!   `each.key = "parse"` as `${aws_lambda_function.function["parse"].arn}`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hcl::expr::{
    BinaryOperator, Conditional, Expression, ObjectKey, Operation, TraversalOperator, UnaryOperator,
};
use hcl::template::{Element, Template};
use hcl::{Block, Body};

/// A result whose error is a message for a test failure.
pub type Result<T, E = String> = std::result::Result<T, E>;

/// One parsed `.tf` file.
pub struct File {
    /// Path for messages (relative to the repository root).
    pub path: PathBuf,
    /// Its top-level body.
    pub body: Body,
}

/// A Terraform module: every `.tf` file of one directory.
pub struct Module {
    /// The directory, for messages.
    pub dir: PathBuf,
    /// Its files, in name order.
    pub files: Vec<File>,
    locals: BTreeMap<String, (Expression, PathBuf)>,
}

impl Module {
    /// Parses every `*.tf` in `dir`; paths in messages are shown relative to `root`.
    pub fn load(dir: &Path, root: &Path) -> Result<Module> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "tf"))
            .collect();
        paths.sort();
        let mut sources = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            let shown = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            sources.push((shown, text));
        }
        let shown_dir = dir.strip_prefix(root).unwrap_or(dir).to_path_buf();
        Module::from_sources(shown_dir, sources)
    }

    /// Parses the given `(path, text)` files as one module.
    pub fn from_sources(dir: PathBuf, sources: Vec<(PathBuf, String)>) -> Result<Module> {
        let mut files = Vec::new();
        let mut locals = BTreeMap::new();
        for (path, text) in sources {
            let body = hcl::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            for block in body.blocks().filter(|b| b.identifier() == "locals") {
                for attr in block.body().attributes() {
                    let previous =
                        locals.insert(attr.key().to_owned(), (attr.expr().clone(), path.clone()));
                    if let Some((_, other)) = previous {
                        return Err(format!(
                            "local.{} is defined in both {} and {}",
                            attr.key(),
                            other.display(),
                            path.display()
                        ));
                    }
                }
            }
            files.push(File { path, body });
        }
        Ok(Module { dir, files, locals })
    }

    /// Top-level blocks `ident "labels[0]" "labels[1]" …` (a prefix of the labels), with their
    /// file.
    pub fn blocks(&self, ident: &str, labels: &[&str]) -> Vec<(&Path, &Block)> {
        let mut out = Vec::new();
        for f in &self.files {
            for b in f.body.blocks() {
                if b.identifier() == ident
                    && b.labels().len() >= labels.len()
                    && b.labels()
                        .iter()
                        .zip(labels)
                        .all(|(l, want)| l.as_str() == *want)
                {
                    out.push((f.path.as_path(), b));
                }
            }
        }
        out
    }

    /// The one top-level block `ident "a" "b"`.
    pub fn block(&self, ident: &str, labels: &[&str]) -> Result<(&Path, &Block)> {
        let found = self.blocks(ident, labels);
        let what = || format!("{ident} {}", labels.join("."));
        let first = *found
            .first()
            .ok_or_else(|| format!("{}: no {}", self.dir.display(), what()))?;
        if found.len() > 1 {
            return Err(format!("{}: more than one {}", self.dir.display(), what()));
        }
        Ok(first)
    }

    /// `local.<name>` and the file it is defined in.
    pub fn local(&self, name: &str) -> Option<(&Expression, &Path)> {
        self.locals.get(name).map(|(e, p)| (e, p.as_path()))
    }
}

/// Block labels as strings.
pub fn labels(block: &Block) -> Vec<&str> {
    block.labels().iter().map(|l| l.as_str()).collect()
}

/// The attribute `key` of a block body.
pub fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

/// The nested blocks `ident` of a block body.
pub fn nested<'a>(body: &'a Body, ident: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
    body.blocks().filter(move |b| b.identifier() == ident)
}

/// Variables in scope: `each`, and the variables of enclosing `for` expressions. Bound values
/// are closed expressions (they refer to no scope variable themselves).
#[derive(Clone, Debug, Default)]
pub struct Scope {
    vars: BTreeMap<String, Expression>,
}

impl Scope {
    /// `each.key` (and `each.value`) of one `for_each` instance.
    pub fn each(key: &str, value: Expression) -> Scope {
        let mut each = hcl::expr::Object::new();
        each.insert(ObjectKey::from("key"), Expression::String(key.to_owned()));
        each.insert(ObjectKey::from("value"), value);
        Scope::default().with("each", Expression::Object(each))
    }

    /// This scope plus `name = value`.
    pub fn with(&self, name: &str, value: Expression) -> Scope {
        let mut s = self.clone();
        s.vars.insert(name.to_owned(), value);
        s
    }

    /// This scope plus `name.key` and `name.value`: a `dynamic` block's iterator.
    pub fn with_entry(&self, name: &str, key: &str, value: Expression) -> Scope {
        let mut entry = hcl::expr::Object::new();
        entry.insert(ObjectKey::from("key"), Expression::String(key.to_owned()));
        entry.insert(ObjectKey::from("value"), value);
        self.with(name, Expression::Object(entry))
    }

    /// `count.index` of one `count` instance.
    pub fn count(index: u64) -> Scope {
        let mut count = hcl::expr::Object::new();
        count.insert(ObjectKey::from("index"), Expression::Number(index.into()));
        Scope::default().with("count", Expression::Object(count))
    }
}

/// Evaluates expressions of one module, remembering which files the locals it followed come
/// from (for messages).
pub struct Eval<'m> {
    /// The module.
    pub module: &'m Module,
    /// Input variables with a known value; every other `var.x` is unknown.
    vars: BTreeMap<String, Expression>,
    touched: RefCell<BTreeSet<PathBuf>>,
}

impl<'m> Eval<'m> {
    /// An evaluator over `module`, every input variable unknown (every configuration at once).
    pub fn new(module: &'m Module) -> Self {
        Self::with_vars(module, &[])
    }

    /// An evaluator over `module` for the configuration with these input variables set.
    pub fn with_vars(module: &'m Module, vars: &[(&str, Expression)]) -> Self {
        Eval {
            module,
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            touched: RefCell::new(BTreeSet::new()),
        }
    }

    /// Files of the locals followed since the last call (and forgets them).
    pub fn take_touched(&self) -> BTreeSet<PathBuf> {
        std::mem::take(&mut *self.touched.borrow_mut())
    }

    /// Follows `local.x`, scope variables and the attribute and index lookups after them, as
    /// far as they lead to an expression in the module. References to resources, data sources,
    /// variables and other unknowns come back unchanged.
    pub fn resolve(&self, expr: &Expression, scope: &Scope) -> Result<Expression> {
        match expr {
            Expression::Parenthesis(inner) => self.resolve(inner, scope),
            Expression::Variable(v) => match scope.vars.get(v.as_str()) {
                Some(bound) => self.resolve(bound, &Scope::default()),
                None => Ok(expr.clone()),
            },
            Expression::Traversal(t) => {
                let (base, ops) = match (&t.expr, t.operators.first()) {
                    (Expression::Variable(v), Some(TraversalOperator::GetAttr(name)))
                        if v.as_str() == "local" =>
                    {
                        let (local, path) = self
                            .module
                            .local(name.as_str())
                            .ok_or_else(|| format!("local.{name} is not defined"))?;
                        self.touched.borrow_mut().insert(path.to_path_buf());
                        (self.resolve(local, &Scope::default())?, &t.operators[1..])
                    }
                    (Expression::Variable(v), Some(TraversalOperator::GetAttr(name)))
                        if v.as_str() == "var" && self.vars.contains_key(name.as_str()) =>
                    {
                        (self.vars[name.as_str()].clone(), &t.operators[1..])
                    }
                    (Expression::Variable(v), _) if scope.vars.contains_key(v.as_str()) => {
                        (self.resolve(&t.expr, scope)?, &t.operators[..])
                    }
                    _ => return Ok(expr.clone()),
                };
                let mut value = base;
                for op in ops {
                    let key = match op {
                        TraversalOperator::GetAttr(name) => name.as_str().to_owned(),
                        TraversalOperator::Index(index) => self.string(index, scope)?,
                        other => return Err(format!("unsupported traversal {other:?} in {expr}")),
                    };
                    value = self.lookup(&value, &key, scope)?;
                }
                Ok(value)
            }
            _ => Ok(expr.clone()),
        }
    }

    fn lookup(&self, object: &Expression, key: &str, scope: &Scope) -> Result<Expression> {
        match self.resolve(object, scope)? {
            Expression::Object(o) => {
                for (k, v) in o.iter() {
                    if self.key(k, scope)? == key {
                        return self.resolve(v, &Scope::default());
                    }
                }
                Err(format!("no key {key:?} in {object}"))
            }
            other => Err(format!("cannot look up {key:?} in {other}")),
        }
    }

    fn key(&self, key: &ObjectKey, scope: &Scope) -> Result<String> {
        match key {
            ObjectKey::Identifier(id) => Ok(id.as_str().to_owned()),
            ObjectKey::Expression(e) => self.string(e, scope),
            other => Err(format!("unsupported object key {other:?}")),
        }
    }

    /// Every `(key, value)` an object expression can contain. Values produced by a `for`
    /// expression are rendered to strings (see [`Eval::render`]).
    pub fn entries(&self, expr: &Expression, scope: &Scope) -> Result<Vec<(String, Expression)>> {
        let resolved = self.resolve(expr, scope)?;
        match &resolved {
            Expression::Object(o) => o
                .iter()
                .map(|(k, v)| Ok((self.key(k, scope)?, v.clone())))
                .collect(),
            Expression::FuncCall(call) if call.name.name.as_str() == "merge" => {
                let mut out = Vec::new();
                for arg in &call.args {
                    out.extend(self.entries(arg, scope)?);
                }
                Ok(out)
            }
            Expression::Conditional(c) => {
                let mut out = Vec::new();
                for branch in self.branches(c, scope) {
                    out.extend(self.entries(branch, scope)?);
                }
                Ok(out)
            }
            // A list as a `dynamic` block's `for_each`: the keys are the indices.
            Expression::Array(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v.clone()))
                .collect()),
            Expression::ForExpr(f) => {
                let key_expr = f
                    .key_expr
                    .as_ref()
                    .ok_or_else(|| format!("not an object: {resolved}"))?;
                let mut out = Vec::new();
                for (k, v) in self.entries(&f.collection_expr, scope)? {
                    let mut inner = scope.with(f.value_var.as_str(), v.clone());
                    if let Some(key_var) = &f.key_var {
                        inner = inner.with(key_var.as_str(), Expression::String(k));
                    }
                    // `{ for t in list : t.name => t }` keeps each element as it is (closed:
                    // it names no loop variable); any other value is rendered.
                    let value = match &f.value_expr {
                        Expression::Variable(var) if var.as_str() == f.value_var.as_str() => v,
                        other => Expression::String(self.render(other, &inner)),
                    };
                    for key in self.strings(key_expr, &inner)? {
                        out.push((key, value.clone()));
                    }
                }
                Ok(out)
            }
            Expression::Null => Ok(Vec::new()),
            other => Err(format!("cannot list the keys of {other}")),
        }
    }

    /// Every string an expression can evaluate to (unknown parts rendered as `${…}`); none
    /// for `null`, which leaves an argument unset.
    pub fn strings(&self, expr: &Expression, scope: &Scope) -> Result<BTreeSet<String>> {
        match self.resolve(expr, scope)? {
            Expression::Conditional(c) => {
                let mut out = BTreeSet::new();
                for branch in self.branches(&c, scope) {
                    out.extend(self.strings(branch, scope)?);
                }
                Ok(out)
            }
            Expression::Null => Ok(BTreeSet::new()),
            Expression::TemplateExpr(t) => match Template::from_expr(&t) {
                Ok(template) => Ok(self.template_strings(&template, scope)),
                Err(_) => Ok(BTreeSet::from([t.to_string()])),
            },
            other => Ok(BTreeSet::from([self.render(&other, scope)])),
        }
    }

    /// Every string a template can produce: each combination of what its interpolations can
    /// be.
    fn template_strings(&self, template: &Template, scope: &Scope) -> BTreeSet<String> {
        let mut out = BTreeSet::from([String::new()]);
        for element in template.elements() {
            let parts = match element {
                Element::Literal(s) => BTreeSet::from([s.clone()]),
                Element::Interpolation(i) => match self.strings(&i.expr, scope) {
                    Ok(all) if !all.is_empty() => all,
                    _ => BTreeSet::from([format!("${{{}}}", i.expr)]),
                },
                Element::Directive(d) => BTreeSet::from([format!("%{{{d:?}}}")]),
            };
            out = out
                .iter()
                .flat_map(|head| parts.iter().map(move |p| format!("{head}{p}")))
                .collect();
        }
        out
    }

    /// The branches of a conditional that can be taken: the one the known variables choose, or
    /// both.
    fn branches<'c>(&self, c: &'c Conditional, scope: &Scope) -> Vec<&'c Expression> {
        match self.condition(&c.cond_expr, scope) {
            Some(true) => vec![&c.true_expr],
            Some(false) => vec![&c.false_expr],
            None => vec![&c.true_expr, &c.false_expr],
        }
    }

    /// Every expression `expr` can be once its conditionals are decided (see
    /// [`Eval::condition`]), resolved.
    pub fn alternatives(&self, expr: &Expression, scope: &Scope) -> Result<Vec<Expression>> {
        match self.resolve(expr, scope)? {
            Expression::Conditional(c) => {
                let mut out = Vec::new();
                for branch in self.branches(&c, scope) {
                    out.extend(self.alternatives(branch, scope)?);
                }
                Ok(out)
            }
            other => Ok(vec![other]),
        }
    }

    /// Whether a condition holds: `Some` when literals and the known variables decide it
    /// (`==`, `!=`, `!`, `&&`, `||`, a conditional), `None` when it depends on anything else.
    pub fn condition(&self, expr: &Expression, scope: &Scope) -> Option<bool> {
        match self.resolve(expr, scope).ok()? {
            Expression::Bool(b) => Some(b),
            Expression::Conditional(c) => match self.condition(&c.cond_expr, scope)? {
                true => self.condition(&c.true_expr, scope),
                false => self.condition(&c.false_expr, scope),
            },
            Expression::Operation(op) => match *op {
                Operation::Unary(u) if u.operator == UnaryOperator::Not => {
                    self.condition(&u.expr, scope).map(|b| !b)
                }
                Operation::Binary(b) => {
                    let (l, r) = (&b.lhs_expr, &b.rhs_expr);
                    match b.operator {
                        BinaryOperator::Eq | BinaryOperator::NotEq => {
                            let (l, r) = (self.literals(l, scope)?, self.literals(r, scope)?);
                            let equal = if l.len() == 1 && l == r {
                                true
                            } else if l.iter().all(|x| !r.contains(x)) {
                                false
                            } else {
                                return None;
                            };
                            Some(equal == (b.operator == BinaryOperator::Eq))
                        }
                        BinaryOperator::And => {
                            match (self.condition(l, scope), self.condition(r, scope)) {
                                (Some(false), _) | (_, Some(false)) => Some(false),
                                (Some(true), Some(true)) => Some(true),
                                _ => None,
                            }
                        }
                        BinaryOperator::Or => {
                            match (self.condition(l, scope), self.condition(r, scope)) {
                                (Some(true), _) | (_, Some(true)) => Some(true),
                                (Some(false), Some(false)) => Some(false),
                                _ => None,
                            }
                        }
                        _ => None,
                    }
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Every literal (`null`, a bool, number or string) an expression can be, or `None` when
    /// it can be anything else (a resource attribute, an unknown variable, ...).
    fn literals(&self, expr: &Expression, scope: &Scope) -> Option<Vec<Expression>> {
        let mut out = Vec::new();
        for alt in self.alternatives(expr, scope).ok()? {
            match alt {
                Expression::Null
                | Expression::Bool(_)
                | Expression::Number(_)
                | Expression::String(_) => out.push(alt),
                Expression::TemplateExpr(_) => {
                    for s in self.strings(&alt, scope).ok()? {
                        if s.contains("${") {
                            return None;
                        }
                        out.push(Expression::String(s));
                    }
                }
                _ => return None,
            }
        }
        out.dedup();
        Some(out)
    }

    /// The expression at `path` in an object expression (or in the object a `jsonencode(...)`
    /// encodes), as written: `each.value.prefix` stays a reference, to be evaluated in the
    /// caller's scope.
    pub fn at(&self, expr: &Expression, path: &[&str], scope: &Scope) -> Result<Expression> {
        let mut value = self.resolve(expr, scope)?;
        if let Expression::FuncCall(call) = &value {
            if call.name.name.as_str() == "jsonencode" && call.args.len() == 1 {
                value = self.resolve(&call.args[0], scope)?;
            }
        }
        for key in path {
            value = self.lookup(&value, key, scope)?;
        }
        Ok(value)
    }

    /// The elements a list expression can have, each with the scope to evaluate it in: a
    /// literal list's items, what a `for` expression produces for each element of its
    /// collection (with its variables bound), either branch of an undecided conditional.
    /// Anything else is one element.
    pub fn elements(&self, expr: &Expression, scope: &Scope) -> Result<Vec<(Expression, Scope)>> {
        let mut out = Vec::new();
        for alt in self.alternatives(expr, scope)? {
            match alt {
                Expression::Array(items) => {
                    out.extend(items.into_iter().map(|e| (e, scope.clone())));
                }
                Expression::ForExpr(f) if f.key_expr.is_none() => {
                    for (k, v) in self.entries(&f.collection_expr, scope)? {
                        let mut inner = scope.with(f.value_var.as_str(), v);
                        if let Some(key_var) = &f.key_var {
                            inner = inner.with(key_var.as_str(), Expression::String(k));
                        }
                        if let Some(cond) = &f.cond_expr {
                            if self.condition(cond, &inner) == Some(false) {
                                continue;
                            }
                        }
                        out.push((f.value_expr.clone(), inner));
                    }
                }
                other => out.push((other, scope.clone())),
            }
        }
        Ok(out)
    }

    /// Every string the elements of a list expression can be (see [`Eval::elements`]).
    pub fn list_strings(&self, expr: &Expression, scope: &Scope) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        for (element, inner) in self.elements(expr, scope)? {
            out.extend(self.strings(&element, &inner)?);
        }
        Ok(out)
    }

    /// The nested blocks `ident` of a body, each with the scope to read it in: the blocks as
    /// written, and a `dynamic "ident"` block's `content` once for every entry its `for_each`
    /// can have (with its iterator bound).
    pub fn blocks<'b>(
        &self,
        body: &'b Body,
        ident: &str,
        scope: &Scope,
    ) -> Result<Vec<(&'b Body, Scope)>> {
        let mut out: Vec<(&'b Body, Scope)> = body
            .blocks()
            .filter(|b| b.identifier() == ident)
            .map(|b| (b.body(), scope.clone()))
            .collect();
        for d in body.blocks().filter(|b| b.identifier() == "dynamic") {
            if labels(d).first() != Some(&ident) {
                continue;
            }
            let for_each = attr(d.body(), "for_each")
                .ok_or_else(|| format!("dynamic {ident:?} without for_each"))?;
            let iterator = attr(d.body(), "iterator")
                .map(|i| self.reference(i, scope))
                .unwrap_or_else(|| ident.to_owned());
            let content = d
                .body()
                .blocks()
                .find(|b| b.identifier() == "content")
                .ok_or_else(|| format!("dynamic {ident:?} without content"))?;
            for (key, value) in self.entries(for_each, scope)? {
                out.push((content.body(), scope.with_entry(&iterator, &key, value)));
            }
        }
        Ok(out)
    }

    /// The one string an expression evaluates to; an error if it can be several.
    pub fn string(&self, expr: &Expression, scope: &Scope) -> Result<String> {
        let all = self.strings(expr, scope)?;
        let mut it = all.iter();
        match (it.next(), it.next()) {
            (Some(one), None) => Ok(one.clone()),
            _ => Err(format!("{expr} can be any of {all:?}, expected one string")),
        }
    }

    /// The expression as a string: literals as they are, templates with their known parts
    /// filled in, anything unknown as `${reference}` (index expressions evaluated).
    pub fn render(&self, expr: &Expression, scope: &Scope) -> String {
        let resolved = match self.resolve(expr, scope) {
            Ok(r) => r,
            Err(_) => return format!("${{{}}}", self.reference(expr, scope)),
        };
        match &resolved {
            Expression::String(s) => s.clone(),
            Expression::Number(n) => n.to_string(),
            Expression::Bool(b) => b.to_string(),
            Expression::TemplateExpr(t) => match Template::from_expr(t) {
                Ok(template) => self.render_template(&template, scope),
                Err(_) => t.to_string(),
            },
            Expression::Traversal(_) | Expression::Variable(_) => {
                format!("${{{}}}", self.reference(&resolved, scope))
            }
            other => format!("${{{other}}}"),
        }
    }

    fn render_template(&self, template: &Template, scope: &Scope) -> String {
        let mut out = String::new();
        for element in template.elements() {
            match element {
                Element::Literal(s) => out.push_str(s),
                Element::Interpolation(i) => match self.string(&i.expr, scope) {
                    Ok(s) => out.push_str(&s),
                    Err(_) => {
                        let _ = write!(out, "${{{}}}", i.expr);
                    }
                },
                Element::Directive(d) => {
                    let _ = write!(out, "%{{{d:?}}}");
                }
            }
        }
        out
    }

    /// A reference as HCL text, with index expressions evaluated where they can be:
    /// `aws_sqs_queue.dlq[each.key].arn` → `aws_sqs_queue.dlq["parse"].arn`.
    pub fn reference(&self, expr: &Expression, scope: &Scope) -> String {
        match expr {
            Expression::Traversal(t) => {
                let mut out = self.reference(&t.expr, scope);
                for op in &t.operators {
                    match op {
                        TraversalOperator::GetAttr(name) => {
                            let _ = write!(out, ".{name}");
                        }
                        TraversalOperator::Index(index) => match self.string(index, scope) {
                            Ok(s) => {
                                let _ = write!(out, "[{s:?}]");
                            }
                            Err(_) => {
                                let _ = write!(out, "[{index}]");
                            }
                        },
                        TraversalOperator::LegacyIndex(i) => {
                            let _ = write!(out, ".{i}");
                        }
                        TraversalOperator::AttrSplat | TraversalOperator::FullSplat => {
                            out.push_str(".*")
                        }
                    }
                }
                out
            }
            other => other.to_string(),
        }
    }

    /// The elements of a list expression (see [`Eval::elements`]), rendered; a list it cannot
    /// take apart renders as one element.
    pub fn render_list(&self, expr: &Expression, scope: &Scope) -> Vec<String> {
        match self.elements(expr, scope) {
            Ok(elements) => elements
                .iter()
                .map(|(e, inner)| self.render(e, inner))
                .collect(),
            Err(_) => vec![self.render(expr, scope)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(text: &str) -> Module {
        Module::from_sources("m".into(), vec![("m/main.tf".into(), text.to_owned())]).unwrap()
    }

    const TF: &str = r#"
locals {
  prefix = "raw/"
  secrets = merge(
    var.a ? { "x/y" = { env = "A_PARAM" } } : {},
    var.b ? { "z" = { env = "B_PARAM" } } : {},
  )
  environment = {
    one = {
      PREFIX = local.prefix
      FIXED  = "v"
    }
    two = merge(
      { C = var.c },
      { for k, p in local.secrets : p.env => aws_ssm_parameter.d[k].name },
      var.b ? { D = "d" } : {},
    )
  }
}

resource "aws_lambda_function" "f" {
  for_each = { one = 1, two = 2 }
  role = aws_iam_role.r[each.key].arn
  environment {
    variables = local.environment[each.key]
  }
}
"#;

    #[test]
    fn entries_cover_every_branch() {
        let m = module(TF);
        let ev = Eval::new(&m);
        let (_, f) = m.block("resource", &["aws_lambda_function", "f"]).unwrap();
        let env = attr(
            nested(f.body(), "environment").next().unwrap().body(),
            "variables",
        )
        .unwrap();
        let keys = |k: &str| -> BTreeMap<String, String> {
            ev.entries(env, &Scope::each(k, Expression::Null))
                .unwrap()
                .into_iter()
                .map(|(k, v)| (k, ev.render(&v, &Scope::default())))
                .collect()
        };
        assert_eq!(
            keys("one"),
            BTreeMap::from([
                ("FIXED".into(), "v".into()),
                ("PREFIX".into(), "raw/".into())
            ])
        );
        assert_eq!(
            keys("two"),
            BTreeMap::from([
                (
                    "A_PARAM".into(),
                    "${aws_ssm_parameter.d[\"x/y\"].name}".into()
                ),
                (
                    "B_PARAM".into(),
                    "${aws_ssm_parameter.d[\"z\"].name}".into()
                ),
                ("C".into(), "${var.c}".into()),
                ("D".into(), "d".into()),
            ])
        );
        assert_eq!(
            ev.take_touched(),
            BTreeSet::from([PathBuf::from("m/main.tf")])
        );
        let role = attr(f.body(), "role").unwrap();
        assert_eq!(
            ev.render(role, &Scope::each("two", Expression::Null)),
            "${aws_iam_role.r[\"two\"].arn}"
        );
    }

    #[test]
    fn templates_render_known_parts() {
        let m = module(&format!(
            "{TF}\ndata \"x\" \"y\" {{\n  r = \"${{aws_s3_bucket.data.arn}}/${{local.prefix}}*\"\n}}\n"
        ));
        let ev = Eval::new(&m);
        let (_, d) = m.block("data", &["x", "y"]).unwrap();
        let r = attr(d.body(), "r").unwrap();
        assert_eq!(
            ev.render(r, &Scope::default()),
            "${aws_s3_bucket.data.arn}/raw/*"
        );
    }

    const DELIVERY: &str = r#"
locals {
  suffix      = var.compression == "gzip" ? ".gz" : ".zst"
  eventbridge = var.delivery == "eventbridge"
  triggers = {
    a = { prefix = "raw/", suffix = null }
    b = { prefix = "out/", suffix = local.suffix }
  }
  direct  = local.eventbridge ? {} : local.triggers
  bridged = local.eventbridge ? local.triggers : {}
}

resource "aws_s3_bucket_notification" "n" {
  eventbridge = local.eventbridge
  dynamic "lambda_function" {
    for_each = local.direct
    content {
      filter_prefix = lambda_function.value.prefix
      filter_suffix = lambda_function.value.suffix
    }
  }
}

resource "aws_cloudwatch_event_rule" "r" {
  for_each = local.bridged
  event_pattern = jsonencode({
    detail = {
      key = [each.value.suffix == null ? { prefix = each.value.prefix } : { wildcard = "${each.value.prefix}*${each.value.suffix}" }]
    }
  })
}

data "x" "y" {
  dynamic "statement" {
    for_each = local.eventbridge ? [1] : []
    content {
      values = [for k, _ in local.bridged : aws_cloudwatch_event_rule.r[k].arn]
    }
  }
}
"#;

    fn delivery_is<'m>(m: &'m Module, delivery: Option<&str>) -> Eval<'m> {
        match delivery {
            Some(d) => Eval::with_vars(m, &[("delivery", Expression::String(d.to_owned()))]),
            None => Eval::new(m),
        }
    }

    #[test]
    fn known_variables_decide_conditionals_and_unknown_ones_keep_both_branches() {
        let m = module(DELIVERY);
        let root = Scope::default();
        let (_, n) = m
            .block("resource", &["aws_s3_bucket_notification", "n"])
            .unwrap();
        let flag = attr(n.body(), "eventbridge").unwrap();
        let keys = |ev: &Eval<'_>, local: &str| -> Vec<String> {
            let (e, _) = m.local(local).unwrap();
            ev.entries(e, &root)
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };

        let ev = delivery_is(&m, Some("eventbridge"));
        assert_eq!(ev.condition(flag, &root), Some(true));
        assert!(keys(&ev, "direct").is_empty());
        assert_eq!(keys(&ev, "bridged"), ["a", "b"]);

        let ev = delivery_is(&m, Some("notification"));
        assert_eq!(ev.condition(flag, &root), Some(false));
        assert_eq!(keys(&ev, "direct"), ["a", "b"]);
        assert!(keys(&ev, "bridged").is_empty());

        // Nothing known: either branch, as before.
        let ev = delivery_is(&m, None);
        assert_eq!(ev.condition(flag, &root), None);
        assert_eq!(keys(&ev, "direct"), ["a", "b"]);
        // var.compression stays unknown whatever the delivery.
        let (suffix, _) = m.local("suffix").unwrap();
        assert_eq!(
            ev.strings(suffix, &root).unwrap(),
            BTreeSet::from([".gz".to_owned(), ".zst".to_owned()])
        );
    }

    #[test]
    fn dynamic_blocks_jsonencode_and_for_lists_are_read_per_configuration() {
        let m = module(DELIVERY);
        let root = Scope::default();
        let (_, n) = m
            .block("resource", &["aws_s3_bucket_notification", "n"])
            .unwrap();

        let ev = delivery_is(&m, Some("notification"));
        let blocks = ev.blocks(n.body(), "lambda_function", &root).unwrap();
        let filters: Vec<(BTreeSet<String>, BTreeSet<String>)> = blocks
            .iter()
            .map(|(b, s)| {
                let f = |k| ev.strings(attr(b, k).unwrap(), s).unwrap();
                (f("filter_prefix"), f("filter_suffix"))
            })
            .collect();
        let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
        assert_eq!(
            filters,
            [
                (set(&["raw/"]), set(&[])),
                (set(&["out/"]), set(&[".gz", ".zst"]))
            ]
        );
        assert!(delivery_is(&m, Some("eventbridge"))
            .blocks(n.body(), "lambda_function", &root)
            .unwrap()
            .is_empty());

        // The rule's key matcher: `suffix == null` is decided per instance, and the wildcard
        // is every string its template can make.
        let ev = delivery_is(&m, Some("eventbridge"));
        let (_, r) = m
            .block("resource", &["aws_cloudwatch_event_rule", "r"])
            .unwrap();
        let pattern = attr(r.body(), "event_pattern").unwrap();
        let (e, _) = m.local("triggers").unwrap();
        let mut matchers = Vec::new();
        for (k, v) in ev.entries(e, &root).unwrap() {
            let scope = Scope::each(&k, v);
            let key = ev.at(pattern, &["detail", "key"], &scope).unwrap();
            for (element, es) in ev.elements(&key, &scope).unwrap() {
                for alt in ev.alternatives(&element, &es).unwrap() {
                    for (name, value) in ev.entries(&alt, &es).unwrap() {
                        matchers.push((k.clone(), name, ev.strings(&value, &es).unwrap()));
                    }
                }
            }
        }
        assert_eq!(
            matchers,
            [
                ("a".to_owned(), "prefix".to_owned(), set(&["raw/"])),
                (
                    "b".to_owned(),
                    "wildcard".to_owned(),
                    set(&["out/*.gz", "out/*.zst"])
                ),
            ]
        );

        // A dynamic statement exists only where its for_each list can be non-empty, and a
        // `for` list expands to its elements.
        let (_, d) = m.block("data", &["x", "y"]).unwrap();
        let statements = ev.blocks(d.body(), "statement", &root).unwrap();
        assert_eq!(statements.len(), 1);
        let (body, scope) = &statements[0];
        assert_eq!(
            ev.render_list(attr(body, "values").unwrap(), scope),
            [
                "${aws_cloudwatch_event_rule.r[\"a\"].arn}",
                "${aws_cloudwatch_event_rule.r[\"b\"].arn}"
            ]
        );
        assert!(delivery_is(&m, Some("notification"))
            .blocks(d.body(), "statement", &root)
            .unwrap()
            .is_empty());
    }
}
