"""PostgreSQL schema as numbered migrations, applied once each and recorded in ``gpulake_migrations``.

Two flavours share table and view names, so dashboards work on both:
TimescaleDB (hypertable with 1-day chunks, compression and retention policies, an
hourly continuous aggregate) when the extension is available, otherwise native
daily range partitions and an hourly materialized view that ``sync`` refreshes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LOCK_ID = 0x6770_756C  # "gpul": one migrator at a time

METRIC_COLUMNS = """
    time timestamptz NOT NULL,
    node text NOT NULL,
    gpu text NOT NULL,
    gpu_uuid text,
    gpu_model text,
    source text NOT NULL,
    gpu_temp_c double precision,
    mem_temp_c double precision,
    power_w double precision,
    util_pct double precision,
    sm_clock_mhz double precision,
    mem_clock_mhz double precision,
    fb_used_mib double precision,
    throttle_reasons bigint,
    extra jsonb,
    labels jsonb,
    source_object text NOT NULL,
    object_key text NOT NULL
"""

CORE = f"""
CREATE TABLE gpulake_ledger (
    object_key text PRIMARY KEY,
    version text NOT NULL,
    kind text NOT NULL,
    rows bigint NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE gpu_alerts (
    alert_id text PRIMARY KEY,
    kind text NOT NULL,
    severity text NOT NULL,
    node text NOT NULL,
    gpu text NOT NULL,
    gpu_model text,
    metric text,
    start_time timestamptz NOT NULL,
    end_time timestamptz NOT NULL,
    samples bigint,
    peak double precision,
    threshold double precision,
    source text,
    source_object text,
    message text,
    object_key text NOT NULL
);
CREATE INDEX gpu_alerts_start_idx ON gpu_alerts (start_time);
CREATE INDEX gpu_alerts_object_idx ON gpu_alerts (object_key);
CREATE TABLE gpu_metrics ({METRIC_COLUMNS}) {{partitioning}};
CREATE UNIQUE INDEX gpu_metrics_identity ON gpu_metrics (node, gpu, source, time);
CREATE INDEX gpu_metrics_object_idx ON gpu_metrics (object_key);
CREATE INDEX gpu_metrics_time_idx ON gpu_metrics (time);
"""

HOURLY_SELECT = """
SELECT {bucket} AS bucket, node, gpu, source,
       avg(gpu_temp_c) AS avg_temp_c, max(gpu_temp_c) AS max_temp_c,
       avg(power_w) AS avg_power_w, max(power_w) AS max_power_w,
       avg(util_pct) AS avg_util_pct,
       count(*) AS samples,
       count(*) FILTER (WHERE throttle_reasons IS NOT NULL AND throttle_reasons & ~1::bigint <> 0) AS throttled_samples
FROM gpu_metrics
GROUP BY 1, 2, 3, 4
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Any, bool], None]


#: the first TimescaleDB release whose compression is the columnstore API (the old one is deprecated there)
COLUMNSTORE_SINCE = (2, 18)


def timescale_version(conn: Any) -> tuple[int, int]:
    """(major, minor) of the installed timescaledb extension."""
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    major, minor = (int(part) for part in re.findall(r"\d+", row[0])[:2])
    return major, minor


def columnstore_statements(version: tuple[int, int]) -> list[str]:
    """Compress chunks older than 7 days, segmented by node, gpu, source: the columnstore API from 2.18 on."""
    if version >= COLUMNSTORE_SINCE:
        return [
            "ALTER TABLE gpu_metrics SET (timescaledb.enable_columnstore, "
            "timescaledb.segmentby = 'node, gpu, source', timescaledb.orderby = 'time')",
            "CALL add_columnstore_policy('gpu_metrics', after => INTERVAL '7 days')",
        ]
    return [
        "ALTER TABLE gpu_metrics SET (timescaledb.compress, "
        "timescaledb.compress_segmentby = 'node, gpu, source', timescaledb.compress_orderby = 'time')",
        "SELECT add_compression_policy('gpu_metrics', INTERVAL '7 days')",
    ]


def _core(conn: Any, timescale: bool) -> None:
    conn.execute(CORE.format(partitioning="" if timescale else "PARTITION BY RANGE (time)"))
    if timescale:
        conn.execute("SELECT create_hypertable('gpu_metrics', by_range('time', INTERVAL '1 day'))")
        for statement in columnstore_statements(timescale_version(conn)):
            conn.execute(statement)
        conn.execute("SELECT add_retention_policy('gpu_metrics', INTERVAL '400 days')")


