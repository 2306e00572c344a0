"""Who is in the Primary Component, by identity: the members' gcomm uuids, never a count.

A data node's Primary Component lists its members' uuids (``mysql.wsrep_cluster_members``, collected as
:attr:`wizard.status.NodeStatus.members`); each data node tells its own uuid (``wsrep_gcomm_uuid``) and
the Arbiter host tells the running garbd's (``my_uuid`` of its ``gvwstate.dat``).  Matching the two says
who is in, whatever the size: when a data node dies, garbd stays in a component of two, and a dead
incarnation that Galera has not evicted yet shows as an unknown member instead of making the size look
right.

Pure functions over a :class:`wizard.status.ClusterStatus` (no I/O), shared by the monitor's view, its
event log and the recorder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wizard.status import ClusterStatus


@dataclass(frozen=True)
class ComponentView:
    """The Primary Component as its members' identities tell it.

    ``data_nodes``: names of the data nodes in it, in profile order.  ``garbd``: True/False when the
    identities tell, None when they cannot (the Arbiter host did not answer, or garbd runs without a
    gvwstate.dat identity yet).  ``unknown``: member uuids that no node of the profile claims or could
    be (a dead incarnation not evicted yet, or a stranger).  ``by_identity``: False when no Primary data node listed
    its members (then ``data_nodes`` are the Primary data nodes and ``garbd`` is the core's
    :attr:`wizard.status.ClusterStatus.arbiter_member`).
    """

    data_nodes: tuple[str, ...]
    garbd: bool | None
    unknown: tuple[str, ...] = ()
    by_identity: bool = True

    @property
    def names(self) -> list[str]:
        """The members in words: data node names, then ``garbd`` (``garbd?`` when it cannot be told)."""
        out = list(self.data_nodes)
        if self.garbd:
            out.append("garbd")
        elif self.garbd is None:
            out.append("garbd?")
        return out


def component_of(status: ClusterStatus) -> ComponentView:
    """The Primary Component of ``status`` by identity (the union over its Primary data nodes)."""
    data = [n for n in status.nodes if n.role == "studio"]
    arbiter = next((n for n in status.nodes if n.role == "arbiter"), None)
    primary = [n for n in data if n.cluster_status == "Primary"]
    if not primary:
        return ComponentView((), False, (), by_identity=True)
    members: set[str] = set()
    for n in primary:
        members.update(m for m in n.members if m)
    if not members:
        return ComponentView(tuple(n.name for n in primary), status.arbiter_member, (), by_identity=False)
    own = {n.wsrep.get("wsrep_gcomm_uuid", ""): n.name for n in data}
    own.pop("", None)
    in_it = {n.name for n in primary} | {name for uuid, name in own.items() if uuid in members}
    data_nodes = tuple(n.name for n in data if n.name in in_it)
    garbd: bool | None
    if arbiter is None:
        garbd = False
    elif not arbiter.reachable:
        garbd = None
    elif not arbiter.process_running:
        garbd = False
    elif arbiter.garbd_uuid:
        garbd = arbiter.garbd_uuid in members
    else:
        garbd = None
    claimed = set(own) | ({arbiter.garbd_uuid} if arbiter is not None and arbiter.garbd_uuid else set())
    # A node of the profile that may be in the component without telling its uuid (a data node joining,
    # not answering SQL yet; garbd without a gvwstate.dat; a host that did not answer) may be any one
    # unclaimed member: only the members beyond those are strangers.  A node known stopped is none.
    silent = [n for n in status.nodes if not (n.reachable and not n.process_running)
              and not (n.wsrep.get("wsrep_gcomm_uuid") if n.role == "studio" else n.garbd_uuid)]
    unknown = sorted(m for m in members if m not in claimed)[len(silent):]
    return ComponentView(data_nodes, garbd, tuple(unknown), by_identity=True)
