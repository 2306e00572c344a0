"""Network: TCP between the nodes that need it, tested from each node to each peer.

Before the cluster exists nothing listens on 4567 or 4444, and "connection refused" cannot tell a
closed port from a firewall REJECT.  So a node setup step starts a short-lived listener on every free
required port of each node as soon as SSH reaches it; once every node has one, each node connects out to its
peers.  A port that already has a
listener (a running mariadbd) is tested as it is.  Listeners bind the node's own address, so a
standalone server bound to 127.0.0.1 only does not hide the port (it is rebound by the cluster config).
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

from wizard.agent.rootcmd import RootScript
from wizard.checks.base import CheckContext, Outcome, fail, ok, register, warn
from wizard.checks.facts import (
    BIND,
    LISTENER_MARK,
    PORTS,
    FactError,
    NodeSession,
    SessionEnded,
    node_session,
    serving_session,
)
from wizard.profile import Node, Profile, Role
from wizard.remote import RemoteError

LISTEN_SECONDS = 60

# The listener of earlier versions, a process of its own (forked off, setsid): a run whose front end died left it
# holding the cluster's ports for up to LISTEN_SECONDS; the node agent clears processes with LISTENER_MARK before
# mariadbd needs the ports (wizard.agent.runtime.clear_check_listeners).  The listener now lives in the node's
# check session (wizard.checks.facts.SESSION, marked alike), which ends when its SSH channel closes.
LISTENER = LISTENER_MARK + "\nimport json, os, select, socket, sys, time\n" + BIND + r"""
duration, addr, ports = float(sys.argv[1]), sys.argv[2], [int(p) for p in sys.argv[3:]]
socks, bound, busy = bind_ports(addr, ports)
pid = os.fork() if socks else 0
if pid:
    print(json.dumps({"pid": pid, "bound": bound, "busy": busy})); sys.stdout.flush(); os._exit(0)
if not socks:
    print(json.dumps({"pid": None, "bound": [], "busy": busy})); sys.exit(0)
os.setsid()
fd = os.open(os.devnull, os.O_RDWR)
for i in (0, 1, 2):
    os.dup2(fd, i)
end = time.time() + duration
while time.time() < end:
    r, _, _ = select.select(socks, [], [], max(0.0, end - time.time()))
    for s in r:
        try:
            c, _ = s.accept(); c.close()
        except OSError:
            pass
"""

# The standalone port probe (a node whose check session failed): the session's own function, then its answer.
PROBE = ("import json, socket, sys, threading\n" + PORTS
         + "print(json.dumps(probe_ports(float(sys.argv[1]), sys.argv[2:])))\n")
PROBE_PY = RootScript("check-ports", PROBE, kind="py")


def required_ports(profile: Profile, src: Node, dst: Node) -> list[int]:
    """Ports `src` must reach on `dst`: Galera everywhere, IST/SST/SQL between data nodes; to the Arbiter, SST and
    the snapshot backups' two ports (the donor streams to ``backups.receiver_port``, restore pulls from it; the
    backup's own garbd listens on ``backups.garbd_port``)."""
    db = profile.database
    if src.role is Role.STUDIO and dst.role is Role.STUDIO:
        return [db.port, db.galera_port, db.ist_port, db.sst_port]
    if src.role is Role.STUDIO:  # to the Arbiter: group traffic, and the snapshot stream for backups
        return [db.galera_port, db.sst_port, profile.backups.receiver_port, profile.backups.garbd_port]
    return [db.galera_port]  # the Arbiter to a data node


def listen_ports(profile: Profile, node: Node) -> list[int]:
    ports: set[int] = set()
    for peer in profile.peers(node):
        ports.update(required_ports(profile, peer, node))
    return sorted(ports)


def start_listener(ctx: CheckContext, node: Node) -> None:
    """The listener on `node`'s free required ports, started as soon as the node's SSH check passes: the first
    thing its check session does (:func:`wizard.checks.facts.node_session`, ``ctx.shared["listeners"]``); a node
    where it cannot start is left to the probe, which reports it."""
    try:
        session = node_session(ctx, node)
        info = session.listening()
    except (RemoteError, FactError):
        return
    if info and info.get("pid"):
        ctx.shared.setdefault("listeners", {})[node.name] = session


def stop_listeners(ctx: CheckContext) -> None:
    """Stop every listener :func:`start_listener` started, the nodes at once (their sessions go on)."""
    def one(session: NodeSession) -> None:
        with contextlib.suppress(RemoteError, FactError):
            session.ask("unlisten", timeout=10)

    listeners = list(ctx.shared.get("listeners", {}).values())
    with ThreadPoolExecutor(max(1, len(listeners))) as pool:
        list(pool.map(one, listeners))


def probe_ports(ctx: CheckContext, node: Node, targets: list[str]) -> dict[str, str]:
    """Target (``address:port``) -> open, refused, timeout or ``error: ...``, tried from `node`: in its check
    session, else (no session takes requests there) in a probe of its own."""
    session = serving_session(ctx, node)
    if session is not None:
        with contextlib.suppress(SessionEnded):
            result: dict[str, str] = session.ask("ports", [3, targets], timeout=30)
            return result
    answer: dict[str, str] = ctx.run_json(node, PROBE_PY, 3, *targets)
    return answer


@register("network", "Ports to peers", order=30, node_setup=start_listener, teardown=stop_listeners)
def network(ctx: CheckContext, node: Node) -> Outcome:
    reached = ctx.shared.get("ssh_ok")
    # a peer whose SSH access check failed has no probe listener: its closed ports would be a false firewall finding
    unknown = [p.name for p in ctx.profile.peers(node) if reached is not None and p.name not in reached]
    peers = [p for p in ctx.profile.peers(node) if p.name not in unknown]
    targets = {f"{peer.address}:{port}": (peer, port)
               for peer in peers for port in required_ports(ctx.profile, node, peer)}
    result = probe_ports(ctx, node, list(targets)) if targets else {}
    bad = {t: r for t, r in result.items() if r != "open"}
    if unknown and not bad:
        return warn(f"not checked to {', '.join(unknown)}: its SSH access check failed"
                    + (f"; {len(targets)} ports open to {', '.join(p.name for p in peers)}" if targets else ""),
                    f"fix the SSH access finding on {', '.join(unknown)} and check again")
    if not bad:
        return ok(f"{len(targets)} ports open to {', '.join(p.name for p in ctx.profile.peers(node))}")
    parts = []
    fixes = []
    for t, reason in sorted(bad.items()):
        peer, port = targets[t]
        parts.append(f"{peer.name}:{port} {reason}")
        if reason == "timeout":
            fixes.append(f"a firewall drops TCP {port} on {peer.name}: allow it from {node.address}")
        else:
            fixes.append(f"TCP {port} on {peer.name} is rejected: open it for {node.address}")
    return fail("cannot reach " + ", ".join(parts), "; ".join(dict.fromkeys(fixes)))
