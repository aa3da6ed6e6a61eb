"""report.html opened in headless Chromium, offline: every chart renders, nothing overlaps, axes say their units.

A probe script injected into a copy of the page measures the rendered SVG (bounding boxes of legends,
plot areas, tick labels, axis titles, colour bars) and writes what it found into the DOM, which
``--dump-dom`` hands back. Network access is cut (every host resolves to nothing), so a chart that
needed a CDN would not render.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import plotly.graph_objects as go
import pytest
from PIL import Image

from gpulake_cli.simulate_fleet import FleetSpec, simulate
from tests.cli.helpers import ROOT, run
from tests.conftest import ARTIFACT_DIR, ARTIFACTS

CHARTS = 8
WIDTH = 1280
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND"
PROBE = (Path(__file__).parent / "report_probe.js").read_text()


def _chromium() -> list[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium not found: `make install` installs Debian's chromium"
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", OFFLINE]


def _non_white_share(image: Image.Image) -> float:
    gray = image.convert("L")
    histogram = gray.histogram()
    return 1 - sum(histogram[245:]) / (gray.width * gray.height)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulated fleet + bundled samples, and a second burst a month later (gaps, periods, range slider)."""
    base = tmp_path_factory.mktemp("report")
    simulate_args = ["--out", str(base / "raw"), "--nodes", "2", "--gpus", "2", "--minutes", "240", "--interval", "60"]
    assert run("simulate", *simulate_args).returncode == 0
    later = FleetSpec(nodes=2, gpus=2, minutes=120, interval_s=60, start=dt.datetime(2026, 12, 3, 6, tzinfo=dt.UTC))
    simulate(base / "later", later)
    samples = str(ROOT / "gpulake_cli" / "samples")
    assert run("process", str(base / "raw"), str(base / "later"), samples, "--out", str(base / "out")).returncode == 0
    result = run("report", "--from", str(base / "out"), "--out", str(base / "report.html"))
    assert result.returncode == 0, result.stderr
    return base / "report.html"


def _probe(page: Path, copy: Path) -> dict:
    """What the probe measured in a copy of ``page`` opened in Chromium at 1280 px."""
    copy.write_text(page.read_text().replace("<head>", f"<head><script>{PROBE}</script>", 1))
    dom = subprocess.run(
        [*_chromium(), f"--window-size={WIDTH},900", "--virtual-time-budget=15000", "--dump-dom", copy.as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stderr[-2000:]
    return json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


@pytest.fixture(scope="module")
def probed(report: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _probe(report, tmp_path_factory.mktemp("probe") / "probe.html")


def test_the_probe_sees_a_legend_over_data_and_axes_without_units(tmp_path: Path) -> None:
    # GIVEN a chart the old report would have drawn: legend inside the plot, unlabelled axes
    fig = go.Figure([go.Scatter(x=[1, 2, 3], y=[1, 2, 3], name="mean °C"), go.Bar(x=[1, 2, 3], y=[3, 1, 2], name="W")])
    fig.update_layout(legend={"x": 0.4, "y": 0.6}, height=400)
    fig.update_xaxes(title_text="hour")
    bad = tmp_path / "bad.html"
    bad.write_text(fig.to_html(include_plotlyjs=True, full_html=True))
    # WHEN
    found = _probe(bad, tmp_path / "probe.html")
    # THEN
    assert found["charts"] == 1 and found["errors"] == []
    assert any("legend over plot area" in overlap for overlap in found["overlaps"]), found["overlaps"]
    assert sorted(found["untitled"]) == [
        f'{found["ids"][0]} xaxis: "hour" has no unit',
        f"{found['ids'][0]} yaxis: no title",
    ]


def test_report_is_self_contained_with_every_section(report: Path) -> None:
    html = report.read_text()
    for section in ("Fleet summary", "Daily statistics", "Temperature over time", "Hourly patterns",
                    "Temperature spikes", "Metric correlations", "Throttled time per GPU and cause", "Hottest GPUs",
                    "Health score", "Alert timeline"):  # fmt: skip
        assert f"<h2>{section}</h2>" in html
    assert not re.search(r"<script[^>]*\bsrc=", html) and "<link" not in html and "<img" not in html
    assert html.count("Plotly.newPlot(") == CHARTS
    assert html.count("plotly.js v") == 1  # the library inlined once, not per chart
    assert report.stat().st_size < 8_000_000


def test_every_chart_renders_offline_without_console_errors(probed: dict) -> None:
    assert probed["errors"] == []
    assert probed["charts"] == CHARTS
    assert probed["empty"] == []


def test_nothing_overlaps(probed: dict) -> None:
    """Legends and colour bars beside the plot area, labels clear of each other and of the data."""
    assert probed["measured"] > 100  # the probe really found tick labels, titles, legends
    assert probed["overlaps"] == []


def test_every_axis_has_a_title_with_its_unit(probed: dict) -> None:
    assert probed["axes"] >= 12
    assert probed["untitled"] == []


def test_screenshot_at_1280_px_reads_well(report: Path, probed: dict) -> None:
    ARTIFACT_DIR.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACT_DIR / "report.png"
    height = int(probed["page_height"]) + 40
    subprocess.run(
        [*_chromium(), f"--window-size={WIDTH},{height}", "--virtual-time-budget=15000", f"--screenshot={shot}",
         report.as_uri()],
        capture_output=True, timeout=180, check=True,
    )  # fmt: skip
    with Image.open(shot) as image:
        assert image.size == (WIDTH, height)
        assert _non_white_share(image) > 0.03
    ARTIFACTS.append(("report screenshot", shot))


def test_nothing_to_report_in_a_raw_or_empty_directory(report: Path, tmp_path: Path) -> None:
    raw = report.parent / "raw"
    for source in (tmp_path, raw):
        result = run("report", "--from", str(source), "--out", str(tmp_path / "report.html"))
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            f"error: nothing to report in {source}: no processed metrics "
            "(run `gpulake process RAW --out DIR` first and give DIR to --from)"
        ]
        assert not (tmp_path / "report.html").exists()
