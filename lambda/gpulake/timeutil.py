"""Local wall-clock times to UTC epoch milliseconds.

GPU-Z, nvidia-smi and thermal CSVs write local time without a zone. The zone
comes from the caller (``--tz``, ``GPULAKE_SOURCE_TZ`` or the object's ``tz``
metadata); output times are always UTC.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulake.errors import ConfigError

_ISO_LIKE = r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?$"


def check_zone(tz: str) -> str:
    """Validate a zone name early so a typo fails before any data is read."""
    if tz.upper() == "UTC":
        return "UTC"
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {tz!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'") from exc
    return tz


#: ``_ISO_LIKE`` laid out at its longest ("d" a digit, " " a space or "T"), and the lengths it allows.
_ISO_TEMPLATE = b"dddd-dd-dd dd:dd:dd.ddddddddd"
_ISO_WIDTHS = frozenset({10, 16, 19, *range(21, 30)})


def _fixed_width_iso(text: pa.Array) -> np.ndarray | None:
    """Where cells match ``_ISO_LIKE``, for a column whose cells all have one length (a log's usual shape).

    Checked one character position at a time over all rows against ``_ISO_TEMPLATE``
    (0.5 ms per 32k cells, a regex per cell takes 4). Other columns give None and take the regex.
    """
    n = len(text)
    if n == 0 or text.null_count or text.type != pa.string():
        return None
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32, count=n + 1, offset=text.offset * 4)
    width = int(offsets[1] - offsets[0])
    if width not in _ISO_WIDTHS or not (np.diff(offsets) == width).all():
        return None
    cells = np.frombuffer(text.buffers()[2], dtype=np.uint8, count=n * width, offset=int(offsets[0])).reshape(n, width)
    ok = np.ones(n, dtype=bool)
    for position, expected in enumerate(_ISO_TEMPLATE[:width]):
        char = cells[:, position]
        if expected == ord("d"):
            ok &= (char - ord("0")) < 10  # uint8: bytes below "0" wrap around to large values
        elif expected == ord(" "):
            ok &= (char == ord(" ")) | (char == ord("T"))
        else:
            ok &= char == expected
    return ok


def _naive_to_ms(text: pa.Array) -> pa.Array:
    """Cast ISO-like strings to naive ms timestamps; unparsable cells become null."""
    fixed = _fixed_width_iso(text)
    if fixed is not None and fixed.all():
        candidates = text
    else:
        ok = pa.array(fixed) if fixed is not None else pc.fill_null(pc.match_substring_regex(text, _ISO_LIKE), False)
        candidates = pc.if_else(ok, text, pa.scalar(None, pa.string()))
    try:
        return candidates.cast(pa.timestamp("ms"))
    except pa.ArrowInvalid:  # e.g. 2023-02-30: fall back cell by cell
        out = []
        for value in candidates.to_pylist():
            try:
                out.append(None if value is None else dt.datetime.fromisoformat(value))
            except ValueError:
                out.append(None)
        return pa.array(out, pa.timestamp("ms"))


def _trims_as_ascii(raw: np.ndarray) -> bool:
    """Whether ``ascii_trim_whitespace`` trims these cells' bytes as ``utf8_trim_whitespace`` does.

    True for ASCII without the separators 0x1C-0x1F (Unicode whitespace, not ASCII). The ASCII
    kernel needs no Unicode tables, which Arrow fills on the first UTF-8 kernel call (~4 ms).
    """
    if raw.max(initial=0) >= 0x80:
        return False
    return bool(raw.min(initial=0x20) >= 0x20) or not ((raw - np.uint8(0x1C)) < 4).any()  # uint8 wraps below 0x1C


def local_to_utc_ms(text: pa.Array, tz: str) -> pa.Array:
    """Parse local times (``YYYY-MM-DD[ HH:MM[:SS[.fff]]]`` or with ``/``) to UTC epoch ms.

    Ambiguous and non-existent local times (DST changes) resolve to the earlier
    instant, so a re-run always gives the same answer.
    """
    data = text.buffers()[2] if text.type == pa.string() else None
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else None
    text = pc.ascii_trim_whitespace(text) if raw is not None and _trims_as_ascii(raw) else pc.utf8_trim_whitespace(text)
    if raw is None or (raw == ord("/")).any():  # byte scans cost a tenth of a replace
        text = pc.replace_substring(text, "/", "-")
    return naive_to_utc_ms(_naive_to_ms(text), tz)


def naive_to_utc_ms(naive: pa.Array, tz: str) -> pa.Array:
    """Naive local ``timestamp("ms")`` values to UTC epoch ms, DST changes resolved as :func:`local_to_utc_ms` says."""
    if tz != "UTC":
        naive = pc.assume_timezone(naive, timezone=tz, ambiguous="earliest", nonexistent="earliest")
    return naive.cast(pa.int64())


def ms_to_date(ms: int) -> str:
    """The UTC date (``YYYY-MM-DD``) of an epoch-ms instant, for partition keys."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")


def ms_to_iso(ms: int) -> str:
    """An epoch-ms instant as ISO 8601 UTC with millisecond precision."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ms_to_iso_many(ms: np.ndarray) -> list[str]:
    """:func:`ms_to_iso` of many instants at once (the same text for years 1000-9999)."""
    return [f"{text}Z" for text in np.datetime_as_string(np.asarray(ms, dtype="datetime64[ms]"), unit="ms")]


@functools.lru_cache(maxsize=65536)
def ms_to_iso_shared(ms: int) -> str:
    """:func:`ms_to_iso_many` of one instant, one ``str`` per distinct instant: alerts start and end at the
    fleet's few hundred scrape times, and text for every sample of every GPU was ~8 MB per 100 k rows."""
    return ms_to_iso_many(np.array([ms]))[0]


@functools.lru_cache(maxsize=65536)  # an object's alerts share a few hundred sample times, parsed again and again
def iso_to_ms(text: str) -> int:
    """The inverse of :func:`ms_to_iso` (``2026-01-01T00:00:00.000Z`` -> epoch ms)."""
    parsed = dt.datetime.fromisoformat(text)  # C-fast (strptime cost ~1 s per 40k alerts in `process`)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return (parsed - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)
