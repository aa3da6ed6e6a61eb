"""Alert rules: canonical metrics in, coalesced alert *episodes* out.

An episode is a run of consecutive samples of one GPU with the same cause; a
sample without the cause, or a gap longer than ``gap_factor`` typical sample
intervals, ends it. Idle (0x1), application clocks (0x2) and sync boost (0x10)
are not alerts. This module is the only place that decides what is an alert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulake.alerts import limits as limits_mod
from gpulake.alerts import series, thresholds
from gpulake.alerts.fleet import Fleet, window_limits
from gpulake.alerts.xid import XID_CLASSES, classify
from gpulake.formats.dcgm_fields import ECC_DBE_NAMES, XID_NAMES
from gpulake.identity import sort_rows
from gpulake.schema import codes
from gpulake.timeutil import ms_to_iso_shared

if TYPE_CHECKING:
    from gpulake.alerts.carryover import Carried

SW_POWER_CAP, HW_SLOWDOWN, SW_THERMAL, HW_THERMAL, HW_POWER_BRAKE = 0x4, 0x8, 0x20, 0x40, 0x80
#: The NVML clock event reasons that slow a GPU down, by the names reports and dashboards show.
THROTTLE_CAUSES = {
    "sw_power_cap": SW_POWER_CAP,
    "hw_slowdown": HW_SLOWDOWN,
    "sw_thermal": SW_THERMAL,
    "hw_thermal": HW_THERMAL,
    "hw_power_brake": HW_POWER_BRAKE,
}
#: nvidia-smi's ECC column and the thermal CSV's failure flag, as kept in ``extra``.
ECC_DBE_KEYS = (*ECC_DBE_NAMES, "ecc.errors.uncorrected.volatile.total")
THERMAL_FAILED_KEY = "thermal_failed"
#: XIDs NVIDIA documents as needing a GPU reset or node drain (gpulake.alerts.xid has the classes).
CRITICAL_XIDS = frozenset(code for code, cls in XID_CLASSES.items() if cls.severity == "critical")
#: dcgm-exporter's windowed XID counter, one series per code (``xid`` label, joined into the extra key).
XID_COUNT_PREFIX = 'DCGM_EXP_XID_ERRORS_COUNT{xid="'
_LIMIT_KEYS = {
    "slowdown": limits_mod.SLOWDOWN_KEYS,
    "shutdown": limits_mod.SHUTDOWN_KEYS,
    "gpu_max": limits_mod.GPU_MAX_OP_KEYS,
    "mem_max": limits_mod.MEM_MAX_OP_KEYS,
    "margin": limits_mod.MARGIN_KEYS,
}


@dataclass(frozen=True)
class AlertConfig:
    """Thresholds; the Lambda reads them from ``GPULAKE_*`` env vars, the CLI from flags.

    ``default_temp_limit_c`` is the slowdown temperature of a GPU that reports none and is not in
    :data:`gpulake.alerts.limits.MODEL_LIMITS`; ``over_temperature`` warns within
    ``slowdown_margin_c`` of the first limit that slows the GPU down (slowdown or GPU max operating,
    :attr:`gpulake.alerts.limits.Limits.warn_c`) and is critical within ``shutdown_margin_c`` of shutdown.
    """

    default_temp_limit_c: float = 85.0
    hbm_temp_limit_c: float = 95.0
    gap_factor: float = 3.0
    slowdown_margin_c: float = 5.0
    shutdown_margin_c: float = 2.0
    #: Threshold rules (gpulake.alerts.thresholds); default: the packaged rules.default.jsonl.
    rules: tuple[thresholds.ThresholdRule, ...] = field(default_factory=thresholds.load)


@dataclass
class _Gpu:
    """One GPU's samples, sorted by time, as numpy arrays."""

    node: str
    gpu: str
    uuid: str
    model: str
    source: str
    source_object: str
    time: np.ndarray
    temp: np.ndarray
    mem_temp: np.ndarray
    power: np.ndarray
    reasons: np.ndarray  # int64, -1 where unknown
    dbe: np.ndarray
    xid: np.ndarray
    failed: np.ndarray
    reported: dict[str, np.ndarray]
    xid_counts: dict[int, np.ndarray]
    #: Values of the threshold rules' fields, and ``power_limit``.
    fields: dict[str, np.ndarray]
    #: The last XID gauge and DBE count of the GPU's previous object (gpulake.alerts.carryover), if known.
    carried: Carried | None = None
    _limits: tuple[AlertConfig, limits_mod.Limits] | None = field(default=None, repr=False, compare=False)

    def limits(self, config: AlertConfig) -> limits_mod.Limits:
        """The GPU's temperature limits under ``config`` (resolved once per config, asked by several rules)."""
        if self._limits is None or self._limits[0] is not config:
            resolved = limits_mod.resolve(
                self.model, self.temp, self.reported, config.default_temp_limit_c, config.hbm_temp_limit_c
            )
            self._limits = (config, resolved)
        return self._limits[1]

    @cached_property
    def step(self) -> float:
        """The typical sample interval (ms): the median positive gap between samples."""
        return series.typical_step(self.time)


