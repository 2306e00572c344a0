"""Host-key verification against a known_hosts file, matched as OpenSSH's ssh(1) matches it.

paramiko's own HostKeys parser raises on lines it does not understand (``@cert-authority``, key types it
lacks), which failed every node although OpenSSH connects.  This module reads the file itself:

* a line is ``[marker] patterns keytype base64 [comment]``; lines that cannot be parsed, ``@cert-authority``
  lines (host certificates are not used here) and unsupported key types are *skipped*, each listed once in
  :attr:`KnownHosts.skipped` (the caller reports them once);
* ``patterns`` is a comma list of host patterns (``*`` and ``?`` wildcards, ``!`` negation, case-insensitive)
  or one hashed name ``|1|salt|hmac-sha1``;
* the name looked up is ``host`` for port 22 and ``[host]:port`` otherwise (OpenSSH's put_host_port);
* status: a ``@revoked`` line with the presented key -> REVOKED; a line with the same key -> OK; a line of
  the same key type with another key -> CHANGED (the offending entry is named); no line of that type ->
  NEW.  As in OpenSSH's check_host_key (sshconnect.c, ``case HOST_NEW``: "checking without port
  identifier"), for a port other than 22 a NEW result is looked up once more under the plain host name,
  and the key is accepted when it matches there; a *different* key under the plain name does not count
  as a change for that port (OpenSSH reports it as unknown, not changed).

:func:`load` caches a parsed file by path, size and modification time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import threading
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import paramiko
from paramiko.pkey import UnknownKeyType

DEFAULT_PORT = 22


class Status(Enum):
    OK = "ok"
    NEW = "new"
    CHANGED = "changed"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Entry:
    """One usable line: `hosts` is the first field as written, `key` the public key."""

    path: str
    line: int
    hosts: str
    key: paramiko.PKey
    revoked: bool = False

    def matches(self, name: str) -> bool:
        """Whether this line's host field names `name` (``host`` or ``[host]:port``)."""
        return match_hosts(self.hosts, name)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Skipped:
    """A line that was not used, and why."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class Verdict:
    """The outcome for one presented key.

    `name` is the name it was looked up under (``[host]:port`` or ``host``); `entry` is the matching line
    (OK, REVOKED) or the first offending one (CHANGED); `via_plain_host` says an OK came from the plain
    host name's line for a non-22 port."""

    status: Status
    name: str
    entry: Entry | None = None
    via_plain_host: bool = False


def host_name(host: str, port: int) -> str:
    """The name OpenSSH looks up: ``host`` on port 22 (or 0), ``[host]:port`` otherwise."""
    return host if port in (0, DEFAULT_PORT) else f"[{host}]:{port}"


