# The site directory (var.site_dir) in the bucket's config/ prefix, one object per file.
# source_hash makes an apply upload only the files whose content changed; a file removed
# from the directory is removed from the bucket. detect and notify list the prefix at most
# once a minute and load it when it changed, keeping the last good site if a new one is
# broken (and counting SiteErrors, which the alarm below watches).

locals {
  # Hidden files and folders (.git, editor swap files) are not part of the site.
  site_files = var.site_dir == null ? toset([]) : toset([
    for f in fileset(var.site_dir, "**") : f
    if !startswith(f, ".") && !strcontains(f, "/.")
  ])
  routed_site_config = { for f in local.site_files : f => f == "tripline.toml" && module.routes.toml != "" }
}

resource "aws_s3_object" "site" {
  for_each = local.site_files

  bucket = aws_s3_bucket.data.id
  key    = "${local.site_prefix}${each.value}"
  # The site's tripline.toml carries alert_routes too (it wins over TRIPLINE_CONFIG).
  source                 = local.routed_site_config[each.value] ? null : "${var.site_dir}/${each.value}"
  source_hash            = local.routed_site_config[each.value] ? null : filemd5("${var.site_dir}/${each.value}")
  content                = local.routed_site_config[each.value] ? join("\n", [local.site_config, module.routes.toml]) : null
  server_side_encryption = "aws:kms"
  kms_key_id             = aws_kms_key.this.arn
  bucket_key_enabled     = true
  tags                   = local.tags
}

resource "aws_cloudwatch_metric_alarm" "site_errors" {
  for_each = toset(["detect", "notify"])

  alarm_name          = "${var.name_prefix}-${each.key}-site-errors"
  alarm_description   = "tripline ${each.key}: the site directory in s3://${local.bucket_name}/${local.site_prefix} did not load (see the function's log for the file and line); it runs with the last site that loaded."
  namespace           = "tripline"
  metric_name         = "SiteErrors"
  dimensions          = { FunctionName = each.key }
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
