"""What the monitor remembers between polls: commit rate, flow control, and changes as events.

Pure functions over consecutive :class:`wizard.status.ClusterStatus` values (no Textual, no I/O), so the
event wording and the rates are tested without a screen.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wizard.status import ClusterStatus, NodeStatus


@dataclass(frozen=True)
class HistoryEvent:
    ts: float
    text: str
    level: str = "info"  # info | good | warn | bad


def _float(ns: NodeStatus, key: str) -> float | None:
    try:
        return float(ns.wsrep[key])
    except (KeyError, ValueError):
        return None


def commit_counter(status: ClusterStatus) -> int | None:
    """The cluster's commit counter: the highest wsrep_last_committed a data node reports
    (wsrep_local_commits summed when no node reports a seqno)."""
    seqnos = [n.last_committed for n in status.nodes if n.role == "studio" and n.wsrep and n.last_committed >= 0]
    if seqnos:
        return max(seqnos)
    local = [_float(n, "wsrep_local_commits") for n in status.nodes if n.role == "studio"]
    values = [v for v in local if v is not None]
    return int(sum(values)) if values else None


def flow_control(status: ClusterStatus) -> float:
    """The worst wsrep_flow_control_paused (fraction of time paused) of the data nodes, 0..1."""
    values = [_float(n, "wsrep_flow_control_paused") for n in status.nodes if n.role == "studio"]
    return max((v for v in values if v is not None), default=0.0)


def _process(ns: NodeStatus) -> str:
    return "mariadbd" if ns.role == "studio" else "garbd"


def _verdict_level(verdict: str) -> str:
    return {"healthy": "good", "degraded": "warn"}.get(verdict, "bad")


def diff_status(prev: ClusterStatus | None, cur: ClusterStatus) -> list[HistoryEvent]:
    """The membership and state changes from `prev` to `cur`, in words, stamped with cur.ts."""
    ts = cur.ts
    ev: list[HistoryEvent] = []
    if prev is None:
        text = f"monitoring {cur.cluster}: {cur.verdict} ({cur.reason})"
        return [HistoryEvent(ts, text, _verdict_level(cur.verdict))]
    if prev.verdict != cur.verdict:
        ev.append(HistoryEvent(ts, f"verdict {prev.verdict} -> {cur.verdict}: {cur.reason}",
                               _verdict_level(cur.verdict)))
    before, after = set(prev.primary_members), set(cur.primary_members)
    for name in sorted(after - before):
        ev.append(HistoryEvent(ts, f"{name} joined the Primary Component", "good"))
    for name in sorted(before - after):
        ev.append(HistoryEvent(ts, f"{name} left the Primary Component", "bad"))
    old_nodes = {n.name: n for n in prev.nodes}
    for n in cur.nodes:
        o = old_nodes.get(n.name)
        if o is None:
            continue
        if o.reachable != n.reachable:
            ev.append(HistoryEvent(ts, f"{n.name} reachable again" if n.reachable
                                   else f"{n.name} unreachable: {n.error or 'no answer'}",
                                   "good" if n.reachable else "bad"))
        elif o.process_running != n.process_running and n.reachable:
            ev.append(HistoryEvent(ts, f"{n.name} {_process(n)} {'started' if n.process_running else 'stopped'}",
                                   "good" if n.process_running else "bad"))
        if n.role != "studio" or not n.wsrep:  # a node that went away says so above; no "Synced -> -" noise
            continue
        if o.cluster_status != n.cluster_status and (o.cluster_status or n.cluster_status):
            ev.append(HistoryEvent(ts, f"{n.name} {o.cluster_status or '-'} -> {n.cluster_status or '-'}",
                                   "good" if n.cluster_status == "Primary" else "bad"))
        if o.state != n.state and (o.state or n.state):
            ev.append(HistoryEvent(ts, f"{n.name} state {o.state or '-'} -> {n.state or '-'}",
                                   "good" if n.state == "Synced" else "warn"))
        if o.size != n.size and o.wsrep and n.wsrep:
            ev.append(HistoryEvent(ts, f"{n.name} sees cluster size {o.size} -> {n.size}",
                                   "good" if n.size > o.size else "warn"))
    if prev.arbiter_member != cur.arbiter_member:
        ev.append(HistoryEvent(ts, "garbd joined the component" if cur.arbiter_member
                               else "garbd left the component", "good" if cur.arbiter_member else "bad"))
    if prev.uuids_agree != cur.uuids_agree:
        ev.append(HistoryEvent(ts, "nodes agree on the state UUID again" if cur.uuids_agree
                               else "nodes disagree on the state UUID", "good" if cur.uuids_agree else "bad"))
    if prev.authoring_node != cur.authoring_node or prev.authoring_addresses != cur.authoring_addresses:
        target = cur.authoring_node or "no Studio node"
        addrs = ", ".join(cur.authoring_addresses) or "no answer"
        ev.append(HistoryEvent(ts, f"authoring name now resolves to {target} ({addrs})",
                               "info" if cur.authoring_node else "warn"))
    return ev


class History:
    """The last `maxlen` samples of commit rate and flow control, and the last events."""

    def __init__(self, maxlen: int = 120, max_events: int = 500) -> None:
        self.commit_rate: deque[float] = deque(maxlen=maxlen)
        self.flow_control: deque[float] = deque(maxlen=maxlen)
        self.events: deque[HistoryEvent] = deque(maxlen=max_events)
        self.last: ClusterStatus | None = None

    def add(self, status: ClusterStatus) -> list[HistoryEvent]:
        """Record one poll; returns the events it produced."""
        prev = self.last
        if prev is not None:
            a, b = commit_counter(prev), commit_counter(status)
            dt = status.ts - prev.ts
            rate = (b - a) / dt if a is not None and b is not None and b >= a and dt > 0 else 0.0
            self.commit_rate.append(rate)
        self.flow_control.append(flow_control(status))
        events = diff_status(prev, status)
        self.events.extend(events)
        self.last = status
        return events
