"""Mistakes a subprocess cannot stage here (root reads everything, moto allows everything): mapped in-process."""

from __future__ import annotations

import psycopg
import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError, EndpointConnectionError

from gpulake.errors import ConfigError, InputRejected
from gpulake_cli.errors_map import describe


def _client_error(code: str, message: str, operation: str = "PutObject") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def _wrapped(error: ClientError) -> S3UploadFailedError:
    """As boto3's transfer manager raises it: an S3UploadFailedError raised while handling the ClientError."""
    outer = S3UploadFailedError(f"Failed to upload x to b/k: {error}")
    outer.__context__ = error
    return outer


@pytest.mark.parametrize(
    ("exc", "code", "says"),
    [
        (PermissionError(13, "Permission denied", "/var/log/gpu.csv"), 1, "/var/log/gpu.csv: permission denied"),
        (IsADirectoryError(21, "Is a directory", "out"), 2, "out is a directory: give a file path"),
        (_client_error("AccessDenied", "Access Denied"), 1, "lack the permission"),
        (_wrapped(_client_error("AccessDenied", "Access Denied")), 1, "PutObject: Access Denied (AccessDenied)"),
        (_wrapped(_client_error("NoSuchBucket", "The specified bucket does not exist")), 2, "GPULAKE_RAW_BUCKET"),
        (_client_error("InvalidAccessKeyId", "unknown key"), 2, "AWS does not know this access key"),
        (_client_error("ExpiredToken", "expired", "ListObjectsV2"), 2, "aws sso login"),
        (EndpointConnectionError(endpoint_url="https://s3.example"), 1, "check the network"),
        (ConfigError("GPULAKE_PG_DSN is not set"), 2, "GPULAKE_PG_DSN is not set"),
        (InputRejected("a.csv", "not telemetry", 3), 1, "a.csv:3: not telemetry"),
        (RuntimeError("boom\nsecond line password=hunter2"), 1, "unexpected RuntimeError: boom second line"),
        (
            psycopg.errors.InsufficientPrivilege("permission denied for schema public\nDETAIL: x"),
            1,
            "PostgreSQL: permission denied for schema public; the role in GPULAKE_PG_DSN needs the rights",
        ),
    ],
)
def test_one_line_and_exit_code(exc: Exception, code: int, says: str) -> None:
    status, line = describe(exc)
    assert status == code
    assert says in line and "\n" not in line and "hunter2" not in line
