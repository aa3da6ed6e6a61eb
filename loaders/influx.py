"""InfluxDB target: line protocol in ~5,000-point gzip batches over the 1.x ``/write`` API or influxdb-client (2.x/3.x).

Exactly once without transactions: a point is identified by measurement, tag set
and time, so writing an object again overwrites the same points. The ledger is the
``gpulake_ledger`` measurement, written after an object's points; a sync killed in
between rewrites the same points next time. When an object comes back with a new
version, the points of its earlier version are deleted first (by tag set and time
range, recorded in the ledger).
"""

from __future__ import annotations

import gzip
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pyarrow as pa
import pyarrow.compute as pc
import urllib3

from loaders.errors import ObjectRejected, TargetRejected, TargetUnavailable
from loaders.lineprotocol import alerts_lines, episode_lines, escape_key, escape_string, metrics_lines, tag_value
from loaders.records import read_alerts, read_episode, read_metrics
from loaders.redact import redact
from loaders.source import ProcessedObject, partition_date
from loaders.target import Target

BATCH_POINTS = 5000
#: write requests in flight at once (InfluxDB ingests concurrent requests in parallel)
IN_FLIGHT = 2
RETRIES = 5
#: ledger keys per InfluxQL query when asking about some keys only (the query travels in the URL)
KEYS_PER_QUERY = 100
LEDGER = "gpulake_ledger"
#: Where each kind's points go: (measurement, its ``record`` tag or None). An alerts object also adds one
#: ``gpu_episodes`` point per alert, so an episode's alerts and its closed record share one series.
MEASUREMENTS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "metrics": (("gpu_metrics", None),),
    "alerts": (("gpu_alerts", None), ("gpu_episodes", "alert")),
    "episodes": (("gpu_episodes", "closed"),),
}
SERIES_TAGS = {
    "metrics": ("node", "gpu", "source"),
    "alerts": ("node", "gpu", "kind"),
    "episodes": ("node", "gpu", "kind"),
}
TIME_COLUMN = {"metrics": "time", "alerts": "start", "episodes": "start"}


@dataclass(frozen=True)
class Prepared:
    """One object as encoded batches, its rows (its own measurement's points) and what a later version deletes."""

    bodies: list[bytes]
    points: int
    ranges: list[list[Any]]


def batches(lines: pa.Array, size: int = BATCH_POINTS) -> list[bytes]:
    """Newline-terminated bodies of at most ``size`` lines (joined by Arrow, not line by line in Python)."""
    if len(lines) == 0:
        return []
    offsets = pa.array([*range(0, len(lines), size), len(lines)], pa.int32())
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, lines), "\n")
    return [body.as_buffer().to_pybytes() + b"\n" for body in joined]


