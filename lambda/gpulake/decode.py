"""Bytes of an object to UTF-8 text bytes: bounded gunzip, byte-order marks, UTF-16/32, cp1252.

Every input goes through here before format detection, so each format sees UTF-8
whatever tool wrote the file (PowerShell's ``>`` writes UTF-16 with a BOM, editors add a
UTF-8 BOM, GPU-Z writes cp1252). Inflating is capped because a few MB of gzip can
expand to many GB (a decompression bomb); a cut-off gzip keeps its complete lines.
"""

from __future__ import annotations

import codecs
import itertools
import zlib
from collections.abc import Iterable, Iterator

from gpulake.errors import InputRejected

GZIP_MAGIC = b"\x1f\x8b"
_CONTROL = bytes(range(0, 9)) + bytes([11, 12]) + bytes(range(14, 32))
_STEP = 1 << 20  # inflate at most this many bytes per call, so the cap is checked often
_HEAD = 4100  # bytes read before the encoding is decided: a BOM and the 4 KiB UTF-16 sample
_UTF8_BOM = codecs.BOM_UTF8
_CP1252_BLOCK = 1 << 16  # small enough that the few non-ASCII bytes convert little text around them
#: Longest BOM first: the UTF-32 LE BOM starts with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def too_large(source: str, limit: int) -> InputRejected:
    """The rejection for an object that is (or inflates to) more than ``limit`` bytes."""
    return InputRejected(
        source,
        f"object is larger than the {_size(limit)} limit once decompressed (GPULAKE_MAX_INFLATED_MB, "
        "--max-inflated-mb); split it into smaller uploads or raise the limit",
    )


def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n} byte"


