"""``backup prune``: remove what the retention policy no longer keeps.

:func:`select` applies the pure policy of :mod:`wizard.agent.retention` (shared with the Arbiter's scheduled
backups) to catalog entries.
"""

from __future__ import annotations

from wizard.agent import retention
from wizard.agent.retention import Decision, Item
from wizard.agent.rootcmd import RootScript
from wizard.backups.catalog import Entry
from wizard.profile import Profile
from wizard.remote import Remote

RM_PRUNED = RootScript("backup-prune-remove", "rm -rf -- {paths}")


def select(entries: list[Entry], keep_last: int, keep_days: int, now: float) -> list[Decision]:
    """One decision per entry, newest first (the policy: :mod:`wizard.agent.retention`).  Pure."""
    return retention.select([Item(e.id, e.time, e.state) for e in entries], keep_last, keep_days, now)


def remove(profile: Profile, remote: Remote, entries: list[Entry], decisions: list[Decision]) -> list[str]:
    """Delete the backups ``decisions`` do not keep; returns their ids.  Only paths under backups.root."""
    root = str(profile.backups.root).rstrip("/") + "/"
    by_id = {e.id: e for e in entries}
    gone = [d.id for d in decisions if not d.keep]
    paths = [by_id[i].path for i in gone if by_id[i].path.startswith(root) and "/" not in by_id[i].id]
    if paths:
        remote[profile.arbiter.name].run(RM_PRUNED(paths=paths), timeout=600, what="remove pruned backups")
    return gone
