#!/usr/bin/env python3
"""Deterministic GPU fleet simulator: realistic raw telemetry for tests, demo and benchmarks.

Writes, per node, dcgm-exporter scrapes separated by ``# gpulake-scrape <ms>``
markers (as the gpulake collector does), and optionally GPU-Z, nvidia-smi and
thermal CSV logs. Workloads cycle between idle and busy; busy GPUs hit their
power cap (SwPowerCap, 0x4), hot ones throttle (SwThermal, 0x20), and rare
XIDs and double-bit ECC errors appear. Same seed, same bytes.

Example: ``gpulake simulate --out raw --nodes 2 --gpus 4 --minutes 10``
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMATS = ("dcgm", "gpuz", "nvidia-smi", "thermal-csv")
#: (model, power cap W, over_temperature threshold °C: gpulake.alerts.limits' slowdown 89 minus the 5 °C margin)
MODELS = (("NVIDIA H100 80GB HBM3", 700.0, 84.0), ("NVIDIA A100-SXM4-80GB", 400.0, 84.0))
START = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
DCGM_METRICS = (
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_POWER_MGMT_LIMIT", "gauge", "Power management limit (in W)."),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ)."),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries."),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Total number of double-bit volatile ECC errors."),
    ("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "gauge", "Current clock event reasons (bitmask)."),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "gauge", "Ratio of cycles the device memory interface is active."),
)
#: Further families a dcgm-exporter with the dcp-metrics counters file serves, for scrapes of the
#: exporter's real width (``FleetSpec.dcgm_fields``, e.g. 40): name, type, and the factor applied to
#: GPU utilisation (``PROF_*`` ratios) or to the energy counter (counters) to make a value.
EXPORTER_EXTRA_METRICS = tuple(
    (name, kind, factor)
    for name, kind, factor in (
        ("DCGM_FI_DEV_ENC_UTIL", "gauge", 0.1),
        ("DCGM_FI_DEV_DEC_UTIL", "gauge", 0.2),
        ("DCGM_FI_DEV_FB_RESERVED", "gauge", 0.0),
        ("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "counter", 3.0),
        ("DCGM_FI_DEV_VGPU_LICENSE_STATUS", "gauge", 0.0),
        ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", 0.0),
        ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", 0.0),
        ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", 0.0),
        ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", 0.7),
        ("DCGM_FI_PROF_PCIE_TX_BYTES", "counter", 11.0),
        ("DCGM_FI_PROF_PCIE_RX_BYTES", "counter", 13.0),
        ("DCGM_FI_PROF_SM_ACTIVE", "gauge", 0.9),
        ("DCGM_FI_PROF_SM_OCCUPANCY", "gauge", 0.5),
        ("DCGM_FI_PROF_PIPE_FP64_ACTIVE", "gauge", 0.05),
        ("DCGM_FI_PROF_PIPE_FP32_ACTIVE", "gauge", 0.3),
        ("DCGM_FI_PROF_PIPE_FP16_ACTIVE", "gauge", 0.4),
        ("DCGM_FI_PROF_NVLINK_TX_BYTES", "counter", 5.0),
        ("DCGM_FI_PROF_NVLINK_RX_BYTES", "counter", 7.0),
        ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "counter", 0.0),
        ("DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "counter", 0.0),
        ("DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "counter", 0.0),
        ("DCGM_FI_DEV_RETIRED_SBE", "counter", 0.0),
        ("DCGM_FI_DEV_RETIRED_DBE", "counter", 0.0),
    )
)


@dataclass(frozen=True)
class FleetSpec:
    nodes: int = 2
    gpus: int = 4
    minutes: float = 10.0
    interval_s: float = 10.0
    seed: int = 7
    formats: tuple[str, ...] = FORMATS
    gzip: bool = False
    start: dt.datetime = START
    #: Rotate each node's dcgm and nvidia-smi files every this many minutes (as the collector does); None: one file.
    upload_minutes: float | None = None
    #: Metric families per dcgm scrape: the default set, or up to 40 as an exporter with the
    #: dcp-metrics counters serves (each family with its # HELP/# TYPE lines in every scrape).
    dcgm_fields: int = len(DCGM_METRICS)


@dataclass
class GpuSeries:
    """Every simulated reading of one GPU, one entry per sample time."""

    util: np.ndarray
    power: np.ndarray
    temp: np.ndarray
    mem_temp: np.ndarray
    sm_clock: np.ndarray
    fb_used: np.ndarray
    reasons: np.ndarray
    xid: np.ndarray
    dbe: np.ndarray
    energy: np.ndarray


def simulate_gpu(rng: np.random.Generator, steps: int, interval_s: float, power_cap: float, hot: bool) -> GpuSeries:
    """One GPU's readings: busy/idle phases, power capping, thermal lag and throttling."""
    phase = rng.integers(0, 60)
    period = int(rng.integers(30, 90))
    busy = ((np.arange(steps) + phase) % period) < period * 0.6
    util = np.where(busy, rng.normal(92, 5, steps), rng.normal(2, 1.5, steps)).clip(0, 100).round()
    demand = 70 + util / 100 * power_cap * (1.15 if hot else 1.02)
    power = np.minimum(demand, power_cap).round(3)
    capped = demand >= power_cap
    target = 30 + power / power_cap * (62 if hot else 48)
    temp = np.empty(steps)
    current = 32.0
    for i in range(steps):
        current += (target[i] - current) * 0.15
        temp[i] = current
    temp = (temp + rng.normal(0, 0.4, steps)).round()
    thermal = temp >= (86 if hot else 999)
    reasons = np.where(~busy, 0x1, 0) | np.where(capped, 0x4, 0) | np.where(thermal, 0x20, 0)
    sm_clock = np.where(busy, 1980 - capped * 180 - thermal * 400, 345).astype(float)
    xid = np.zeros(steps)
    if rng.random() < 0.3:
        xid[int(rng.integers(steps // 2, steps)) :] = rng.choice([13, 31, 43, 79])
    dbe = np.zeros(steps)
    if rng.random() < 0.15:
        dbe[int(rng.integers(steps // 3, steps)) :] = 1
    energy = np.cumsum(power * interval_s * 1000).round()
    return GpuSeries(util, power, temp, temp + 8, sm_clock, np.where(busy, 61000.0, 600.0), reasons, xid, dbe, energy)


def _times(spec: FleetSpec) -> np.ndarray:
    steps = max(1, int(spec.minutes * 60 / spec.interval_s))
    start_ms = int(spec.start.timestamp() * 1000)
    return start_ms + (np.arange(steps) * spec.interval_s * 1000).astype(np.int64)


def _fleet(spec: FleetSpec) -> list[tuple[str, list[tuple[str, str, float, GpuSeries]]]]:
    rng = np.random.default_rng(spec.seed)
    steps = len(_times(spec))
    fleet = []
    for n in range(spec.nodes):
        model, cap, _limit = MODELS[n % len(MODELS)]
        gpus = []
        for g in range(spec.gpus):
            uuid = "GPU-" + "-".join(f"{int(x):0{w}x}" for x, w in zip(rng.integers(0, 16**4, 5), (8, 4, 4, 4, 12)))
            gpus.append((uuid, model, cap, simulate_gpu(rng, steps, spec.interval_s, cap, hot=(g == 1))))
        fleet.append((f"gpu-node-{n:02d}", gpus))
    return fleet


def dcgm_text(
    node: str, gpus: list[tuple[str, str, float, GpuSeries]], times: np.ndarray, fields: int = len(DCGM_METRICS)
) -> str:
    """Concatenated scrapes of one node with gpulake-scrape markers, HELP/TYPE before each family."""
    if not len(DCGM_METRICS) <= fields <= len(DCGM_METRICS) + len(EXPORTER_EXTRA_METRICS):
        raise ValueError(f"dcgm fields must be {len(DCGM_METRICS)}..{len(DCGM_METRICS) + len(EXPORTER_EXTRA_METRICS)}")
    extra = EXPORTER_EXTRA_METRICS[: fields - len(DCGM_METRICS)]
    families = [*DCGM_METRICS, *((name, kind, f"{name} (see the DCGM field list).") for name, kind, _f in extra)]
    factors = {name: (kind, factor) for name, kind, factor in extra}
    prefixes = []
    for g, (uuid, model, _cap, _s) in enumerate(gpus):
        labels = (
            f'gpu="{g}",UUID="{uuid}",pci_bus_id="00000000:{0x18 + g:02X}:00.0",device="nvidia{g}",'
            f'modelName="{model}",Hostname="{node}",DCGM_FI_DRIVER_VERSION="580.105.08"'
        )
        prefixes.append({name: f"{name}{{{labels}}} " for name, _t, _h in families})
    out = []
    for i, ts in enumerate(times):
        out.append(f"# gpulake-scrape {ts}\n")
        for name, kind, help_text in families:
            out.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
            for g, (_uuid, _model, cap, s) in enumerate(gpus):
                value = _extra_value(*factors[name], s, i) if name in factors else _dcgm_value(name, s, i, cap)
                out.append(prefixes[g][name] + value + "\n")
    return "".join(out)


def _extra_value(kind: str, factor: float, s: GpuSeries, i: int) -> str:
    if kind == "counter":
        return f"{float(s.energy[i]) * factor:.0f}"
    return f"{float(s.util[i]) * factor / 100:.6f}"


def _dcgm_value(name: str, s: GpuSeries, i: int, power_cap: float) -> str:
    values = {
        "DCGM_FI_DEV_POWER_MGMT_LIMIT": power_cap,
        "DCGM_FI_DEV_SM_CLOCK": s.sm_clock[i],
        "DCGM_FI_DEV_MEM_CLOCK": 2619,
        "DCGM_FI_DEV_MEMORY_TEMP": s.mem_temp[i],
        "DCGM_FI_DEV_GPU_TEMP": s.temp[i],
        "DCGM_FI_DEV_POWER_USAGE": s.power[i],
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": s.energy[i],
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": 0,
        "DCGM_FI_DEV_GPU_UTIL": s.util[i],
        "DCGM_FI_DEV_MEM_COPY_UTIL": s.util[i] * 0.4,
        "DCGM_FI_DEV_XID_ERRORS": s.xid[i],
        "DCGM_FI_DEV_FB_FREE": 81559 - s.fb_used[i],
        "DCGM_FI_DEV_FB_USED": s.fb_used[i],
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": s.dbe[i],
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": s.reasons[i],
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE": s.util[i] / 100,
        "DCGM_FI_PROF_DRAM_ACTIVE": s.util[i] / 160,
    }
    value = float(values[name])
    return (
        f"{value:.6f}"
        if name
        in (
            "DCGM_FI_DEV_POWER_USAGE",
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
            "DCGM_FI_PROF_DRAM_ACTIVE",
            "DCGM_FI_DEV_MEM_COPY_UTIL",
        )
        else f"{value:.0f}"
    )


def _local(ms: int, fmt: str) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime(fmt)


def gpuz_text(s: GpuSeries, times: np.ndarray) -> bytes:
    """A GPU-Z sensor log (cp1252 degree signs, padded cells, trailing ' ,', CRLF)."""
    header = (
        "        Date        , GPU Clock [MHz] , Memory Clock [MHz] , GPU Temperature [°C] , "
        "Hot Spot [°C] , GPU Load [%] , Memory Used [MB] , Board Power Draw [W] , PerfCap Reason [] ,"
    )
    perfcap = {0: 0, 0x1: 16, 0x4: 1, 0x5: 1, 0x20: 2, 0x24: 3, 0x21: 2, 0x25: 3}
    lines = [header]
    for i, ts in enumerate(times):
        lines.append(
            f"{_local(int(ts), '%Y-%m-%d %H:%M:%S')} , {s.sm_clock[i]:>10.1f}   , {1313.0:>10.1f}   , "
            f"{s.temp[i]:>10.1f}   , {s.temp[i] + 11:>6.1f}   , {s.util[i]:>6.0f}   , {s.fb_used[i]:>8.0f}   , "
            f"{s.power[i]:>8.1f}   , {perfcap.get(int(s.reasons[i]), 0):>6d}   ,"
        )
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def nvidia_smi_text(gpus: list[tuple[str, str, float, GpuSeries]], times: np.ndarray) -> str:
    """An ``nvidia-smi --query-gpu=... --format=csv -l`` log of every GPU of a node."""
    header = (
        "timestamp, index, name, uuid, temperature.gpu, temperature.memory, power.draw [W], "
        "utilization.gpu [%], clocks.current.sm [MHz], clocks.current.memory [MHz], memory.used [MiB], "
        "clocks_event_reasons.active"
    )
    lines = [header]
    for i, ts in enumerate(times):
        stamp = _local(int(ts), "%Y/%m/%d %H:%M:%S.") + f"{int(ts) % 1000:03d}"
        for g, (uuid, model, _cap, s) in enumerate(gpus):
            lines.append(
                f"{stamp}, {g}, {model}, {uuid}, {s.temp[i]:.0f}, {s.mem_temp[i]:.0f}, {s.power[i]:.2f} W, "
                f"{s.util[i]:.0f} %, {s.sm_clock[i]:.0f} MHz, 2619 MHz, {s.fb_used[i]:.0f} MiB, "
                f"0x{int(s.reasons[i]):016X}"
            )
    return "\n".join(lines) + "\n"


def thermal_text(fleet: list, times: np.ndarray) -> str:
    """Thermal events of the fleet: one row per GPU and sample that throttled or failed."""
    lines = ["node,timestamp,gpu_id,temp,avg_temp,reason,date"]
    for node, gpus in fleet:
        for g, (_uuid, _model, _cap, s) in enumerate(gpus):
            for i, ts in enumerate(times):
                if s.reasons[i] & 0x20 or s.temp[i] >= 95:
                    reason = "Thermally Failed" if s.temp[i] >= 95 else "Throttled"
                    day = _local(int(ts), "%Y-%m-%d")
                    stamp = _local(int(ts), "%Y-%m-%d %H:%M:%S")
                    lines.append(f"{node},{stamp},GPU_{g},{s.temp[i]:.2f},{s.temp[: i + 1].mean():.2f},{reason},{day}")
    return "\n".join(lines) + "\n"


def _chunks(spec: FleetSpec, times: np.ndarray) -> list[slice]:
    """Sample index ranges of each upload (one range when the spec does not rotate)."""
    if not spec.upload_minutes:
        return [slice(0, len(times))]
    per = max(1, round(spec.upload_minutes * 60 / spec.interval_s))
    return [slice(a, min(a + per, len(times))) for a in range(0, len(times), per)]


def _slice(gpus: list[tuple[str, str, float, GpuSeries]], chunk: slice) -> list[tuple[str, str, float, GpuSeries]]:
    return [
        (uuid, model, cap, GpuSeries(*(getattr(s, f)[chunk] for f in GpuSeries.__dataclass_fields__)))
        for uuid, model, cap, s in gpus
    ]


def ground_truth(spec: FleetSpec, merge_within_s: float, hbm_limit_c: float = 95.0) -> list[dict[str, object]]:
    """The fleet's true alert episodes, from the simulated series (not from gpulake's parsers).

    Runs of SwThermal (``thermal_throttle``), GPU or HBM temperature above its limit
    (``over_temperature`` of ``gpu_temp_c``/``mem_temp_c``), a new non-zero XID and a rising double-bit ECC count,
    per GPU UUID; runs less than ``merge_within_s`` apart are one episode
    (Alertmanager keeps an alert firing across short gaps).
    """
    times = _times(spec)
    truth = []
    for node, gpus in _fleet(spec):
        for uuid, model, _cap, s in gpus:
            limit = next(lim for name, _c, lim in MODELS if name == model)
            xid_new = (s.xid != 0) & (s.xid != np.concatenate([[0], s.xid[:-1]]))
            dbe_up = s.dbe > np.concatenate([[s.dbe[0]], s.dbe[:-1]])
            for kind, metric, hit in (
                ("thermal_throttle", "throttle_reasons", (s.reasons & 0x20) != 0),
                ("over_temperature", "gpu_temp_c", s.temp >= limit),
                ("over_temperature", "mem_temp_c", s.mem_temp > hbm_limit_c),
                ("xid", f"xid:{int(s.xid.max())}", xid_new),
                ("ecc_dbe", "ecc_dbe", dbe_up),
            ):
                for first, last in _runs(times, hit, merge_within_s * 1000):
                    truth.append(
                        {
                            "node": node,
                            "gpu_uuid": uuid,
                            "kind": kind,
                            "metric": metric,
                            "start": int(times[first]),
                            "end": int(times[last]),
                        }
                    )
    return truth


def _runs(times: np.ndarray, hit: np.ndarray, within_ms: float) -> list[tuple[int, int]]:
    runs: list[list[int]] = []
    for i in np.flatnonzero(hit):
        if runs and times[i] - times[runs[-1][1]] <= within_ms:
            runs[-1][1] = int(i)
        else:
            runs.append([int(i), int(i)])
    return [(a, b) for a, b in runs]


def simulate(out: Path, spec: FleetSpec) -> list[Path]:
    """Write the fleet's raw files under ``out/<source>/<node>/`` and return their paths."""
    times = _times(spec)
    fleet = _fleet(spec)
    stamp = _local(int(times[0]), "%Y%m%dT%H%M%SZ")
    written = []

    def write(rel: str, body: bytes) -> None:
        path = out / (rel + (".gz" if spec.gzip else ""))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(body, mtime=0) if spec.gzip else body)
        written.append(path)

    for node, gpus in fleet:
        for chunk in _chunks(spec, times):
            part = _local(int(times[chunk][0]), "%Y%m%dT%H%M%SZ")
            if "dcgm" in spec.formats:
                write(
                    f"dcgm/{node}/{part}.prom",
                    dcgm_text(node, _slice(gpus, chunk), times[chunk], spec.dcgm_fields).encode(),
                )
            if "nvidia-smi" in spec.formats:
                write(f"nvidia-smi/{node}/{part}.csv", nvidia_smi_text(_slice(gpus, chunk), times[chunk]).encode())
        if "gpuz" in spec.formats:
            write(f"gpuz/{node}/GPU-Z Sensor Log {stamp}.txt", gpuz_text(gpus[0][3], times))
    if "thermal-csv" in spec.formats:
        write(f"thermal-csv/fleet/{stamp}.csv", thermal_text(fleet, times).encode())
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--gpus", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated subset of {FORMATS}")
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--upload-minutes", type=float, help="rotate dcgm/nvidia-smi files every N minutes")
    parser.add_argument(
        "--dcgm-fields",
        type=int,
        default=len(DCGM_METRICS),
        help=f"metric families per dcgm scrape, {len(DCGM_METRICS)}..{len(DCGM_METRICS) + len(EXPORTER_EXTRA_METRICS)} "
        "(40: an exporter with the dcp-metrics counters)",
    )
    args = parser.parse_args(argv)
    formats = tuple(f for f in args.formats.split(",") if f)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        parser.error(f"unknown formats: {sorted(unknown)}")
    spec = FleetSpec(
        args.nodes,
        args.gpus,
        args.minutes,
        args.interval,
        args.seed,
        formats,
        args.gzip,
        upload_minutes=args.upload_minutes,
        dcgm_fields=args.dcgm_fields,
    )
    for path in simulate(args.out, spec):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
