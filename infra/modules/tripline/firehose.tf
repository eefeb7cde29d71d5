# Direct PUT delivery stream: osquery (aws_firehose logger) or Fleet (firehose result/status log
# plugin) call PutRecordBatch; Firehose buffers, gzips and writes raw/YYYY/MM/DD/HH/<object>.gz.

resource "aws_cloudwatch_log_group" "firehose" {
  name              = "/aws/kinesisfirehose/${local.stream_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_cloudwatch_log_stream" "firehose_delivery" {
  name           = "DestinationDelivery"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

data "aws_iam_policy_document" "firehose_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }

    # Only Firehose acting for this account may assume the role.
    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "firehose" {
  name               = "${var.name_prefix}-firehose"
  description        = "tripline: Firehose delivery of osquery logs to s3://${local.bucket_name}/raw/"
  assume_role_policy = data.aws_iam_policy_document.firehose_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "firehose" {
  # Bucket-level calls Firehose makes before writing (location, in-flight multipart uploads).
  statement {
    sid       = "BucketLevel"
    effect    = "Allow"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.data.arn]
  }

  # Objects: only raw/ and the error output prefix.
  statement {
    sid     = "WriteRawAndErrors"
    effect  = "Allow"
    actions = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"]
    resources = [
      "${aws_s3_bucket.data.arn}/${local.raw_prefix}*",
      "${aws_s3_bucket.data.arn}/${local.firehose_errors_prefix}*",
    ]
  }

  # SSE-KMS through S3 only. With the S3 Bucket Key the encryption context is the bucket ARN;
  # the object-prefix ARNs cover a bucket without it.
  statement {
    sid       = "KmsForS3"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.${local.dns_suffix}"]
    }

    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values = [
        aws_s3_bucket.data.arn,
        "${aws_s3_bucket.data.arn}/${local.raw_prefix}*",
        "${aws_s3_bucket.data.arn}/${local.firehose_errors_prefix}*",
      ]
    }
  }

  statement {
    sid       = "DeliveryErrorLogs"
    effect    = "Allow"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.firehose.arn}:log-stream:${aws_cloudwatch_log_stream.firehose_delivery.name}"]
  }
}

resource "aws_iam_role_policy" "firehose" {
  name   = "delivery"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose.json
}

resource "aws_kinesis_firehose_delivery_stream" "osquery" {
  name        = local.stream_name
  destination = "extended_s3"

  # Encryption at rest of the records while Firehose buffers them.
  server_side_encryption {
    enabled  = true
    key_type = "CUSTOMER_MANAGED_CMK"
    key_arn  = aws_kms_key.this.arn
  }

  extended_s3_configuration {
    role_arn   = aws_iam_role.firehose.arn
    bucket_arn = aws_s3_bucket.data.arn

    # The parse function is triggered by raw/; the error output must stay outside raw/ or a
    # failed delivery would be parsed as if it were osquery output.
    prefix              = "${local.raw_prefix}!{timestamp:yyyy/MM/dd/HH}/"
    error_output_prefix = "${local.firehose_errors_prefix}!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"

    buffering_size     = var.firehose_buffering_size_mib
    buffering_interval = var.firehose_buffering_interval_seconds
    compression_format = "GZIP"
    kms_key_arn        = aws_kms_key.this.arn

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.firehose_delivery.name
    }
  }

  tags = local.tags

  # The role must be able to write before the first delivery.
  depends_on = [aws_iam_role_policy.firehose]
}
