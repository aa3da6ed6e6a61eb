"""A throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl`` on a free port) for the demo and the tests.

Debian's ``postgresql`` package provides the binaries; nothing is installed as a
service and nothing outlives :meth:`LocalPostgres.stop`. initdb refuses to run as
root, so under root the cluster runs as the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from gpulake.errors import ConfigError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise ConfigError(f"{name} not found: install PostgreSQL (`apt-get install postgresql`; `make install` does)")
    return found


class LocalPostgres:
    """Start with :meth:`start`, connect with :attr:`dsn`, always :meth:`stop` (or use ``with``)."""

    def __init__(self, base: Path | None = None) -> None:
        self.base = Path(base or tempfile.mkdtemp(prefix="gpulake-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self._as_user: list[str] = []
        self.started = False

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres"

    def _run(self, *args: str) -> None:
        run = subprocess.run([*self._as_user, *args], capture_output=True, text=True, check=False, timeout=120)
        if run.returncode != 0:
            raise ConfigError(f"{Path(args[0]).name} failed: {(run.stderr or run.stdout).strip()[-800:]}")

    def start(self) -> LocalPostgres:
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.base, "postgres")
        self._run(_binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} -c fsync=off -c max_connections=40"
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.base / "log"), "-w", "start")
        self.started = True
        return self

    def stop(self) -> None:
        if self.started:
            self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
