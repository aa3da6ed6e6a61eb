"""Retry only what can recover: nobody listening, an unknown host or a malformed URL fail at once; timeouts retry."""

from __future__ import annotations

import pytest
import urllib3
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError, ReadTimeoutError

from loaders.errors import TargetUnavailable
from loaders.influx import V1Writer, with_retries
from loaders.local_postgres import free_port


def _conn() -> urllib3.connection.HTTPConnection:
    return urllib3.connection.HTTPConnection("influx.invalid", 8086)


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (NewConnectionError(_conn(), "Failed to establish a new connection: [Errno 111] Connection refused"),
         "connection refused"),
        (NameResolutionError("influx.invalid", _conn(), OSError("Name or service not known")),
         "cannot resolve host 'influx.invalid'"),
        (MaxRetryError(None, "/api/v2/write", NewConnectionError(_conn(), "[Errno 111] Connection refused")),
         "connection refused"),  # influxdb-client's urllib3 wraps the cause
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (urllib3.exceptions.LocationParseError("not a url"), "malformed URL"),
    ],
)  # fmt: skip
def test_unrecoverable_errors_are_not_retried(error: Exception, says: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("loaders.influx.time.sleep", lambda s: pytest.fail("slept before giving up"))
    calls: list[int] = []

    def send() -> tuple[int, str, float | None]:
        calls.append(1)
        raise error

    with pytest.raises(TargetUnavailable, match=says):
        with_retries(send, "write to db")
    assert len(calls) == 1


def test_timeouts_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("loaders.influx.time.sleep", lambda s: None)
    outcomes: list[Exception | int] = [ReadTimeoutError(None, "/write", "read timed out"), 204]

    def send() -> tuple[int, str, float | None]:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome, "", None

    with_retries(send, "write to db")
    assert outcomes == []


def test_a_closed_port_is_reported_at_once() -> None:
    writer = V1Writer(f"http://127.0.0.1:{free_port()}", "db", user="admin", password="hunter2-secret")
    with pytest.raises(TargetUnavailable, match="connection refused") as raised:
        writer.write(b"m v=1 1\n")
    assert "hunter2-secret" not in str(raised.value)
