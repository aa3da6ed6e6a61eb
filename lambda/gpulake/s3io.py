"""Reading one S3 object for ingest: streamed, gunzipped on the fly, with its facts."""

from __future__ import annotations

import gzip
import io
import zlib
from dataclasses import dataclass
from typing import IO, Any

from gpulake.decode import GZIP_MAGIC
from gpulake.errors import InputRejected


@dataclass(frozen=True)
class S3Object:
    """The (decompressed) bytes of an object plus what S3 says about it."""

    data: bytes
    version: str
    last_modified_ms: int
    metadata: dict[str, str]


class _Chain(io.RawIOBase):
    """The bytes already peeked at, then the rest of the stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        chunk = self._rest.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def read_object(client: Any, bucket: str, key: str) -> S3Object:
    """Get ``s3://bucket/key``; gzip is inflated while streaming (one copy in memory)."""
    response = client.get_object(Bucket=bucket, Key=key)
    body = response["Body"]
    head = body.read(2)
    if head == GZIP_MAGIC:
        try:
            with gzip.GzipFile(fileobj=io.BufferedReader(_Chain(head, body), 1 << 20)) as stream:
                data = stream.read()
        except (EOFError, OSError, zlib.error) as exc:
            raise InputRejected(
                f"s3://{bucket}/{key}", f"gzip data is truncated or corrupt ({exc}); upload it again"
            ) from exc
    else:
        data = head + body.read()
    version = f"{response.get('ETag', '').strip(chr(34))}:{response.get('VersionId') or ''}"
    return S3Object(
        data=data,
        version=version,
        last_modified_ms=int(response["LastModified"].timestamp() * 1000),
        metadata={k.lower(): v for k, v in response.get("Metadata", {}).items()},
    )
