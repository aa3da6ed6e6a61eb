"""Servers and data for the loader tests: a throwaway PostgreSQL 15 cluster, influxd 1.6, simulated fleet output."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpulake.local import LocalOptions, finish, iter_files, process_file
from gpulake_cli.simulate_fleet import FleetSpec, simulate
from loaders.influx import InfluxTarget, V1Writer
from loaders.local_influx import LocalInflux
from loaders.postgres import PostgresTarget

_names = itertools.count()


@pytest.fixture
def pg_target(pg_dsn: str) -> Iterator[PostgresTarget]:
    target = PostgresTarget(pg_dsn)
    yield target
    target.close()


@pytest.fixture
def influx_db(influx_server: LocalInflux) -> str:
    return f"t{next(_names)}"


@pytest.fixture
def influx_target(influx_server: LocalInflux, influx_db: str) -> InfluxTarget:
    return InfluxTarget(V1Writer(influx_server.url, influx_db))


def process_tree(raw: Path, out: Path) -> Path:
    for path in iter_files([raw]):
        process_file(path, out, LocalOptions())
    return out


@pytest.fixture(scope="session")
def fleet_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Processed output of a simulated 2-node, 2-GPU, 40-minute fleet (all four formats)."""
    base = tmp_path_factory.mktemp("fleet")
    simulate(base / "raw", FleetSpec(nodes=2, gpus=2, minutes=40, interval_s=10, seed=11))
    return process_tree(base / "raw", base / "processed")


@pytest.fixture(scope="session")
def lifecycle_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An hour of one node's 5-minute uploads (dcgm and nvidia-smi: each GPU reported twice) processed with the
    episode lifecycle and swept at its end.

    Episodes that ended early are closed (``episodes/``), the latest may still be open (``.gpulake/``).
    """
    base = tmp_path_factory.mktemp("lifecycle")
    spec = FleetSpec(
        nodes=1, gpus=2, minutes=60, interval_s=15, seed=5, formats=("dcgm", "nvidia-smi"), upload_minutes=5
    )
    simulate(base / "raw", spec)
    out = process_tree(base / "raw", base / "out")
    finish(out, LocalOptions())
    return out
