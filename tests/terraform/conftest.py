from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.terraform import hcl, provider_schema

VENV = Path(os.environ.get("VIRTUAL_ENV", hcl.ROOT / ".venv"))
WHEEL_DIR = hcl.ROOT / ".venv" / "wheels"
CHECKOV = hcl.ROOT / ".venv-checkov" / "bin" / "checkov"


@pytest.fixture(scope="session")
def tree() -> hcl.Tree:
    return hcl.load()


@pytest.fixture(scope="session")
def schema() -> dict[str, Any]:
    return provider_schema.load(WHEEL_DIR)


@pytest.fixture(scope="session")
def real_module(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    module, diags = hcl.real_parse(hcl.TF_DIR, tmp_path_factory.mktemp("tf") / "copy")
    assert diags == [], diags
    return module
