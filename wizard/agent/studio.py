"""Crafter Studio as the node agent sees it: its status URL, and the primary publisher (docs/crafter.md).

Runs on the nodes (python3 >= 3.9, standard library; the publisher record goes through the agent's Redis
client).  The agent's config carries, for a node with Crafter (``crafter: true``):

``studio_status_url``     URL of Studio's status on this node (``{address}`` already filled in)
``studio_publisher_url``  Studio's cluster API endpoint, ``{address}`` left for the node it names
``studio_token``          the management token (a secret: sent as ``?token=``, never logged or raised)
``crafter_nodes``         the nodes that run Studio; ``authoring_name``: the DNS name that follows the primary

The primary publisher: each Studio node's daemon resolves the authoring name every loop.  When the node it
points at serves (its health endpoint answers 200) and is not the one the Redis record
``<prefix>:<cluster>:publisher`` names, the daemon takes the lock ``...:publisher-lock`` (``SET NX PX``), reads
the record again, and only then POSTs to that node's cluster API; the record (node, token from
``INCR ...:publisher-token``, time, and an error with the reason when the call failed) is written under the
lock.  So each move of the name makes exactly one call, whichever daemons see it; a failed call is retried
after ``RETRY_S``.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

STATUS_TIMEOUT = 2.0  # seconds for Studio's status URL to answer
PUBLISHER_TIMEOUT = 10.0  # seconds for the cluster API call
LOCK_MS = 30000  # the publisher lock outlives one call's timeout
RETRY_S = 10.0  # a failed call is tried again after this long


def with_token(url: str, token: str | None) -> str:
    """``url`` with ``token=`` added to its query (unchanged without a token)."""
    if not token:
        return url
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode({"token": token})


def redact(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token and len(token) >= 3 else text


def studio_status(url: str, token: str | None, timeout: float = STATUS_TIMEOUT) -> tuple[bool, str]:
    """``(ok, reason)``: ok when Studio's status URL answers 200 within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(with_token(url, token), timeout=timeout) as resp:  # noqa: S310 (profile URL)
            code = resp.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, redact("Studio does not answer %s (%s)" % (url, reason), token)
    if code == 200:
        return True, "Studio answers"
    return False, redact("Studio answers %s with HTTP %d" % (url, code), token)


def resolve_target(name: str, addresses: dict[str, str]) -> str:
    """The node the authoring DNS name points at now ("" when it resolves to none of them or not at all)."""
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return ""
    found = {info[4][0] for info in infos}
    for node, address in addresses.items():
        if address in found:
            return node
    return ""


