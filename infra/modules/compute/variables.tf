variable "project" {
  description = "Project name (resource name prefix)."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "image_tag" {
  description = "Image tag deployed."
  type        = string
}

variable "vpc_id" {
  description = "VPC ID."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the ALB (and of tasks without private subnets)."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Private subnets with NAT for tasks; empty means public IPs."
  type        = list(string)
  default     = []
}

variable "allowed_cidrs" {
  description = "CIDRs admitted by the ALB security group."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate (null: HTTP listeners)."
  type        = string
  default     = null
}

variable "dashboard_auth" {
  description = "none, oidc or cognito."
  type        = string
  default     = "none"
}

variable "dashboard_oidc" {
  description = "OIDC settings for the dashboard listener."
  type = object({
    issuer                 = string
    authorization_endpoint = string
    token_endpoint         = string
    user_info_endpoint     = string
    client_id              = string
    client_secret          = string
  })
  default   = null
  sensitive = true
}

variable "dashboard_cognito" {
  description = "Cognito settings for the dashboard listener."
  type = object({
    user_pool_arn       = string
    user_pool_client_id = string
    user_pool_domain    = string
  })
  default = null
}

variable "use_spot" {
  description = "FARGATE_SPOT as the default capacity provider."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "CloudWatch log retention (days)."
  type        = number
  default     = 1
}

variable "inference_cpu" {
  description = "Inference CPU units."
  type        = number
}

variable "inference_memory" {
  description = "Inference memory (MiB)."
  type        = number
}

variable "inference_min_tasks" {
  description = "Inference autoscaling minimum."
  type        = number
}

variable "inference_max_tasks" {
  description = "Inference autoscaling maximum."
  type        = number
}

variable "autoscaling_cpu_target" {
  description = "CPU target (%)."
  type        = number
  default     = 70
}

variable "autoscaling_memory_target" {
  description = "Memory target (%)."
  type        = number
  default     = 80
}

variable "dashboard_cpu" {
  description = "Dashboard CPU units."
  type        = number
}

variable "dashboard_memory" {
  description = "Dashboard memory (MiB)."
  type        = number
}

variable "dashboard_desired_count" {
  description = "Dashboard tasks."
  type        = number
}

variable "producer_cpu" {
  description = "Producer CPU units."
  type        = number
}

variable "producer_memory" {
  description = "Producer memory (MiB)."
  type        = number
}

variable "producer_desired_count" {
  description = "Producer tasks."
  type        = number
}

variable "compaction_enabled" {
  description = "Create the daily compaction schedule, task definition, roles and dead-letter queue."
  type        = bool
  default     = true
}

variable "compaction_schedule" {
  description = "EventBridge Scheduler expression (UTC) of the compaction run."
  type        = string
  default     = "cron(30 7 * * ? *)"
}

variable "compaction_cpu" {
  description = "Compaction task CPU units."
  type        = number
  default     = 512
}

variable "compaction_memory" {
  description = "Compaction task memory (MiB): one ~128 MB output object is held in memory as Arrow."
  type        = number
  default     = 2048
}

variable "stream_arn" {
  description = "Kinesis stream ARN."
  type        = string
}

variable "lease_table_arn" {
  description = "DynamoDB lease table ARN."
  type        = string
}

variable "bucket_names" {
  description = "Bucket names by role."
  type        = map(string)
}

variable "bucket_arns" {
  description = "Bucket ARNs by role."
  type        = map(string)
}

variable "glue_database" {
  description = "Glue database."
  type        = string
}

variable "glue_table_names" {
  description = "Glue tables the dashboard may read."
  type        = list(string)
}

variable "workgroup_name" {
  description = "Athena workgroup."
  type        = string
}

variable "app_environment" {
  description = "PETROSTREAM_* environment passed to every container."
  type        = map(string)
}
