output "firehose_stream_name" {
  description = "Firehose delivery stream osquery (--aws_firehose_stream) or Fleet (firehose result/status stream) writes to."
  value       = aws_kinesis_firehose_delivery_stream.osquery.name
}

output "firehose_stream_arn" {
  description = "ARN of the Firehose delivery stream."
  value       = aws_kinesis_firehose_delivery_stream.osquery.arn
}

output "host_policy_arn" {
  description = "IAM policy to attach to the instance profile role of osquery hosts (firehose:PutRecord and PutRecordBatch on the stream only)."
  value       = aws_iam_policy.hosts.arn
}

output "fleet_policy_arn" {
  description = "IAM policy to attach to a Fleet server's role when Fleet forwards osquery logs (firehose:DescribeDeliveryStream and PutRecordBatch on the stream only)."
  value       = aws_iam_policy.fleet.arn
}

output "bucket_name" {
  description = "Data bucket (raw/, normalized/, quarantine/, alerts/, state/, firehose-errors/, and with enable_glue_catalog athena-results/)."
  value       = aws_s3_bucket.data.id
}

output "bucket_arn" {
  description = "ARN of the data bucket."
  value       = aws_s3_bucket.data.arn
}

output "kms_key_arn" {
  description = "Customer-managed key that encrypts the bucket, stream, queues, topics, parameters and logs."
  value       = aws_kms_key.this.arn
}

output "kms_key_alias" {
  description = "Alias of the key (use it as --key-id with aws ssm put-parameter)."
  value       = aws_kms_alias.this.name
}

output "alerts_topic_arn" {
  description = "SNS topic the notify function publishes alerts to (subscribe e-mail or other endpoints)."
  value       = aws_sns_topic.alerts.arn
}

output "ops_topic_arn" {
  description = "SNS topic receiving the pipeline's CloudWatch alarms."
  value       = aws_sns_topic.ops.arn
}

output "function_names" {
  description = "Lambda function names by stage (parse, detect, notify)."
  value       = { for k, f in aws_lambda_function.function : k => f.function_name }
}

output "function_role_arns" {
  description = "Execution role ARNs by stage."
  value       = { for k, r in aws_iam_role.function : k => r.arn }
}

output "dlq_urls" {
  description = "Dead-letter queue URLs by stage (failed S3 events after all retries)."
  value       = { for k, q in aws_sqs_queue.dlq : k => q.url }
}

output "ssm_parameter_names" {
  description = "SecureString parameters to fill with `aws ssm put-parameter --overwrite`, by destination setting."
  value       = { for k, p in aws_ssm_parameter.destination : k => p.name }
}

output "glue_database_name" {
  description = "Glue database with the normalized, alerts and quarantine tables (null when enable_glue_catalog is false)."
  value       = var.enable_glue_catalog ? aws_glue_catalog_database.this[0].name : null
}

output "athena_workgroup_name" {
  description = "Athena workgroup to query the Glue tables in (encrypted results, bytes-scanned limit; null when enable_glue_catalog is false)."
  value       = var.enable_glue_catalog ? aws_athena_workgroup.this[0].name : null
}

output "athena_named_queries" {
  description = "Saved Athena queries for the dashboard panels: panel => named query ID (empty when enable_glue_catalog is false)."
  value       = { for k, q in aws_athena_named_query.panel : k => q.id }
}
