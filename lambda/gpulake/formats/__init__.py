"""Input formats: one module each behind :class:`~gpulake.formats.base.Format`.

Adding a format = one module, one line in ``FORMATS``, one testdata folder.
"""

from __future__ import annotations

import re

from gpulake.decode import looks_binary
from gpulake.errors import ConfigError, InputRejected
from gpulake.formats.base import BadRow, Format, ParseResult
from gpulake.formats.dcgm import DcgmFormat
from gpulake.formats.gpuz import GpuzFormat
from gpulake.formats.nvidia_smi import NvidiaSmiFormat
from gpulake.formats.thermal_csv import ThermalCsvFormat

__all__ = ["FORMATS", "BadRow", "Format", "ParseResult", "detect", "get", "has_content"]

#: Registry, in detection order (strictest sniff first).
FORMATS: dict[str, Format] = {f.name: f for f in (GpuzFormat(), NvidiaSmiFormat(), ThermalCsvFormat(), DcgmFormat())}
SNIFF_BYTES = 16384
_CONTENT = re.compile(rb"[^\x00 \t\r\n]")  # searched, not stripped: no copy of a large object
_FIELD_LIST = re.compile(r"^\s*(?:DCGM_|dcgm_)\w*\s*,\s*(?:gauge|counter|label|histogram|summary|\d+)\s*,", re.M)
_KNOWN_NOT_TELEMETRY = (
    (
        re.compile(r"NVSMI LOG|^\s*Attached GPUs\s*:|^NVIDIA-SMI version|NVIDIA System Management Interface", re.M),
        "this is nvidia-smi console text (-q, -h or a capture of several commands), which gpulake does not "
        "ingest: log with 'nvidia-smi --query-gpu=... --format=csv -l N' instead",
    ),
    (
        _FIELD_LIST,
        "this is a list of DCGM fields (a dcgm-exporter counters file or field ids), not a scrape: "
        "upload the output of the exporter's /metrics endpoint instead",
    ),
)


def get(name: str) -> Format:
    """The format registered as ``name``; a clear error lists the valid names."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown format {name!r}: choose one of {', '.join(FORMATS)}") from None


def has_content(data: bytes) -> bool:
    """Whether ``data`` holds anything but NULs and whitespace (without copying it)."""
    return _CONTENT.search(data) is not None


def detect(data: bytes, source: str) -> Format:
    """Recognise the format from the first bytes; reject what no format can read."""
    head_bytes = data[:SNIFF_BYTES]
    if not has_content(data):
        raise InputRejected(source, "object is empty; nothing to ingest")
    if looks_binary(head_bytes):
        raise InputRejected(source, "binary data, not a text telemetry log (is it an archive other than gzip?)")
    head = head_bytes.decode("utf-8", errors="replace")
    for pattern, message in _KNOWN_NOT_TELEMETRY:
        if pattern.search(head):
            raise InputRejected(source, message)
    for fmt in FORMATS.values():
        if fmt.sniff(head):
            return fmt
    raise InputRejected(
        source,
        "not a known telemetry layout (dcgm-exporter metrics, GPU-Z sensor log, nvidia-smi "
        f"--query-gpu CSV with header, thermal CSV); pass --format ({', '.join(FORMATS)}) "
        "if you know which it is",
        1,
    )
