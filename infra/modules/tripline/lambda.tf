# The three functions, their log groups and dead-letter queues, and the bucket notification.

# Created before the functions (depends_on below), so Lambda never creates an unencrypted log
# group with infinite retention on its own.
resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

# One dead-letter queue per function (the on-failure destination of its asynchronous S3
# invocations): a failure is attributable to its stage at a glance, each queue has its own
# alarm, a message is redriven to the function it belongs to, and each role can send to its
# own queue only.
resource "aws_sqs_queue" "dlq" {
  for_each = local.functions

  name                              = "${var.name_prefix}-${each.key}-dlq"
  message_retention_seconds         = var.dlq_message_retention_seconds
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 3600
  tags                              = local.tags
}

resource "aws_lambda_function" "function" {
  for_each = local.functions
  #checkov:skip=CKV_AWS_117: The functions only call AWS APIs and public HTTPS endpoints (Slack, PagerDuty, Splunk, webhook); a VPC would add NAT gateway cost and no isolation. Deploy into a VPC by extending the module if your policy requires it.
  #checkov:skip=CKV_AWS_272: Code signing needs an AWS Signer profile and signed artifacts, which the cargo-lambda build does not produce; the deployment packages come from this repository's own build.
  #checkov:skip=CKV_AWS_116: Failed asynchronous invocations go to the per-function SQS queue through the on-failure destination (aws_lambda_function_event_invoke_config), which records the request and error context; a second, legacy dead_letter_config would receive duplicates.

  function_name = local.function_names[each.key]
  description   = each.value.description
  role          = aws_iam_role.function[each.key].arn

  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = var.lambda_architectures

  filename         = local.zip_paths[each.key]
  source_code_hash = filebase64sha256(local.zip_paths[each.key])

  memory_size                    = each.value.memory
  timeout                        = each.value.timeout
  reserved_concurrent_executions = each.value.concurrency

  kms_key_arn = var.encrypt_lambda_environment ? aws_kms_key.this.arn : null

  environment {
    variables = local.environment[each.key]
  }

  tracing_config {
    mode = var.xray_tracing ? "Active" : "PassThrough"
  }

  tags = local.tags

  depends_on = [
    aws_cloudwatch_log_group.function,
    aws_iam_role_policy.function,
  ]
}

resource "aws_lambda_function_event_invoke_config" "function" {
  for_each = local.functions

  function_name                = aws_lambda_function.function[each.key].function_name
  maximum_retry_attempts       = var.lambda_max_retry_attempts
  maximum_event_age_in_seconds = var.lambda_max_event_age_seconds

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dlq[each.key].arn
    }
  }
}

# With s3_event_delivery = "notification": S3 may invoke each triggered function, and only for
# events from this bucket in this account. (With "eventbridge", EventBridge invokes them
# instead; see eventbridge.tf.)
resource "aws_lambda_permission" "s3" {
  for_each = local.notification_triggers

  statement_id   = "AllowS3Invoke"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.function[each.key].function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.data.arn
  source_account = local.account_id
}

# One notification configuration for the bucket (S3 keeps exactly one per bucket), whichever way
# events are delivered: two resources writing it would erase each other's settings. It either
# invokes the functions directly (the three prefixes do not overlap, which S3 requires of
# filters for the same event type), or sends every event to EventBridge and invokes nothing.
resource "aws_s3_bucket_notification" "data" {
  bucket      = aws_s3_bucket.data.id
  eventbridge = local.eventbridge

  # A list in the provider: in pipeline order, so the plan never shows a mere reordering.
  dynamic "lambda_function" {
    for_each = local.eventbridge ? [] : local.trigger_list
    content {
      id                  = lambda_function.value.id
      lambda_function_arn = aws_lambda_function.function[lambda_function.value.function].arn
      events              = ["s3:ObjectCreated:*"]
      filter_prefix       = lambda_function.value.prefix
      filter_suffix       = lambda_function.value.suffix
    }
  }

  # The way in exists before the bucket switches to it, and the old way is removed only after
  # the bucket has switched away, so no event is dropped when s3_event_delivery changes.
  depends_on = [
    aws_lambda_permission.s3,
    aws_lambda_permission.eventbridge,
    aws_cloudwatch_event_target.s3,
  ]
}
