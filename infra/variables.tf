# ---------------------------------------------------------------- general
variable "project" {
  description = "Project name: prefix of every resource name (matches PETROSTREAM_PROJECT)."
  type        = string
  default     = "petrostream"
}

variable "environment" {
  description = "Environment label (dev, prod), used for tags only."
  type        = string
  default     = "dev"
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "bucket_prefix" {
  description = "Prefix of the S3 bucket names (<prefix>-raw, -curated, -models, -athena-results). Null means var.project, which gives the petrostream.settings defaults."
  type        = string
  default     = null
}

variable "image_tag" {
  description = "Container image tag deployed to ECS (project_up.sh and deploy.yml pass the git SHA)."
  type        = string
  default     = "latest"
}

# ---------------------------------------------------------------- network
variable "vpc_id" {
  description = "VPC to deploy into. Null uses the account's default VPC and its default subnets."
  type        = string
  default     = null
}

variable "public_subnet_ids" {
  description = "Public subnets for the ALB (and for tasks when no private subnets are given). Empty: the default VPC's default subnets."
  type        = list(string)
  default     = []
}

variable "private_subnet_ids" {
  description = "Private subnets with a NAT route. When set, tasks run there without public IPs; otherwise tasks get public IPs and security groups admit only the ALB."
  type        = list(string)
  default     = []
}

variable "allowed_cidrs" {
  description = "CIDR blocks allowed to reach the ALB. No default opens it to the world: set your office/VPN ranges."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "Every entry of allowed_cidrs must be a valid CIDR block."
  }
}

variable "certificate_arn" {
  description = "ACM certificate for HTTPS listeners. Null serves plain HTTP (demo only; dashboard auth needs HTTPS)."
  type        = string
  default     = null
}

variable "dashboard_auth" {
  description = "Authentication on the dashboard listener: none, oidc or cognito (oidc/cognito need certificate_arn)."
  type        = string
  default     = "none"

  validation {
    condition     = contains(["none", "oidc", "cognito"], var.dashboard_auth)
    error_message = "dashboard_auth must be none, oidc or cognito."
  }
}

variable "dashboard_oidc" {
  description = "OIDC settings when dashboard_auth = oidc."
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
  description = "Cognito settings when dashboard_auth = cognito."
  type = object({
    user_pool_arn       = string
    user_pool_client_id = string
    user_pool_domain    = string
  })
  default = null
}

# ---------------------------------------------------------------- streaming
variable "stream_mode" {
  description = "Kinesis capacity mode: PROVISIONED (shard_count shards) or ON_DEMAND."
  type        = string
  default     = "PROVISIONED"

  validation {
    condition     = contains(["PROVISIONED", "ON_DEMAND"], var.stream_mode)
    error_message = "stream_mode must be PROVISIONED or ON_DEMAND."
  }
}

variable "shard_count" {
  description = "Kinesis shards in PROVISIONED mode (matches PETROSTREAM_STREAM_SHARDS)."
  type        = number
  default     = 2
}

variable "stream_retention_hours" {
  description = "Kinesis retention in hours (24 is the free tier of retention)."
  type        = number
  default     = 24
}

variable "firehose_buffer_mb" {
  description = "Firehose buffer size in MB (64-128: Parquet record format conversion needs >= 64)."
  type        = number
  default     = 128

  validation {
    condition     = var.firehose_buffer_mb >= 64 && var.firehose_buffer_mb <= 128
    error_message = "firehose_buffer_mb must be 64-128 (Firehose requires >= 64 MB with Parquet conversion)."
  }
}

variable "firehose_buffer_seconds" {
  description = "Firehose buffer interval in seconds."
  type        = number
  default     = 300
}

# ---------------------------------------------------------------- catalog
variable "athena_bytes_scanned_cutoff" {
  description = "Per-query bytes-scanned limit of the Athena workgroup (matches PETROSTREAM_ATHENA_BYTES_SCANNED_CUTOFF)."
  type        = number
  default     = 10737418240
}

variable "athena_results_expiration_days" {
  description = "Days before Athena query results expire."
  type        = number
  default     = 7
}

