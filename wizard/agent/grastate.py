"""Galera's saved state (``grastate.dat``) and recovered positions.

Debian's MariaDB writes ``<datadir>/grastate.dat`` as::

    # GALERA saved state
    version: 2.1
    uuid:    9f0d2c4e-...
    seqno:   -1
    safe_to_bootstrap: 0

``seqno: -1`` while the node runs or after a crash; then the real position is recovered from InnoDB
with ``mariadbd --wsrep-recover`` (log line ``WSREP: Recovered position: <uuid>:<seqno>``), which
``/usr/bin/galera_recovery`` turns into ``--wsrep_start_position=<uuid>:<seqno>`` on stdout.

Standard library only, Python 3.9+ (this runs on the nodes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
UUID_RE = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_LINE_RE = re.compile(r"^\s*([A-Za-z_]+)\s*:\s*(.*?)\s*$")
# "WSREP: Recovered position: <uuid>:<seqno>" (mariadbd --wsrep-recover) and
# "--wsrep_start_position=<uuid>:<seqno>" (galera_recovery); newer servers may append ",<gtid>".
_POSITION_RE = re.compile(
    r"(?:WSREP:\s*Recovered position:\s*|--wsrep[-_]start[-_]position=)(" + UUID_RE + r"):(-?\d+)"
)


class GraStateError(ValueError):
    """grastate.dat exists but cannot be understood; the message says what is wrong with it."""


@dataclass(frozen=True)
class GraState:
    uuid: str = ZERO_UUID
    seqno: int = -1
    safe_to_bootstrap: bool = False

    @property
    def has_zero_uuid(self) -> bool:
        return self.uuid == ZERO_UUID

    @property
    def is_fresh(self) -> bool:
        """Never part of a cluster: zero uuid and no position (also what a missing file means)."""
        return self.has_zero_uuid and self.seqno < 0


FRESH = GraState()


def parse_grastate(text: str | None) -> GraState:
    """Parse grastate.dat's text; ``None`` or an empty text (no file) is a fresh node.

    A fresh node has the zero uuid and seqno -1, which the election never picks while another node
    has history.  Raises :class:`GraStateError` on a non-empty file without a ``uuid`` or ``seqno``
    line or with values that are not a UUID / number: a garbled position must not pass silently.
    """
    if text is None or not text.strip():
        return FRESH
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        m = _LINE_RE.match(line)
        if m:
            fields[m.group(1).lower()] = m.group(2)
    missing = [k for k in ("uuid", "seqno") if k not in fields]
    if missing:
        raise GraStateError("grastate.dat has no " + " and no ".join(missing) + " line")
    uuid = fields["uuid"].lower()
    if not re.fullmatch(UUID_RE, uuid):
        raise GraStateError(f"grastate.dat uuid {fields['uuid']!r} is not a UUID")
    try:
        seqno = int(fields["seqno"])
    except ValueError:
        raise GraStateError(f"grastate.dat seqno {fields['seqno']!r} is not a number") from None
    if seqno < -1:
        raise GraStateError(f"grastate.dat seqno {seqno} is below -1")
    safe_text = fields.get("safe_to_bootstrap", "0")
    if safe_text not in ("0", "1"):
        raise GraStateError(f"grastate.dat safe_to_bootstrap {safe_text!r} is neither 0 nor 1")
    return GraState(uuid=uuid, seqno=seqno, safe_to_bootstrap=safe_text == "1")


def read_grastate(path: str) -> GraState:
    """Read and parse a grastate.dat; a missing file is a fresh node."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except FileNotFoundError:
        return FRESH
    try:
        return parse_grastate(text)
    except GraStateError as exc:
        raise GraStateError(f"{path}: {str(exc).replace('grastate.dat ', '')}") from None


def set_safe_to_bootstrap(text: str) -> str:
    """The same file with ``safe_to_bootstrap: 1`` (the line is added when absent)."""
    lines = text.splitlines(True)
    out: list[str] = []
    found = False
    for line in lines:
        m = _LINE_RE.match(line)
        if m and m.group(1).lower() == "safe_to_bootstrap":
            ending = "\n" if line.endswith("\n") else ""
            out.append("safe_to_bootstrap: 1" + ending)
            found = True
        else:
            out.append(line)
    if not found:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.append("safe_to_bootstrap: 1\n")
    return "".join(out)


def parse_recovered_position(output: str) -> tuple[str, int] | None:
    """``(uuid, seqno)`` from ``--wsrep-recover`` output or galera_recovery's stdout; None if absent.

    The last position in the text wins (a log may hold several runs).  The seqno may be -1: the
    server found no position, which the caller must treat as unknown.
    """
    matches = _POSITION_RE.findall(output)
    if not matches:
        return None
    uuid, seqno = matches[-1]
    return uuid.lower(), int(seqno)


# The server's own schemas: a datadir holding only these has no databases of its own.
SYSTEM_SCHEMAS = frozenset({"mysql", "performance_schema", "sys", "lost+found"})


def classify_datadir(entries: list[tuple[str, bool]] | None) -> str:
    """``"empty"``, ``"system"`` or ``"data"`` (see :mod:`wizard.agent.election`) from the datadir's
    ``(name, is_dir)`` entries; ``None`` (no datadir) is ``"empty"``.

    A datadir is *initialised* when it holds InnoDB's system tablespace (``ibdata1``) or the ``mysql``
    schema; every other directory that is not hidden (``.sst``, ``#innodb_temp``) is a database of its own.
    """
    if entries is None:
        return "empty"
    names = {name for name, _ in entries}
    if "ibdata1" not in names and "mysql" not in names:
        return "empty"
    for name, is_dir in entries:
        if is_dir and name not in SYSTEM_SCHEMAS and not name.startswith((".", "#")):
            return "data"
    return "system"


def render_grastate(uuid: str, seqno: int, safe_to_bootstrap: bool) -> str:
    """A grastate.dat as Galera 4 writes it."""
    return ("# GALERA saved state\nversion: 2.1\nuuid:    %s\nseqno:   %d\nsafe_to_bootstrap: %d\n"
            % (uuid, seqno, 1 if safe_to_bootstrap else 0))
