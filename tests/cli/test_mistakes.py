"""Users' mistakes through the real entry point: one line naming the fix, exit 1 or 2, no traceback, no secret."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpulake_cli.local_aws import LocalAws, Stack
from loaders.local_postgres import free_port
from tests.cli.helpers import ROOT, run

SAMPLE = str(ROOT / "gpulake_cli" / "samples" / "nvidia-smi" / "rig-7" / "query-gpu.csv")
PASSWORD, TOKEN = "hunter2", "tok-secret-12345"
SECRETS = (PASSWORD, TOKEN)
#: no credentials from anywhere: variables, files, a profile, the instance metadata service
NO_AWS = {
    "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None,
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": None,
}  # fmt: skip
NO_TARGETS = {"GPULAKE_PG_DSN": None, "GPULAKE_INFLUX_URL": None, "GPULAKE_SYNC_FROM": None}
CLOSED = str(free_port())  # nothing listens there
INFLUX_V1 = {"GPULAKE_INFLUX_USER": "admin", "GPULAKE_INFLUX_PASSWORD": PASSWORD}
INFLUX_V2 = {"GPULAKE_INFLUX_TOKEN": TOKEN, "GPULAKE_INFLUX_ORG": "o", "GPULAKE_INFLUX_BUCKET": "b"}

# (args with {dir} = an empty directory and {file} = an existing file, environment, exit code, the line says)
CASES = {
    "upload without AWS credentials": (
        ["upload", SAMPLE, "--bucket", "gpulake-raw"], NO_AWS, 2, "no AWS credentials found: set AWS_PROFILE"),
    "upload with an unknown AWS profile": (
        ["upload", SAMPLE, "--bucket", "gpulake-raw"], NO_AWS | {"AWS_PROFILE": "typo"}, 2, "check AWS_PROFILE"),
    "alerts from S3 without AWS credentials": (
        ["alerts", "--from", "s3://gpulake-processed/"], NO_AWS, 2, "cannot list s3://gpulake-processed/: no AWS"),
    "upload to an endpoint that is down": (
        ["upload", SAMPLE, "--bucket", "gpulake-raw"],
        NO_AWS | {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": TOKEN,
                  "AWS_ENDPOINT_URL": f"http://127.0.0.1:{CLOSED}"}, 1, "cannot reach AWS"),
    "GPULAKE_PG_DSN is not a DSN": (
        ["sync", "--to", "postgres", "--from", "{dir}"], {"GPULAKE_PG_DSN": "not a dsn"}, 2,
        "GPULAKE_PG_DSN is not a connection string"),
    "GPULAKE_PG_DSN URL is malformed": (
        ["sync", "--to", "postgres", "--from", "{dir}"], {"GPULAKE_PG_DSN": f"postgres://u:{PASSWORD}@[::1/db"}, 2,
        "GPULAKE_PG_DSN is not a connection string"),
    "GPULAKE_PG_DSN key=value is malformed": (
        ["sync", "--to", "postgres", "--from", "{dir}"], {"GPULAKE_PG_DSN": f"host=db password={PASSWORD} port"}, 2,
        "GPULAKE_PG_DSN is not a connection string"),
    "PostgreSQL is not running": (
        ["sync", "--to", "postgres", "--from", "{dir}"],
        {"GPULAKE_PG_DSN": f"postgresql://u:{PASSWORD}@127.0.0.1:{CLOSED}/db"}, 1, "cannot reach PostgreSQL"),
    "process --out is a file": (["process", SAMPLE, "--out", "{file}"], {}, 2, "is a file, not a directory"),
    "process --out below a file": (
        ["process", SAMPLE, "--out", "{file}/out"], {}, 2, "is a file, not a directory"),
    "process a path that does not exist": (
        ["process", "no-such.csv", "--out", "{dir}"], {}, 1, "no-such.csv: no such file or directory"),
    "sync from a directory that does not exist": (
        ["sync", "--to", "postgres", "--from", "{dir}/nope"], {"GPULAKE_PG_DSN": f"postgresql://u:{PASSWORD}@h/db"},
        1, "is not a directory of processed output"),
    "alerts with nowhere to read": (["alerts"], {"GPULAKE_PROCESSED_BUCKET": None}, 2, "no --from given"),
    "status with nowhere to read": (["status"], {"GPULAKE_PROCESSED_BUCKET": None}, 2, "no --from given"),
    "GPULAKE_INFLUX_URL is not a URL": (
        ["sync", "--to", "influxdb", "--from", "{dir}"], {"GPULAKE_INFLUX_URL": "influx:8086"} | INFLUX_V1, 2,
        "GPULAKE_INFLUX_URL='influx:8086' is not an http(s) URL"),
    "GPULAKE_INFLUX_URL is malformed": (
        ["sync", "--to", "influxdb", "--from", "{dir}"], {"GPULAKE_INFLUX_URL": "http://[::1:8086"} | INFLUX_V2, 2,
        "is not an http(s) URL"),
    "InfluxDB refuses the connection": (
        ["sync", "--to", "influxdb", "--from", "{dir}"],
        {"GPULAKE_INFLUX_URL": f"http://admin:{PASSWORD}@127.0.0.1:{CLOSED}"} | INFLUX_V1, 1, "connection refused"),
    "InfluxDB 2 refuses the connection": (
        ["sync", "--to", "influxdb", "--from", "{dir}"],
        {"GPULAKE_INFLUX_URL": f"http://127.0.0.1:{CLOSED}"} | INFLUX_V2, 1, "connection refused"),
    "InfluxDB host does not resolve": (
        ["sync", "--to", "influxdb", "--from", "{dir}"], {"GPULAKE_INFLUX_URL": "http://gpulake-nohost.invalid:8086"},
        1, "cannot resolve host 'gpulake-nohost.invalid'"),
}  # fmt: skip


def assert_one_line_no_secret(result, code: int, expected: str) -> str:  # type: ignore[no-untyped-def]
    """The contract of every mistake: exit code, one stderr line with the fix, no traceback, no secret."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr
    return lines[0]


@pytest.mark.parametrize("case", CASES)
def test_mistake_gives_one_line(case: str, tmp_path: Path) -> None:
    args, env, code, expected = CASES[case]
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty").mkdir()
    args = [a.format(dir=tmp_path / "empty", file=tmp_path / "a-file") for a in args]
    started = time.monotonic()
    result = run(*args, env=NO_TARGETS | env, timeout=60)
    assert_one_line_no_secret(result, code, expected)
    assert time.monotonic() - started < 10, "a mistake must be reported at once, not after retries"


@pytest.fixture(scope="module")
def local_aws() -> Iterator[tuple[LocalAws, Stack]]:
    aws = LocalAws().start()
    try:
        yield aws, aws.create_stack()
    finally:
        aws.stop()


def test_upload_to_a_missing_bucket(local_aws: tuple[LocalAws, Stack]) -> None:
    aws, _ = local_aws
    result = run("upload", SAMPLE, "--bucket", "no-such-bucket", env=aws.env, timeout=60)
    line = assert_one_line_no_secret(result, 2, "PutObject no-such-bucket: The specified bucket does not exist")
    assert "GPULAKE_RAW_BUCKET" in line


def test_status_never_prints_a_password(tmp_path: Path) -> None:
    dsn = f"postgresql://gpulake:{PASSWORD}@127.0.0.1:{CLOSED}/telemetry"
    result = run("status", "--from", str(tmp_path), env={"GPULAKE_PG_DSN": dsn} | INFLUX_V1, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "postgres" in result.stdout and "unavailable: cannot reach PostgreSQL" in result.stdout
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr
