"""Changes between two polls of the cluster, in words: the monitor's event log and the recorder's.

Membership changes come from the members' identities (:func:`wizard.component.component_of`): garbd is
said to leave only when its uuid is no longer among the component's members, never because the size fell
when a data node died.  Pure functions (no I/O, no Textual).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from wizard.component import component_of

if TYPE_CHECKING:
    from wizard.status import ClusterStatus, NodeStatus


@dataclass(frozen=True)
class HistoryEvent:
    """One change: ``ts`` (Unix seconds, the poll's), ``text`` in words, ``level`` info|good|warn|bad."""

    ts: float
    text: str
    level: str = "info"


def _process(ns: NodeStatus) -> str:
    return "mariadbd" if ns.role == "studio" else "garbd"


def verdict_level(verdict: str) -> str:
    """The event level of a verdict: healthy -> good, degraded -> warn, else bad."""
    return {"healthy": "good", "degraded": "warn"}.get(verdict, "bad")


def _membership(prev: ClusterStatus, cur: ClusterStatus, ts: float) -> list[HistoryEvent]:
    ev: list[HistoryEvent] = []
    a, b = component_of(prev), component_of(cur)
    for name in [n for n in b.data_nodes if n not in a.data_nodes]:
        ev.append(HistoryEvent(ts, f"{name} joined the Primary Component", "good"))
    for name in [n for n in a.data_nodes if n not in b.data_nodes]:
        ev.append(HistoryEvent(ts, f"{name} left the Primary Component", "bad"))
    if a.garbd != b.garbd:
        if b.garbd is None:
            ev.append(HistoryEvent(ts, "garbd's membership cannot be told now (the Arbiter host did not answer "
                                   "or garbd has no identity yet)", "warn"))
        elif b.garbd:
            ev.append(HistoryEvent(ts, "garbd joined the component", "good"))
        else:
            ev.append(HistoryEvent(ts, "garbd left the component", "bad"))
    if len(a.unknown) != len(b.unknown):
        if b.unknown:
            ev.append(HistoryEvent(ts, f"{len(b.unknown)} member(s) of the component belong to no node of the "
                                   "profile (a dead incarnation not evicted yet?)", "warn"))
        else:
            ev.append(HistoryEvent(ts, "every member of the component is a node of the profile again", "good"))
    return ev


def diff_status(prev: ClusterStatus | None, cur: ClusterStatus) -> list[HistoryEvent]:
    """The membership and state changes from ``prev`` to ``cur``, in words, stamped with ``cur.ts``;
    the first poll (``prev`` None) gives one event naming the cluster and its verdict."""
    ts = cur.ts
    ev: list[HistoryEvent] = []
    if prev is None:
        text = f"monitoring {cur.cluster}: {cur.verdict} ({cur.reason})"
        return [HistoryEvent(ts, text, verdict_level(cur.verdict))]
    if prev.verdict != cur.verdict:
        ev.append(HistoryEvent(ts, f"verdict {prev.verdict} -> {cur.verdict}: {cur.reason}",
                               verdict_level(cur.verdict)))
    ev.extend(_membership(prev, cur, ts))
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
        a, b = o.wsrep.get("wsrep_local_cert_failures"), n.wsrep.get("wsrep_local_cert_failures")
        if a and b and a.isdigit() and b.isdigit() and int(b) > int(a):
            ev.append(HistoryEvent(ts, f"{n.name}: {int(b) - int(a)} certification failure(s) since the last poll",
                                   "warn"))
    if prev.uuids_agree != cur.uuids_agree:
        ev.append(HistoryEvent(ts, "nodes agree on the state UUID again" if cur.uuids_agree
                               else "nodes disagree on the state UUID", "good" if cur.uuids_agree else "bad"))
    if prev.authoring_node != cur.authoring_node or prev.authoring_addresses != cur.authoring_addresses:
        target = cur.authoring_node or "no Studio node"
        addrs = ", ".join(cur.authoring_addresses) or "no answer"
        ev.append(HistoryEvent(ts, f"authoring name now resolves to {target} ({addrs})",
                               "info" if cur.authoring_node else "warn"))
    return ev
