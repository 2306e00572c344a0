"""The primary publisher as the cluster records it (the node daemons make the call: wizard/agent/studio.py).

The record is the Redis hash ``<prefix>:<cluster>:publisher``: ``node`` (the node made primary publisher, or
being made), ``token`` (increases with every call), ``ts`` (epoch seconds of the call), ``by`` (the daemon that
made it) and ``error`` ("" when Studio's cluster API accepted the call, else the reason)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis

from wizard.coordinator import key, redis_client
from wizard.profile import Profile
from wizard.secrets import Secrets


@dataclass(frozen=True)
class PublisherRecord:
    node: str
    token: int
    ts: float
    by: str
    error: str

    @property
    def ok(self) -> bool:
        return not self.error

    def describe(self) -> str:
        """One line for status and the monitor, e.g. "studio1 (since 12 s, call #3 by studio2)"."""
        age = max(0.0, time.time() - self.ts)
        if self.error:
            return f"{self.node}: the call failed {age:.0f} s ago: {self.error}"
        return f"{self.node} (set {age:.0f} s ago, call #{self.token} by {self.by})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_record(raw: dict[Any, Any]) -> PublisherRecord | None:
    """The record from ``HGETALL``'s answer (bytes or str), None when empty or unreadable."""
    d = {(k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
         for k, v in raw.items()}
    if not d.get("node"):
        return None
    try:
        return PublisherRecord(d["node"], int(d.get("token") or 0), float(d.get("ts") or 0), d.get("by", ""),
                               d.get("error", ""))
    except ValueError:
        return None


def read_publisher(profile: Profile, secrets: Secrets) -> PublisherRecord | None:
    """The current record (None: no call made yet, no Crafter node in the profile, or Redis unreachable:
    status reports Redis on its own)."""
    if not profile.studio.nodes:
        return None
    try:
        client = redis_client(profile, secrets, failover_wait_s=2.0)
        try:
            return parse_record(client.hgetall(key(profile, "publisher")))  # type: ignore[arg-type]
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return None


def publisher_line(record: dict[str, Any] | None) -> str:
    """The "primary publisher" line of status and the monitor from ``ClusterStatus.publisher`` ("" when None)."""
    if not record:
        return ""
    try:
        return PublisherRecord(**record).describe()
    except TypeError:
        return ""


class PublisherError(Exception):
    """The primary publisher was not set: ``message`` says for which node and why (the call's error, or
    that no daemon made the call in time)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def await_publisher(profile: Profile, secrets: Secrets, node: str, timeout: float = 20.0,
                    pointed: Callable[[], str | None] | None = None) -> PublisherRecord:
    """Wait until the record names ``node`` (the node the authoring name points at) with no error; returns the
    record.  ``pointed``: asked about every 2 s, the node the name points at now (None: unknown); the name may
    move while this waits (a node that was rejoining becomes healthy and takes it back), and the node it points
    at then is the one to wait for.  Raises :class:`PublisherError` with the call's error as soon as a call for
    that node failed, or after ``timeout`` seconds naming what the record said."""
    deadline = time.monotonic() + timeout
    record = None
    asked = time.monotonic()
    while True:
        record = read_publisher(profile, secrets)
        if record is not None and record.node == node:
            if record.ok:
                return record
            raise PublisherError(f"making {node} the primary publisher failed: {record.error} (fix Studio's cluster "
                                 "API on that node, or studio.publisher_url / studio.management_token; the node "
                                 "agents retry by themselves)")
        if time.monotonic() >= deadline:
            said = record.describe() if record is not None else "no call was made"
            raise PublisherError(f"timed out after {timeout:.0f} s waiting for {node} to be made the primary "
                                 f"publisher (the record says: {said}); check the node agents' daemons "
                                 f"(studio-cluster status) and Redis")
        if pointed is not None and time.monotonic() - asked >= 2.0:
            asked = time.monotonic()
            now = pointed()
            if now and now != node:
                node = now
        time.sleep(0.25)
