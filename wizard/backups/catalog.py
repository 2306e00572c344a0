"""``backup list``: what the backup root on the Arbiter holds, and the state of each backup.

A backup is *complete* only when its ``manifest.json`` exists and says so (the receiver writes it last);
*verified* / *verify failed* once ``backup verify`` ran on it; anything else is *in progress* (its receiver
still runs) or *failed* with the reason the receiver or ``backup take`` recorded.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from wizard.agent.rootcmd import RootScript
from wizard.profile import Profile
from wizard.remote import Remote

READ_CATALOG = r"""
import json, os, sys
root = sys.argv[1]
def load(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None
def alive(pid):
    try:
        with open("/proc/%s/cmdline" % int(pid), "rb") as fh:
            return b"receiver" in fh.read()
    except (OSError, ValueError, TypeError):
        return False
out = []
try:
    names = sorted(os.listdir(root))
except OSError:
    names = []
for name in names:
    d = os.path.join(root, name)
    if name.startswith(".") or not os.path.isdir(d):
        continue
    m = load(os.path.join(d, "manifest.json"))
    if m is not None:
        m["files"] = len(m.get("files") or {})
        if isinstance(m.get("content"), dict):
            m["content"]["files"] = len(m["content"].get("files") or {})
    r = load(os.path.join(d, "receiver.json")) or {}
    size = 0
    for part in ("data", "content") if m is None else ():
        for base, _dirs, files in os.walk(os.path.join(d, part)):
            for f in files:
                try:
                    size += os.lstat(os.path.join(base, f)).st_size
                except OSError:
                    pass
    out.append({"id": name, "path": d, "manifest": m, "receiver": r, "receiver_alive": alive(r.get("pid")),
                "failure": load(os.path.join(d, "failure.json")), "verify": load(os.path.join(d, "verify.json")),
                "partial_size": size, "mtime": os.stat(d).st_mtime})
print(json.dumps(out))
"""
READ_CATALOG_PY = RootScript("backup-read-catalog", READ_CATALOG, kind="py")


@dataclass(frozen=True)
class Entry:
    """One backup directory: ``state`` is complete / verified / verify failed / in progress / failed;
    ``time`` the start (epoch s), ``age_s`` seconds since, ``size`` bytes on disk, ``position``
    ``uuid:seqno`` (complete only), ``reason`` why it failed or what verify found, ``content_repos`` how many of
    Crafter's content repositories it carries (None: a database-only backup) and ``content_names`` their paths
    under the content directory (``repos/global``); ``size`` counts them too."""

    id: str
    path: str
    state: str
    time: float
    age_s: float
    size: int
    donor: str
    position: str
    seqno: int | None
    gtid: str | None
    reason: str
    verified_at: float | None
    content_names: list[str] | None = None

    @property
    def complete(self) -> bool:
        return self.state in ("complete", "verified", "verify failed")

    @property
    def content_repos(self) -> int | None:
        return None if self.content_names is None else len(self.content_names)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"complete": self.complete, "content_repos": self.content_repos}


def classify(raw: dict[str, Any], now: float) -> Entry:
    """One entry from what READ_CATALOG read for a directory.  Pure."""
    m = raw.get("manifest")
    r = raw.get("receiver") or {}
    v = raw.get("verify")
    failure = raw.get("failure")
    reason = ""
    if m is not None and m.get("complete") is True:
        state = "complete"
        if v is not None:
            state = "verified" if v.get("ok") else "verify failed"
            reason = v.get("summary", "")
        # verify reads the position the copy really holds (InnoDB's own); mariabackup's recorded one can be ahead
        pos = (v or {}).get("data_position") or m.get("position") or {}
        started = float(m.get("started_epoch") or raw.get("mtime") or now)
        content = m.get("content") if isinstance(m.get("content"), dict) else None
        size = int(m.get("size") or 0) + int((content or {}).get("size") or 0)
        return Entry(raw["id"], raw["path"], state, started, max(0.0, now - started), size,
                     m.get("donor", ""), f"{pos.get('uuid')}:{pos.get('seqno')}", pos.get("seqno"), m.get("gtid"),
                     reason, float(v["verified_epoch"]) if v and v.get("verified_epoch") else None,
                     list(content.get("repos") or []) if content else None)
    if r.get("state") not in ("complete", "failed") and raw.get("receiver_alive") and failure is None:
        state, reason = "in progress", f"receiving ({r.get('state', 'starting')})"
    else:
        state = "failed"
        reason = ((failure or {}).get("reason") or r.get("reason")
                  or ("the receiver stopped before the manifest was written" if r else "no receiver state"))
    started = float(r.get("started") or raw.get("mtime") or now)
    donor = raw["id"].split("-", 1)[1] if "-" in raw["id"] else ""
    return Entry(raw["id"], raw["path"], state, started, max(0.0, now - started), int(raw.get("partial_size") or 0),
                 donor, "", None, None, reason, None)


def read_catalog(profile: Profile, remote: Remote) -> list[dict[str, Any]]:
    res = remote[profile.arbiter.name].run(READ_CATALOG_PY(profile.backups.root),
                                           what="read the backup catalog")
    raw: list[dict[str, Any]] = json.loads(res.stdout.strip().splitlines()[-1])
    return raw


def list_backups(profile: Profile, remote: Remote, now: float | None = None) -> list[Entry]:
    """Every backup directory under ``backups.root`` on the Arbiter, oldest first."""
    now = time.time() if now is None else now
    return sorted((classify(r, now) for r in read_catalog(profile, remote)), key=lambda e: (e.time, e.id))


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def short_position(position: str | None) -> str:
    """``uuid:seqno`` as the first 8 characters of the uuid and the whole seqno (``b5cdb8d4:19``): the seqno is what
    tells backups of one history apart, and a table has no room for the whole uuid (``--json`` keeps it)."""
    if not position:
        return "-"
    uuid, sep, seqno = position.rpartition(":")
    return f"{uuid[:8]}:{seqno}" if sep and len(uuid) > 8 else position


def human_age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
