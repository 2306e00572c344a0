"""Redis, the coordination store, from every node: the one Redis answers and takes the password, or (with
Sentinel) the Sentinels answer, agree on the master and can reach quorum, and the master takes the password."""

from __future__ import annotations

from typing import Any

from wizard.checks.base import CheckContext, Outcome, fail, ok, register, warn
from wizard.checks.facts import node_fact
from wizard.profile import Node


@register("redis", "Redis from node", order=40)
def redis_reachable(ctx: CheckContext, node: Node) -> Outcome:
    r = ctx.profile.redis
    if r.uses_sentinel:
        return sentinel_reachable(ctx, node)
    res = node_fact(ctx, node, "redis")  # the probe: wizard.checks.facts.REDIS (the password on its stdin)
    where = f"{r.host}:{r.port}"
    if res.get("ok"):
        return ok(f"PONG from {where}" + (" (authenticated)" if ctx.secrets.redis_password else ""))
    if "error" in res:
        err = res["error"]
        if err == "timeout":
            return fail(f"no answer from Redis at {where}", f"a firewall drops {r.port}/tcp to Redis from {node.name}")
        return fail(f"Redis at {where}: {err}", f"start Redis on {r.host} (or fix redis.url) and allow {node.name}")
    reply = " ".join(res.get("reply", []))
    if "WRONGPASS" in reply or "NOAUTH" in reply or "invalid password" in reply:
        return fail("Redis rejected the password", "fix the secret that redis.password references")
    return fail(f"Redis at {where} answered {reply[:80]!r}", "check that redis.url points at a Redis server")


def _auth_refused(reply: object) -> bool:
    text = str(reply)
    return "WRONGPASS" in text or "NOAUTH" in text or "invalid password" in text or "invalid username" in text


def sentinel_reachable(ctx: CheckContext, node: Node) -> Outcome:
    """Redis Sentinel from `node`: the Sentinels answer, agree on the master, can reach quorum, and the
    master takes the password and answers as master.  One Sentinel (or replica) down is a warning."""
    r = ctx.profile.redis
    res = node_fact(ctx, node, "sentinel")  # the probe: wizard.checks.facts.SENTINEL (the passwords on its stdin)
    sentinels: dict[str, dict[str, Any]] = res.get("sentinels", {})
    total = len(sentinels)
    majority = total // 2 + 1
    down = {w: str(v["error"]) for w, v in sentinels.items() if "error" in v}
    answering = {w: v for w, v in sentinels.items() if "error" not in v}
    if any(_auth_refused(e) for e in down.values()):
        return fail("a Sentinel rejected the password", "fix the secret that redis.sentinel_password references "
                    "(or remove it if the Sentinels have no requirepass)")
    if len(answering) < majority:
        listed = ", ".join(f"{w} {e}" for w, e in down.items())
        return fail(f"{len(answering)} of {total} Sentinels answer from {node.name} ({listed}); a failover needs "
                    f"{majority}", f"start the Sentinels (port 26379) or fix redis.sentinels, and allow {node.name} "
                    "to reach them")
    unknown = [w for w, v in answering.items() if not isinstance(v.get("master"), list)]
    if unknown:
        return fail(f"Sentinel {', '.join(unknown)} knows no master named {r.master_name!r}",
                    "set redis.master_name to the NAME in the Sentinels' `sentinel monitor NAME HOST PORT QUORUM`")
    reported = {w: ":".join(map(str, v["master"])) for w, v in answering.items()}
    if len(set(reported.values())) > 1:
        listed = ", ".join(f"{w} says {m}" for w, m in reported.items())
        return fail(f"the Sentinels disagree on the master ({listed})",
                    "wait for the failover to finish and check again; if it persists, the Sentinels monitor "
                    "different masters: make their `sentinel monitor` lines name the same one")
    no_quorum = [f"{w}: {v['quorum']['err']}" for w, v in answering.items() if isinstance(v.get("quorum"), dict)]
    if len(no_quorum) == len(answering):
        return fail(f"the Sentinels cannot reach quorum ({no_quorum[0]})",
                    "start the missing Sentinels or lower the quorum in `sentinel monitor`: a failover needs it")
    master = res.get("master") or {}
    where = master.get("address", "?")
    if _auth_refused(master.get("error")) or _auth_refused(master.get("ping")):
        return fail(f"Redis at {where} rejected the password", "fix the secret that redis.password references")
    if "error" in master:
        return fail(f"the master the Sentinels name ({where}) does not answer: {master['error']}",
                    f"start Redis at {where} or wait for the Sentinels to fail over (down-after-milliseconds)")
    role = master.get("role")
    if master.get("ping") != "PONG" or not isinstance(role, list) or not role:
        return fail(f"Redis at {where} answered {str(master.get('ping'))[:80]!r}",
                    "check that redis.sentinels point at Redis Sentinels")
    if role[0] != "master":
        return fail(f"the Sentinels name {where} the master but it answers as a {role[0]}",
                    "wait for the failover to finish and check again")
    replicas = len(role[2]) if len(role) > 2 and isinstance(role[2], list) else 0
    summary = (f"{len(answering)}/{total} Sentinels agree: master {where}, authenticated, {replicas} replica(s)"
               + (f", quorum {len(answering) - len(no_quorum)} OK" if no_quorum else ""))
    if res.get("waited", 0) >= 1:
        summary += f" (after waiting {res['waited']} s for a failover)"
    if down:
        return warn(summary + f"; no answer from {', '.join(f'{w} ({e})' for w, e in down.items())}",
                    "start the Sentinel there: one more loss and the Sentinels cannot fail over")
    return ok(summary)
