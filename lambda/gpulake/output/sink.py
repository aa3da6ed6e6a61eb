"""Sinks: where the processed layout is written (a directory, or an S3 bucket).

A body is bytes, or a binary file positioned at its start (a large alerts body spooled to disk is
put from the file, never held whole: ADR 0007).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

from gpulake.errors import TransientError

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")


#: What a sink writes: the bytes, or a binary file read from where it stands to its end.
Body = bytes | IO[bytes]
#: Pieces a stored object is hashed in.
_READ = 1 << 20
#: S3 error codes of an object that is not there (GET says NoSuchKey, HEAD only its status).
_ABSENT = frozenset({"NoSuchKey", "404", "NotFound"})


class Sink(ABC):
    """Writes and reads objects by layout key (``metrics/...``)."""

    @abstractmethod
    def put(self, key: str, body: Body, content_type: str) -> None:
        """Write ``body`` at ``key``, replacing what was there."""

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The bytes at ``key``, or None when absent."""

    @abstractmethod
    def sha256(self, key: str) -> str | None:
        """The hex SHA-256 of what is at ``key`` (None when absent): a changed body told from the same one
        without holding either."""


class LocalSink(Sink):
    """A local directory; writes are atomic (temp file + rename)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"key {key!r} escapes the output directory")
        return path

    def put(self, key: str, body: Body, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                if isinstance(body, bytes):
                    handle.write(body)
                else:
                    shutil.copyfileobj(body, handle, _READ)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.exists() else None

    def sha256(self, key: str) -> str | None:
        path = self._path(key)
        if not path.exists():
            return None
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()


class S3Sink(Sink):
    """A bucket and prefix of S3 (or anything speaking its API)."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def put(self, key: str, body: Body, content_type: str) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.prefix + key,
                Body=body,
                ContentType=content_type,
                ChecksumAlgorithm="SHA256",  # S3 keeps it: sha256() asks for it instead of reading the object
            )
        except Exception as exc:  # botocore errors: all worth a retry of the message
            raise TransientError(f"could not write s3://{self.bucket}/{self.prefix}{key}: {exc}") from exc

    def get(self, key: str) -> bytes | None:
        return self._read(key, lambda body: body.read())

    def sha256(self, key: str) -> str | None:
        """The checksum S3 keeps of what :meth:`put` wrote (a HEAD request); an object written without one (by an
        earlier release) is read and hashed in pieces."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.prefix + key, ChecksumMode="ENABLED")
        except Exception as exc:
            return self._absent(key, exc)
        stored = head.get("ChecksumSHA256")
        if stored and "-" not in stored:  # a whole-object checksum (a multipart one ends in -<parts>)
            return base64.b64decode(stored).hex()

        def digest(body: StreamingBody) -> str:
            hashed = hashlib.sha256()
            for piece in body.iter_chunks(_READ):
                hashed.update(piece)
            return hashed.hexdigest()

        return self._read(key, digest)

    def _read(self, key: str, use: Callable[[StreamingBody], T]) -> T | None:
        """``use`` of the object's body (None when absent)."""
        try:
            return use(self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"])
        except Exception as exc:
            return self._absent(key, exc)

    def _absent(self, key: str, exc: Exception) -> None:
        """None when ``exc`` says the object is not there; any other failure is worth a retry of the message."""
        if getattr(exc, "response", {}).get("Error", {}).get("Code") in _ABSENT:
            return None
        raise TransientError(f"could not read s3://{self.bucket}/{self.prefix}{key}: {exc}") from exc
