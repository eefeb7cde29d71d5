//! Cross-checks the Terraform module (`infra/modules/tripline`) against the code's tables,
//! without a provider, a terraform binary or AWS: the `.tf` files are parsed with `hcl-rs`
//! and read with a small evaluator ([`tf`]). The code side is values, never the handlers'
//! source text: the key layout (`tripline_core::layout::Layout` with the default prefixes),
//! its access table (`layout::ACCESS`: which function reads and writes which area) and
//! triggers (`layout::TRIGGERS`), and the adapter table (`tripline_aws::iam`). The handlers
//! are held to the access table by their own unit tests, which run them on the in-memory
//! store and compare every key they touch with it.
//!
//! Each check returns findings, one line each, naming the function, the variable or action,
//! and the `.tf` file; the tests in `tests/crosscheck.rs` assert there are none.
//!
//! | check | code side | Terraform side |
//! | --- | --- | --- |
//! | [`Deployment::check_environment`] | `tripline_aws::settings::{PARSE,DETECT,NOTIFY}_ENV_VARS` + `RUST_LOG` | each `aws_lambda_function`'s `environment.variables`, every key any branch can set |
//! | [`Deployment::check_triggers`] | `layout::TRIGGERS`, the default `Layout`'s prefixes and suffixes, who writes each area (`layout::ACCESS`) | for each value of `s3_event_delivery` ([`DELIVERIES`]): `aws_s3_bucket_notification` filters, or EventBridge rules' patterns and targets; `aws_lambda_permission`s; what `events.amazonaws.com` may do (dead-letter queue and key policies); prefixes in the environment |
//! | [`Deployment::check_iam`] | `layout::ACCESS` → `tripline_aws::iam::store_adapters`, `iam::FUNCTION_ADAPTERS` → `iam::ADAPTERS` | actions and resources of the role's `aws_iam_policy_document` |
//! | [`Deployment::check_adapter_table`] | SDK calls in `shared/aws/src` ([`scan`]) | (none: keeps `iam::ADAPTERS` honest) |

pub mod scan;
pub mod tf;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hcl::expr::Expression;
use scan::{find_all, Source};
use tf::{attr, labels, nested, Eval, Module, Result, Scope};
use tripline_aws::iam::{self, When, ADAPTERS, FUNCTION_ADAPTERS, OPERATIONS};
use tripline_aws::settings::{self, var};
use tripline_core::layout::{self, Area, Layout, Op, Prefixes, ACCESS, CODECS};

/// The module under test, relative to the repository root.
pub const MODULE_DIR: &str = "infra/modules/tripline";

/// What Terraform passes that is not a `tripline_aws::settings` variable but that the code
/// reads all the same (through `tracing_subscriber`'s env filter).
pub const RUNTIME_ENV_VARS: &[&str] = &["RUST_LOG"];

/// The module variable that chooses how S3 events reach the functions.
pub const DELIVERY_VAR: &str = "s3_event_delivery";
/// The bucket's notification configuration invokes the functions (the default).
pub const NOTIFICATION: &str = "notification";
/// The bucket sends its events to EventBridge, and a rule per function invokes it.
pub const EVENTBRIDGE: &str = "eventbridge";
/// Every value of [`DELIVERY_VAR`]; [`Deployment::check_triggers`] checks each configuration.
pub const DELIVERIES: &[&str] = &[NOTIFICATION, EVENTBRIDGE];

/// The principal that invokes the functions with bucket notifications.
pub const S3_PRINCIPAL: &str = "s3.amazonaws.com";
/// The principal that invokes the functions from EventBridge rules.
pub const EVENTS_PRINCIPAL: &str = "events.amazonaws.com";

/// Actions a function role may have without any call in the code: the Lambda service's own
/// needs. CloudWatch Logs for the function's log group, the on-failure destination (its
/// dead-letter queue; Lambda sends with the function's role), the customer-managed key for
/// encrypted objects, topics, parameters, queues and environment, and X-Ray tracing.
pub const INFRA_ACTIONS: &[&str] = &[
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "sqs:SendMessage",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
];

/// Each prefix variable and the default the code uses when it is unset.
pub const PREFIX_DEFAULTS: &[(&str, &str)] = &[
    (var::RAW_PREFIX, settings::DEFAULT_RAW_PREFIX),
    (var::NORMALIZED_PREFIX, settings::DEFAULT_NORMALIZED_PREFIX),
    (var::QUARANTINE_PREFIX, settings::DEFAULT_QUARANTINE_PREFIX),
    (var::ALERTS_PREFIX, settings::DEFAULT_ALERTS_PREFIX),
    (var::STATE_PREFIX, settings::DEFAULT_STATE_PREFIX),
    (var::SITE_PREFIX, settings::DEFAULT_SITE_PREFIX),
];

/// The default of a prefix variable.
pub fn prefix_default(prefix_var: &str) -> &'static str {
    PREFIX_DEFAULTS
        .iter()
        .find(|(v, _)| *v == prefix_var)
        .map(|(_, d)| *d)
        .unwrap_or_else(|| panic!("{prefix_var} is not a prefix variable"))
}

/// The variable that sets an area's prefix (the markers live under the state prefix).
pub fn prefix_var(area: Area) -> &'static str {
    match area {
        Area::Raw => var::RAW_PREFIX,
        Area::Normalized => var::NORMALIZED_PREFIX,
        Area::Quarantine => var::QUARANTINE_PREFIX,
        Area::Alerts => var::ALERTS_PREFIX,
        Area::Claim | Area::Storm | Area::Delivery => var::STATE_PREFIX,
        Area::Site => var::SITE_PREFIX,
    }
}

/// The layout with the default prefixes: the one the Terraform must spell.
pub fn default_layout() -> Layout {
    Layout::default()
}

/// One object-level permission a function needs: an IAM action on the keys under a prefix,
/// and why (the access-table row and the adapter that makes it).
pub struct ObjectNeed {
    /// The IAM action.
    pub action: &'static str,
    /// The key prefix, with the default prefixes: `state/claim/`.
    pub prefix: String,
    /// `notify PutIfAbsent Claim through s3io::put_if_absent`.
    pub why: String,
}

/// What each row of `layout::ACCESS` for `function` needs on objects.
pub fn object_needs(function: &str) -> Vec<ObjectNeed> {
    let layout = default_layout();
    let mut out = Vec::new();
    for a in ACCESS.iter().filter(|a| a.function == function) {
        for path in iam::store_adapters(a.op) {
            let adapter = iam::adapter(path).expect("iam::store_adapters names adapters");
            for n in adapter.needs.iter().filter(|n| n.on == iam::On::Object) {
                if out
                    .iter()
                    .any(|o: &ObjectNeed| o.action == n.action && o.prefix == layout.prefix(a.area))
                {
                    continue;
                }
                out.push(ObjectNeed {
                    action: n.action,
                    prefix: layout.prefix(a.area).to_owned(),
                    why: format!(
                        "layout::ACCESS {function} {:?} {:?} through {path}",
                        a.op, a.area
                    ),
                });
            }
        }
    }
    out
}

/// The adapters a function calls: those behind its access-table rows, and its
/// [`FUNCTION_ADAPTERS`].
pub fn function_adapters(function: &str) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for a in ACCESS.iter().filter(|a| a.function == function) {
        for path in iam::store_adapters(a.op) {
            if !out.iter().any(|(p, _)| p == path) {
                out.push((
                    path,
                    format!("layout::ACCESS {function} {:?} {:?}", a.op, a.area),
                ));
            }
        }
    }
    for (_, paths) in FUNCTION_ADAPTERS.iter().filter(|(f, _)| *f == function) {
        for path in *paths {
            out.push((path, format!("iam::FUNCTION_ADAPTERS {function}")));
        }
    }
    out
}

/// SDK operation methods that are not in [`OPERATIONS`]; seeing one called in
/// `shared/aws/src` means the adapter table is missing an operation.
pub const OTHER_SDK_METHODS: &[&str] = &[
    "list_objects",
    "delete_object",
    "delete_objects",
    "copy_object",
    "head_bucket",
    "get_object_attributes",
    "get_object_tagging",
    "put_object_tagging",
    "upload_part_copy",
    "select_object_content",
    "restore_object",
    "publish_batch",
    "get_parameters",
    "get_parameters_by_path",
    "describe_secret",
    "batch_get_secret_value",
    "send_message",
    "send_message_batch",
];

