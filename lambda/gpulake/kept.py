"""What ingest keeps of an object's rows once each slice is written: what alerts, spans and lifecycle read.

A large dcgm object is written a slice at a time (ADR 0007) and its ``extra`` and ``labels`` maps are
dropped with each slice; detection, carried ends, spans and episode lifecycle still see every row. They
get the rows back as one table without the maps (time, identity, canonical columns, throttle reasons;
~80 bytes a row, the texts as one code per row until asked for) and, of ``extra``, only the keys
detection reads, as numbers (:class:`gpulake.alerts.series.ExtraColumns`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from gpulake.alerts.series import ExtraColumns
from gpulake.schema import METRICS_SCHEMA, codes, whole

#: The per-row texts, kept as one code per row into the object's distinct combinations of them.
TEXTS = ("node", "gpu", "gpu_uuid", "gpu_model", "source", "source_object")
#: The table the readers get: every column but the maps.
SCHEMA = pa.schema([f for f in METRICS_SCHEMA if f.name not in ("extra", "labels")])
_NUMBERS = tuple(name for name in SCHEMA.names if name not in TEXTS)


class KeptRows:
    """An object's written rows, slice by slice, as the columns the readers of the whole object need."""

    def __init__(self, wanted: Callable[[str], bool]) -> None:
        #: The ``extra`` keys detection reads (``gpulake.alerts.rules.reads_extra``), per row.
        self.extra = ExtraColumns(wanted)
        self._numbers: dict[str, list[pa.Array]] = {name: [] for name in _NUMBERS}
        self._codes: list[np.ndarray] = []
        self._texts: dict[tuple[str | None, ...], int] = {}

    def add(self, table: pa.Table) -> None:
        """Keep what is read of the next slice of rows (in table order)."""
        for name in _NUMBERS:
            self._numbers[name].append(whole(table[name]))
        self._codes.append(self._text_codes(table))
        self.extra.add(table["extra"])

    def _text_codes(self, table: pa.Table) -> np.ndarray:
        """Per row, the code of its texts (:data:`TEXTS`); a slice has a few distinct combinations (its GPUs)."""
        dictionaries, columns = [], []
        combined = np.zeros(table.num_rows, dtype=np.int64)
        for name in TEXTS:
            distinct, column = codes(table[name])
            dictionaries.append(distinct)
            columns.append(column)
            # one integer per combination so far, renumbered 0.. so that it stays below the row count
            _, combined = np.unique(combined * len(distinct) + column, return_inverse=True)
        _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
        numbered = [
            self._texts.setdefault(
                tuple(d[c[row]] for d, c in zip(dictionaries, columns, strict=True)), len(self._texts)
            )
            for row in first.tolist()
        ]
        return np.asarray(numbered, dtype=np.int32)[inverse.reshape(-1)]

    def table(self) -> pa.Table:
        """Every kept row, in the order added: the rows' table without ``extra`` and ``labels`` (:data:`SCHEMA`)."""
        codes = pa.array(np.concatenate(self._codes) if self._codes else np.empty(0, np.int32))
        combinations = list(self._texts)
        columns = {}
        for name in SCHEMA.names:
            field = SCHEMA.field(name)
            if name in TEXTS:
                values = pa.array([c[TEXTS.index(name)] for c in combinations], field.type)
                columns[name] = values.take(codes)
            else:
                pieces = self._numbers[name]
                columns[name] = pa.concat_arrays(pieces) if pieces else pa.array([], field.type)
        return pa.table(columns, schema=SCHEMA)
