data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  dns_suffix = data.aws_partition.current.dns_suffix

  tags = merge({ "tripline:module" = "tripline" }, var.tags)

  bucket_name = coalesce(var.bucket_name, "${var.name_prefix}-data-${local.account_id}-${local.region}")
  bucket_arn  = "arn:${local.partition}:s3:::${local.bucket_name}"

  # Key layout of the data bucket. The prefixes do not overlap, so S3 accepts one notification
  # per prefix for the same event type, and IAM grants are scoped to one prefix each.
  raw_prefix             = "raw/"
  normalized_prefix      = "normalized/"
  quarantine_prefix      = "quarantine/"
  alerts_prefix          = "alerts/"
  state_prefix           = "state/"
  claim_prefix           = "state/claim/"
  storm_prefix           = "state/storm/"
  site_prefix            = "config/"
  delivery_prefix        = "state/delivery/"
  firehose_errors_prefix = "firehose-errors/"
  # What parse appends to a raw key (TRIPLINE_OUTPUT_COMPRESSION), and so what triggers detect.
  normalized_suffix = var.output_compression == "gzip" ? ".ndjson.gz" : ".ndjson.zst"

  # What invokes each function (tripline_core::layout::TRIGGERS): an object created under the
  # prefix, with a key ending in the suffix its writer gives it (null: any key under the prefix).
  # Both ways of delivering S3 events (var.s3_event_delivery) are built from this one table, so
  # a function is invoked for the same objects whichever is chosen. In pipeline order, the order
  # of the bucket notification's lambda_function list.
  trigger_list = [
    { function = "parse", id = "raw-to-parse", prefix = local.raw_prefix, suffix = null },
    { function = "detect", id = "normalized-to-detect", prefix = local.normalized_prefix, suffix = local.normalized_suffix },
    { function = "notify", id = "alerts-to-notify", prefix = local.alerts_prefix, suffix = ".json" },
  ]
  triggers = { for t in local.trigger_list : t.function => t }
  # Exactly one of these two is non-empty: each trigger is delivered one way only, or a function
  # would run twice per object.
  eventbridge           = var.s3_event_delivery == "eventbridge"
  notification_triggers = local.eventbridge ? {} : local.triggers
  eventbridge_triggers  = local.eventbridge ? local.triggers : {}

  stream_name = "${var.name_prefix}-osquery"

  functions = {
    parse = {
      zip         = var.parse_zip_path
      memory      = var.parse_memory_mb
      timeout     = var.parse_timeout_seconds
      concurrency = var.parse_reserved_concurrency
      description = "tripline: decode raw osquery Firehose objects into normalized events"
    }
    detect = {
      zip         = var.detect_zip_path
      memory      = var.detect_memory_mb
      timeout     = var.detect_timeout_seconds
      concurrency = var.detect_reserved_concurrency
      description = "tripline: evaluate Sigma rules over normalized events and write alerts"
    }
    notify = {
      zip         = var.notify_zip_path
      memory      = var.notify_memory_mb
      timeout     = var.notify_timeout_seconds
      concurrency = var.notify_reserved_concurrency
      description = "tripline: deliver alerts to SNS, Slack, webhook, PagerDuty and Splunk HEC"
    }
  }

  function_names = { for f in keys(local.functions) : f => "${var.name_prefix}-${f}" }
  zip_paths = {
    for f, cfg in local.functions :
    f => startswith(cfg.zip, "/") ? cfg.zip : "${var.artifacts_root}/${cfg.zip}"
  }

  # SSM parameters (SecureString) holding destination secrets, only for enabled destinations.
  # The map key is also the suffix of the parameter name.
  ssm_parameters = merge(
    var.enable_slack ? {
      "slack/webhook-url" = { env = "TRIPLINE_SLACK_WEBHOOK_URL_PARAM", description = "Slack incoming-webhook URL" }
    } : {},
    var.enable_webhook ? {
      "webhook/url"    = { env = "TRIPLINE_WEBHOOK_URL_PARAM", description = "Generic webhook URL" }
      "webhook/secret" = { env = "TRIPLINE_WEBHOOK_SECRET_PARAM", description = "HMAC-SHA256 key that signs webhook bodies" }
    } : {},
    var.enable_pagerduty ? {
      "pagerduty/routing-key" = { env = "TRIPLINE_PAGERDUTY_ROUTING_KEY_PARAM", description = "PagerDuty Events v2 routing key" }
    } : {},
    var.enable_splunk_hec ? {
      "splunk/hec-url"   = { env = "TRIPLINE_SPLUNK_HEC_URL_PARAM", description = "Splunk HTTP Event Collector URL" }
      "splunk/hec-token" = { env = "TRIPLINE_SPLUNK_HEC_TOKEN_PARAM", description = "Splunk HTTP Event Collector token" }
    } : {},
  )

  environment = {
    parse = {
      RUST_LOG                   = var.rust_log
      TRIPLINE_BUCKET            = local.bucket_name
      TRIPLINE_RAW_PREFIX        = local.raw_prefix
      TRIPLINE_NORMALIZED_PREFIX = local.normalized_prefix
      TRIPLINE_QUARANTINE_PREFIX = local.quarantine_prefix
      # The detect trigger's filter_suffix (local.normalized_suffix) follows this.
      TRIPLINE_OUTPUT_COMPRESSION = var.output_compression
    }
    detect = {
      RUST_LOG                   = var.rust_log
      TRIPLINE_BUCKET            = local.bucket_name
      TRIPLINE_NORMALIZED_PREFIX = local.normalized_prefix
      TRIPLINE_ALERTS_PREFIX     = local.alerts_prefix
      TRIPLINE_SITE_PREFIX       = local.site_prefix
      TRIPLINE_CONFIG            = local.functions_config
    }
    notify = merge(
      {
        RUST_LOG               = var.rust_log
        TRIPLINE_BUCKET        = local.bucket_name
        TRIPLINE_ALERTS_PREFIX = local.alerts_prefix
        TRIPLINE_STATE_PREFIX  = local.state_prefix
        TRIPLINE_SITE_PREFIX   = local.site_prefix
        TRIPLINE_SNS_TOPIC_ARN = aws_sns_topic.alerts.arn
        TRIPLINE_CONFIG        = local.functions_config
      },
      { for k, p in local.ssm_parameters : p.env => aws_ssm_parameter.destination[k].name },
      var.enable_pagerduty ? { TRIPLINE_PAGERDUTY_URL = var.pagerduty_events_url } : {},
    )
  }
}
