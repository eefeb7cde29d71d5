# The data bucket: raw/ (Firehose), normalized/ and quarantine/ (parse), alerts/ (detect),
# state/ (dedup and delivery markers), firehose-errors/ (Firehose error output), and with
# enable_glue_catalog athena-results/ (the Athena workgroup's query results).

resource "aws_s3_bucket" "data" {
  #checkov:skip=CKV_AWS_144: Cross-region replication is a per-deployment decision (a second region, key and bucket); the data is re-creatable from the hosts and alerts are also delivered out of band.
  bucket        = local.bucket_name
  force_destroy = var.bucket_force_destroy
  tags          = local.tags
}

resource "aws_s3_bucket_ownership_controls" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  bucket                  = aws_s3_bucket.data.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "data" {
  bucket = aws_s3_bucket.data.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    # One data key per bucket instead of one KMS call per object: far fewer KMS requests.
    # Note: with a bucket key the KMS encryption context is the bucket ARN, not the object ARN.
    bucket_key_enabled = true
  }
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.data.arn, "${aws_s3_bucket.data.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "data" {
  bucket = aws_s3_bucket.data.id
  policy = data.aws_iam_policy_document.bucket.json

  # Putting a bucket policy while the public access block is being created can fail.
  depends_on = [aws_s3_bucket_public_access_block.data]
}

resource "aws_s3_bucket_lifecycle_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  # One expiration rule per prefix (the prefixes do not overlap), then one rule for the whole
  # bucket: with versioning on, an expired object becomes a noncurrent version, removed after a
  # short grace period, and its then-lone delete marker is cleaned up; multipart uploads that
  # never completed (a function that timed out mid-write) are aborted after 7 days.
  rule {
    id     = "raw"
    status = "Enabled"
    filter {
      prefix = local.raw_prefix
    }
    expiration {
      days = var.raw_retention_days
    }
  }

  rule {
    id     = "firehose-errors"
    status = "Enabled"
    filter {
      prefix = local.firehose_errors_prefix
    }
    expiration {
      days = var.raw_retention_days
    }
  }

  rule {
    id     = "normalized"
    status = "Enabled"
    filter {
      prefix = local.normalized_prefix
    }
    expiration {
      days = var.normalized_retention_days
    }
  }

  rule {
    id     = "quarantine"
    status = "Enabled"
    filter {
      prefix = local.quarantine_prefix
    }
    expiration {
      days = var.quarantine_retention_days
    }
  }

  rule {
    id     = "alerts"
    status = "Enabled"
    filter {
      prefix = local.alerts_prefix
    }
    expiration {
      days = var.alerts_retention_days
    }
  }

  rule {
    id     = "state"
    status = "Enabled"
    filter {
      prefix = local.state_prefix
    }
    expiration {
      days = var.state_retention_days
    }
  }

  # Athena query results (athena.tf), only with the workgroup.
  dynamic "rule" {
    for_each = var.enable_glue_catalog ? [local.athena_results_prefix] : []
    content {
      id     = "athena-results"
      status = "Enabled"
      filter {
        prefix = rule.value
      }
      expiration {
        days = var.athena_results_retention_days
      }
    }
  }

  rule {
    id     = "all-noncurrent-and-incomplete"
    status = "Enabled"
    filter {}
    expiration {
      expired_object_delete_marker = true
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # Lifecycle rules on a versioned bucket need versioning to be configured first.
  depends_on = [aws_s3_bucket_versioning.data]
}

resource "aws_s3_bucket_logging" "data" {
  count = var.access_log_bucket == null ? 0 : 1

  bucket        = aws_s3_bucket.data.id
  target_bucket = var.access_log_bucket
  target_prefix = var.access_log_prefix
}