def _retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header; None when absent or an HTTP date (then our own backoff applies)."""
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _unrecoverable(exc: BaseException) -> str | None:
    """Why retrying ``exc`` cannot help (refused, unknown host, malformed URL), or None for what may recover.

    A timeout, a reset connection or a 5xx may pass; nobody listening on the port will not within our backoff.
    """
    reason = getattr(exc, "reason", None) or exc  # urllib3's MaxRetryError (influxdb-client) wraps the cause
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return f"cannot resolve host {reason.conn.host!r}"
    if isinstance(reason, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
        return "connection refused" if "refused" in str(reason).lower() else f"cannot connect ({reason})"
    if isinstance(reason, urllib3.exceptions.LocationValueError):
        return f"malformed URL ({reason})"
    return None


def with_retries(send: Callable[[], tuple[int, str, float | None]], what: str) -> None:
    """Call ``send`` (-> status, body, retry-after) until 2xx; back off on 5xx/429/timeouts, fail fast otherwise.

    A 400 is about the request's content (a point or query InfluxDB cannot parse), so it is an
    :class:`ObjectRejected`: ``sync`` reports that object and goes on with the rest.
    """
    delay = 0.5
    for attempt in range(RETRIES + 1):
        try:
            status, body, retry_after = send()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if problem := _unrecoverable(exc):
                raise TargetUnavailable(f"{what}: {problem}; is InfluxDB running at GPULAKE_INFLUX_URL?") from None
            status, body, retry_after = 0, redact(str(exc)), None
        if 200 <= status < 300:
            return
        if status in (401, 403):
            raise TargetRejected(f"{what}: InfluxDB refused the credentials ({status}); check user/password or token")
        if status == 404:
            raise TargetRejected(
                f"{what}: not found ({body.strip()[:200]}); create the database/bucket or fix the name"
            )
        if status == 400:
            raise ObjectRejected(f"{what}: InfluxDB refused the data ({body.strip()[:300]})")
        if 400 <= status < 500 and status != 429:
            raise TargetRejected(f"{what}: InfluxDB rejected the request ({status}: {body.strip()[:300]})")
        if attempt == RETRIES:
            raise TargetUnavailable(f"{what}: InfluxDB kept failing ({status or 'no connection'}: {body[:200]})")
        time.sleep(retry_after if retry_after is not None else delay)
        delay = min(delay * 2, 8.0)


class Writer(ABC):
    """Sends line-protocol batches and runs the few queries the ledger needs."""

    def encode(self, body: bytes) -> bytes:
        """The request body for ``body`` (CPU work ``sync`` overlaps with the previous object's writes)."""
        return body

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Make sure the database exists (where the API allows it)."""

    @abstractmethod
    def write(self, body: bytes) -> None:
        """Send one encoded batch."""

    @abstractmethod
    def query(self, influxql: str) -> list[dict[str, Any]]:
        """InfluxQL results as the ``series`` list of the 1.x JSON answer."""


class V1Writer(Writer):
    """InfluxDB 1.x: ``/write?db=&rp=&precision=ms`` and ``/query`` (InfluxQL)."""

    def __init__(self, url: str, database: str, retention_policy: str = "", user: str = "", password: str = "") -> None:
        self.url = url.rstrip("/")
        self.params = {"db": database, "precision": "ms"} | ({"rp": retention_policy} if retention_policy else {})
        self.auth = {"u": user, "p": password} if user else {}
        self.http = urllib3.PoolManager(maxsize=IN_FLIGHT, retries=False, timeout=urllib3.Timeout(connect=5, read=60))
        self.database = database

    def _post(
        self, path: str, params: dict[str, str], body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, float | None]:
        response = self.http.request(
            "POST", f"{self.url}{path}?{urlencode(params | self.auth)}", body=body, headers=headers
        )
        return response.status, response.data.decode("utf-8", "replace"), _retry_after(response.headers)

    def prepare(self) -> None:
        """Like Telegraf: ``CREATE DATABASE`` (idempotent); users without the right get the error on write."""
        try:
            self.query(f'CREATE DATABASE "{self.database}"')
        except TargetRejected:
            return

    def encode(self, body: bytes) -> bytes:
        return gzip.compress(body, 1)

    def write(self, body: bytes) -> None:
        """Send one batch as returned by :meth:`encode` (gzip)."""
        headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"}
        with_retries(lambda: self._post("/write", self.params, body, headers), f"write to {self.database}")

    def query(self, influxql: str) -> list[dict[str, Any]]:
        result: dict[str, Any] = {}

        def send() -> tuple[int, str, float | None]:
            status, body, retry = self._post("/query", {"db": self.database, "epoch": "ms", "q": influxql}, b"", {})
            if 200 <= status < 300:
                result.update(json.loads(body))
                error = next((r["error"] for r in result.get("results", []) if "error" in r), None)
                if error:
                    return 400, error, None
            return status, body, retry

        with_retries(send, f"query {self.database}")
        return [s for r in result.get("results", []) for s in r.get("series", [])]


class V2Writer(Writer):
    """InfluxDB 2.x/3.x through influxdb-client's write API (gzip); ledger queries via the v1-compatible ``/query``."""

    def __init__(self, url: str, token: str, org: str, bucket: str) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.client = InfluxDBClient(url=url, token=token, org=org, enable_gzip=True)
        self.api = self.client.write_api(write_options=SYNCHRONOUS)
        self.bucket = bucket
        self.org = org
        self.compat = V1Writer(url, bucket)
        self.compat.http.headers["Authorization"] = f"Token {token}"

    def write(self, body: bytes) -> None:
        from influxdb_client.client.write_api import WritePrecision
        from influxdb_client.rest import ApiException

        def send() -> tuple[int, str, float | None]:
            try:
                self.api.write(bucket=self.bucket, org=self.org, record=body, write_precision=WritePrecision.MS)
            except ApiException as exc:
                return exc.status or 0, str(exc.body or exc.reason), _retry_after(exc.headers or {})
            return 204, "", None

        with_retries(send, f"write to bucket {self.bucket}")

    def query(self, influxql: str) -> list[dict[str, Any]]:
        return self.compat.query(influxql)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxTarget(Target):
    """Measurements ``gpu_metrics``, ``gpu_alerts`` and ``gpu_episodes``; ledger measurement ``gpulake_ledger``."""

    name = "influxdb"

    def __init__(self, writer: Writer, read_only: bool = False) -> None:
        """``read_only`` (for ``status``) does not create the database."""
        self.writer = writer
        self._scoped: dict[str, dict[str, Any] | None] = {}
        if not read_only:
            writer.prepare()

    def _query_ledger(self, where: str = "") -> dict[str, dict[str, Any]]:
        series = self.writer.query(
            f'SELECT last("version") AS version, last("ranges") AS ranges FROM "{LEDGER}"{where} GROUP BY "object_key"'
        )
        return {s["tags"]["object_key"]: {"version": s["values"][0][1], "ranges": s["values"][0][2]} for s in series}

    def versions(self, keys: Iterable[str]) -> dict[str, str]:
        wanted = sorted(set(keys))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), KEYS_PER_QUERY):
            chunk = wanted[start : start + KEYS_PER_QUERY]
            found |= self._query_ledger(" WHERE " + " OR ".join(f'"object_key" = {_quote(k)}' for k in chunk))
        self._scoped = {key: found.get(key) for key in wanted}
        return {key: entry["version"] for key, entry in found.items()}

    def high_water_mark(self) -> str | None:
        """From the ledger's keys only (``SHOW TAG VALUES``), not its versions and ranges."""
        series = self.writer.query(f'SHOW TAG VALUES FROM "{LEDGER}" WITH KEY = "object_key"')
        keys = (row[1] for s in series for row in s.get("values", []))
        return max(filter(None, map(partition_date, keys)), default=None)

    def _previous(self, key: str) -> dict[str, Any] | None:
        """The ledger entry of ``key``: from the keys :meth:`versions` last asked about, else asked for alone."""
        if key in self._scoped:
            return self._scoped[key]
        return self._query_ledger(f' WHERE "object_key" = {_quote(key)}').get(key)

    def last_loaded(self) -> str | None:
        try:
            series = self.writer.query(f'SELECT last("rows") FROM "{LEDGER}"')
        except TargetRejected:  # no such database yet
            return None
        if not series:
            return None
        return datetime.fromtimestamp(series[0]["values"][0][0] / 1000, UTC).isoformat()

    def prepare(self, obj: ProcessedObject, data: bytes) -> Prepared:
        """The object's points; its row count is its own measurement's points (an alert's episode point goes along)."""
        along = pa.array([], pa.string())
        if obj.kind == "metrics":
            table = read_metrics(data, obj.key)
            lines = metrics_lines(table)
        elif obj.kind == "episodes":
            table = read_episode(data, obj.key)
            lines = episode_lines(table, "closed")
        else:
            table = read_alerts(data, obj.key)
            lines, along = alerts_lines(table), episode_lines(table, "alert")
        bodies = [self.writer.encode(body) for body in batches(pa.concat_arrays([lines, along]))]
        return Prepared(bodies, len(lines), _ranges(table, SERIES_TAGS[obj.kind], TIME_COLUMN[obj.kind]))

    def write(self, obj: ProcessedObject, prepared: Prepared) -> int:
        previous = self._previous(obj.key)
        if previous and previous["version"] == obj.version:
            return 0
        if previous:
            self._delete(obj.kind, json.loads(previous["ranges"]))
        try:
            with ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="gpulake-influx") as pool:
                list(pool.map(self.writer.write, prepared.bodies))
        except ObjectRejected:
            # batches already accepted would stay without a ledger entry: a refused object holds nothing
            self._delete(obj.kind, prepared.ranges)
            raise
        record = {
            "object_key": obj.key,
            "version": obj.version,
            "kind": obj.kind,
            "ranges": json.dumps(prepared.ranges),
        }
        self.writer.write(self.writer.encode(_ledger_line(record, prepared.points).encode()))
        if obj.key in self._scoped:
            self._scoped[obj.key] = {"version": obj.version, "ranges": record["ranges"]}
        return prepared.points

    def _delete(self, kind: str, ranges: list[list[Any]]) -> None:
        """Delete the points an earlier version of an object of ``kind`` wrote (``ranges`` from its ledger entry)."""
        for entry in ranges:
            *values, first, last = entry
            where = " AND ".join(
                f'"{t}" = {_quote(tag_value(v))}' for t, v in zip(SERIES_TAGS[kind], values) if v is not None
            )
            for measurement, record in MEASUREMENTS[kind]:
                only = f' AND "record" = {_quote(record)}' if record else ""
                self.writer.query(
                    f'DELETE FROM "{measurement}" WHERE {where}{only} AND time >= {first}ms AND time <= {last}ms'
                )


def _ranges(table: pa.Table, tags: tuple[str, ...], time_column: str) -> list[list[Any]]:
    """Per tag set, the first and last time (ms) of its points: what a later version must delete."""
    if table.num_rows == 0:
        return []
    keyed = pa.table({t: table[t] for t in tags} | {"ms": pc.cast(table[time_column], pa.int64())})
    grouped = keyed.group_by(list(tags), use_threads=False).aggregate([("ms", "min"), ("ms", "max")])
    return [[*(row[t] for t in tags), row["ms_min"], row["ms_max"]] for row in grouped.to_pylist()]


def _ledger_line(record: dict[str, str], rows: int) -> str:
    fields = ",".join(f"{name}={escape_string(record[name])}" for name in ("kind", "ranges", "version"))
    return f"{LEDGER},object_key={escape_key(record['object_key'])} {fields},rows={rows}i {int(time.time() * 1000)}\n"
