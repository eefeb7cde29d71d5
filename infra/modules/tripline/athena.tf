# With enable_glue_catalog: an Athena workgroup for the Glue tables (glue.tf) and a saved
# (named) query for each dashboard panel of deploy/splunk. The workgroup's settings are
# enforced, so every query in it writes its results encrypted with the module's key under the
# data bucket's athena-results/ prefix (expired after athena_results_retention_days; the
# bucket's encryption, public access block, TLS-only policy and access logging apply) and is
# cancelled past athena_bytes_scanned_cutoff_per_query.
#
# The SQL lives in athena/*.sql (Athena's Trino dialect; `${database}` is the Glue database),
# where tests/lake transpiles it to DuckDB and runs it over the CLI's output of the sample logs.
# `?` marks an execution parameter: Athena's console asks for the values when the query runs.

locals {
  athena_results_prefix = "athena-results/"

  # Panel name => what it shows. Each has athena/<name>.sql.
  athena_queries = {
    techniques          = "Observations per ATT&CK technique (events, hosts, tactics). Parameters: first and last hour, yyyy/MM/dd/HH."
    tactics             = "Observations per ATT&CK tactic (events, techniques, hosts). Parameters: first and last hour, yyyy/MM/dd/HH."
    tables              = "Observations per osquery table, with the techniques they map to. Parameters: first and last hour, yyyy/MM/dd/HH."
    network_connections = "Process network connections (process_open_sockets, socket_events): host, process, path, pid, protocol, addresses and ports, cmdline. Parameters: first and last hour, yyyy/MM/dd/HH."
    host_activity       = "One host's drill-down: its techniques by query and table, with first and last time seen. Parameters: host, first and last hour, yyyy/MM/dd/HH."
    alerts_by_rule      = "Alerts by rule and severity, with matches and hosts. Parameters: first and last day, yyyy/MM/dd."
    quarantine          = "Quarantined records and objects by reason. Parameters: first and last hour, yyyy/MM/dd/HH."
  }
}

resource "aws_athena_workgroup" "this" {
  count = var.enable_glue_catalog ? 1 : 0

  name        = var.name_prefix
  description = "tripline: queries over normalized events, alerts and quarantine in s3://${local.bucket_name}"
  state       = "ENABLED"
  # Deleting the workgroup takes its saved queries and query history with it (the saved
  # queries are this module's own).
  force_destroy = true

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff_per_query

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location       = "s3://${local.bucket_name}/${local.athena_results_prefix}"
      expected_bucket_owner = local.account_id

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.this.arn
      }
    }
  }

  tags = local.tags
}

resource "aws_athena_named_query" "panel" {
  for_each = var.enable_glue_catalog ? local.athena_queries : {}

  name        = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  description = each.value
  workgroup   = aws_athena_workgroup.this[0].id
  database    = aws_glue_catalog_database.this[0].name
  query       = templatefile("${path.module}/athena/${each.key}.sql", { database = local.glue_database })
}
