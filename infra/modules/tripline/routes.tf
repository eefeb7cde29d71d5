# Routing per destination (var.alert_routes), one setting for both of its readers: the notify
# function reads the rendered [routes.<destination>] tables in tripline.toml (the site's, or
# TRIPLINE_CONFIG without one), and the e-mail subscriptions filter on the same sns route.

module "routes" {
  source = "../routes"
  routes = var.alert_routes
}

locals {
  site_config_file = var.site_dir == null ? null : "${var.site_dir}/tripline.toml"
  site_config      = local.site_config_file != null && fileexists(coalesce(local.site_config_file, "-")) ? file(local.site_config_file) : ""

  # TRIPLINE_CONFIG: detect_config_toml with the routes appended.
  functions_config = join("\n", compact([var.detect_config_toml, module.routes.toml]))

  # Destinations routed in tripline.toml itself (`[routes.<destination>]` headers).
  toml_routed = distinct(flatten([
    for text in [var.detect_config_toml, local.site_config] :
    regexall("(?m)^\\s*\\[\\s*routes\\s*\\.\\s*\"?([A-Za-z_]+)\"?\\s*\\]", text)
  ]))
  # Routes in another TOML form (a bare [routes] table, or routes = {...}) name their
  # destinations where the pattern above cannot see them.
  toml_routes_other_form = anytrue([
    for text in [var.detect_config_toml, local.site_config] :
    can(regex("(?m)^\\s*(\\[\\s*routes\\s*\\]|routes\\s*=)", text))
  ])
}

# Fails the plan when routes are set in two places: the e-mail filter policy could not follow a
# route Terraform does not know, and tripline.toml may not define a table twice.
resource "terraform_data" "routes_in_one_place" {
  input = module.routes.toml

  lifecycle {
    precondition {
      condition     = !local.toml_routes_other_form
      error_message = "tripline.toml (site_dir or detect_config_toml) sets routes as a [routes] table or routes = {...}: write each as a [routes.<destination>] table, or set it in alert_routes, so the plan can tell which destinations are routed where."
    }
    precondition {
      condition     = !contains(local.toml_routed, "sns")
      error_message = "[routes.sns] is set in tripline.toml (site_dir or detect_config_toml): set it in alert_routes instead, so the e-mail subscriptions' filter policy follows it."
    }
    precondition {
      condition     = length(setintersection(toset(local.toml_routed), toset(keys(var.alert_routes)))) == 0
      error_message = "A destination is routed both in alert_routes and in tripline.toml (site_dir or detect_config_toml); keep each route in one place."
    }
  }
}
