"""Bytes of an object to UTF-8 text bytes: bounded gunzip, byte-order marks, UTF-16/32, cp1252.

Every input goes through here before format detection, so each format sees UTF-8
whatever tool wrote the file (PowerShell's ``>`` writes UTF-16 with a BOM, editors add a
UTF-8 BOM, GPU-Z writes cp1252). Inflating is capped because a few MB of gzip can
expand to many GB (a decompression bomb); a cut-off gzip keeps its complete lines.
"""

from __future__ import annotations

import codecs
import io
import zlib
from dataclasses import dataclass

from gpulake.errors import InputRejected

GZIP_MAGIC = b"\x1f\x8b"
_CONTROL = bytes(range(0, 9)) + bytes([11, 12]) + bytes(range(14, 32))
_STEP = 1 << 20  # inflate at most this many bytes per call, so the cap is checked often
_UTF8_BOM = codecs.BOM_UTF8
#: Longest BOM first: the UTF-32 LE BOM starts with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True)
class Inflated:
    """An object's bytes after gunzip; ``truncated`` says why the stream ended early, if it did."""

    data: bytes
    truncated: str | None = None


def too_large(source: str, limit: int) -> InputRejected:
    """The rejection for an object that is (or inflates to) more than ``limit`` bytes."""
    return InputRejected(
        source,
        f"object is larger than the {_size(limit)} limit once decompressed (GPULAKE_MAX_INFLATED_MB, "
        "--max-inflated-mb); split it into smaller uploads or raise the limit",
    )


def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n} byte"


def decompress(data: bytes, source: str, limit: int) -> Inflated:
    """Inflate gzip (by magic bytes, whatever the key says) up to ``limit`` bytes; pass other bytes through.

    Concatenated gzip members (``cat a.gz b.gz``) are all read. A stream that ends
    before its end marker, or breaks, returns what was inflated before the break with
    ``truncated`` set; nothing inflated at all is a rejection.
    """
    if not data.startswith(GZIP_MAGIC):
        if len(data) > limit:
            raise too_large(source, limit)
        return Inflated(data)
    out = io.BytesIO()  # grows in place and hands its buffer over: no second copy at the end
    size = 0
    pending = data
    problem = None
    while pending:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            while True:
                piece = inflater.decompress(pending, min(_STEP, limit - size + 1))
                pending = inflater.unconsumed_tail
                size += len(piece)
                if size > limit:
                    raise too_large(source, limit)
                out.write(piece)
                if inflater.eof or not (piece or pending):
                    break
        except zlib.error as exc:
            problem = f"gzip data is corrupt after {size} decompressed bytes ({exc})"
            break
        if not inflater.eof:
            problem = f"gzip data is truncated after {size} decompressed bytes"
            break
        pending = inflater.unused_data.lstrip(b"\x00")  # NUL padding after the last member
    if problem and size == 0:
        raise InputRejected(source, f"{problem}; upload the complete file again")
    return Inflated(out.getvalue(), problem)


def complete_lines(text: bytes) -> tuple[bytes, bytes]:
    """Split text at its last newline: (the complete lines, the cut-off rest)."""
    cut = text.rfind(b"\n") + 1
    return text[:cut], text[cut:]


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 written without a BOM: ASCII text leaves every other byte NUL."""
    sample = head[: 4096 & ~1]
    if len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    even_nul, odd_nul = even.count(0) / len(even), odd.count(0) / len(odd)
    if odd_nul > 0.9 and even_nul < 0.05:
        return "utf-16-le"
    if even_nul > 0.9 and odd_nul < 0.05:
        return "utf-16-be"
    return None


def _is_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8, checked piecewise so a large object is never copied whole."""
    if data.isascii():
        return True
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(data), _STEP):
            decoder.decode(view[start : start + _STEP], final=start + _STEP >= len(data))
    except UnicodeDecodeError:
        return False
    return True


def to_utf8(data: bytes) -> bytes:
    """Return ``data`` as UTF-8 without a BOM; idempotent, so parsers may call it again.

    A BOM names the encoding (UTF-8, UTF-16 or UTF-32, either byte order); UTF-16
    without one is recognised by its NUL pattern. Otherwise UTF-8 stays and anything
    else is read as Windows-1252: GPU-Z writes its degree sign as the single byte
    0xB0, while files that went through an editor carry UTF-8 instead.
    """
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace").encode("utf-8")
    encoding = _utf16_without_bom(data)
    if encoding:
        return data.decode(encoding, errors="replace").encode("utf-8")
    if _is_utf8(data):
        return data
    return data.decode("cp1252", errors="replace").encode("utf-8")


def looks_binary(head: bytes) -> bool:
    """Whether the first bytes are mostly control characters (an image, an archive...)."""
    sample = head[:4096].replace(b"\x00", b"")
    if not sample:
        return bool(head)
    controls = sum(sample.count(bytes([c])) for c in _CONTROL)
    return controls > len(sample) // 20
