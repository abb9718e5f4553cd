variable "bucket_names" {
  description = "Bucket names by role: raw, curated, models, athena_results."
  type        = map(string)

  validation {
    condition     = alltrue([for k in ["raw", "curated", "models", "athena_results"] : contains(keys(var.bucket_names), k)])
    error_message = "bucket_names needs the keys raw, curated, models and athena_results."
  }
}

variable "athena_results_expiration_days" {
  description = "Days before Athena query results expire."
  type        = number
  default     = 7
}

variable "model_noncurrent_days" {
  description = "Days a superseded model object version is kept (the newest 5 are always kept)."
  type        = number
  default     = 180
}
