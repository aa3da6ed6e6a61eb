"""Grafana dashboards: every panel and variable query runs against databases loaded from fixtures and returns
rows; every panel reads its datasource from a variable, so the import flavour works with any datasource uid."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gpulake.alerts.lifecycle import public
from gpulake.alerts.state import SqliteEpisodeStore
from gpulake.local import STATE_FILE
from gpulake.timeutil import iso_to_ms
from loaders.influx import InfluxTarget
from loaders.postgres import PostgresTarget
from loaders.source import LocalSource
from loaders.sync import sync
from tests.conftest import script_module
from tests.loaders.data import metrics_table

build_dashboards = script_module("build_dashboards")

GRAFANA = Path(build_dashboards.OUT).parent
DS_REF = "${datasource}"


def _dashboards(backend: str, root: Path = build_dashboards.OUT) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / backend).glob("*.json"))]


def _datasource_refs(board: dict) -> list[tuple[str, dict]]:
    """Every datasource reference of a dashboard: panels, their targets, query variables."""
    refs = [(f"variable {v['name']}", v["datasource"]) for v in board["templating"]["list"] if v["type"] == "query"]
    for panel in board["panels"]:
        refs.append((f"panel {panel['title']}", panel["datasource"]))
        refs += [(f"panel {panel['title']} target {t['refId']}", t["datasource"]) for t in panel["targets"]]
    return refs


@pytest.mark.parametrize("root", [build_dashboards.OUT, build_dashboards.IMPORT_OUT], ids=["provisioned", "import"])
@pytest.mark.parametrize("backend", ["postgres", "influxdb"])
def test_every_panel_target_and_variable_uses_the_datasource_variable(backend: str, root: Path) -> None:
    ds_type = build_dashboards.DATASOURCES[backend][0]
    for board in _dashboards(backend, root):
        variable = board["templating"]["list"][0]
        assert (variable["name"], variable["type"], variable["query"]) == ("datasource", "datasource", ds_type)
        refs = _datasource_refs(board)
        assert len(refs) >= 6
        for where, ref in refs:
            assert ref == {"type": ds_type, "uid": DS_REF}, f"{board['title']} / {where}"


@pytest.mark.parametrize("backend", ["postgres", "influxdb"])
def test_import_flavour_asks_for_the_datasource(backend: str) -> None:
    ds_type, provisioned_uid = build_dashboards.DATASOURCES[backend]
    for path in sorted((build_dashboards.IMPORT_OUT / backend).glob("*.json")):
        text = path.read_text()
        board = json.loads(text)
        # __inputs as Grafana's "export for sharing externally" writes them: one datasource input
        (given,) = board["__inputs"]
        assert re.fullmatch(r"DS_[A-Z0-9_]+", given["name"]) and given["label"]
        assert (given["type"], given["pluginId"]) == ("datasource", ds_type)
        # every ${DS_…} in the file is declared, and the datasource variable starts on it
        assert set(re.findall(r"\$\{(DS_[A-Z0-9_]+)\}", text)) == {given["name"]}
        assert board["templating"]["list"][0]["current"]["value"] == "${" + given["name"] + "}"
        assert provisioned_uid not in text and board["id"] is None
        requires = {(r["type"], r["id"]): r["version"] for r in board["__requires"]}
        assert requires[("grafana", "grafana")] == "10.2.3" and ("datasource", ds_type) in requires
        assert {("panel", p["type"]) for p in board["panels"]} <= set(requires)
        # WHEN Grafana imports it onto a datasource of any uid, THEN every reference resolves to that uid
        imported = json.loads(text.replace("${" + given["name"] + "}", "any-uid-at-all"))
        chosen = imported["templating"]["list"][0]["current"]["value"]
        assert chosen == "any-uid-at-all"
        assert {ref["uid"].replace(DS_REF, chosen) for _, ref in _datasource_refs(imported)} == {chosen}


def test_import_and_provisioned_flavours_differ_only_in_where_the_datasource_comes_from() -> None:
    for backend in build_dashboards.DATASOURCES:
        for slug in build_dashboards.DASHBOARDS:
            provisioned = build_dashboards.dashboard(backend, slug)
            imported = build_dashboards.importable(backend, slug)
            assert "__inputs" not in provisioned
            assert provisioned["templating"]["list"][0]["current"]["value"] == build_dashboards.DATASOURCES[backend][1]
            assert imported["panels"] == provisioned["panels"]
            assert imported["templating"]["list"][1:] == provisioned["templating"]["list"][1:]


def test_committed_dashboards_are_generated() -> None:
    for path, text in build_dashboards.render().items():
        assert path.read_text() == text, f"{path} is stale: run scripts/build_dashboards.py"


def test_provisioning_names_the_dashboards_datasources() -> None:
    provisioning = (GRAFANA / "provisioning" / "datasources.yaml").read_text()
    for ds_type, uid in build_dashboards.DATASOURCES.values():
        assert f"uid: {uid}" in provisioning and f"type: {ds_type}" in provisioning


def _range(root: Path) -> tuple[int, int]:
    times = metrics_table(root)["time"]
    return int(times[0].value), int(times[-1].value)


def _expand_pg(query: str, start_ms: int, end_ms: int, values: dict[str, str]) -> str:
    """Grafana's PostgreSQL macros, as Grafana expands them."""
    query = re.sub(
        r"\$__timeFilter\((\w+)\)",
        lambda m: f"{m[1]} BETWEEN to_timestamp({start_ms / 1000}) AND to_timestamp({end_ms / 1000})",
        query,
    )

    def group(match: re.Match[str]) -> str:
        seconds = {"m": 60, "h": 3600}[match[3]] * int(match[2])
        return f'floor(extract(epoch from {match[1]})/{seconds})*{seconds} AS "time"'

    query = re.sub(r"\$__timeGroupAlias\((\w+), '(\d+)([mh])'\)", group, query)
    for name, value in values.items():
        query = query.replace(f"${name}", value.replace("'", "''"))
    assert "$" not in query, query
    return query


