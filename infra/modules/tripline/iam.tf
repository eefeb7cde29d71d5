# ---------------------------------------------------------------------------------------------
# Producers: osquery hosts and Fleet servers
# ---------------------------------------------------------------------------------------------

# Attach to the instance profile (or role) of every host running osqueryd with
# --logger_plugin=aws_firehose. osquery's Firehose logger only calls PutRecordBatch; PutRecord
# is allowed for other single-record producers.
data "aws_iam_policy_document" "hosts" {
  statement {
    sid       = "PutOsqueryLogs"
    effect    = "Allow"
    actions   = ["firehose:PutRecord", "firehose:PutRecordBatch"]
    resources = [aws_kinesis_firehose_delivery_stream.osquery.arn]
  }
}

resource "aws_iam_policy" "hosts" {
  name        = "${var.name_prefix}-osquery-hosts"
  description = "tripline: osquery hosts may put records into the ${local.stream_name} Firehose stream, nothing else"
  policy      = data.aws_iam_policy_document.hosts.json
  tags        = local.tags
}

# Fleet's firehose log plugin also describes the stream at start-up (Fleet's documentation lists
# firehose:DescribeDeliveryStream and firehose:PutRecordBatch); attach to the Fleet server's role.
data "aws_iam_policy_document" "fleet" {
  statement {
    sid       = "PutOsqueryLogsFromFleet"
    effect    = "Allow"
    actions   = ["firehose:DescribeDeliveryStream", "firehose:PutRecordBatch"]
    resources = [aws_kinesis_firehose_delivery_stream.osquery.arn]
  }
}

resource "aws_iam_policy" "fleet" {
  name        = "${var.name_prefix}-fleet-server"
  description = "tripline: a Fleet server may describe and put records into the ${local.stream_name} Firehose stream"
  policy      = data.aws_iam_policy_document.fleet.json
  tags        = local.tags
}

# ---------------------------------------------------------------------------------------------
# Function roles: one per function, each granted exactly what that function calls
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = "${var.name_prefix}-${each.key}"
  description        = "tripline: execution role of the ${each.key} function"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = local.tags
}

# parse: raw/ -> normalized/ + quarantine/
data "aws_iam_policy_document" "parse" {
  statement {
    sid       = "ReadRaw"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.raw_prefix}*"]
  }

  statement {
    sid     = "WriteNormalizedAndQuarantine"
    effect  = "Allow"
    actions = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = [
      "${aws_s3_bucket.data.arn}/${local.normalized_prefix}*",
      "${aws_s3_bucket.data.arn}/${local.quarantine_prefix}*",
    ]
  }

  # See the detect policy: a raw object gone before parse ran is reported as NotFound.
  statement {
    sid       = "NotFoundInsteadOfAccessDenied"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]
  }

  statement {
    sid       = "UseKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function["parse"].arn}:*"]
  }

  statement {
    sid       = "SendToOwnDeadLetterQueue"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq["parse"].arn]
  }

  dynamic "statement" {
    for_each = var.xray_tracing ? [1] : []
    content {
      sid       = "XRayTraces"
      effect    = "Allow"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"] # X-Ray has no resource-level permissions for these actions.
    }
  }
}

# detect: normalized/ -> alerts/, each alert created only if absent (a conditional put)
data "aws_iam_policy_document" "detect" {
  statement {
    sid       = "ReadNormalized"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.normalized_prefix}*"]
  }

  # Alerts are only created, never read: PutObject with If-None-Match: * needs nothing
  # beyond s3:PutObject, and the alert object is its own dedup marker.
  statement {
    sid       = "CreateAlerts"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.alerts_prefix}*"]
  }

  # The site directory: listed (s3:ListBucket, below) at most once a minute, read when it
  # changed.
  statement {
    sid       = "ReadSite"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.site_prefix}*"]
  }

  # Without s3:ListBucket a GetObject of a missing key answers 403 AccessDenied instead of
  # 404 NotFound, and the function reports an object gone before it ran by that 404.
  statement {
    sid       = "NotFoundInsteadOfAccessDenied"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]
  }

  statement {
    sid       = "UseKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function["detect"].arn}:*"]
  }

  statement {
    sid       = "SendToOwnDeadLetterQueue"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq["detect"].arn]
  }

  dynamic "statement" {
    for_each = var.xray_tracing ? [1] : []
    content {
      sid       = "XRayTraces"
      effect    = "Allow"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"] # X-Ray has no resource-level permissions for these actions.
    }
  }
}

# notify: alerts/ -> SNS / Slack / webhook / PagerDuty / Splunk; claims under state/claim/ and
# delivery markers under state/delivery/
data "aws_iam_policy_document" "notify" {
  statement {
    sid       = "ReadAlerts"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.alerts_prefix}*"]
  }

  # The site directory's tripline.toml (routes, storm control), as for detect.
  statement {
    sid       = "ReadSite"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.site_prefix}*"]
  }

  statement {
    sid       = "DeliveryMarkers"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.delivery_prefix}*"]
  }

  # A claim is created if absent before each send, read when another invocation holds it,
  # and rewritten by its owner to renew or release it.
  statement {
    sid       = "DeliveryClaims"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.claim_prefix}*"]
  }

  # Storm control: a mark per alert under its rule and window, created if absent, listed
  # (s3:ListBucket, below) to count them, and the first ones read for the roll-up's hosts.
  statement {
    sid       = "StormMarks"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.storm_prefix}*"]
  }

  # See the detect policy: a 404 for a delivery marker that does not exist yet.
  statement {
    sid       = "NotFoundInsteadOfAccessDenied"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]
  }

  statement {
    sid       = "PublishAlerts"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }

  dynamic "statement" {
    for_each = length(local.ssm_parameters) > 0 ? [1] : []
    content {
      sid       = "ReadDestinationSecrets"
      effect    = "Allow"
      actions   = ["ssm:GetParameter"]
      resources = [for k, _ in local.ssm_parameters : aws_ssm_parameter.destination[k].arn]
    }
  }

  # Objects in the bucket, the SNS topic, SecureString parameters and the dead-letter queue.
  statement {
    sid       = "UseKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function["notify"].arn}:*"]
  }

  statement {
    sid       = "SendToOwnDeadLetterQueue"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq["notify"].arn]
  }

  dynamic "statement" {
    for_each = var.xray_tracing ? [1] : []
    content {
      sid       = "XRayTraces"
      effect    = "Allow"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"] # X-Ray has no resource-level permissions for these actions.
    }
  }
}

locals {
  function_policies = {
    parse  = data.aws_iam_policy_document.parse.json
    detect = data.aws_iam_policy_document.detect.json
    notify = data.aws_iam_policy_document.notify.json
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "${each.key}-least-privilege"
  role   = aws_iam_role.function[each.key].id
  policy = local.function_policies[each.key]
}