class Inflating:
    """An object's stored bytes, in pieces, to its inflated bytes in pieces: gzip by magic bytes, capped.

    Iterate once. Concatenated gzip members (``cat a.gz b.gz``) are all read and NUL
    padding after a member is skipped. Past ``limit`` inflated bytes it raises
    :func:`too_large`. A stream that ends before its end marker, or breaks, stops there
    and sets ``truncated``; nothing inflated at all is a rejection.
    """

    def __init__(self, raw: Iterable[bytes], source: str, limit: int) -> None:
        self._raw = iter(raw)
        self.source = source
        self.limit = limit
        self.size = 0
        #: Whether the stream is gzip (known once iterating; only gzip can end early).
        self.gzip = False
        #: Why the stream ended early, once iterated (None: it ended properly).
        self.truncated: str | None = None

    def __iter__(self) -> Iterator[bytes]:
        first = b""
        for chunk in self._raw:  # the magic bytes may be split over the first pieces
            first += chunk
            if len(first) >= len(GZIP_MAGIC):
                break
        pieces = itertools.chain([first], self._raw)
        self.gzip = first.startswith(GZIP_MAGIC)
        yield from (self._gunzip(pieces) if self.gzip else self._plain(pieces))

    def _count(self, piece: bytes) -> bytes:
        self.size += len(piece)
        if self.size > self.limit:
            raise too_large(self.source, self.limit)
        return piece

    def _plain(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            if piece:
                yield self._count(piece)

    def _gunzip(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        inflater = None  # None: between members (at the start, or after one's end marker)
        for data in pieces:
            while True:
                if inflater is None:
                    data = data.lstrip(b"\x00")  # NUL padding after the last member
                    if not data:
                        break
                    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                try:
                    piece = inflater.decompress(data, min(_STEP, self.limit - self.size + 1))
                except zlib.error as exc:
                    self._end(f"gzip data is corrupt after {self.size} decompressed bytes ({exc})")
                    return
                if piece:
                    yield self._count(piece)
                if inflater.eof:
                    data, inflater = inflater.unused_data, None
                    continue
                data = inflater.unconsumed_tail
                if not (piece or data):
                    break  # this piece is used up: on to the next
        if inflater is not None:
            self._end(f"gzip data is truncated after {self.size} decompressed bytes")

    def _end(self, problem: str) -> None:
        if self.size == 0:
            raise InputRejected(self.source, f"{problem}; upload the complete file again")
        self.truncated = problem


class NotUtf8(Exception):
    """Raised while streaming text read as UTF-8 that turns out not to be: read it again as Windows-1252."""


class Utf8Lines:
    """An object's inflated pieces to UTF-8 text in pieces that each end at a line end: :func:`to_utf8`, streaming.

    The encoding is decided from the first 4 KiB as :func:`to_utf8` does (a BOM, UTF-16
    without one); text taken for UTF-8 is checked as it passes, and :class:`NotUtf8` is raised
    at the first invalid byte, so the caller reads the object again with ``encoding="cp1252"``
    (what :func:`to_utf8` would have chosen). After iterating: ``rest`` is the text after the
    last newline when the stream was ``truncated`` (otherwise it was yielded as the last
    piece), ``lines`` the newlines yielded (counted for gzip, the only stream that can be cut
    off), ``size`` the text bytes seen. Pieces are ``bytes`` or, for whole lines of a larger
    piece, a ``memoryview`` of it (no copy).
    """

    def __init__(self, inflating: Inflating, encoding: str | None = None) -> None:
        self.inflating = inflating
        self.encoding = encoding
        self.rest = b""
        self.lines = 0
        self.size = 0

    @property
    def truncated(self) -> str | None:
        """Why the object ended early (see :class:`Inflating`), once iterated."""
        return self.inflating.truncated

    def __iter__(self) -> Iterator[bytes]:
        carry = b""  # the start of a line that continues in the next piece
        for piece in self._text():
            self.size += len(piece)
            end = piece.rfind(b"\n") + 1
            if not end:
                carry += piece
                continue
            start = 0
            if carry:
                start = piece.find(b"\n") + 1
                yield carry + piece[:start]
            if start < end:
                yield memoryview(piece)[start:end]  # the whole lines inside, without a copy
            if self.inflating.gzip:  # only gzip can be cut off and need the cut's line number
                self.lines += piece.count(b"\n")
            carry = piece[end:]
        if self.truncated is not None:
            self.rest = carry
        elif carry:
            yield carry

    def _text(self) -> Iterator[bytes]:
        pieces = iter(self.inflating)
        head = b""
        for piece in pieces:
            head += piece
            if len(head) >= _HEAD:
                break
        if head.startswith(_UTF8_BOM):
            head = head[len(_UTF8_BOM) :]
        encoding, bom = self.encoding, b""
        if encoding is None:
            bom, encoding = next(((b, enc) for b, enc in _BOMS if head.startswith(b)), (b"", None))
            encoding = encoding or _utf16_without_bom(head)
        text = itertools.chain([head[len(bom) :]], pieces)
        if encoding is None:
            yield from _checked_utf8(text)
            return
        if encoding == "cp1252":  # one byte per character, no state: each piece converts on its own
            yield from (_cp1252_to_utf8(piece) for piece in text)
            return
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        for piece in text:
            yield decoder.decode(piece).encode("utf-8")
        yield decoder.decode(b"", final=True).encode("utf-8")


def _checked_utf8(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """Pass UTF-8 pieces through, raising :class:`NotUtf8` at the first invalid sequence."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for piece in pieces:
            if not (piece.isascii() and not decoder.getstate()[0]):
                decoder.decode(piece)
            yield piece
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise NotUtf8 from None


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
    # the head first: a cp1252 file shows there (GPU-Z's header), before a 1 MB piece is decoded
    edges = [0, *range(min(_HEAD, len(data)), len(data), _STEP), len(data)]
    try:
        for start, end in itertools.pairwise(edges):
            decoder.decode(view[start:end], final=end == len(data))
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
    return _cp1252_to_utf8(data)


def _cp1252_to_utf8(data: bytes) -> bytes:
    """``data.decode("cp1252", "replace").encode("utf-8")``, converting only the blocks that are not ASCII.

    Windows-1252 maps every byte on its own and keeps ASCII as it is, so blocks convert
    independently; a GPU-Z log's only non-ASCII bytes are the degree signs of its header
    lines. The blocks are found in one numpy pass and the ASCII runs between them are
    joined as views: one copy of the text instead of a decode and an encode (18 ms per 4 MB).
    """
    import numpy as np  # here, not at the top: the collector's uploader imports this module without numpy

    raw = np.frombuffer(data, dtype=np.uint8)
    whole = len(raw) // _CP1252_BLOCK * _CP1252_BLOCK
    high = np.flatnonzero(raw[:whole].reshape(-1, _CP1252_BLOCK).max(axis=1, initial=0) >= 0x80)
    starts = [int(b) * _CP1252_BLOCK for b in high] + ([whole] if raw[whole:].max(initial=0) >= 0x80 else [])
    view, pieces, done = memoryview(data), [], 0
    for start in starts:
        end = min(start + _CP1252_BLOCK, len(data))
        pieces += [view[done:start], bytes(view[start:end]).decode("cp1252", errors="replace").encode("utf-8")]
        done = end
    return b"".join([*pieces, view[done:]])


def looks_binary(head: bytes) -> bool:
    """Whether the first bytes are mostly control characters (an image, an archive...)."""
    sample = head[:4096].replace(b"\x00", b"")
    if not sample:
        return bool(head)
    controls = sum(sample.count(bytes([c])) for c in _CONTROL)
    return controls > len(sample) // 20
