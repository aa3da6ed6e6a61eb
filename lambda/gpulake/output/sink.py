"""Sinks: where the processed layout is written (a directory, or an S3 bucket)."""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

from gpulake.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class Sink(ABC):
    """Writes and reads objects by layout key (``metrics/...``)."""

    @abstractmethod
    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Write ``body`` at ``key``, replacing what was there."""

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The bytes at ``key``, or None when absent."""


class LocalSink(Sink):
    """A local directory; writes are atomic (temp file + rename)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"key {key!r} escapes the output directory")
        return path

    def put(self, key: str, body: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.exists() else None


class S3Sink(Sink):
    """A bucket and prefix of S3 (or anything speaking its API)."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def put(self, key: str, body: bytes, content_type: str) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=body, ContentType=content_type)
        except Exception as exc:  # botocore errors: all worth a retry of the message
            raise TransientError(f"could not write s3://{self.bucket}/{self.prefix}{key}: {exc}") from exc

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        except Exception as exc:
            raise TransientError(f"could not read s3://{self.bucket}/{self.prefix}{key}: {exc}") from exc
