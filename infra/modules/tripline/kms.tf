# One customer-managed key encrypts everything the pipeline stores: the data bucket (SSE-KMS with
# an S3 Bucket Key), the Firehose stream, the dead-letter queues, both SNS topics, the SSM
# SecureString parameters, the CloudWatch log groups and (optionally) the functions' environment.
# One key keeps the key policy auditable in one place; the roles below are what may use it.

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109: This is a KMS key policy: its Resource "*" means this key only and cannot be narrowed; kms:* is granted to the account root (the standard statement that delegates to IAM), the rest to named roles and services.
  #checkov:skip=CKV_AWS_111: This is a KMS key policy: its Resource "*" means this key only and cannot be narrowed; write actions go to the account root, the pipeline's named roles and the logs/cloudwatch services (logs scoped by encryption context).
  #checkov:skip=CKV_AWS_356: This is a KMS key policy: its Resource "*" means this key only (AWS requires "*" in key policies).

  # The account root, so IAM policies in this account can grant key administration (without it
  # the key can become unmanageable). This is the standard default key policy statement.
  statement {
    sid       = "EnableIamPolicies"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = concat(["arn:${local.partition}:iam::${local.account_id}:root"], var.kms_admin_role_arns)
    }
  }

  # The pipeline's own roles: Firehose writes raw/ objects, the functions read and write the
  # bucket, send to their dead-letter queue, publish to SNS and read SecureString parameters.
  statement {
    sid       = "PipelineRolesUseKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]

    principals {
      type = "AWS"
      identifiers = [
        aws_iam_role.firehose.arn,
        aws_iam_role.function["parse"].arn,
        aws_iam_role.function["detect"].arn,
        aws_iam_role.function["notify"].arn,
      ]
    }
  }

  # CloudWatch Logs encrypts our log groups (and only ours) with the key.
  statement {
    sid    = "CloudWatchLogsUseKey"
    effect = "Allow"
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:DescribeKey",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.${local.dns_suffix}"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values = [
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.name_prefix}-*",
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/kinesisfirehose/${var.name_prefix}-*",
      ]
    }
  }

  # With s3_event_delivery = "eventbridge": EventBridge puts the events it could not deliver in
  # the (encrypted) dead-letter queues, for the pipeline's rules only.
  dynamic "statement" {
    for_each = local.eventbridge ? [1] : []
    content {
      sid       = "EventBridgeDeadLettersUseKey"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["events.amazonaws.com"]
      }

      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [for f, _ in local.eventbridge_triggers : aws_cloudwatch_event_rule.s3[f].arn]
      }
    }
  }

  # CloudWatch alarms publish to the (encrypted) ops topic.
  statement {
    sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name_prefix}: data bucket, Firehose, SQS, SNS, SSM and logs"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.this.key_id
}
