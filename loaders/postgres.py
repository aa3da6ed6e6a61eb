"""PostgreSQL / TimescaleDB target: COPY into the table (or a staging table + upsert), ledger in the same transaction.

Each object is one transaction: its rows and its ledger entry commit together, so a
sync killed at any point leaves either the whole object or none of it. A new object
is COPYed straight into ``gpu_metrics`` (the fast path); if its rows collide with
rows already there or with each other (unique on node, gpu, source, time) the
transaction falls back to COPY into a temporary staging table and ``INSERT ... ON
CONFLICT DO UPDATE``. Within one object the last row for an identity wins (file
order: the staging table is emptied at each commit, so ``ctid`` follows it), as a
later point overwrites an earlier one in InfluxDB.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from gpulake.errors import ConfigError
from loaders import pg_schema
from loaders.errors import ObjectRejected, TargetRejected, TargetUnavailable
from loaders.records import map_to_json, read_alerts, read_episode, read_metrics
from loaders.redact import redact
from loaders.source import ProcessedObject
from loaders.target import Target

CHUNK = 1 << 20
METRIC_KEY = ("node", "gpu", "source", "time")
HOURLY_VIEW = "gpu_metrics_hourly"
ALERT_COLUMNS = {  # gpu_alerts column -> alerts field
    "alert_id": "alert_id", "kind": "kind", "severity": "severity", "node": "node", "gpu": "gpu",
    "gpu_model": "gpu_model", "metric": "metric", "start_time": "start", "end_time": "end", "samples": "samples",
    "peak": "peak", "threshold": "threshold", "source": "source", "source_object": "source_object",
    "message": "message", "episode_id": "episode_id", "threshold_source": "threshold_source",
}  # fmt: skip
EPISODE_COLUMNS = {  # gpu_episodes column -> episode field (ADR 0005)
    **{k: v for k, v in ALERT_COLUMNS.items() if k not in ("alert_id", "source_object")},
    "state": "state", "notifications": "notifications", "objects": "objects", "resolution": "resolution",
}  # fmt: skip


@dataclass(frozen=True)
class Prepared:
    """One object as CSV for COPY, plus what the transaction needs to know about it."""

    table: str
    conflict: tuple[str, ...]
    columns: list[str]
    body: bytes
    rows: int
    days: list[date]


def _days(table: pa.Table) -> list[date]:
    """UTC days the rows fall on (the daily partitions they need)."""
    if table.num_rows == 0:
        return []
    first, last = (s.as_py().astimezone(UTC).date() for s in pc.min_max(table["time"]).values())
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def connect(dsn: str) -> psycopg.Connection:
    """Connect with a message that names the problem but never the password."""
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.ProgrammingError as exc:  # libpq could not parse it
        raise ConfigError(
            f"GPULAKE_PG_DSN is not a connection string ({redact(str(exc), dsn).strip()}); "
            "e.g. postgresql://gpulake@db:5432/telemetry"
        ) from None
    except psycopg.OperationalError as exc:
        text = redact(str(exc).splitlines()[0], dsn) if str(exc) else type(exc).__name__
        if "password" in text or "does not exist" in text or "authentication" in text:
            raise TargetRejected(f"PostgreSQL refused the connection: {text}; check GPULAKE_PG_DSN") from None
        raise TargetUnavailable(f"cannot reach PostgreSQL: {text}; is it running? (GPULAKE_PG_DSN)") from None


def _timestamp_text(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Timestamps as the text the CSV writer would give them, formatted once per distinct time.

    Formatting is most of the CSV writer's time (~3 µs a value) and an object's GPUs share their
    sample times, so each time is formatted once and repeated.
    """
    encoded = (values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values).dictionary_encode()
    return pc.cast(encoded.dictionary, pa.string()).take(encoded.indices)


def _csv(columns: dict[str, Any], object_key: str) -> tuple[list[str], bytes]:
    """The COPY column list and CSV body of ``columns`` plus the ``object_key`` every row carries."""
    rows = len(next(iter(columns.values())))
    columns = {k: _timestamp_text(v) if pa.types.is_timestamp(v.type) else v for k, v in columns.items()}
    table = pa.table(columns | {"object_key": pa.repeat(pa.scalar(object_key, pa.string()), rows)})
    out = io.BytesIO()
    pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False, quoting_style="needed", batch_size=65536))
    return table.column_names, out.getvalue()


