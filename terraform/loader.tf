# The event-driven loader: processed bucket notifications (metrics/, alerts/, episodes/)
# -> SQS (+ DLQ) -> loaders.handler.handler in the database's VPC -> PostgreSQL/TimescaleDB or InfluxDB.
# Created only when var.loader.target is set.
#
# Batching: the database should see few writers and long runs of work over one connection.
# reserved_concurrency (default 2, also the event source's maximum_concurrency; 2 is the SQS
# minimum) caps the connections the loader ever opens; batching_window_s = 60 with batch_size = 100
# lets each invocation take up to a minute of uploads, so a fleet uploading every 5 minutes
# gives about one invocation per minute, each loading its objects back to back (one transaction
# per object: its rows and its ledger row commit together) and refreshing the hourly aggregate
# once. Lag is bounded by the window plus the load time; the lag alarm watches it.
locals {
  loader_enabled  = var.loader.target != null
  loader_name     = "${var.name}-loader"
  loader_in_vpc   = length(var.loader.subnet_ids) > 0
  loader_prefixes = ["metrics", "alerts", "episodes"]

  loader_alarms = local.loader_enabled ? {
    loader-dlq-not-empty = {
      description = "Processed objects failed to load ${var.loader.max_receive_count} times and reached the loader DLQ (malformed object or a long database outage); the function log names them. Fix, then redrive."
      namespace   = "AWS/SQS"
      metric      = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = aws_sqs_queue.loader_dlq[0].name }
      statistic   = "Maximum"
      threshold   = 0
    }
    loader-errors = {
      description = "The loader function failed (crash or timeout); its messages will be retried."
      namespace   = "AWS/Lambda"
      metric      = "Errors"
      dimensions  = { FunctionName = aws_lambda_function.loader[0].function_name }
      statistic   = "Sum"
      threshold   = 0
    }
    loader-load-failures = {
      description = "Objects could not be loaded (database unreachable or refusing); they will be retried."
      namespace   = local.metrics_namespace
      metric      = "LoadFailures"
      dimensions  = { service = "loader" }
      statistic   = "Sum"
      threshold   = 0
    }
    loader-lag = {
      description = "The oldest processed-object notification waits over ${var.loader.lag_alarm_s}s: the database is behind S3."
      namespace   = "AWS/SQS"
      metric      = "ApproximateAgeOfOldestMessage"
      dimensions  = { QueueName = aws_sqs_queue.loader[0].name }
      statistic   = "Maximum"
      threshold   = var.loader.lag_alarm_s
    }
  } : {}
}

resource "aws_sqs_queue" "loader_dlq" {
  count = local.loader_enabled ? 1 : 0

  name                      = "${local.loader_name}-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "loader" {
  count = local.loader_enabled ? 1 : 0

  name                       = local.loader_name
  visibility_timeout_seconds = 6 * var.loader.timeout_s
  message_retention_seconds  = 1209600
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.loader_dlq[0].arn
    maxReceiveCount     = var.loader.max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "loader_dlq" {
  count = local.loader_enabled ? 1 : 0

  queue_url = aws_sqs_queue.loader_dlq[0].id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.loader[0].arn]
  })
}

data "aws_iam_policy_document" "loader_queue" {
  count = local.loader_enabled ? 1 : 0

  statement {
    sid       = "ProcessedBucketNotifications"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.loader[0].arn]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.this["processed"].arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sqs_queue_policy" "loader" {
  count = local.loader_enabled ? 1 : 0

  queue_url = aws_sqs_queue.loader[0].id
  policy    = data.aws_iam_policy_document.loader_queue[0].json
}

resource "aws_s3_bucket_notification" "processed" {
  count = local.loader_enabled ? 1 : 0

  bucket = aws_s3_bucket.this["processed"].id

  dynamic "queue" {
    for_each = toset(local.loader_prefixes)

    content {
      id            = "gpulake-loader-${queue.value}"
      queue_arn     = aws_sqs_queue.loader[0].arn
      events        = ["s3:ObjectCreated:*"]
      filter_prefix = "${var.processed_prefix}${queue.value}/"
    }
  }

  depends_on = [aws_sqs_queue_policy.loader]
}

resource "aws_cloudwatch_log_group" "loader" {
  count = local.loader_enabled ? 1 : 0
  #checkov:skip=CKV_AWS_158:Logs hold object keys, row counts and error reasons, never connection strings or telemetry values; CloudWatch Logs encrypts at rest by default.
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (default 90 days); a year of debug logs is a cost the operator opts into.

  name              = "/aws/lambda/${local.loader_name}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "loader" {
  count = local.loader_enabled ? 1 : 0
  #checkov:skip=CKV_AWS_116:Failed messages go to the SQS dead-letter queue (aws_sqs_queue.loader_dlq); a function DLQ only applies to asynchronous invokes, which this function never receives.
  #checkov:skip=CKV_AWS_117:The function runs in loader.subnet_ids when given; a database reachable on the internet (InfluxDB Cloud) needs no VPC.
  #checkov:skip=CKV_AWS_173:The environment holds a target name, a secret ARN and a prefix, no secrets; the DSN or token is read from Secrets Manager at run time.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile the operator owns; the zip is built reproducibly by scripts/package_lambda.py.

  function_name    = local.loader_name
  description      = "gpulake: processed objects in S3 -> ${var.loader.target}, exactly once through the ledger"
  role             = aws_iam_role.loader[0].arn
  handler          = "loaders.handler.handler"
  runtime          = var.python_runtime
  architectures    = ["arm64"]
  filename         = var.loader.zip_path
  source_code_hash = filebase64sha256(var.loader.zip_path)
  memory_size      = var.loader.memory_mb
  timeout          = var.loader.timeout_s
  layers           = [aws_lambda_layer_version.this["loader"].arn]

  reserved_concurrent_executions = var.loader.reserved_concurrency

  environment {
    variables = {
      GPULAKE_LOADER_TARGET        = var.loader.target
      GPULAKE_LOADER_SECRET_ARN    = var.loader.secret_arn
      GPULAKE_PROCESSED_PREFIX     = var.processed_prefix
      POWERTOOLS_SERVICE_NAME      = "gpulake-loader"
      POWERTOOLS_METRICS_NAMESPACE = local.metrics_namespace
      POWERTOOLS_LOG_LEVEL         = "INFO"
    }
  }

  dynamic "vpc_config" {
    for_each = local.loader_in_vpc ? ["vpc"] : []

    content {
      subnet_ids         = var.loader.subnet_ids
      security_group_ids = var.loader.security_group_ids
    }
  }

  tracing_config {
    mode = var.enable_xray ? "Active" : "PassThrough"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.loader[0].name
  }

  depends_on = [aws_iam_role_policy.loader, aws_cloudwatch_log_group.loader]
}

resource "aws_lambda_event_source_mapping" "loader" {
  count = local.loader_enabled ? 1 : 0

  event_source_arn                   = aws_sqs_queue.loader[0].arn
  function_name                      = aws_lambda_function.loader[0].arn
  batch_size                         = var.loader.batch_size
  maximum_batching_window_in_seconds = var.loader.batching_window_s
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.loader.reserved_concurrency
  }
}

resource "aws_cloudwatch_metric_alarm" "loader" {
  for_each = local.loader_alarms

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = 300
  evaluation_periods  = 1
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}