def temp_limit(model: str, config: AlertConfig) -> float:
    """The warning limit of a model (table) or the default, for reports without reported limits."""
    return limits_mod.resolve(model, np.empty(0), {}, config.default_temp_limit_c, config.hbm_temp_limit_c).warn_c


def extra_values(table: pa.Table, keys: tuple[str, ...]) -> np.ndarray:
    """Per row, the first of ``keys`` present in ``extra`` (NaN where none is)."""
    return series.ExtraIndex(table.column("extra")).values(keys)


def reads_extra(config: AlertConfig | None = None) -> Callable[[str], bool]:
    """Whether detection (and :func:`gpulake.alerts.carryover.ends`) reads an ``extra`` key under ``config``:
    what ingest keeps of the maps once they are written (:class:`gpulake.alerts.series.ExtraColumns`)."""
    config = config or AlertConfig()
    keys = frozenset(
        {
            *ECC_DBE_KEYS,
            *XID_NAMES,
            THERMAL_FAILED_KEY,
            *thresholds.POWER_LIMIT_KEYS,
            *(key for keys in _LIMIT_KEYS.values() for key in keys),
            *(r.field[6:] for r in config.rules if r.field.startswith("extra:")),
        }
    )
    return lambda key: key in keys or key.startswith(XID_COUNT_PREFIX)


def _field_values(table: pa.Table, extra: series.ExtraLookup, names: set[str]) -> dict[str, np.ndarray]:
    out = {"power_limit": extra.values(thresholds.POWER_LIMIT_KEYS)}
    for name in names:
        if name.startswith("extra:"):
            out[name] = extra.value(name[6:])
        else:
            out[name] = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
    return out


def _gpus(
    table: pa.Table,
    fields: set[str] = frozenset(),  # type: ignore[assignment]
    extra: series.ExtraLookup | None = None,
) -> list[_Gpu]:
    ordered = sort_rows(table)
    if extra is None or ordered is not table:  # the caller's index is by the rows as they were
        extra = series.ExtraIndex(ordered.column("extra"))
    table = ordered
    col = {
        name: _Texts(table.column(name)) for name in ("node", "gpu", "gpu_uuid", "gpu_model", "source", "source_object")
    }
    num = {
        name: table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        for name in ("gpu_temp_c", "mem_temp_c", "power_w")
    }
    time = table.column("time").cast(pa.int64()).to_numpy(zero_copy_only=False)
    reasons = pc.fill_null(table.column("throttle_reasons"), -1).to_numpy(zero_copy_only=False)
    dbe, xid, failed = (
        extra.values(ECC_DBE_KEYS),
        extra.values(XID_NAMES),
        extra.value(THERMAL_FAILED_KEY),
    )
    reported = {name: extra.values(keys) for name, keys in _LIMIT_KEYS.items()}
    xid_counts = _xid_counts(extra)
    field_values = _field_values(table, extra, set(fields))
    node, gpu = col["node"].codes, col["gpu"].codes
    change = np.flatnonzero((node[1:] != node[:-1]) | (gpu[1:] != gpu[:-1])) + 1
    bounds = [0, *change.tolist(), len(node)]
    gpus = []
    for a, b in pairwise(bounds):
        if a == b:
            continue
        gpus.append(
            _Gpu(
                node=col["node"][a],
                gpu=col["gpu"][a],
                uuid=col["gpu_uuid"][a] or "",
                model=col["gpu_model"][a] or "",
                source=col["source"][a],
                source_object=col["source_object"][a],
                time=time[a:b],
                temp=num["gpu_temp_c"][a:b],
                mem_temp=num["mem_temp_c"][a:b],
                power=num["power_w"][a:b],
                reasons=reasons[a:b],
                dbe=dbe[a:b],
                xid=xid[a:b],
                failed=failed[a:b],
                reported={name: values[a:b] for name, values in reported.items()},
                xid_counts={code: values[a:b] for code, values in xid_counts.items()},
                fields={name: values[a:b] for name, values in field_values.items()},
            )
        )
    return gpus


