variable "project" {
  description = "Project name."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "stream_name" {
  description = "Kinesis data stream name."
  type        = string
}

variable "stream_mode" {
  description = "PROVISIONED or ON_DEMAND."
  type        = string
  default     = "PROVISIONED"
}

variable "shard_count" {
  description = "Shards in PROVISIONED mode."
  type        = number
  default     = 2
}

variable "retention_hours" {
  description = "Stream retention (hours)."
  type        = number
  default     = 24
}

variable "firehose_name" {
  description = "Firehose delivery stream name."
  type        = string
}

variable "raw_bucket_arn" {
  description = "ARN of the raw bucket."
  type        = string
}

variable "raw_prefix" {
  description = "Key prefix of the raw table (e.g. raw/)."
  type        = string
}

variable "glue_database" {
  description = "Glue database holding the raw table schema."
  type        = string
}

variable "raw_table" {
  description = "Glue table whose schema drives the Parquet conversion."
  type        = string
}

variable "lease_table_name" {
  description = "DynamoDB shard-lease table name."
  type        = string
}

variable "firehose_buffer_mb" {
  description = "Firehose buffer size (MB); 64-128 because the delivery converts records to Parquet."
  type        = number
  default     = 128

  validation {
    condition     = var.firehose_buffer_mb >= 64 && var.firehose_buffer_mb <= 128
    error_message = "firehose_buffer_mb must be 64-128 (Firehose requires >= 64 MB with Parquet conversion)."
  }
}

variable "firehose_buffer_seconds" {
  description = "Firehose buffer interval (s)."
  type        = number
  default     = 300
}

variable "log_retention_days" {
  description = "CloudWatch log retention (days)."
  type        = number
  default     = 1
}
