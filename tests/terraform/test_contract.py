"""Check 5: Terraform and the code agree (handler, env vars, prefixes, metrics, wiring, package)."""

from __future__ import annotations

import importlib
import re
import shutil
import zipfile
from pathlib import Path

import pyarrow as pa

from gpulake.formats import FORMATS
from gpulake.output import layout
from gpulake.schema import METRICS_SCHEMA
from tests.conftest import script_module
from tests.terraform import hcl

package_lambda = script_module("package_lambda")

ROOT = hcl.ROOT
PREFIX = "${var.processed_prefix}"


def _lambda(tree: hcl.Tree) -> dict:
    return tree.resources["aws_lambda_function.ingest"]


def _env(tree: hcl.Tree) -> dict[str, str]:
    return hcl.environment(tree, "aws_lambda_function.ingest")


def test_handler_path_is_importable(tree: hcl.Tree, monkeypatch) -> None:
    handler = hcl.unquote(_lambda(tree)["handler"])
    module_name, func = handler.rsplit(".", 1)
    monkeypatch.setenv("GPULAKE_PROCESSED_BUCKET", "contract-test")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, func))
    assert (ROOT / "lambda" / (module_name.replace(".", "/") + ".py")).exists()
    assert "arm64" in [hcl.unquote(a) for a in _lambda(tree)["architectures"]]


def test_env_vars_are_exactly_those_the_code_reads(tree: hcl.Tree) -> None:
    code = set(re.findall(r'"(GPULAKE_[A-Z_]+)"', (ROOT / "lambda/gpulake/settings.py").read_text()))
    example = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    terraform = set(_env(tree))
    assert code == {n for n in terraform if n.startswith("GPULAKE_")}
    assert {n for n in terraform if not n.startswith("GPULAKE_")} == {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
    }
    assert terraform <= example


def test_processed_prefixes_match_the_layout(tree: hcl.Tree) -> None:
    prefixes = tree.locals["processed_prefixes"]
    tops = {
        "metrics": layout.metrics_key("s", "d", "n").split("/")[0],
        "alerts": layout.alerts_key("d", "n").split("/")[0],
        "quarantine": layout.quarantine_key("n").split("/")[0],
        "episodes": layout.episodes_key("d", "n").split("/")[0],
    }
    assert {k: hcl.unquote(v).replace(PREFIX, "") for k, v in prefixes.items()} == {k: f"{v}/" for k, v in tops.items()}
    assert _env(tree)["GPULAKE_PROCESSED_PREFIX"] == "${var.processed_prefix}"
    assert "aws_s3_bucket.this" in hcl.references(_env(tree)["GPULAKE_PROCESSED_BUCKET"])


def test_partition_projection_lists_every_format(tree: hcl.Tree) -> None:
    assert sorted(hcl.unquote(s) for s in tree.locals["sources"]) == sorted(FORMATS)
    template = tree.resources["aws_glue_catalog_table.metrics"]["parameters"]
    location = next(v for k, v in template.items() if "storage.location.template" in k)
    assert "source=$${source}/date=$${date}/" in location
    assert layout.metrics_key("dcgm", "2026-01-01", "x").startswith("metrics/source=dcgm/date=2026-01-01/")


def test_glue_columns_match_the_canonical_schema(tree: hcl.Tree) -> None:
    hive = {
        pa.timestamp("ms", tz="UTC"): "timestamp",
        pa.string(): "string",
        pa.float64(): "double",
        pa.int64(): "bigint",
        pa.map_(pa.string(), pa.float64()): "map<string,double>",
        pa.map_(pa.string(), pa.string()): "map<string,string>",
    }
    expected = [(f.name, hive[f.type]) for f in METRICS_SCHEMA if f.name != "source"]
    columns = [(hcl.unquote(c["name"]), hcl.unquote(c["type"])) for c in tree.locals["metrics_columns"]]
    assert columns == expected


