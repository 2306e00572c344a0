"""Who is in a Primary Component, by identity: a member counts by its gcomm uuid, never by the size.

After ``kill -9`` of garbd the dead incarnation stays in the component until Galera evicts it
(evs.suspect_timeout, 5 s by default), so a size of 3 right after a restart can be two data nodes and
a corpse.  Counting the new garbd by its own uuid (``my_uuid`` of its ``gvwstate.dat``) among the
members the data nodes list (``mysql.wsrep_cluster_members``) tells the truth.

Standard library only, Python 3.9+ (this runs on the nodes).
"""

from __future__ import annotations

from collections.abc import Sequence


def parse_gvwstate_uuid(text: str) -> str:
    """``my_uuid`` from a gvwstate.dat's text (garbd's or mariadbd's), "" when absent."""
    for line in text.splitlines():
        if line.startswith("my_uuid:"):
            return line.split(":", 1)[1].strip()
    return ""


def is_member(uuid: str, members: Sequence[str], expected_size: int) -> bool:
    """``uuid`` is one of ``members`` (the component's member uuids) and the component holds exactly
    ``expected_size`` members: no dead incarnation among them, nobody missing."""
    return bool(uuid) and uuid in members and len(members) == expected_size
