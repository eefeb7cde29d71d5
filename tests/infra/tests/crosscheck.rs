//! The Terraform module in infra/modules/tripline against the functions' code. Each failure
//! lists every finding: function, variable or action, and file. See the crate docs for what
//! each check compares.

use tripline_core::layout::{self, Layout};
use tripline_infra_check::{
    assert_none, Deployment, DELIVERIES, EVENTBRIDGE, EVENTS_PRINCIPAL, NOTIFICATION, S3_PRINCIPAL,
};

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

/// Under every value of `s3_event_delivery`, the triggers use the prefixes and suffixes the
/// functions filter on, only the delivering service may invoke each function, and the
/// prefixes Terraform passes are the code's defaults.
#[test]
fn s3_triggers_match_the_code_prefixes_and_suffixes() {
    let d = deployment();
    assert_none(
        "S3 triggers and prefixes (aws_s3_bucket_notification and EventBridge rules vs tripline_core::layout, tripline_aws::settings::DEFAULT_*)",
        d.check_triggers().unwrap(),
    );
}

/// With `s3_event_delivery = "eventbridge"`: the bucket sends its events to EventBridge and
/// notifies nothing directly; each function is the target of one rule matching its area's
/// keys, with a retry policy and its own dead-letter queue; EventBridge may invoke it, send
/// to that queue and use its key from that rule only.
#[test]
fn eventbridge_rules_match_the_code_and_only_they_may_invoke() {
    let d = deployment();
    assert_none(
        "s3_event_delivery = \"eventbridge\" (EventBridge rules, targets, permissions, dead-letter queue and key policies)",
        d.check_delivery(EVENTBRIDGE).unwrap(),
    );
}

/// Each configuration invokes every function of `layout::TRIGGERS` exactly once, for keys
/// under its area's prefix: the bucket notification by default, one EventBridge rule each with
/// `eventbridge`. (The checks above would also fail without them; this says it outright.)
#[test]
fn every_trigger_is_delivered_once_under_each_configuration() {
    let d = deployment();
    let layout = Layout::default();
    for delivery in DELIVERIES {
        let (triggers, _) = d.triggers(delivery).unwrap();
        for (function, area) in layout::TRIGGERS {
            let mine: Vec<_> = triggers
                .iter()
                .filter(|t| t.function == *function)
                .collect();
            assert_eq!(mine.len(), 1, "{delivery}: {function}: {mine:#?}");
            let t = mine[0];
            assert_eq!(
                t.prefix,
                [layout.prefix(*area).to_owned()].into(),
                "{delivery}: {t:#?}"
            );
            if *delivery == EVENTBRIDGE {
                assert_eq!(t.principal, EVENTS_PRINCIPAL, "{t:#?}");
                let rule = t.rule.as_ref().expect("a rule");
                assert_eq!(t.source_arn, format!("${{{}.arn}}", rule.rule), "{t:#?}");
            } else {
                assert_eq!(*delivery, NOTIFICATION);
                assert_eq!(t.principal, S3_PRINCIPAL, "{t:#?}");
                assert!(t.rule.is_none(), "{t:#?}");
            }
        }
        assert_eq!(
            triggers.len(),
            layout::TRIGGERS.len(),
            "{delivery}: {triggers:#?}"
        );
    }
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
        "      TRIPLINE_CONFIG            = local.functions_config\n",
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
        "main.tf",
        "suffix = local.normalized_suffix }",
        "suffix = \".gz\" }",
    );
    let findings = d.check_triggers().unwrap();
    assert_finding(
        findings.clone(),
        &["\"notification\"", "detect", ".gz", "lambda.tf", "suffix"],
    );
    assert_finding(
        findings,
        &[
            "\"eventbridge\"",
            "detect",
            ".gz",
            "eventbridge.tf",
            "suffix",
        ],
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
    // Nothing writes `.ndjson` keys under the normalized prefix (parse writes `.ndjson.zst`
    // or `.ndjson.gz`).
    let d = broken(
        "main.tf",
        "suffix = local.normalized_suffix }",
        "suffix = \".ndjson\" }",
    );
    assert_finding(
        d.check_triggers().unwrap(),
        &["detect", "\".ndjson\"", "lambda.tf", "suffix"],
    );
    let d = broken(
        "main.tf",
        "prefix = local.alerts_prefix,",
        "prefix = local.state_prefix,",
    );
    let findings = d.check_triggers().unwrap();
    assert_finding(
        findings.clone(),
        &["notify", "state/", "lambda.tf", "TRIPLINE_ALERTS_PREFIX"],
    );
    assert_finding(
        findings,
        &[
            "notify",
            "state/",
            "eventbridge.tf",
            "TRIPLINE_ALERTS_PREFIX",
        ],
    );
}

