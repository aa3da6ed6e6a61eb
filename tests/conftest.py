"""Shared test helpers: where the real-world fixtures live and how to read them."""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Beside the checkout; a git worktree elsewhere names the folder with GPULAKE_REAL_FIXTURES.
REAL = Path(os.environ.get("GPULAKE_REAL_FIXTURES") or ROOT.parent / "shared" / "fixtures" / "real")
COMPILED_SOURCES = sorted((ROOT / "lambda" / "gpulake" / "formats").glob("*.c"))


def build_scanner() -> None:
    """Build the compiled modules in place (a fresh clone has none) when a C compiler is there.

    Runs before any test imports gpulake, so ``_expo_scan.COMPILED`` and ``_values.COMPILED`` see
    the builds. Without a compiler the equivalence tests skip and everything runs on the Python twins.
    """

    def current(source: Path) -> bool:
        built = [p.stat().st_mtime for p in source.parent.glob(f"{source.stem}*.so")]
        return bool(built) and max(built) >= source.stat().st_mtime

    if all(current(source) for source in COMPILED_SOURCES) or not shutil.which(os.environ.get("CC", "cc")):
        return
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=ROOT, check=True, capture_output=True
    )


build_scanner()

from loaders.local_influx import LocalInflux  # noqa: E402
from loaders.local_postgres import LocalPostgres  # noqa: E402


def real_file(relative: str) -> Path:
    """A file of ``../shared/fixtures/real`` read in place; skip (or fail in CI) when absent."""
    path = REAL / relative
    if not path.exists():
        message = f"real fixture {relative} not found at {REAL} (clone the project beside shared/)"
        if os.environ.get("GPULAKE_REQUIRE_REAL_FIXTURES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def script_module(name: str) -> ModuleType:
    """A checkout tool of ``scripts/`` imported from its file (scripts are not an installed package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def real_files(folder: str, pattern: str = "*") -> list[Path]:
    """Every real fixture under ``folder`` (evaluated at collection time)."""
    base = REAL / folder
    return sorted(p for p in base.glob(pattern) if p.is_file()) if base.exists() else []


#: (label, path) of files tests leave for people to look at, listed at the end of the run
ARTIFACTS: list[tuple[str, Path]] = []
ARTIFACT_DIR = ROOT / "build" / "test-artifacts"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for label, path in ARTIFACTS:
        terminalreporter.write_line(f"artifact: {label}: {path}")


_databases = itertools.count()


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Each test sees the environment the session started with: in-process runners (the demo's
    IngestRunner) set handler variables such as GPULAKE_EPISODES_TABLE that must not leak into later tests."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    """One throwaway PostgreSQL cluster for the session (initdb + pg_ctl on a free port)."""
    server = LocalPostgres().start()
    yield server
    server.stop()


@pytest.fixture
def pg_dsn(pg_server: LocalPostgres) -> str:
    """A fresh database per test."""
    name = f"t{next(_databases)}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg_server.dsn.replace("dbname=postgres", f"dbname={name}")


@pytest.fixture(scope="session")
def influx_server() -> Iterator[LocalInflux]:
    """One influxd (Debian's 1.6) for the session, temporary config and data, free ports."""
    server = LocalInflux().start()
    yield server
    server.stop()
