output "function_name" {
  description = "Lambda function name."
  value       = aws_lambda_function.this.function_name
}

output "on_failure_queue_url" {
  description = "SQS queue receiving failed batches."
  value       = aws_sqs_queue.on_failure.url
}