def _expand_influx(query: str, start_ms: int, end_ms: int, values: dict[str, str]) -> str:
    query = query.replace("$timeFilter", f"time >= {start_ms}ms AND time <= {end_ms}ms")
    query = query.replace("$__interval", "1m")
    for name, value in values.items():
        query = query.replace(f"${name}", re.escape(value).replace("/", "\\/"))
    assert "$" not in query.replace("$/", ""), query
    return query


def _panel_queries(backend: str) -> list[tuple[str, str, str]]:
    key = "rawSql" if backend == "postgres" else "query"
    return [(d["title"], p["title"], p["targets"][0][key]) for d in _dashboards(backend) for p in d["panels"]]


@pytest.mark.parametrize("backend", ["postgres", "influxdb"])
def test_every_dashboard_has_panels(backend: str) -> None:
    titles = {d["title"].split(" (")[0] for d in _dashboards(backend)}
    assert titles == {"gpulake: fleet overview", "gpulake: GPU detail", "gpulake: alerts"}
    assert len(_panel_queries(backend)) == 12


def test_postgres_panels_return_rows(fleet_output: Path, pg_target: PostgresTarget) -> None:
    sync(LocalSource(fleet_output), pg_target)
    start, end = _range(fleet_output)
    values: dict[str, str] = {}
    for name, query in build_dashboards.VARIABLES["postgres"].items():
        rows = pg_target.conn.execute(_expand_pg(query, start, end, values)).fetchall()
        assert rows, name
        values[name] = rows[0][0]
    for dashboard, panel, query in _panel_queries("postgres"):
        rows = pg_target.conn.execute(_expand_pg(query, start, end, values)).fetchall()
        assert rows, f"{dashboard} / {panel} returned no rows"


def test_influx_panels_return_rows(fleet_output: Path, influx_target: InfluxTarget) -> None:
    sync(LocalSource(fleet_output), influx_target)
    start, end = _range(fleet_output)
    values: dict[str, str] = {}
    for name, query in build_dashboards.VARIABLES["influxdb"].items():
        series = influx_target.writer.query(_expand_influx(query, start, end, values))
        assert series, name
        values[name] = series[0]["values"][0][1]
    for dashboard, panel, query in _panel_queries("influxdb"):
        series = influx_target.writer.query(_expand_influx(query, start, end, values))
        assert series and any(s["values"] for s in series), f"{dashboard} / {panel} returned no rows"


