resource "aws_glue_catalog_database" "this" {
  name        = var.database_name
  description = "PetroStream lake: 3W sensor readings, scores and anomaly events."
}

# One table per lake_schema.json entry, partitioned by dt only (projected, no crawler / MSCK):
# s3://<bucket>/<prefix>dt=YYYY-MM-DD/. `well` is an ordinary string column (the last one) inside
# the Parquet files, so a flush writes one object holding every well instead of one small object per
# well. Per-well queries filter on the column (Parquet min/max statistics let Athena skip row groups);
# the same tables serve fleet-wide queries.
resource "aws_glue_catalog_table" "this" {
  for_each = local.tables

  name          = each.key
  database_name = aws_glue_catalog_database.this.name
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                    = "TRUE"
    "classification"              = "parquet"
    "parquet.compression"         = "ZSTD"
    "projection.enabled"          = "true"
    "projection.dt.type"          = "date"
    "projection.dt.format"        = "yyyy-MM-dd"
    "projection.dt.range"         = "${var.projection_range_start},NOW"
    "projection.dt.interval"      = "1"
    "projection.dt.interval.unit" = "DAYS"
    "storage.location.template"   = "s3://${var.bucket_names[each.value.bucket]}/${each.value.prefix}dt=$${dt}/"
    "has_encrypted_data"          = "false"
  }

  dynamic "partition_keys" {
    for_each = local.partition_keys
    content {
      name = partition_keys.value[0]
      type = partition_keys.value[1]
    }
  }

  storage_descriptor {
    location      = "s3://${var.bucket_names[each.value.bucket]}/${each.value.prefix}"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    compressed    = false

    ser_de_info {
      name                  = "parquet"
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    dynamic "columns" {
      for_each = each.value.columns
      content {
        name = columns.value[0]
        type = columns.value[1]
      }
    }
  }
}

resource "aws_athena_workgroup" "this" {
  name          = var.workgroup_name
  description   = "PetroStream queries (dashboard, Power BI): enforced settings, bytes-scanned limit."
  force_destroy = true

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.bytes_scanned_cutoff

    result_configuration {
      output_location = "s3://${var.athena_results_bucket}/results/"

      encryption_configuration {
        encryption_option = "SSE_S3"
      }
    }
  }
}
