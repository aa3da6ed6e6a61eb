"""docs/deploy.md's variables table lists every variable with its real type and default."""

from __future__ import annotations

import json
import re

from tests.terraform import hcl

ROW = re.compile(r"^\| `(\w+)` \| `([^`]+)` \| (.+?) \| (.+) \|$", re.M)


def _default(spec: dict) -> str:
    value = hcl.unquote(spec.get("default"))
    if value is None:
        return "`null`"
    if value == "":
        return '`""`'
    return f"`{value}`" if isinstance(value, str) else f"`{json.dumps(value)}`"


def test_variables_table_matches_variables_tf(tree: hcl.Tree) -> None:
    text = (hcl.ROOT / "docs" / "deploy.md").read_text()
    rows = {name: (typ, default) for name, typ, default, _ in ROW.findall(text)}
    expected = {
        name: (hcl.unquote(spec["type"]).replace("${", "").replace("}", ""), _default(spec))
        for name, spec in tree.variables.items()
    }
    assert rows == expected, "regenerate the table in docs/deploy.md from terraform/variables.tf"


def test_readme_points_to_deploy_doc() -> None:
    assert "docs/deploy.md" in (hcl.ROOT / "README.md").read_text()
