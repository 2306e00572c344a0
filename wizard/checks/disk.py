"""Disk: free space where the data directory lives (SST needs room for a full copy)."""

from __future__ import annotations

from wizard.agent.rootcmd import RootScript
from wizard.checks.base import CheckContext, Outcome, fail, ok, register, warn
from wizard.checks.facts import node_fact_or
from wizard.profile import Node, Role

# df on the nearest existing ancestor, so a data dir that does not exist yet is still measured
DF = RootScript("check-df", 'd={data_dir}; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; df -Pk "$d" | tail -1')


@register("disk", "Free disk", roles=(Role.STUDIO,), order=20)
def free_disk(ctx: CheckContext, node: Node) -> Outcome:
    data_dir = ctx.profile.database.data_dir
    need = ctx.profile.database.min_free_mb
    said: str = node_fact_or(ctx, node, "disk", lambda: ctx.remote[node.name].run(  # the node's check session's
        DF(data_dir=str(data_dir)), timeout=15, what="df").stdout)                    # line, else df's own
    fields = said.split()
    free_mb = int(fields[3]) // 1024
    if free_mb < need:
        return fail(f"{free_mb} MB free for {data_dir}, need {need} MB",
                    f"free space on {fields[5]} or move database.data_dir")
    if free_mb < 2 * need:
        return warn(f"{free_mb} MB free for {data_dir} (less than twice {need} MB)", "plan more space for SST")
    return ok(f"{free_mb} MB free on {fields[5]}")
