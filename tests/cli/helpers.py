"""Running the CLI the way users do: a subprocess of automated_pipeline.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "automated_pipeline.py"


def run(*args: str, env: dict[str, str | None] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``env`` adds to this process's environment; a None value removes that variable."""
    merged = os.environ | (env or {})
    return subprocess.run(
        [sys.executable, str(CLI), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in merged.items() if v is not None},
        cwd=ROOT,
        check=False,
    )
