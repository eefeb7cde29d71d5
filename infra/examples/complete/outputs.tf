output "firehose_stream_name" {
  description = "Set as --aws_firehose_stream (osquery) or firehose.result_stream / status_stream (Fleet)."
  value       = module.tripline.firehose_stream_name
}

output "firehose_stream_arn" {
  description = "ARN of the Firehose delivery stream."
  value       = module.tripline.firehose_stream_arn
}

output "host_policy_arn" {
  description = "Attach to the instance profile role of osquery hosts."
  value       = module.tripline.host_policy_arn
}

output "fleet_policy_arn" {
  description = "Attach to the Fleet server's role when Fleet forwards the logs."
  value       = module.tripline.fleet_policy_arn
}

output "bucket_name" {
  description = "Data bucket."
  value       = module.tripline.bucket_name
}

output "kms_key_alias" {
  description = "Key alias for aws ssm put-parameter --key-id."
  value       = module.tripline.kms_key_alias
}

output "alerts_topic_arn" {
  description = "SNS topic with every alert."
  value       = module.tripline.alerts_topic_arn
}

output "ops_topic_arn" {
  description = "SNS topic with the pipeline's alarms."
  value       = module.tripline.ops_topic_arn
}

output "function_names" {
  description = "Lambda functions by stage."
  value       = module.tripline.function_names
}

output "dlq_urls" {
  description = "Dead-letter queues by stage."
  value       = module.tripline.dlq_urls
}

output "ssm_parameter_names" {
  description = "SecureString parameters to fill with aws ssm put-parameter --overwrite."
  value       = module.tripline.ssm_parameter_names
}

output "glue_database_name" {
  description = "Glue database for Athena (null when disabled)."
  value       = module.tripline.glue_database_name
}

output "athena_workgroup_name" {
  description = "Athena workgroup for the Glue tables and the saved panel queries (null when disabled)."
  value       = module.tripline.athena_workgroup_name
}

output "athena_named_queries" {
  description = "Saved Athena queries for the dashboard panels, by panel."
  value       = module.tripline.athena_named_queries
}
