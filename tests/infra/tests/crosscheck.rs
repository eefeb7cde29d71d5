//! The Terraform module in infra/modules/tripline against the functions' code. Each failure
//! lists every finding: function, variable or action, and file. See the crate docs for what
//! each check compares.

use tripline_infra_check::{assert_none, Deployment};

fn deployment() -> Deployment {
    Deployment::load().unwrap_or_else(|e| panic!("loading the module and the code: {e}"))
}

/// Every variable a function reads is set by its `aws_lambda_function` (in some
/// configuration), and nothing else is; secrets go in as `_PARAM`.
#[test]
fn function_environment_matches_what_the_code_reads() {
    let d = deployment();
    assert_none(
        "environment variables (tripline_aws::settings::*_ENV_VARS vs aws_lambda_function environment)",
        d.check_environment().unwrap(),
    );
}

/// The S3 notifications use the prefixes and suffixes the functions filter on, and the
/// prefixes Terraform passes are the code's defaults.
#[test]
fn s3_triggers_match_the_code_prefixes_and_suffixes() {
    let d = deployment();
    assert_none(
        "S3 triggers and prefixes (aws_s3_bucket_notification vs tripline_aws::settings::DEFAULT_*)",
        d.check_triggers().unwrap(),
    );
}

/// Each role grants exactly the actions its function's adapter calls need (plus the
/// infrastructure extras), each on the prefixes the function reads and writes.
#[test]
fn role_policies_match_the_calls_each_function_makes() {
    let d = deployment();
    assert_none(
        "IAM (aws_iam_policy_document vs tripline_aws::iam::ADAPTERS over functions/<f>/src)",
        d.check_iam().unwrap(),
    );
}

/// The adapter table lists every SDK operation shared/aws makes.
#[test]
fn adapter_table_matches_the_sdk_calls() {
    let d = deployment();
    assert_none(
        "tripline_aws::iam tables vs shared/aws/src",
        d.check_adapter_table(),
    );
}

