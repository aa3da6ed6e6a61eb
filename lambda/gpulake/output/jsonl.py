"""JSON Lines bodies (alerts, quarantine, rejections) written to a spooled file and hashed as written: a body
is never whole in memory (ADR 0007), and an object's alerts go on across its windows (ADR 0008)."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator
from typing import IO

from gpulake.output.spool import spooled

#: ``json.dumps(..., ensure_ascii=False, sort_keys=True, allow_nan=False)``, built once: dumps builds an encoder
#: per call, a few microseconds each of an object's thousands of alert lines.
JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, allow_nan=False)
#: Records encoded together (~0.7 KB each for alerts).
BATCH = 1024


class JsonLines:
    """One JSON Lines body: records appended as lines, its SHA-256 kept as they are."""

    def __init__(self, records: Iterable[dict[str, object]] = ()) -> None:
        self._file = spooled()  # closed by finished()
        self._digest = hashlib.sha256()
        self.write(records)

    def write(self, records: Iterable[dict[str, object]]) -> None:
        """Append each record as one line (encoded :data:`BATCH` lines at a time: one hash update and one
        write each)."""
        records = iter(records)
        while batch := list(itertools.islice(records, BATCH)):
            lines = ("\n".join(map(JSON.encode, batch)) + "\n").encode()
            self._digest.update(lines)
            self._file.write(lines)

    def sha256(self) -> str:
        """The hex SHA-256 of the lines written so far (what ``Sink.sha256`` gives for the stored body)."""
        return self._digest.hexdigest()

    @contextlib.contextmanager
    def finished(self) -> Iterator[IO[bytes]]:
        """The body from its start, to put; closed (its temporary file removed) after."""
        with self._file as file:
            file.seek(0)
            yield file
