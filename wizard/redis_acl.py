"""The Redis ACL user the product needs: its own key prefix and the commands the wizard and the agents send.

With ``redis.username`` set, the wizard and every agent log in as that ACL user (``AUTH username password``,
the password from ``redis.password``) instead of Redis's default user.  :func:`acl_rules` gives the rules such a
user needs: keys under ``<key_prefix>:*`` only, no Pub/Sub channel, and only :data:`COMMANDS` (Lua scripts run
by EVAL are held to the same rules, command by command, key by key).  For the operator, :func:`setuser_command`
is the ``ACL SETUSER`` line and :func:`conf_line` the ``user`` line of redis.conf (each Redis of a Sentinel set
needs it: ACLs are not replicated).  Without ``redis.username`` nothing changes (the default user).
"""

from __future__ import annotations

COMMANDS = (
    # keys: registrations, heartbeats, the bootstrap lock and fencing token (redis-py sends INCR as INCRBY),
    # leases, decisions, facts
    "get", "set", "del", "exists", "expire", "pexpire", "incr", "incrby", "hset", "hget", "hgetall", "hdel",
    # the run's event stream
    "xadd", "xread", "xrange", "xrevrange",
    # the atomic checks (lock/token/lease scripts) and pipelines (MULTI/EXEC)
    "eval", "evalsha", "multi", "exec", "discard", "watch", "unwatch",
    # WAIT: a fencing token or lock counts once the replicas have it (a failover cannot lose it)
    "wait",
    # the connection itself: SELECT for a database other than 0.  Not CLIENT SETINFO, which redis-py sends
    # and whose refusal it ignores: Redis 7.0 does not know it, and an unknown command in a rule stops Redis
    "ping", "select",
)
"""Every command the wizard and the agents send to the coordination store (AUTH and HELLO need no grant)."""


def acl_rules(key_prefix: str) -> list[str]:
    """The ACL rules of the product's user, e.g. ``["resetkeys", "~studio-cluster:*", "resetchannels",
    "-@all", "+get", ...]`` (without ``on`` and the password).  `key_prefix` is ``redis.key_prefix``."""
    return ["resetkeys", f"~{key_prefix}:*", "resetchannels", "-@all", *(f"+{c}" for c in COMMANDS)]


def setuser_command(username: str, key_prefix: str) -> str:
    """The ``ACL SETUSER`` command an operator runs on each Redis, the password written as ``><password>``."""
    return " ".join(["ACL", "SETUSER", username, "reset", "on", "><password>", *acl_rules(key_prefix)])


def conf_line(username: str, password: str, key_prefix: str) -> str:
    """The ``user`` line of redis.conf for the product's user (holds the password: the file must stay private)."""
    return " ".join(["user", username, "reset", "on", f">{password}", *acl_rules(key_prefix)])
