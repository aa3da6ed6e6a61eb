"""Check 4: checkov (from its own virtualenv, offline) finds no failed check; every skip says why."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.terraform import hcl
from tests.terraform.conftest import CHECKOV

SKIP = re.compile(r"checkov:skip=([A-Z0-9_]+):(.*)")


def _checkov(directory: Path) -> dict[str, Any]:
    assert CHECKOV.exists(), f"{CHECKOV} is missing: `make install` creates checkov's own virtualenv"
    run = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--framework", "terraform", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.stdout.strip(), run.stderr[-2000:]
    return json.loads(run.stdout)


def test_checkov_has_no_failed_checks() -> None:
    report = _checkov(hcl.TF_DIR)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 50


def test_every_skip_has_a_reason(tree: hcl.Tree) -> None:
    skips = [SKIP.match(c) for c in tree.comments if c.startswith("checkov:skip")]
    assert skips and all(skips)
    for match in skips:
        assert len(match.group(2).split()) >= 6, f"{match.group(1)} needs a real reason"


def test_checkov_catches_a_public_bucket(tmp_path: Path) -> None:
    shutil.copytree(hcl.TF_DIR, tmp_path / "tf")
    path = tmp_path / "tf" / "storage.tf"
    path.write_text(path.read_text().replace("restrict_public_buckets = true", "restrict_public_buckets = false"))
    failed = {c["check_id"] for c in _checkov(tmp_path / "tf")["results"]["failed_checks"]}
    assert "CKV_AWS_56" in failed