# ---------------------------------------------------------------- compute
variable "use_spot" {
  description = "Run ECS services on FARGATE_SPOT (default) instead of FARGATE on-demand."
  type        = bool
  default     = true
}

variable "inference_cpu" {
  description = "Inference task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 512
}

variable "inference_memory" {
  description = "Inference task memory (MiB)."
  type        = number
  default     = 1024
}

variable "inference_min_tasks" {
  description = "Autoscaling minimum of the inference service."
  type        = number
  default     = 1
}

variable "inference_max_tasks" {
  description = "Autoscaling maximum of the inference service."
  type        = number
  default     = 4
}

variable "autoscaling_cpu_target" {
  description = "Target average CPU utilisation (%) of the inference service."
  type        = number
  default     = 70
}

variable "autoscaling_memory_target" {
  description = "Target average memory utilisation (%) of the inference service."
  type        = number
  default     = 80
}

variable "dashboard_cpu" {
  description = "Dashboard task CPU units."
  type        = number
  default     = 256
}

variable "dashboard_memory" {
  description = "Dashboard task memory (MiB)."
  type        = number
  default     = 512
}

variable "dashboard_desired_count" {
  description = "Dashboard tasks."
  type        = number
  default     = 1
}

variable "producer_cpu" {
  description = "Producer (3W replay) task CPU units."
  type        = number
  default     = 256
}

variable "producer_memory" {
  description = "Producer task memory (MiB)."
  type        = number
  default     = 512
}

variable "producer_desired_count" {
  description = "Producer tasks (0 to stop replaying)."
  type        = number
  default     = 1
}

variable "compaction_enabled" {
  description = "Run petrostream compact daily (scored_readings, then raw_readings) as a scheduled Fargate task."
  type        = bool
  default     = true
}

variable "compaction_schedule" {
  description = "EventBridge Scheduler expression (UTC) of the daily compaction. 07:30: yesterday's partitions have been quiet for more than the command's 6 h --quiet-hours, so they are compacted the same morning."
  type        = string
  default     = "cron(30 7 * * ? *)"

  validation {
    condition     = can(regex("^(cron|rate)\\(.+\\)$", var.compaction_schedule))
    error_message = "compaction_schedule must be an EventBridge Scheduler cron(...) or rate(...) expression."
  }
}

variable "model_name" {
  description = "Registered model name; the export lives at s3://<models bucket>/<model_name>/v<N>/ with champion.json."
  type        = string
  default     = "petrostream-anomaly"
}

# ---------------------------------------------------------------- lambda
variable "enable_lambda" {
  description = "Create the optional Lambda inference path (Kinesis event-source mapping + SQS on-failure destination)."
  type        = bool
  default     = false
}

variable "lambda_memory_mb" {
  description = "Lambda memory (MB)."
  type        = number
  default     = 1024
}

variable "lambda_batch_size" {
  description = "Records per Lambda invocation."
  type        = number
  default     = 500
}

# ---------------------------------------------------------------- observability and cost
variable "log_retention_days" {
  description = "CloudWatch log retention (days)."
  type        = number
  default     = 1
}

variable "alert_emails" {
  description = "E-mail addresses notified by alarms and budgets (empty: no subscriptions)."
  type        = list(string)
  default     = []
}

variable "budget_limits_usd" {
  description = "Monthly AWS Budgets (name suffix -> USD)."
  type        = map(number)
  default = {
    "monthly-10"  = 10
    "monthly-120" = 120
  }
}

variable "iterator_age_alarm_ms" {
  description = "Alarm when the Kinesis consumer falls this far behind (ms)."
  type        = number
  default     = 60000
}

# ---------------------------------------------------------------- delivery
variable "github_repository" {
  description = "owner/name of the GitHub repository allowed to assume the deploy role (empty: no role)."
  type        = string
  default     = ""
}

variable "create_github_oidc_provider" {
  description = "Create the GitHub Actions OIDC provider (false if the account already has one)."
  type        = bool
  default     = true
}

variable "terraform_state_bucket" {
  description = "Remote-state bucket the deploy role may use (empty: none)."
  type        = string
  default     = ""
}

variable "terraform_lock_table" {
  description = "Remote-state lock table the deploy role may use (empty: none)."
  type        = string
  default     = ""
}