def test_alarms_watch_the_metrics_the_handler_emits(tree: hcl.Tree, monkeypatch) -> None:
    monkeypatch.setenv("GPULAKE_PROCESSED_BUCKET", "contract-test")
    handler = importlib.import_module("gpulake.handlers.ingest")
    emitted = set(re.findall(r'add_metric\(name="(\w+)"', Path(handler.__file__).read_text()))
    assert hcl.unquote(tree.locals["metrics_namespace"]) == handler.metrics.namespace
    assert hcl.unquote(tree.locals["metrics_service"]) == handler.metrics.service
    alarms = (hcl.TF_DIR / "alerts.tf").read_text()
    custom = re.findall(r'namespace\s*=\s*local\.metrics_namespace\s*\n\s*metric\s*=\s*"(\w+)"', alarms)
    assert set(custom) == {"ObjectsRejected", "ObjectsTruncated", "CriticalAlerts"} <= emitted
    for name in ("dlq-not-empty", "function-errors", "sweeper-errors", "function-throttles", "duration-near-timeout"):
        assert f"{name} = {{" in alarms


def test_queue_wiring(tree: hcl.Tree) -> None:
    mapping = tree.resources["aws_lambda_event_source_mapping.ingest"]
    assert "aws_sqs_queue.ingest" in hcl.references(mapping["event_source_arn"])
    assert [hcl.unquote(t) for t in mapping["function_response_types"]] == ["ReportBatchItemFailures"]
    queue = tree.resources["aws_sqs_queue.ingest"]
    assert queue["visibility_timeout_seconds"] == "${6 * var.lambda_timeout_s}"
    assert "aws_sqs_queue.dlq" in hcl.references(queue["redrive_policy"])
    notification = tree.resources["aws_s3_bucket_notification.raw"]["queue"][0]
    assert "aws_sqs_queue.ingest" in hcl.references(notification["queue_arn"])
    assert [hcl.unquote(e) for e in notification["events"]] == ["s3:ObjectCreated:*"]
    policy = tree.data["data.aws_iam_policy_document.ingest_queue"]["statement"][0]
    conditions = {hcl.unquote(c["variable"]) for c in policy["condition"]}
    assert conditions == {"aws:SourceArn", "aws:SourceAccount"}
    assert "aws_sns_topic.alerts" in hcl.references(_env(tree)["GPULAKE_ALERTS_TOPIC_ARN"])


def test_iam_has_no_wildcard_action_and_scoped_resources(tree: hcl.Tree) -> None:
    wildcard_resources = []
    for statement in hcl.statements(tree, "data.aws_iam_policy_document.ingest").values():
        actions = [hcl.unquote(a) for a in statement["actions"]]
        assert all(not a.endswith("*") for a in actions), actions
        resources = statement["resources"]
        resources = [hcl.unquote(r) for r in ([resources] if isinstance(resources, str) else resources)]
        if "*" in resources:
            wildcard_resources += actions
    assert sorted(wildcard_resources) == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]


def test_package_contains_handler_and_fits(tmp_path: Path, tree: hcl.Tree, capsys) -> None:
    default_zip = tree.variables["lambda_zip_path"]["default"]
    assert (hcl.TF_DIR / hcl.unquote(default_zip)).resolve() == ROOT / "build" / "gpulake-ingest.zip"
    out = tmp_path / "ingest.zip"
    assert package_lambda.main(["--out", str(out)]) == 0
    report = capsys.readouterr().out
    assert "fits the 250 MB limit" in report
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
    assert package_lambda.HANDLER in names
    assert "gpulake/alerts/rules.default.jsonl" in names  # settings.from_env() loads it at start
    assert not any(n.startswith(("pyarrow/", "numpy/", "aws_lambda_powertools/")) for n in names)
    # the compiled modules only as arm64 builds (the function's architecture), when they can be built
    compiled = [n for n in names if n.endswith(".so")]
    cross = shutil.which(package_lambda.AARCH64_CC)
    expected = ["gpulake/formats/_expo_scan_c.abi3.so", "gpulake/formats/_number_cells_c.abi3.so"]
    assert sorted(compiled) == (expected if cross else [])
    assert [hcl.unquote(a) for a in _lambda(tree)["architectures"]] == ["arm64"]