/// `detect_config_toml` feeds TRIPLINE_CONFIG: a string defaulting to "" (which the code
/// treats as unset), and the complete example passes it through.
#[test]
fn detect_config_variable_is_declared_and_passed_through() {
    use tripline_infra_check::tf::{attr, Eval, Module, Scope};
    let root = tripline_infra_check::repo_root();
    let module = Module::load(&root.join("infra/modules/tripline"), &root).unwrap();
    let ev = Eval::new(&module);
    let (file, v) = module
        .block("variable", &["detect_config_toml"])
        .unwrap_or_else(|e| panic!("{e}"));
    let scope = Scope::default();
    let ty = attr(v.body(), "type").map(|t| ev.reference(t, &scope));
    assert_eq!(ty.as_deref(), Some("string"), "{}", file.display());
    let default = attr(v.body(), "default").map(|d| ev.render(d, &scope));
    assert_eq!(default.as_deref(), Some(""), "{}", file.display());

    let example = Module::load(&root.join("infra/examples/complete"), &root).unwrap();
    let ev = Eval::new(&example);
    let (file, m) = example.block("module", &["tripline"]).unwrap();
    let passed = attr(m.body(), "detect_config_toml").map(|e| ev.render(e, &scope));
    assert_eq!(
        passed.as_deref(),
        Some("${var.detect_config_toml}"),
        "{}: module \"tripline\" should pass detect_config_toml = var.detect_config_toml",
        file.display()
    );
    example
        .block("variable", &["detect_config_toml"])
        .unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------------------------
// The checks catch gaps: the real module with one thing broken must produce a finding that
// names the function, the variable or action, and the file.

/// The real module with `from` replaced by `to` in `file` (which must contain `from`).
fn broken(file: &str, from: &str, to: &str) -> Deployment {
    let hit = std::cell::Cell::new(false);
    let d = Deployment::load_edited(|path, text| {
        if path.ends_with(file) {
            assert!(text.contains(from), "{file} no longer contains {from:?}");
            hit.set(true);
            text.replacen(from, to, 1)
        } else {
            text
        }
    })
    .unwrap();
    assert!(hit.get(), "no file {file}");
    d
}

fn assert_finding(findings: Vec<String>, parts: &[&str]) {
    assert!(
        findings.iter().any(|f| parts.iter().all(|p| f.contains(p))),
        "expected a finding with {parts:?}, got {findings:#?}"
    );
}

#[test]
fn a_variable_the_code_reads_but_terraform_does_not_set_is_found() {
    let d = broken(
        "main.tf",
        "      TRIPLINE_CONFIG            = var.detect_config_toml\n",
        "",
    );
    assert_finding(
        d.check_environment().unwrap(),
        &[
            "detect",
            "TRIPLINE_CONFIG",
            "lambda.tf",
            "main.tf",
            "not set",
        ],
    );
}

#[test]
fn a_variable_terraform_sets_but_the_code_does_not_read_is_found() {
    let d = broken(
        "main.tf",
        "TRIPLINE_RAW_PREFIX        = local.raw_prefix",
        "TRIPLINE_RAW_PREFIX        = local.raw_prefix\n      TRIPLINE_RAW_BUCKET = \"x\"",
    );
    assert_finding(
        d.check_environment().unwrap(),
        &["parse", "TRIPLINE_RAW_BUCKET", "main.tf", "never reads"],
    );
}

#[test]
fn a_conditional_secret_passed_in_plain_text_is_found() {
    let d = broken(
        "main.tf",
        "env = \"TRIPLINE_SPLUNK_HEC_TOKEN_PARAM\"",
        "env = \"TRIPLINE_SPLUNK_HEC_TOKEN\"",
    );
    assert_finding(
        d.check_environment().unwrap(),
        &["notify", "TRIPLINE_SPLUNK_HEC_TOKEN is a secret", "main.tf"],
    );
}

#[test]
fn a_trigger_suffix_or_prefix_the_code_does_not_use_is_found() {
    let d = broken(
        "lambda.tf",
        "filter_suffix       = local.normalized_suffix",
        "filter_suffix       = \".gz\"",
    );
    assert_finding(
        d.check_triggers().unwrap(),
        &["detect", ".gz", "lambda.tf", "suffix"],
    );
    let d = broken(
        "main.tf",
        "alerts_prefix          = \"alerts/\"",
        "alerts_prefix          = \"alert/\"",
    );
    let findings = d.check_triggers().unwrap();
    assert_finding(
        findings.clone(),
        &["notify", "alert/", "lambda.tf", "TRIPLINE_ALERTS_PREFIX"],
    );
    assert_finding(
        findings,
        &["detect", "TRIPLINE_ALERTS_PREFIX", "main.tf", "default"],
    );
}

#[test]
fn an_action_no_call_needs_is_found() {
    let d = broken(
        "iam.tf",
        "actions = [\"s3:PutObject\", \"s3:AbortMultipartUpload\"]",
        "actions = [\"s3:PutObject\", \"s3:AbortMultipartUpload\", \"s3:DeleteObject\"]",
    );
    assert_finding(
        d.check_iam().unwrap(),
        &["parse", "s3:DeleteObject", "iam.tf", "no call"],
    );
}

#[test]
fn a_missing_action_is_found() {
    let d = broken(
        "iam.tf",
        "    sid       = \"PublishAlerts\"\n    effect    = \"Allow\"\n    actions   = [\"sns:Publish\"]",
        "    sid       = \"PublishAlerts\"\n    effect    = \"Allow\"\n    actions   = [\"sns:GetTopicAttributes\"]",
    );
    let findings = d.check_iam().unwrap();
    assert_finding(
        findings.clone(),
        &["notify", "sns:Publish", "sns::publish", "iam.tf"],
    );
    assert_finding(findings, &["notify", "sns:GetTopicAttributes", "no call"]);
}

#[test]
fn a_write_wider_than_the_code_needs_is_found() {
    let d = broken(
        "iam.tf",
        "resources = [\"${aws_s3_bucket.data.arn}/${local.claim_prefix}*\"]",
        "resources = [\"${aws_s3_bucket.data.arn}/${local.state_prefix}*\"]",
    );
    let findings = d.check_iam().unwrap();
    assert_finding(
        findings.clone(),
        &[
            "notify",
            "s3:PutObject on state/*",
            "state/claim/*",
            "iam.tf",
        ],
    );
    let d = broken(
        "iam.tf",
        "      \"${aws_s3_bucket.data.arn}/${local.quarantine_prefix}*\",",
        "      \"${aws_s3_bucket.data.arn}/${local.raw_prefix}*\",",
    );
    let findings = d.check_iam().unwrap();
    assert_finding(
        findings.clone(),
        &["parse", "s3:PutObject on raw/*", "iam.tf"],
    );
    assert_finding(
        findings,
        &["parse", "needs s3:PutObject on quarantine/*", "iam.tf"],
    );
}

#[test]
fn a_dead_letter_grant_to_another_queue_is_found() {
    let d = broken(
        "iam.tf",
        "resources = [aws_sqs_queue.dlq[\"notify\"].arn]",
        "resources = [aws_sqs_queue.dlq[\"parse\"].arn]",
    );
    assert_finding(
        d.check_iam().unwrap(),
        &["notify", "sqs:SendMessage", "dead-letter queue", "iam.tf"],
    );
}

#[test]
fn a_marker_grant_outside_the_layouts_marker_prefix_is_found() {
    let d = broken(
        "iam.tf",
        "resources = [\"${aws_s3_bucket.data.arn}/${local.delivery_prefix}*\"]",
        "resources = [\"${aws_s3_bucket.data.arn}/${local.raw_prefix}*\"]",
    );
    let findings = d.check_iam().unwrap();
    assert_finding(
        findings.clone(),
        &["notify", "s3:PutObject on raw/*", "iam.tf"],
    );
    assert_finding(
        findings,
        &[
            "notify",
            "needs s3:GetObject on state/delivery/*",
            "Exists Delivery",
            "iam.tf",
        ],
    );
}

#[test]
fn a_trigger_on_keys_no_function_writes_is_found() {
    // Notify accepts `.json`, and nothing writes `.json` under the normalized prefix.
    let d = broken(
        "lambda.tf",
        "filter_prefix       = local.normalized_prefix\n    filter_suffix       = local.normalized_suffix",
        "filter_prefix       = local.normalized_prefix\n    filter_suffix       = \".ndjson\"",
    );
    assert_finding(
        d.check_triggers().unwrap(),
        &["detect", "\".ndjson\"", "lambda.tf", "suffix"],
    );
    let d = broken(
        "lambda.tf",
        "filter_prefix       = local.alerts_prefix",
        "filter_prefix       = local.state_prefix",
    );
    assert_finding(
        d.check_triggers().unwrap(),
        &["notify", "state/", "lambda.tf", "TRIPLINE_ALERTS_PREFIX"],
    );
}
