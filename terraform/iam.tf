# One role for the ingest function, least privilege: read under the raw prefix,
# write under the processed prefixes, its own queue, topic, key and log group.
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

resource "aws_iam_role" "ingest" {
  name                 = "${local.function_name}-role"
  description          = "gpulake ingest function"
  assume_role_policy   = data.aws_iam_policy_document.lambda_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "ingest" {
  statement {
    sid       = "ReadRawUploads"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.this["raw"].arn}/${var.raw_prefix}*"]
  }

  statement {
    sid     = "WriteProcessedLayout"
    effect  = "Allow"
    actions = ["s3:PutObject"]
    resources = [
      for prefix in values(local.processed_prefixes) : "${aws_s3_bucket.this["processed"].arn}/${prefix}*"
    ]
  }

  # The handler compares a new alerts file with the stored one before publishing.
  statement {
    sid       = "ReadOwnAlerts"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this["processed"].arn}/${local.processed_prefixes.alerts}*"]
  }

  # Without ListBucket a missing key reads as AccessDenied instead of NoSuchKey.
  statement {
    sid       = "ListOwnAlerts"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this["processed"].arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.processed_prefixes.alerts}*"]
    }
  }

  statement {
    sid       = "ConsumeOwnQueue"
    effect    = "Allow"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.ingest.arn]
  }

  # Episode state across uploads (gpulake.alerts.state: Query, then PutItem or TransactWriteItems of Puts, conditional on version).
  statement {
    sid       = "ReadWriteEpisodes"
    effect    = "Allow"
    actions   = ["dynamodb:Query", "dynamodb:PutItem"]
    resources = [aws_dynamodb_table.episodes.arn]
  }

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

  statement {
    sid       = "OwnLogGroup"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.ingest.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "BucketKey"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
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

resource "aws_iam_role_policy" "ingest" {
  name   = "${local.function_name}-least-privilege"
  role   = aws_iam_role.ingest.id
  policy = data.aws_iam_policy_document.ingest.json
}
