# Optional Glue catalog so Athena can query normalized events, alerts and quarantine entries
# in place (athena.tf: the workgroup and the saved queries). Partition
# projection computes partitions from the key's date path, so there is no crawler and no
# MSCK REPAIR: filter on `dt` to read only the hours/days you need, e.g.
#   SELECT host, query, "time" FROM tripline.normalized WHERE dt >= '2026/11/22/00' LIMIT 10;
# Athena's caller needs s3:GetObject on the prefixes and kms:Decrypt on the key.

locals {
  glue_database = coalesce(var.glue_database_name, replace(var.name_prefix, "-", "_"))
  json_serde    = "org.openx.data.jsonserde.JsonSerDe"
}

resource "aws_glue_catalog_database" "this" {
  count = var.enable_glue_catalog ? 1 : 0

  name        = local.glue_database
  description = "tripline: normalized osquery events and alerts in s3://${local.bucket_name}"
}

# normalized/YYYY/MM/DD/HH/<object>.ndjson.zst (or .gz): one JSON event per line. Athena picks
# the codec by the file extension, so objects written under either setting read alike.
resource "aws_glue_catalog_table" "normalized" {
  count = var.enable_glue_catalog ? 1 : 0

  database_name = aws_glue_catalog_database.this[0].name
  name          = "normalized"
  description   = "One row per osquery result row or status line (the tripline event contract)"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                    = "TRUE"
    "classification"              = "json"
    "compressionType"             = var.output_compression
    "projection.enabled"          = "true"
    "projection.dt.type"          = "date"
    "projection.dt.format"        = "yyyy/MM/dd/HH"
    "projection.dt.range"         = "${var.glue_projection_start}/00,NOW"
    "projection.dt.interval"      = "1"
    "projection.dt.interval.unit" = "HOURS"
    "storage.location.template"   = "s3://${local.bucket_name}/${local.normalized_prefix}$${dt}/"
  }

  partition_keys {
    name    = "dt"
    type    = "string"
    comment = "yyyy/MM/dd/HH of the Firehose delivery (UTC)"
  }

  storage_descriptor {
    location      = "s3://${local.bucket_name}/${local.normalized_prefix}"
    input_format  = "org.apache.hadoop.mapred.TextInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

    ser_de_info {
      name                  = "json"
      serialization_library = local.json_serde
      parameters = {
        "ignore.malformed.json" = "true"
      }
    }

    columns {
      name = "kind"
      type = "string"
    }
    columns {
      name = "name"
      type = "string"
    }
    columns {
      name = "pack"
      type = "string"
    }
    columns {
      name = "query"
      type = "string"
    }
    columns {
      name    = "tables"
      type    = "array<string>"
      comment = "the osquery tables the row came from, the one that explains it best first"
    }
    columns {
      name    = "tables_from"
      type    = "string"
      comment = "sql, columns or null: how tables were known"
    }
    columns {
      name    = "tables_ambiguous"
      type    = "boolean"
      comment = "present (true) only when several table sets explained the columns equally"
    }
    columns {
      name = "host"
      type = "string"
    }
    columns {
      name = "action"
      type = "string"
    }
    columns {
      name    = "columns"
      type    = "map<string,string>"
      comment = "the osquery row, values as text"
    }
    columns {
      name = "decorations"
      type = "map<string,string>"
    }
    columns {
      name    = "time"
      type    = "string"
      comment = "RFC 3339 UTC; quote it in queries (\"time\")"
    }
    columns {
      name = "unix_time"
      type = "bigint"
    }
    columns {
      name = "epoch"
      type = "bigint"
    }
    columns {
      name = "counter"
      type = "bigint"
    }
    columns {
      name = "numerics"
      type = "boolean"
    }
    columns {
      name = "severity"
      type = "bigint"
    }
    columns {
      name = "filename"
      type = "string"
    }
    columns {
      name = "line"
      type = "bigint"
    }
    columns {
      name = "message"
      type = "string"
    }
    columns {
      name = "version"
      type = "string"
    }
    columns {
      name    = "source"
      type    = "map<string,string>"
      comment = "bucket, key or path, record, row"
    }
    columns {
      name = "id"
      type = "string"
    }
    columns {
      name    = "indicators"
      type    = "map<string,array<string>>"
      comment = "ip, domain, md5, sha1, sha256, user"
    }
    columns {
      name    = "attack"
      type    = "array<struct<id:string,name:string,tactics:array<string>>>"
      comment = "ATT&CK techniques, written by the parse stage: by the query's mapping, else the first table's"
    }
  }
}