def _pattern_re(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _hashed_match(field_: str, name: str) -> bool:
    try:
        _, magic, salt_b64, hash_b64 = field_.split("|")
        if magic != "1":
            return False
        salt, want = base64.b64decode(salt_b64, validate=True), base64.b64decode(hash_b64, validate=True)
    except (ValueError, binascii.Error):
        return False
    got = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(got, want)


def match_hosts(hosts: str, name: str) -> bool:
    """OpenSSH's match_hostname for one known_hosts host field: a hashed name, or a comma list of patterns
    where any negated match (``!pattern``) excludes and otherwise any positive match includes.  The name
    is lower-cased first, as ssh(1) does with the host it connects to."""
    name = name.lower()
    if hosts.startswith("|"):
        return _hashed_match(hosts, name)
    found = False
    for raw in hosts.split(","):
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        if pattern and _pattern_re(pattern).fullmatch(name):
            if negate:
                return False
            found = True
    return found


def _parse_key(keytype: str, blob: str) -> paramiko.PKey:
    data = base64.b64decode(blob, validate=True)
    return paramiko.PKey.from_type_string(keytype, data)


def _same(a: paramiko.PKey, b: paramiko.PKey) -> bool:
    return a.get_name() == b.get_name() and a.asbytes() == b.asbytes()


@dataclass
class KnownHosts:
    """A parsed known_hosts file: usable `entries` and `skipped` lines (empty when the file is absent)."""

    path: str
    entries: list[Entry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str, path: str) -> KnownHosts:
        """Parse known_hosts `text`; never raises on a bad line (it lands in `skipped`)."""
        kh = cls(path)
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            marker = fields.pop(0) if fields[0].startswith("@") else None
            if marker == "@cert-authority":
                kh.skipped.append(Skipped(path, number, "@cert-authority line (host certificates are not used)"))
                continue
            if marker not in (None, "@revoked"):
                kh.skipped.append(Skipped(path, number, f"unknown marker {marker}"))
                continue
            if len(fields) < 3:
                kh.skipped.append(Skipped(path, number, "not 'hosts keytype key'"))
                continue
            hosts, keytype, blob = fields[:3]
            try:
                key = _parse_key(keytype, blob)
            except UnknownKeyType:
                kh.skipped.append(Skipped(path, number, f"key type {keytype} is not supported"))
                continue
            except (ValueError, binascii.Error, paramiko.SSHException) as exc:
                kh.skipped.append(Skipped(path, number, f"{keytype} key cannot be read ({exc or type(exc).__name__})"))
                continue
            kh.entries.append(Entry(path, number, hosts, key, revoked=marker == "@revoked"))
        return kh

    def _status(self, name: str, key: paramiko.PKey) -> tuple[Status, Entry | None]:
        changed: Entry | None = None
        ok: Entry | None = None
        for entry in self.entries:
            if not entry.matches(name):
                continue
            if entry.revoked:
                if _same(entry.key, key):
                    return Status.REVOKED, entry
                continue
            if entry.key.get_name() != key.get_name():
                continue
            if _same(entry.key, key):
                ok = ok or entry
            else:
                changed = changed or entry
        if ok is not None:
            return Status.OK, ok
        if changed is not None:
            return Status.CHANGED, changed
        return Status.NEW, None

    def verify(self, host: str, port: int, key: paramiko.PKey) -> Verdict:
        """The verdict for `key` presented by `host` (as the user wrote it) on `port`."""
        name = host_name(host, port)
        status, entry = self._status(name, key)
        if status is Status.NEW and name != host:
            plain, plain_entry = self._status(host, key)
            if plain in (Status.OK, Status.REVOKED):
                return Verdict(plain, name, plain_entry, via_plain_host=plain is Status.OK)
        return Verdict(status, name, entry)

    def key_types(self, host: str, port: int) -> list[str]:
        """Key types recorded for this host (its ``[host]:port`` name first, then the plain name), for
        ordering the host-key algorithms as OpenSSH does."""
        out: list[str] = []
        for name in dict.fromkeys((host_name(host, port), host)):
            for entry in self.entries:
                if not entry.revoked and entry.matches(name) and entry.key.get_name() not in out:
                    out.append(entry.key.get_name())
        return out


_cache: dict[str, tuple[tuple[int, int], KnownHosts]] = {}
_reported: set[tuple[str, int]] = set()
_lock = threading.Lock()


def load(path: Path | str) -> KnownHosts:
    """The parsed file at `path` (an absent file has no entries); cached until its size or mtime changes.

    Raises OSError when the file exists but cannot be read."""
    name = str(path)
    try:
        st = Path(name).stat()
    except FileNotFoundError:
        return KnownHosts(name)
    stamp = (st.st_size, st.st_mtime_ns)
    with _lock:
        cached = _cache.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    parsed = KnownHosts.parse(Path(name).read_text(errors="replace"), name)
    with _lock:
        _cache[name] = (stamp, parsed)
    return parsed


def unreported_skips(kh: KnownHosts) -> list[Skipped]:
    """The skipped lines of `kh` not yet returned by this function in this process (report each once)."""
    with _lock:
        fresh = [s for s in kh.skipped if (s.path, s.line) not in _reported]
        _reported.update((s.path, s.line) for s in fresh)
    return fresh


def preferred_key_types(available: list[str] | tuple[str, ...], known: list[str]) -> list[str]:
    """`available` host-key algorithms reordered with those of the `known` key types first (an ``ssh-rsa``
    key is presented as rsa-sha2-512/256 too), as OpenSSH orders HostKeyAlgorithms."""
    expand = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}
    first: list[str] = []
    for kt in known:
        for alg in expand.get(kt, (kt,)):
            if alg in available and alg not in first:
                first.append(alg)
    return first + [a for a in available if a not in first]


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of a public key, as ``ssh-keygen -lf`` prints it: ``SHA256:`` and the
    unpadded base64 of the SHA-256 of the key blob."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def same_fingerprint(given: str, key: paramiko.PKey) -> bool:
    """Whether `given` (``SHA256:...``, as a person copied it; trailing ``=`` padding allowed) is the
    fingerprint of `key`."""
    want = given.strip()
    return want.startswith("SHA256:") and hmac.compare_digest(want.rstrip("="), fingerprint(key))


def record(path: Path | str, name: str, key: paramiko.PKey) -> list[int]:
    """Write `key` into the known_hosts file at `path` for `name` (``host`` or ``[host]:port``), atomically.

    Lines that name exactly `name` alone (plain or hashed) with another key of the same type are removed,
    so the old key stops being accepted; their line numbers are returned.  A missing file (and its
    directory, mode 0700) is created with mode 0600; an existing file keeps its mode.  Raises OSError."""
    target = Path(path)
    try:
        text = target.read_text(errors="replace")
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        text, mode = "", 0o600
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    kept, removed = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        fields = raw.split()
        names_it = len(fields) >= 3 and (fields[0].lower() == name.lower()
                                         or (fields[0].startswith("|") and _hashed_match(fields[0], name.lower())))
        if names_it and fields[1] == key.get_name() and fields[2] != key.get_base64():
            removed.append(number)
            continue
        kept.append(raw)
    kept.append(f"{name} {key.get_name()} {key.get_base64()}")
    tmp = target.with_name(f".{target.name}.{threading.get_ident()}.tmp")
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as fh:
            fh.write("\n".join(kept) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with _lock:
        _cache.pop(str(target), None)
    return removed
