output "database_name" {
  description = "Glue database name."
  value       = aws_glue_catalog_database.this.name
}

output "table_names" {
  description = "Glue table names by table key."
  value       = { for k, t in aws_glue_catalog_table.this : k => t.name }
}

output "table_arns" {
  description = "Glue table ARNs by table key."
  value       = { for k, t in aws_glue_catalog_table.this : k => t.arn }
}

output "table_prefixes" {
  description = "S3 key prefix of each table."
  value       = { for k, t in local.tables : k => t.prefix }
}

output "workgroup_name" {
  description = "Athena workgroup name."
  value       = aws_athena_workgroup.this.name
}
