"""The controller's cache of the version strings the software check asks the nodes' binaries for.

``mariadbd --version`` costs a node ~30 ms of CPU (a 26 MB C++ binary starting) on every check run, and says the
same as long as the binary and the option files it reads are the same.  So the facts probe
(:data:`wizard.checks.facts.SOFTWARE`) sends what this cache knows for the node, stats the binary (and, for
mariadbd, every option file it reads: ``--version`` says ``-log`` when the options enable a log) and runs
``--version`` only when that fingerprint differs from the cached one; the answers of binaries it ran come back
to be remembered here.  A changed binary (a package upgrade: a new inode, size, mtime or ctime) or a changed
option file is asked again.  Nothing is written on the nodes: ``check`` stays read-only there.

The file: ``$XDG_CACHE_HOME/studio-cluster/versions.json`` (else ``~/.cache/studio-cluster/versions.json``), one
JSON object ``{"entries": {"<node address>|<binary path>": {"key": [...], "text": "..."}}}``, replaced atomically
(a temporary file renamed over it); a file that cannot be read or parsed counts as empty and is replaced at the
next write.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from wizard.profile import atomic_write

MAX_ENTRIES = 256  # the oldest go first (a controller that checked many clusters)
_LOCK = threading.Lock()  # the nodes of one run remember at once


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "studio-cluster" / "versions.json"


def _entries(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items()
            if isinstance(k, str) and isinstance(v, dict) and isinstance(v.get("key"), list)
            and isinstance(v.get("text"), str)}


def known(address: str, path: Path | None = None) -> dict[str, list[Any]]:
    """What the cache holds for the node at ``address``: binary path -> [fingerprint, version text]."""
    prefix = address + "|"
    return {k[len(prefix):]: [v["key"], v["text"]] for k, v in _entries(path or cache_file()).items()
            if k.startswith(prefix)}


def remember(address: str, answers: dict[str, Any], path: Path | None = None) -> None:
    """Record ``answers`` (binary path -> [fingerprint, version text], as the facts probe returns them) for the
    node at ``address``.  Best effort: a cache that cannot be written is left as it is."""
    fresh = {f"{address}|{binary}": {"key": value[0], "text": value[1]} for binary, value in answers.items()
             if isinstance(value, list) and len(value) == 2 and isinstance(value[0], list)
             and isinstance(value[1], str)}
    if not fresh:
        return
    target = path or cache_file()
    with _LOCK:
        entries = _entries(target)
        for k in fresh:
            entries.pop(k, None)  # re-inserted last: the newest
        entries.update(fresh)
        while len(entries) > MAX_ENTRIES:
            entries.pop(next(iter(entries)))
        with contextlib.suppress(OSError):
            atomic_write(target, json.dumps({"entries": entries}, indent=0), mode=0o600)
