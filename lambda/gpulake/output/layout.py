"""The processed layout, identical in a local directory and in the processed bucket.

``metrics/source=<source>/date=<YYYY-MM-DD>/<name>.parquet``,
``alerts/date=<YYYY-MM-DD>/<name>.jsonl``, ``quarantine/<name>.jsonl``.
``<name>`` derives from the source key alone, so a re-delivery or a new version of
the same object overwrites instead of duplicating (``gpulake.dedupe`` retires what
an earlier version wrote and the new one does not), and no input name can escape
the prefix. ``manifests/<name>.json`` records the version each name holds.
"""

from __future__ import annotations

import hashlib
import posixpath
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SUFFIXES = (".gz", ".gzip", ".prom", ".txt", ".csv", ".log", ".metrics")
MAX_STEM = 64


def safe_stem(key: str) -> str:
    """A file-name-safe stem of the key's last segment (``../x y.csv.gz`` -> ``x_y``)."""
    base = posixpath.basename(key.replace("\\", "/"))
    lowered = base.lower()
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if lowered.endswith(suffix) and len(lowered) > len(suffix):
                base, lowered = base[: -len(suffix)], lowered[: -len(suffix)]
                changed = True
    stem = _UNSAFE.sub("_", base).strip("._-")[:MAX_STEM]
    return stem or "object"


def object_name(key: str) -> str:
    """Deterministic output name of one input object key, whatever its version (one key, one set of outputs)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{safe_stem(key)}-{digest}"


def metrics_key(source: str, date: str, name: str) -> str:
    return f"metrics/source={source}/date={date}/{name}.parquet"


#: Where every object's alerts files are.
ALERTS_PREFIX = "alerts/"


def alerts_key(date: str, name: str) -> str:
    return f"{ALERTS_PREFIX}date={date}/{name}.jsonl"


def episodes_key(date: str, episode_id: str) -> str:
    """A closed alert episode (written by the sweeper, rewritten when a late object extends it)."""
    return f"episodes/date={date}/{episode_id}.json"


def quarantine_key(name: str) -> str:
    return f"quarantine/{name}.jsonl"


def manifest_key(name: str) -> str:
    return f"manifests/{name}.json"
