"""``backup prune``: remove what the retention policy no longer keeps.

:func:`select` is the pure policy over catalog entries: keep the newest ``keep_last`` complete backups
and (``keep_days`` > 0) every complete backup younger than that; never remove the only verified backup
(the newest verified one is kept when the rules would drop them all), never one in progress; failed
backups are always removed (they can never be restored).
"""

from __future__ import annotations

from dataclasses import dataclass

from wizard.backups.catalog import Entry
from wizard.profile import Profile
from wizard.remote import Remote, sh


@dataclass(frozen=True)
class Decision:
    """What prune does to one backup: ``keep`` or not, and why (one phrase)."""

    id: str
    keep: bool
    why: str


def select(entries: list[Entry], keep_last: int, keep_days: int, now: float) -> list[Decision]:
    """One decision per entry, newest first.  Pure."""
    if keep_last < 1:
        raise ValueError("keep_last must be at least 1 (prune never removes every backup)")
    newest_first = sorted(entries, key=lambda e: (e.time, e.id), reverse=True)
    complete = [e for e in newest_first if e.complete]
    keep: dict[str, str] = {}
    for e in complete[:keep_last]:
        keep[e.id] = f"among the newest {keep_last}"
    if keep_days > 0:
        for e in complete:
            if e.id not in keep and now - e.time < keep_days * 86400:
                keep[e.id] = f"younger than {keep_days} days"
    verified = [e for e in complete if e.state == "verified"]
    if verified and not any(e.id in keep for e in verified):
        keep[verified[0].id] = "the newest verified backup"
    out = []
    for e in newest_first:
        if e.state == "in progress":
            out.append(Decision(e.id, True, "in progress"))
        elif e.id in keep:
            out.append(Decision(e.id, True, keep[e.id]))
        elif not e.complete:
            out.append(Decision(e.id, False, "failed: never restorable"))
        else:
            out.append(Decision(e.id, False, "older than the retention policy"))
    return out


def remove(profile: Profile, remote: Remote, entries: list[Entry], decisions: list[Decision]) -> list[str]:
    """Delete the backups ``decisions`` do not keep; returns their ids.  Only paths under backups.root."""
    root = str(profile.backups.root).rstrip("/") + "/"
    by_id = {e.id: e for e in entries}
    gone = [d.id for d in decisions if not d.keep]
    paths = [by_id[i].path for i in gone if by_id[i].path.startswith(root) and "/" not in by_id[i].id]
    if paths:
        remote[profile.arbiter.name].run(sh("rm", "-rf", "--", *paths), timeout=600, what="remove pruned backups")
    return gone
