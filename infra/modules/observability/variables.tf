variable "project" {
  description = "Project name."
  type        = string
}

variable "stream_name" {
  description = "Kinesis stream name."
  type        = string
}

variable "alb_arn_suffix" {
  description = "ALB ARN suffix."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster name."
  type        = string
}

variable "inference_service" {
  description = "Inference ECS service name."
  type        = string
}

variable "alert_emails" {
  description = "E-mail subscribers of alarms and budgets."
  type        = list(string)
  default     = []
}

variable "budget_limits_usd" {
  description = "Monthly budgets (name suffix -> USD)."
  type        = map(number)
}

variable "iterator_age_alarm_ms" {
  description = "Iterator-age alarm threshold (ms)."
  type        = number
  default     = 60000
}

variable "alb_5xx_threshold" {
  description = "5xx responses per 5 minutes that raise the alarm."
  type        = number
  default     = 10
}

variable "cpu_alarm_percent" {
  description = "Inference CPU (%) that raises the alarm (above the 70 % scaling target)."
  type        = number
  default     = 90
}

variable "cluster_arn" {
  description = "ECS cluster ARN (the compaction-failed rule matches tasks of this cluster only)."
  type        = string
}

variable "compaction_enabled" {
  description = "Create the compaction alerts (failed-task EventBridge rule, dead-letter alarm) to the alerts topic; the root compaction_enabled."
  type        = bool
  default     = false
}

variable "compaction_task_definition_arn" {
  description = "Compaction task definition ARN without its revision (null when compaction is off)."
  type        = string
  default     = null
}

variable "compaction_log_group" {
  description = "Log group of the compaction task, named in the alert (null when compaction is off)."
  type        = string
  default     = null
}

variable "compaction_dlq_name" {
  description = "Dead-letter queue of the compaction schedule, watched by an alarm (null when compaction is off)."
  type        = string
  default     = null
}
