"""Redis, the coordination store: reachable and authenticated from every node."""

from __future__ import annotations

from wizard.checks.base import CheckContext, Outcome, fail, ok, register
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


@register("redis", "Redis from node", order=40)
def redis_reachable(ctx: CheckContext, node: Node) -> Outcome:
    r = ctx.profile.redis
    res = ctx.run_json(node, PROBE, r.host, r.port, stdin=ctx.secrets.redis_password or "")
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
