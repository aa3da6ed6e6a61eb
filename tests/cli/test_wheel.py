"""The built wheel in a fresh virtualenv outside the checkout: what `pip install 'gpulake[cli]'` users get."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gpulake_cli.local_aws import LocalAws
from loaders.local_postgres import LocalPostgres
from tests.cli.helpers import ROOT
from tests.conftest import real_file

SUBCOMMANDS = ("process", "sync", "upload", "status", "alerts", "report", "simulate", "demo", "cost")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("gpulake-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv made by the system's Python (not this one's), with the wheel and its [cli] extra."""
    base = Path(getattr(sys, "_base_executable", sys.executable))
    env_dir = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([str(base), "-m", "venv", str(env_dir)], check=True, timeout=120)
    subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", f"{wheel}[cli]"], check=True, timeout=900
    )
    return env_dir


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory outside the checkout: nothing of the repository is importable from there."""
    assert ROOT not in tmp_path.parents
    return tmp_path


def gpulake(venv: Path, cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "GPULAKE_"))}
    return subprocess.run(
        [str(venv / "bin" / "gpulake"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean | (env or {}),
        timeout=600,
        check=False,
    )


def test_wheel_holds_the_packages_and_no_scripts_or_tests(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("gpulake-")}
    assert tops == {"gpulake", "gpulake_cli", "loaders"}, tops
    assert "gpulake_cli/samples/gpuz/ws-12/GPU-Z Sensor Log.txt" in names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "gpulake = gpulake_cli.main:main" in entry_points
    assert "gpulake-collector = gpulake_cli.collector:main" in entry_points
    # the compiled modules, one abi3 build each for every CPython >= 3.11 on this platform
    if shutil.which(os.environ.get("CC", "cc")):
        assert sorted(n for n in names if n.endswith(".so")) == [
            "gpulake/formats/_expo_scan_c.abi3.so",
            "gpulake/formats/_number_cells_c.abi3.so",
        ]
        assert "-cp311-abi3-" in wheel.name
    assert not [n for n in names if n.endswith(".c")]


def test_without_a_compiler_the_wheel_builds_with_the_python_scanner_only(tmp_path: Path) -> None:
    # GIVEN a checkout without build products, on a machine whose C compiler fails
    source = tmp_path / "src"
    shutil.copytree(
        ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "*.so", "node_modules")
    )
    env = {**os.environ, "CC": "false", "LDSHARED": "false"}
    # WHEN pip builds the wheel from source
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    subprocess.run(
        [*pip, "-w", str(tmp_path), str(source)],
        check=True,
        timeout=300,
        env=env,
        capture_output=True,
    )
    # THEN it still builds, without the extension, and the pure-Python scanner is in it
    (built,) = tmp_path.glob("gpulake-*.whl")
    names = zipfile.ZipFile(built).namelist()
    assert not [n for n in names if n.endswith(".so")]
    assert "gpulake/formats/_expo_scan.py" in names and "gpulake/formats/_values.py" in names
    assert not [n for n in names if n.endswith(".c")]


def test_every_subcommand_has_help_outside_the_checkout(venv: Path, workdir: Path) -> None:
    for command in SUBCOMMANDS:
        result = gpulake(venv, workdir, command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout.startswith(f"usage: gpulake {command}"), result.stdout
    collector = subprocess.run(
        [str(venv / "bin" / "gpulake-collector"), "--help"], capture_output=True, text=True, cwd=workdir, check=False
    )
    assert collector.returncode == 0 and "--bucket" in collector.stdout, collector.stderr


def test_installed_cli_runs_the_whole_pipeline(venv: Path, workdir: Path, pg_server: LocalPostgres) -> None:
    # simulate -> process -> alerts / status / report / sync / cost, all from the installed wheel
    assert gpulake(venv, workdir, "simulate", "--out", "raw", "--nodes", "1", "--gpus", "2").returncode == 0
    real = real_file("nvidia_smi/netdata__netdata__src_go_plugin_go.d_modules_nvidia_smi_testdata_tesla-p100.csv")
    done = gpulake(venv, workdir, "process", "raw", str(real), "--out", "out", "--node", "rig")
    assert done.returncode == 0, done.stderr
    assert list((workdir / "out" / "metrics").rglob("*.parquet"))
    alerts = gpulake(venv, workdir, "alerts", "--from", "out", "--json")
    assert alerts.returncode == 0, alerts.stderr
    status = gpulake(venv, workdir, "status", "--from", "out", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["processed"]["metrics"] >= 5
    report = gpulake(venv, workdir, "report", "--from", "out", "--out", "report.html")
    assert report.returncode == 0, report.stderr
    assert (workdir / "report.html").stat().st_size > 10_000
    sync = gpulake(
        venv, workdir, "sync", "--to", "postgres", "--from", "out", "--json", env={"GPULAKE_PG_DSN": pg_server.dsn}
    )
    assert sync.returncode == 0, sync.stderr
    assert json.loads(sync.stdout)["rows"] > 0
    cost = gpulake(venv, workdir, "cost", "--gpus", "8", "--interval", "15")
    assert cost.returncode == 0 and "$" in cost.stdout, cost.stderr


def test_installed_upload_reaches_s3(venv: Path, workdir: Path) -> None:
    aws = LocalAws().start()
    try:
        stack = aws.create_stack()
        sample = workdir / "rig-9" / "query-gpu.csv"
        sample.parent.mkdir()
        sample.write_bytes((ROOT / "gpulake_cli" / "samples" / "nvidia-smi" / "rig-7" / "query-gpu.csv").read_bytes())
        env = aws.env | {"AWS_ENDPOINT_URL": aws.endpoint}
        result = gpulake(venv, workdir, "upload", str(sample), "--bucket", stack.raw_bucket, "--json", env=env)
        assert result.returncode == 0, result.stderr
        keys = [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=stack.raw_bucket)["Contents"]]
        assert keys == ["nvidia-smi/rig-9/query-gpu.csv.gz"]
    finally:
        aws.stop()


def test_installed_demo_runs(venv: Path, workdir: Path) -> None:
    result = gpulake(venv, workdir, "demo", "--nodes", "1", "--gpus", "2", "--minutes", "20", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["rows_in_postgres"] > 0, summary
    assert (workdir / "demo-output" / "report.html").exists()


def test_collector_is_one_file_with_only_boto3() -> None:
    """`gpulake_cli/collector.py` copied alone to a node needs the standard library and boto3, nothing of ours."""
    import ast

    tree = ast.parse((ROOT / "gpulake_cli" / "collector.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported - sys.stdlib_module_names <= {"boto3", "botocore"}, imported
