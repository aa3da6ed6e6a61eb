# Alert episodes across uploads: the table both functions share, the sweeper
# that resolves episodes and sends due node groups every 5 minutes, its schedule and its least-privilege role.
locals {
  sweeper_name = "${var.name}-sweeper"
}

resource "aws_dynamodb_table" "episodes" {
  #checkov:skip=CKV_AWS_119:Items hold node and GPU names, times and peaks, no secrets; SSE with the AWS-owned key is on (server_side_encryption below uses the CMK when kms_key_arn is set).
  name         = "${var.name}-episodes"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  # Protected unless the stack is meant to be torn down with its data (force_destroy).
  deletion_protection_enabled = var.force_destroy ? false : true
}

resource "aws_cloudwatch_log_group" "sweeper" {
  #checkov:skip=CKV_AWS_158:Logs hold counts of closed episodes, no telemetry values or secrets; CloudWatch Logs encrypts at rest by default.
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (default 90 days); a year of debug logs is a cost the operator opts into.
  name              = "/aws/lambda/${local.sweeper_name}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "sweeper" {
  #checkov:skip=CKV_AWS_116:EventBridge retries a failed scheduled invoke and the next run 5 minutes later sweeps again; a DLQ would only hold empty schedule events.
  #checkov:skip=CKV_AWS_117:The function only calls DynamoDB, S3, SNS and CloudWatch public endpoints; a VPC would add NAT or endpoint costs without protecting anything.
  #checkov:skip=CKV_AWS_173:The environment holds a table and bucket name, a topic ARN and factors, no secrets; Lambda encrypts it at rest with an AWS-managed key.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile the operator owns; the zip is built reproducibly by scripts/package_lambda.py.
  function_name    = local.sweeper_name
  description      = "gpulake: resolve alert episodes and send the node groups whose group interval has passed"
  role             = aws_iam_role.sweeper.arn
  handler          = "gpulake.handlers.sweeper.handler"
  runtime          = var.python_runtime
  architectures    = ["arm64"]
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  memory_size      = 256
  timeout          = 120
  layers           = [aws_lambda_layer_version.this["ingest"].arn]

  # One sweep at a time: two would race to close the same episodes (harmless, but twice the reads).
  reserved_concurrent_executions = 1

  environment {
    variables = merge(local.alert_settings_env, { POWERTOOLS_SERVICE_NAME = "gpulake-sweeper" })
  }

  tracing_config {
    mode = var.enable_xray ? "Active" : "PassThrough"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.sweeper.name
  }

  depends_on = [aws_iam_role_policy.sweeper, aws_cloudwatch_log_group.sweeper]
}

resource "aws_cloudwatch_event_rule" "sweeper" {
  name                = local.sweeper_name
  description         = "gpulake: resolve alert episodes every 5 minutes"
  schedule_expression = "rate(5 minutes)"
}

resource "aws_cloudwatch_event_target" "sweeper" {
  rule = aws_cloudwatch_event_rule.sweeper.name
  arn  = aws_lambda_function.sweeper.arn
}

resource "aws_lambda_permission" "sweeper" {
  statement_id  = "AllowEventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.sweeper.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweeper.arn
}

resource "aws_iam_role" "sweeper" {
  name                 = "${local.sweeper_name}-role"
  description          = "gpulake episode sweeper"
  assume_role_policy   = data.aws_iam_policy_document.lambda_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "sweeper" {
  source_policy_documents = [
    data.aws_iam_policy_document.function_runtime["sweeper"].json,
    data.aws_iam_policy_document.alert_writer.json,
  ]

  # Closing an episode and staging its resolution in the node's group is one TransactWriteItems of two
  # conditional Puts, which IAM authorizes as dynamodb:PutItem per item
  # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html).
  statement {
    sid       = "SweepEpisodes"
    effect    = "Allow"
    actions   = ["dynamodb:Scan", "dynamodb:Query", "dynamodb:PutItem"]
    resources = [aws_dynamodb_table.episodes.arn]
  }

  statement {
    sid       = "WriteClosedEpisodes"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this["processed"].arn}/${local.processed_prefixes.episodes}*"]
  }
}

resource "aws_iam_role_policy" "sweeper" {
  name   = "${local.sweeper_name}-least-privilege"
  role   = aws_iam_role.sweeper.id
  policy = data.aws_iam_policy_document.sweeper.json
}