// The two ways of delivering S3 events, broken one thing at a time.

#[test]
fn the_default_delivery_and_the_allowed_values_are_checked() {
    let d = broken(
        "variables.tf",
        "  default     = \"notification\"",
        "  default     = \"eventbridge\"",
    );
    assert_finding(
        d.check_triggers().unwrap(),
        &["variables.tf", "s3_event_delivery", "defaults to"],
    );
    let d = broken(
        "variables.tf",
        "contains([\"notification\", \"eventbridge\"], var.s3_event_delivery)",
        "contains([\"notification\", \"eventbridge\", \"sqs\"], var.s3_event_delivery)",
    );
    assert_finding(
        d.check_triggers().unwrap(),
        &["variables.tf", "s3_event_delivery", "sqs"],
    );
}

#[test]
fn a_bucket_that_does_not_send_to_eventbridge_when_the_rules_expect_it_is_found() {
    let d = broken(
        "lambda.tf",
        "eventbridge = local.eventbridge",
        "eventbridge = false",
    );
    assert_finding(
        d.check_triggers().unwrap(),
        &["\"eventbridge\"", "lambda.tf", "eventbridge = false"],
    );
    let d = broken(
        "lambda.tf",
        "eventbridge = local.eventbridge",
        "eventbridge = true",
    );
    assert_finding(
        d.check_triggers().unwrap(),
        &["\"notification\"", "lambda.tf", "eventbridge = true"],
    );
}

#[test]
fn a_function_invoked_both_ways_is_found() {
    // The notification keeps invoking the functions after the switch to EventBridge.
    let d = broken(
        "lambda.tf",
        "for_each = local.eventbridge ? [] : local.trigger_list",
        "for_each = local.trigger_list",
    );
    let findings = d.check_delivery(EVENTBRIDGE).unwrap();
    assert_finding(
        findings.clone(),
        &[
            "parse",
            "notification \"raw-to-parse\"",
            "lambda.tf",
            "invokes it directly",
        ],
    );
    assert_finding(findings, &["parse", "more than once"]);
    // The rules outlive the switch back to the notification.
    let d = broken(
        "eventbridge.tf",
        "resource \"aws_cloudwatch_event_target\" \"s3\" {\n  for_each = local.eventbridge_triggers",
        "resource \"aws_cloudwatch_event_target\" \"s3\" {\n  for_each = local.triggers",
    );
    assert_finding(
        d.check_delivery(NOTIFICATION).unwrap(),
        &[
            "detect",
            "aws_cloudwatch_event_target.s3[\"detect\"]",
            "eventbridge.tf",
            "invokes it from EventBridge",
        ],
    );
}

#[test]
fn a_rule_pattern_that_matches_other_keys_or_events_is_found() {
    let d = broken(
        "eventbridge.tf",
        "? { prefix = each.value.prefix }",
        "? { prefix = \"raw\" }",
    );
    assert_finding(
        d.check_delivery(EVENTBRIDGE).unwrap(),
        &[
            "parse",
            "aws_cloudwatch_event_rule.s3[\"parse\"]",
            "eventbridge.tf",
            "prefix {\"raw\"}",
            "TRIPLINE_RAW_PREFIX",
        ],
    );
    let d = broken(
        "eventbridge.tf",
        ": { wildcard = \"${each.value.prefix}*${each.value.suffix}\" }",
        ": { suffix = each.value.suffix }",
    );
    assert_finding(
        d.check_delivery(EVENTBRIDGE).unwrap(),
        &[
            "notify",
            "aws_cloudwatch_event_rule.s3[\"notify\"]",
            "\"suffix\" \".json\"",
            "expected a prefix",
        ],
    );
    let d = broken(
        "eventbridge.tf",
        "\"detail-type\" = [\"Object Created\"]",
        "\"detail-type\" = [\"Object Created\", \"Object Deleted\"]",
    );
    assert_finding(
        d.check_delivery(EVENTBRIDGE).unwrap(),
        &[
            "detect",
            "eventbridge.tf",
            "Object Deleted",
            "Object Created only",
        ],
    );
    let d = broken(
        "eventbridge.tf",
        "bucket = { name = [aws_s3_bucket.data.id] }",
        "bucket = { name = [var.bucket_name] }",
    );
    assert_finding(
        d.check_delivery(EVENTBRIDGE).unwrap(),
        &[
            "parse",
            "eventbridge.tf",
            "var.bucket_name",
            "aws_s3_bucket.data",
        ],
    );
}

