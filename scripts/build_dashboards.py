#!/usr/bin/env python3
"""Write the Grafana dashboards for both back ends, in two flavours, from one panel list.

Each panel has a PostgreSQL query (Grafana's ``$__timeFilter``/``$__timeGroupAlias``
macros) and an InfluxQL query (``$timeFilter``, ``$__interval``); the tests run every
query against databases loaded from fixtures, macros expanded. Run after editing
a query; a test fails when the committed JSON and this script disagree.

Every panel, target and query variable reads its datasource from the ``datasource`` template
variable, never a fixed uid. The flavours differ only in that variable's starting value:

- ``docs/grafana/dashboards/`` (provisioning, which does no ``__inputs`` substitution): the uid
  that ``docs/grafana/provisioning/datasources.yaml`` gives the datasource;
- ``docs/grafana/import/`` (Dashboards > New > Import): ``${DS_GPULAKE_…}``, declared in
  ``__inputs``, so the import dialog asks which datasource to use.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gpulake.alerts.rules import THROTTLE_CAUSES
from loaders.lineprotocol import SEVERITY_RANKS

GRAFANA = Path(__file__).resolve().parents[1] / "docs" / "grafana"
OUT = GRAFANA / "dashboards"  # provisioned flavour
IMPORT_OUT = GRAFANA / "import"  # import-dialog flavour
#: backend -> (datasource plugin id, uid that provisioning gives it)
DATASOURCES = {
    "postgres": ("grafana-postgresql-datasource", "gpulake-postgres"),
    "influxdb": ("influxdb", "gpulake-influxdb"),
}
#: backend -> (``__inputs`` name, what the import dialog calls it, plugin name)
INPUTS = {
    "postgres": ("DS_GPULAKE_POSTGRES", "gpulake PostgreSQL", "PostgreSQL"),
    "influxdb": ("DS_GPULAKE_INFLUXDB", "gpulake InfluxDB", "InfluxDB"),
}
#: the first Grafana whose PostgreSQL plugin id is ``grafana-postgresql-datasource`` (docs/loaders.md)
MIN_GRAFANA = "10.2.3"
DS_VARIABLE = "datasource"
PANEL_NAMES = {"timeseries": "Time series", "table": "Table", "barchart": "Bar chart"}


@dataclass(frozen=True)
class Panel:
    title: str
    kind: str  # a key of PANEL_NAMES
    postgres: str
    influxdb: str
    description: str = ""
    #: backend -> Grafana ``fieldConfig.overrides`` (units, value mappings) for that backend's columns
    overrides: dict[str, list[dict]] = field(default_factory=dict)


GPU_FILTER_PG = "node = '$node' AND gpu = '$gpu'"
GPU_FILTER_IFX = '"node" =~ /^$node$/ AND "gpu" =~ /^$gpu$/'
THROTTLE_PG = ", ".join(
    f"count(*) FILTER (WHERE throttle_reasons & {bit} <> 0) AS {name}" for name, bit in THROTTLE_CAUSES.items()
)
THROTTLE_IFX = (
    "SELECT "
    + ", ".join(f'sum("{name}") / {bit} AS "{name}"' for name, bit in THROTTLE_CAUSES.items())
    + " FROM (SELECT "
    + ", ".join(f'"throttle_reasons" & {bit} AS "{name}"' for name, bit in THROTTLE_CAUSES.items())
    + ' FROM "gpu_metrics" WHERE $timeFilter AND {gpu}) WHERE $timeFilter GROUP BY time(1m)'
)


def _override(column: str, prop: str, value: object) -> dict:
    return {"matcher": {"id": "byName", "options": column}, "properties": [{"id": prop, "value": value}]}


#: The InfluxDB episodes panel's columns as people read them: times as dates, the severity rank as its name,
#: no state yet (no closed record loaded) as ``open``.
EPISODE_OVERRIDES_IFX = [
    _override("first_seen", "unit", "dateTimeAsIso"),
    _override("last_seen", "unit", "dateTimeAsIso"),
    _override(
        "severity",
        "mappings",
        [{"type": "value", "options": {str(rank): {"text": name} for rank, name in enumerate(SEVERITY_RANKS)}}],
    ),
    _override("state", "mappings", [{"type": "special", "options": {"match": "null", "result": {"text": "open"}}}]),
]

DASHBOARDS: dict[str, tuple[str, list[Panel]]] = {
    "fleet-overview": (
        "gpulake: fleet overview",
        [
            Panel(
                "Hottest GPUs",
                "table",
                "SELECT node, gpu, max(gpu_temp_c) AS max_temp_c, avg(gpu_temp_c) AS avg_temp_c FROM gpu_metrics "
                "WHERE $__timeFilter(time) AND gpu_temp_c IS NOT NULL GROUP BY node, gpu "
                "ORDER BY max_temp_c DESC LIMIT 10",
                'SELECT max("gpu_temp_c") AS "max_temp_c", mean("gpu_temp_c") AS "avg_temp_c" FROM "gpu_metrics" '
                'WHERE $timeFilter GROUP BY "node", "gpu"',
                "Highest GPU temperature per GPU in the range.",
            ),
            Panel(
                "Throttled GPU-minutes",
                "timeseries",
                "SELECT $__timeGroupAlias(time, '10m'), count(DISTINCT (node, gpu, date_trunc('minute', time))) "
                "AS throttled_gpu_minutes FROM gpu_metrics WHERE $__timeFilter(time) "
                "AND throttle_reasons & ~1::bigint <> 0 GROUP BY 1 ORDER BY 1",
                'SELECT count("throttle_reasons") AS "throttled_gpu_minutes" FROM (SELECT max("throttle_reasons") '
                'AS "throttle_reasons" FROM "gpu_metrics" WHERE $timeFilter AND "throttle_reasons" > 1 '
                'GROUP BY time(1m), "node", "gpu") WHERE $timeFilter GROUP BY time(10m)',
                "Minutes in which a GPU reported any clock event reason other than idle.",
            ),
            Panel(
                "Power vs limit",
                "timeseries",
                "SELECT $__timeGroupAlias(time, '5m'), node, avg(power_w) AS power_w, "
                "max((extra->>'DCGM_FI_DEV_POWER_MGMT_LIMIT')::float8) AS limit_w FROM gpu_metrics "
                "WHERE $__timeFilter(time) AND source = 'dcgm' GROUP BY 1, node ORDER BY 1",
                'SELECT mean("power_w") AS "power_w", max("DCGM_FI_DEV_POWER_MGMT_LIMIT") AS "limit_w" '
                'FROM "gpu_metrics" WHERE $timeFilter AND "source" = \'dcgm\' GROUP BY time($__interval), "node"',
                "Average draw per node against the power management limit dcgm-exporter reports.",
            ),
            Panel(
                "Hourly average temperature",
                "timeseries",
                "SELECT bucket AS time, node, avg(avg_temp_c) AS avg_temp_c FROM gpu_metrics_hourly "
                "WHERE $__timeFilter(bucket) GROUP BY 1, 2 ORDER BY 1",
                'SELECT mean("gpu_temp_c") AS "avg_temp_c" FROM "gpu_metrics" WHERE $timeFilter '
                'GROUP BY time(1h), "node"',
                "From the hourly aggregate (continuous aggregate on TimescaleDB).",
            ),
        ],
    ),
    "gpu-detail": (
        "gpulake: GPU detail",
        [
            Panel(
                "Temperatures",
                "timeseries",
                f"SELECT time, gpu_temp_c, mem_temp_c FROM gpu_metrics WHERE $__timeFilter(time) AND {GPU_FILTER_PG} "
                "ORDER BY time",
                f'SELECT mean("gpu_temp_c") AS "gpu_temp_c", mean("mem_temp_c") AS "mem_temp_c" FROM "gpu_metrics" '
                f"WHERE $timeFilter AND {GPU_FILTER_IFX} GROUP BY time($__interval)",
            ),
            Panel(
                "Power",
                "timeseries",
                f"SELECT time, power_w FROM gpu_metrics WHERE $__timeFilter(time) AND {GPU_FILTER_PG} ORDER BY time",
                f'SELECT mean("power_w") AS "power_w" FROM "gpu_metrics" WHERE $timeFilter AND {GPU_FILTER_IFX} '
                "GROUP BY time($__interval)",
            ),
            Panel(
                "Clocks",
                "timeseries",
                "SELECT time, sm_clock_mhz, mem_clock_mhz FROM gpu_metrics "
                f"WHERE $__timeFilter(time) AND {GPU_FILTER_PG} ORDER BY time",
                f'SELECT mean("sm_clock_mhz") AS "sm_clock_mhz", mean("mem_clock_mhz") AS "mem_clock_mhz" '
                f'FROM "gpu_metrics" WHERE $timeFilter AND {GPU_FILTER_IFX} GROUP BY time($__interval)',
            ),
            Panel(
                "Utilization",
                "timeseries",
                f"SELECT time, util_pct FROM gpu_metrics WHERE $__timeFilter(time) AND {GPU_FILTER_PG} ORDER BY time",
                f'SELECT mean("util_pct") AS "util_pct" FROM "gpu_metrics" WHERE $timeFilter AND {GPU_FILTER_IFX} '
                "GROUP BY time($__interval)",
            ),
            Panel(
                "Throttle causes (samples)",
                "timeseries",
                f"SELECT $__timeGroupAlias(time, '1m'), {THROTTLE_PG} FROM gpu_metrics "
                f"WHERE $__timeFilter(time) AND {GPU_FILTER_PG} GROUP BY 1 ORDER BY 1",
                THROTTLE_IFX.replace("{gpu}", GPU_FILTER_IFX),
                "Samples per minute with each NVML clock event reason set.",
            ),
        ],
    ),
    "alerts": (
        "gpulake: alerts",
        [
            Panel(
                "Alert episodes",
                "table",
                # one row per episode (ADR 0005): its per-object alerts grouped, state and notifications once closed;
                # samples summed per source, then the most of any source (two sources of one GPU count it once)
                "SELECT min(a.start_time) AS time, max(a.last_seen) AS last_seen, "
                "coalesce(max(e.state), 'open') AS state, a.episode_id, a.kind, a.metric, "
                "(ARRAY['info', 'warning', 'critical'])[max(a.severity)] AS severity, a.node, a.gpu, "
                "max(a.peak) AS peak, max(a.samples) AS samples, sum(a.objects) AS objects, "
                "max(e.notifications) AS notifications, max(e.resolution) AS resolution "
                "FROM (SELECT episode_id, kind, metric, node, gpu, min(start_time) AS start_time, max(end_time) "
                "AS last_seen, max(CASE severity WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 ELSE 1 END) "
                "AS severity, max(peak) AS peak, sum(samples) AS samples, count(*) AS objects FROM gpu_alerts "
                "WHERE $__timeFilter(start_time) GROUP BY episode_id, kind, metric, node, gpu, source) a "
                "LEFT JOIN gpu_episodes e USING (episode_id) "
                "GROUP BY a.episode_id, a.kind, a.metric, a.node, a.gpu ORDER BY 1 DESC",
                # one series per episode and source in gpu_episodes: its per-object alerts and, once closed, its
                # closed record; per source first, then per episode (the most samples of any source)
                'SELECT last("state") AS "state", min("first_seen") AS "first_seen", max("last_seen") AS "last_seen", '
                'max("severity") AS "severity", max("peak") AS "peak", max("samples") AS "samples", '
                'sum("objects") AS "objects", last("notifications") AS "notifications", '
                'last("resolution") AS "resolution" FROM (SELECT last("state") AS "state", '
                'min("start_ms") AS "first_seen", max("end_ms") AS "last_seen", max("severity_rank") AS "severity", '
                'max("peak") AS "peak", sum("samples") AS "samples", count("samples") AS "objects", '
                'last("notifications") AS "notifications", last("resolution") AS "resolution" FROM "gpu_episodes" '
                'WHERE $timeFilter AND "episode_id" =~ /./ GROUP BY "episode_id", "kind", "metric", "node", "gpu", '
                '"source") GROUP BY "episode_id", "kind", "metric", "node", "gpu"',
                "One row per episode; per-object alerts of one episode share its episode_id.",
                {"influxdb": EPISODE_OVERRIDES_IFX},
            ),
            Panel(
                "Alerts by kind",
                "barchart",
                "SELECT kind, severity, count(*) AS episodes FROM gpu_alerts WHERE $__timeFilter(start_time) "
                "GROUP BY kind, severity ORDER BY episodes DESC",
                'SELECT count("peak") AS "episodes" FROM "gpu_alerts" WHERE $timeFilter GROUP BY "kind", "severity"',
            ),
            Panel(
                "ECC double-bit errors and last XID",
                "timeseries",
                "SELECT $__timeGroupAlias(time, '5m'), node, "
                "max((extra->>'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL')::float8) AS ecc_dbe, "
                "max((extra->>'DCGM_FI_DEV_XID_ERRORS')::float8) AS last_xid FROM gpu_metrics "
                "WHERE $__timeFilter(time) AND source = 'dcgm' GROUP BY 1, node ORDER BY 1",
                'SELECT max("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL") AS "ecc_dbe", max("DCGM_FI_DEV_XID_ERRORS") AS "last_xid" '
                'FROM "gpu_metrics" WHERE $timeFilter AND "source" = \'dcgm\' GROUP BY time($__interval), "node"',
            ),
        ],
    ),
}

VARIABLES = {
    "postgres": {
        "node": "SELECT DISTINCT node FROM gpu_metrics ORDER BY 1",
        "gpu": "SELECT DISTINCT gpu FROM gpu_metrics WHERE node = '$node' ORDER BY 1",
    },
    "influxdb": {
        "node": 'SHOW TAG VALUES FROM "gpu_metrics" WITH KEY = "node"',
        "gpu": 'SHOW TAG VALUES FROM "gpu_metrics" WITH KEY = "gpu" WHERE "node" =~ /^$node$/',
    },
}


def _datasource(backend: str) -> dict:
    """What panels, targets and query variables point at: the datasource variable, never a fixed uid."""
    return {"type": DATASOURCES[backend][0], "uid": f"${{{DS_VARIABLE}}}"}


def _datasource_variable(backend: str, current: str) -> dict:
    return {
        "name": DS_VARIABLE,
        "label": "Data source",
        "type": "datasource",
        "query": DATASOURCES[backend][0],
        "current": {"text": INPUTS[backend][1], "value": current},
        "refresh": 1,
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "regex": "",
    }


def _target(backend: str, query: str, kind: str) -> dict:
    base = {"refId": "A", "datasource": _datasource(backend)}
    if backend == "postgres":
        return base | {
            "rawSql": query,
            "rawQuery": True,
            "editorMode": "code",
            "format": "table" if kind != "timeseries" else "time_series",
        }
    return base | {"query": query, "rawQuery": True, "resultFormat": "table" if kind != "timeseries" else "time_series"}


def dashboard(backend: str, slug: str) -> dict:
    """The provisioned flavour: the datasource variable starts on the provisioned uid."""
    title, panels = DASHBOARDS[slug]
    uses_gpu = slug == "gpu-detail"
    variables = [_datasource_variable(backend, DATASOURCES[backend][1])] + (
        [
            {
                "name": name,
                "type": "query",
                "datasource": _datasource(backend),
                "query": query,
                "refresh": 1,  # on dashboard load, so the first visit has values
                "current": {},
            }
            for name, query in VARIABLES[backend].items()
        ]
        if uses_gpu
        else []
    )
    return {
        "uid": f"gpulake-{slug}-{backend}",
        "title": f"{title} ({backend})",
        "tags": ["gpulake", backend],
        "timezone": "utc",
        "schemaVersion": 39,
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": variables},
        "panels": [
            {
                "id": i + 1,
                "type": p.kind,
                "title": p.title,
                "description": p.description,
                "datasource": _datasource(backend),
                "fieldConfig": {"defaults": {}, "overrides": p.overrides.get(backend, [])},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "targets": [_target(backend, getattr(p, backend), p.kind)],
            }
            for i, p in enumerate(panels)
        ],
    }


def importable(backend: str, slug: str) -> dict:
    """The import flavour: ``__inputs``/``__requires`` as Grafana's "export for sharing externally" writes them."""
    ds_type = DATASOURCES[backend][0]
    name, label, plugin = INPUTS[backend]
    board = dashboard(backend, slug)
    board["templating"]["list"][0] = _datasource_variable(backend, f"${{{name}}}")
    kinds = sorted({p.kind for p in DASHBOARDS[slug][1]})
    return {
        "__inputs": [
            {
                "name": name,
                "label": label,
                "description": "",
                "type": "datasource",
                "pluginId": ds_type,
                "pluginName": plugin,
            },
        ],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": MIN_GRAFANA},
            {"type": "datasource", "id": ds_type, "name": plugin, "version": "1.0.0"},
            *({"type": "panel", "id": kind, "name": PANEL_NAMES[kind], "version": ""} for kind in kinds),
        ],
        "id": None,
    } | board


def render() -> dict[Path, str]:
    """Every dashboard file, both flavours, as the committed text."""
    flavours = ((OUT, dashboard), (IMPORT_OUT, importable))
    return {
        root / backend / f"{slug}.json": json.dumps(build(backend, slug), indent=2) + "\n"
        for root, build in flavours
        for backend in DATASOURCES
        for slug in DASHBOARDS
    }


def main() -> int:
    for path, text in render().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(GRAFANA.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
