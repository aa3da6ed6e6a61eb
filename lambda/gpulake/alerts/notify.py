"""Notifications: a node group's batch of episode changes as one SNS message.

Alertmanager's ``group_by: [node]``: the changes a node's group sends together
(:mod:`gpulake.alerts.grouping`: new episodes, escalations, repeats and
resolutions since its last message) are one message listing every GPU and kind,
one line per change; a batch over ``MAX_BATCH`` changes is split. The subject is stable for a
group state (``[FIRING] gpulake gpu-node-01: thermal_throttle, xid``) and the
``MessageAttributes`` carry ``severity`` (the highest), ``node``, and ``kind`` and
``state`` as ``String.Array`` so subscribers can filter, e.g.
``{"severity": ["critical"], "state": ["firing", "resolved"]}``; a message with resolutions adds
``resolution`` (``cleared`` / ``no_data``, ``String.Array``) so a pager can hear of telemetry that stopped.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from gpulake.alerts.grouping import MAX_BATCH, Event
from gpulake.alerts.lifecycle import SEVERITY_RANK

_ORDER = ("firing", "escalated", "repeat", "resolved")
#: What a resolved line says of its episode's ``resolution`` (gpulake.alerts.lifecycle.resolution).
_RESOLUTION_TEXT = {
    "cleared": "cleared (later samples of the GPU show it gone)",
    "no_data": "no data from the GPU after its end (node, collector or GPU stopped reporting)",
}


def messages(events: list[Event]) -> list[dict[str, Any]]:
    """``sns.publish`` keyword arguments (without ``TopicArn``), one per node (per ``MAX_BATCH`` changes), by node."""
    by_node: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_node[str(event.episode["node"])].append(event)
    out = []
    for node in sorted(by_node):
        ordered = sorted(by_node[node], key=lambda e: (_ORDER.index(e.state), e.episode["gpu"], e.episode["kind"]))
        for first in range(0, len(ordered), MAX_BATCH):
            out.append(_message(node, ordered[first : first + MAX_BATCH]))
    return out


def _message(node: str, group: list[Event]) -> dict[str, Any]:
    states = sorted({e.state for e in group}, key=_ORDER.index)
    kinds = sorted({str(e.episode["kind"]) for e in group})
    severity = max((str(e.episode["severity"]) for e in group), key=SEVERITY_RANK.__getitem__)
    headline = "RESOLVED" if states == ["resolved"] else "FIRING"
    lines = [
        f"{e.state.upper()} {e.episode['severity']} {e.episode['kind']} GPU {e.episode['gpu']}: "
        f"{e.episode['start']}..{e.episode['end']}, {e.episode['samples']} sample(s)"
        + (f", peak {e.episode['peak']:g}" if e.episode.get("peak") is not None else "")
        + (f" — {_RESOLUTION_TEXT[e.episode['resolution']]}" if e.episode.get("resolution") else "")
        + (f" — {e.episode['action']}" if e.episode.get("action") else "")
        for e in group
    ]
    resolutions = sorted({str(e.episode["resolution"]) for e in group if e.episode.get("resolution")})
    body = {
        "node": node,
        "severity": severity,
        "states": states,
        "summary": "\n".join(lines),
        "episodes": [{**e.episode, "state": e.state} for e in group],
    }
    return {
        "Subject": f"[{headline}] gpulake {node}: {', '.join(kinds)}"[:100],
        "Message": json.dumps(body, sort_keys=True, default=str),
        "MessageAttributes": {
            "severity": {"DataType": "String", "StringValue": severity},
            "node": {"DataType": "String", "StringValue": node},
            "kind": {"DataType": "String.Array", "StringValue": json.dumps(kinds)},
            "state": {"DataType": "String.Array", "StringValue": json.dumps(states)},
        }
        | ({"resolution": {"DataType": "String.Array", "StringValue": json.dumps(resolutions)}} if resolutions else {}),
    }


def publish(sns: Any, topic_arn: str, messages: list[dict[str, Any]]) -> None:
    """Send the grouped messages (from :func:`messages`) to the alerts topic; both handlers call this."""
    for message in messages:
        sns.publish(TopicArn=topic_arn, **message)
