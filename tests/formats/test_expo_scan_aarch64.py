"""The Lambda (arm64) builds of the compiled modules: cross-built, imported by an arm64 CPython under qemu-user.

They must scan and read cells exactly as this machine's builds do; those are held to the Python
references by ``test_expo_scan.py`` and ``test_number_cells.py``. Needs ``make test``'s system
packages (gcc-aarch64-linux-gnu, qemu-user-static) and ``scripts/aarch64_python.sh`` (Debian's arm64
python3.11, unpacked).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gpulake.formats import _expo_scan, _values
from gpulake_cli.simulate_fleet import FleetSpec, simulate
from tests.conftest import ROOT, script_module
from tests.formats.test_expo_scan import QUIRKS
from tests.formats.test_number_cells import ODD_CELLS

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
*buffers, extra, bad = scanner.finish()
sys.stdout.buffer.write(pickle.dumps((*map(bytes, buffers), {k: bytes(v) for k, v in extra.items()}, bad)))
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

#: Runs in both interpreters (no numpy in the arm64 one): classify() over one cell per line, buffers printed.
RAW_CELLS = """
import array, struct, sys
sys.path.insert(0, sys.argv[1])
import _number_cells_c
cells = open(sys.argv[2], "rb").read().split(b"\\n")
offsets = array.array("i", [0])
for cell in cells:
    offsets.append(offsets[-1] + len(cell))
values, kinds = bytearray(8 * len(cells)), bytearray(len(cells))
_number_cells_c.classify(offsets, b"".join(cells), values, kinds)
for i, cell in enumerate(cells):
    print(cell.hex(), kinds[i], values[8 * i : 8 * i + 8].hex())
"""

#: Runs in both interpreters: a CSV section split, every cell classified, column 0 read as times
#: and column 1 gathered; every buffer printed in hex.
RAW_TABLE = """
import array, sys
sys.path.insert(0, sys.argv[1])
import _number_cells_c as c
text, ncols = open(sys.argv[2], "rb").read(), 4
lines = c.lines(text)
bounds, rejected = array.array("i", bytes(4 * lines * (ncols + 1))), array.array("i", bytes(8 * lines))
rows, bad = c.split(text, ncols, b"Date", bounds, rejected)
print(rows, bad, bounds[: rows * (ncols + 1)].tobytes().hex(), rejected[: 2 * bad].tobytes().hex())
values, kinds, others = bytearray(8 * ncols * rows), bytearray(ncols * rows), bytearray(8 * ncols)
print(c.classify_rows(bounds, ncols, text, values, kinds, others), values.hex(), kinds.hex(), others.hex())
ms, time_kinds = bytearray(8 * rows), bytearray(rows)
print(c.read_times(bounds, ncols, 0, text, ms, time_kinds), ms.hex(), time_kinds.hex())
offsets = array.array("i", bytes(4 * (rows + 1)))
data = bytearray(len(text))
print(c.gather(bounds, ncols, 1, text, data, offsets), offsets.tobytes().hex(), data.hex())
"""

pytestmark = pytest.mark.skipif(
    not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64-static") and ARM_PYTHON.exists()),
    reason="needs gcc-aarch64-linux-gnu, qemu-user-static and scripts/aarch64_python.sh (make test installs them)",
)


def lambda_build(tmp_path: Path, module: str) -> Path:
    """The arm64 build of one compiled module, as package_lambda puts it in the zip."""
    built = dict((arcname, path) for path, arcname in script_module("package_lambda").aarch64_modules(tmp_path))
    path = built[f"gpulake/formats/{module}.abi3.so"]
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == EM_AARCH64
    return path


def run_both(script: str, tmp_path: Path, built: Path, host_dir: Path, *args: str) -> tuple[bytes, bytes]:
    """``script`` run by this machine's Python on ``host_dir`` and by the arm64 one on ``built``: their stdouts."""
    path = tmp_path / "both.py"
    path.write_text(script)
    host = subprocess.run([sys.executable, str(path), str(host_dir), *args], capture_output=True, check=True)
    arm = subprocess.run(
        ["qemu-aarch64-static", "-L", str(ARM_ROOT), str(ARM_PYTHON), str(path), str(built.parent), *args],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return host.stdout, arm.stdout


def test_lambda_build_is_aarch64_and_scans_like_this_machine(tmp_path: Path) -> None:
    # GIVEN the arm64 build package_lambda puts in the zip, and this machine's build
    built = lambda_build(tmp_path, "_expo_scan_c")
    assert _expo_scan.COMPILED
    host_dir = Path(_expo_scan._expo_scan_c.__file__).parent
    data = tmp_path / "scrape.prom"
    (simulated,) = simulate(tmp_path / "raw", FleetSpec(nodes=1, gpus=2, minutes=5, formats=("dcgm",)))
    data.write_bytes(QUIRKS + simulated.read_bytes())
    # WHEN both interpreters scan the same bytes
    host, arm = run_both(RAW_SCAN, tmp_path, built, host_dir, str(data))
    # THEN the buffers and quarantined lines are the same
    assert arm == host


def test_lambda_build_of_the_cell_reader_reads_cells_like_this_machine(tmp_path: Path) -> None:
    # GIVEN the arm64 build of _number_cells_c, this machine's build, and cells of every kind
    built = lambda_build(tmp_path, "_number_cells_c")
    assert _values.COMPILED
    host_dir = Path(_values._number_cells_c.__file__).parent
    cells = tmp_path / "cells.txt"
    cells.write_text("\n".join(ODD_CELLS + [f"{x:.17g}" for x in np.random.default_rng(5).normal(0, 1e6, 500)]))
    # WHEN both interpreters classify them
    host, arm = run_both(RAW_CELLS, tmp_path, built, host_dir, str(cells))
    # THEN every value (bit for bit) and kind is the same
    assert arm == host and host.count(b"\n") == len(ODD_CELLS) + 500


def test_lambda_build_of_the_cell_reader_splits_tables_like_this_machine(tmp_path: Path) -> None:
    # GIVEN the arm64 build of _number_cells_c, this machine's build, and a log of rows, odd cells and times
    built = lambda_build(tmp_path, "_number_cells_c")
    host_dir = Path(_values._number_cells_c.__file__).parent
    rng = np.random.default_rng(7)
    odd = [cell for cell in ODD_CELLS if cell.isascii() and not set(cell) & set(",\r")]  # none the split declines
    lines = [
        f"2026-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:{(7 * i) % 61:02d} , "
        f"{rng.normal(0, 1e6):.17g} , {odd[i % len(odd)]!s} , {rng.integers(0, 64)} ,"
        for i in range(400)
    ]
    lines[5:5] = ["", "Date , a , b , c", "  Date , a , b ,", "1 , 2", "2026-02-30 00:00:00 , 1 , 2 , 3"]
    table = tmp_path / "table.csv"
    table.write_bytes("\r\n".join(lines).encode())
    # WHEN both interpreters split and read it
    host, arm = run_both(RAW_TABLE, tmp_path, built, host_dir, str(table))
    # THEN every buffer is the same, bit for bit
    assert arm == host and host.count(b"\n") == 4 and not host.startswith(b"0 ")