def metrics_csv(table: pa.Table, object_key: str) -> tuple[list[str], bytes]:
    """A metrics table for COPY (maps as JSON text)."""
    columns = {name: table[name] for name in table.column_names}
    columns["extra"] = map_to_json(table["extra"])
    columns["labels"] = map_to_json(table["labels"])
    return _csv(columns, object_key)


def alerts_csv(table: pa.Table, object_key: str) -> tuple[list[str], bytes]:
    """An alerts table for COPY, fields renamed to the gpu_alerts columns."""
    return _csv({column: table[field] for column, field in ALERT_COLUMNS.items()}, object_key)


class PostgresTarget(Target):
    """Tables ``gpu_metrics``, ``gpu_alerts``, view ``gpu_metrics_hourly``, ledger ``gpulake_ledger``."""

    name = "postgres"

    def __init__(self, dsn: str, allow_timescale: bool = True, read_only: bool = False) -> None:
        """``read_only`` (for ``status``) skips the migrations: nothing is created in a database only looked at."""
        self.conn = connect(dsn)
        self.version, self.timescale = (0, False) if read_only else pg_schema.migrate(self.conn, allow_timescale)
        self._partitions: set[str] = set()
        self._warnings: list[str] = []

    def versions(self, keys: Iterable[str]) -> dict[str, str]:
        wanted = list(keys)
        query = "SELECT object_key, version FROM gpulake_ledger WHERE object_key = ANY(%s)"
        return dict(self.conn.execute(query, (wanted,)).fetchall()) if wanted else {}

    def high_water_mark(self) -> str | None:
        row = self.conn.execute(f"SELECT max({pg_schema.LEDGER_PARTITION}) FROM gpulake_ledger").fetchone()
        return row[0] if row else None

    def last_loaded(self) -> str | None:
        try:
            row = self.conn.execute("SELECT max(loaded_at) FROM gpulake_ledger").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        return row[0].astimezone(UTC).isoformat() if row and row[0] else None

    def prepare(self, obj: ProcessedObject, data: bytes) -> Prepared:
        if obj.kind == "metrics":
            table = read_metrics(data, obj.key)
            columns, body = metrics_csv(table, obj.key)
            days = _days(table) if not self.timescale else []
            return Prepared("gpu_metrics", METRIC_KEY, columns, body, table.num_rows, days)
        if obj.kind == "episodes":
            table = read_episode(data, obj.key)
            columns, body = _csv({column: table[field] for column, field in EPISODE_COLUMNS.items()}, obj.key)
            return Prepared("gpu_episodes", ("episode_id",), columns, body, table.num_rows, [])
        table = read_alerts(data, obj.key)
        columns, body = alerts_csv(table, obj.key)
        return Prepared("gpu_alerts", ("alert_id",), columns, body, table.num_rows, [])

    def write(self, obj: ProcessedObject, prepared: Prepared) -> int:
        """Load one object in one transaction; data PostgreSQL cannot hold (a NUL, say) rolls back just this object."""
        try:
            return self._write(obj, prepared)
        except psycopg.errors.DataError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ObjectRejected(f"PostgreSQL refused its rows ({reason}); nothing of it was stored") from exc

    def _write(self, obj: ProcessedObject, prepared: Prepared) -> int:
        with self.conn.transaction():
            row = self.conn.execute(
                "SELECT version FROM gpulake_ledger WHERE object_key = %s FOR UPDATE", (obj.key,)
            ).fetchone()
            if row and row[0] == obj.version:
                return 0
            if row:
                delete = sql.SQL("DELETE FROM {} WHERE object_key = %s").format(sql.Identifier(prepared.table))
                self.conn.execute(delete, (obj.key,))
            try:
                self._ensure_partitions(prepared.days)
                overwritten = self._copy_or_upsert(prepared)
            except psycopg.Error:
                self._partitions.clear()  # they may have been rolled back with this transaction
                raise
            self.conn.execute(
                "INSERT INTO gpulake_ledger (object_key, version, kind, rows) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (object_key) DO UPDATE SET version = EXCLUDED.version, rows = EXCLUDED.rows, "
                "loaded_at = now()",
                (obj.key, obj.version, obj.kind, prepared.rows),
            )
        count, other = overwritten
        if count:
            self._warnings.append(
                f"identity collision: {count} rows of {obj.key} replaced rows of another raw object ({other}) with "
                "the same node, GPU, source and time; if they are different machines, give them distinct node names"
            )
        return prepared.rows

    def _copy(self, table: str, columns: list[str], body: bytes) -> None:
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with self.conn.cursor() as cur, cur.copy(statement) as copy:
            for start in range(0, len(body), CHUNK):
                copy.write(body[start : start + CHUNK])

    def take_warnings(self) -> list[str]:
        warnings, self._warnings = self._warnings, []
        return warnings

    def _collisions(self, stage: str) -> tuple[int, str | None]:
        """Staged metric rows that would replace a row of another raw object (same node, GPU, source, time)."""
        row = self.conn.execute(
            sql.SQL(
                "SELECT count(*), min(t.source_object) FROM {} s JOIN gpu_metrics t USING (node, gpu, source, time) "
                "WHERE t.source_object <> s.source_object"
            ).format(sql.Identifier(stage))
        ).fetchone()
        return (row[0], row[1]) if row else (0, None)

    def _copy_or_upsert(self, prepared: Prepared) -> tuple[int, str | None]:
        """COPY, or stage and upsert on a conflict; returns how many rows of other raw objects were replaced."""
        table, columns, conflict, body = prepared.table, prepared.columns, prepared.conflict, prepared.body
        try:
            with self.conn.transaction():
                self._copy(table, columns, body)
            return 0, None
        except psycopg.errors.UniqueViolation:
            pass
        stage = f"{table}_stage"
        self.conn.execute(
            sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS").format(
                sql.Identifier(stage), sql.Identifier(table)
            )
        )
        self._copy(stage, columns, body)
        overwritten = self._collisions(stage) if table == "gpu_metrics" else (0, None)
        ident = sql.SQL(", ").join(map(sql.Identifier, columns))
        keys = sql.SQL(", ").join(map(sql.Identifier, conflict))
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns if c not in conflict
        )
        self.conn.execute(
            sql.SQL(
                "INSERT INTO {table} ({cols}) SELECT DISTINCT ON ({keys}) {cols} FROM {stage} "
                "ORDER BY {keys}, ctid DESC ON CONFLICT ({keys}) DO UPDATE SET {updates}"
            ).format(table=sql.Identifier(table), cols=ident, keys=keys, stage=sql.Identifier(stage), updates=updates)
        )
        return overwritten

    def _ensure_partitions(self, days: list[date]) -> None:
        for day in days:
            name = f"gpu_metrics_p{day:%Y%m%d}"
            if name in self._partitions:
                continue
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (pg_schema.LOCK_ID + 1,))
            create = sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF gpu_metrics FOR VALUES FROM ({}) TO ({})")
            end = start + timedelta(days=1)
            self.conn.execute(create.format(sql.Identifier(name), sql.Literal(start), sql.Literal(end)))
            self._partitions.add(name)

    def behind(self) -> bool:
        """The hourly view was last refreshed before the newest ledger entry (a sync died before ``finish``)."""
        row = self.conn.execute(
            "SELECT max(loaded_at) > coalesce((SELECT ledger_mark FROM gpulake_refreshes WHERE view_name = %s), "
            "'-infinity') FROM gpulake_ledger",
            (HOURLY_VIEW,),
        ).fetchone()
        return bool(row and row[0])

    def finish(self) -> None:
        """Refresh the hourly view, then record the ledger state it reflects (read before the refresh)."""
        mark = self.conn.execute("SELECT max(loaded_at) FROM gpulake_ledger").fetchone()[0]
        if self.timescale:
            self.conn.execute(f"CALL refresh_continuous_aggregate('{HOURLY_VIEW}', NULL, NULL)")
        else:
            populated = self.conn.execute(
                "SELECT ispopulated FROM pg_matviews WHERE matviewname = %s", (HOURLY_VIEW,)
            ).fetchone()
            concurrently = "CONCURRENTLY " if populated and populated[0] else ""
            self.conn.execute(f"REFRESH MATERIALIZED VIEW {concurrently}{HOURLY_VIEW}")
        if mark is not None:
            self.conn.execute(
                "INSERT INTO gpulake_refreshes (view_name, ledger_mark) VALUES (%s, %s) "
                "ON CONFLICT (view_name) DO UPDATE SET ledger_mark = EXCLUDED.ledger_mark",
                (HOURLY_VIEW, mark),
            )

    def close(self) -> None:
        self.conn.close()