#[test]
fn a_rule_that_invokes_the_wrong_function_is_found() {
    let d = broken(
        "eventbridge.tf",
        "arn       = aws_lambda_function.function[each.key].arn",
        "arn       = aws_lambda_function.function[\"parse\"].arn",
    );
    let findings = d.check_delivery(EVENTBRIDGE).unwrap();
    assert_finding(findings.clone(), &["parse", "more than once"]);
    assert_finding(
        findings.clone(),
        &["notify", "nothing invokes it", "TRIPLINE_ALERTS_PREFIX"],
    );
    // detect's permission is for a rule that no longer invokes it.
    assert_finding(
        findings,
        &[
            "detect",
            "aws_lambda_permission.eventbridge[\"detect\"]",
            "eventbridge.tf",
            "events.amazonaws.com",
        ],
    );
}

#[test]
fn an_invoke_permission_wider_than_the_trigger_is_found() {
    // EventBridge may invoke detect from parse's rule (and not from detect's).
    let d = broken(
        "eventbridge.tf",
        "source_arn    = aws_cloudwatch_event_rule.s3[each.key].arn",
        "source_arn    = aws_cloudwatch_event_rule.s3[\"parse\"].arn",
    );
    let findings = d.check_delivery(EVENTBRIDGE).unwrap();
    assert_finding(
        findings.clone(),
        &[
            "detect",
            "events.amazonaws.com",
            "aws_cloudwatch_event_rule.s3[\"parse\"]",
            "only",
        ],
    );
    assert_finding(
        findings,
        &[
            "detect",
            "no aws_lambda_permission",
            "aws_cloudwatch_event_rule.s3[\"detect\"]",
        ],
    );
    // From any rule at all.
    let d = broken(
        "eventbridge.tf",
        "  source_arn    = aws_cloudwatch_event_rule.s3[each.key].arn\n",
        "",
    );
    assert_finding(
        d.check_delivery(EVENTBRIDGE).unwrap(),
        &["notify", "eventbridge.tf", "from any source"],
    );
    // S3 keeps its permission after the switch to EventBridge.
    let d = broken(
        "lambda.tf",
        "resource \"aws_lambda_permission\" \"s3\" {\n  for_each = local.notification_triggers",
        "resource \"aws_lambda_permission\" \"s3\" {\n  for_each = local.triggers",
    );
    assert_finding(
        d.check_delivery(EVENTBRIDGE).unwrap(),
        &[
            "parse",
            "aws_lambda_permission.s3[\"parse\"]",
            "lambda.tf",
            "s3.amazonaws.com",
        ],
    );
}

#[test]
fn a_target_without_retries_or_its_functions_dead_letter_queue_is_found() {
    let d = broken(
        "eventbridge.tf",
        "    maximum_retry_attempts       = 185\n",
        "",
    );
    assert_finding(
        d.check_delivery(EVENTBRIDGE).unwrap(),
        &[
            "parse",
            "aws_cloudwatch_event_target.s3[\"parse\"]",
            "eventbridge.tf",
            "retry_policy",
        ],
    );
    let d = broken(
        "eventbridge.tf",
        "    arn = aws_sqs_queue.dlq[each.key].arn",
        "    arn = aws_sqs_queue.dlq[\"notify\"].arn",
    );
    assert_finding(
        d.check_delivery(EVENTBRIDGE).unwrap(),
        &[
            "detect",
            "aws_sqs_queue.dlq[\"notify\"]",
            "not to detect's dead-letter queue",
        ],
    );
    let d = broken(
        "eventbridge.tf",
        "  dead_letter_config {\n    arn = aws_sqs_queue.dlq[each.key].arn\n  }\n",
        "",
    );
    assert_finding(
        d.check_delivery(EVENTBRIDGE).unwrap(),
        &["notify", "eventbridge.tf", "no dead_letter_config"],
    );
}

