"""Clocks: Galera and the coordination heartbeats assume the nodes agree on the time (skew < 1 s)."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

from wizard.checks.base import CheckContext, Outcome, fail, ok, register
from wizard.checks.facts import SessionEnded, serving_session
from wizard.profile import Node
from wizard.remote import RemoteError

MAX_SKEW = 1.0


def node_offset(ctx: CheckContext, node: Node) -> tuple[float, float]:
    """The node's clock minus ours, corrected by half the round trip; returns (offset, uncertainty)."""
    conn = ctx.remote[node.name]
    session = serving_session(ctx, node)  # the node's check session tells its time without a process
    best: tuple[float, float] | None = None
    for _ in range(2):
        t0 = time.time()
        said: object = None
        if session is not None:
            with contextlib.suppress(SessionEnded):
                said = session.ask("time", timeout=10)
        if said is None:
            said = conn.run(["date", "+%s.%N"], privileged=False, timeout=10).stdout.strip()
        t1 = time.time()
        offset = float(str(said)) - (t0 + t1) / 2
        if best is None or (t1 - t0) / 2 < best[1]:
            best = (offset, (t1 - t0) / 2)
    assert best is not None
    return best


@register("clock", "Clock skew", scope="cluster", order=70, uses=lambda profile: [n.name for n in profile.nodes])
def clock_skew(ctx: CheckContext) -> Outcome:
    offsets: dict[str, float] = {}
    nodes = [n for n in ctx.profile.nodes if n.name in ctx.shared.get("ssh_ok", set())]

    def one(node: Node) -> tuple[str, float | None]:
        try:
            return node.name, node_offset(ctx, node)[0]
        except (RemoteError, ValueError):
            return node.name, None

    with ThreadPoolExecutor(max(1, len(nodes))) as pool:  # nodes at once: each measures against our clock
        offsets = {name: off for name, off in pool.map(one, nodes) if off is not None}
    if len(offsets) < 2:
        return fail("too few nodes answered to compare clocks", "fix SSH to the nodes first")
    skew = max(offsets.values()) - min(offsets.values())
    detail = ", ".join(f"{n} {o * 1000:+.0f} ms" for n, o in offsets.items())
    if skew >= MAX_SKEW:
        return fail(f"clock skew {skew:.2f}s ({detail})", "enable NTP on every node (chrony or systemd-timesyncd)")
    return ok(f"skew {skew * 1000:.0f} ms ({detail})")

