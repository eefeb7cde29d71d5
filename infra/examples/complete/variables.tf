variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix for every resource name."
  type        = string
  default     = "tripline"
}

variable "alert_email_addresses" {
  description = "E-mail addresses that receive high and critical alerts."
  type        = list(string)
  default     = []
}

variable "ops_email_addresses" {
  description = "E-mail addresses that receive the pipeline's CloudWatch alarms."
  type        = list(string)
  default     = []
}

variable "enable_slack" {
  description = "Deliver alerts to Slack (fill /<name_prefix>/slack/webhook-url after apply)."
  type        = bool
  default     = true
}

variable "enable_webhook" {
  description = "Deliver alerts to a signed generic webhook."
  type        = bool
  default     = false
}

variable "enable_pagerduty" {
  description = "Deliver alerts to PagerDuty Events v2."
  type        = bool
  default     = false
}

variable "enable_splunk_hec" {
  description = "Deliver alerts to Splunk HEC."
  type        = bool
  default     = false
}

variable "detect_config_toml" {
  description = "tripline.toml contents for the detect function (min_osquery_version, min_macos_version, office_networks, stale_after_minutes, max_samples); empty uses the built-in defaults. Set it with a heredoc in terraform.tfvars or -var \"detect_config_toml=$(cat ../../../tripline.toml)\"."
  type        = string
  default     = ""
}

variable "access_log_bucket" {
  description = "Existing bucket for S3 server access logs of the data bucket (null: off)."
  type        = string
  default     = null
}

variable "enable_glue_catalog" {
  description = "Create the Glue database and tables for Athena."
  type        = bool
  default     = true
}

variable "s3_event_delivery" {
  description = "How the bucket's ObjectCreated events reach the functions: \"notification\" (the bucket notification) or \"eventbridge\" (EventBridge rules, so other consumers can have the bucket's events too)."
  type        = string
  default     = "notification"
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "site_dir" {
  description = "Your site directory (tripline.toml, rules/, filters/, queries/, iocs/), uploaded to the bucket's config/ prefix; e.g. \"../../../examples/site\". null: none."
  type        = string
  default     = null
}