def call_publisher(url: str, node: str, address: str, token: str | None,
                   timeout: float = PUBLISHER_TIMEOUT) -> str:
    """POST ``{"node", "address"}`` to the cluster API of ``node``; "" on a 2xx answer, else the reason."""
    body = json.dumps({"node": node, "address": address, "primaryPublisher": True}).encode()
    target = url.replace("{address}", address)
    req = urllib.request.Request(with_token(target, token), data=body, method="POST",  # noqa: S310 (profile URL)
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (profile URL)
            code = resp.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except (OSError, ValueError) as exc:
        return redact("%s did not answer (%s)" % (target, getattr(exc, "reason", exc)), token)
    if 200 <= code < 300:
        return ""
    return redact("%s answered HTTP %d" % (target, code), token)


class Publisher:
    """The primary-publisher duty of one Studio node's daemon; :meth:`step` is called every loop."""

    def __init__(self, cfg: Any, coord: Any) -> None:
        self.cfg, self.coord = cfg, coord
        self.me = str(cfg.get("node"))
        self.addresses = {n: a for n, a in dict(cfg.get("addresses") or {}).items()
                          if n in (cfg.get("crafter_nodes") or [])}
        self.down_seen: float | None = None  # when this node's Studio was last seen not answering
        self.back_after: float | None = None  # it came back after this time and may be owed a call

    def serving(self, node: str) -> bool:
        """``node``'s health endpoint (what the DNS record checks) answers 200."""
        url = "http://%s:%s/" % (self.addresses[node], self.cfg.get("health_port"))
        if ":" in self.addresses[node]:
            url = "http://[%s]:%s/" % (self.addresses[node], self.cfg.get("health_port"))
        try:
            with urllib.request.urlopen(url, timeout=STATUS_TIMEOUT) as resp:  # noqa: S310 (built here)
                return bool(resp.status == 200)
        except (OSError, ValueError):
            return False

    def fence(self) -> int:
        """The cluster's fencing token: every bootstrap of a new Primary Component increases it."""
        return int(self.coord.r.get(self.coord.key("fencing-token")) or 0)

    def owed(self, rec: dict[str, str], target: str) -> bool:
        """:meth:`due`, or this node's Studio came back while the name points here and no call reached it since."""
        if self.back_after is not None and target == self.me:
            if rec.get("node") == target and not rec.get("error") and float(rec.get("ts") or 0) >= self.back_after:
                self.back_after = None
            else:
                return True
        return self.due(rec, target)

    def due(self, rec: dict[str, str], target: str) -> bool:
        """A call for ``target`` is owed: the record names another node or none, a bootstrap came after it, or
        its call for ``target`` failed ``RETRY_S`` or more seconds ago."""
        if rec.get("node") != target:
            return True
        if int(rec.get("fence") or 0) < self.fence():
            return True
        if rec.get("error"):
            return time.time() - float(rec.get("ts") or 0) >= RETRY_S
        return False

    def record(self) -> dict[str, str]:
        raw = self.coord.r.hgetall(self.coord.key("publisher")) or {}
        return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in raw.items()}

    def step(self) -> str:
        """Make the node the authoring name points at the primary publisher if the record says otherwise, a
        bootstrap (a new fencing token) came since the call, or this node's Studio came back (Studio does not
        publish on boot).  Returns what happened: "" (nothing to do), "called <node>", "failed <node>: <reason>",
        "locked"."""
        now = time.time()
        up, _why = studio_status(str(self.cfg.get("studio_status_url")), self.cfg.get("studio_token"))
        if not up:
            self.down_seen = now
        elif self.down_seen is not None:
            self.back_after, self.down_seen = self.down_seen, None  # back since then: a call since then counts
        target = resolve_target(str(self.cfg.get("authoring_name")), self.addresses)
        if not target or not self.serving(target):
            # No target, or one whose health endpoint does not answer 200: the record only moves to a node that
            # serves (before the first health checks, and with every node down, the DNS answer is a random one).
            return ""
        if target != self.me:
            self.back_after = None  # a move back to this node is owed a call anyway
        if not self.owed(self.record(), target):
            return ""
        lock = self.coord.key("publisher-lock")
        if not self.coord.r.set(lock, self.me, nx=True, px=LOCK_MS):
            return "locked"
        try:
            rec = self.record()  # again, under the lock: another daemon may have made this very call
            if not self.owed(rec, target):
                return ""
            fence = self.fence()
            token = self.coord.r.incr(self.coord.key("publisher-token"))
            error = call_publisher(str(self.cfg.get("studio_publisher_url")), target, self.addresses[target],
                                   self.cfg.get("studio_token"))
            self.coord.r.hset(self.coord.key("publisher"), mapping={
                "node": target, "token": str(token), "ts": "%.3f" % time.time(), "by": self.me, "error": error,
                "fence": str(fence)})
            self.coord.event(self.me, "publisher", "failed" if error else "done",
                             ("primary publisher %s: %s" % (target, error)) if error
                             else "%s is the primary publisher (token %s)" % (target, token), target=target)
            return ("failed %s: %s" % (target, error)) if error else "called %s" % target
        finally:
            if self.coord.r.get(lock) in (self.me, self.me.encode()):
                self.coord.r.delete(lock)