# alerts/YYYY/MM/DD/<id>.json: one alert per object.
resource "aws_glue_catalog_table" "alerts" {
  count = var.enable_glue_catalog ? 1 : 0

  database_name = aws_glue_catalog_database.this[0].name
  name          = "alerts"
  description   = "tripline alerts (rule, severity, hosts, ATT&CK techniques, sample events)"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                    = "TRUE"
    "classification"              = "json"
    "projection.enabled"          = "true"
    "projection.dt.type"          = "date"
    "projection.dt.format"        = "yyyy/MM/dd"
    "projection.dt.range"         = "${var.glue_projection_start},NOW"
    "projection.dt.interval"      = "1"
    "projection.dt.interval.unit" = "DAYS"
    "storage.location.template"   = "s3://${local.bucket_name}/${local.alerts_prefix}$${dt}/"
  }

  partition_keys {
    name    = "dt"
    type    = "string"
    comment = "yyyy/MM/dd the alert was written (UTC)"
  }

  storage_descriptor {
    location      = "s3://${local.bucket_name}/${local.alerts_prefix}"
    input_format  = "org.apache.hadoop.mapred.TextInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

    ser_de_info {
      name                  = "json"
      serialization_library = local.json_serde
      parameters = {
        "ignore.malformed.json" = "true"
      }
    }

    columns {
      name = "id"
      type = "string"
    }
    columns {
      name = "rule"
      type = "struct<name:string,id:string,title:string,level:string,description:string,runbook:string>"
    }
    columns {
      name = "severity"
      type = "string"
    }
    columns {
      name = "title"
      type = "string"
    }
    columns {
      name    = "dedup"
      type    = "string"
      comment = "JSON: fields, values, window, window_start"
    }
    columns {
      name = "first_seen"
      type = "string"
    }
    columns {
      name = "last_seen"
      type = "string"
    }
    columns {
      name    = "time_from"
      type    = "string"
      comment = "event, object (the events had no time: placed by their object's) or mixed"
    }
    columns {
      name = "count"
      type = "bigint"
    }
    columns {
      name = "hosts"
      type = "array<string>"
    }
    columns {
      name = "host_count"
      type = "bigint"
    }
    columns {
      name = "attack"
      type = "array<struct<id:string,name:string,tactics:array<string>>>"
    }
    columns {
      name = "query"
      type = "string"
    }
    columns {
      name    = "samples"
      type    = "string"
      comment = "JSON array of the first matching events"
    }
  }
}

# quarantine/YYYY/MM/DD/HH/<object>.ndjson.zst (or .gz): one entry per line, for a record that
# could not be normalized or, with `object`, for an object that could not be read as osquery.
resource "aws_glue_catalog_table" "quarantine" {
  count = var.enable_glue_catalog ? 1 : 0

  database_name = aws_glue_catalog_database.this[0].name
  name          = "quarantine"
  description   = "Quarantined osquery records and objects, each with its reason (the tripline quarantine entry)"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                    = "TRUE"
    "classification"              = "json"
    "compressionType"             = var.output_compression
    "projection.enabled"          = "true"
    "projection.dt.type"          = "date"
    "projection.dt.format"        = "yyyy/MM/dd/HH"
    "projection.dt.range"         = "${var.glue_projection_start}/00,NOW"
    "projection.dt.interval"      = "1"
    "projection.dt.interval.unit" = "HOURS"
    "storage.location.template"   = "s3://${local.bucket_name}/${local.quarantine_prefix}$${dt}/"
  }

  partition_keys {
    name    = "dt"
    type    = "string"
    comment = "yyyy/MM/dd/HH of the Firehose delivery (UTC)"
  }

  storage_descriptor {
    location      = "s3://${local.bucket_name}/${local.quarantine_prefix}"
    input_format  = "org.apache.hadoop.mapred.TextInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

    ser_de_info {
      name                  = "json"
      serialization_library = local.json_serde
      parameters = {
        "ignore.malformed.json" = "true"
      }
    }

    columns {
      name    = "source"
      type    = "map<string,string>"
      comment = "bucket, key or path, record (0: the object's own entry)"
    }
    columns {
      name    = "reason"
      type    = "string"
      comment = "a sentence for a record; a code (gzip_corrupt, not_osquery, ...) for an object"
    }
    columns {
      name    = "raw"
      type    = "string"
      comment = "the record's (or first line's) first 4 KiB"
    }
    columns {
      name = "bytes"
      type = "bigint"
    }
    columns {
      name    = "object"
      type    = "struct<offset:bigint,compressed_offset:bigint,lines:bigint,message:string>"
      comment = "only on an object's own entry"
    }
  }
}
