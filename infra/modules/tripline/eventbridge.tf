# With s3_event_delivery = "eventbridge": the bucket sends its events to the account's default
# EventBridge bus (aws_s3_bucket_notification.data, eventbridge = true), and one rule per
# function invokes it for the objects that trigger it (local.triggers). With "notification"
# nothing here exists.
#
# EventBridge invokes the functions asynchronously, as S3 does, so each function's
# aws_lambda_function_event_invoke_config (retries, then its dead-letter queue) applies
# unchanged. The target's own retry policy and dead-letter queue cover the hop before it: an
# event EventBridge could not hand to Lambda lands in the same per-function queue, with the
# RULE_ARN, TARGET_ARN, ERROR_CODE and ERROR_MESSAGE message attributes.

resource "aws_cloudwatch_event_rule" "s3" {
  for_each = local.eventbridge_triggers

  name        = "${var.name_prefix}-${each.value.id}"
  description = "tripline: objects created under s3://${local.bucket_name}/${each.value.prefix} invoke the ${each.key} function"

  # The objects the notification configuration would filter: the prefix, and the suffix where
  # there is one. The matchers listed for one field are alternatives, so a key that needs both
  # is matched by the wildcard `<prefix>*<suffix>` (neither part contains `*` or `\`, which a
  # wildcard reads as syntax).
  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = ["Object Created"]
    detail = {
      bucket = { name = [aws_s3_bucket.data.id] }
      object = {
        key = [
          each.value.suffix == null
          ? { prefix = each.value.prefix }
          : { wildcard = "${each.value.prefix}*${each.value.suffix}" }
        ]
      }
    }
  })

  tags = local.tags
}

resource "aws_cloudwatch_event_target" "s3" {
  for_each = local.eventbridge_triggers

  rule      = aws_cloudwatch_event_rule.s3[each.key].name
  target_id = each.key
  arn       = aws_lambda_function.function[each.key].arn

  # Lambda queues an asynchronous invocation as soon as it accepts it, so these retries only
  # ride out the Invoke API throttling or failing. They are bounded by the event's age (the
  # limit Lambda's own queue applies) and EventBridge's maximum of 185 attempts.
  retry_policy {
    maximum_event_age_in_seconds = var.lambda_max_event_age_seconds
    maximum_retry_attempts       = 185
  }

  # Events that could not be delivered (retries exhausted, or a permanent error such as a
  # missing permission) go to the function's own dead-letter queue, next to its failed
  # invocations, so its alarm covers both.
  dead_letter_config {
    arn = aws_sqs_queue.dlq[each.key].arn
  }

  depends_on = [aws_lambda_permission.eventbridge, aws_sqs_queue_policy.dlq]
}

# EventBridge may invoke each function from that function's rule only.
resource "aws_lambda_permission" "eventbridge" {
  for_each = local.eventbridge_triggers

  statement_id  = "AllowEventBridgeInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function[each.key].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.s3[each.key].arn
}

# Each dead-letter queue accepts undeliverable events from its function's rule only. (Lambda's
# on-failure destination sends with the function's role, which its own policy allows.) The
# queue's key allows EventBridge to encrypt them: kms.tf.
data "aws_iam_policy_document" "dlq" {
  for_each = local.eventbridge_triggers

  statement {
    sid       = "EventBridgeDeadLetters"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq[each.key].arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.s3[each.key].arn]
    }
  }
}

resource "aws_sqs_queue_policy" "dlq" {
  for_each = local.eventbridge_triggers

  queue_url = aws_sqs_queue.dlq[each.key].id
  policy    = data.aws_iam_policy_document.dlq[each.key].json
}

# An event that could not be delivered and could not be put in the dead-letter queue either is
# lost; FailedInvocations counts deliveries that failed for good. Either is an incident.
resource "aws_cloudwatch_metric_alarm" "eventbridge_failures" {
  for_each = local.eventbridge_triggers

  alarm_name          = "${var.name_prefix}-${each.key}-eventbridge-failures"
  alarm_description   = "tripline ${each.key}: the EventBridge rule ${aws_cloudwatch_event_rule.s3[each.key].name} could not deliver S3 events to the function (see ${aws_sqs_queue.dlq[each.key].name}), or could not put them there."
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.ops.arn]
  ok_actions          = [aws_sns_topic.ops.arn]
  tags                = local.tags

  metric_query {
    id          = "undelivered"
    expression  = "FILL(failed, 0) + FILL(lost, 0)"
    label       = "S3 events not delivered"
    return_data = true
  }

  metric_query {
    id = "failed"
    metric {
      namespace   = "AWS/Events"
      metric_name = "FailedInvocations"
      dimensions  = { RuleName = aws_cloudwatch_event_rule.s3[each.key].name }
      stat        = "Sum"
      period      = var.alarm_period_seconds
    }
  }

  metric_query {
    id = "lost"
    metric {
      namespace   = "AWS/Events"
      metric_name = "InvocationsFailedToBeSentToDLQ"
      dimensions  = { RuleName = aws_cloudwatch_event_rule.s3[each.key].name }
      stat        = "Sum"
      period      = var.alarm_period_seconds
    }
  }
}
