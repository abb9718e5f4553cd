output "alb_dns_name" {
  description = "ALB DNS name."
  value       = aws_lb.this.dns_name
}

output "alb_arn_suffix" {
  description = "ALB ARN suffix (CloudWatch dimension)."
  value       = aws_lb.this.arn_suffix
}

output "api_url" {
  description = "Inference API URL."
  value       = "${local.scheme}://${aws_lb.this.dns_name}:${local.api_port}"
}

output "dashboard_url" {
  description = "Dashboard URL."
  value       = "${local.scheme}://${aws_lb.this.dns_name}:${local.dashboard_port}"
}

output "ecr_repository_urls" {
  description = "ECR repository URLs by component."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "ecr_repository_arns" {
  description = "ECR repository ARNs by component."
  value       = { for k, r in aws_ecr_repository.this : k => r.arn }
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ECS cluster ARN."
  value       = aws_ecs_cluster.this.arn
}

output "service_names" {
  description = "ECS service names by component."
  value       = { for k, s in aws_ecs_service.this : k => s.name }
}

output "service_arns" {
  description = "ECS service ARNs by component."
  value       = { for k, s in aws_ecs_service.this : k => s.id }
}

output "role_arns" {
  description = "Execution and task role ARNs (for iam:PassRole by the deploy role)."
  value       = concat([aws_iam_role.execution.arn], [for r in aws_iam_role.task : r.arn])
}

output "app_environment" {
  description = "PETROSTREAM_* environment of the containers."
  value       = var.app_environment
}

output "compaction_task_definition_arn" {
  description = "Compaction task definition ARN without its revision (null when compaction_enabled is false)."
  value       = one(aws_ecs_task_definition.compaction[*].arn_without_revision)
}

output "compaction_log_group_name" {
  description = "Log group of the compaction task (null when compaction_enabled is false)."
  value       = one(aws_cloudwatch_log_group.compaction[*].name)
}

output "compaction_dlq_name" {
  description = "Dead-letter queue of the compaction schedule (null when compaction_enabled is false)."
  value       = one(aws_sqs_queue.compaction_dlq[*].name)
}
