# Routing per destination as one value: it renders tripline.toml's [routes.<destination>]
# tables, which the notify function honours, and the SNS e-mail subscriptions' filter policy,
# so the mailbox and notify cannot disagree. No providers and no resources: a test applies it
# alone and checks both outputs against tripline's own routing (tests/infra).

variable "routes" {
  description = "Per destination (sns, slack, webhook, pagerduty, splunk): the least severe level sent, and rule-name globs to send (empty: all) and never to send."
  type = map(object({
    min_level     = optional(string, "informational")
    rules         = optional(list(string), [])
    exclude_rules = optional(list(string), [])
  }))
  default = {}

  validation {
    condition     = alltrue([for d in keys(var.routes) : contains(["sns", "slack", "webhook", "pagerduty", "splunk"], d)])
    error_message = "routes may only name the destinations sns, slack, webhook, pagerduty and splunk."
  }
  validation {
    condition     = alltrue([for r in values(var.routes) : contains(["informational", "low", "medium", "high", "critical"], r.min_level)])
    error_message = "A route's min_level must be informational, low, medium, high or critical."
  }
}

locals {
  levels = ["informational", "low", "medium", "high", "critical"]

  # jsonencode writes TOML-compatible basic strings and string arrays.
  toml = join("\n", [
    for d in sort(keys(var.routes)) : join("\n", [
      "[routes.${d}]",
      "min_level = ${jsonencode(var.routes[d].min_level)}",
      "rules = ${jsonencode(var.routes[d].rules)}",
      "exclude_rules = ${jsonencode(var.routes[d].exclude_rules)}",
      "",
    ])
  ])

  sns = lookup(var.routes, "sns", null)

  # A rule glob SNS can express: a literal name, or a literal prefix and one trailing `*`
  # (globs never match `/`-free rule names differently). Anything else is left to notify,
  # which applies the route before it publishes: the policy then only narrows by severity,
  # and never drops an alert the route takes.
  literal = "^[^*?\\[\\]{}\\\\]+$"
  prefix  = "^[^*?\\[\\]{}\\\\]+\\*$"

  sns_rules = local.sns == null ? [] : local.sns.rules
  sns_excl  = local.sns == null ? [] : local.sns.exclude_rules

  rules_expressible = length(local.sns_rules) > 0 && alltrue([
    for p in local.sns_rules : can(regex(local.literal, p)) || can(regex(local.prefix, p))
  ])
  # SNS's anything-but takes a list of literals or a single prefix; only meaningful when no
  # include list already narrows the rules (one policy key cannot hold both).
  excl_literals = length(local.sns_rules) == 0 && length(local.sns_excl) > 0 && alltrue([
    for p in local.sns_excl : can(regex(local.literal, p))
  ])
  excl_prefix = length(local.sns_rules) == 0 && length(local.sns_excl) == 1 && can(regex(local.prefix, try(local.sns_excl[0], "")))

  # Built as JSON text: a condition mixes strings and objects, which HCL's conditionals can't.
  rule_condition = (
    local.rules_expressible ? jsonencode([
      for p in local.sns_rules : jsondecode(can(regex(local.literal, p)) ? jsonencode(p) : jsonencode({ prefix = trimsuffix(p, "*") }))
      ]) : local.excl_literals ? jsonencode([
      { "anything-but" = local.sns_excl }
      ]) : local.excl_prefix ? jsonencode([
      { "anything-but" = { prefix = trimsuffix(local.sns_excl[0], "*") } }
    ]) : null
  )

  sns_policy = local.sns == null ? null : merge(
    { severity = slice(local.levels, index(local.levels, local.sns.min_level), length(local.levels)) },
    local.rule_condition == null ? {} : { rule = jsondecode(local.rule_condition) },
  )
}

output "toml" {
  description = "The [routes.<destination>] tables of tripline.toml; empty when there are no routes."
  value       = local.toml
}

output "sns_filter_policy" {
  description = "The e-mail subscriptions' filter policy (JSON, MessageAttributes scope) following the sns route; null without one."
  value       = local.sns_policy == null ? null : jsonencode(local.sns_policy)
}
