"""Closed alert episodes as JSON documents under ``episodes/`` (what Athena and the loaders read)."""

from __future__ import annotations

from gpulake.output import layout
from gpulake.output.jsonl import JSON
from gpulake.output.sink import Sink


def write_episode(sink: Sink, episode: dict[str, object]) -> str:
    """Write a closed episode to ``episodes/date=<start date>/<episode_id>.json``."""
    key = layout.episodes_key(str(episode["start"])[:10], str(episode["episode_id"]))
    body = (JSON.encode(episode) + "\n").encode()
    sink.put(key, body, "application/json")
    return key
