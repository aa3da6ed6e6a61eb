"""A table's GPUs laid end to end, so a rule's runs on every GPU are found in one pass over all rows.

``detect`` asks each rule for its runs (where a condition holds, split at a GPU's own gap and never
across GPUs), the hits and peak of each, and the limit over each window, as arrays for all GPUs at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, NamedTuple, Protocol, TypeVar

import numpy as np

from gpulake.alerts import series


class Samples(Protocol):
    """What the fleet needs of a GPU: its sample times (ms, sorted) and typical step."""

    time: np.ndarray

    @property
    def step(self) -> float: ...


G = TypeVar("G", bound=Samples)


@dataclass(frozen=True)
class Fleet(Generic[G]):
    """A table's GPUs end to end, so that a rule's runs on every GPU are found in one pass over all rows."""

    gpus: Sequence[G]
    #: Each GPU's first row.
    starts: np.ndarray
    time: np.ndarray
    #: Per row, the gap that splits a run on its GPU (``gap_factor`` typical steps, at least 1 s).
    max_gap: np.ndarray
    #: True at each GPU's first row: runs never cross from one GPU to the next.
    breaks: np.ndarray

    @classmethod
    def of(cls, gpus: Sequence[G], gap_factor: float) -> Fleet[G]:
        """GPUs in row order (none empty), each run split at its own ``gap_factor`` typical steps."""
        sizes = np.array([len(g.time) for g in gpus], dtype=np.intp)
        starts = np.cumsum(sizes) - sizes
        breaks = np.zeros(int(sizes.sum()), dtype=bool)
        breaks[starts] = True
        max_gap = np.repeat(np.array([max(g.step * gap_factor, 1000.0) for g in gpus]), sizes)
        return cls(gpus, starts, np.concatenate([g.time for g in gpus]), max_gap, breaks)

    def join(self, per_gpu: Sequence[np.ndarray | float]) -> np.ndarray:
        """Per row, its GPU's entry of ``per_gpu`` (an array per sample, or one number for all its samples)."""
        if all(isinstance(v, float | int) for v in per_gpu):  # one number per GPU: repeated, no array per GPU
            return np.repeat(np.array(per_gpu, dtype=np.float64), [len(g.time) for g in self.gpus])
        return np.concatenate(
            [np.broadcast_to(np.asarray(v, dtype=np.float64), len(g.time)) for g, v in zip(self.gpus, per_gpu)]
        )

    def runs(self, hit: np.ndarray, values: np.ndarray | None = None) -> Runs:
        """The runs of ``hit`` on every GPU, with hits and peaks of ``values`` counted for all runs at once."""
        first, last = series.run_bounds(self.time, hit, self.max_gap, self.breaks)
        if values is None:
            peak = np.full(first.size, np.nan)
        else:
            peak = series.window_reduce(np.fmax, np.where(hit, values, np.nan), first, last)
        gpu = np.searchsorted(self.starts, first, side="right") - 1
        return Runs(gpu, first, last, series.window_counts(hit, first, last), peak)

    def episodes(self, runs: Runs) -> Iterator[tuple[G, int, int, int, float | None]]:
        """Each run as (its GPU, first and last sample on that GPU, hits, peak; None without a number)."""
        offset = self.starts[runs.gpu]
        for gpu, first, last, samples, peak in zip(
            runs.gpu.tolist(),
            (runs.first - offset).tolist(),
            (runs.last - offset).tolist(),
            runs.samples.tolist(),
            runs.peak.tolist(),
            strict=True,
        ):
            yield self.gpus[gpu], first, last, samples, None if math.isnan(peak) else peak


class Runs(NamedTuple):
    """A rule's episodes on all GPUs as arrays: GPU, first and last row, hits, peak over the hits (NaN: none)."""

    gpu: np.ndarray
    first: np.ndarray
    last: np.ndarray
    samples: np.ndarray
    peak: np.ndarray


def window_limits(limit: np.ndarray, runs: Runs) -> list[float]:
    """Per episode, the median known limit over its window (a GPU's one limit is the same on every row)."""
    low = series.window_reduce(np.fmin, limit, runs.first, runs.last).tolist()
    high = series.window_reduce(np.fmax, limit, runs.first, runs.last).tolist()
    # a limit that stays the same over the window is its median: the sort only where it changed
    return [
        lo if lo == hi else float(np.nanmedian(limit[first : last + 1]))
        for first, last, lo, hi in zip(runs.first.tolist(), runs.last.tolist(), low, high, strict=True)
    ]
