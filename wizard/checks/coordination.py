"""Redis, the coordination store, from every node: the one Redis answers and takes the password, or (with
Sentinel) the Sentinels answer, agree on the master and can reach quorum, and the master takes the password."""

from __future__ import annotations

import json
from typing import Any

from wizard.agent.rootcmd import RootScript
from wizard.checks.base import CheckContext, Outcome, fail, ok, register, warn
from wizard.profile import Node

# Speaks just enough RESP to AUTH and PING with the node's bare python3 (no redis-py there yet).
# The password arrives on stdin, never on the command line.
PROBE = r"""
import json, socket, sys
host, port = sys.argv[1], int(sys.argv[2]); password = sys.stdin.read()
def cmd(*parts):
    out = b"*%d\r\n" % len(parts)
    for p in parts:
        b = p.encode(); out += b"$%d\r\n%s\r\n" % (len(b), b)
    return out
try:
    s = socket.create_connection((host, port), timeout=3); s.settimeout(3)
    payload = (cmd("AUTH", password) if password else b"") + cmd("PING")
    s.sendall(payload); data = b""
    want = 2 if password else 1
    while data.count(b"\r\n") < want:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    lines = data.decode(errors="replace").split("\r\n")
    print(json.dumps({"ok": lines[-2] == "+PONG" if len(lines) >= 2 else False, "reply": lines[:want]}))
except socket.timeout:
    print(json.dumps({"ok": False, "error": "timeout"}))
except OSError as e:
    print(json.dumps({"ok": False, "error": e.strerror or str(e)}))
"""
PROBE_PY = RootScript("check-redis-probe", PROBE, kind="py")


@register("redis", "Redis from node", order=40)
def redis_reachable(ctx: CheckContext, node: Node) -> Outcome:
    r = ctx.profile.redis
    if r.uses_sentinel:
        return sentinel_reachable(ctx, node)
    res = ctx.run_json(node, PROBE_PY, r.host, r.port, stdin=ctx.secrets.redis_password or "")
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


# Asks each Sentinel for the master and for its quorum, then AUTHs and asks the master its ROLE, in
# plain RESP with the node's bare python3.  Argument: {"sentinels": [[host, port], ...], "name": NAME};
# stdin: {"password": ..., "sentinel_password": ...}, so no secret is on the command line.
SENTINEL_PROBE = r"""
import json, socket, sys, time
args = json.loads(sys.argv[1]); secrets = json.loads(sys.stdin.read() or "{}")
def enc(*parts):
    out = b"*%d\r\n" % len(parts)
    for p in parts:
        b = str(p).encode(); out += b"$%d\r\n%s\r\n" % (len(b), b)
    return out
def read(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise OSError("connection closed")
    t, rest = line[:1], line[1:-2].decode(errors="replace")
    if t == b"+": return rest
    if t == b"-": return {"err": rest}
    if t == b":": return int(rest)
    if t == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode(errors="replace")
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [read(f) for _ in range(n)]
    raise OSError("not RESP: %r" % line[:40])
def session(host, port, password, *commands):
    s = socket.create_connection((host, int(port)), timeout=2); s.settimeout(2)
    try:
        cmds = ([("AUTH", password)] if password else []) + list(commands)
        s.sendall(b"".join(enc(*c) for c in cmds)); f = s.makefile("rb")
        replies = [read(f) for _ in cmds]
    finally:
        s.close()
    if password and isinstance(replies[0], dict):
        raise OSError(replies[0]["err"])  # AUTH refused
    return replies[1:] if password else replies
def error(e):
    return "timeout" if isinstance(e, socket.timeout) else (e.strerror or str(e))
def probe():
    out = {"sentinels": {}, "master": None}
    for host, port in args["sentinels"]:
        where = "%s:%s" % (host, port)
        try:
            addr, quorum = session(host, port, secrets.get("sentinel_password"),
                                   ("SENTINEL", "get-master-addr-by-name", args["name"]),
                                   ("SENTINEL", "ckquorum", args["name"]))
            out["sentinels"][where] = {"master": addr, "quorum": quorum}
        except (OSError, ValueError) as e:
            out["sentinels"][where] = {"error": error(e)}
    masters = [v["master"] for v in out["sentinels"].values() if isinstance(v.get("master"), list)]
    if masters:
        host, port = max(masters, key=masters.count)
        try:
            ping, role = session(host, port, secrets.get("password"), ("PING",), ("ROLE",))
            out["master"] = {"address": "%s:%s" % (host, port), "ping": ping, "role": role}
        except (OSError, ValueError) as e:
            out["master"] = {"address": "%s:%s" % (host, port), "error": error(e)}
    return out
def settled(out):
    if "WRONGPASS" in str(out) or "NOAUTH" in str(out):
        return True  # waiting will not help
    answers = [v["master"] for v in out["sentinels"].values() if isinstance(v.get("master"), list)]
    if len(answers) <= len(args["sentinels"]) // 2:
        return True  # no majority of Sentinels knows a master: nobody will fail over
    m = out["master"] or {}
    return len({tuple(a) for a in answers}) == 1 and isinstance(m.get("role"), list) and m["role"][:1] == ["master"]
# a master that just died, or Sentinels still disagreeing, is a failover under way: give it its time
start = time.monotonic()
out = probe()
while not settled(out) and time.monotonic() - start < float(args.get("wait", 0)):
    time.sleep(0.25)
    out = probe()
out["waited"] = round(time.monotonic() - start, 1)
print(json.dumps(out))
"""
SENTINEL_PROBE_PY = RootScript("check-sentinel-probe", SENTINEL_PROBE, kind="py")


def _auth_refused(reply: object) -> bool:
    text = str(reply)
    return "WRONGPASS" in text or "NOAUTH" in text or "invalid password" in text or "invalid username" in text


def sentinel_reachable(ctx: CheckContext, node: Node) -> Outcome:
    """Redis Sentinel from `node`: the Sentinels answer, agree on the master, can reach quorum, and the
    master takes the password and answers as master.  One Sentinel (or replica) down is a warning."""
    r = ctx.profile.redis
    args = json.dumps({"sentinels": [list(a) for a in r.sentinel_addresses], "name": r.master_name,
                       "wait": r.failover_wait_s})
    stdin = json.dumps({"password": ctx.secrets.redis_password, "sentinel_password": ctx.secrets.sentinel_password})
    res = ctx.run_json(node, SENTINEL_PROBE_PY, args, stdin=stdin, timeout=r.failover_wait_s + 30)
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
