# Destination secrets as SecureString parameters, only for enabled destinations. Terraform
# creates each with a placeholder and never touches the value again, so the secret is not in the
# Terraform state or in version control. Set the real value with:
#   aws ssm put-parameter --name /<name_prefix>/slack/webhook-url --type SecureString \
#     --key-id alias/<name_prefix> --overwrite --value 'https://hooks.slack.com/services/...'
# The notify function reads the parameters at cold start; after changing a value, publish a
# new function configuration (or wait for new execution environments) to pick it up.

resource "aws_ssm_parameter" "destination" {
  for_each = local.ssm_parameters

  name        = "/${var.name_prefix}/${each.key}"
  description = "tripline: ${each.value.description} (set with aws ssm put-parameter --overwrite)"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = "PLACEHOLDER-set-with-aws-ssm-put-parameter"
  tags        = local.tags

  lifecycle {
    ignore_changes = [value]
  }
}
