# The ingest function: gpulake.handlers.ingest.handler from lambda/, packaged by
# scripts/package_lambda.py; its dependencies come from our own layer (layers.tf).
resource "aws_cloudwatch_log_group" "ingest" {
  #checkov:skip=CKV_AWS_158:Logs hold object keys and counts, no telemetry values or secrets; CloudWatch Logs encrypts at rest by default.
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (default 90 days); a year of debug logs is a cost the operator opts into.
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "ingest" {
  #checkov:skip=CKV_AWS_116:Failed messages go to the SQS dead-letter queue (aws_sqs_queue.dlq); a function DLQ only applies to asynchronous invokes, which this function never receives.
  #checkov:skip=CKV_AWS_117:The function only calls S3, SQS, SNS and CloudWatch public endpoints; a VPC would add NAT or endpoint costs without protecting anything.
  #checkov:skip=CKV_AWS_173:The environment holds bucket names, a topic ARN and limits, no secrets; Lambda encrypts it at rest with an AWS-managed key.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile the operator owns; the zip is built reproducibly by scripts/package_lambda.py.
  #checkov:skip=CKV_AWS_115:Concurrency is bounded by the event source (max_concurrency); reserved_concurrency is available when an account needs a hard cap.
  function_name    = local.function_name
  description      = "gpulake: raw GPU telemetry in S3 -> normalized Parquet, alerts and quarantine"
  role             = aws_iam_role.ingest.arn
  handler          = "gpulake.handlers.ingest.handler"
  runtime          = var.python_runtime
  architectures    = ["arm64"]
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  memory_size      = var.lambda_memory_mb
  timeout          = var.lambda_timeout_s
  layers           = [aws_lambda_layer_version.this["ingest"].arn]

  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = merge(local.alert_settings_env, { POWERTOOLS_SERVICE_NAME = "gpulake-ingest" })
  }

  tracing_config {
    mode = var.enable_xray ? "Active" : "PassThrough"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.ingest.name
  }

  depends_on = [aws_iam_role_policy.ingest, aws_cloudwatch_log_group.ingest]
}
