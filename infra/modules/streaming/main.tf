data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  glue_catalog_arn  = "arn:${data.aws_partition.current.partition}:glue:${var.region}:${data.aws_caller_identity.current.account_id}:catalog"
  glue_database_arn = "arn:${data.aws_partition.current.partition}:glue:${var.region}:${data.aws_caller_identity.current.account_id}:database/${var.glue_database}"
  glue_table_arn    = "arn:${data.aws_partition.current.partition}:glue:${var.region}:${data.aws_caller_identity.current.account_id}:table/${var.glue_database}/${var.raw_table}"
}

# ---------------------------------------------------------------- Kinesis
resource "aws_kinesis_stream" "ingest" {
  name             = var.stream_name
  shard_count      = var.stream_mode == "PROVISIONED" ? var.shard_count : null
  retention_period = var.retention_hours
  encryption_type  = "KMS"
  kms_key_id       = "alias/aws/kinesis"

  stream_mode_details {
    stream_mode = var.stream_mode
  }
}

# ---------------------------------------------------------------- DynamoDB shard leases
resource "aws_dynamodb_table" "leases" {
  name         = var.lease_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "shard_id"

  attribute {
    name = "shard_id"
    type = "S"
  }

  server_side_encryption {
    enabled = true
  }

  point_in_time_recovery {
    enabled = true
  }
}

# ---------------------------------------------------------------- Firehose -> raw bucket (Parquet)
resource "aws_cloudwatch_log_group" "firehose" {
  name              = "/aws/kinesisfirehose/${var.firehose_name}"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_stream" "firehose" {
  name           = "S3Delivery"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

data "aws_iam_policy_document" "firehose_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_iam_policy_document" "firehose" {
  statement {
    sid = "ReadStream"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetShardIterator",
      "kinesis:GetRecords",
      "kinesis:ListShards",
    ]
    resources = [aws_kinesis_stream.ingest.arn]
  }

  statement {
    sid = "WriteRaw"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:GetBucketLocation",
      "s3:GetObject",
      "s3:ListBucket",
      "s3:ListBucketMultipartUploads",
      "s3:PutObject",
    ]
    resources = [var.raw_bucket_arn, "${var.raw_bucket_arn}/*"]
  }

  statement {
    sid = "ReadSchema"
    actions = [
      "glue:GetTable",
      "glue:GetTableVersion",
      "glue:GetTableVersions",
    ]
    resources = [local.glue_catalog_arn, local.glue_database_arn, local.glue_table_arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.firehose.arn}:log-stream:*"]
  }
}

resource "aws_iam_role" "firehose" {
  name               = "${var.project}-firehose"
  assume_role_policy = data.aws_iam_policy_document.firehose_assume.json
}

resource "aws_iam_role_policy" "firehose" {
  name   = "${var.project}-firehose"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose.json
}

resource "aws_kinesis_firehose_delivery_stream" "raw" {
  name        = var.firehose_name
  destination = "extended_s3"

  kinesis_source_configuration {
    kinesis_stream_arn = aws_kinesis_stream.ingest.arn
    role_arn           = aws_iam_role.firehose.arn
  }

  extended_s3_configuration {
    role_arn   = aws_iam_role.firehose.arn
    bucket_arn = var.raw_bucket_arn

    # Hive-style dt partition (arrival date) matching the Glue projection; no dynamic partitioning.
    # Each record's `well` field lands in the `well` column through the Glue schema below, so one
    # object per flush holds every well (instead of one small object per well).
    prefix              = "${var.raw_prefix}dt=!{timestamp:yyyy-MM-dd}/"
    error_output_prefix = "firehose-errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"
    # Explicit, not left to Firehose's default: `petrostream compact` (and the lake readers) take only
    # keys ending in .parquet.
    file_extension     = ".parquet"
    buffering_size     = var.firehose_buffer_mb
    buffering_interval = var.firehose_buffer_seconds

    data_format_conversion_configuration {
      enabled = true

      input_format_configuration {
        deserializer {
          open_x_json_ser_de {}
        }
      }

      output_format_configuration {
        serializer {
          parquet_ser_de {
            compression = "SNAPPY"
          }
        }
      }

      schema_configuration {
        database_name = var.glue_database
        table_name    = var.raw_table
        role_arn      = aws_iam_role.firehose.arn
        region        = var.region
        version_id    = "LATEST"
      }
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.firehose.name
    }
  }

  depends_on = [aws_iam_role_policy.firehose]
}
