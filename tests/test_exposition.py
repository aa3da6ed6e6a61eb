"""promtool (Debian's prometheus) parses the simulator's dcgm-exporter scrapes as it parses real ones.

promtool exits 1 on a parse error and 3 on lint findings; dcgm-exporter's own output has lint findings
(camelCase labels such as modelName, counters without _total), so 3 is accepted, parse errors are not.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from gpulake_cli.simulate_fleet import FleetSpec, simulate
from tests.conftest import real_file


def _promtool(text: str) -> tuple[int, str]:
    binary = shutil.which("promtool")
    assert binary, "promtool not found: `make install` installs Debian's prometheus package"
    run = subprocess.run([binary, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    return run.returncode, run.stdout + run.stderr


def test_real_scrape_parses() -> None:
    code, output = _promtool(
        real_file("dcgm/NVIDIA__aicr__evidence_accelerator-metrics_md__H100x8_4.x_filtered.prom").read_text()
    )
    assert code in (0, 3) and "parsing error" not in output, output


def test_every_simulated_scrape_parses(tmp_path: Path) -> None:
    (path,) = simulate(tmp_path, FleetSpec(nodes=1, gpus=2, minutes=1, interval_s=20, formats=("dcgm",)))
    scrapes = ["# gpulake-scrape" + part for part in path.read_text().split("# gpulake-scrape")[1:]]
    assert len(scrapes) == 3
    for scrape in scrapes:
        code, output = _promtool(scrape)
        assert code in (0, 3) and "parsing error" not in output, output
        assert "camelCase" in output  # the same findings as dcgm-exporter's real output


def test_promtool_rejects_a_broken_scrape() -> None:
    code, output = _promtool('DCGM_FI_DEV_GPU_TEMP{gpu="0" 41\n')
    assert code == 1 and "parsing error" in output
