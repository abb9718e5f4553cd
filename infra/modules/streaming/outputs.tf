output "stream_name" {
  description = "Kinesis data stream name."
  value       = aws_kinesis_stream.ingest.name
}

output "stream_arn" {
  description = "Kinesis data stream ARN."
  value       = aws_kinesis_stream.ingest.arn
}

output "firehose_name" {
  description = "Firehose delivery stream name."
  value       = aws_kinesis_firehose_delivery_stream.raw.name
}

output "lease_table_name" {
  description = "DynamoDB lease table name."
  value       = aws_dynamodb_table.leases.name
}

output "lease_table_arn" {
  description = "DynamoDB lease table ARN."
  value       = aws_dynamodb_table.leases.arn
}
