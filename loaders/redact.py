"""Secrets out of text before it is printed or logged: connection strings, tokens, passwords.

docs/loaders.md promises that a connection string is never printed. Error texts from
libpq, urllib3 or botocore quote what they were given (a DSN, a URL with ``&p=``), so
every message and log line the CLI shows goes through :func:`redact`: the password of a URL's
user info, the value of ``password=``-like keys (libpq key=value and query strings),
``Authorization`` tokens, and any secret the environment holds, wherever it appears.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping

MASK = "***"
#: variables whose values are secrets wherever they turn up in a text
SECRET_VARIABLES = ("GPULAKE_INFLUX_TOKEN", "GPULAKE_INFLUX_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
#: connection strings whose password part is a secret
DSN_VARIABLES = ("GPULAKE_PG_DSN", "GPULAKE_INFLUX_URL")
#: values this short are left alone: masking every "x" in a message would hide more than the secret
MIN_SECRET_LENGTH = 4

_URL_PASSWORD = re.compile(r"(?P<keep>[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)(?P<secret>[^@\s]*)(?=@)", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"(?P<keep>(?<![\w-])(?:password|passwd|pwd|sslpassword|token|secret|api[_-]?key)\s*[=:]\s*)"
    r"(?P<secret>'(?:[^'\\]|\\.)*'|\"[^\"]*\"|[^\s&;,'\"]+)",
    re.IGNORECASE,
)
_QUERY_PASSWORD = re.compile(r"(?P<keep>[?&]p=)[^&\s'\"]*")
_AUTHORIZATION = re.compile(r"(?P<keep>\b(?:Token|Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}")


def _dsn_password(dsn: str) -> str | None:
    """The password in a URL-form or key=value connection string, even a malformed one."""
    found = _URL_PASSWORD.search(dsn) or _KEY_VALUE.search(dsn)
    return found.group("secret").strip("'\"") if found else None


def secrets_in(env: Mapping[str, str] | None = None) -> list[str]:
    """The secret values the environment holds (longest first, so a secret containing another goes whole)."""
    env = os.environ if env is None else env
    found = {env[name] for name in SECRET_VARIABLES if env.get(name)}
    found |= {p for name in DSN_VARIABLES if env.get(name) and (p := _dsn_password(env[name]))}
    return sorted((s for s in found if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def redact(text: str, *connection_strings: str) -> str:
    """``text`` with every password and token masked: the environment's and those in ``connection_strings``."""
    for pattern in (_URL_PASSWORD, _KEY_VALUE, _QUERY_PASSWORD, _AUTHORIZATION):
        text = pattern.sub(lambda m: m.group("keep") + MASK, text)
    given = {p for dsn in connection_strings if (p := _dsn_password(dsn)) and len(p) >= MIN_SECRET_LENGTH}
    for secret in sorted(given.union(secrets_in()), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class RedactFilter(logging.Filter):
    """Masks secrets in each record a handler emits (urllib3's retry warnings quote whole URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        return True


def redact_logs() -> None:
    """Library warnings to stderr, as Python's last-resort handler prints them, but through :class:`RedactFilter`."""
    root = logging.getLogger()
    if not any(isinstance(f, RedactFilter) for handler in root.handlers for f in handler.filters):
        handler = logging.StreamHandler()
        handler.setLevel(logging.WARNING)
        handler.addFilter(RedactFilter())
        root.addHandler(handler)
