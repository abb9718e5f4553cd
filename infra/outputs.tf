output "alb_dns_name" {
  description = "DNS name of the Application Load Balancer."
  value       = module.compute.alb_dns_name
}

output "api_url" {
  description = "Inference API base URL (/health, /ready, /metrics)."
  value       = module.compute.api_url
}

output "dashboard_url" {
  description = "Streamlit dashboard URL."
  value       = module.compute.dashboard_url
}

output "bucket_names" {
  description = "S3 bucket names by role (raw, curated, models, athena_results)."
  value       = module.storage.bucket_names
}

output "ecr_repository_urls" {
  description = "ECR repository URLs by image (inference, producer, dashboard)."
  value       = module.compute.ecr_repository_urls
}

output "ecs_cluster_name" {
  description = "ECS cluster name."
  value       = module.compute.cluster_name
}

output "ecs_service_names" {
  description = "ECS service names by component."
  value       = module.compute.service_names
}

output "stream_name" {
  description = "Kinesis data stream name."
  value       = module.streaming.stream_name
}

output "firehose_name" {
  description = "Firehose delivery stream name."
  value       = module.streaming.firehose_name
}

output "lease_table" {
  description = "DynamoDB lease table name."
  value       = module.streaming.lease_table_name
}

output "glue_database" {
  description = "Glue database name."
  value       = module.catalog.database_name
}

output "athena_workgroup" {
  description = "Athena workgroup name."
  value       = module.catalog.workgroup_name
}

output "lambda_function_name" {
  description = "Lambda inference function (null when disabled)."
  value       = var.enable_lambda ? module.lambda_inference[0].function_name : null
}

output "github_deploy_role_arn" {
  description = "Role assumed by GitHub Actions through OIDC (null without github_repository)."
  value       = var.github_repository == "" ? null : module.github_oidc[0].role_arn
}

output "github_terraform_role_arn" {
  description = "Terraform plan/apply role assumed by GitHub Actions (null without github_repository)."
  value       = var.github_repository == "" ? null : module.github_oidc[0].terraform_role_arn
}