def _mapped(value: object, column: str, panel: dict) -> object:
    """``value`` as the panel shows it: its value and null mappings (Grafana's fieldConfig overrides)."""
    for override in panel["fieldConfig"]["overrides"]:
        if override["matcher"] == {"id": "byName", "options": column}:
            for mapping in next((p["value"] for p in override["properties"] if p["id"] == "mappings"), []):
                if mapping["type"] == "value" and str(value) in mapping["options"]:
                    return mapping["options"][str(value)]["text"]
                if mapping["type"] == "special" and mapping["options"]["match"] == "null" and value is None:
                    return mapping["options"]["result"]["text"]
    return value


def _expected_episodes(root: Path) -> dict[str, dict[str, object]]:
    """Per episode id, what an episodes panel must show: closed ones (episodes/), open ones (the offline state)."""
    closed = [json.loads(p.read_text()) for p in (root / "episodes").rglob("*.json")]
    still_open = [public(e) for e in SqliteEpisodeStore(root / STATE_FILE).open_items()]
    assert closed and still_open
    return {
        e["episode_id"]: {
            "state": state,
            "first_seen": iso_to_ms(e["start"]),
            "last_seen": iso_to_ms(e["end"]),
            "severity": e["severity"],
            "samples": e["samples"],
            "notifications": e["notifications"] if state == "closed" else None,  # open: not in the lake yet
            "resolution": e["resolution"] if state == "closed" else None,
        }
        for state, group in (("closed", closed), ("open", still_open))
        for e in group
    }


def _episodes_panel(backend: str) -> dict:
    (board,) = [d for d in _dashboards(backend) if d["uid"] == f"gpulake-alerts-{backend}"]
    return next(p for p in board["panels"] if p["title"] == "Alert episodes")


def test_influx_episodes_panel_shows_one_row_per_episode(lifecycle_output: Path, influx_target: InfluxTarget) -> None:
    # GIVEN an hour of uploads (dcgm and nvidia-smi) processed with the lifecycle: closed and open episodes
    expected = _expected_episodes(lifecycle_output)
    # WHEN the lake is synced and the InfluxDB "Alert episodes" panel runs over the hour
    sync(LocalSource(lifecycle_output), influx_target)
    panel = _episodes_panel("influxdb")
    series = influx_target.writer.query(_expand_influx(panel["targets"][0]["query"], 0, 2**42, {}))
    # THEN it has exactly one row per episode, with its state, first and last seen, samples and notifications
    rows: dict[str, dict[str, object]] = {}
    for s in series:
        (values,) = s["values"]
        row = dict(zip(s["columns"], values))
        assert s["tags"]["episode_id"] not in rows
        rows[s["tags"]["episode_id"]] = {c: _mapped(row[c], c, panel) for c in expected[s["tags"]["episode_id"]]}
    assert {k: sorted(v.items()) for k, v in rows.items()} == {k: sorted(v.items()) for k, v in expected.items()}, [
        (k, rows.get(k), expected.get(k)) for k in sorted(set(rows) | set(expected)) if rows.get(k) != expected.get(k)
    ]


def test_postgres_episodes_panel_shows_one_row_per_episode(lifecycle_output: Path, pg_target: PostgresTarget) -> None:
    # GIVEN the same hour, WHEN the PostgreSQL "Alert episodes" panel runs over it
    expected = _expected_episodes(lifecycle_output)
    sync(LocalSource(lifecycle_output), pg_target)
    cursor = pg_target.conn.execute(_expand_pg(_episodes_panel("postgres")["targets"][0]["rawSql"], 0, 2**42, {}))
    names = [d.name for d in cursor.description]
    # THEN one row per episode, with the same state, first and last seen, samples and notifications
    rows: dict[str, dict[str, object]] = {}
    for values in cursor.fetchall():
        row = dict(zip(names, values))
        row |= {
            "first_seen": int(row["time"].timestamp() * 1000),
            "last_seen": int(row["last_seen"].timestamp() * 1000),
        }
        assert row["episode_id"] not in rows
        rows[row["episode_id"]] = {c: row[c] for c in expected[row["episode_id"]]}
    assert {k: sorted(v.items()) for k, v in rows.items()} == {k: sorted(v.items()) for k, v in expected.items()}, [
        (k, rows.get(k), expected.get(k)) for k in sorted(set(rows) | set(expected)) if rows.get(k) != expected.get(k)
    ]
