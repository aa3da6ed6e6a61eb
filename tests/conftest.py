"""Shared test helpers: where the real-world fixtures live and how to read them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "fixtures" / "real"
sys.path.insert(0, str(ROOT / "lambda"))
sys.path.insert(0, str(ROOT / "scripts"))


def real_file(relative: str) -> Path:
    """A file of ``../shared/fixtures/real`` read in place; skip (or fail in CI) when absent."""
    path = REAL / relative
    if not path.exists():
        message = f"real fixture {relative} not found at {REAL} (clone the project beside shared/)"
        if os.environ.get("GPULAKE_REQUIRE_REAL_FIXTURES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


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
