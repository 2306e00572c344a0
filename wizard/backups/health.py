"""The backups as ``status`` and the monitor show them: the newest complete backup, the last failure, warnings.

A warning never changes the cluster's verdict (healthy / degraded are about serving authors); it is a
separate line.  Reading the catalog is one SSH command to the Arbiter (:data:`catalog.READ_CATALOG_PY`) with a
short timeout; when it cannot be read the answer is *unknown* with the reason, never an exception.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from wizard.backups.catalog import READ_CATALOG_PY, Entry, classify, human_age, human_size
from wizard.profile import Profile
from wizard.remote import Remote, RemoteError

DEFAULT_MAX_AGE_S = 26 * 3600.0  # a daily backup plus two hours of slack
SLACK_S = 2 * 3600.0
PERIOD_S = {"hourly": 3600.0, "weekly": 7 * 86400.0}  # daily and HH:MM: a day


def max_age_for(schedule: str | None) -> float:
    """Seconds after which the newest complete backup is too old: the schedule's period (``backups.schedule``:
    hourly, daily, weekly, HH:MM) plus two hours; without a schedule (backups by hand) a day plus two hours.
    Pure."""
    if not schedule:
        return DEFAULT_MAX_AGE_S
    return PERIOD_S.get(schedule.strip().lower(), 86400.0) + SLACK_S


@dataclass(frozen=True)
class BackupHealth:
    """What the backups look like now.

    ``known``: the catalog could be read (else ``error`` says why); ``count`` backups in the catalog;
    ``newest_complete`` the newest complete one as ``{id, state, age_s, size, donor, position}`` (state
    complete / verified / verify failed) or None; ``last_failure`` ``{id, reason, age_s, donor}`` when the
    newest finished backup failed, else None; ``in_progress`` the id of a backup being received, or "";
    ``warnings`` one sentence each (a last failed backup, none complete younger than ``max_age_s`` seconds,
    a newest complete one that failed verify)."""

    known: bool
    error: str = ""
    count: int = 0
    newest_complete: dict[str, Any] | None = None
    last_failure: dict[str, Any] | None = None
    in_progress: str = ""
    warnings: list[str] = field(default_factory=list)
    max_age_s: float = DEFAULT_MAX_AGE_S

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BackupHealth:
        """The value :meth:`to_dict` gave ``d`` (unknown keys ignored)."""
        keys = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in keys})

    def line(self) -> str:
        """One line: ``backups: newest complete <id>, 3m old, 17.9 MB, verified`` or why it is unknown."""
        if not self.known:
            return f"backups unknown: {self.error}"
        parts = []
        nc = self.newest_complete
        if nc is not None:
            parts.append(f"newest complete {nc['id']}, {human_age(nc['age_s'])} old, {human_size(nc['size'])}, "
                         f"{nc['state']}")
        else:
            parts.append(f"no complete backup ({self.count} in the catalog)")
        if self.in_progress:
            parts.append(f"{self.in_progress} in progress")
        return "backups: " + "; ".join(parts)


def unknown(why: str, max_age_s: float = DEFAULT_MAX_AGE_S) -> BackupHealth:
    return BackupHealth(False, why, max_age_s=max_age_s)


def summarize(entries: list[Entry], now: float, max_age_s: float = DEFAULT_MAX_AGE_S) -> BackupHealth:
    """The health of a catalog (``entries`` in any order, ``now`` epoch s).  Pure."""
    ordered = sorted(entries, key=lambda e: (e.time, e.id))
    complete = [e for e in ordered if e.complete]
    finished = [e for e in ordered if e.state != "in progress"]
    running = [e for e in ordered if e.state == "in progress"]
    warnings: list[str] = []
    newest = complete[-1] if complete else None
    nc: dict[str, Any] | None = None
    age = 0.0
    if newest is not None:
        age = max(0.0, now - newest.time)
        nc = {"id": newest.id, "state": newest.state, "age_s": age, "size": newest.size, "donor": newest.donor,
              "position": newest.position}
    failure: dict[str, Any] | None = None
    if finished and finished[-1].state == "failed":
        f = finished[-1]
        failed_age = max(0.0, now - f.time)
        failure = {"id": f.id, "reason": f.reason, "age_s": failed_age, "donor": f.donor}
        warnings.append(f"the last backup {f.id} failed {human_age(failed_age)} ago: {f.reason}")
    if newest is None:
        warnings.append("no complete backup on the Arbiter: take one with `studio-cluster backup take PROFILE`")
    elif age > max_age_s:
        warnings.append(f"no complete backup younger than {human_age(max_age_s)}: the newest, {newest.id}, is "
                        f"{human_age(age)} old")
    if newest is not None and newest.state == "verify failed":
        warnings.append(f"the newest complete backup {newest.id} failed verify: {newest.reason}")
    return BackupHealth(True, "", len(entries), nc, failure, running[-1].id if running else "", warnings, max_age_s)


def read_entries(profile: Profile, remote: Remote, *, timeout: float = 5.0, now: float | None = None) -> list[Entry]:
    """Every backup in the catalog (oldest first), read by one SSH command to the Arbiter within ``timeout``
    seconds.  Raises :class:`wizard.remote.RemoteError` (unreachable, timeout) or ValueError (an answer
    that is not the catalog)."""
    now = time.time() if now is None else now
    res = remote[profile.arbiter.name].run(READ_CATALOG_PY(profile.backups.root),
                                           timeout=timeout, what="read the backup catalog")
    lines = res.stdout.strip().splitlines()
    if not lines:
        raise ValueError("the Arbiter's catalog reader printed nothing")
    raw = json.loads(lines[-1])
    if not isinstance(raw, list):
        raise ValueError("the Arbiter's catalog reader did not print a list")
    return sorted((classify(r, now) for r in raw), key=lambda e: (e.time, e.id))


def read_health(profile: Profile, remote: Remote, *, timeout: float = 5.0,
                max_age_s: float | None = None) -> BackupHealth:
    """:func:`summarize` of the catalog on the Arbiter, or :func:`unknown` with why it could not be read
    (never raises for an unreachable Arbiter or a broken answer).  ``max_age_s``: default
    :func:`max_age_for` the profile's schedule."""
    if max_age_s is None:
        max_age_s = max_age_for(profile.backups.schedule)
    try:
        entries = read_entries(profile, remote, timeout=timeout)
    except RemoteError as exc:
        return unknown(str(exc), max_age_s)
    except (ValueError, KeyError, TypeError) as exc:
        return unknown(f"the catalog could not be read ({type(exc).__name__}: {exc})", max_age_s)
    return summarize(entries, time.time(), max_age_s)
