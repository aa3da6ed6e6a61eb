"""Check 3: every argument and block exists in hashicorp/aws 6.25.0's schema; required ones are set."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.terraform import hcl, provider_schema


def _blocks(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Nested blocks of a body as (name, body), ``dynamic "x" { content {...} }`` included."""
    found = []
    for key, value in body.items():
        if key == "dynamic":
            found += [(hcl.unquote(label), c) for d in value for label, inner in d.items() for c in inner["content"]]
        elif isinstance(value, list):
            found += [(key, b) for b in value if isinstance(b, dict) and b.get("__is_block__")]
    return found


def _body_problems(address: str, body: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    problems = []
    blocks = _blocks(body)
    names = {n for n, _ in blocks}
    args = {k for k in body if k != "dynamic" and not k.startswith("__") and not provider_schema.is_meta(k)} - names
    problems += [f"{address}: unknown argument {a!r}" for a in sorted(args - set(spec["args"]))]
    for name, block in blocks:
        if name not in spec["blocks"]:
            problems.append(f"{address}: unknown block {name!r}")
        else:
            problems += _body_problems(f"{address}.{name}", block, spec["blocks"][name])
    present = args | names
    problems += [
        f"{address}: required argument {a!r} is missing" for a, req in spec["args"].items() if req and a not in present
    ]
    problems += [
        f"{address}: required block {b!r} is missing"
        for b, s in spec["blocks"].items()
        if s.get("required") and b not in present
    ]
    return problems


def schema_problems(tree: hcl.Tree, schema: dict[str, Any]) -> list[str]:
    problems = []
    for address, body in [*tree.resources.items(), *tree.data.items()]:
        rtype = address.rsplit(".", 1)[0]
        if rtype not in schema:
            problems.append(f"{address}: {rtype} is not in hashicorp/aws {provider_schema.PROVIDER_VERSION}")
            continue
        problems += _body_problems(address, body, schema[rtype])
    return problems


def test_every_argument_exists_and_required_ones_are_set(tree: hcl.Tree, schema: dict[str, Any]) -> None:
    assert len(tree.resources) >= 20
    assert schema_problems(tree, schema) == []


def test_misspelt_argument_fails(tmp_path: Path, schema: dict[str, Any]) -> None:
    shutil.copytree(hcl.TF_DIR, tmp_path / "tf")
    path = tmp_path / "tf" / "delivery.tf"
    path.write_text(path.read_text().replace("visibility_timeout_seconds", "visibility_timeout_second", 1))
    problems = schema_problems(hcl.load(tmp_path / "tf"), schema)
    assert problems == ["aws_sqs_queue.ingest: unknown argument 'visibility_timeout_second'"]


def test_misspelt_nested_block_argument_and_missing_required_fail(tmp_path: Path, schema: dict[str, Any]) -> None:
    shutil.copytree(hcl.TF_DIR, tmp_path / "tf")
    path = tmp_path / "tf" / "storage.tf"
    text = path.read_text().replace("days_after_initiation = 1", "days_after_init = 1", 1)
    path.write_text(text.replace("  bucket        = each.value\n", "", 1))
    problems = schema_problems(hcl.load(tmp_path / "tf"), schema)
    where = "aws_s3_bucket_lifecycle_configuration.raw.rule.abort_incomplete_multipart_upload"
    assert f"{where}: unknown argument 'days_after_init'" in problems
    assert not any("aws_s3_bucket.this" in p for p in problems), "bucket is optional (a generated name)"


def test_missing_required_argument_fails(tmp_path: Path, schema: dict[str, Any]) -> None:
    shutil.copytree(hcl.TF_DIR, tmp_path / "tf")
    path = tmp_path / "tf" / "ingest.tf"
    path.write_text(path.read_text().replace("  role             = aws_iam_role.ingest.arn\n", ""))
    problems = schema_problems(hcl.load(tmp_path / "tf"), schema)
    assert problems == ["aws_lambda_function.ingest: required argument 'role' is missing"]
