"""What ``main()`` prints for an exception: one line that says what to fix, and the exit code.

A user mistake (no AWS credentials, a bucket that does not exist, a file where a
directory belongs, a path we may not read) must never show a Python traceback. The
known families get a message naming the fix; anything else still ends in one line
(``GPULAKE_DEBUG=1`` shows the traceback). Every message goes through
:func:`loaders.redact.redact`.
"""

from __future__ import annotations

from pathlib import Path

from gpulake.errors import ConfigError, GpulakeError
from loaders.redact import redact

USAGE = 2
FAILED = 1

_AWS_CREDENTIALS_HINT = "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`"
_DENIED = (FAILED, "the credentials in use (aws sts get-caller-identity) lack the permission for it")
_AWS_CODES = {  # botocore error code -> (exit code, what to do)
    "NoSuchBucket": (USAGE, "check --bucket/--from, GPULAKE_RAW_BUCKET or `terraform output`"),
    "AccessDenied": _DENIED,
    "403": _DENIED,
    "AllAccessDisabled": _DENIED,
    "InvalidAccessKeyId": (USAGE, f"AWS does not know this access key: {_AWS_CREDENTIALS_HINT}"),
    "SignatureDoesNotMatch": (USAGE, f"AWS rejected the secret key: {_AWS_CREDENTIALS_HINT}"),
    "ExpiredToken": (USAGE, "the AWS session has expired: log in again (aws sso login) or refresh the token"),
    "InvalidClientTokenId": (USAGE, f"AWS does not know these credentials: {_AWS_CREDENTIALS_HINT}"),
    "AWS.SimpleQueueService.NonExistentQueue": (USAGE, "the queue does not exist: check --dlq-url"),
}


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was raised from (boto3 wraps a ClientError in S3UploadFailedError)."""
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return seen


def _aws(exc: BaseException) -> tuple[int, str] | None:
    try:
        from botocore import exceptions as boto
    except ImportError:  # pragma: no cover - boto3 is a core dependency
        return None
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return USAGE, f"no AWS credentials found: {_AWS_CREDENTIALS_HINT}"
    if isinstance(exc, boto.ProfileNotFound):
        return USAGE, f"{exc}: check AWS_PROFILE against ~/.aws/config (aws configure list-profiles)"
    if isinstance(exc, boto.NoRegionError):
        return USAGE, "no AWS region configured: set AWS_DEFAULT_REGION (e.g. us-east-1) or run `aws configure`"
    if isinstance(exc, boto.EndpointConnectionError | boto.ConnectTimeoutError):
        return FAILED, f"cannot reach AWS ({exc}): check the network, a proxy or AWS_ENDPOINT_URL"
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        text = error.get("Message") or code
        subject = " ".join(filter(None, [exc.operation_name, error.get("BucketName")]))
        status, hint = _AWS_CODES.get(code, (FAILED, "see the AWS message"))
        return status, f"{subject}: {text} ({code}); {hint}"
    return None


def _postgres(exc: BaseException) -> tuple[int, str] | None:
    """A server-side refusal met after connecting (connecting itself is mapped in loaders.postgres.connect)."""
    try:
        import psycopg
    except ImportError:  # the [loaders] extra is not installed: nothing raised it
        return None
    if not isinstance(exc, psycopg.Error):
        return None
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return FAILED, f"PostgreSQL: {first}; the role in GPULAKE_PG_DSN needs the rights docs/loaders.md lists"
    return FAILED, f"PostgreSQL: {first}"


def _file_or_directory(path: Path) -> Path:
    """The ancestor of ``path`` that exists as a file (what a NotADirectoryError is really about)."""
    return next((p for p in [path, *path.parents] if p.is_file()), path)


def _os(exc: BaseException) -> tuple[int, str] | None:
    if not isinstance(exc, OSError):
        return None
    if not exc.filename:  # ours carry their message ("x: no such file or directory")
        return FAILED, str(exc)
    name = Path(exc.filename)
    if isinstance(exc, NotADirectoryError):
        return USAGE, f"{_file_or_directory(name)} is a file, not a directory: give a directory path"
    if isinstance(exc, IsADirectoryError):
        return USAGE, f"{name} is a directory: give a file path"
    if isinstance(exc, PermissionError):
        return FAILED, f"{name}: permission denied: check its owner and mode, or choose another path"
    if isinstance(exc, FileNotFoundError):
        return FAILED, f"{name}: no such file or directory"
    return FAILED, f"{name}: {exc.strerror or exc}"


def describe(exc: BaseException) -> tuple[int, str]:
    """Exit code and one redacted line (without ``error:``) for ``exc``."""
    if isinstance(exc, ConfigError):
        status, text = USAGE, str(exc)
    elif isinstance(exc, GpulakeError):
        status, text = FAILED, str(exc)
        aws = next((r for e in _chain(exc)[1:] if (r := _aws(e))), None)
        if aws:  # "cannot list s3://b/: Unable to locate credentials" -> what to do about the credentials
            status, text = aws[0], f"{text.split(': ', 1)[0]}: {aws[1]}"
    else:
        found = next((r for e in _chain(exc) if (r := _aws(e) or _os(e) or _postgres(e))), None)
        status, text = found or (FAILED, f"unexpected {type(exc).__name__}: {exc} (GPULAKE_DEBUG=1 shows where)")
    return status, " ".join(redact(text).split())