/// The repository root.
pub fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// One `aws_lambda_function` instance.
pub struct Lambda {
    /// Its name in the code's terms: the `for_each` key (`parse`), else the resource label.
    pub name: String,
    /// `aws_lambda_function.function["parse"]`.
    pub reference: String,
    /// The `.tf` file of the resource.
    pub file: PathBuf,
    /// Its role, as a reference without attribute: `aws_iam_role.function["parse"]`.
    pub role: String,
    /// Every variable its environment can have, with every value it can take.
    pub env: BTreeMap<String, BTreeSet<String>>,
    /// The files the environment is defined in (the resource's and its locals').
    pub env_files: Vec<PathBuf>,
}

impl Lambda {
    fn env_where(&self) -> String {
        let files: Vec<String> = self
            .env_files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        format!(
            "{} environment.variables ({})",
            self.reference,
            files.join(", ")
        )
    }
}

/// An Allow statement of a policy document.
pub struct Statement {
    /// Its `sid` (or `#n`).
    pub sid: String,
    /// Its actions.
    pub actions: Vec<String>,
    /// Its resources, rendered (see [`tf::Eval::render`]).
    pub resources: Vec<String>,
    /// Its principals: `(type, identifiers)` (none in an identity policy).
    pub principals: Vec<(String, Vec<String>)>,
    /// Its conditions: `(test, variable, values)`.
    pub conditions: Vec<(String, String, Vec<String>)>,
}

impl Statement {
    /// Whether it grants something to the AWS service `principal` (or to anyone).
    pub fn grants_to(&self, principal: &str) -> bool {
        self.principals.iter().any(|(ty, ids)| {
            ids.iter()
                .any(|i| i == "*" || (ty == "Service" && i == principal))
        })
    }

    /// The `aws:SourceArn` values its conditions require (none: any source).
    pub fn source_arns(&self) -> BTreeSet<String> {
        self.conditions
            .iter()
            .filter(|(test, variable, _)| {
                variable.eq_ignore_ascii_case("aws:SourceArn")
                    && ["ArnEquals", "ArnLike", "StringEquals", "StringLike"]
                        .contains(&test.as_str())
            })
            .flat_map(|(_, _, values)| values.iter().cloned())
            .collect()
    }
}

/// A function role's inline policy document.
pub struct Policy {
    /// `data.aws_iam_policy_document.parse`.
    pub name: String,
    /// Its file.
    pub file: PathBuf,
    /// Its Allow statements (dynamic ones included).
    pub statements: Vec<Statement>,
}

impl Policy {
    fn granted(&self) -> BTreeMap<&str, Vec<(&Statement, &str)>> {
        let mut out: BTreeMap<&str, Vec<(&Statement, &str)>> = BTreeMap::new();
        for s in &self.statements {
            for a in &s.actions {
                for r in &s.resources {
                    out.entry(a.as_str()).or_default().push((s, r.as_str()));
                }
            }
        }
        out
    }
}

/// One instance of a resource: one `for_each` key, or the resource itself.
struct Instance<'a> {
    file: &'a Path,
    block: &'a hcl::Block,
    /// The `for_each` key, else the resource label.
    key: String,
    /// `type.label["key"]` or `type.label`.
    reference: String,
    scope: Scope,
}

/// The module and the adapters' code, loaded once per check.
pub struct Deployment {
    /// The parsed module.
    pub module: Module,
    /// `shared/aws/src/*.rs` without the moto harness.
    pub adapters: Vec<Source>,
}

/// Strips `${` `}` and the last `.attribute` from a rendered reference:
/// `${aws_iam_role.function["parse"].arn}` → `aws_iam_role.function["parse"]`.
fn base_reference(rendered: &str) -> Option<String> {
    let inner = rendered.strip_prefix("${")?.strip_suffix('}')?;
    let (base, _attr) = inner.rsplit_once('.')?;
    Some(base.to_owned())
}

fn code_vars(function: &str) -> Option<Vec<&'static str>> {
    settings::ENV_VARS
        .iter()
        .find(|(f, _)| *f == function)
        .map(|(_, vars)| {
            let mut v = vars.to_vec();
            v.extend(RUNTIME_ENV_VARS);
            v
        })
}

/// `X` and `X_PARAM` are one setting (a value, or a reference to a secret holding it).
fn setting(var: &str) -> &str {
    var.strip_suffix("_PARAM").unwrap_or(var)
}

