"""The loader's monthly cost, checked against arithmetic done by hand from docs/cost.md's inputs."""

from __future__ import annotations

import pytest

from gpulake_cli import cost_model
from gpulake_cli.cost_loader import loader


def test_loader_cost_reproduces_a_hand_computed_case() -> None:
    # 8 GPUs, 60 s scrapes, hourly uploads: 730 uploads -> 1,460 processed objects, 350,400 rows;
    # batches: one a minute would be 43,800 > 1,460 objects, so at most one per object = 1,460
    fleet = cost_model.Fleet(8, 60, 60)
    lines = {item: usd for item, _, usd in loader(fleet).lines}
    expected = {
        "Lambda compute": (1460 * 0.05 + 350_400 / 100_000 + 1460 * 0.2) * 0.0000133334,
        "Lambda requests": 1460 * 0.20 / 1e6,
        "SQS": (1460 * 3 + 657_000) * 0.40 / 1e6,
        "S3 GET": 1460 * 0.0004 / 1000,
        "S3 LIST": 0.0,
        "Secrets Manager": 0.40 + 1460 * 0.05 / 10_000,
        "CloudWatch": 4 * 0.10 + 4 * 0.30 + 1460 * 400 / 1e9 * 0.50,
    }
    assert lines.keys() == expected.keys()
    for item, usd in expected.items():
        assert lines[item] == pytest.approx(usd, rel=1e-9), item


def test_cost_prints_the_loader_beside_ingest() -> None:
    fleet = cost_model.Fleet(64, 15, 5)
    assert list(cost_model.estimates(fleet))[:2] == ["gpulake", "loader"]
    text = cost_model.render(fleet)
    assert text.index("gpulake: $") < text.index("gpulake event-driven loader") < text.index("Amazon Managed")
    # busy fleet: one batch a minute (43,800), not one per object (140,160)
    assert "43,800 batches" in text
