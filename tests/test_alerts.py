"""Alert episodes: coalescing, gaps, kinds and model limits."""

from __future__ import annotations

import pyarrow as pa

from gpulake import schema
from gpulake.alerts import AlertConfig, detect

T0 = 1_767_225_600_000


def table(samples: list[dict], model: str = "NVIDIA H100 80GB HBM3", extra: dict | None = None) -> pa.Table:
    n = len(samples)
    batch = schema.assemble(
        n,
        time_ms=[T0 + s["t"] * 1000 for s in samples],
        identity={"node": "n1", "gpu": "0", "gpu_model": model, "source": "dcgm"},
        canonical={"gpu_temp_c": [s.get("temp") for s in samples], "power_w": [s.get("power") for s in samples]},
        throttle_reasons=[s.get("bits") for s in samples],
        extra=schema.numeric_map(
            n,
            {
                "DCGM_FI_DEV_XID_ERRORS": [s.get("xid") for s in samples],
                "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": [s.get("dbe") for s in samples],
                **{k: [v] * n for k, v in (extra or {}).items()},
            },
        ),
        source_object="obj",
    )
    return pa.Table.from_batches([batch])


def test_consecutive_samples_coalesce_and_gaps_split() -> None:
    samples = [{"t": t, "bits": 0x24, "temp": 80 + t % 3, "power": 690} for t in (0, 10, 20, 30)]
    samples += [{"t": 40, "bits": 0x1}, {"t": 50, "bits": 0x20, "temp": 88}, {"t": 500, "bits": 0x20, "temp": 89}]
    alerts = detect(table(samples))
    thermal = [a for a in alerts if a["kind"] == "thermal_throttle"]
    assert [(a["start"], a["end"], a["samples"], a["peak"]) for a in thermal] == [
        ("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:30.000Z", 4, 82.0),
        ("2026-01-01T00:00:50.000Z", "2026-01-01T00:00:50.000Z", 1, 88.0),
        ("2026-01-01T00:08:20.000Z", "2026-01-01T00:08:20.000Z", 1, 89.0),
    ]
    (power,) = [a for a in alerts if a["kind"] == "power_throttle"]
    assert (power["samples"], power["peak"], power["severity"]) == (4, 690.0, "info")
    assert len({a["alert_id"] for a in alerts}) == len(alerts)


def test_idle_and_application_clocks_are_not_alerts() -> None:
    assert detect(table([{"t": t, "bits": 0x1 | 0x2 | 0x10, "temp": 40} for t in range(5)])) == []


def test_model_limits_and_default_limit() -> None:
    hot = [{"t": t, "temp": 88} for t in range(3)]
    # no reported limits: the model table's max operating 87 (slowdown 89), warning from 82
    (h100,) = detect(table(hot))
    assert (h100["kind"], h100["threshold"], h100["threshold_source"], h100["severity"]) == (
        "over_temperature",
        87.0,
        "model",
        "warning",
    )
    assert h100["threshold_limit"] == "gpu_max_op" and "GPU max operating temperature" in h100["message"]
    (hotter,) = detect(table([{"t": 0, "temp": 91}]))  # within 2 °C of shutdown (92): critical
    assert hotter["severity"] == "critical"
    assert detect(table(hot, "NVIDIA L40S"), AlertConfig(default_temp_limit_c=95)) == []  # not in the table
    (b200,) = detect(table(hot, "NVIDIA B200"))  # not in the table (no verified source): the default
    assert (b200["threshold"], b200["threshold_source"]) == (85.0, "default")


