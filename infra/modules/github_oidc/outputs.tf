output "role_arn" {
  description = "Deploy role (images, ECS rollouts, model export)."
  value       = aws_iam_role.deploy.arn
}

output "terraform_role_arn" {
  description = "Terraform plan/apply role."
  value       = aws_iam_role.terraform.arn
}
