variable "database_name" {
  description = "Glue database name."
  type        = string
}

variable "workgroup_name" {
  description = "Athena workgroup name."
  type        = string
}

variable "bucket_names" {
  description = "Bucket names by role (raw, curated, models, athena_results); lake_schema.json tables name their bucket role."
  type        = map(string)
}

variable "athena_results_bucket" {
  description = "Bucket for Athena query results."
  type        = string
}

variable "bytes_scanned_cutoff" {
  description = "Per-query bytes-scanned limit."
  type        = number
}

variable "projection_range_start" {
  description = "First dt of the date partition projection (yyyy-MM-dd)."
  type        = string
  default     = "2010-01-01"
}
