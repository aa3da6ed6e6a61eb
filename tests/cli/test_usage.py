"""Every subcommand: --help works; bad arguments exit 2 with one line and no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gpulake_cli.main import SOURCES
from tests.cli.helpers import run

COMMANDS = ["process", "upload", "sync", "status", "alerts", "report", "simulate", "demo", "cost"]


def test_top_level_help_lists_every_command() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: gpulake {command}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "required"),
        (["nope"], "invalid choice"),
        (["process"], "required"),
        (["upload"], "required"),
        (["upload", "x.csv", "--source", "csv"], "invalid choice"),
        (["sync", "--to", "mysql"], "invalid choice"),
        (["alerts", "--from", ".", "--since", "5 parsecs"], "--since"),
        (["report"], "--out"),
        (["simulate", "--out", "x", "--nodes", "0"], "greater than 0"),
        (["demo", "--minutes", "soon"], "not a number"),
        (["cost", "--gpus", "-4", "--interval", "15"], "greater than 0"),
        (["cost", "--interval", "15"], "--gpus"),
        (["process", "x", "--out", "y", "--tz", "Mars/Olympus"], "Mars/Olympus"),
    ],
)
def test_bad_arguments_exit_2_in_one_line(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_sync_without_settings_says_what_to_set(tmp_path) -> None:
    result = run("sync", "--to", "postgres", "--from", str(tmp_path), "--env-file", str(tmp_path / "none"))
    assert result.returncode == 2
    assert "GPULAKE_PG_DSN" in result.stderr and "Traceback" not in result.stderr


def test_help_imports_no_subcommand_code() -> None:
    # GIVEN the CLI asked only for its usage
    code = (
        "import sys\n"
        "from gpulake_cli.main import main\n"
        "try:\n    main(['process', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pyarrow', 'pandas', 'numpy', 'boto3', 'loaders', 'gpulake')), file=sys.stderr)"
    )
    # WHEN it runs THEN nothing but the error classes (and the package's allocator choice, which must
    # come before pyarrow is imported) is loaded: start-up stays instant
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stderr.strip() == "['gpulake', 'gpulake._allocator', 'gpulake.errors']"


def test_known_formats_are_the_registry() -> None:
    from gpulake.formats import FORMATS

    assert sorted(SOURCES) == sorted(FORMATS)


def test_help_constants_are_the_ones_the_code_uses() -> None:
    from gpulake import limits
    from gpulake_cli import main
    from loaders.window import LOOKBACK_DAYS

    assert main.SYNC_LOOKBACK_DAYS == LOOKBACK_DAYS
    assert main.MAX_INFLATED_VAR == limits.ENV_VAR


def test_process_runs_without_importing_pandas(tmp_path) -> None:
    # GIVEN a small dcgm file
    sample = tmp_path / "scrape.prom"
    sample.write_text('DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="h"} 41 1763000000000\n')
    code = (
        "import sys\n"
        "from gpulake_cli.main import main\n"
        f"main(['process', {str(sample)!r}, '--out', {str(tmp_path / 'out')!r}, '--json'])\n"
        "print('pandas' in sys.modules, file=sys.stderr)"
    )
    # WHEN the CLI processes it THEN pyarrow never pulls pandas in (0.5 s of start-up)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert '"rows": 1' in result.stdout
    assert result.stderr.strip() == "False"
