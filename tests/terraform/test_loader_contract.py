"""The loader's Terraform matches loaders.handler; queue and role scoped to the processed bucket and one secret."""

from __future__ import annotations

import importlib
import re

from loaders.source import KINDS
from tests.terraform import hcl

ROOT = hcl.ROOT


def _function(tree: hcl.Tree) -> dict:
    return tree.resources["aws_lambda_function.loader"]


def test_loader_is_off_unless_a_target_is_configured(tree: hcl.Tree) -> None:
    assert hcl.unquote(tree.locals["loader_enabled"]) == "${var.loader.target != null}"
    gated = [a for a in [*tree.resources, *tree.data] if "loader" in a and not a.startswith("aws_cloudwatch_metric")]
    assert gated and all("local.loader_enabled" in str(({**tree.resources, **tree.data})[a]["count"]) for a in gated)
    assert "local.loader_enabled" in str(tree.locals["loader_alarms"])


def test_handler_path_and_environment_match_the_code(tree: hcl.Tree) -> None:
    module_name, func = hcl.unquote(_function(tree)["handler"]).rsplit(".", 1)
    module = importlib.import_module(module_name)
    assert callable(getattr(module, func))
    code = set(re.findall(r'"(GPULAKE_[A-Z_]+)"', (ROOT / "loaders" / "handler.py").read_text()))
    env = _function(tree)["environment"][0]["variables"]
    assert code == {n for n in env if n.startswith("GPULAKE_")}
    assert env["GPULAKE_LOADER_SECRET_ARN"] == "${var.loader.secret_arn}"
    example = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert set(env) <= example
    assert "vpc_config" in str(_function(tree)["dynamic"])


def test_queue_accepts_only_the_processed_bucket(tree: hcl.Tree) -> None:
    (statement,) = tree.data["data.aws_iam_policy_document.loader_queue"]["statement"]
    assert [hcl.unquote(a) for a in statement["actions"]] == ["sqs:SendMessage"]
    assert [hcl.unquote(i) for i in statement["principals"][0]["identifiers"]] == ["s3.amazonaws.com"]
    conditions = {hcl.unquote(c["variable"]): c["values"] for c in statement["condition"]}
    assert conditions == {
        "aws:SourceArn": ['${aws_s3_bucket.this["processed"].arn}'],
        "aws:SourceAccount": ["${local.account_id}"],
    }


def test_notifications_cover_every_kind_the_loader_reads(tree: hcl.Tree) -> None:
    notification = tree.resources["aws_s3_bucket_notification.processed"]
    assert notification["bucket"] == '${aws_s3_bucket.this["processed"].id}'
    (queue,) = [d['"queue"'] for d in notification["dynamic"]]
    assert queue["for_each"] == "${toset(local.loader_prefixes)}"
    assert hcl.unquote(queue["content"][0]["filter_prefix"]) == "${var.processed_prefix}${queue.value}/"
    prefixes = {hcl.unquote(p) for p in tree.locals["loader_prefixes"]}
    assert {k.rstrip("/") for k in KINDS} <= prefixes <= {"metrics", "alerts", "episodes"}


def test_role_reads_only_the_processed_prefixes_and_that_one_secret(tree: hcl.Tree) -> None:
    statements = hcl.statements(tree, "data.aws_iam_policy_document.loader")
    read = statements["ReadProcessedLayout"]
    assert [hcl.unquote(a) for a in read["actions"]] == ["s3:GetObject"]
    arn = '${aws_s3_bucket.this["processed"].arn}/${var.processed_prefix}${top}/*'
    assert read["resources"] == f'${{[for top in local.loader_prefixes : "{arn}"]}}'
    secret = statements["ReadConnectionSecret"]
    assert [hcl.unquote(a) for a in secret["actions"]] == ["secretsmanager:GetSecretValue"]
    assert secret["resources"] == ["${var.loader.secret_arn}"]
    wildcard = []
    for statement in statements.values():
        actions = [hcl.unquote(a) for a in statement["actions"]]
        assert not any(a.endswith("*") for a in actions), actions
        assert not any(a.startswith(("s3:Put", "s3:Delete")) for a in actions), "the loader never writes S3"
        resources = statement["resources"]
        if "*" in [hcl.unquote(r) for r in ([resources] if isinstance(resources, str) else resources)]:
            wildcard += actions
    assert sorted(wildcard) == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]


def test_batching_partial_failures_and_alarms(tree: hcl.Tree) -> None:
    mapping = tree.resources["aws_lambda_event_source_mapping.loader"]
    assert [hcl.unquote(t) for t in mapping["function_response_types"]] == ["ReportBatchItemFailures"]
    assert mapping["scaling_config"][0]["maximum_concurrency"] == "${var.loader.reserved_concurrency}"
    assert _function(tree)["reserved_concurrent_executions"] == "${var.loader.reserved_concurrency}"
    assert tree.resources["aws_sqs_queue.loader"]["visibility_timeout_seconds"] == "${6 * var.loader.timeout_s}"
    text = (hcl.TF_DIR / "loader.tf").read_text()
    for metric in ("ApproximateNumberOfMessagesVisible", "Errors", "ApproximateAgeOfOldestMessage", "LoadFailures"):
        assert f'metric      = "{metric}"' in text
    handler = (ROOT / "loaders" / "handler.py").read_text()
    assert 'add_metric(name="LoadFailures"' in handler and 'service="loader"' in handler


def test_functions_use_our_own_layers_published_from_the_zips(tree: hcl.Tree) -> None:
    layer = tree.resources["aws_lambda_layer_version.this"]
    assert layer["source_code_hash"] == "${filebase64sha256(each.value)}"
    assert "aws_s3_object.layer" in hcl.references(layer["s3_key"])
    assert tree.resources["aws_lambda_function.ingest"]["layers"] == ['${aws_lambda_layer_version.this["ingest"].arn}']
    assert _function(tree)["layers"] == ['${aws_lambda_layer_version.this["loader"].arn}']
    text = "".join(p.read_text() for p in hcl.TF_DIR.glob("*.tf"))
    assert ":layer:" not in text and 'layer_version" {' not in text  # no managed-layer ARNs or numbers
    zips = {k: hcl.unquote(v["default"]) for k, v in tree.variables.items() if "layer" in k}
    assert zips == {"ingest_layer_zip_path": "../build/layers/gpulake-ingest-layer.zip"}
