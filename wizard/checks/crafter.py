"""Content sync between the Crafter Studio nodes: git over SSH as Crafter's user, both ways (docs/crafter.md)."""

from __future__ import annotations

from wizard.checks.base import CheckContext, Outcome, fail, ok, register
from wizard.checks.facts import node_fact_or
from wizard.crafter.sync_trust import FIND_REPO_PY, crafter_pair, ls_remote_both_ways
from wizard.profile import Node
from wizard.remote import RemoteError


def _find_repo(ctx: CheckContext, node: Node) -> str:
    """FIND_REPO's answer on `node`: from its check session, else (the session failed) from the probe itself."""
    found: str = node_fact_or(ctx, node, "repo", lambda: ctx.remote[node.name].run(
        FIND_REPO_PY(str(ctx.profile.studio.data_path)), timeout=30, what="find a content repository").stdout)
    return found


@register("crafter-sync", "Content sync (git over SSH)", scope="cluster", order=75,
          uses=lambda profile: [n.name for n in crafter_pair(profile)])
def content_sync(ctx: CheckContext) -> Outcome:
    pair = crafter_pair(ctx.profile)
    if not pair:
        return ok("no pair of Crafter Studio nodes in studio.nodes: nothing to sync")
    down = [n.name for n in pair if n.name not in ctx.shared.get("ssh_ok", {n.name for n in pair})]
    if down:
        return fail(f"cannot reach {', '.join(down)} by SSH", "fix SSH to the nodes first")
    user = ctx.profile.studio.os_user
    try:
        results = ls_remote_both_ways(ctx.profile, ctx.remote, find_repo=lambda n: _find_repo(ctx, n))
    except RemoteError as exc:
        return fail(f"{exc.node}: {exc.message}", "fix SSH to the nodes first")
    if not all(r.set_up for r in results):
        # Nothing to prove before apply has made the trust: not a fault of the nodes.
        missing = ", ".join(f"{r.source} -> {r.target}" for r in results if not r.set_up)
        return ok(f"not set up yet for {user} ({missing}): apply creates the key, authorises it on the peer and "
                  "pins the peer's host key")
    bad = [r for r in results if not r.ok]
    if bad:
        detail = "; ".join(f"{r.source} -> {r.target}: {r.detail}" for r in bad)
        return fail(f"git ls-remote over SSH as {user} does not work: {detail}",
                    "run replay again (apply makes the key, authorises it on the peer and pins the peer's host "
                    f"key); check that {user} has a shell and that {ctx.profile.studio.data_path}/repos holds a "
                    "git repository")
    return ok("; ".join(f"{r.source} -> {r.target} as {user}: {r.detail}" for r in results))
