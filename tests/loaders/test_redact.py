"""Secrets never leave in a message: every form a DSN, URL or token takes in the texts libraries produce."""

from __future__ import annotations

import io
import logging

import pytest

from loaders.redact import RedactFilter, redact, secrets_in

SECRET = "hunter2-Xy"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f'invalid URI: "postgres://u:{SECRET}@[::1/db"', "postgres://u:***@[::1/db"),
        (f"postgresql://gpulake:{SECRET}@db.internal:5432/telemetry?sslmode=require", "@db.internal:5432"),
        (f"host=db user=u password={SECRET} dbname=t", "host=db user=u password=*** dbname=t"),
        (f"host=db password='{SECRET} with space' port", "password=*** port"),
        (f"Max retries exceeded with url: /write?db=gpulake&u=admin&p={SECRET}&precision=ms", "&p=***&precision=ms"),
        (f"headers: Authorization: Token {SECRET}abcdef", "Authorization: Token ***"),
        (f"http://admin:{SECRET}@influx:8086", "http://admin:***@influx:8086"),
    ],
)
def test_redacts_every_form(text: str, kept: str) -> None:
    out = redact(text)
    assert SECRET not in out
    assert kept in out


def test_secrets_of_the_environment_are_masked_wherever_they_appear(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN secrets in the variables gpulake reads, one inside a DSN too malformed for any pattern
    monkeypatch.setenv("GPULAKE_INFLUX_TOKEN", "tok-abcdef123")
    monkeypatch.setenv("GPULAKE_PG_DSN", f"password={SECRET} host=[")
    # WHEN a library quotes them bare
    out = redact(f"token tok-abcdef123 rejected; bad {SECRET}")
    # THEN neither is left
    assert "tok-abcdef123" not in out and SECRET not in out


def test_short_values_and_plain_text_are_left_alone() -> None:
    env = {"GPULAKE_INFLUX_PASSWORD": "x", "GPULAKE_PG_DSN": "postgresql://gpulake@db/t"}
    assert secrets_in(env) == []
    text = "password authentication failed for user gpulake; check the token in GPULAKE_INFLUX_TOKEN"
    assert redact(text, "postgresql://gpulake@db/t") == text


def test_connection_strings_given_are_masked() -> None:
    assert redact(f"could not parse {SECRET}", f"postgres://u:{SECRET}@[") == "could not parse ***"


def test_log_lines_are_redacted() -> None:
    # GIVEN a handler with the filter, as main() installs it on the root logger
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactFilter())
    logger = logging.getLogger("tests.redact")
    logger.addHandler(handler)
    try:
        # WHEN a library logs a URL with credentials (urllib3 does, on retries)
        logger.warning("Retrying after connection broken: %s", f"/write?db=g&u=admin&p={SECRET}")
    finally:
        logger.removeHandler(handler)
    # THEN the line reads the same, minus the password
    assert stream.getvalue() == "Retrying after connection broken: /write?db=g&u=admin&p=***\n"
