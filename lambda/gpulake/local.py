"""Local processing: files and folders on disk -> the processed layout in a directory.

The CLI's ``process`` subcommand and the tests use this; it mirrors what the
Lambda does per S3 object, with the file's content hash as its version.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gpulake import limits
from gpulake._nopandas import pyarrow_without_pandas
from gpulake.alerts import AlertConfig, grouping
from gpulake.alerts.grouping import Event
from gpulake.alerts.lifecycle import LifecycleConfig, sweep
from gpulake.alerts.state import SqliteEpisodeStore
from gpulake.context import SourceContext, local_node
from gpulake.decode import too_large
from gpulake.errors import InputRejected
from gpulake.ingest import PIECE, IngestResult, Lifecycle, ingest, reject
from gpulake.output.episodes import write_episode
from gpulake.output.sink import LocalSink
from gpulake.timeutil import check_zone


@dataclass(frozen=True)
class LocalOptions:
    """CLI options that shape how local files are read."""

    tz: str = "UTC"
    node: str | None = None
    format_name: str | None = None
    alert_config: AlertConfig = field(default_factory=AlertConfig)
    #: Caps on a file's decompressed size (``--max-inflated-mb``, else from this machine's memory).
    max_inflated: limits.SizeLimit = field(default_factory=limits.size_limit)
    #: Episode lifecycle across files (state in ``<out>/.gpulake/episodes.sqlite``); None: per-file alerts only.
    lifecycle: LifecycleConfig | None = field(default_factory=LifecycleConfig)


STATE_FILE = ".gpulake/episodes.sqlite"


def episode_store(out: Path) -> SqliteEpisodeStore:
    """The offline episode store of an output directory (kept between runs, like the bucket's table)."""
    return SqliteEpisodeStore(Path(out) / STATE_FILE)


def iter_files(paths: list[Path]) -> Iterator[Path]:
    """Files named, and files under folders named (recursively, hidden ones skipped), sorted."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not any(s.startswith(".") for s in p.relative_to(path).parts)
            )
        elif path.is_file():
            yield path
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")


def process_file(path: Path, out: Path, options: LocalOptions) -> IngestResult:
    """Ingest one local file into ``out``, read as a stream; the key is the path as given.

    A file larger than ``max_inflated`` is rejected unread.
    """
    pyarrow_without_pandas()  # process never uses pandas: keep pyarrow from importing it (0.3-0.5 s)
    key = path.as_posix()
    if path.stat().st_size > options.max_inflated.overall:
        exc: InputRejected = too_large(key, options.max_inflated.overall)
        return reject(exc, key, LocalSink(out), version=f"size:{path.stat().st_size}")
    ctx = SourceContext(
        key=key,
        object_time_ms=int(path.stat().st_mtime * 1000),
        tz=check_zone(options.tz),
        node=local_node(key, options.node),
    )
    lifecycle = Lifecycle(episode_store(out), options.lifecycle) if options.lifecycle else None
    result = ingest(
        lambda: read_pieces(path),
        ctx,
        LocalSink(out),
        max_inflated=options.max_inflated,
        format_name=options.format_name,
        alert_config=options.alert_config,
        lifecycle=lifecycle,
    )
    if lifecycle is not None:
        grouping.confirm(lifecycle.store, result.claims)  # offline, returning them is sending them
    return result


def read_pieces(path: Path) -> Iterator[bytes]:
    """A file's bytes in pieces (a stream for ingest: never the whole file at once)."""
    with path.open("rb") as file:
        while piece := file.read(PIECE):
            yield piece


def finish(out: Path, options: LocalOptions) -> list[Event]:
    """Close the episodes the data shows ended and flush due groups (offline the clock is data time).

    The clock is the latest extension seen; returns what the groups would send.
    """
    if not options.lifecycle or not (Path(out) / STATE_FILE).exists():
        return []
    store = episode_store(out)
    open_items = list(store.open_items())
    if not open_items:
        return []
    now = max(int(e["last_extended_ms"]) for e in open_items)
    swept = sweep(store, now, options.lifecycle)
    sink = LocalSink(out)
    for episode in swept.closed:
        write_episode(sink, episode)
    grouping.confirm(store, swept.claims)
    return swept.notifications
