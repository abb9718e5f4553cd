output "alerts_topic_arn" {
  description = "SNS topic of the alarms."
  value       = aws_sns_topic.alerts.arn
}

output "budget_names" {
  description = "AWS Budgets names."
  value       = [for b in aws_budgets_budget.monthly : b.name]
}
