# Two buckets: uploads land in raw (and trigger ingest); ingest writes only to
# processed, so its own writes can never trigger it again.
locals {
  buckets = {
    raw       = local.raw_bucket_name
    processed = local.processed_bucket_name
    artifacts = local.artifacts_bucket_name
  }
}

resource "aws_s3_bucket" "this" {
  for_each = local.buckets
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice left to the operator; raw data is re-uploadable and processed data is re-derivable from it.
  #checkov:skip=CKV_AWS_145:SSE-S3 is the default by design (no per-request KMS cost); set kms_key_arn to use a customer-managed key.
  #checkov:skip=CKV2_AWS_62:The raw bucket notifies ingest (aws_s3_bucket_notification.raw); the processed bucket notifies the loader only when one is configured (aws_s3_bucket_notification.processed).
  #checkov:skip=CKV2_AWS_6:False positive: aws_s3_bucket_public_access_block.this iterates the same for_each, but checkov links it to one bucket instance only.
  #checkov:skip=CKV_AWS_21:False positive: aws_s3_bucket_versioning.this enables versioning on every bucket of this for_each; checkov links it to one instance only.
  #checkov:skip=CKV_AWS_18:Access logging is optional (access_log_bucket) because it needs a separate log bucket the operator owns.

  bucket        = each.value
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = aws_s3_bucket.this

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = local.sse_algorithm
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

data "aws_iam_policy_document" "tls_only" {
  for_each = aws_s3_bucket.this

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  policy = data.aws_iam_policy_document.tls_only[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_bucket_logging" "this" {
  for_each = var.access_log_bucket == null ? {} : aws_s3_bucket.this

  bucket        = each.value.id
  target_bucket = var.access_log_bucket
  target_prefix = "s3/${each.value.id}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "raw" {
  bucket = aws_s3_bucket.this["raw"].id

  rule {
    id     = "expire-raw-uploads"
    status = "Enabled"

    filter {
      prefix = var.raw_prefix
    }

    expiration {
      days = var.raw_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 7
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "processed" {
  bucket = aws_s3_bucket.this["processed"].id

  rule {
    id     = "processed-to-standard-ia"
    status = "Enabled"

    filter {
      prefix = var.processed_prefix
    }

    transition {
      days          = var.processed_ia_transition_days
      storage_class = "STANDARD_IA"
    }

    # Glacier Instant Retrieval: still read by Athena and the loaders, cheaper to keep.
    dynamic "transition" {
      for_each = var.processed_glacier_ir_transition_days == null ? [] : [var.processed_glacier_ir_transition_days]

      content {
        days          = transition.value
        storage_class = "GLACIER_IR"
      }
    }

    dynamic "expiration" {
      for_each = var.processed_expiration_days == null ? [] : [var.processed_expiration_days]

      content {
        days = expiration.value
      }
    }

    # Reprocessing overwrites objects; old versions are only an undo window.
    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "expire-athena-results"
    status = "Enabled"

    filter {
      prefix = local.athena_results_prefix
    }

    expiration {
      days = 7
    }
  }
}
