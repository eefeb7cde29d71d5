# A complete tripline deployment. Build the functions first, from the repository root:
#   cargo lambda build --release --arm64 --output-format zip
# then, here: terraform init && terraform apply -var 'alert_email_addresses=["secops@example.com"]'

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project   = "tripline"
      ManagedBy = "terraform"
    }
  }
}

module "tripline" {
  source = "../../modules/tripline"

  name_prefix = var.name_prefix

  # The zips are found relative to the repository root, three levels up from here.
  artifacts_root = abspath("${path.root}/../../..")

  alert_email_addresses = var.alert_email_addresses
  ops_email_addresses   = var.ops_email_addresses
  # E-mail (notify's sns route and the subscriptions' filter policy) gets high and critical
  # alerts. The other destinations' routes can live here or in the site's tripline.toml.
  alert_routes = {
    sns = { min_level = "high" }
  }

  enable_slack      = var.enable_slack
  enable_webhook    = var.enable_webhook
  enable_pagerduty  = var.enable_pagerduty
  enable_splunk_hec = var.enable_splunk_hec

  # Site settings of the detection rules (tripline.toml), as TRIPLINE_CONFIG.
  detect_config_toml = var.detect_config_toml
  site_dir           = var.site_dir

  access_log_bucket   = var.access_log_bucket
  enable_glue_catalog = var.enable_glue_catalog

  # "eventbridge" when other consumers need the bucket's events too (see the module's README).
  s3_event_delivery = var.s3_event_delivery

  tags = var.tags
}
