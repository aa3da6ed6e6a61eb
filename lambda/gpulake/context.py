"""What a format parser may know about the object besides its bytes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePosixPath

from gpulake.output.layout import safe_stem


@dataclass(frozen=True)
class SourceContext:
    """Facts about one input object, gathered by the caller (handler or CLI).

    Parsers do no I/O and read no environment: everything they need that is not
    in the bytes comes in here.
    """

    #: The object key or local path, used in messages and ``source_object``.
    key: str
    #: The object's time (S3 LastModified / file mtime), epoch milliseconds.
    object_time_ms: int
    #: Zone of local timestamps in the data (GPU-Z, nvidia-smi, thermal CSV).
    tz: str = "UTC"
    #: Node name when the data does not carry one (metadata, key, ``--node``, stem).
    node: str = "unknown"


#: Key segments that name a source folder, so the next segment names the node.
SOURCE_FOLDERS = frozenset(
    {"dcgm", "gpuz", "gpu-z", "nvidia-smi", "nvidia_smi", "thermal-csv", "thermal_csv", "thermal"}
)


def node_from_key(key: str) -> str | None:
    """``…/node=<name>/…`` or ``<source>/<node>/<file>`` in an object key, else None."""
    parts = [p for p in key.replace("\\", "/").split("/") if p]
    for part in parts[:-1]:
        if part.startswith("node=") and len(part) > 5:
            return part[5:]
    for i, part in enumerate(parts[:-2]):
        if part.lower() in SOURCE_FOLDERS:
            return parts[i + 1]
    return None


def resolve_node(key: str, metadata_node: str | None = None, fallback: str | None = None) -> str:
    """Node for data that does not name its own: metadata, key, fallback, file stem."""
    return metadata_node or node_from_key(key) or fallback or safe_stem(key)


def local_node(path: str, explicit: str | None = None) -> str:
    """Node of a local file, the same for ``process`` and ``upload``: ``--node``, else the key rules, else its folder.

    ``logs/node17/nvidia-smi.csv`` -> ``node17``; a bare ``nvidia-smi.csv`` is named after the folder it
    is in (the working directory). A folder named after a source format (``gpuz/``) names no node, so the
    file stem is used.
    """
    posix = path.replace("\\", "/")
    folder = PurePosixPath(posix).parent.name or PurePosixPath(os.path.abspath(posix)).parent.name
    named = folder if folder and folder not in (".", "..") and folder.lower() not in SOURCE_FOLDERS else None
    return resolve_node(path, explicit, named)
