data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region

  raw_bucket_name       = "${var.name}-raw-${local.account_id}"
  processed_bucket_name = "${var.name}-processed-${local.account_id}"
  artifacts_bucket_name = "${var.name}-artifacts-${local.account_id}"
  function_name         = "${var.name}-ingest"

  # The processed layout written by gpulake.output.layout (keep in step with it).
  processed_prefixes = {
    metrics    = "${var.processed_prefix}metrics/"
    alerts     = "${var.processed_prefix}alerts/"
    quarantine = "${var.processed_prefix}quarantine/"
    episodes   = "${var.processed_prefix}episodes/"
  }
  athena_results_prefix = "${var.processed_prefix}athena-results/"

  # Input formats registered in gpulake.formats (the source= partition values).
  sources = ["dcgm", "gpuz", "nvidia-smi", "thermal-csv"]

  sse_algorithm = var.kms_key_arn == null ? "AES256" : "aws:kms"
}
