"""Secret references and redaction.

A profile never holds a password, only a reference to one:

* ``env:NAME``   the value of environment variable NAME at run time
* ``file:/path`` the first line of a file (e.g. a mounted secret; the lab uses this)
* ``ask``        ask the person running the tool (the TUI's masked input, or a getpass prompt)
* ``none``       no secret (e.g. unix-socket authentication)

Every resolved value is registered with the process-wide :data:`REDACTOR`, so the run log, error
messages and anything printed pass through one place that replaces it with ``***``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

REF_RE = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/\S+|ask|none)$")


def _secret_ref(value: str) -> str:
    if not REF_RE.match(value):
        raise ValueError(
            "a secret must be a reference, never the value itself: use env:VARIABLE, file:/path, ask or none"
        )
    return value


SecretRef = Annotated[str, AfterValidator(_secret_ref)]


class SecretError(Exception):
    """References that cannot be resolved; the message says which and how to fix each (one per line,
    also in ``problems``)."""

    def __init__(self, *problems: str) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(problems))


class Redactor:
    """Replaces every known secret value in text.  Thread-safe; values shorter than 3 are ignored."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str | None) -> None:
        if value and len(value) >= 3:
            with self._lock:
                self._values.add(value)

    def __call__(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for v in values:
            text = text.replace(v, "***")
        return text


REDACTOR = Redactor()

Prompt = Callable[[str], str]


def resolve(ref: str | None, what: str, prompt: Prompt | None = None) -> str | None:
    """Resolve a reference to its value (None for ``none``); register it for redaction."""
    if ref is None or ref == "none":
        return None
    if ref.startswith("env:"):
        name = ref[4:]
        value = os.environ.get(name)
        if value is None:
            raise SecretError(f"{what}: environment variable {name} is not set; export it or change the reference")
    elif ref.startswith("file:"):
        path = Path(ref[5:])
        try:
            value = path.read_text().splitlines()[0] if path.read_text() else ""
        except OSError as exc:
            raise SecretError(f"{what}: cannot read {path}: {exc.strerror}; fix the path or the permissions") from None
    elif ref == "ask":
        if prompt is None:
            raise SecretError(f"{what} is set to 'ask' but nobody can be asked here; use env:NAME instead")
        value = prompt(what)
    else:
        raise SecretError(f"{what}: {ref!r} is not a secret reference")
    if not value:
        raise SecretError(f"{what}: the secret is empty; set a value")
    REDACTOR.add(value)
    return value


class Secrets:
    """The resolved secrets a run needs, resolved once up front so a run never stops half-way to ask."""

    def __init__(self, sst_password: str | None, admin_password: str | None, redis_password: str | None,
                 sentinel_password: str | None = None, key_passphrases: dict[str, str] | None = None,
                 dns_api_key: str | None = None):
        self.sst_password = sst_password
        self.admin_password = admin_password
        self.redis_password = redis_password
        self.sentinel_password = sentinel_password  # the Sentinels' own password (redis.sentinel_password)
        # node name -> passphrase of its encrypted ssh.key_file (nodes[*].ssh.key_passphrase)
        self.key_passphrases: dict[str, str] = dict(key_passphrases or {})
        self.dns_api_key = dns_api_key  # the PowerDNS API key (dns.api_key), when dns.api_url is set

    def __repr__(self) -> str:  # never show the values
        return "Secrets(***)"

    @classmethod
    def resolve_for(cls, profile: object, prompt: Prompt | None = None, given: dict[str, str] | None = None,
                    only: set[str] | None = None) -> Secrets:
        """Resolve the profile's references; `given` holds values already typed (e.g. in the TUI);
        `only` limits which are resolved (the monitor needs no SST password).  SSH key passphrases
        (``nodes[*].ssh.key_passphrase``; `given` key ``key_passphrase:NODE``) are always resolved:
        whatever connects needs them.  Nodes sharing one key file and reference are asked once.

        Raises :class:`SecretError` naming every setting whose reference cannot be resolved, all at once."""
        given = given or {}
        problems: list[str] = []

        def resolve_or_note(ref: str | None, what: str) -> str | None:
            try:
                return resolve(ref, what, prompt)
            except SecretError as exc:
                problems.extend(exc.problems)
                return None
        for v in given.values():
            REDACTOR.add(v)
        db = profile.database  # type: ignore[attr-defined]
        redis = profile.redis  # type: ignore[attr-defined]

        def pick(key: str, ref: str | None, what: str) -> str | None:
            if only is not None and key not in only:
                return None
            if key in given:
                return given[key]
            return resolve_or_note(ref, what)

        def sentinel() -> str | None:
            if only is not None and not only & {"redis_password", "sentinel_password"}:
                return None  # whoever needs Redis needs its Sentinels too
            if "sentinel_password" in given:
                return given["sentinel_password"]
            return resolve_or_note(getattr(redis, "sentinel_password", None), "redis.sentinel_password")

        def key_passphrases() -> dict[str, str]:
            out: dict[str, str] = {}
            seen: dict[tuple[str, str], str | None] = {}
            for node in profile.nodes:  # type: ignore[attr-defined]
                ref = getattr(node.ssh, "key_passphrase", "none")
                if f"key_passphrase:{node.name}" in given:
                    out[node.name] = given[f"key_passphrase:{node.name}"]
                    continue
                if ref in (None, "none"):
                    continue
                shared = (ref, str(node.ssh.key_file))
                if shared not in seen:
                    seen[shared] = resolve_or_note(ref, f"nodes[{node.name}].ssh.key_passphrase")
                value = seen[shared]
                if value is not None:
                    out[node.name] = value
            return out

        dns = getattr(profile, "dns", None)
        secrets = cls(
            key_passphrases=key_passphrases(),
            dns_api_key=pick("dns_api_key", getattr(dns, "api_key", None), "dns.api_key")
            if getattr(dns, "api_url", None) else None,
            sst_password=pick("sst_password", db.sst_password, "database.sst_password"),
            admin_password=pick("admin_password", db.admin_password, "database.admin_password"),
            redis_password=pick("redis_password", redis.password, "redis.password"),
            sentinel_password=sentinel(),
        )
        if problems:
            raise SecretError(*problems)
        return secrets
