"""The AWS provider's schema, read from the jsii manifest of the ``cdktf-cdktf-provider-aws`` wheel.

That wheel (21.22.1 = hashicorp/aws 6.25.0) carries, per resource and data source,
a ``...Config`` struct whose properties name their Terraform argument in their docs
(``.../resources/lambda_function#function_name``) and say whether they are optional;
struct-typed properties are nested blocks. The wheel is never imported: its manifest
is reduced once to ``{type: {"args": {name: required}, "blocks": {name: {...}}}}``
and cached as JSON beside the wheel.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import zipfile
from pathlib import Path
from typing import Any

WHEEL_GLOB = "cdktf_cdktf_provider_aws-21.22.1-*.whl"
PROVIDER_VERSION = "6.25.0"
_DOC = re.compile(r"docs/(resources|data-sources)/([a-z0-9_]+)(?:#([a-z0-9_]+))?")
_META = {"count", "for_each", "depends_on", "provider", "lifecycle", "connection", "provisioner"}


def _manifest(wheel: Path) -> dict[str, Any]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(archive.read(name))) as tar:
            member = tar.extractfile("package/.jsii")
            assert member is not None
            return json.load(member)


def _struct_fqns(type_ref: dict[str, Any]) -> list[str]:
    """The provider structs a property's type refers to (through unions and collections)."""
    if "fqn" in type_ref:
        return [type_ref["fqn"]] if type_ref["fqn"].startswith("@cdktf/provider-aws.") else []
    if "union" in type_ref:
        return [f for t in type_ref["union"]["types"] for f in _struct_fqns(t)]
    if "collection" in type_ref:
        return _struct_fqns(type_ref["collection"]["elementtype"])
    return []


def _block(types: dict[str, Any], fqn: str, depth: int = 0) -> dict[str, Any]:
    args: dict[str, bool] = {}
    blocks: dict[str, Any] = {}
    for prop in types[fqn].get("properties", []):
        docs = prop.get("docs", {})
        match = _DOC.search(docs.get("summary", "") + " " + docs.get("remarks", ""))
        if not match or not match.group(3):
            continue
        name = match.group(3)
        nested = [f for f in _struct_fqns(prop["type"]) if types.get(f, {}).get("datatype")]
        if nested and depth < 8:
            blocks[name] = _block(types, nested[0], depth + 1) | {"required": not prop.get("optional", False)}
        else:
            args[name] = not prop.get("optional", False)
    return {"args": args, "blocks": blocks}


def build(wheel: Path) -> dict[str, Any]:
    """``{"aws_x": schema, "data.aws_y": schema}`` for every resource and data source."""
    types = _manifest(wheel)["types"]
    schema: dict[str, Any] = {}
    for fqn, spec in types.items():
        if spec.get("kind") != "class" or not fqn.startswith("@cdktf/provider-aws."):
            continue
        match = _DOC.search(spec.get("docs", {}).get("summary", ""))
        config = f"{fqn}Config"
        if not match or config not in types or not spec.get("docs", {}).get("summary", "").startswith("Represents"):
            continue
        kind, name = match.group(1), f"aws_{match.group(2)}"
        schema[name if kind == "resources" else f"data.{name}"] = _block(types, config)
    return schema


def load(wheel_dir: Path) -> dict[str, Any]:
    """The cached schema index, built from the wheel in ``wheel_dir`` on first use."""
    wheels = sorted(wheel_dir.glob(WHEEL_GLOB))
    if not wheels:
        raise FileNotFoundError(f"no {WHEEL_GLOB} in {wheel_dir}; run `make install`")
    cache = wheels[-1].with_suffix(".schema.json")
    if not cache.exists():
        cache.write_text(json.dumps(build(wheels[-1]), sort_keys=True))
    return json.loads(cache.read_text())


def is_meta(name: str) -> bool:
    return name in _META
