"""Sources and the v2 write path: S3 (moto) holds the same layout as a directory; 1.6.7 has no /api/v2/write."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from loaders.errors import TargetRejected
from loaders.influx import InfluxTarget, V1Writer, V2Writer
from loaders.local_influx import LocalInflux
from loaders.postgres import PostgresTarget
from loaders.source import LocalSource, open_source
from loaders.sync import sync


def test_s3_source_lists_and_loads_like_the_directory(
    fleet_output: Path, pg_target: PostgresTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    local = LocalSource(fleet_output)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="processed")
        for obj in local.list():
            s3.put_object(Bucket="processed", Key=f"gpulake/{obj.key}", Body=local.read(obj))
        s3.put_object(Bucket="processed", Key="gpulake/quarantine/x.jsonl", Body=b"{}")
        source = open_source("s3://processed/gpulake/", s3)
        listed = source.list()
        assert [(o.key, o.version, o.kind) for o in listed] == [(o.key, o.version, o.kind) for o in local.list()]
        report = sync(source, pg_target)
    assert report.loaded == len(listed)
    assert (
        report.rows
        == pg_target.conn.execute(
            "SELECT (SELECT count(*) FROM gpu_metrics) + (SELECT count(*) FROM gpu_alerts)"
        ).fetchone()[0]
    )


def test_v2_path_reaches_api_v2_write_and_reports_its_absence(fleet_output: Path, influx_server: LocalInflux) -> None:
    V1Writer(influx_server.url, "bucket").prepare()  # the v1 /query the ledger uses answers; /api/v2/write does not
    target = InfluxTarget(V2Writer(influx_server.url, "token", "org", "bucket"))
    obj = next(o for o in LocalSource(fleet_output).list() if o.kind == "metrics")
    with pytest.raises(TargetRejected, match="write to bucket bucket: not found"):
        target.load(obj, LocalSource(fleet_output).read(obj))