class _Texts:
    """A text column as per-row codes into its distinct values: a GPU's rows are found by comparing
    integers, and only each GPU's first row becomes a Python string (not every row's six texts)."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        self.distinct, self.codes = codes(column)

    def __getitem__(self, row: int) -> str | None:
        return self.distinct[self.codes[row]]


def _xid_counts(extra: series.ExtraLookup) -> dict[int, np.ndarray]:
    """Per XID code, the rows' ``DCGM_EXP_XID_ERRORS_COUNT`` value (NaN where absent)."""
    out = {}
    for key in sorted(k for k in extra.names if k.startswith(XID_COUNT_PREFIX) and k.endswith('"}')):
        code = key[len(XID_COUNT_PREFIX) : -2]
        if code.isdigit():
            out[int(code)] = extra.value(key)
    return out


def _xid_hits(g: _Gpu) -> dict[int, np.ndarray]:
    """Per XID code, the samples where it newly appeared (last-XID gauge or the windowed counter)."""
    hits: dict[int, np.ndarray] = {}
    gauge_new = series.changes_to_nonzero(g.xid, g.carried.xid if g.carried else None)
    for code in sorted({int(v) for v in g.xid[gauge_new]}):
        hits[code] = gauge_new & (g.xid == code)
    for code, counts in g.xid_counts.items():
        hits[code] = hits.get(code, np.zeros(len(g.time), dtype=bool)) | series.rises_from_zero(counts)
    return hits


def _bits(g: _Gpu, mask: int) -> np.ndarray:
    return (g.reasons >= 0) & ((g.reasons & mask) != 0)


@dataclass(frozen=True)
class Rule:
    kind: str
    metric: str
    condition: Callable[[_Gpu, AlertConfig], np.ndarray]
    peak_of: str
    severity: Callable[[float | None, _Gpu, AlertConfig], str]
    #: The limit used, where it came from (reported | model | default) and which it is (limits.LIMIT_NAMES).
    threshold: Callable[[_Gpu, AlertConfig], tuple[float | None, str | None, str | None]] = lambda g, c: (
        None,
        None,
        None,
    )


def _fixed(level: str) -> Callable[[float | None, _Gpu, AlertConfig], str]:
    return lambda peak, g, c: level


def _gpu_hot(g: _Gpu, c: AlertConfig) -> np.ndarray:
    return np.nan_to_num(g.temp, nan=-1e9) >= g.limits(c).warn_c - c.slowdown_margin_c


def _gpu_hot_severity(peak: float | None, g: _Gpu, c: AlertConfig) -> str:
    near_shutdown = peak is not None and peak >= g.limits(c).shutdown_c - c.shutdown_margin_c
    return "critical" if near_shutdown else "warning"


def _hbm_severity(peak: float | None, g: _Gpu, c: AlertConfig) -> str:
    return "critical" if peak is not None and peak >= g.limits(c).mem_max_c + 5 else "warning"


def _xid_rule(code: int) -> Rule:
    """The rule of one XID code: its own episode (metric ``xid:<code>``), class severity and action."""
    cls = classify(code)
    return Rule("xid", f"xid:{code}", lambda g, c: np.zeros(0, dtype=bool), "xid", _fixed(cls.severity))


