"""The health verdict behind each Studio node's endpoint (what the authoring name's DNS record checks).

A pure function of the node's wsrep status, unit-tested on every case.  Standard library only,
Python 3.9+ (this runs on the nodes).

Healthy means the node can take authoring traffic now:
- Primary and ``Synced``;
- or Primary and ``Donor/Desynced`` while the SST method does not block the donor: mariabackup copies
  InnoDB online and keeps serving reads and writes (facts.md: "A donor under mariabackup SST is
  Donor/Desynced but keeps serving reads and writes").  Without this the only serving node reports
  unhealthy for the whole first join, and PowerDNS's ifurlup picks a target at random, possibly the
  joiner.  rsync and mysqldump hold the donor read-locked for the whole transfer: not healthy.
A joiner (``Joining``, ``Joined``, ``Joining: receiving State Transfer``) never is, nor is a node outside
a Primary Component.
"""

from __future__ import annotations

# SST methods whose donor keeps serving writes during the transfer (MariaDB docs: mariabackup SST
# takes only a brief BACKUP STAGE lock; rsync and mysqldump block the donor throughout).
NON_BLOCKING_SST = frozenset({"mariabackup"})


def refusing(reject_queries: str) -> str:
    """``@@wsrep_reject_queries`` normalised when the node refuses client queries (``ALL``, ``ALL_KILL``); "" for
    ``NONE`` or a value not read."""
    value = reject_queries.strip().upper()
    return "" if value in ("", "NONE") else value


def health_verdict(cluster_status: str, local_state: str, sst_method: str = "",
                   reject_queries: str = "") -> tuple[bool, str]:
    """``(ok, reason)`` for a node with ``wsrep_cluster_status`` / ``wsrep_local_state_comment``
    (empty strings when the server does not answer), ``@@wsrep_sst_method`` and ``@@wsrep_reject_queries``
    (``NONE``, ``ALL`` or ``ALL_KILL``; empty when not read).  A node refusing client queries is never healthy,
    whatever its state: a rolling restart drains a node that way before it stops it, so the authoring name
    moves to the other node first."""
    reject = refusing(reject_queries)
    if reject and cluster_status:
        return False, "refuses client queries (wsrep_reject_queries=%s)" % reject
    if not cluster_status:
        return False, "mariadbd does not answer"
    if cluster_status != "Primary":
        return False, "not in a Primary Component (%s)" % cluster_status
    if local_state == "Synced":
        return True, "Primary and Synced"
    if local_state.startswith("Donor"):
        method = sst_method.strip().lower()
        if method in NON_BLOCKING_SST:
            return True, "Primary and donating by %s, which keeps serving" % method
        return False, "donating by %s, which blocks this node" % (method or "an unknown SST method")
    return False, "Primary but %s" % (local_state or "in an unknown state")


def node_verdict(db: tuple[bool, str], studio: tuple[bool, str] | None) -> tuple[bool, str]:
    """The endpoint's ``(ok, reason)`` for a node: the database verdict (:func:`health_verdict`) and, on a node
    with Crafter Studio, Studio's own (``(ok, reason)`` of its status URL; None on a node without Crafter,
    which keeps the database verdict alone).  Healthy only when both are."""
    db_ok, db_why = db
    if studio is None:
        return db_ok, db_why
    studio_ok, studio_why = studio
    if db_ok and studio_ok:
        return True, "%s; %s" % (db_why, studio_why)
    if not db_ok:
        return False, db_why if studio_ok else "%s; %s" % (db_why, studio_why)
    return False, studio_why
