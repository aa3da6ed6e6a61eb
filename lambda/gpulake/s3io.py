"""Reading one S3 object for ingest: its facts and its (still compressed) bytes as a stream.

Gunzip happens in ``gpulake.decode`` with a cap, the same for the Lambda and the CLI;
an object whose stored size is already over the cap is rejected without being read.
The body is read in pieces as ingest consumes it, so a function never holds the object.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gpulake.decode import too_large
from gpulake.ingest import PIECE, Opener


@dataclass(frozen=True)
class S3Object:
    """What S3 says about an object, and its stored bytes (gzip or not) from the start, in pieces."""

    open: Opener
    version: str
    last_modified_ms: int
    metadata: dict[str, str]


def read_object(client: Any, bucket: str, key: str, limit: int) -> S3Object:
    """Get ``s3://bucket/key``; raises ``InputRejected`` if it is larger than ``limit`` bytes.

    The first :attr:`S3Object.open` streams the body of this GET; a second one (ingest reads a
    key it has seen before twice: to hash, then to parse) asks for the same version again.
    """
    response = client.get_object(Bucket=bucket, Key=key)
    if int(response.get("ContentLength") or 0) > limit:
        response["Body"].close()
        raise too_large(f"s3://{bucket}/{key}", limit)
    bodies = [response["Body"]]
    same = {"VersionId": response["VersionId"]} if response.get("VersionId") else {"IfMatch": response.get("ETag", "")}

    def open_body() -> Iterator[bytes]:
        body = bodies.pop() if bodies else client.get_object(Bucket=bucket, Key=key, **same)["Body"]
        try:
            yield from body.iter_chunks(PIECE)
        finally:
            body.close()

    return S3Object(
        open=open_body,
        version=f"{response.get('ETag', '').strip(chr(34))}:{response.get('VersionId') or ''}",
        last_modified_ms=int(response["LastModified"].timestamp() * 1000),
        metadata={k.lower(): v for k, v in response.get("Metadata", {}).items()},
    )