fn loc(hits: &[(PathBuf, usize)]) -> String {
    hits.iter()
        .map(|(p, l)| format!("{}:{l}", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What invokes a function for new objects in one configuration: a `lambda_function` of the
/// bucket notification, or an EventBridge rule with the function as target.
#[derive(Debug)]
pub struct Trigger {
    /// The function, in the code's terms.
    pub function: String,
    /// For messages: `notification "raw-to-parse" (…/lambda.tf, …/main.tf)`.
    pub what: String,
    /// The principal that invokes the function for it ([`S3_PRINCIPAL`] or
    /// [`EVENTS_PRINCIPAL`]) ...
    pub principal: &'static str,
    /// ... and the source it invokes from: `${aws_s3_bucket.data.arn}`, or the rule's ARN.
    pub source_arn: String,
    /// With EventBridge: the rule and its target's dead-letter queue.
    pub rule: Option<RuleTarget>,
    /// Every key prefix it filters on.
    pub prefix: BTreeSet<String>,
    /// Every key suffix it filters on (none: any key under the prefix).
    pub suffix: BTreeSet<String>,
}

/// An EventBridge rule that invokes a function.
#[derive(Debug)]
pub struct RuleTarget {
    /// `aws_cloudwatch_event_rule.s3["parse"]`.
    pub rule: String,
    /// The target's `dead_letter_config.arn`, rendered.
    pub dead_letter_queue: Option<String>,
}

/// `first, more...` as one list of files.
fn files(first: &Path, more: BTreeSet<PathBuf>) -> String {
    let mut all = vec![first.display().to_string()];
    all.extend(
        more.iter()
            .filter(|p| p.as_path() != first)
            .map(|p| p.display().to_string()),
    );
    all.join(", ")
}

/// The key prefix and suffix an EventBridge key matcher filters on: `prefix` (any suffix), or
/// `wildcard` `<prefix>*<suffix>` (one `*`, no escapes). Any other matcher selects keys a
/// bucket notification could not, and is an error.
fn key_filter(matcher: &str, text: &str) -> Result<(String, Option<String>)> {
    match matcher {
        "prefix" => Ok((text.to_owned(), None)),
        "wildcard" => match text.split_once('*') {
            Some((p, s)) if !s.contains('*') && !text.contains('\\') => {
                Ok((p.to_owned(), (!s.is_empty()).then(|| s.to_owned())))
            }
            _ => Err(format!(
                "matches keys with the wildcard {text:?}; expected <prefix>*<suffix>, with one * and no escapes"
            )),
        },
        other => Err(format!(
            "matches keys with {other:?} {text:?}; expected a prefix, or a wildcard <prefix>*<suffix>"
        )),
    }
}

impl Deployment {
    /// Loads the module and the adapters' code from the repository.
    pub fn load() -> Result<Self> {
        Self::load_edited(|_, text| text)
    }

    /// Loads with each `.tf` file's text passed through `edit` first (for tests of the checks).
    pub fn load_edited(edit: impl Fn(&Path, String) -> String) -> Result<Self> {
        let root = repo_root();
        let dir = root.join(MODULE_DIR);
        let mut sources = Vec::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "tf"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            let shown = path.strip_prefix(&root).unwrap_or(&path).to_path_buf();
            let text = edit(&shown, text);
            sources.push((shown, text));
        }
        let module = Module::from_sources(PathBuf::from(MODULE_DIR), sources)?;
        let adapters = scan::sources(&root.join("shared/aws/src"), &root)?
            .into_iter()
            .filter(|s| s.path.file_name().is_none_or(|n| n != "testing.rs"))
            .collect();
        Ok(Deployment { module, adapters })
    }

    /// Instances of a resource type: `(file, block, key or label, scope)`.
    fn instances<'a>(&'a self, ev: &Eval<'a>, resource_type: &'a str) -> Result<Vec<Instance<'a>>> {
        self.instances_of(ev, "resource", resource_type)
    }

    /// Instances of a resource (`kind` "resource") or data source ("data") type in the
    /// evaluator's configuration: one per `for_each` entry, per possible `count.index` (the
    /// largest count any branch gives), or the block itself.
    fn instances_of<'a>(
        &'a self,
        ev: &Eval<'a>,
        kind: &str,
        ty: &str,
    ) -> Result<Vec<Instance<'a>>> {
        let mut out = Vec::new();
        let root = Scope::default();
        for (path, block) in self.module.blocks(kind, &[ty]) {
            let label = labels(block).get(1).copied().unwrap_or_default().to_owned();
            let base = match kind {
                "data" => format!("data.{ty}.{label}"),
                _ => format!("{ty}.{label}"),
            };
            if let Some(for_each) = attr(block.body(), "for_each") {
                for (key, value) in ev.entries(for_each, &root)? {
                    out.push(Instance {
                        file: path,
                        block,
                        reference: format!("{base}[{key:?}]"),
                        scope: Scope::each(&key, value),
                        key,
                    });
                }
            } else if let Some(count) = attr(block.body(), "count") {
                let n = ev
                    .alternatives(count, &root)?
                    .iter()
                    .map(|c| match c {
                        Expression::Number(n) => n.as_u64().unwrap_or(1),
                        _ => 1,
                    })
                    .max()
                    .unwrap_or(1);
                for i in 0..n {
                    out.push(Instance {
                        file: path,
                        block,
                        key: i.to_string(),
                        reference: format!("{base}[{i}]"),
                        scope: Scope::count(i),
                    });
                }
            } else {
                out.push(Instance {
                    file: path,
                    block,
                    key: label,
                    reference: base,
                    scope: Scope::default(),
                });
            }
        }
        Ok(out)
    }

    /// Every `aws_iam_policy_document` instance of the configuration, read.
    fn policy_documents(&self, ev: &Eval<'_>) -> Result<Vec<Policy>> {
        self.instances_of(ev, "data", "aws_iam_policy_document")?
            .into_iter()
            .map(|d| {
                Ok(Policy {
                    file: d.file.to_path_buf(),
                    statements: statements(ev, d.block, d.file, &d.scope)?,
                    name: d.reference,
                })
            })
            .collect()
    }

    /// The `aws_iam_policy_document` a resource's `policy` is the JSON of.
    fn policy_document(&self, ev: &Eval<'_>, inst: &Instance<'_>) -> Result<Policy> {
        let here = || format!("{} ({})", inst.reference, inst.file.display());
        let policy =
            attr(inst.block.body(), "policy").ok_or_else(|| format!("{} has no policy", here()))?;
        let resolved = ev.resolve(policy, &inst.scope)?;
        let document = ev.reference(&resolved, &inst.scope);
        let name = document
            .strip_suffix(".json")
            .filter(|d| d.starts_with("data.aws_iam_policy_document."))
            .ok_or_else(|| {
                format!(
                    "{}: policy is {document}, expected data.aws_iam_policy_document.<name>.json",
                    here()
                )
            })?;
        self.policy_documents(ev)?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| format!("{}: no {name} in {MODULE_DIR}", here()))
    }

    /// Every `aws_lambda_function` instance with its environment.
    pub fn lambdas(&self, ev: &Eval<'_>) -> Result<Vec<Lambda>> {
        let mut out = Vec::new();
        for Instance {
            file: path,
            block,
            key: name,
            reference,
            scope,
        } in self.instances(ev, "aws_lambda_function")?
        {
            ev.take_touched();
            let mut env: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            if let Some(environment) = nested(block.body(), "environment").next() {
                let vars = attr(environment.body(), "variables").ok_or_else(|| {
                    format!(
                        "{}: {reference}: environment without variables",
                        path.display()
                    )
                })?;
                for (k, v) in ev.entries(vars, &scope)? {
                    env.entry(k).or_default().extend(ev.strings(&v, &scope)?);
                }
            }
            let mut env_files = vec![path.to_path_buf()];
            env_files.extend(ev.take_touched().into_iter().filter(|p| p != path));
            let role = attr(block.body(), "role")
                .map(|r| ev.render(r, &scope))
                .and_then(|r| base_reference(&r))
                .ok_or_else(|| format!("{}: {reference}: no role reference", path.display()))?;
            out.push(Lambda {
                name,
                reference,
                file: path.to_path_buf(),
                role,
                env,
                env_files,
            });
        }
        if out.is_empty() {
            return Err(format!("{MODULE_DIR}: no aws_lambda_function"));
        }
        Ok(out)
    }

    // -----------------------------------------------------------------------------------------
    // Environment

    /// Every variable the code reads is set by Terraform (in some configuration), and
    /// Terraform sets nothing the code doesn't read; secrets are passed as `_PARAM`.
    pub fn check_environment(&self) -> Result<Vec<String>> {
        let ev = Eval::new(&self.module);
        let lambdas = self.lambdas(&ev)?;
        let mut findings = Vec::new();
        for (function, _) in settings::ENV_VARS {
            if !lambdas.iter().any(|l| l.name == *function) {
                findings.push(format!(
                    "{function}: no aws_lambda_function instance named {function:?} in {MODULE_DIR}"
                ));
            }
        }
        for l in &lambdas {
            let Some(code) = code_vars(&l.name) else {
                findings.push(format!(
                    "{}: {} ({}) is a function tripline_aws::settings::ENV_VARS does not know",
                    l.name,
                    l.reference,
                    l.file.display()
                ));
                continue;
            };
            let list = format!("tripline_aws::settings::{}_ENV_VARS", l.name.to_uppercase());
            let code_settings: BTreeSet<&str> = code.iter().map(|v| setting(v)).collect();
            let tf_settings: BTreeSet<&str> = l.env.keys().map(|v| setting(v)).collect();
            for s in code_settings.difference(&tf_settings) {
                let twin = if code.contains(&format!("{s}_PARAM").as_str()) {
                    format!(" (nor {s}_PARAM)")
                } else {
                    String::new()
                };
                findings.push(format!(
                    "{}: {s} is read by the code ({list}) but not set{twin} by {}",
                    l.name,
                    l.env_where()
                ));
            }
            for v in l.env.keys() {
                if !code.contains(&v.as_str()) {
                    findings.push(format!(
                        "{}: {v} is set by {} but the code never reads it (not in {list})",
                        l.name,
                        l.env_where()
                    ));
                }
                let param = format!("{v}_PARAM");
                if code.contains(&param.as_str()) {
                    findings.push(format!(
                        "{}: {v} is a secret but {} sets its value; set {param} to an SSM parameter name instead",
                        l.name,
                        l.env_where()
                    ));
                }
            }
        }
        Ok(findings)
    }

    // -----------------------------------------------------------------------------------------
    // Triggers and prefixes

    /// An evaluator for the configuration with `s3_event_delivery = delivery`; every other
    /// input variable stays unknown.
    pub fn eval_for(&self, delivery: &str) -> Eval<'_> {
        Eval::with_vars(
            &self.module,
            &[(DELIVERY_VAR, Expression::String(delivery.to_owned()))],
        )
    }

    /// Every prefix Terraform passes is the code's default and the bucket Terraform passes is
    /// the notified one; then, for each value of `s3_event_delivery`, each function in
    /// `layout::TRIGGERS` is invoked for the objects of its area (the code's prefix and
    /// suffixes), one way only, by the only principal allowed to invoke it (see
    /// [`Deployment::check_delivery`]).
    pub fn check_triggers(&self) -> Result<Vec<String>> {
        let mut findings = self.check_delivery_variable();
        findings.extend(self.check_prefixes()?);
        for delivery in DELIVERIES {
            for f in self.check_delivery(delivery)? {
                findings.push(format!("[{DELIVERY_VAR} = {delivery:?}] {f}"));
            }
        }
        Ok(findings)
    }

    /// The notification resource, its file, and the bucket it configures
    /// (`aws_s3_bucket.data`).
    fn notification(&self, ev: &Eval<'_>) -> Result<(&Path, &hcl::Block, String)> {
        let (nfile, notification) = self
            .module
            .block("resource", &["aws_s3_bucket_notification"])?;
        let bucket = attr(notification.body(), "bucket")
            .map(|b| ev.render(b, &Scope::default()))
            .and_then(|b| base_reference(&b))
            .ok_or_else(|| {
                format!(
                    "{}: aws_s3_bucket_notification without a bucket reference",
                    nfile.display()
                )
            })?;
        Ok((nfile, notification, bucket))
    }

    /// `s3_event_delivery` defaults to the bucket notification and allows exactly
    /// [`DELIVERIES`], the configurations these checks go through.
    fn check_delivery_variable(&self) -> Vec<String> {
        let ev = Eval::new(&self.module);
        let scope = Scope::default();
        let Ok((file, v)) = self.module.block("variable", &[DELIVERY_VAR]) else {
            return vec![format!(
                "{MODULE_DIR}: no variable {DELIVERY_VAR:?} (how S3 events reach the functions: one of {DELIVERIES:?})"
            )];
        };
        let file = file.display();
        let mut findings = Vec::new();
        let default = attr(v.body(), "default").map(|d| ev.render(d, &scope));
        if default.as_deref() != Some(NOTIFICATION) {
            findings.push(format!(
                "{file}: variable {DELIVERY_VAR:?} defaults to {default:?}; the default stays {NOTIFICATION:?}, so a deployment that does not choose keeps its bucket notification"
            ));
        }
        let allowed: BTreeSet<String> = nested(v.body(), "validation")
            .filter_map(|val| attr(val.body(), "condition"))
            .filter_map(|c| match c {
                Expression::FuncCall(call) if call.name.name.as_str() == "contains" => {
                    call.args.first().cloned()
                }
                _ => None,
            })
            .flat_map(|list| ev.list_strings(&list, &scope).unwrap_or_default())
            .collect();
        let want: BTreeSet<String> = DELIVERIES.iter().map(|d| (*d).to_owned()).collect();
        if allowed != want {
            findings.push(format!(
                "{file}: variable {DELIVERY_VAR:?} is validated with contains({allowed:?}, ...), but the checks go through {want:?} (tripline_infra_check::DELIVERIES)"
            ));
        }
        findings
    }

    /// The prefixes in every function's environment are the code's defaults, and
    /// `TRIPLINE_BUCKET` names the notified bucket.
    fn check_prefixes(&self) -> Result<Vec<String>> {
        let ev = Eval::new(&self.module);
        let lambdas = self.lambdas(&ev)?;
        let mut findings = Vec::new();

        // Prefixes in the environment: one value, the code's default, for every function.
        for l in &lambdas {
            for (prefix_var, default) in PREFIX_DEFAULTS {
                if let Some(values) = l.env.get(*prefix_var) {
                    if values.len() != 1 || !values.contains(*default) {
                        findings.push(format!(
                            "{}: {prefix_var} is {values:?} in {} but the code's default is {default:?} (tripline_aws::settings::DEFAULT_*); keep them equal so the CLI, the functions and the IAM prefixes agree",
                            l.name,
                            l.env_where()
                        ));
                    }
                }
            }
        }

        // TRIPLINE_BUCKET is the notified bucket's name.
        let (_, _, bucket) = self.notification(&ev)?;
        if let Ok((bfile, bblock)) = self.bucket_block(&bucket) {
            let name = attr(bblock.body(), "bucket").map(|b| ev.strings(b, &Scope::default()));
            for l in &lambdas {
                if let (Some(Ok(name)), Some(value)) = (&name, l.env.get(var::BUCKET)) {
                    if value != name {
                        findings.push(format!(
                            "{}: {} is {value:?} in {} but the notified bucket {bucket} ({}) is named {name:?}",
                            l.name,
                            var::BUCKET,
                            l.env_where(),
                            bfile.display()
                        ));
                    }
                }
            }
        }
        Ok(findings)
    }

    /// One configuration (`s3_event_delivery = delivery`):
    ///
    /// - the bucket sends its events to EventBridge exactly when `delivery` is EventBridge;
    /// - with `notification`, a `lambda_function` of the bucket notification invokes each
    ///   function, S3 may invoke it for this bucket, and nothing EventBridge does reaches it;
    /// - with `eventbridge`, the notification invokes nothing, and an `aws_cloudwatch_event_rule`
    ///   on the default bus (`source` `aws.s3`, `detail-type` `Object Created`, the bucket, a
    ///   key matcher) has the function as target, with a retry policy and the function's own
    ///   dead-letter queue; EventBridge may invoke the function from that rule only, and put
    ///   undeliverable events in that queue (its policy, and its key's) from that rule only;
    /// - in both: each trigger filters on the prefix and suffixes of its area, and
    ///   `events.amazonaws.com` is granted nothing the configuration does not use.
    pub fn check_delivery(&self, delivery: &str) -> Result<Vec<String>> {
        let (triggers, mut findings) = self.triggers(delivery)?;
        let ev = self.eval_for(delivery);
        let lambdas = self.lambdas(&ev)?;
        findings.extend(self.check_filters(&lambdas, &triggers, delivery));
        findings.extend(self.check_invoke_permissions(&ev, &lambdas, &triggers)?);
        findings.extend(self.check_eventbridge_grants(&ev, &triggers)?);
        Ok(findings)
    }

    /// What invokes the functions for new objects with `s3_event_delivery = delivery`, and
    /// the findings about the bucket's EventBridge switch, the notification's and the rules'
    /// own settings met on the way.
    pub fn triggers(&self, delivery: &str) -> Result<(Vec<Trigger>, Vec<String>)> {
        let ev = self.eval_for(delivery);
        let lambdas = self.lambdas(&ev)?;
        let (nfile, notification, bucket) = self.notification(&ev)?;
        let eventbridge = delivery == EVENTBRIDGE;
        let mut findings = Vec::new();

        let sends = match attr(notification.body(), "eventbridge") {
            None => Some(false),
            Some(e) => ev.condition(e, &Scope::default()),
        };
        match sends {
            Some(s) if s == eventbridge => {}
            Some(s) => findings.push(format!(
                "{}: aws_s3_bucket_notification sets eventbridge = {s}, but {}",
                nfile.display(),
                if eventbridge {
                    "EventBridge rules only see the bucket's events when it is true"
                } else {
                    "nothing uses the bucket's events on EventBridge in this configuration; leave it false"
                }
            )),
            None => findings.push(format!(
                "{}: cannot tell whether aws_s3_bucket_notification's eventbridge is true",
                nfile.display()
            )),
        }

        let mut triggers = self.notification_triggers(
            &ev,
            &lambdas,
            (nfile, notification, &bucket),
            eventbridge,
            &mut findings,
        )?;
        triggers.extend(self.rule_triggers(&ev, &lambdas, &bucket, eventbridge, &mut findings)?);
        Ok((triggers, findings))
    }

    /// The `lambda_function` blocks of the bucket notification (written out or `dynamic`).
    fn notification_triggers(
        &self,
        ev: &Eval<'_>,
        lambdas: &[Lambda],
        (nfile, notification, bucket): (&Path, &hcl::Block, &str),
        eventbridge: bool,
        findings: &mut Vec<String>,
    ) -> Result<Vec<Trigger>> {
        let root = Scope::default();
        for kind in ["queue", "topic"] {
            if eventbridge && !ev.blocks(notification.body(), kind, &root)?.is_empty() {
                findings.push(format!(
                    "{}: aws_s3_bucket_notification sends events to a {kind}; with EventBridge the bucket notifies nothing directly",
                    nfile.display()
                ));
            }
        }
        let mut out = Vec::new();
        ev.take_touched();
        for (body, scope) in ev.blocks(notification.body(), "lambda_function", &root)? {
            let id = attr(body, "id")
                .map(|e| ev.render(e, &scope))
                .unwrap_or_default();
            let arn = attr(body, "lambda_function_arn")
                .map(|e| ev.render(e, &scope))
                .and_then(|r| base_reference(&r))
                .unwrap_or_default();
            let filter = |key: &str| -> Result<BTreeSet<String>> {
                Ok(attr(body, key)
                    .map(|e| ev.strings(e, &scope))
                    .transpose()?
                    .unwrap_or_default())
            };
            let (prefix, suffix) = (filter("filter_prefix")?, filter("filter_suffix")?);
            let events = attr(body, "events")
                .map(|e| ev.render_list(e, &scope))
                .unwrap_or_default();
            let what = format!("notification {id:?} ({})", files(nfile, ev.take_touched()));
            let Some(l) = lambdas.iter().find(|l| l.reference == arn) else {
                findings.push(format!("{what} targets {arn:?}, not one of the functions"));
                continue;
            };
            if eventbridge {
                findings.push(format!(
                    "{}: {what} invokes it directly, while an EventBridge rule does in this configuration; the notification must invoke nothing",
                    l.name
                ));
            }
            if events.is_empty() || events.iter().any(|e| !e.starts_with("s3:ObjectCreated:")) {
                findings.push(format!(
                    "{}: {what} has events {events:?}; the code handles s3:ObjectCreated:* only",
                    l.name
                ));
            }
            out.push(Trigger {
                function: l.name.clone(),
                what,
                principal: S3_PRINCIPAL,
                source_arn: format!("${{{bucket}.arn}}"),
                rule: None,
                prefix,
                suffix,
            });
        }
        Ok(out)
    }

    /// The EventBridge rules that invoke a function: each `aws_cloudwatch_event_target` whose
    /// `arn` is a function, with its rule's pattern.
    fn rule_triggers(
        &self,
        ev: &Eval<'_>,
        lambdas: &[Lambda],
        bucket: &str,
        eventbridge: bool,
        findings: &mut Vec<String>,
    ) -> Result<Vec<Trigger>> {
        let rules = self.instances(ev, "aws_cloudwatch_event_rule")?;
        let mut bucket_names =
            BTreeSet::from([format!("${{{bucket}.id}}"), format!("${{{bucket}.bucket}}")]);
        if let Ok((_, b)) = self.bucket_block(bucket) {
            if let Some(name) = attr(b.body(), "bucket") {
                bucket_names.extend(ev.strings(name, &Scope::default())?);
            }
        }
        let mut out = Vec::new();
        for target in self.instances(ev, "aws_cloudwatch_event_target")? {
            let (body, ts) = (target.block.body(), &target.scope);
            let arn = attr(body, "arn")
                .map(|e| ev.render(e, ts))
                .and_then(|r| base_reference(&r))
                .unwrap_or_default();
            let Some(l) = lambdas.iter().find(|l| l.reference == arn) else {
                continue;
            };
            let f = l.name.as_str();
            let tname = format!("{} ({})", target.reference, target.file.display());
            if !eventbridge {
                findings.push(format!(
                    "{f}: {tname} invokes it from EventBridge, while the bucket notification does in this configuration; no rule may invoke it"
                ));
                continue;
            }
            let rule_ref = attr(body, "rule")
                .map(|e| ev.render(e, ts))
                .and_then(|r| base_reference(&r))
                .unwrap_or_default();
            let Some(rule) = rules.iter().find(|r| r.reference == rule_ref) else {
                findings.push(format!(
                    "{f}: {tname} belongs to {rule_ref:?}, not to an aws_cloudwatch_event_rule of the module"
                ));
                continue;
            };
            let (rbody, rs) = (rule.block.body(), &rule.scope);
            ev.take_touched();

            // S3 sends its events to the account's default bus only.
            let bus = attr(rbody, "event_bus_name")
                .map(|e| ev.strings(e, rs))
                .transpose()?
                .unwrap_or_default();
            if bus.iter().any(|b| b != "default") {
                findings.push(format!(
                    "{f}: {} listens on the bus {bus:?}; S3 sends its events to the default bus",
                    rule.reference
                ));
            }

            let Some(pattern) = attr(rbody, "event_pattern") else {
                findings.push(format!(
                    "{f}: {} ({}) has no event_pattern",
                    rule.reference,
                    rule.file.display()
                ));
                continue;
            };
            let field = |path: &[&str]| -> Result<Option<BTreeSet<String>>> {
                match ev.at(pattern, path, rs) {
                    Ok(e) => Ok(Some(ev.list_strings(&e, rs)?)),
                    Err(_) => Ok(None),
                }
            };
            let source = field(&["source"])?;
            let detail_type = field(&["detail-type"])?;
            let names = field(&["detail", "bucket", "name"])?;
            let mut prefix = BTreeSet::new();
            let mut suffix = BTreeSet::new();
            let mut problems = Vec::new();
            match ev.at(pattern, &["detail", "object", "key"], rs) {
                Err(_) => problems.push(
                    "matches no detail.object.key, so every object in the bucket would invoke the function".to_owned(),
                ),
                Ok(key) => {
                    for (element, es) in ev.elements(&key, rs)? {
                        for alt in ev.alternatives(&element, &es)? {
                            let matchers = match alt {
                                Expression::Object(_) => ev.entries(&alt, &es)?,
                                other => {
                                    problems.push(format!(
                                        "matches the key {:?} exactly",
                                        ev.render(&other, &es)
                                    ));
                                    continue;
                                }
                            };
                            for (matcher, value) in matchers {
                                for text in ev.strings(&value, &es)? {
                                    match key_filter(&matcher, &text) {
                                        Ok((p, s)) => {
                                            prefix.insert(p);
                                            suffix.extend(s);
                                        }
                                        Err(e) => problems.push(e),
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let what = format!(
                "{} ({})",
                rule.reference,
                files(rule.file, ev.take_touched())
            );
            let shown = |v: &Option<BTreeSet<String>>| match v {
                Some(v) => format!("{v:?}"),
                None => "(none)".to_owned(),
            };
            if source != Some(BTreeSet::from(["aws.s3".to_owned()])) {
                problems.push(format!(
                    "matches source {}; S3's events have source aws.s3",
                    shown(&source)
                ));
            }
            if detail_type != Some(BTreeSet::from(["Object Created".to_owned()])) {
                problems.push(format!(
                    "matches detail-type {}; the code handles Object Created only",
                    shown(&detail_type)
                ));
            }
            match &names {
                Some(n) if !n.is_empty() && n.is_subset(&bucket_names) => {}
                _ => problems.push(format!(
                    "matches the bucket names {}; expected the notified bucket {bucket} ({bucket_names:?})",
                    shown(&names)
                )),
            }
            for p in problems {
                findings.push(format!("{f}: {what} {p}"));
            }

            // The target says how long EventBridge keeps trying, and where what it could not
            // deliver goes: the function's own dead-letter queue, which its alarm watches.
            let retry = nested(body, "retry_policy").next();
            let bounded = retry.is_some_and(|r| {
                attr(r.body(), "maximum_event_age_in_seconds").is_some()
                    && attr(r.body(), "maximum_retry_attempts").is_some()
            });
            if !bounded {
                findings.push(format!(
                    "{f}: {tname} has no retry_policy with maximum_event_age_in_seconds and maximum_retry_attempts"
                ));
            }
            let own = self.dead_letter_queue(ev, l);
            let dlq = nested(body, "dead_letter_config")
                .next()
                .and_then(|d| attr(d.body(), "arn"))
                .map(|a| ev.render(a, ts));
            match (&dlq, &own) {
                (None, _) => findings.push(format!(
                    "{f}: {tname} has no dead_letter_config: an event EventBridge cannot deliver would be dropped"
                )),
                (Some(d), Some(o)) if d == o => {}
                (Some(d), _) => findings.push(format!(
                    "{f}: {tname} sends undeliverable events to {d}, not to {f}'s dead-letter queue {} (its on-failure destination, which its alarm watches)",
                    own.as_deref().unwrap_or("(none: no on-failure destination)")
                )),
            }
            out.push(Trigger {
                function: f.to_owned(),
                what,
                principal: EVENTS_PRINCIPAL,
                source_arn: format!("${{{}.arn}}", rule.reference),
                rule: Some(RuleTarget {
                    rule: rule.reference.clone(),
                    dead_letter_queue: dlq,
                }),
                prefix,
                suffix,
            });
        }
        Ok(out)
    }

    /// Each trigger filters on the prefix and suffixes the code uses for its area, the prefix
    /// the function is given, and keys some function writes; one trigger per function in
    /// `layout::TRIGGERS`, none for others.
    fn check_filters(
        &self,
        lambdas: &[Lambda],
        triggers: &[Trigger],
        delivery: &str,
    ) -> Vec<String> {
        let layout = default_layout();
        let mut findings = Vec::new();
        let mut seen = BTreeSet::new();
        for t in triggers {
            let Some(l) = lambdas.iter().find(|l| l.name == t.function) else {
                continue;
            };
            let (what, prefix, suffix) = (&t.what, &t.prefix, &t.suffix);
            if !seen.insert(l.name.clone()) {
                findings.push(format!(
                    "{}: invoked for new objects more than once ({what} is one)",
                    l.name
                ));
            }
            let Some(&(_, area)) = layout::TRIGGERS.iter().find(|(f, _)| *f == l.name) else {
                findings.push(format!(
                    "{}: {what} invokes it for new objects, but the code expects no trigger (tripline_core::layout::TRIGGERS)",
                    l.name
                ));
                continue;
            };
            let prefix_var = prefix_var(area);
            let want_prefix = layout.prefix(area);
            if *prefix != BTreeSet::from([want_prefix.to_owned()]) {
                findings.push(format!(
                    "{}: {what} filters on prefix {prefix:?} but the code takes keys under {prefix_var} = {want_prefix:?} (tripline_core::layout::Layout)",
                    l.name
                ));
            }
            if let Some(env) = l.env.get(prefix_var) {
                if env != prefix {
                    findings.push(format!(
                        "{}: {what} filters on prefix {prefix:?} but {} passes {prefix_var} = {env:?}",
                        l.name,
                        l.env_where(),
                    ));
                }
            }
            let accepted = area.suffixes();
            let fits = if accepted.is_empty() {
                suffix.is_empty() || *suffix == BTreeSet::from([String::new()])
            } else {
                !suffix.is_empty() && suffix.iter().all(|s| accepted.contains(&s.as_str()))
            };
            if !fits {
                findings.push(format!(
                    "{}: {what} filters on suffix {suffix:?} but the code accepts {accepted:?} (tripline_core::layout::Area::suffixes)",
                    l.name
                ));
            }
            // Each suffix the trigger can filter on is one the area's writer gives its keys,
            // under some codec (Terraform picks the suffix by `output_compression`).
            if area != Area::Raw {
                let writers: Vec<&str> = ACCESS
                    .iter()
                    .filter(|a| {
                        a.area == area && matches!(a.op, Op::Write | Op::Put | Op::PutIfAbsent)
                    })
                    .map(|a| a.function)
                    .collect();
                for s in suffix {
                    let written = CODECS.iter().any(|&codec| {
                        Layout::new(Prefixes::default(), codec).written_suffix(area)
                            == Some(s.as_str())
                    });
                    if writers.is_empty() || !written {
                        findings.push(format!(
                            "{}: {what} wants keys ending {s:?}, but {writers:?} write no {area:?} key with that suffix (tripline_core::layout::ACCESS, Layout::written_suffix)",
                            l.name
                        ));
                    }
                }
            }
        }
        for (function, area) in layout::TRIGGERS {
            if !seen.contains(*function) && lambdas.iter().any(|l| l.name == *function) {
                let wanted = if delivery == EVENTBRIDGE {
                    "an aws_cloudwatch_event_rule whose aws_cloudwatch_event_target is the function"
                } else {
                    "a lambda_function in aws_s3_bucket_notification"
                };
                findings.push(format!(
                    "{function}: nothing invokes it for new objects under {} (expected {wanted})",
                    prefix_var(*area)
                ));
            }
        }
        findings
    }

    /// Who may invoke each function: exactly the principal that delivers its trigger, from
    /// exactly that source (the bucket, or the function's rule).
    fn check_invoke_permissions(
        &self,
        ev: &Eval<'_>,
        lambdas: &[Lambda],
        triggers: &[Trigger],
    ) -> Result<Vec<String>> {
        let mut findings = Vec::new();
        let mut granted: BTreeSet<(String, String, String)> = BTreeSet::new();
        for p in self.instances(ev, "aws_lambda_permission")? {
            let (b, s) = (p.block.body(), &p.scope);
            let function = attr(b, "function_name")
                .map(|e| ev.render(e, s))
                .and_then(|r| base_reference(&r))
                .unwrap_or_default();
            let Some(l) = lambdas.iter().find(|l| l.reference == function) else {
                continue;
            };
            let pname = format!("{} ({})", p.reference, p.file.display());
            let render = |key: &str| attr(b, key).map(|e| ev.render(e, s));
            let principal = render("principal").unwrap_or_default();
            let Some(source) = render("source_arn") else {
                findings.push(format!(
                    "{}: {pname} lets {principal} invoke it from any source; name the one source_arn its trigger comes from",
                    l.name
                ));
                continue;
            };
            let ours = triggers.iter().any(|t| {
                t.function == l.name && t.principal == principal && t.source_arn == source
            });
            if ours {
                granted.insert((l.name.clone(), principal, source));
            } else {
                let wanted: Vec<String> = triggers
                    .iter()
                    .filter(|t| t.function == l.name)
                    .map(|t| format!("{} from {}", t.principal, t.source_arn))
                    .collect();
                let only = if wanted.is_empty() {
                    "nothing invokes it".to_owned()
                } else {
                    format!("only {} invokes it", wanted.join(" and "))
                };
                findings.push(format!(
                    "{}: {pname} lets {principal} invoke it from {source}, but {only} in this configuration",
                    l.name
                ));
            }
        }
        for t in triggers {
            let key = (
                t.function.clone(),
                t.principal.to_owned(),
                t.source_arn.clone(),
            );
            if !granted.contains(&key) {
                findings.push(format!(
                    "{}: no aws_lambda_permission lets {} invoke it from {}, so {} cannot",
                    t.function, t.principal, t.source_arn, t.what
                ));
            }
        }
        Ok(findings)
    }

    /// What EventBridge may do besides invoking: put an undeliverable event in the
    /// dead-letter queue of the function whose rule it comes from (the queue's policy), and
    /// encrypt it with the queue's key (the key's policy), from the module's rules only.
    /// Without EventBridge, nothing grants it anything.
    fn check_eventbridge_grants(&self, ev: &Eval<'_>, triggers: &[Trigger]) -> Result<Vec<String>> {
        let mut findings = Vec::new();
        let rules: BTreeMap<String, (&Trigger, &RuleTarget)> = triggers
            .iter()
            .filter_map(|t| t.rule.as_ref().map(|r| (t.source_arn.clone(), (t, r))))
            .collect();

        // Every statement anywhere that grants EventBridge something names our rules.
        for doc in self.policy_documents(ev)? {
            for s in doc
                .statements
                .iter()
                .filter(|s| s.grants_to(EVENTS_PRINCIPAL))
            {
                let sources = s.source_arns();
                if rules.is_empty() {
                    findings.push(format!(
                        "{} statement {:?} ({}) grants {EVENTS_PRINCIPAL} {:?}, but no EventBridge rule invokes a function in this configuration",
                        doc.name,
                        s.sid,
                        doc.file.display(),
                        s.actions
                    ));
                } else if sources.is_empty() || sources.iter().any(|a| !rules.contains_key(a)) {
                    findings.push(format!(
                        "{} statement {:?} ({}) grants {EVENTS_PRINCIPAL} {:?} for aws:SourceArn {sources:?}; only the rules {:?} need it",
                        doc.name,
                        s.sid,
                        doc.file.display(),
                        s.actions,
                        rules.keys().collect::<Vec<_>>()
                    ));
                }
            }
        }

        let queue_policies = self.instances(ev, "aws_sqs_queue_policy")?;
        for (rule_arn, (t, rt)) in &rules {
            let f = &t.function;
            let Some(dlq) = &rt.dead_letter_queue else {
                continue;
            };
            let Some(queue) = base_reference(dlq) else {
                continue;
            };
            // The queue's policy: EventBridge may send to it from this function's rule only.
            let mut allowed = false;
            for qp in queue_policies.iter().filter(|qp| {
                attr(qp.block.body(), "queue_url")
                    .map(|e| ev.render(e, &qp.scope))
                    .and_then(|r| base_reference(&r))
                    .as_deref()
                    == Some(queue.as_str())
            }) {
                let doc = self.policy_document(ev, qp)?;
                for s in doc
                    .statements
                    .iter()
                    .filter(|s| s.grants_to(EVENTS_PRINCIPAL))
                {
                    let sources = s.source_arns();
                    if sources != BTreeSet::from([rule_arn.clone()]) {
                        findings.push(format!(
                            "{f}: {} statement {:?} ({}) lets {EVENTS_PRINCIPAL} send to {queue} for aws:SourceArn {sources:?}; only {} puts events there",
                            doc.name,
                            s.sid,
                            doc.file.display(),
                            rt.rule
                        ));
                    } else if s.actions.iter().any(|a| a == "sqs:SendMessage")
                        && s.resources.iter().any(|r| r == dlq)
                    {
                        allowed = true;
                    }
                }
            }
            if !allowed {
                findings.push(format!(
                    "{f}: no aws_sqs_queue_policy on {queue} lets {EVENTS_PRINCIPAL} sqs:SendMessage to {dlq} for aws:SourceArn {rule_arn}, so the events {} cannot deliver are lost",
                    t.what
                ));
            }

            // The queue's key: EventBridge encrypts what it sends there.
            let key = self
                .instances(ev, "aws_sqs_queue")?
                .into_iter()
                .find(|q| q.reference == queue)
                .and_then(|q| {
                    attr(q.block.body(), "kms_master_key_id").map(|e| ev.render(e, &q.scope))
                })
                .and_then(|r| base_reference(&r));
            let Some(key) = key else {
                continue;
            };
            let Some(k) = self
                .instances(ev, "aws_kms_key")?
                .into_iter()
                .find(|k| k.reference == key)
            else {
                continue;
            };
            let doc = self.policy_document(ev, &k)?;
            let usable = doc.statements.iter().any(|s| {
                s.grants_to(EVENTS_PRINCIPAL)
                    && ["kms:GenerateDataKey", "kms:Decrypt"]
                        .iter()
                        .all(|a| s.actions.iter().any(|x| x == a))
                    && s.source_arns().contains(rule_arn)
            });
            if !usable {
                findings.push(format!(
                    "{f}: {} ({}) lets {EVENTS_PRINCIPAL} use the key of {queue} ({key}) for aws:SourceArn {rule_arn} in no statement with kms:GenerateDataKey and kms:Decrypt, so the events {} cannot deliver are lost",
                    doc.name,
                    doc.file.display(),
                    t.what
                ));
            }
        }
        Ok(findings)
    }

    fn bucket_block(&self, reference: &str) -> Result<(&Path, &hcl::Block)> {
        let (ty, name) = reference
            .split_once('.')
            .ok_or_else(|| format!("{reference} is not a resource reference"))?;
        self.module.block("resource", &[ty, name])
    }

    // -----------------------------------------------------------------------------------------
    // IAM

    fn policies(&self, ev: &Eval<'_>, l: &Lambda) -> Result<Vec<Policy>> {
        let mut out = Vec::new();
        for kind in [
            "aws_iam_role_policy_attachment",
            "aws_iam_policy_attachment",
        ] {
            for Instance {
                file: path,
                block,
                reference,
                scope,
                ..
            } in self.instances(ev, kind)?
            {
                let roles = attr(block.body(), "role")
                    .or_else(|| attr(block.body(), "roles"))
                    .map(|r| ev.render_list(r, &scope))
                    .unwrap_or_default();
                if roles
                    .iter()
                    .any(|r| base_reference(r).as_deref() == Some(&l.role))
                {
                    return Err(format!(
                        "{}: {reference} ({}) attaches a managed policy to {}, which this check cannot read; use an inline aws_iam_role_policy from an aws_iam_policy_document",
                        l.name,
                        path.display(),
                        l.role
                    ));
                }
            }
        }
        for Instance {
            file: path,
            block,
            reference,
            scope,
            ..
        } in self.instances(ev, "aws_iam_role_policy")?
        {
            let role = attr(block.body(), "role")
                .map(|r| ev.render(r, &scope))
                .and_then(|r| base_reference(&r));
            if role.as_deref() != Some(l.role.as_str()) {
                continue;
            }
            let inst = Instance {
                file: path,
                block,
                key: String::new(),
                reference,
                scope,
            };
            out.push(
                self.policy_document(ev, &inst)
                    .map_err(|e| format!("{}: {e}", l.name))?,
            );
        }
        if out.is_empty() {
            return Err(format!(
                "{}: no aws_iam_role_policy for its role {} in {MODULE_DIR}",
                l.name, l.role
            ));
        }
        Ok(out)
    }

    /// Each role's actions are exactly what the function's adapter calls need (plus
    /// [`INFRA_ACTIONS`]), each on the resources the code touches and no wider.
    pub fn check_iam(&self) -> Result<Vec<String>> {
        let ev = Eval::new(&self.module);
        let lambdas = self.lambdas(&ev)?;
        let (_, notification) = self
            .module
            .block("resource", &["aws_s3_bucket_notification"])?;
        let bucket = attr(notification.body(), "bucket")
            .map(|b| ev.render(b, &Scope::default()))
            .and_then(|b| base_reference(&b))
            .ok_or("aws_s3_bucket_notification without a bucket reference")?;
        let bucket_arn = format!("${{{bucket}.arn}}");
        let mut findings = Vec::new();

        for l in &lambdas {
            let f = l.name.as_str();
            let code_dir = "tripline_core::layout::ACCESS and tripline_aws::iam::FUNCTION_ADAPTERS";

            // What the code needs.
            let params: Vec<&String> = l
                .env
                .iter()
                .filter(|(k, _)| k.ends_with("_PARAM"))
                .flat_map(|(_, v)| v)
                .collect();
            let is_sm = |v: &str| {
                v.starts_with("secretsmanager:")
                    || v.contains(":secretsmanager:")
                    || v.contains("aws_secretsmanager_")
            };
            let any_sm = params.iter().any(|v| is_sm(v));
            let any_ssm = params.iter().any(|v| !is_sm(v));
            let mut required: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for (path, why) in function_adapters(f) {
                let Some(a) = iam::adapter(path) else {
                    findings.push(format!(
                        "{f}: {why} names the adapter {path}, which tripline_aws::iam::ADAPTERS does not list"
                    ));
                    continue;
                };
                for n in a.needs {
                    let needed = match n.when {
                        When::Always => true,
                        When::SsmReference => any_ssm,
                        When::SecretsManagerReference => any_sm,
                    };
                    if needed {
                        required
                            .entry(n.action)
                            .or_default()
                            .push(format!("{} for {why}", a.path));
                    }
                }
            }

            let policies = match self.policies(&ev, l) {
                Ok(p) => p,
                Err(e) => {
                    findings.push(e);
                    continue;
                }
            };
            for p in &policies {
                let pfile = p.file.display();
                let granted = p.granted();
                for (action, why) in &required {
                    if !granted.contains_key(action) {
                        findings.push(format!(
                            "{f}: the code needs {action} ({}) but {} in {pfile} does not grant it",
                            why.join("; "),
                            p.name
                        ));
                    }
                }
                for (action, grants) in &granted {
                    let sids: BTreeSet<&str> = grants.iter().map(|(s, _)| s.sid.as_str()).collect();
                    if action.contains('*') {
                        findings.push(format!(
                            "{f}: {} in {pfile} grants the wildcard action {action} (statements {sids:?})",
                            p.name
                        ));
                    } else if !required.contains_key(action) && !INFRA_ACTIONS.contains(action) {
                        findings.push(format!(
                            "{f}: {} in {pfile} grants {action} (statements {sids:?}) but no call in {code_dir} needs it",
                            p.name
                        ));
                    }
                }
                findings.extend(self.check_resources(&ev, l, p, &granted, &bucket_arn));
            }
        }
        Ok(findings)
    }

    fn check_resources(
        &self,
        ev: &Eval<'_>,
        l: &Lambda,
        p: &Policy,
        granted: &BTreeMap<&str, Vec<(&Statement, &str)>>,
        bucket_arn: &str,
    ) -> Vec<String> {
        let f = l.name.as_str();
        let pfile = p.file.display();
        let mut findings = Vec::new();
        let object_prefix = format!("{bucket_arn}/");

        let table = object_needs(f);
        // Object actions: on <bucket>/<prefix>* exactly where the code reads or writes.
        let object_level: BTreeSet<&str> = ADAPTERS
            .iter()
            .flat_map(|a| a.needs)
            .filter(|n| n.on == iam::On::Object)
            .map(|n| n.action)
            .collect();
        for (action, grants) in granted {
            if object_level.contains(action) {
                for (s, resource) in grants {
                    let Some(prefix) = resource
                        .strip_prefix(&object_prefix)
                        .and_then(|r| r.strip_suffix('*'))
                    else {
                        findings.push(format!(
                            "{f}: {} statement {:?} in {pfile} grants {action} on {resource}, not on a key prefix of the data bucket ({bucket_arn}/<prefix>*)",
                            p.name, s.sid
                        ));
                        continue;
                    };
                    let justified = table
                        .iter()
                        .any(|a| a.action == *action && prefix.starts_with(&a.prefix));
                    if !justified {
                        let wanted: Vec<String> = table
                            .iter()
                            .filter(|a| a.action == *action)
                            .map(|a| format!("{}*", a.prefix))
                            .collect();
                        findings.push(format!(
                            "{f}: {} statement {:?} in {pfile} grants {action} on {prefix}* but the code only needs it on {wanted:?}",
                            p.name, s.sid
                        ));
                    }
                }
            }
        }
        for a in &table {
            let want = &a.prefix;
            let covered = granted.get(a.action).is_some_and(|grants| {
                grants.iter().any(|(_, r)| {
                    r.strip_prefix(&object_prefix)
                        .and_then(|r| r.strip_suffix('*'))
                        .is_some_and(|p| want.starts_with(p))
                })
            });
            if !covered {
                findings.push(format!(
                    "{f}: the code needs {} on {want}* ({}) but {} in {pfile} does not grant it there",
                    a.action, a.why, p.name
                ));
            }
        }

        // Bucket-level actions: on the bucket ARN only.
        for (action, grants) in granted {
            if *action == iam::action::S3_LIST_BUCKET {
                for (s, resource) in grants {
                    if *resource != bucket_arn {
                        findings.push(format!(
                            "{f}: {} statement {:?} in {pfile} grants {action} on {resource}; expected the data bucket {bucket_arn}",
                            p.name, s.sid
                        ));
                    }
                }
            }
        }

        // SNS: the topic the function is given.
        if let Some(grants) = granted.get(iam::action::SNS_PUBLISH) {
            let topics = l.env.get(var::SNS_TOPIC_ARN).cloned().unwrap_or_default();
            for (s, resource) in grants {
                if !topics.contains(*resource) {
                    findings.push(format!(
                        "{f}: {} statement {:?} in {pfile} grants sns:Publish on {resource}, but {} passes {} = {topics:?}",
                        p.name,
                        s.sid,
                        l.env_where(),
                        var::SNS_TOPIC_ARN
                    ));
                }
            }
        }

        // SSM: the parameters the `_PARAM` variables name, not "*".
        if let Some(grants) = granted.get(iam::action::SSM_GET_PARAMETER) {
            let params: BTreeSet<String> = l
                .env
                .iter()
                .filter(|(k, _)| k.ends_with("_PARAM"))
                .flat_map(|(_, v)| v)
                .filter_map(|v| {
                    let start = v.find("aws_ssm_parameter.")?;
                    let rest = &v[start..];
                    let end = rest.find('[').unwrap_or(rest.len());
                    Some(rest[..end].to_owned())
                })
                .collect();
            for (s, resource) in grants {
                if !params.iter().any(|p| resource.contains(p.as_str())) {
                    findings.push(format!(
                        "{f}: {} statement {:?} in {pfile} grants ssm:GetParameter on {resource}; expected the parameters its _PARAM variables name ({params:?})",
                        p.name, s.sid
                    ));
                }
            }
        }

        // Infrastructure extras stay with this function's own log group, queue and key.
        let dlq = self.dead_letter_queue(ev, l);
        for (action, grants) in granted {
            for (s, resource) in grants {
                let own = format!("[{f:?}]");
                let ok = match action.split(':').next() {
                    Some("logs") => {
                        resource.starts_with("${aws_cloudwatch_log_group.")
                            && resource.contains(&own)
                    }
                    Some("sqs") => dlq.as_deref().is_some_and(|q| q == *resource),
                    Some("kms") => resource.starts_with("${aws_kms_key."),
                    Some("xray") => true,
                    _ => continue,
                };
                if !ok {
                    findings.push(format!(
                        "{f}: {} statement {:?} in {pfile} grants {action} on {resource}, not on {f}'s own {}",
                        p.name,
                        s.sid,
                        match action.split(':').next() {
                            Some("logs") => "log group".to_owned(),
                            Some("sqs") => format!("dead-letter queue ({dlq:?})"),
                            _ => "key".to_owned(),
                        }
                    ));
                }
            }
        }
        findings
    }

    /// The on-failure destination of the function's asynchronous invocations.
    fn dead_letter_queue(&self, ev: &Eval<'_>, l: &Lambda) -> Option<String> {
        let configs = self
            .instances(ev, "aws_lambda_function_event_invoke_config")
            .ok()?;
        configs
            .into_iter()
            .find_map(|Instance { block, scope, .. }| {
                let function = attr(block.body(), "function_name")
                    .map(|e| ev.render(e, &scope))
                    .and_then(|r| base_reference(&r))?;
                if function != l.reference {
                    return None;
                }
                let dest = nested(block.body(), "destination_config").next()?;
                let on_failure = nested(dest.body(), "on_failure").next()?;
                attr(on_failure.body(), "destination").map(|d| ev.render(d, &scope))
            })
    }

    // -----------------------------------------------------------------------------------------
    // The adapter table itself

    /// `tripline_aws::iam` lists every SDK operation `shared/aws/src` makes, in the file of
    /// the adapter that makes it, and the S3 store calls the adapters `iam::store_adapters`
    /// names.
    pub fn check_adapter_table(&self) -> Vec<String> {
        let mut findings = Vec::new();
        // The S3 store makes each operation through the adapters the IAM table says it does.
        let store: Vec<&Source> = self
            .adapters
            .iter()
            .filter(|s| s.path.file_name().is_some_and(|n| n == "store.rs"))
            .collect();
        for op in [Op::Read, Op::Exists, Op::Put, Op::PutIfAbsent, Op::Write] {
            for path in iam::store_adapters(op) {
                let Some(a) = iam::adapter(path) else {
                    findings.push(format!(
                        "tripline_aws::iam::store_adapters({op:?}) names {path}, which ADAPTERS does not list"
                    ));
                    continue;
                };
                if store.iter().all(|s| s.find(a.call).is_empty()) {
                    findings.push(format!(
                        "tripline_aws::iam::store_adapters({op:?}) names {path}, but shared/aws/src/store.rs never calls `{}`",
                        a.call
                    ));
                }
            }
        }
        for method in OTHER_SDK_METHODS {
            let hits = find_all(&self.adapters, &format!(".{method}("));
            if !hits.is_empty() {
                findings.push(format!(
                    "{} calls the SDK's {method}, which tripline_aws::iam::OPERATIONS does not list (add it with its IAM action, and to the adapter's operations)",
                    loc(&hits)
                ));
            }
        }
        for (op, method, _) in OPERATIONS {
            if find_all(&self.adapters, &format!(".{method}(")).is_empty() {
                findings.push(format!(
                    "tripline_aws::iam::OPERATIONS lists {op}, but shared/aws/src never calls .{method}()"
                ));
            }
        }
        for a in ADAPTERS {
            let module = a.path.split("::").next().unwrap_or_default();
            let file: Vec<&Source> = self
                .adapters
                .iter()
                .filter(|s| s.path.file_stem().is_some_and(|n| n == module))
                .collect();
            let Some(file) = file.first() else {
                findings.push(format!(
                    "tripline_aws::iam::ADAPTERS: {} names no file shared/aws/src/{module}.rs",
                    a.path
                ));
                continue;
            };
            let item = a.path.rsplit("::").next().unwrap_or_default();
            let defined = if item.starts_with(char::is_uppercase) {
                format!("struct {item}")
            } else {
                format!("fn {item}(")
            };
            if file.find(&defined).is_empty() {
                findings.push(format!(
                    "tripline_aws::iam::ADAPTERS: {} is not defined in {} (`{defined}`)",
                    a.path,
                    file.path.display()
                ));
            }
            for op in a.operations {
                let Some((_, method, _)) = OPERATIONS.iter().find(|(o, _, _)| o == op) else {
                    findings.push(format!(
                        "tripline_aws::iam::ADAPTERS: {} lists {op}, which OPERATIONS does not",
                        a.path
                    ));
                    continue;
                };
                if file.find(&format!(".{method}(")).is_empty() {
                    findings.push(format!(
                        "tripline_aws::iam::ADAPTERS: {} lists {op}, but {} never calls .{method}()",
                        a.path,
                        file.path.display()
                    ));
                }
            }
        }
        findings
    }
}

fn statements(
    ev: &Eval<'_>,
    doc: &hcl::Block,
    file: &Path,
    scope: &Scope,
) -> Result<Vec<Statement>> {
    for unsupported in [
        "source_policy_documents",
        "override_policy_documents",
        "source_json",
    ] {
        if attr(doc.body(), unsupported).is_some() {
            return Err(format!(
                "{}: {} uses {unsupported}, which this check cannot follow",
                file.display(),
                labels(doc).join(".")
            ));
        }
    }
    let mut out = Vec::new();
    for (i, (body, scope)) in ev
        .blocks(doc.body(), "statement", scope)?
        .into_iter()
        .enumerate()
    {
        let sid = attr(body, "sid")
            .map(|s| ev.render(s, &scope))
            .unwrap_or_else(|| format!("#{}", i + 1));
        for unsupported in ["not_actions", "not_resources", "not_principals"] {
            if attr(body, unsupported).is_some() || nested(body, unsupported).next().is_some() {
                return Err(format!(
                    "{}: statement {sid:?} uses {unsupported}, which this check cannot follow",
                    file.display()
                ));
            }
        }
        let effect = attr(body, "effect")
            .map(|e| ev.render(e, &scope))
            .unwrap_or_else(|| "Allow".into());
        if effect != "Allow" {
            continue;
        }
        let list = |body: &hcl::Body, key: &str, scope: &Scope| -> Vec<String> {
            attr(body, key)
                .map(|e| ev.render_list(e, scope))
                .unwrap_or_default()
        };
        let one = |body: &hcl::Body, key: &str, scope: &Scope| -> String {
            attr(body, key)
                .map(|e| ev.render(e, scope))
                .unwrap_or_default()
        };
        let principals = ev
            .blocks(body, "principals", &scope)?
            .into_iter()
            .map(|(p, ps)| (one(p, "type", &ps), list(p, "identifiers", &ps)))
            .collect();
        let conditions = ev
            .blocks(body, "condition", &scope)?
            .into_iter()
            .map(|(c, cs)| {
                (
                    one(c, "test", &cs),
                    one(c, "variable", &cs),
                    list(c, "values", &cs),
                )
            })
            .collect();
        out.push(Statement {
            sid,
            actions: list(body, "actions", &scope),
            resources: list(body, "resources", &scope),
            principals,
            conditions,
        });
    }
    Ok(out)
}

/// Fails with every finding, one per line.
pub fn assert_none(what: &str, findings: Vec<String>) {
    if !findings.is_empty() {
        panic!(
            "{what}: {} finding(s)\n  - {}\n",
            findings.len(),
            findings.join("\n  - ")
        );
    }
}
