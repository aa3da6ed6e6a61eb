# One role for the ingest function, least privilege: read under the raw prefix,
# write under the processed prefixes, its own queue, topic, key and log group.
resource "aws_iam_role" "ingest" {
  name                 = "${local.function_name}-role"
  description          = "gpulake ingest function"
  assume_role_policy   = data.aws_iam_policy_document.lambda_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "ingest" {
  source_policy_documents = [
    data.aws_iam_policy_document.function_runtime["ingest"].json,
    data.aws_iam_policy_document.alert_writer.json,
  ]

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
}

resource "aws_iam_role_policy" "ingest" {
  name   = "${local.function_name}-least-privilege"
  role   = aws_iam_role.ingest.id
  policy = data.aws_iam_policy_document.ingest.json
}