def test_reported_limits_win() -> None:
    hot = [{"t": t, "temp": 96} for t in range(3)]
    dcgm = {"DCGM_FI_DEV_SLOWDOWN_TEMP": 100.0, "DCGM_FI_DEV_SHUTDOWN_TEMP": 105.0}
    (a,) = detect(table(hot, "NVIDIA B200", dcgm))
    assert (a["threshold"], a["threshold_source"], a["severity"]) == (100.0, "reported", "warning")
    assert detect(table([{"t": 0, "temp": 94}], "NVIDIA H100 80GB HBM3", dcgm)) == []  # 94 < 100 - 5
    (c,) = detect(table([{"t": 0, "temp": 104}], "NVIDIA B200", dcgm))
    assert c["severity"] == "critical"
    # nvidia-smi temperature.gpu.tlimit is a margin: 80 °C with 4 °C left means slowdown at 84
    (m,) = detect(table([{"t": 0, "temp": 80}], "NVIDIA B200", {"temperature.gpu.tlimit": 4.0}))
    assert (m["threshold"], m["threshold_source"]) == (84.0, "reported")


def test_new_xid_and_ecc_increase() -> None:
    samples = [{"t": 0, "xid": 0, "dbe": 0}, {"t": 10, "xid": 79, "dbe": 0}, {"t": 20, "xid": 79, "dbe": 2}]
    kinds = {a["kind"]: a for a in detect(table(samples))}
    assert kinds["xid"]["peak"] == 79.0 and kinds["xid"]["severity"] == "critical"
    assert kinds["ecc_dbe"]["start"] == "2026-01-01T00:00:20.000Z"


def test_xid_classes_and_the_windowed_counter() -> None:
    samples = [{"t": 0, "xid": 0}, {"t": 10, "xid": 13}, {"t": 20, "xid": 13}]
    (app,) = [a for a in detect(table(samples)) if a["kind"] == "xid"]
    assert (app["metric"], app["severity"], app["xid_class"]) == ("xid:13", "warning", "application")
    counter = {'DCGM_EXP_XID_ERRORS_COUNT{xid="79"}': 1.0}
    (bus,) = [a for a in detect(table([{"t": 0}, {"t": 10}], extra=counter)) if a["kind"] == "xid"]
    assert (bus["metric"], bus["severity"], bus["xid_class"]) == ("xid:79", "critical", "bus")
    assert "fallen off the bus" in bus["message"] and "reboot" in bus["action"]


def test_limits_reported_through_the_parsers() -> None:
    from gpulake import formats
    from gpulake.alerts.rules import _gpus
    from gpulake.context import SourceContext
    from tests.conftest import real_file

    def limits(fmt: str, data: bytes) -> list[tuple[float, str]]:
        parsed = formats.get(fmt).parse(data, SourceContext(key="x", object_time_ms=0))
        gpus = _gpus(pa.Table.from_batches(parsed.batches, schema=schema.METRICS_SCHEMA))
        return [(g.limits(AlertConfig()).warn_c, g.limits(AlertConfig()).source) for g in gpus]

    # a real nvidia-smi capture of an H100 (driver 590.48.01): 59 °C with a 26 °C tlimit margin -> max op at 85
    capture = (
        "nvidia_smi/utkuozdemir__nvidia_gpu_exporter__captures__linux-x86_64__"
        "nvidia-h100-80gb-hbm3__590.48.01__load_query-gpu.csv"
    )
    assert limits("nvidia-smi", real_file(capture).read_bytes()) == [(85.0, "reported")]
    # a dcgm-exporter scrape with fields 158/159 (a B200 the model table does not list)
    labels = 'gpu="0",UUID="GPU-1",modelName="NVIDIA B200",Hostname="n1"'
    scrape = "\n".join(
        f"{name}{{{labels}}} {value}"
        for name, value in (
            ("DCGM_FI_DEV_GPU_TEMP", 70),
            ("DCGM_FI_DEV_SLOWDOWN_TEMP", 95),
            ("DCGM_FI_DEV_SHUTDOWN_TEMP", 100),
        )
    )
    marker = f"# gpulake-scrape {T0}\n"
    assert limits("dcgm", (marker + scrape + "\n").encode()) == [(95.0, "reported")]
    # the same B200 without them: the default (no verified B200 row in the model table)
    plain = f"{marker}DCGM_FI_DEV_GPU_TEMP{{{labels}}} 70\n"
    assert limits("dcgm", plain.encode()) == [(85.0, "default")]
