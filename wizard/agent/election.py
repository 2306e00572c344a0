"""Who bootstraps the Galera cluster: a pure function from the registered node states to a decision.

Each node's agent publishes a :class:`NodeState` in a Redis hash (``to_dict``/``from_dict``, all
values strings); every agent reads all of them and calls :func:`decide` with the same inputs, so all
agents reach the same decision without talking to each other.  The function has no I/O and no
clock: the caller passes only live states (expired heartbeats are simply absent).

Rules, in order:

1. A data node runs in a Primary Component -> JOIN it.  Nobody bootstraps, not even with ``force``:
   a second Primary Component would split the cluster.
2. ``force`` names a registered data node -> it bootstraps, whatever its state: forcing is the way
   out of every refusal.  The reason states plainly what is lost (nodes ahead of it, nodes whose
   position is unknown, databases replaced, missing nodes).
3. A data node has not registered -> WAIT, naming it.
4. Every data node is fresh (no Galera transaction, no databases of its own) -> BOOTSTRAP a new
   cluster on ``preferred``.
5. A data node's position is unknown (grastate says nothing and ``--wsrep-recover`` could not tell)
   -> REFUSE, naming it and the ways out: it may hold the latest transactions.
6. Data nodes carry different non-zero uuids -> REFUSE, naming them: they are not one cluster.
7. Databases that never were in Galera (a standalone server): the only node with data bootstraps a
   new cluster keeping them; with a rival (another standalone or a node with cluster history) REFUSE.
8. The winner has the highest effective seqno; ties go to a node with ``safe_to_bootstrap: 1``, then
   to ``preferred``, then by name.  So a node never bootstraps while another holds later transactions.

The effective seqno is grastate's ``seqno`` when >= 0 (clean shutdown); else the position recovered
by ``mariadbd --wsrep-recover`` (after a crash, or when Galera zeroed grastate.dat during DDL); else,
for a running node outside a Primary Component, its ``wsrep_last_committed``; else unknown.  A zero
uuid in grastate.dat proves nothing by itself: a node is *fresh* only when ``--wsrep-recover`` found
no Galera position in InnoDB (or there is no InnoDB at all) and its datadir holds no databases of its
own (``datadir``, as the agent classified it).  A state with ``datadir`` unset is never fresh.

Standard library only, Python 3.9+ (this runs on the nodes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wizard.agent.grastate import ZERO_UUID, GraState

__all__ = [
    "ARBITER",
    "BOOTSTRAP",
    "DATADIR_DATA",
    "DATADIR_EMPTY",
    "DATADIR_SYSTEM",
    "JOIN",
    "KINDS",
    "REFUSE",
    "STUDIO",
    "WAIT",
    "ZERO_UUID",
    "Decision",
    "GraState",
    "NodeState",
    "decide",
]

JOIN = "join"
BOOTSTRAP = "bootstrap"
WAIT = "wait"
REFUSE = "refuse"
KINDS = (JOIN, BOOTSTRAP, WAIT, REFUSE)

STUDIO = "studio"
ARBITER = "arbiter"

DATADIR_EMPTY = "empty"  # no InnoDB system tablespace: never initialised
DATADIR_SYSTEM = "system"  # initialised; only the server's own schemas (mysql, performance_schema, sys)
DATADIR_DATA = "data"  # holds databases of its own
DATADIR_KINDS = (DATADIR_EMPTY, DATADIR_SYSTEM, DATADIR_DATA, "")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _bool(value: str, key: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"node state field {key}={value!r} is not a boolean (1/0)")


def _int(value: str, key: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"node state field {key}={value!r} is not an integer") from None


def _datadir(value: str) -> str:
    value = value.strip()
    if value not in DATADIR_KINDS:
        raise ValueError(f"node state field datadir={value!r} is not one of {', '.join(DATADIR_KINDS)}")
    return value


def _float(value: str, key: str) -> float:
    try:
        return float(value.strip() or 0)
    except ValueError:
        raise ValueError(f"node state field {key}={value!r} is not a number") from None


@dataclass
class NodeState:
    """What one node's agent registers.  Mutable: the agent refreshes it on every heartbeat."""

    name: str
    role: str = STUDIO
    uuid: str = ZERO_UUID
    seqno: int = -1
    safe_to_bootstrap: bool = False
    recovered_seqno: int | None = None
    running: bool = False
    cluster_status: str = ""
    local_state: str = ""
    heartbeat: float = 0.0
    cluster_size: int = 0
    last_committed: int = -1
    recovered_uuid: str = ""  # the uuid ``--wsrep-recover`` found in InnoDB ("" when it did not run)
    datadir: str = ""  # DATADIR_EMPTY, DATADIR_SYSTEM, DATADIR_DATA, or "" (not inspected: unknown)
    note: str = ""  # why the position is unknown (grastate unreadable, recovery failed, ...)
    members: str = ""  # the component's members as "uuid=name,..." (mysql.wsrep_cluster_members)

    # -- views ------------------------------------------------------------------------------------
    @property
    def galera_uuid(self) -> str:
        """The cluster uuid this node's data belongs to: grastate's, else the one InnoDB holds."""
        if self.uuid != ZERO_UUID:
            return self.uuid
        if self.recovered_uuid and self.recovered_uuid != ZERO_UUID:
            return self.recovered_uuid
        return ZERO_UUID

    @property
    def has_zero_uuid(self) -> bool:
        return self.galera_uuid == ZERO_UUID

    @property
    def is_primary(self) -> bool:
        """mariadbd runs and is part of a Primary Component."""
        return self.running and self.cluster_status == "Primary"

    @property
    def effective_seqno(self) -> int | None:
        """The node's last committed position, or None when it is unknown."""
        if self.seqno >= 0:
            return self.seqno
        if self.recovered_seqno is not None and self.recovered_seqno >= 0:
            return self.recovered_seqno
        if self.running and not self.is_primary and self.last_committed >= 0:
            return self.last_committed
        return None

    @property
    def committed_nothing(self) -> bool:
        """Known to hold no Galera transaction: ``--wsrep-recover`` found no position in InnoDB
        (``recovered_seqno == -1``), or there is no InnoDB data at all (an empty datadir)."""
        if self.effective_seqno is not None:
            return False
        return self.datadir == DATADIR_EMPTY or (self.recovered_seqno is not None and self.recovered_seqno < 0)

    @property
    def is_fresh(self) -> bool:
        """Nothing to lose: no Galera transaction and no databases of its own (only the server's system
        schemas, or not even those).  A zero uuid alone proves nothing: Galera zeroes grastate.dat while
        DDL runs, and a crash then leaves the real position only in InnoDB."""
        return self.committed_nothing and self.datadir in (DATADIR_EMPTY, DATADIR_SYSTEM)

    @property
    def is_standalone(self) -> bool:
        """Holds databases of its own but no Galera position: a server that ran without Galera."""
        return self.committed_nothing and self.datadir == DATADIR_DATA

    @property
    def is_candidate(self) -> bool:
        """Could bootstrap: belongs to a cluster (non-zero uuid) and knows its position."""
        return not self.has_zero_uuid and self.effective_seqno is not None

    @property
    def is_unknown(self) -> bool:
        """Where this node stands cannot be told: it may hold transactions nobody else has."""
        return not self.is_candidate and not self.committed_nothing

    def member_uuids(self) -> list[str]:
        """The uuids of the component's members, one per member (a dead incarnation not yet evicted
        counts as a member of its own)."""
        return [m.split("=", 1)[0] for m in self.members.split(",") if m]

    def member_names(self) -> set[str]:
        """The names (wsrep_node_name) of the component's members; a dead incarnation not yet evicted still
        lists its node's name."""
        return {m.split("=", 1)[1] for m in self.members.split(",") if "=" in m}

    def position(self) -> str:
        """``seqno 42``, ``recovered seqno 42``, ``last committed 42`` or ``position unknown``."""
        if self.seqno >= 0:
            return f"seqno {self.seqno}"
        if self.recovered_seqno is not None and self.recovered_seqno >= 0:
            return f"recovered seqno {self.recovered_seqno}"
        if self.effective_seqno is not None:
            return f"last committed {self.last_committed}"
        if self.committed_nothing:
            return "no Galera transaction committed"
        return "position unknown"

    def describe(self) -> str:
        """One line for reasons and logs, e.g. ``studio1 (seqno 42, safe_to_bootstrap=1)``."""
        if self.is_fresh:
            return f"{self.name} (fresh: no Galera history, no databases of its own)"
        parts = [self.position()]
        if self.is_standalone:
            parts.append("databases of its own")
        if self.is_unknown and self.note:
            parts.append(self.note)
        if self.has_zero_uuid and not self.committed_nothing:
            parts.append("uuid all zeros")
        if self.safe_to_bootstrap:
            parts.append("safe_to_bootstrap=1")
        if self.running:
            parts.append(f"running, {self.cluster_status or 'not in a cluster'}")
        return f"{self.name} ({', '.join(parts)})"

    # -- Redis hash -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "role": self.role,
            "uuid": self.uuid,
            "seqno": str(self.seqno),
            "safe_to_bootstrap": "1" if self.safe_to_bootstrap else "0",
            "recovered_seqno": "" if self.recovered_seqno is None else str(self.recovered_seqno),
            "running": "1" if self.running else "0",
            "cluster_status": self.cluster_status,
            "local_state": self.local_state,
            "heartbeat": repr(float(self.heartbeat)),
            "cluster_size": str(self.cluster_size),
            "last_committed": str(self.last_committed),
            "recovered_uuid": self.recovered_uuid,
            "datadir": self.datadir,
            "note": self.note,
            "members": self.members,
        }

    @classmethod
    def from_dict(cls, data: Mapping[Any, Any]) -> NodeState:
        """From a Redis hash (str or bytes keys and values); unknown keys are ignored."""
        d = {_text(k): _text(v) for k, v in data.items()}
        if not d.get("name"):
            raise ValueError("node state has no name")
        recovered = d.get("recovered_seqno", "").strip()
        return cls(
            name=d["name"],
            role=d.get("role", STUDIO) or STUDIO,
            uuid=(d.get("uuid") or ZERO_UUID).strip().lower(),
            seqno=_int(d.get("seqno", "-1") or "-1", "seqno"),
            safe_to_bootstrap=_bool(d.get("safe_to_bootstrap", "0"), "safe_to_bootstrap"),
            recovered_seqno=_int(recovered, "recovered_seqno") if recovered else None,
            running=_bool(d.get("running", "0"), "running"),
            cluster_status=d.get("cluster_status", ""),
            local_state=d.get("local_state", ""),
            heartbeat=_float(d.get("heartbeat", "0"), "heartbeat"),
            cluster_size=_int(d.get("cluster_size", "0") or "0", "cluster_size"),
            last_committed=_int(d.get("last_committed", "-1") or "-1", "last_committed"),
            recovered_uuid=d.get("recovered_uuid", "").strip().lower(),
            datadir=_datadir(d.get("datadir", "")),
            note=d.get("note", ""),
            members=d.get("members", ""),
        )

    @classmethod
    def from_grastate(cls, name: str, grastate: GraState, **fields: Any) -> NodeState:
        return cls(name=name, uuid=grastate.uuid, seqno=grastate.seqno,
                   safe_to_bootstrap=grastate.safe_to_bootstrap, **fields)


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`decide`; ``reason`` is the sentence shown to the person."""

    kind: str  # one of KINDS
    reason: str
    node: str | None = None  # BOOTSTRAP: who bootstraps
    primary: tuple[str, ...] = ()  # JOIN: data nodes already in the Primary Component
    missing: tuple[str, ...] = ()  # WAIT: data nodes that have not registered
    new_cluster: bool = False  # BOOTSTRAP of a brand-new cluster (every data node fresh)
    forced: bool = False  # BOOTSTRAP chosen by the operator's force, not by the rules
    seqno: int | None = None  # BOOTSTRAP: the winner's effective seqno

    @property
    def needs_safe_to_bootstrap(self) -> bool:
        """Bootstrapping a node with history: its grastate must say safe_to_bootstrap: 1 first."""
        return self.kind == BOOTSTRAP and not self.new_cluster

    def to_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "reason": self.reason,
            "node": self.node or "",
            "primary": ",".join(self.primary),
            "missing": ",".join(self.missing),
            "new_cluster": "1" if self.new_cluster else "0",
            "forced": "1" if self.forced else "0",
            "seqno": "" if self.seqno is None else str(self.seqno),
        }

    @classmethod
    def from_dict(cls, data: Mapping[Any, Any]) -> Decision:
        d = {_text(k): _text(v) for k, v in data.items()}
        kind = d.get("kind", "")
        if kind not in KINDS:
            raise ValueError(f"decision kind {kind!r} is not one of {', '.join(KINDS)}")
        seqno = d.get("seqno", "").strip()
        return cls(
            kind=kind,
            reason=d.get("reason", ""),
            node=d.get("node") or None,
            primary=tuple(n for n in d.get("primary", "").split(",") if n),
            missing=tuple(n for n in d.get("missing", "").split(",") if n),
            new_cluster=_bool(d.get("new_cluster", "0"), "new_cluster"),
            forced=_bool(d.get("forced", "0"), "forced"),
            seqno=_int(seqno, "seqno") if seqno else None,
        )


def _names(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _rank(state: NodeState, preferred: str) -> tuple[int, bool, bool, str]:
    """Sort key: highest seqno, then safe_to_bootstrap=1, then the preferred node, then by name."""
    seqno = state.effective_seqno
    assert seqno is not None  # only candidates are ranked
    return (-seqno, not (state.safe_to_bootstrap and state.seqno >= 0), state.name != preferred, state.name)


def _unknown_refusal(unknown: Sequence[NodeState]) -> Decision:
    who = _names([s.name for s in unknown])
    return Decision(REFUSE, (
        f"{'; '.join(s.describe() for s in unknown)}: where {who} stands cannot be told, so no node can be "
        f"shown to hold everything {who} committed and nothing bootstraps automatically. Ways out: make "
        f"`mariadbd --wsrep-recover` succeed on {who} (its error log says why it cannot read InnoDB) and run "
        "again; or force a node with --force-bootstrap NODE, accepting that whatever only "
        f"{who} committed is lost"))


def _forced(force: str, data: Sequence[str], registered: Mapping[str, NodeState],
            missing: Sequence[str]) -> Decision:
    """The operator's choice always wins (it is the way out of every refusal), with a plain statement of
    what it loses; only a node that has not registered cannot be forced yet."""
    if force not in data:
        return Decision(REFUSE, f"force names {force!r}, which is not a data node; use one of {_names(data)}")
    if force not in registered:
        return Decision(WAIT, f"waiting for {force} (forced to bootstrap) to register; start its agent",
                        missing=tuple(missing))
    me = registered[force]
    everyone_fresh = not missing and all(s.is_fresh for s in registered.values())
    notes = []
    if missing:
        notes.append(f"{_names(missing)} has not registered; whatever it committed beyond {force} will be lost "
                     "when it rejoins")
    if me.is_unknown:
        notes.append(f"{force}'s own position is unknown: it starts from whatever its InnoDB holds")
    others = [s for n, s in registered.items() if n != force]
    mine = me.effective_seqno
    ahead = [s for s in others if s.is_candidate and s.effective_seqno is not None
             and (mine is None or s.effective_seqno > mine)]
    if ahead:
        notes.append(f"{_names([s.describe() for s in ahead])} {'is' if len(ahead) == 1 else 'are'} ahead of "
                     f"{force}: those later transactions will be lost")
    unknown = [s for s in others if s.is_unknown]
    if unknown:
        notes.append(f"{_names([s.describe() for s in unknown])}: whatever only it committed will be lost")
    standalone = [s for s in others if s.is_standalone]
    if standalone:
        notes.append(f"{_names([s.name for s in standalone])} holds databases of its own; they are replaced by "
                     f"{force}'s data (full SST)")
    foreign = [s for s in others if not s.has_zero_uuid and not me.has_zero_uuid and s.galera_uuid != me.galera_uuid]
    if foreign:
        notes.append(f"{_names([s.name for s in foreign])} carries another cluster uuid and will be "
                     "overwritten by a full SST")
    if (me.is_fresh and not everyone_fresh
            and any(not s.is_fresh for s in others)):
        notes.append(f"{force} holds no data: every other node's data is replaced by its empty one")
    reason = f"forced by the operator: {me.describe()} bootstraps"
    if everyone_fresh:
        reason += " a new cluster"
    if notes:
        reason += "; " + "; ".join(notes)
    return Decision(BOOTSTRAP, reason, node=force, new_cluster=everyone_fresh, forced=True,
                    seqno=me.effective_seqno)


def decide(states: Mapping[str, NodeState], data_nodes: Sequence[str], preferred: str,
           force: str | None = None) -> Decision:
    """Decide from the registered states (keyed by node name) who bootstraps, or why nobody does.

    ``data_nodes`` are the Studio nodes' names (the Arbiter is not one); ``preferred`` is one of them;
    ``force`` (optional) names the data node the operator wants to bootstrap.
    """
    data = list(data_nodes)
    if not data:
        raise ValueError("decide() needs at least one data node")
    if preferred not in data:
        raise ValueError(f"preferred node {preferred!r} is not a data node ({_names(data)})")
    if force == "":
        force = None
    registered = {n: states[n] for n in data if n in states}

    # 1. A Primary Component exists: join it, whatever else is true.
    primary = [n for n in data if n in registered and registered[n].is_primary]
    if primary:
        reason = f"a Primary Component is running on {_names(primary)}: join it, nobody bootstraps"
        if force:
            reason += f" (force {force} ignored: a second Primary Component would split the cluster)"
        return Decision(JOIN, reason, primary=tuple(primary))

    missing = [n for n in data if n not in registered]
    # 2. The operator's choice.
    if force is not None:
        return _forced(force, data, registered, missing)

    # 3. Everyone must be seen before anyone can be judged the most advanced.
    if missing:
        return Decision(WAIT, f"waiting for {_names(missing)} to register "
                              f"({len(registered)} of {len(data)} data nodes registered)", missing=tuple(missing))

    nodes = [registered[n] for n in data]
    # 4. A brand-new cluster.
    if all(s.is_fresh for s in nodes):
        return Decision(BOOTSTRAP, f"every data node is fresh (no Galera history): {preferred} (preferred) "
                                   "bootstraps a new cluster", node=preferred, new_cluster=True)

    # 5. A node whose position cannot be told may hold the latest transactions: nobody is safe to pick.
    unknown = [s for s in nodes if s.is_unknown]
    if unknown:
        return _unknown_refusal(unknown)

    # 6. One cluster, one uuid.
    uuids = sorted({s.galera_uuid for s in nodes if not s.has_zero_uuid})
    if len(uuids) > 1:
        holders = "; ".join(f"{_names([s.name for s in nodes if s.galera_uuid == u])} has {u}" for u in uuids)
        return Decision(REFUSE, f"the data nodes carry different cluster UUIDs ({holders}): they are not one "
                                "cluster; force the node whose data is right (the other is overwritten by SST)")

    # 7. Databases that never were in Galera: keep them when they are the only data, never guess between two.
    candidates = [s for s in nodes if s.is_candidate]
    standalone = [s for s in nodes if s.is_standalone]
    if standalone and (candidates or len(standalone) > 1):
        rivals = [s.name for s in candidates] + [s.name for s in standalone]
        return Decision(REFUSE, (
            f"{_names([s.describe() for s in standalone])}: {_names(rivals)} all hold data and only one can be "
            "kept (the others are replaced by a full SST); force the node whose data is right with "
            "--force-bootstrap NODE"))
    if standalone:
        keeper = standalone[0]
        others = [s.name for s in nodes if s is not keeper]
        return Decision(BOOTSTRAP, (
            f"{keeper.describe()} is the only node with data: {keeper.name} bootstraps a new cluster keeping "
            f"its databases; {_names(others)} (fresh) join by a full SST"), node=keeper.name, new_cluster=True)

    # 8. The most advanced candidate.
    ranked = sorted(candidates, key=lambda s: _rank(s, preferred))
    winner = ranked[0]
    rest = ranked[1:]
    best = winner.effective_seqno
    tied = [s for s in rest if s.effective_seqno == best]
    if tied:
        why = f"{_names([winner.name] + [s.name for s in tied])} are tied at seqno {best}; {winner.name} wins the tie"
        if winner.safe_to_bootstrap and winner.seqno >= 0 and not any(s.safe_to_bootstrap for s in tied):
            why += " (safe_to_bootstrap=1: it left the cluster last)"
        elif winner.name == preferred:
            why += " (preferred)"
        else:
            why += " (by name)"
    else:
        why = f"{winner.describe()} has the highest position"
    reason = f"{why}: {winner.name} bootstraps"
    behind = [s for s in rest if s.effective_seqno != best]
    if behind:
        reason += f"; {'; '.join(s.describe() for s in behind)} will catch up by IST or SST"
    passed = [s for s in behind if s.safe_to_bootstrap and s.seqno >= 0]
    if passed:
        reason += (f" ({_names([s.name for s in passed])} says safe_to_bootstrap=1 but is behind: "
                   "the higher position wins)")
    fresh = [s.name for s in nodes if s.is_fresh]
    if fresh:
        reason += f"; {_names(fresh)} (fresh) joins by a full SST"
    return Decision(BOOTSTRAP, reason, node=winner.name, seqno=best)
