provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { "gpulake:stack" = var.name })
  }
}
