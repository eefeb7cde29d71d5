# Alarms about the pipeline itself, to the ops topic. Missing data is not breaching: a quiet
# fleet (no records, no invocations) is not an incident.

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = local.functions

  alarm_name          = "${var.name_prefix}-${each.key}-errors"
  alarm_description   = "tripline ${each.key}: invocations failed (they are retried, then sent to ${aws_sqs_queue.dlq[each.key].name})."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.function[each.key].function_name }
  statistic           = "Sum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.ops.arn]
  ok_actions          = [aws_sns_topic.ops.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "function_throttles" {
  for_each = local.functions

  alarm_name          = "${var.name_prefix}-${each.key}-throttles"
  alarm_description   = "tripline ${each.key}: invocations throttled by the reserved concurrency (${each.value.concurrency}); events wait and may age out to the dead-letter queue."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.function[each.key].function_name }
  statistic           = "Sum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.ops.arn]
  ok_actions          = [aws_sns_topic.ops.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "dlq_messages" {
  for_each = local.functions

  alarm_name          = "${var.name_prefix}-${each.key}-dlq-not-empty"
  alarm_description   = "tripline ${each.key}: events failed every retry and are in ${aws_sqs_queue.dlq[each.key].name}; inspect and redrive them."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq[each.key].name }
  statistic           = "Maximum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.ops.arn]
  ok_actions          = [aws_sns_topic.ops.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "firehose_freshness" {
  alarm_name          = "${var.name_prefix}-firehose-data-freshness"
  alarm_description   = "tripline: the oldest record in ${local.stream_name} is older than ${var.firehose_freshness_alarm_seconds}s; delivery to S3 is falling behind or failing."
  namespace           = "AWS/Firehose"
  metric_name         = "DeliveryToS3.DataFreshness"
  dimensions          = { DeliveryStreamName = aws_kinesis_firehose_delivery_stream.osquery.name }
  statistic           = "Maximum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  threshold           = var.firehose_freshness_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.ops.arn]
  ok_actions          = [aws_sns_topic.ops.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "firehose_success" {
  alarm_name          = "${var.name_prefix}-firehose-delivery-failures"
  alarm_description   = "tripline: some deliveries from ${local.stream_name} to S3 failed (see the ${aws_cloudwatch_log_group.firehose.name} log group and firehose-errors/)."
  namespace           = "AWS/Firehose"
  metric_name         = "DeliveryToS3.Success"
  dimensions          = { DeliveryStreamName = aws_kinesis_firehose_delivery_stream.osquery.name }
  statistic           = "Minimum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.ops.arn]
  ok_actions          = [aws_sns_topic.ops.arn]
  tags                = local.tags
}