def test_sweeper_and_ingest_read_the_same_settings(tree: hcl.Tree, monkeypatch) -> None:
    sweeper = tree.resources["aws_lambda_function.sweeper"]
    env = hcl.environment(tree, "aws_lambda_function.sweeper")
    assert set(env) == set(_env(tree))
    assert {k: v for k, v in env.items() if k.startswith("GPULAKE_")} == {
        k: v for k, v in _env(tree).items() if k.startswith("GPULAKE_")
    }
    assert "aws_dynamodb_table.episodes" in hcl.references(env["GPULAKE_EPISODES_TABLE"])
    module_name, func = hcl.unquote(sweeper["handler"]).rsplit(".", 1)
    monkeypatch.setenv("GPULAKE_PROCESSED_BUCKET", "contract-test")
    assert callable(getattr(importlib.import_module(module_name), func))


def test_episodes_table_matches_the_store(tree: hcl.Tree) -> None:
    table = tree.resources["aws_dynamodb_table.episodes"]
    assert hcl.unquote(table["billing_mode"]) == "PAY_PER_REQUEST"
    assert (hcl.unquote(table["hash_key"]), hcl.unquote(table["range_key"])) == ("pk", "sk")
    assert hcl.unquote(table["ttl"][0]["attribute_name"]) == "expires_at"  # DynamoEpisodeStore / sweep()
    assert table["ttl"][0]["enabled"] == "${true}" or table["ttl"][0]["enabled"] in (True, "true")
    assert table["point_in_time_recovery"][0]["enabled"] in (True, "true", "${true}")
    assert table["server_side_encryption"][0]["enabled"] in (True, "true", "${true}")


def test_sweeper_runs_every_five_minutes(tree: hcl.Tree) -> None:
    rule = tree.resources["aws_cloudwatch_event_rule.sweeper"]
    assert hcl.unquote(rule["schedule_expression"]) == "rate(5 minutes)"
    target = tree.resources["aws_cloudwatch_event_target.sweeper"]
    assert "aws_lambda_function.sweeper" in hcl.references(target["arn"])
    permission = tree.resources["aws_lambda_permission.sweeper"]
    assert hcl.unquote(permission["principal"]) == "events.amazonaws.com"
    assert "aws_cloudwatch_event_rule.sweeper" in hcl.references(permission["source_arn"])


def test_episode_iam_is_least_privilege(tree: hcl.Tree) -> None:
    ingest = hcl.statements(tree, "data.aws_iam_policy_document.ingest")["ReadWriteEpisodes"]
    assert sorted(hcl.unquote(a) for a in ingest["actions"]) == ["dynamodb:PutItem", "dynamodb:Query"]
    sweeper = hcl.statements(tree, "data.aws_iam_policy_document.sweeper")
    assert sorted(hcl.unquote(a) for a in sweeper["SweepEpisodes"]["actions"]) == [
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:Scan",
    ]
    for statement in (ingest, sweeper["SweepEpisodes"]):
        assert "aws_dynamodb_table.episodes" in hcl.references(str(statement["resources"]))
    assert [hcl.unquote(a) for a in sweeper["WriteClosedEpisodes"]["actions"]] == ["s3:PutObject"]
    assert "processed_prefixes.episodes" in str(sweeper["WriteClosedEpisodes"]["resources"])
    assert [hcl.unquote(a) for a in sweeper["PublishAlerts"]["actions"]] == ["sns:Publish"]
    everything = [hcl.unquote(a) for s in sweeper.values() for a in s["actions"]]
    assert not any(a.endswith("*") for a in everything)


def test_each_function_logs_only_to_its_own_log_group(tree: hcl.Tree) -> None:
    groups = tree.locals["function_log_groups"]
    runtime = hcl.statements(tree, "data.aws_iam_policy_document.function_runtime")["OwnLogGroup"]
    assert [hcl.unquote(r) for r in runtime["resources"]] == ["${each.value}:*"]
    for name in ("ingest", "sweeper", "loader"):
        function = tree.resources[f"aws_lambda_function.{name}"]
        (log_group,) = {r for r in hcl.references(function["logging_config"]) if "log_group" in r}
        assert re.search(rf"\b{name} = {log_group}\b(\[0\])?\.arn", groups), (name, groups)
        sources = tree.data[f"data.aws_iam_policy_document.{name}"]["source_policy_documents"]
        assert f'function_runtime["{name}"]' in str(sources), sources