RULES = (
    Rule(
        "thermal_throttle",
        "throttle_reasons",
        lambda g, c: _bits(g, SW_THERMAL | HW_THERMAL),
        "temp",
        _fixed("warning"),
    ),
    Rule("power_throttle", "throttle_reasons", lambda g, c: _bits(g, SW_POWER_CAP), "power", _fixed("info")),
    Rule("hw_slowdown", "throttle_reasons", lambda g, c: _bits(g, HW_SLOWDOWN), "temp", _fixed("warning")),
    Rule("power_brake", "throttle_reasons", lambda g, c: _bits(g, HW_POWER_BRAKE), "power", _fixed("critical")),
    Rule(
        "over_temperature",
        "gpu_temp_c",
        _gpu_hot,
        "temp",
        _gpu_hot_severity,
        lambda g, c: (g.limits(c).warn_c, g.limits(c).source, g.limits(c).warn_limit),
    ),
    Rule(
        "over_temperature",
        "mem_temp_c",
        lambda g, c: np.nan_to_num(g.mem_temp, nan=-1e9) > g.limits(c).mem_max_c,
        "mem_temp",
        _hbm_severity,
        lambda g, c: (g.limits(c).mem_max_c, g.limits(c).mem_source, "mem_max_op"),
    ),
    Rule("thermal_failure", "thermal_failed", lambda g, c: np.nan_to_num(g.failed) > 0, "temp", _fixed("critical")),
    Rule(
        "ecc_dbe",
        "ecc_dbe",
        lambda g, c: series.rises(g.dbe, g.carried.dbe if g.carried else None),
        "dbe",
        _fixed("critical"),
    ),
)


def _rule_limit(g: _Gpu, rule: thresholds.ThresholdRule, config: AlertConfig) -> tuple[np.ndarray | float, str | None]:
    """The rule's threshold (per sample when it follows the reported power limit, else one number) and its source."""
    if rule.relative_to == "power_limit":
        limit = g.fields["power_limit"]
        return rule.threshold * limit, "reported" if np.isfinite(limit).any() else None
    if rule.relative_to in ("slowdown", "shutdown"):
        lim = g.limits(config)
        base = lim.slowdown_c if rule.relative_to == "slowdown" else lim.shutdown_c
        return float(base + rule.threshold), lim.source
    return float(rule.threshold), None


def _threshold_alerts(fleet: Fleet[_Gpu], config: AlertConfig) -> list[dict[str, object]]:
    """Episodes of the user's threshold rules (kind ``threshold``, metric = the rule's name)."""
    out = []
    for rule in config.rules:
        limits = [_rule_limit(g, rule, config) for g in fleet.gpus]
        values = fleet.join([g.fields[rule.field] for g in fleet.gpus])
        limit = fleet.join([lim for lim, _ in limits])
        known = np.isfinite(values) & np.isfinite(limit)
        with np.errstate(invalid="ignore"):  # NaN compares false, and ``known`` masks it anyway
            hit = known & np.asarray(thresholds.OPS[rule.op](values, limit), dtype=bool)
        spec = Rule("threshold", rule.name, lambda g, c: np.zeros(0, dtype=bool), rule.field, _fixed(rule.severity))
        runs = fleet.runs(hit, values)
        sources = [source for _, source in limits]
        for (g, first, last, samples, peak), threshold, index in zip(
            fleet.episodes(runs), window_limits(limit, runs), runs.gpu.tolist(), strict=True
        ):
            record = _record(g, spec, first, last, samples, peak, threshold)
            record.update(severity=rule.severity, threshold_source=sources[index], rule=rule.name)
            if rule.min_duration_s:  # the episode (across objects) must last this long to alert
                record.update(min_duration_s=rule.min_duration_s, step_ms=int(g.step))
            record["message"] = (
                f"{rule.name} on {g.node} GPU {g.gpu}: {rule.field} {rule.op} {threshold:g} "
                f"from {record['start']} to {record['end']}, peak {peak:g}"
            )
            out.append(record)
    return out


