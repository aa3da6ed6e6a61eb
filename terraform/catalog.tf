# Optional Athena access: a Glue table over metrics/ whose partitions are
# projected (no crawler, no MSCK REPAIR), and a workgroup with encrypted results.
resource "aws_glue_catalog_database" "this" {
  count = var.enable_athena ? 1 : 0

  name        = replace("${var.name}_telemetry", "-", "_")
  description = "gpulake normalized GPU telemetry"
}

resource "aws_glue_catalog_table" "metrics" {
  count = var.enable_athena ? 1 : 0

  name          = "metrics"
  database_name = aws_glue_catalog_database.this[0].name
  description   = "One row per GPU sample, all input formats (gpulake canonical schema)"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "classification"                = "parquet"
    "EXTERNAL"                      = "TRUE"
    "projection.enabled"            = "true"
    "projection.source.type"        = "enum"
    "projection.source.values"      = join(",", local.sources)
    "projection.date.type"          = "date"
    "projection.date.format"        = "yyyy-MM-dd"
    "projection.date.range"         = "${var.athena_projection_start_date},NOW"
    "projection.date.interval"      = "1"
    "projection.date.interval.unit" = "DAYS"
    "storage.location.template"     = "s3://${aws_s3_bucket.this["processed"].id}/${local.processed_prefixes.metrics}source=$${source}/date=$${date}/"
  }

  # source is also a column inside the files; Athena takes it from the partition.
  partition_keys {
    name = "source"
    type = "string"
  }

  partition_keys {
    name = "date"
    type = "string"
  }

  storage_descriptor {
    location      = "s3://${aws_s3_bucket.this["processed"].id}/${local.processed_prefixes.metrics}"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    dynamic "columns" {
      for_each = local.metrics_columns

      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

locals {
  # gpulake.schema.METRICS_SCHEMA without source (a partition key here).
  metrics_columns = [
    { name = "time", type = "timestamp" },
    { name = "node", type = "string" },
    { name = "gpu", type = "string" },
    { name = "gpu_uuid", type = "string" },
    { name = "gpu_model", type = "string" },
    { name = "gpu_temp_c", type = "double" },
    { name = "mem_temp_c", type = "double" },
    { name = "power_w", type = "double" },
    { name = "util_pct", type = "double" },
    { name = "sm_clock_mhz", type = "double" },
    { name = "mem_clock_mhz", type = "double" },
    { name = "fb_used_mib", type = "double" },
    { name = "throttle_reasons", type = "bigint" },
    { name = "extra", type = "map<string,double>" },
    { name = "labels", type = "map<string,string>" },
    { name = "source_object", type = "string" },
  ]
}

resource "aws_athena_workgroup" "this" {
  count = var.enable_athena ? 1 : 0

  name          = var.name
  description   = "gpulake queries; results encrypted, kept 7 days"
  force_destroy = var.force_destroy

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true

    result_configuration {
      output_location = "s3://${aws_s3_bucket.this["processed"].id}/${local.athena_results_prefix}"

      encryption_configuration {
        encryption_option = var.kms_key_arn == null ? "SSE_S3" : "SSE_KMS"
        kms_key_arn       = var.kms_key_arn
      }
    }
  }
}
