# Alerts (from the handler) and alarms (on the pipeline itself) share one
# encrypted SNS topic. CloudWatch can only publish to a topic encrypted with a
# customer-managed key whose policy lets it, hence the key below.
locals {
  # Namespace and service of the handler's EMF metrics (aws_lambda_powertools.Metrics in gpulake.handlers.ingest).
  metrics_namespace = "gpulake"
  metrics_service   = "ingest"

  alarms = {
    dlq-not-empty = {
      description = "Messages reached the dead-letter queue: objects failed ${var.max_receive_count} times. See docs/operations.md (DLQ redrive)."
      namespace   = "AWS/SQS"
      metric      = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = aws_sqs_queue.dlq.name }
      statistic   = "Maximum"
      threshold   = 0
    }
    function-errors = {
      description = "The ingest function failed (unhandled error); messages will be retried."
      namespace   = "AWS/Lambda"
      metric      = "Errors"
      dimensions  = { FunctionName = aws_lambda_function.ingest.function_name }
      statistic   = "Sum"
      threshold   = 0
    }
    sweeper-errors = {
      description = "The episode sweeper failed: resolutions and waiting notification batches are not going out until it runs again. See its log group."
      namespace   = "AWS/Lambda"
      metric      = "Errors"
      dimensions  = { FunctionName = aws_lambda_function.sweeper.function_name }
      statistic   = "Sum"
      threshold   = 0
    }
    function-throttles = {
      description = "The ingest function was throttled; raise max_concurrency or reserved_concurrency."
      namespace   = "AWS/Lambda"
      metric      = "Throttles"
      dimensions  = { FunctionName = aws_lambda_function.ingest.function_name }
      statistic   = "Sum"
      threshold   = 0
    }
    duration-near-timeout = {
      description = "An invocation used over 80% of its ${var.lambda_timeout_s}s timeout; raise lambda_timeout_s or lambda_memory_mb."
      namespace   = "AWS/Lambda"
      metric      = "Duration"
      dimensions  = { FunctionName = aws_lambda_function.ingest.function_name }
      statistic   = "Maximum"
      threshold   = 0.8 * var.lambda_timeout_s * 1000
    }
    objects-rejected = {
      description = "Uploaded objects were rejected (unknown or broken format); the reason is in quarantine/ and the function log."
      namespace   = local.metrics_namespace
      metric      = "ObjectsRejected"
      dimensions  = { service = local.metrics_service }
      statistic   = "Sum"
      threshold   = 0
    }
    objects-truncated = {
      description = "Uploaded gzip objects were cut off; their complete lines landed, the rest is lost until the sender uploads them again (quarantine/ has truncated_input)."
      namespace   = local.metrics_namespace
      metric      = "ObjectsTruncated"
      dimensions  = { service = local.metrics_service }
      statistic   = "Sum"
      threshold   = 0
    }
    critical-gpu-alerts = {
      description = "gpulake raised critical GPU alerts (thermal failure, over-temperature, double-bit ECC, XID); details are on this topic and in alerts/."
      namespace   = local.metrics_namespace
      metric      = "CriticalAlerts"
      dimensions  = { service = local.metrics_service }
      statistic   = "Sum"
      threshold   = 0
    }
  }
}

data "aws_iam_policy_document" "alerts_key" {
  #checkov:skip=CKV_AWS_109:A key policy's "*" resource means this key only; the account root statement is what lets IAM policies grant access at all.
  #checkov:skip=CKV_AWS_111:Same as CKV_AWS_109: key policies are scoped to their key.
  #checkov:skip=CKV_AWS_356:Same as CKV_AWS_109: "*" in a key policy is this key.
  statement {
    sid       = "AccountAdministers"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublish"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "alerts" {
  description             = "${var.name}: encrypts the alerts SNS topic"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.alerts_key.json
}

resource "aws_kms_alias" "alerts" {
  name          = "alias/${var.name}-alerts"
  target_key_id = aws_kms_key.alerts.key_id
}

resource "aws_sns_topic" "alerts" {
  name              = "${var.name}-alerts"
  kms_master_key_id = aws_kms_key.alerts.arn
}

resource "aws_sns_topic_subscription" "email" {
  count = var.alert_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

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
