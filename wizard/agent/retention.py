"""The backup retention policy, pure and stdlib-only: ``backup prune`` (operator side) and the Arbiter's
scheduled backups (agent side) decide with the same code.

Keep the newest ``keep_last`` complete backups and (``keep_days`` > 0) every complete backup younger than that;
never remove the only verified backup (the newest verified one is kept when the rules would drop them all), never
one in progress; failed backups are always removed (they can never be restored).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

COMPLETE_STATES = ("complete", "verified", "verify failed")


class Item(NamedTuple):
    """One backup as the policy sees it: ``id``, start ``time`` (epoch s), ``state`` (complete, verified,
    verify failed, in progress, failed)."""

    id: str
    time: float
    state: str


class Decision(NamedTuple):
    """What prune does to one backup: ``keep`` or not, and why (one phrase)."""

    id: str
    keep: bool
    why: str


def select(items: Sequence[Item], keep_last: int, keep_days: int, now: float) -> list[Decision]:
    """One decision per item, newest first.  Raises ValueError when ``keep_last`` < 1."""
    if keep_last < 1:
        raise ValueError("keep_last must be at least 1 (prune never removes every backup)")
    newest_first = sorted(items, key=lambda e: (e.time, e.id), reverse=True)
    complete = [e for e in newest_first if e.state in COMPLETE_STATES]
    keep = {}
    for e in complete[:keep_last]:
        keep[e.id] = "among the newest %d" % keep_last
    if keep_days > 0:
        for e in complete:
            if e.id not in keep and now - e.time < keep_days * 86400:
                keep[e.id] = "younger than %d days" % keep_days
    verified = [e for e in complete if e.state == "verified"]
    if verified and not any(e.id in keep for e in verified):
        keep[verified[0].id] = "the newest verified backup"
    out = []
    for e in newest_first:
        if e.state == "in progress":
            out.append(Decision(e.id, True, "in progress"))
        elif e.id in keep:
            out.append(Decision(e.id, True, keep[e.id]))
        elif e.state not in COMPLETE_STATES:
            out.append(Decision(e.id, False, "failed: never restorable"))
        else:
            out.append(Decision(e.id, False, "not among the newest %d%s" % (
                keep_last, " nor younger than %d days" % keep_days if keep_days > 0 else "")))
    return out
