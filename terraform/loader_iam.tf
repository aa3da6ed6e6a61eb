# The loader's own role: read the processed prefixes it is notified about, that one
# secret, its own queue and log group; ENIs in the VPC through AWS's managed policy.
resource "aws_iam_role" "loader" {
  count = local.loader_enabled ? 1 : 0

  name                 = "${local.loader_name}-role"
  description          = "gpulake loader function"
  assume_role_policy   = data.aws_iam_policy_document.lambda_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "loader" {
  count = local.loader_enabled ? 1 : 0

  source_policy_documents = [data.aws_iam_policy_document.function_runtime["loader"].json]

  statement {
    sid       = "ReadProcessedLayout"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = [for top in local.loader_prefixes : "${aws_s3_bucket.this["processed"].arn}/${var.processed_prefix}${top}/*"]
  }

  # Without ListBucket a deleted object reads as AccessDenied instead of NoSuchKey.
  statement {
    sid       = "ListProcessedLayout"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this["processed"].arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [for top in local.loader_prefixes : "${var.processed_prefix}${top}/*"]
    }
  }

  statement {
    sid       = "ReadConnectionSecret"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.loader.secret_arn]
  }

  statement {
    sid       = "ConsumeLoaderQueue"
    effect    = "Allow"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.loader[0].arn]
  }

  dynamic "statement" {
    for_each = compact([var.kms_key_arn, var.loader.secret_kms_key_arn])

    content {
      sid       = "DecryptKey${statement.key}"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "loader" {
  count = local.loader_enabled ? 1 : 0

  name   = "${local.loader_name}-least-privilege"
  role   = aws_iam_role.loader[0].id
  policy = data.aws_iam_policy_document.loader[0].json
}

# ec2:CreateNetworkInterface and friends have no resource-level scoping; AWS's managed policy is the documented way.
resource "aws_iam_role_policy_attachment" "loader_vpc" {
  count = local.loader_enabled && local.loader_in_vpc ? 1 : 0

  role       = aws_iam_role.loader[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}
