output "raw_bucket" {
  description = "Bucket to upload raw telemetry to (triggers ingest)."
  value       = aws_s3_bucket.this["raw"].id
}

output "processed_bucket" {
  description = "Bucket holding metrics/, alerts/ and quarantine/ (the loaders read it)."
  value       = aws_s3_bucket.this["processed"].id
}

output "processed_prefix" {
  description = "Key prefix of the processed layout inside processed_bucket."
  value       = var.processed_prefix
}

output "upload_command" {
  description = "How to upload a dcgm-exporter scrape (use gpuz/, nvidia-smi/ or thermal-csv/ for the other formats)."
  value       = "aws s3 cp scrape.prom s3://${aws_s3_bucket.this["raw"].id}/${var.raw_prefix}dcgm/<node>/scrape.prom --metadata node=<node>"
}

output "queue_url" {
  description = "Ingest queue fed by the raw bucket's notifications."
  value       = aws_sqs_queue.ingest.url
}

output "dlq_url" {
  description = "Dead-letter queue: messages that failed max_receive_count times."
  value       = aws_sqs_queue.dlq.url
}

output "alerts_topic_arn" {
  description = "SNS topic of GPU alerts and pipeline alarms."
  value       = aws_sns_topic.alerts.arn
}

output "function_name" {
  description = "Name of the ingest Lambda function."
  value       = aws_lambda_function.ingest.function_name
}

output "log_group" {
  description = "CloudWatch log group of the ingest function."
  value       = aws_cloudwatch_log_group.ingest.name
}

output "athena_table" {
  description = "Glue table to query with Athena (null when enable_athena = false)."
  value       = var.enable_athena ? "${aws_glue_catalog_database.this[0].name}.${aws_glue_catalog_table.metrics[0].name}" : null
}

output "athena_workgroup" {
  description = "Athena workgroup with the encrypted results location (null when enable_athena = false)."
  value       = var.enable_athena ? aws_athena_workgroup.this[0].name : null
}

output "episodes_table" {
  description = "DynamoDB table of alert episodes (open and recently closed)."
  value       = aws_dynamodb_table.episodes.name
}

output "sweeper_function_name" {
  description = "Lambda that resolves alert episodes every 5 minutes."
  value       = aws_lambda_function.sweeper.function_name
}

output "loader_queue_url" {
  description = "Queue of processed-object notifications the loader consumes (null without a loader); its age of oldest message is the loader's lag."
  value       = local.loader_enabled ? aws_sqs_queue.loader[0].url : null
}

output "loader_function_name" {
  description = "Name of the loader Lambda function (null without a loader)."
  value       = local.loader_enabled ? aws_lambda_function.loader[0].function_name : null
}
