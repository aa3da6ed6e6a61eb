# Our own dependency layers, built reproducibly by scripts/package_lambda.py --layers from pinned
# arm64 wheels: the same versions in every region, no managed-layer ARNs or numbers. The zips are
# over the 50 MB direct-upload limit, so they go through the artifacts bucket; the key carries the
# zip's hash, and a rebuild with the same pins gives the same hash (no change in terraform plan).
locals {
  layer_zips = merge(
    { ingest = var.ingest_layer_zip_path },
    local.loader_enabled ? { loader = var.loader.layer_zip_path } : {},
  )
}

resource "aws_s3_object" "layer" {
  for_each = local.layer_zips
  #checkov:skip=CKV_AWS_186:The artifacts bucket encrypts every object by default (SSE-S3 or kms_key_arn); layer zips hold public open-source wheels only.

  bucket      = aws_s3_bucket.this["artifacts"].id
  key         = "layers/gpulake-${each.key}-layer-${filesha256(each.value)}.zip"
  source      = each.value
  source_hash = filemd5(each.value)
}

resource "aws_lambda_layer_version" "this" {
  for_each = local.layer_zips

  layer_name               = "${var.name}-${each.key}-deps"
  description              = "gpulake ${each.key} dependencies, pinned in scripts/package_lambda.py"
  s3_bucket                = aws_s3_object.layer[each.key].bucket
  s3_key                   = aws_s3_object.layer[each.key].key
  source_code_hash         = filebase64sha256(each.value)
  compatible_runtimes      = [var.python_runtime]
  compatible_architectures = ["arm64"]
}

# A new build is a new key; the old object becomes a noncurrent version, kept 30 days for rollback.
resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.this["artifacts"].id

  rule {
    id     = "expire-replaced-layers"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}
