"""A command ends with the threads it started with: none of Arrow's pool threads is left to abort the exit.

``gpulake status`` once printed its answer and then died with SIGABRT ("terminate called
without an active exception"): Arrow's CPU and I/O pool threads, started by reading Parquet
from a Python file object with threads and by a threaded ``group_by``, were still alive while
the interpreter shut down (apache/arrow#34314, #39862). It happened about once in 150 runs, so
the test checks its cause, which is deterministic: the threads a command leaves behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpulake_cli.main import main
from loaders.local_influx import LocalInflux
from tests.conftest import real_file

#: Runs one command in a fresh interpreter and prints how many threads it left running.
CHILD = """
import os, sys
import pyarrow, pyarrow.compute, pyarrow.csv, pyarrow.json, pyarrow.parquet  # their own threads start at import
from gpulake_cli.main import main
before = len(os.listdir("/proc/self/task"))
status = main(sys.argv[1:])
print(status, len(os.listdir("/proc/self/task")) - before, file=sys.stderr)
"""

COMMANDS = {
    "process": ["process", "raw", "--out", "again", "--node", "rig"],
    "alerts": ["alerts", "--from", "out", "--json"],
    "status": ["status", "--from", "out", "--json"],
    "report": ["report", "--from", "out", "--out", "report.html"],
    "sync to PostgreSQL": ["sync", "--to", "postgres", "--from", "out"],
    "sync to InfluxDB": ["sync", "--to", "influxdb", "--from", "out"],
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small fleet's raw files and their processed output, with a real nvidia-smi capture beside them."""
    path = tmp_path_factory.mktemp("exit")
    real = real_file("nvidia_smi/netdata__netdata__src_go_plugin_go.d_modules_nvidia_smi_testdata_tesla-p100.csv")
    raw, out = str(path / "raw"), str(path / "out")
    assert main(["simulate", "--out", raw, "--nodes", "1", "--gpus", "2", "--minutes", "30"]) == 0
    assert main(["process", raw, str(real), "--out", out, "--node", "rig"]) == 0
    return path


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_leaves_no_native_thread_running(
    command: str, workdir: Path, pg_dsn: str, influx_server: LocalInflux
) -> None:
    env = os.environ | {"GPULAKE_PG_DSN": pg_dsn, "GPULAKE_INFLUX_URL": influx_server.url, "GPULAKE_INFLUX_DB": "exit"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *COMMANDS[command]],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    status, left = proc.stderr.split()[-2:]
    assert (status, left) == ("0", "0"), proc.stderr[-3000:]
