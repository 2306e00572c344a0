"""Accepting a node's host key is an explicit act: ``--accept-host-key NODE=SHA256:...`` on the command line.

The fingerprint is the one the refusal printed (the host offered it) and the person compared with the host
itself.  The key is recorded in the node's known_hosts file only when the key the node offers now has that
fingerprint; otherwise nothing is written.  Nothing is ever trusted on first use without it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from wizard.profile import Profile
from wizard.remote import NodeConnection, RunLog

_ACCEPT_RE = re.compile(r"(?P<node>[^=\s]+)=(?P<fp>SHA256:[A-Za-z0-9+/]{43}=?)")


class AcceptUsageError(ValueError):
    """An --accept-host-key value that is not ``NODE=SHA256:<43 base64 characters>`` or names no node."""


def parse_accepts(values: Iterable[str], profile: Profile) -> dict[str, str]:
    """``["studio1=SHA256:..."]`` -> ``{"studio1": "SHA256:..."}``.  Raises AcceptUsageError naming the
    value and the fix."""
    out: dict[str, str] = {}
    names = [n.name for n in profile.nodes]
    for value in values:
        m = _ACCEPT_RE.fullmatch(value.strip())
        if m is None:
            raise AcceptUsageError(f"--accept-host-key {value!r} is not NODE=SHA256:FINGERPRINT; copy it from the "
                                   "refusal, e.g. --accept-host-key studio1=SHA256:" + "A" * 43)
        node, fp = m.group("node"), m.group("fp")
        if node not in names:
            raise AcceptUsageError(f"--accept-host-key names {node!r}, which is not a node of this profile; "
                                   f"use one of {', '.join(names)}")
        if node in out and out[node] != fp:
            raise AcceptUsageError(f"--accept-host-key gives two fingerprints for {node}; give the one it offers")
        out[node] = fp
    return out


def accept_host_keys(profile: Profile, accepts: dict[str, str], *, runlog: RunLog | None = None,
                     say: Callable[[str], None] = print) -> None:
    """For each node in `accepts`, record its host key when it offers exactly the given fingerprint.

    Raises wizard.remote.HostKeyError (another key is offered: nothing written) or UnreachableError."""
    for name, fp in accepts.items():
        conn = NodeConnection(profile.node(name), runlog)
        try:
            say(conn.accept_host_key(fp))
        finally:
            conn.close()