#[test]
fn a_dead_letter_queue_eventbridge_cannot_use_or_any_rule_can_is_found() {
    // The queue policy without its aws:SourceArn condition: any rule could send.
    let d = broken(
        "eventbridge.tf",
        "    condition {\n      test     = \"ArnEquals\"\n      variable = \"aws:SourceArn\"\n      values   = [aws_cloudwatch_event_rule.s3[each.key].arn]\n    }\n",
        "",
    );
    assert_finding(
        d.check_delivery(EVENTBRIDGE).unwrap(),
        &[
            "parse",
            "data.aws_iam_policy_document.dlq[\"parse\"]",
            "eventbridge.tf",
            "aws:SourceArn {}",
        ],
    );
    // No queue policy at all.
    let d = broken(
        "eventbridge.tf",
        "resource \"aws_sqs_queue_policy\" \"dlq\" {\n  for_each = local.eventbridge_triggers",
        "resource \"aws_sqs_queue_policy\" \"dlq\" {\n  for_each = {}",
    );
    assert_finding(
        d.check_delivery(EVENTBRIDGE).unwrap(),
        &[
            "notify",
            "no aws_sqs_queue_policy",
            "aws_sqs_queue.dlq[\"notify\"]",
            "lost",
        ],
    );
    // The key does not let EventBridge encrypt what it sends there.
    let d = broken(
        "kms.tf",
        "for_each = local.eventbridge ? [1] : []",
        "for_each = []",
    );
    assert_finding(
        d.check_delivery(EVENTBRIDGE).unwrap(),
        &[
            "detect",
            "data.aws_iam_policy_document.kms",
            "kms.tf",
            "kms:GenerateDataKey",
            "lost",
        ],
    );
    // The key's grant outlives the switch back to the notification.
    let d = broken(
        "kms.tf",
        "for_each = local.eventbridge ? [1] : []",
        "for_each = [1]",
    );
    assert_finding(
        d.check_delivery(NOTIFICATION).unwrap(),
        &[
            "data.aws_iam_policy_document.kms",
            "EventBridgeDeadLettersUseKey",
            "kms.tf",
            "no EventBridge rule",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Athena (with enable_glue_catalog).

/// The Athena workgroup enforces its settings (a client cannot turn encryption or the limit
/// off), encrypts results with the module's key under a prefix of the data bucket that no
/// function's area overlaps and a lifecycle rule expires, and caps the bytes a query scans by
/// its variable. Each saved query reads athena/<name>.sql, which exists and names its tables
/// through the template's database; the Glue tables cover the normalized, alerts and
/// quarantine areas.
#[test]
fn athena_workgroup_is_encrypted_and_bounded_and_each_saved_query_has_its_sql() {
    use tripline_infra_check::tf::{attr, nested, Eval, Module, Scope};
    let root = tripline_infra_check::repo_root();
    let dir = root.join("infra/modules/tripline");
    let module = Module::load(&dir, &root).unwrap();
    let ev = Eval::new(&module);
    let scope = Scope::default();
    let render = |body: &hcl::Body, key: &str| {
        attr(body, key)
            .map(|e| ev.render(e, &scope))
            .unwrap_or_else(|| panic!("no {key}"))
    };
    let one = |body: &hcl::Body, ident: &str| -> hcl::Body {
        let blocks: Vec<_> = nested(body, ident).collect();
        assert_eq!(blocks.len(), 1, "one {ident} block");
        blocks[0].body().clone()
    };

    let (file, wg) = module
        .block("resource", &["aws_athena_workgroup", "this"])
        .unwrap();
    let count = ev.reference(attr(wg.body(), "count").unwrap(), &scope);
    assert!(count.contains("var.enable_glue_catalog"), "{count}");
    let config = one(wg.body(), "configuration");
    assert_eq!(render(&config, "enforce_workgroup_configuration"), "true");
    assert_eq!(
        render(&config, "bytes_scanned_cutoff_per_query"),
        "${var.athena_bytes_scanned_cutoff_per_query}"
    );
    let results = one(&config, "result_configuration");
    let encryption = one(&results, "encryption_configuration");
    assert_eq!(render(&encryption, "encryption_option"), "SSE_KMS");
    assert_eq!(
        render(&encryption, "kms_key_arn"),
        "${aws_kms_key.this.arn}",
        "{}: results encrypted with the module's key",
        file.display()
    );
    let (expr, _) = module.local("athena_results_prefix").unwrap();
    let prefix = ev.string(expr, &scope).unwrap();
    let location = render(&results, "output_location");
    let (_, bucket) = module
        .block("resource", &["aws_s3_bucket", "data"])
        .unwrap();
    let bucket = render(bucket.body(), "bucket");
    assert_eq!(
        location,
        format!("s3://{bucket}/{prefix}"),
        "the data bucket"
    );
    for area in [
        "raw_prefix",
        "normalized_prefix",
        "quarantine_prefix",
        "alerts_prefix",
        "state_prefix",
        "site_prefix",
        "firehose_errors_prefix",
    ] {
        let (expr, _) = module.local(area).unwrap();
        let other = ev.string(expr, &scope).unwrap();
        assert!(
            !other.starts_with(&prefix) && !prefix.starts_with(&other),
            "{prefix} overlaps {area} = {other}"
        );
    }
    // A lifecycle rule expires the results.
    let (_, lifecycle) = module
        .block(
            "resource",
            &["aws_s3_bucket_lifecycle_configuration", "data"],
        )
        .unwrap();
    let expires = ev
        .blocks(lifecycle.body(), "rule", &scope)
        .unwrap()
        .into_iter()
        .any(|(rule, inner)| {
            let filter: Vec<_> = nested(rule, "filter").collect();
            let days: Vec<_> = nested(rule, "expiration").collect();
            filter.len() == 1
                && days.len() == 1
                && attr(filter[0].body(), "prefix").map(|p| ev.render(p, &inner))
                    == Some(prefix.clone())
                && attr(days[0].body(), "days").map(|d| ev.render(d, &inner))
                    == Some("${var.athena_results_retention_days}".into())
        });
    assert!(expires, "no lifecycle rule expires {prefix}");

    // Saved queries: one SQL file each, in the workgroup, on the Glue database.
    let (_, query) = module
        .block("resource", &["aws_athena_named_query", "panel"])
        .unwrap();
    let names: Vec<String> = ev
        .entries(attr(query.body(), "for_each").unwrap(), &scope)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(names.len() >= 6, "{names:?}");
    for name in &names {
        let sql = std::fs::read_to_string(dir.join(format!("athena/{name}.sql")))
            .unwrap_or_else(|e| panic!("athena/{name}.sql: {e}"));
        assert!(
            sql.contains("\"${database}\"."),
            "athena/{name}.sql: tables in ${{database}}"
        );
    }
    let body = ev.reference(attr(query.body(), "query").unwrap(), &scope);
    assert!(
        body.contains("templatefile") && body.contains("athena/${each.key}.sql"),
        "{body}"
    );
    assert_eq!(
        ev.reference(attr(query.body(), "workgroup").unwrap(), &scope),
        "aws_athena_workgroup.this[\"0\"].id"
    );

    // The Glue tables read the three areas the parse and detect functions write.
    let mut locations: Vec<String> = module
        .blocks("resource", &["aws_glue_catalog_table"])
        .into_iter()
        .map(|(_, table)| render(&one(table.body(), "storage_descriptor"), "location"))
        .collect();
    locations.sort();
    let areas: Vec<String> = locations
        .iter()
        .map(|l| l.rsplit_terminator('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        areas,
        ["alerts", "normalized", "quarantine"],
        "{locations:?}"
    );
}
