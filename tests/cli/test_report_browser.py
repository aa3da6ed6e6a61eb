"""report.html opened in headless Chromium: no script errors, every plot decodes, renders and is not blank."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.cli.helpers import run
from tests.conftest import ARTIFACT_DIR, ARTIFACTS

PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e)));
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0).length;
  document.title = `PROBE images=${imgs.length} rendered=${ok} errors=${window.__errors.length}`;
});
</script>"""


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium not found: `make install` installs Debian's chromium"
    return binary


def _non_white_share(image: Image.Image) -> float:
    gray = image.convert("L")
    histogram = gray.histogram()
    return 1 - sum(histogram[245:]) / (gray.width * gray.height)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("report")
    assert (
        run(
            "simulate",
            "--out",
            str(base / "raw"),
            "--nodes",
            "2",
            "--gpus",
            "2",
            "--minutes",
            "240",
            "--interval",
            "60",
        ).returncode
        == 0
    )
    assert (
        run(
            "process",
            str(base / "raw"),
            str(Path(__file__).parents[2] / "gpulake_cli" / "samples"),
            "--out",
            str(base / "out"),
        ).returncode
        == 0
    )
    result = run("report", "--from", str(base / "out"), "--out", str(base / "report.html"))
    assert result.returncode == 0, result.stderr
    return base / "report.html"


def test_report_is_self_contained_with_every_section(report: Path) -> None:
    html = report.read_text()
    for section in ("Fleet summary", "Daily statistics", "Hourly patterns", "Temperature spikes",
                    "Metric correlations", "Throttled time per GPU and cause", "Hottest GPUs", "Health score",
                    "Alert timeline"):  # fmt: skip
        assert f"<h2>{section}</h2>" in html
    assert not re.search(r'src="(?!data:)', html) and "<link" not in html


def test_every_plot_has_content(report: Path) -> None:
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', report.read_text())
    assert len(images) == 7
    for data in images:
        assert _non_white_share(Image.open(io.BytesIO(base64.b64decode(data)))) > 0.02


def test_chromium_renders_every_plot_without_script_errors(report: Path, tmp_path: Path) -> None:
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</head>", PROBE + "</head>"))
    browser = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run([*browser, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    title = re.search(r"<title>(PROBE[^<]*)</title>", dom.stdout)
    assert title, dom.stderr[-2000:]
    assert title.group(1) == "PROBE images=7 rendered=7 errors=0"
    ARTIFACT_DIR.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACT_DIR / "report.png"
    subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,5200",
         f"--screenshot={shot}", report.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    with Image.open(shot) as image:
        assert image.size == (1200, 5200)
        assert _non_white_share(image) > 0.03
    ARTIFACTS.append(("report screenshot", shot))
