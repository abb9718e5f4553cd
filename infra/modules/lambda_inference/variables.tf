variable "project" {
  description = "Project name."
  type        = string
}

variable "image_uri" {
  description = "Inference image (same scoring core as the ECS service)."
  type        = string
}

variable "stream_arn" {
  description = "Kinesis stream ARN."
  type        = string
}

variable "bucket_arns" {
  description = "Bucket ARNs by role."
  type        = map(string)
}

variable "memory_mb" {
  description = "Lambda memory (MB)."
  type        = number
  default     = 1024
}

variable "timeout_s" {
  description = "Lambda timeout (s)."
  type        = number
  default     = 120
}

variable "batch_size" {
  description = "Records per invocation."
  type        = number
  default     = 500
}

variable "reserved_concurrency" {
  description = "Reserved concurrency (caps cost; one per shard is enough)."
  type        = number
  default     = 4
}

variable "log_retention_days" {
  description = "CloudWatch log retention (days)."
  type        = number
  default     = 1
}

variable "environment" {
  description = "PETROSTREAM_* environment."
  type        = map(string)
}
