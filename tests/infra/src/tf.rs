//! Just enough Terraform evaluation to read a module without a provider: locals, `each.key`,
//! `merge(...)`, conditionals, `for` expressions and string templates.
//!
//! Nothing is computed that Terraform only knows at plan time. Instead:
//!
//! - [`Eval::entries`] lists every key an object expression **can** have: both branches of a
//!   conditional, every argument of `merge`, every element a `for` expression can produce
//!   (its `if` clause is assumed true). So an environment variable that is only set when a
//!   destination is enabled still counts as set.
//! - [`Eval::strings`] lists every string an expression can evaluate to.
//! - [`Eval::render`] turns an expression into a string with what is known filled in and the
//!   rest left as `${reference}`: `"${aws_s3_bucket.data.arn}/${local.raw_prefix}*"` renders as
//!   `${aws_s3_bucket.data.arn}/raw/*`, and `aws_lambda_function.function[each.key].arn` with
//!   `each.key = "parse"` as `${aws_lambda_function.function["parse"].arn}`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hcl::expr::{Expression, ObjectKey, TraversalOperator};
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
}

/// Evaluates expressions of one module, remembering which files the locals it followed come
/// from (for messages).
pub struct Eval<'m> {
    /// The module.
    pub module: &'m Module,
    touched: RefCell<BTreeSet<PathBuf>>,
}

impl<'m> Eval<'m> {
    /// An evaluator over `module`.
    pub fn new(module: &'m Module) -> Self {
        Eval {
            module,
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
                let mut out = self.entries(&c.true_expr, scope)?;
                out.extend(self.entries(&c.false_expr, scope)?);
                Ok(out)
            }
            Expression::ForExpr(f) => {
                let key_expr = f
                    .key_expr
                    .as_ref()
                    .ok_or_else(|| format!("not an object: {resolved}"))?;
                let mut out = Vec::new();
                for (k, v) in self.entries(&f.collection_expr, scope)? {
                    let mut inner = scope.with(f.value_var.as_str(), v);
                    if let Some(key_var) = &f.key_var {
                        inner = inner.with(key_var.as_str(), Expression::String(k));
                    }
                    let value = Expression::String(self.render(&f.value_expr, &inner));
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

    /// Every string an expression can evaluate to (unknown parts rendered as `${…}`).
    pub fn strings(&self, expr: &Expression, scope: &Scope) -> Result<BTreeSet<String>> {
        match self.resolve(expr, scope)? {
            Expression::Conditional(c) => {
                let mut out = self.strings(&c.true_expr, scope)?;
                out.extend(self.strings(&c.false_expr, scope)?);
                Ok(out)
            }
            other => Ok(BTreeSet::from([self.render(&other, scope)])),
        }
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

    /// The elements of a list expression, rendered; a `for` or other non-literal list renders
    /// as one element.
    pub fn render_list(&self, expr: &Expression, scope: &Scope) -> Vec<String> {
        match self.resolve(expr, scope) {
            Ok(Expression::Array(items)) => items.iter().map(|e| self.render(e, scope)).collect(),
            _ => vec![self.render(expr, scope)],
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
}
