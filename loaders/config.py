"""Connection settings of the targets, from the environment or a ``.env`` file (never logged)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from gpulake.errors import ConfigError
from loaders.redact import redact
from loaders.target import Target

#: target -> the variable whose presence configures it
TARGETS = {"postgres": "GPULAKE_PG_DSN", "influxdb": "GPULAKE_INFLUX_URL"}


def load_dotenv(path: str | Path = ".env") -> None:
    """Add ``KEY=VALUE`` lines of ``path`` to the environment (variables already set win)."""
    file = Path(path)
    if not file.is_file():
        return
    for line in file.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key.strip(), value)


def configured_targets(env: Mapping[str, str] | None = None) -> list[str]:
    """The targets whose connection variable is set."""
    env = os.environ if env is None else env
    return [name for name, variable in TARGETS.items() if env.get(variable)]


def _need(env: Mapping[str, str], name: str, hint: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"{name} is not set: {hint}")
    return value


def _http_url(url: str) -> str:
    """``url`` if it is an http(s) URL with a host: a typo fails here, in one line, not after retries."""
    try:
        parsed = urlsplit(url)
        port_ok = parsed.port is None or parsed.port > 0  # .port raises on one that is not a number
        valid = parsed.scheme in ("http", "https") and bool(parsed.hostname) and port_ok
    except ValueError:  # "http://[::1"
        valid = False
    if not valid:
        raise ConfigError(
            f"GPULAKE_INFLUX_URL={redact(url)!r} is not an http(s) URL with a host, e.g. http://influx:8086"
        )
    return url


def open_target(kind: str, env: Mapping[str, str] | None = None, read_only: bool = False) -> Target:
    """``postgres`` (GPULAKE_PG_DSN) or ``influxdb`` (GPULAKE_INFLUX_URL + token/org/bucket or db/user/password).

    ``read_only`` targets create nothing (no schema, no database): for looking, as ``status`` does.
    """
    env = os.environ if env is None else env
    if kind == "postgres":
        from loaders.postgres import PostgresTarget

        dsn = _need(env, TARGETS["postgres"], "e.g. postgresql://gpulake@db:5432/telemetry (see docs/loaders.md)")
        return PostgresTarget(dsn, env.get("GPULAKE_PG_TIMESCALE", "auto") != "off", read_only)
    if kind == "influxdb":
        from loaders.influx import InfluxTarget, V1Writer, V2Writer

        url = _http_url(_need(env, TARGETS["influxdb"], "e.g. http://influx:8086 (see docs/loaders.md)"))
        if env.get("GPULAKE_INFLUX_TOKEN"):
            org = _need(env, "GPULAKE_INFLUX_ORG", "InfluxDB 2.x/3.x needs the organization with a token")
            bucket = _need(env, "GPULAKE_INFLUX_BUCKET", "InfluxDB 2.x/3.x needs the bucket with a token")
            return InfluxTarget(V2Writer(url, env["GPULAKE_INFLUX_TOKEN"], org, bucket), read_only)
        return InfluxTarget(
            V1Writer(
                url,
                env.get("GPULAKE_INFLUX_DB") or "gpulake",
                env.get("GPULAKE_INFLUX_RP", ""),
                env.get("GPULAKE_INFLUX_USER", ""),
                env.get("GPULAKE_INFLUX_PASSWORD", ""),
            ),
            read_only,
        )
    raise ConfigError(f"unknown target {kind!r}: use one of {', '.join(TARGETS)}")


def default_source(env: Mapping[str, str] | None = None) -> str:
    """Where ``sync`` reads when ``--from`` is not given."""
    env = os.environ if env is None else env
    if env.get("GPULAKE_SYNC_FROM"):
        return env["GPULAKE_SYNC_FROM"]
    if env.get("GPULAKE_PROCESSED_BUCKET"):
        return f"s3://{env['GPULAKE_PROCESSED_BUCKET']}/{env.get('GPULAKE_PROCESSED_PREFIX', '')}"
    raise ConfigError("no --from given and neither GPULAKE_SYNC_FROM nor GPULAKE_PROCESSED_BUCKET is set")
