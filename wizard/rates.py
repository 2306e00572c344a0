"""Per-node replication figures between two polls: flow control now, queues, certification failures, bytes/s.

``wsrep_flow_control_paused`` is a fraction accumulated since the last status reset, so a node that
throttles now shows almost nothing; the delta of ``wsrep_flow_control_paused_ns`` over the time between
two polls is the figure that means "now".  Counters that went backwards (a restart, ``FLUSH STATUS``)
give no rate for that interval rather than a negative one.

Pure functions over :class:`wizard.status.ClusterStatus` values (no I/O, no Textual).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wizard.status import ClusterStatus, NodeStatus


@dataclass(frozen=True)
class NodeFlow:
    """One data node's replication figures at a poll.

    ``paused``: fraction (0..1) of the time since the previous poll that flow control paused
    replication.  ``send_queue`` / ``recv_queue``: write-sets waiting to be sent / applied now.
    ``cert_failures``: certification failures since the server started; ``new_cert_failures``: since the
    previous poll.  ``bytes_per_s``: replicated plus received write-set bytes per second since the
    previous poll.  A field is None when the node did not report it, or (for the deltas) when there is
    no comparable previous poll.
    """

    name: str
    paused: float | None = None
    send_queue: int | None = None
    recv_queue: int | None = None
    cert_failures: int | None = None
    new_cert_failures: int | None = None
    bytes_per_s: float | None = None


def _num(ns: NodeStatus, key: str) -> float | None:
    try:
        return float(ns.wsrep[key])
    except (KeyError, ValueError):
        return None


def _int(ns: NodeStatus, key: str) -> int | None:
    v = _num(ns, key)
    return None if v is None else int(v)


def _same_server(prev: NodeStatus, cur: NodeStatus) -> bool:
    """Both samples come from one run of the server (Uptime did not go back; unknown counts as same)."""
    a, b = _num(prev, "Uptime"), _num(cur, "Uptime")
    return a is None or b is None or b >= a


def _delta(prev: NodeStatus, cur: NodeStatus, *keys: str) -> float | None:
    """The growth of the sum of ``keys`` from prev to cur; None when any is missing or it went back."""
    a = [_num(prev, k) for k in keys]
    b = [_num(cur, k) for k in keys]
    if any(v is None for v in a + b):
        return None
    d = sum(v for v in b if v is not None) - sum(v for v in a if v is not None)
    return d if d >= 0 else None


def node_flow(prev: NodeStatus | None, cur: NodeStatus, elapsed: float) -> NodeFlow:
    """``cur``'s figures; the deltas over ``elapsed`` seconds since ``prev`` (None: no previous poll)."""
    paused = new_cert = rate = None
    if prev is not None and prev.wsrep and elapsed > 0 and _same_server(prev, cur):
        ns = _delta(prev, cur, "wsrep_flow_control_paused_ns")
        paused = None if ns is None else min(1.0, ns / 1e9 / elapsed)
        cert = _delta(prev, cur, "wsrep_local_cert_failures")
        new_cert = None if cert is None else int(cert)
        moved = _delta(prev, cur, "wsrep_replicated_bytes", "wsrep_received_bytes")
        rate = None if moved is None else moved / elapsed
    return NodeFlow(cur.name, paused, _int(cur, "wsrep_local_send_queue"), _int(cur, "wsrep_local_recv_queue"),
                    _int(cur, "wsrep_local_cert_failures"), new_cert, rate)


def flows(prev: ClusterStatus | None, cur: ClusterStatus) -> dict[str, NodeFlow]:
    """Every data node's :class:`NodeFlow` at ``cur`` (by name), for the nodes that answered SQL."""
    before = {n.name: n for n in prev.nodes} if prev is not None else {}
    elapsed = cur.ts - prev.ts if prev is not None else 0.0
    return {n.name: node_flow(before.get(n.name), n, elapsed)
            for n in cur.nodes if n.role == "studio" and n.wsrep}


def worst_paused(by_node: dict[str, NodeFlow]) -> float:
    """The highest paused fraction (0..1) among the nodes; 0.0 when none is known."""
    return max((f.paused for f in by_node.values() if f.paused is not None), default=0.0)


def busiest_bytes_per_s(by_node: dict[str, NodeFlow]) -> float:
    """The busiest node's replicated + received bytes per second (each write-set counts once per node)."""
    return max((f.bytes_per_s for f in by_node.values() if f.bytes_per_s is not None), default=0.0)


def commit_counter(status: ClusterStatus) -> int | None:
    """The cluster's commit counter: the highest wsrep_last_committed a data node reports
    (wsrep_local_commits summed when no node reports a seqno); None when no data node answered."""
    seqnos = [n.last_committed for n in status.nodes if n.role == "studio" and n.wsrep and n.last_committed >= 0]
    if seqnos:
        return max(seqnos)
    local = [_num(n, "wsrep_local_commits") for n in status.nodes if n.role == "studio"]
    values = [v for v in local if v is not None]
    return int(sum(values)) if values else None


def human_rate(value: float | None) -> str:
    """A bytes-per-second figure in at most 5 characters: ``0``, ``812``, ``12K``, ``1.2M``, ``-`` for None."""
    if value is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            v = value / size
            return f"{v:.1f}{unit}" if v < 10 else f"{v:.0f}{unit}"
    return f"{value:.0f}"
