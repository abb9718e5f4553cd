variable "project" {
  description = "Project name."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "github_repository" {
  description = "owner/name allowed to assume the roles."
  type        = string
}

variable "create_oidc_provider" {
  description = "Create the token.actions.githubusercontent.com provider."
  type        = bool
  default     = true
}

variable "ecr_repository_arns" {
  description = "Repositories the deploy role pushes to."
  type        = list(string)
}

variable "cluster_arn" {
  description = "ECS cluster ARN."
  type        = string
}

variable "service_arns" {
  description = "ECS services the deploy role may update."
  type        = list(string)
}

variable "pass_role_arns" {
  description = "Roles the deploy role may pass to ECS."
  type        = list(string)
}

variable "models_bucket_arn" {
  description = "Models bucket (model promotion/export)."
  type        = string
}

variable "terraform_state_bucket" {
  description = "Remote-state bucket (empty: none)."
  type        = string
  default     = ""
}

variable "terraform_lock_table" {
  description = "Remote-state lock table (empty: none)."
  type        = string
  default     = ""
}