def _rule_alerts(fleet: Fleet[_Gpu], config: AlertConfig) -> list[dict[str, object]]:
    """Episodes of the built-in rules (:data:`RULES`)."""
    out = []
    for rule in RULES:
        hit = np.concatenate([rule.condition(g, config) for g in fleet.gpus])
        if not hit.any():
            continue
        for g, first, last, samples, peak in fleet.episodes(
            fleet.runs(hit, fleet.join([getattr(g, rule.peak_of) for g in fleet.gpus]))
        ):
            threshold, source, limit = rule.threshold(g, config)  # the GPU's limits are resolved once
            record = _record(g, rule, first, last, samples, peak, threshold, limit)
            record["severity"] = rule.severity(peak, g, config)
            record["threshold_source"] = source
            if limit:
                record["threshold_limit"] = limit
            out.append(record)
    return out


def _xid_alerts(fleet: Fleet[_Gpu], config: AlertConfig) -> list[dict[str, object]]:
    """One episode per XID code and run of samples where it newly appeared."""
    hits = [_xid_hits(g) for g in fleet.gpus]
    out = []
    for code in sorted({code for per_gpu in hits for code in per_gpu}):
        hit = np.concatenate([h.get(code, np.zeros(len(g.time), dtype=bool)) for g, h in zip(fleet.gpus, hits)])
        rule, cls = _xid_rule(code), classify(code)
        for g, first, last, samples, _ in fleet.episodes(fleet.runs(hit)):
            record = _record(g, rule, first, last, samples, float(code), None)
            record.update(severity=cls.severity, threshold_source=None, xid_class=cls.group, action=cls.action)
            record["message"] = f"XID {code} ({cls.summary}) on {g.node} GPU {g.gpu}: {cls.action}"
            out.append(record)
    return out


def detect(
    table: pa.Table,
    config: AlertConfig | None = None,
    carried: Mapping[tuple[str, str], Carried] | None = None,
    extra: series.ExtraLookup | None = None,
) -> list[dict[str, object]]:
    """All alert episodes in ``table`` (canonical metrics), in a deterministic order.

    ``carried``: per (node, GPU identity — UUID, else ``gpu``), what the GPU's previous object ended with
    (:func:`gpulake.alerts.carryover.exchange`), so gauges and counters continue across objects.
    ``extra``: the rows' ``extra`` values when the caller has them (ingest keeps the keys :func:`reads_extra`
    names, and shares them with :func:`gpulake.alerts.carryover.ends`); read from the table otherwise.
    """
    config = config or AlertConfig()
    gpus = _gpus(table, {r.field for r in config.rules}, extra)
    if not gpus:
        return []
    for g in gpus:
        g.carried = (carried or {}).get((g.node, g.uuid or g.gpu))
    fleet = Fleet.of(gpus, config.gap_factor)
    alerts = [*_threshold_alerts(fleet, config), *_rule_alerts(fleet, config), *_xid_alerts(fleet, config)]
    # (start, node, gpu, kind, metric) names one episode: the order does not depend on the order found
    alerts.sort(key=lambda a: (a["start"], a["node"], a["gpu"], a["kind"], a["metric"]))
    return alerts


def _record(
    g: _Gpu,
    rule: Rule,
    first: int,
    last: int,
    samples: int,
    peak: float | None,
    threshold: float | None,
    limit: str | None = None,
) -> dict[str, object]:
    start = int(g.time[first])
    start_iso, end_iso = ms_to_iso_shared(start), ms_to_iso_shared(int(g.time[last]))
    identity = f"{g.source_object}\n{rule.kind}\n{rule.metric}\n{g.node}\n{g.gpu}\n{start}"
    peak_text = f", peak {peak:g}" if peak is not None else ""
    named = f", {limits_mod.LIMIT_NAMES[limit]}" if limit else ""
    limit_text = f" (limit {threshold:g}{named})" if threshold is not None else ""
    return {
        "alert_id": hashlib.sha256(identity.encode()).hexdigest()[:24],
        "kind": rule.kind,
        "severity": None,
        "node": g.node,
        "gpu": g.gpu,
        "gpu_uuid": g.uuid or None,
        "gpu_model": g.model or None,
        "metric": rule.metric,
        "start": start_iso,
        "end": end_iso,
        "samples": samples,
        "peak": peak,
        "threshold": threshold,
        "source": g.source,
        "source_object": g.source_object,
        "message": f"{rule.kind.replace('_', ' ')} on {g.node} GPU {g.gpu}: {samples} sample(s) "
        f"{start_iso}..{end_iso}{peak_text}{limit_text}",
    }