def _hourly(conn: Any, timescale: bool) -> None:
    if timescale:
        conn.execute(
            "CREATE MATERIALIZED VIEW gpu_metrics_hourly WITH (timescaledb.continuous) AS"
            + HOURLY_SELECT.format(bucket="time_bucket(INTERVAL '1 hour', time)")
            + " WITH NO DATA"
        )
        conn.execute(
            "SELECT add_continuous_aggregate_policy('gpu_metrics_hourly', start_offset => INTERVAL '3 days', "
            "end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes')"
        )
    else:
        conn.execute(
            "CREATE MATERIALIZED VIEW gpu_metrics_hourly AS"
            + HOURLY_SELECT.format(bucket="date_trunc('hour', time)")
            + " WITH NO DATA"
        )
        conn.execute("CREATE UNIQUE INDEX gpu_metrics_hourly_key ON gpu_metrics_hourly (bucket, node, gpu, source)")


def _refreshes(conn: Any, timescale: bool) -> None:
    """Which ledger state each view was last refreshed at: a sync killed before its refresh is caught up later."""
    conn.execute("CREATE TABLE gpulake_refreshes (view_name text PRIMARY KEY, ledger_mark timestamptz NOT NULL)")


def _episodes(conn: Any, timescale: bool) -> None:
    """Alert episodes (ADR 0005): the episode of each per-object alert, and closed episodes."""
    conn.execute("ALTER TABLE gpu_alerts ADD COLUMN episode_id text, ADD COLUMN threshold_source text")
    conn.execute("CREATE INDEX gpu_alerts_episode_idx ON gpu_alerts (episode_id)")
    conn.execute(
        "CREATE TABLE gpu_episodes (episode_id text PRIMARY KEY, kind text NOT NULL, severity text NOT NULL,"
        " node text NOT NULL, gpu text NOT NULL, gpu_model text, metric text, start_time timestamptz NOT NULL,"
        " end_time timestamptz NOT NULL, samples bigint, peak double precision, threshold double precision,"
        " source text, message text, threshold_source text, state text NOT NULL, notifications bigint,"
        " objects bigint, object_key text NOT NULL)"
    )
    conn.execute("CREATE INDEX gpu_episodes_start_idx ON gpu_episodes (start_time)")


#: the ``date=`` partition of a ledger key; the index below and ``high_water_mark`` use this exact expression
LEDGER_PARTITION = "substring(object_key from '(?:^|/)date=([0-9]{4}-[0-9]{2}-[0-9]{2})/')"


def _ledger_partition_index(conn: Any, timescale: bool) -> None:
    """max() of the ledger's partition dates from the index, not a scan of every key (sync's high-water mark)."""
    conn.execute(f"CREATE INDEX IF NOT EXISTS gpulake_ledger_partition ON gpulake_ledger (({LEDGER_PARTITION}))")


def _resolution(conn: Any, timescale: bool) -> None:
    """Why a closed episode resolved (``cleared`` / ``no_data``, ADR 0005)."""
    conn.execute("ALTER TABLE gpu_episodes ADD COLUMN IF NOT EXISTS resolution text")


MIGRATIONS = (
    Migration(1, "ledger, gpu_alerts, gpu_metrics", _core),
    Migration(2, "gpu_metrics_hourly", _hourly),
    Migration(3, "gpulake_refreshes", _refreshes),
    Migration(4, "alert episodes", _episodes),
    Migration(5, "ledger partition-date index", _ledger_partition_index),
    Migration(6, "episode resolution", _resolution),
)


def has_timescale(conn: Any) -> bool:
    row = conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    return bool(row and row[0])


def migrate(conn: Any, allow_timescale: bool = True) -> tuple[int, bool]:
    """Apply pending migrations (idempotent, serialized by an advisory lock); return (version, timescale)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS gpulake_migrations (version int PRIMARY KEY, name text NOT NULL, "
            "flavour text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = conn.execute("SELECT version, flavour FROM gpulake_migrations ORDER BY version").fetchall()
        done = {version for version, _ in rows}
        if rows:
            timescale = rows[0][1] == "timescaledb"
        else:
            timescale = allow_timescale and has_timescale(conn)
            if timescale:
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        flavour = "timescaledb" if timescale else "postgresql"
        for migration in MIGRATIONS:
            if migration.version not in done:
                migration.apply(conn, timescale)
                conn.execute(
                    "INSERT INTO gpulake_migrations (version, name, flavour) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, flavour),
                )
    return MIGRATIONS[-1].version, timescale
