"""Our dependency layers, built for this machine's platform, run the handlers in a clean interpreter.

The arm64 layers Lambda gets cannot load here, so the test builds the same pinned set for this
machine (``package_lambda.this_machine()``; wheels cached under ``build/wheels/``) and imports
the handlers with only the code zip, the layer and a stand-in for Lambda's runtime (boto3) on
``sys.path``: ``python -I -S -B`` (no site-packages, no environment, no bytecode written, as on
Lambda's read-only /opt).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest

from gpulake_cli.local_aws import LocalAws
from tests.conftest import ARTIFACT_DIR, ARTIFACTS, script_module

package_lambda = script_module("package_lambda")
ROOT = Path(__file__).resolve().parents[1]
BOTO3 = f"boto3=={boto3.__version__}"
KEY = "nvidia-smi/rig-7/query-gpu.csv"
MEASURED = ARTIFACT_DIR / "layer-cold-import.json"


def _measured(module: str, seconds: float) -> None:
    """Keep the cold import time for people (listed at the end of the run)."""
    MEASURED.parent.mkdir(parents=True, exist_ok=True)
    found = json.loads(MEASURED.read_text()) if MEASURED.exists() else {}
    MEASURED.write_text(json.dumps(found | {module: round(seconds, 3)}, indent=1))
    if ("cold import from the layers (s)", MEASURED) not in ARTIFACTS:
        ARTIFACTS.append(("cold import from the layers (s)", MEASURED))


CHILD = """
import json, sys, time
sys.path[:0] = {paths!r}
began = time.perf_counter()
import {module}
seconds = time.perf_counter() - began
result = None
if {run!r}:
    event = json.loads(sys.argv[1])
    result = {module}.handler(event, type("Context", (), {{"function_name": "f", "memory_limit_in_mb": 1024,
        "invoked_function_arn": "arn:aws:lambda:us-east-1:0:function:f", "aws_request_id": "r"}})())
pandas = sorted(m for m in sys.modules if m.split(".")[0] == "pandas")
import pyarrow
print(json.dumps({{"seconds": seconds, "pandas": pandas, "result": result, "pyarrow": pyarrow.__file__}}))
"""


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    here = package_lambda.this_machine()
    base = tmp_path_factory.mktemp("lambda")
    runtime = package_lambda.BUILD / "layers" / here.name / "runtime"  # Lambda's /var/runtime provides boto3
    if not (runtime / "boto3").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(runtime), BOTO3], check=True)
    found = {"runtime": runtime}
    for kind in ("ingest", "loader"):
        layer_zip, _ = package_lambda.build_layer(kind, here)
        code_zip, _ = package_lambda.build(base / f"{kind}-code.zip", kind)
        for name, archive in ((f"{kind}-layer", layer_zip), (f"{kind}-task", code_zip)):
            with zipfile.ZipFile(archive) as z:
                z.extractall(base / name)
            found[name] = base / name
        found[f"{kind}-zip"] = layer_zip
    return found


def _child(unpacked: dict[str, Path], kind: str, module: str, event: dict | None, env: dict[str, str]) -> dict:
    paths = [str(unpacked[f"{kind}-task"]), str(unpacked[f"{kind}-layer"] / "python"), str(unpacked["runtime"])]
    code = CHILD.format(paths=paths, module=module, run=event is not None)
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", code, json.dumps(event)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_ingest_handler_runs_from_the_layer_without_pandas(unpacked: dict[str, Path]) -> None:
    aws = LocalAws().start()
    try:
        stack = aws.create_stack("layers")
        body = (ROOT / "gpulake_cli" / "samples" / "nvidia-smi" / "rig-7" / "query-gpu.csv").read_bytes()
        aws.client("s3").put_object(Bucket=stack.raw_bucket, Key=KEY, Body=body)
        s3 = {"bucket": {"name": stack.raw_bucket}, "object": {"key": KEY}}
        event = {"Records": [{"eventSource": "aws:s3", "s3": s3}]}
        env = aws.env | {"GPULAKE_PROCESSED_BUCKET": stack.processed_bucket, "POWERTOOLS_LOG_LEVEL": "WARNING"}
        out = _child(unpacked, "ingest", "gpulake.handlers.ingest", event, env)
        listed = aws.client("s3").list_objects_v2(Bucket=stack.processed_bucket).get("Contents", [])
    finally:
        aws.stop()
    assert out["result"] == {"processed": 1}
    assert any(o["Key"].startswith("metrics/source=nvidia-smi/") for o in listed)
    assert out["pandas"] == [] and out["pyarrow"].startswith(str(unpacked["ingest-layer"]))
    _measured("gpulake.handlers.ingest", out["seconds"])


def test_loader_handler_imports_from_its_layer(unpacked: dict[str, Path]) -> None:
    out = _child(unpacked, "loader", "loaders.handler", None, {})
    assert out["pandas"] == [] and out["pyarrow"].startswith(str(unpacked["loader-layer"]))
    _measured("loaders.handler", out["seconds"])


def test_layers_are_trimmed_and_reproducible(unpacked: dict[str, Path]) -> None:
    with zipfile.ZipFile(unpacked["loader-zip"]) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    assert names == sorted(names) and all(n.startswith("python/") for n in names)
    assert {i.date_time for i in infos} == {package_lambda.FIXED_TIME}
    for junk in ("flight", "gandiva", "pyarrow/_substrait", "/tests/", "pyarrow/include/", "__pycache__", "pandas/"):
        assert not any(junk in n.lower() for n in names), junk
    assert any(n.startswith("python/psycopg_binary/") for n in names)
    first = hashlib.sha256(unpacked["ingest-zip"].read_bytes()).hexdigest()
    again, _ = package_lambda.build_layer("ingest", package_lambda.this_machine())
    assert hashlib.sha256(again.read_bytes()).hexdigest() == first
