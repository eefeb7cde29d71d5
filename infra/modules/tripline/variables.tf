# ---------------------------------------------------------------------------------------------
# Naming and tags
# ---------------------------------------------------------------------------------------------

variable "name_prefix" {
  description = "Prefix for every resource name (stream, functions, roles, queues, topics, log groups) and the SSM parameter path /<name_prefix>/. Lowercase letters, digits and hyphens."
  type        = string
  default     = "tripline"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-24 characters of lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "tags" {
  description = "Tags added to every taggable resource."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Data bucket
# ---------------------------------------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the data bucket. Null derives <name_prefix>-data-<account id>-<region>."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)."
  }
}

variable "bucket_force_destroy" {
  description = "Allow `terraform destroy` to delete the data bucket with every object (and version) in it. Keep false outside of test deployments."
  type        = bool
  default     = false
}

variable "access_log_bucket" {
  description = "Existing bucket that receives S3 server access logs for the data bucket (it must allow the S3 logging service and use SSE-S3). Null disables access logging."
  type        = string
  default     = null
}

variable "access_log_prefix" {
  description = "Key prefix for the access logs in access_log_bucket."
  type        = string
  default     = "s3-access/tripline/"
}

variable "raw_retention_days" {
  description = "Days raw Firehose objects (raw/) and Firehose error output (firehose-errors/) are kept."
  type        = number
  default     = 30

  validation {
    condition     = var.raw_retention_days >= 1
    error_message = "raw_retention_days must be at least 1."
  }
}

variable "normalized_retention_days" {
  description = "Days normalized events (normalized/) are kept."
  type        = number
  default     = 90

  validation {
    condition     = var.normalized_retention_days >= 1
    error_message = "normalized_retention_days must be at least 1."
  }
}

variable "quarantine_retention_days" {
  description = "Days quarantined records (quarantine/) are kept."
  type        = number
  default     = 90

  validation {
    condition     = var.quarantine_retention_days >= 1
    error_message = "quarantine_retention_days must be at least 1."
  }
}

variable "alerts_retention_days" {
  description = "Days alerts (alerts/) are kept. An alert is its own dedup marker: keep it longer than the longest dedup window of your rules."
  type        = number
  default     = 365

  validation {
    condition     = var.alerts_retention_days >= 1
    error_message = "alerts_retention_days must be at least 1."
  }
}

