"""The one place that turns coordination settings into a redis-py client (wizard side and node agent).

Runs on the nodes too (python3 >= 3.9, stdlib + the bundled redis-py), so it takes a plain mapping,
the same keys the wizard puts in the agent's JSON config (``wizard.coordinator.redis_config``):

``redis_sentinels``         ``[[host, port], ...]`` of the Sentinels, or absent/None for one Redis
``redis_master_name``       the name the Sentinels monitor the master under (Sentinel mode)
``redis_sentinel_password`` the Sentinels' own password, or None
``redis_host``, ``redis_port``  the one Redis (URL mode)
``redis_db``, ``redis_password``  logical database and Redis password (both modes)
``redis_username``  an ACL user to log in as (both modes; unset: the default user)
``redis_failover_wait_s``   seconds a command keeps retrying on a lost connection (default 30)

With Sentinel, the client is redis-py's own ``Sentinel(...).master_for(...)``: every new connection asks
the Sentinels for the current master, and a connection to a demoted master (``READONLY``) is dropped
and raised as ``ConnectionError``.  Every client here retries ``ConnectionError`` / ``TimeoutError``
with a capped exponential backoff for about ``redis_failover_wait_s`` seconds, so a command issued
while Sentinel promotes a new master lands on the new one instead of failing.  A command whose reply
was lost may run twice: fine for the coordination's commands (a second INCR only makes the token
larger), but a ``SET NX`` that succeeded and is retried answers "not set".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

SOCKET_TIMEOUT = 5.0  # seconds for one Redis command's reply (XREAD blocks are sent with their own margin)
CONNECT_TIMEOUT = 3.0  # seconds to open a TCP connection to Redis
SENTINEL_TIMEOUT = 1.0  # seconds per Sentinel query: a dead Sentinel must not stall finding the master
DEFAULT_FAILOVER_WAIT = 30.0
_BACKOFF_BASE, _BACKOFF_CAP = 0.05, 0.5


class _Sentinel(Sentinel):
    """redis-py's Sentinel, with a "no master" error a person can read: redis-py's own message embeds
    the repr of every Sentinel client (hundreds of characters each); this keeps only why each failed."""

    def discover_master(self, service_name: str) -> tuple[str, int]:
        try:
            return super().discover_master(service_name)
        except MasterNotFoundError as exc:
            reasons = re.findall(r" - \w+\((['\"])(.*?)\1\)", str(exc))
            if not reasons:
                raise
            raise MasterNotFoundError(f"no Sentinel reports a master named {service_name!r}: "
                                      + "; ".join(r[1] for r in reasons)) from None


def retry_policy(wait_s: float) -> Retry:
    """A redis-py Retry that keeps retrying lost connections for about `wait_s` seconds of backoff
    (0.1, 0.2, 0.4, then every 0.5 s), plus whatever the failed attempts themselves take."""
    ramp = sum(min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** i) for i in range(1, 4))
    retries = 3 + max(1, int((max(0.0, wait_s - ramp)) / _BACKOFF_CAP + 0.999))
    return Retry(ExponentialBackoff(cap=_BACKOFF_CAP, base=_BACKOFF_BASE), retries)


def sentinel_addresses(cfg: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The Sentinels as `(host, port)` pairs; empty in URL mode."""
    return [(str(h), int(p)) for h, p in (cfg.get("redis_sentinels") or [])]


def sentinel(cfg: Mapping[str, Any]) -> Sentinel:
    """redis-py's Sentinel manager for `cfg` (Sentinel mode only; raises ValueError otherwise)."""
    addresses = sentinel_addresses(cfg)
    if not addresses:
        raise ValueError("no redis_sentinels in the config: this cluster uses one Redis URL")
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT, "socket_connect_timeout": SENTINEL_TIMEOUT,
                                       "decode_responses": True, "retry": Retry(ExponentialBackoff(), 0)}
    if cfg.get("redis_sentinel_password"):
        sentinel_kwargs["password"] = cfg["redis_sentinel_password"]
    return _Sentinel(addresses, sentinel_kwargs=sentinel_kwargs)


def connect(cfg: Mapping[str, Any]) -> redis.Redis:
    """A client of the coordination store's master: through the Sentinels when `redis_sentinels` is
    set, else the one Redis at `redis_host:redis_port`.  Connects lazily (the first command does);
    commands raise ``redis.RedisError`` (``ConnectionError`` once the retries are spent)."""
    kwargs: dict[str, Any] = {
        "db": int(cfg.get("redis_db") or 0),
        "password": cfg.get("redis_password") or None,
        "username": cfg.get("redis_username") or None,  # an ACL user (wizard.redis_acl); None: the default user
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "decode_responses": True,
        "retry": retry_policy(float(cfg.get("redis_failover_wait_s") or DEFAULT_FAILOVER_WAIT)),
    }
    if sentinel_addresses(cfg):
        return sentinel(cfg).master_for(str(cfg["redis_master_name"]), **kwargs)
    return redis.Redis(host=str(cfg["redis_host"]), port=int(cfg.get("redis_port") or 6379), **kwargs)


def master_address(cfg: Mapping[str, Any]) -> tuple[str, int] | None:
    """Where the Sentinels say the master is now (None in URL mode).  Raises
    ``redis.sentinel.MasterNotFoundError`` when no reachable Sentinel knows a healthy master."""
    if not sentinel_addresses(cfg):
        return None
    host, port = sentinel(cfg).discover_master(str(cfg["redis_master_name"]))
    return str(host), int(port)
