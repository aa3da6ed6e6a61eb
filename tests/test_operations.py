"""The node collector's systemd unit, image and DaemonSet work as docs/operations.md shows them."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from gpulake_cli import collector

ROOT = Path(__file__).resolve().parents[1]
OPS = ROOT / "docs" / "operations"
UNIT = OPS / "gpulake-collector.service"
DOCKERFILE = OPS / "Dockerfile.collector"
DAEMONSET = OPS / "gpulake-collector-daemonset.yaml"
DOC = (ROOT / "docs" / "operations.md").read_text()
INSTALLED = "/opt/gpulake/bin/gpulake-collector"


def _service() -> configparser.SectionProxy:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text())
    return unit["Service"]


def _spool_arg(args: list[str]) -> str:
    return args[args.index("--spool") + 1]


def _build_tag() -> str:
    build = r"docker build -f docs/operations/Dockerfile\.collector -t (\S+) \."
    tags = set(re.findall(build, DOC + DOCKERFILE.read_text()))
    assert len(tags) == 1, tags
    return tags.pop()


@pytest.mark.parametrize("path", [UNIT, DOCKERFILE, DAEMONSET])
def test_the_doc_shows_the_files_tested_here(path: Path) -> None:
    assert path.read_text() in DOC, f"docs/operations.md no longer quotes {path.relative_to(ROOT)}"


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: sh scripts/install_system_deps.sh systemd (Debian package systemd)")
    console_script = Path(sys.executable).parent / "gpulake-collector"
    assert console_script.is_file(), "pip install -e . provides the gpulake-collector console script"
    # GIVEN the unit as shipped, its ExecStart pointing at where this checkout installed the console script
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED} " in text
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace(INSTALLED, str(console_script)))
    # WHEN systemd checks it
    result = subprocess.run(
        [analyze, "verify", "--man=no", "--generators=no", str(unit)], capture_output=True, text=True, check=False
    )
    # THEN nothing about it is wrong (unknown keys are only warnings, so any line naming it fails)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_unit_spool_is_the_state_directory_systemd_creates(monkeypatch: pytest.MonkeyPatch) -> None:
    service = _service()
    spool = _spool_arg(shlex.split(service["ExecStart"]))
    # DynamicUser can write only below the directories systemd creates for it: no ReadWritePaths of our own
    assert service["DynamicUser"] == "yes" and "ReadWritePaths" not in service
    assert spool == f"/var/lib/{service['StateDirectory']}/spool"
    # the collector's own default agrees, started by systemd or by hand
    monkeypatch.setenv("STATE_DIRECTORY", f"/var/lib/{service['StateDirectory']}")
    assert collector.default_spool() == spool
    monkeypatch.delenv("STATE_DIRECTORY")
    assert collector.default_spool() == spool


def test_dockerfile_copies_only_what_the_checkout_has() -> None:
    instructions = [line.split() for line in DOCKERFILE.read_text().splitlines() if line and not line.startswith("#")]
    copies = [words[1:-1] for words in instructions if words[0] == "COPY"]
    assert copies, "the image carries the collector file"
    for sources in copies:
        for source in sources:
            assert (ROOT / source).is_file(), f"COPY {source}: not in the checkout (build from the repository root)"
    assert any("gpulake_cli/collector.py" in sources for sources in copies)
    defaults = dict(w[1].split("=", 1) for w in instructions if w[0] == "ARG" and "=" in w[1])
    spec = defaults.get("BOTO3_SPEC", "")
    runs = [" ".join(w[1:]).replace("${BOTO3_SPEC}", spec) for w in instructions if w[0] == "RUN"]
    assert any("pip install" in run and "boto3" in run for run in runs), "boto3 is installed at build time"


def test_daemonset_runs_the_built_image_without_installing_anything() -> None:
    daemonset = yaml.safe_load(DAEMONSET.read_text())
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert container["image"] == _build_tag()
    assert _build_tag().endswith(f"/gpulake-collector:{version}")
    started = " ".join(container.get("command", []) + container.get("args", []))
    assert "pip" not in started, "nothing is fetched at start: air-gapped clusters have no PyPI"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    host = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert mounts["spool"] == host["spool"] == _spool_arg(container["args"]) == collector.default_spool()
