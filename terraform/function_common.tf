# What the gpulake functions share: the trust policy, each function's own log group and
# X-Ray writes (merged into its least-privilege policy through source_policy_documents),
# and what the ingest function and the sweeper both need to run the alert lifecycle.
locals {
  # Each function's log group (the loader's only when it is deployed).
  function_log_groups = merge(
    {
      ingest  = aws_cloudwatch_log_group.ingest.arn
      sweeper = aws_cloudwatch_log_group.sweeper.arn
    },
    local.loader_enabled ? { loader = aws_cloudwatch_log_group.loader[0].arn } : {},
  )

  # The settings both sides of the episode lifecycle read (gpulake.settings): the ingest function
  # decides episodes and the sweeper resolves them, so they must read the same ones.
  alert_settings_env = {
    GPULAKE_PROCESSED_BUCKET     = aws_s3_bucket.this["processed"].id
    GPULAKE_PROCESSED_PREFIX     = var.processed_prefix
    GPULAKE_ALERTS_TOPIC_ARN     = aws_sns_topic.alerts.arn
    GPULAKE_SOURCE_TZ            = var.source_tz
    GPULAKE_DEFAULT_TEMP_LIMIT_C = tostring(var.default_temp_limit_c)
    GPULAKE_HBM_TEMP_LIMIT_C     = tostring(var.hbm_temp_limit_c)
    GPULAKE_EPISODES_TABLE       = aws_dynamodb_table.episodes.name
    GPULAKE_UPLOAD_INTERVAL_S    = tostring(var.upload_interval_s)
    GPULAKE_CONTINUE_FACTOR      = tostring(var.continue_factor)
    GPULAKE_RESOLVE_FACTOR       = tostring(var.resolve_factor)
    GPULAKE_REPEAT_INTERVAL_S    = tostring(var.repeat_interval_s)
    GPULAKE_GROUP_INTERVAL_S     = tostring(var.group_interval_s)
    GPULAKE_EPISODE_TTL_DAYS     = tostring(var.episode_ttl_days)
    GPULAKE_RULES_FILE           = var.rules_file
    POWERTOOLS_METRICS_NAMESPACE = local.metrics_namespace
    POWERTOOLS_LOG_LEVEL         = "INFO"
  }
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}


data "aws_iam_policy_document" "function_runtime" {
  for_each = local.function_log_groups

  statement {
    sid       = "OwnLogGroup"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${each.value}:*"]
  }

  # X-Ray trace segments have no resource-level ARN (the only "*" here).
  dynamic "statement" {
    for_each = var.enable_xray ? ["xray"] : []

    content {
      sid       = "XRayTraces"
      effect    = "Allow"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }
}

# The ingest function and the sweeper both publish node groups to the alerts topic (encrypted
# with its key) and write the processed bucket and the episodes table (the operator's key, if any).
data "aws_iam_policy_document" "alert_writer" {
  statement {
    sid       = "PublishAlerts"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }

  statement {
    sid       = "EncryptAlerts"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.alerts.arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "BucketAndTableKey"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}