variable "state_retention_days" {
  description = "Days notify's claims and delivery markers (state/) are kept. Must exceed how long after an alert you would replay its object, or a replay sends it again."
  type        = number
  default     = 30

  validation {
    condition     = var.state_retention_days >= 2
    error_message = "state_retention_days must be at least 2."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days noncurrent object versions (overwritten, deleted or expired objects) are kept before S3 removes them for good."
  type        = number
  default     = 7

  validation {
    condition     = var.noncurrent_version_retention_days >= 1
    error_message = "noncurrent_version_retention_days must be at least 1."
  }
}

# ---------------------------------------------------------------------------------------------
# KMS
# ---------------------------------------------------------------------------------------------

variable "kms_deletion_window_days" {
  description = "Waiting period before the customer-managed key is deleted after `terraform destroy` (7-30)."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "kms_admin_role_arns" {
  description = "Extra IAM principal ARNs allowed to administer the key through the key policy. The account root is always allowed (it delegates to IAM policies), so this is usually empty."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------------------------------------
# Firehose
# ---------------------------------------------------------------------------------------------

variable "firehose_buffering_size_mib" {
  description = "Firehose buffer size in MiB before an object is written to raw/ (1-128)."
  type        = number
  default     = 5

  validation {
    condition     = var.firehose_buffering_size_mib >= 1 && var.firehose_buffering_size_mib <= 128
    error_message = "firehose_buffering_size_mib must be between 1 and 128."
  }
}

variable "firehose_buffering_interval_seconds" {
  description = "Firehose buffer interval in seconds before an object is written to raw/ (0-900). Lower values mean faster alerts and more, smaller objects."
  type        = number
  default     = 300

  validation {
    condition     = var.firehose_buffering_interval_seconds >= 0 && var.firehose_buffering_interval_seconds <= 900
    error_message = "firehose_buffering_interval_seconds must be between 0 and 900."
  }
}

variable "firehose_freshness_alarm_seconds" {
  description = "Alarm when the oldest record in Firehose is older than this (DeliveryToS3.DataFreshness). Keep it well above the buffer interval."
  type        = number
  default     = 900
}

# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------

variable "artifacts_root" {
  description = "Directory the relative *_zip_path values are resolved against: the repository root. The example passes abspath(\"$${path.root}/../../..\")."
  type        = string
  default     = "."
}

variable "parse_zip_path" {
  description = "Deployment package of the parse function, as written by `cargo lambda build --release --arm64 --output-format zip` (relative to artifacts_root unless absolute)."
  type        = string
  default     = "target/lambda/tripline-parse/bootstrap.zip"
}

variable "detect_zip_path" {
  description = "Deployment package of the detect function (relative to artifacts_root unless absolute)."
  type        = string
  default     = "target/lambda/tripline-detect/bootstrap.zip"
}

variable "notify_zip_path" {
  description = "Deployment package of the notify function (relative to artifacts_root unless absolute)."
  type        = string
  default     = "target/lambda/tripline-notify/bootstrap.zip"
}

variable "lambda_architectures" {
  description = "Instruction set of the functions: [\"arm64\"] (what `cargo lambda build --arm64` produces) or [\"x86_64\"]."
  type        = list(string)
  default     = ["arm64"]

  validation {
    condition     = length(var.lambda_architectures) == 1 && contains(["arm64", "x86_64"], var.lambda_architectures[0])
    error_message = "lambda_architectures must be exactly one of [\"arm64\"] or [\"x86_64\"]."
  }
}

variable "parse_memory_mb" {
  description = "Memory of the parse function in MB (CPU scales with it)."
  type        = number
  default     = 1024

  validation {
    condition     = var.parse_memory_mb >= 128 && var.parse_memory_mb <= 10240
    error_message = "parse_memory_mb must be between 128 and 10240."
  }
}

variable "parse_timeout_seconds" {
  description = "Timeout of the parse function in seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.parse_timeout_seconds >= 1 && var.parse_timeout_seconds <= 900
    error_message = "parse_timeout_seconds must be between 1 and 900."
  }
}

variable "detect_memory_mb" {
  description = "Memory of the detect function in MB."
  type        = number
  default     = 1024

  validation {
    condition     = var.detect_memory_mb >= 128 && var.detect_memory_mb <= 10240
    error_message = "detect_memory_mb must be between 128 and 10240."
  }
}

variable "detect_timeout_seconds" {
  description = "Timeout of the detect function in seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.detect_timeout_seconds >= 1 && var.detect_timeout_seconds <= 900
    error_message = "detect_timeout_seconds must be between 1 and 900."
  }
}

variable "notify_memory_mb" {
  description = "Memory of the notify function in MB."
  type        = number
  default     = 256

  validation {
    condition     = var.notify_memory_mb >= 128 && var.notify_memory_mb <= 10240
    error_message = "notify_memory_mb must be between 128 and 10240."
  }
}

variable "notify_timeout_seconds" {
  description = "Timeout of the notify function in seconds (it waits on Slack, PagerDuty, Splunk and the webhook)."
  type        = number
  default     = 60

  validation {
    condition     = var.notify_timeout_seconds >= 1 && var.notify_timeout_seconds <= 900
    error_message = "notify_timeout_seconds must be between 1 and 900."
  }
}

variable "parse_reserved_concurrency" {
  description = "Reserved concurrent executions of the parse function. Reserving needs an account concurrency quota above 10 plus the total reserved here."
  type        = number
  default     = 10

  validation {
    condition     = var.parse_reserved_concurrency >= 1
    error_message = "parse_reserved_concurrency must be at least 1."
  }
}

variable "detect_reserved_concurrency" {
  description = "Reserved concurrent executions of the detect function."
  type        = number
  default     = 10

  validation {
    condition     = var.detect_reserved_concurrency >= 1
    error_message = "detect_reserved_concurrency must be at least 1."
  }
}

variable "notify_reserved_concurrency" {
  description = "Reserved concurrent executions of the notify function (low keeps Slack/PagerDuty/Splunk rate limits in reach)."
  type        = number
  default     = 2

  validation {
    condition     = var.notify_reserved_concurrency >= 1
    error_message = "notify_reserved_concurrency must be at least 1."
  }
}

variable "lambda_max_retry_attempts" {
  description = "Retries of a failed asynchronous (S3-triggered) invocation before it goes to the function's dead-letter queue (0-2)."
  type        = number
  default     = 2

  validation {
    condition     = var.lambda_max_retry_attempts >= 0 && var.lambda_max_retry_attempts <= 2
    error_message = "lambda_max_retry_attempts must be between 0 and 2."
  }
}

variable "lambda_max_event_age_seconds" {
  description = "Oldest age of an S3 event Lambda still tries to process (60-21600); older events go to the dead-letter queue."
  type        = number
  default     = 21600

  validation {
    condition     = var.lambda_max_event_age_seconds >= 60 && var.lambda_max_event_age_seconds <= 21600
    error_message = "lambda_max_event_age_seconds must be between 60 and 21600."
  }
}

variable "xray_tracing" {
  description = "Active X-Ray tracing for the functions (PassThrough when false)."
  type        = bool
  default     = false
}

variable "encrypt_lambda_environment" {
  description = "Encrypt the functions' environment variables at rest with the customer-managed key instead of the Lambda service key."
  type        = bool
  default     = true
}

variable "detect_config_toml" {
  description = "tripline.toml contents: min_osquery_version, min_macos_version, office_networks, stale_after_minutes, max_samples, [query_sql] and [storm] (see tripline.example.toml); routes go in alert_routes. Passed to the detect and notify functions as TRIPLINE_CONFIG; empty uses the built-in defaults. Lambda allows 4 KB of environment variables in total."
  type        = string
  default     = ""
}

variable "output_compression" {
  description = "How the parse function compresses normalized and quarantined NDJSON: zstd (`.ndjson.zst`; 45% smaller than gzip at the same CPU, read by Athena, DuckDB and Spark) or gzip (`.ndjson.gz`, for readers without zstd). The detect function reads either."
  type        = string
  default     = "zstd"

  validation {
    condition     = contains(["zstd", "gzip"], var.output_compression)
    error_message = "output_compression must be \"zstd\" or \"gzip\"."
  }
}

variable "s3_event_delivery" {
  description = "How the data bucket's ObjectCreated events reach the functions: \"notification\" (the bucket's notification configuration invokes them directly) or \"eventbridge\" (the bucket sends its events to the default EventBridge bus, and one rule per function invokes it). Choose eventbridge when other consumers need this bucket's events too: S3 keeps one notification configuration per bucket, while any number of rules can match on the bus."
  type        = string
  default     = "notification"

  validation {
    condition     = contains(["notification", "eventbridge"], var.s3_event_delivery)
    error_message = "s3_event_delivery must be \"notification\" or \"eventbridge\"."
  }
}

variable "rust_log" {
  description = "RUST_LOG filter for the functions (e.g. info, debug, tripline_core=debug,info)."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Retention of the functions' and Firehose's CloudWatch log groups, in days (a value CloudWatch Logs accepts)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "dlq_message_retention_seconds" {
  description = "How long failed events stay in the dead-letter queues (60-1209600 seconds)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be between 60 and 1209600."
  }
}

# ---------------------------------------------------------------------------------------------
# Destinations
# ---------------------------------------------------------------------------------------------

variable "alert_email_addresses" {
  description = "E-mail addresses subscribed to the alerts topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "alert_routes" {
  description = "Which alerts each destination gets (sns, slack, webhook, pagerduty, splunk): the least severe level, and rule-name globs to send (empty: all) and never to send. Rendered into tripline.toml's [routes.<destination>] for the notify function, and the e-mail subscriptions' SNS filter policy follows the sns route. A destination without a route gets every alert."
  type = map(object({
    min_level     = optional(string, "informational")
    rules         = optional(list(string), [])
    exclude_rules = optional(list(string), [])
  }))
  default = { sns = { min_level = "high" } }
}

variable "enable_slack" {
  description = "Deliver alerts to a Slack incoming webhook; creates the SSM parameter /<name_prefix>/slack/webhook-url."
  type        = bool
  default     = false
}

variable "enable_webhook" {
  description = "Deliver alerts to a generic HMAC-signed webhook; creates /<name_prefix>/webhook/url and /<name_prefix>/webhook/secret."
  type        = bool
  default     = false
}

variable "enable_pagerduty" {
  description = "Deliver alerts to PagerDuty Events v2; creates /<name_prefix>/pagerduty/routing-key."
  type        = bool
  default     = false
}

variable "pagerduty_events_url" {
  description = "PagerDuty Events v2 endpoint (set with enable_pagerduty)."
  type        = string
  default     = "https://events.pagerduty.com/v2/enqueue"

  validation {
    condition     = startswith(var.pagerduty_events_url, "https://")
    error_message = "pagerduty_events_url must be an https:// URL."
  }
}

variable "enable_splunk_hec" {
  description = "Deliver alerts to a Splunk HTTP Event Collector; creates /<name_prefix>/splunk/hec-url and /<name_prefix>/splunk/hec-token."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------
# Operations
# ---------------------------------------------------------------------------------------------

variable "ops_email_addresses" {
  description = "E-mail addresses subscribed to the ops topic that receives the CloudWatch alarms."
  type        = list(string)
  default     = []
}

variable "alarm_period_seconds" {
  description = "Period of the CloudWatch alarms, in seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.alarm_period_seconds >= 60 && var.alarm_period_seconds % 60 == 0
    error_message = "alarm_period_seconds must be a multiple of 60."
  }
}

# ---------------------------------------------------------------------------------------------
# Athena
# ---------------------------------------------------------------------------------------------

variable "enable_glue_catalog" {
  description = "Create a Glue database with `normalized`, `alerts` and `quarantine` tables (JSON SerDe, partition projection), an Athena workgroup (encrypted results, bytes-scanned limit) and a saved query per dashboard panel, to query the bucket with Athena."
  type        = bool
  default     = false
}

variable "glue_database_name" {
  description = "Name of the Glue database (null: <name_prefix> with hyphens turned into underscores)."
  type        = string
  default     = null
}

variable "glue_projection_start" {
  description = "First day partition projection enumerates, as yyyy/MM/dd."
  type        = string
  default     = "2025/01/01"

  validation {
    condition     = can(regex("^[0-9]{4}/[0-9]{2}/[0-9]{2}$", var.glue_projection_start))
    error_message = "glue_projection_start must look like 2025/01/01."
  }
}

variable "site_dir" {
  description = "Path of your site directory (tripline.toml, rules/, filters/, queries/, iocs/; see examples/site). Each file is uploaded to the bucket's config/ prefix, only changed files on each apply, and detect and notify load it within a minute, without a redeploy. null: no site; the built-in rules with detect_config_toml."
  type        = string
  default     = null

  validation {
    condition     = var.site_dir == null || can(fileset(var.site_dir, "**"))
    error_message = "site_dir must be a readable directory."
  }
}

# ---------------------------------------------------------------------------------------------
# Athena workgroup (with enable_glue_catalog)
# ---------------------------------------------------------------------------------------------

variable "athena_bytes_scanned_cutoff_per_query" {
  description = "Bytes a query in the tripline Athena workgroup may scan before Athena cancels it (at least 10 MB; Athena bills $5 per TB scanned)."
  type        = number
  default     = 10737418240

  validation {
    condition     = var.athena_bytes_scanned_cutoff_per_query >= 10485760
    error_message = "athena_bytes_scanned_cutoff_per_query must be at least 10485760 (10 MB), Athena's minimum."
  }
}

variable "athena_results_retention_days" {
  description = "Days query results stay under the bucket's athena-results/ prefix before they expire."
  type        = number
  default     = 30

  validation {
    condition     = var.athena_results_retention_days >= 1
    error_message = "athena_results_retention_days must be at least 1."
  }
}
