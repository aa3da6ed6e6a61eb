"""The Lambda (arm64) build of the compiled scanner: cross-built, imported by an arm64 CPython under qemu-user.

It must scan exactly as this machine's build does; that build is held to the Python reference by
``test_expo_scan.py``. Needs ``make test``'s system packages (gcc-aarch64-linux-gnu, qemu-user-static)
and ``scripts/aarch64_python.sh`` (Debian's arm64 python3.11, unpacked).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gpulake.formats import _expo_scan
from gpulake_cli.simulate_fleet import FleetSpec, simulate
from tests.conftest import ROOT, script_module
from tests.formats.test_expo_scan import QUIRKS

ARM_ROOT = ROOT / "build" / "aarch64-python"
ARM_PYTHON = ARM_ROOT / "usr" / "bin" / "python3.11"
EM_AARCH64 = 183
#: Runs in both interpreters: the raw scanner over a file, its buffers pickled to stdout.
RAW_SCAN = """
import pickle, sys
from decimal import Decimal
sys.path.insert(0, sys.argv[1])
import _expo_scan_c
SENTINELS, BLANK_MIN, MIN_TIME_MS, MAX_TIME_MS = ARGS
def is_blank(token):  # _expo_scan.is_blank, standalone: the arm64 interpreter has no numpy
    try:
        value = Decimal(token.decode("ascii"))
    except Exception:
        return False
    return value.is_finite() and value == value.to_integral_value() and int(value) in SENTINELS
def impossible(value, low, high):
    return f"impossible value {value:g} (possible: {low:g}..{high:g})"
def resolve(head):
    if b"{" not in head:
        return "no labels"
    scale = 100.0 if b"RATIO" in head else 1.0
    return (len(head) % 5, len(head) % 3 - 1, len(head) % 4, scale, -1e300 if len(head) % 2 else 0.0, 1000.0)
rules = (SENTINELS, BLANK_MIN, is_blank, impossible)
scanner = _expo_scan_c.Scanner(resolve, 3, 1763000000000, rules, MIN_TIME_MS, MAX_TIME_MS)
scanner.feed(open(sys.argv[2], "rb").read())
sys.stdout.buffer.write(pickle.dumps(scanner.finish()))
""".replace(
    "ARGS",
    repr(
        (
            _expo_scan.VALUE_RULES.blank_sentinels,
            _expo_scan.VALUE_RULES.blank_min,
            _expo_scan.MIN_TIME_MS,
            _expo_scan.MAX_TIME_MS,
        )
    ),
)

pytestmark = pytest.mark.skipif(
    not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64-static") and ARM_PYTHON.exists()),
    reason="needs gcc-aarch64-linux-gnu, qemu-user-static and scripts/aarch64_python.sh (make test installs them)",
)


def test_lambda_build_is_aarch64_and_scans_like_this_machine(tmp_path: Path) -> None:
    # GIVEN the arm64 build package_lambda puts in the zip, and this machine's build
    ((built, arcname),) = script_module("package_lambda").aarch64_scanner(tmp_path)
    header = built.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == EM_AARCH64
    assert arcname == "gpulake/formats/_expo_scan_c.abi3.so"
    assert _expo_scan.COMPILED
    host_dir = Path(_expo_scan._expo_scan_c.__file__).parent
    data = tmp_path / "scrape.prom"
    (simulated,) = simulate(tmp_path / "raw", FleetSpec(nodes=1, gpus=2, minutes=5, formats=("dcgm",)))
    data.write_bytes(QUIRKS + simulated.read_bytes())
    script = tmp_path / "raw_scan.py"
    script.write_text(RAW_SCAN)
    # WHEN both interpreters scan the same bytes
    host = subprocess.run([sys.executable, str(script), str(host_dir), str(data)], capture_output=True, check=True)
    arm = subprocess.run(
        ["qemu-aarch64-static", "-L", str(ARM_ROOT), str(ARM_PYTHON), str(script), str(built.parent), str(data)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    # THEN the buffers and quarantined lines are the same
    assert arm.stdout == host.stdout
