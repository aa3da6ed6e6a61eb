"""Bytes of an object to UTF-8 text bytes: gzip, byte-order marks and legacy code pages."""

from __future__ import annotations

import gzip
import zlib

from gpulake.errors import InputRejected

GZIP_MAGIC = b"\x1f\x8b"
_CONTROL = bytes(range(0, 9)) + bytes([11, 12]) + bytes(range(14, 32))


def decompress(data: bytes, source: str) -> bytes:
    """Inflate gzip (by magic bytes, whatever the key says); pass other bytes through."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:
        raise InputRejected(
            source, f"gzip data is truncated or corrupt ({exc}); upload the complete file again"
        ) from exc


def to_utf8(data: bytes) -> bytes:
    """Return ``data`` as UTF-8: UTF-8 stays, anything else is read as Windows-1252.

    GPU-Z writes its degree sign as the single byte 0xB0 (cp1252); files that went
    through an editor carry UTF-8 instead, so both must work.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.isascii():  # the common case, checked without building a str of the whole object
        return data
    try:
        data.decode("utf-8")
        return data
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace").encode("utf-8")


def looks_binary(head: bytes) -> bool:
    """Whether the first bytes are mostly control characters (an image, an archive...)."""
    sample = head[:4096].replace(b"\x00", b"")
    if not sample:
        return bool(head)
    controls = sum(sample.count(bytes([c])) for c in _CONTROL)
    return controls > len(sample) // 20
