output "bucket_names" {
  description = "Bucket names by role."
  value       = { for k, b in aws_s3_bucket.this : k => b.id }
}

output "bucket_arns" {
  description = "Bucket ARNs by role."
  value       = { for k, b in aws_s3_bucket.this : k => b.arn }
}
