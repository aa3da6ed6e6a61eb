"""Reading one S3 object for ingest: its (still compressed) bytes and its facts.

Gunzip happens in ``gpulake.decode`` with a cap, the same for the Lambda and the CLI;
an object whose stored size is already over the cap is rejected without being read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpulake.decode import too_large


@dataclass(frozen=True)
class S3Object:
    """The bytes of an object as stored (gzip or not) plus what S3 says about it."""

    data: bytes
    version: str
    last_modified_ms: int
    metadata: dict[str, str]


def read_object(client: Any, bucket: str, key: str, limit: int) -> S3Object:
    """Get ``s3://bucket/key``; raises ``InputRejected`` if it is larger than ``limit`` bytes."""
    response = client.get_object(Bucket=bucket, Key=key)
    if int(response.get("ContentLength") or 0) > limit:
        response["Body"].close()
        raise too_large(f"s3://{bucket}/{key}", limit)
    data = response["Body"].read()
    version = f"{response.get('ETag', '').strip(chr(34))}:{response.get('VersionId') or ''}"
    return S3Object(
        data=data,
        version=version,
        last_modified_ms=int(response["LastModified"].timestamp() * 1000),
        metadata={k.lower(): v for k, v in response.get("Metadata", {}).items()},
    )
