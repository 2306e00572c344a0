"""An existing Galera cluster on a node is detected and reported, never trampled."""

from __future__ import annotations

from wizard.checks.base import CheckContext, Outcome, ok, register, warn
from wizard.nodesql import wsrep_status
from wizard.profile import Node, Role
from wizard.remote import daemon_pids, sh


@register("galera-state", "Existing cluster", order=80)
def existing_cluster(ctx: CheckContext, node: Node) -> Outcome:
    conn = ctx.remote[node.name]
    if node.role is Role.ARBITER:
        if conn.run(daemon_pids("garbd"), timeout=10).stdout.strip():
            return warn("garbd is already running", "it will be reconfigured only if its settings change")
        return ok("no garbd running")
    grastate = ctx.profile.database.data_dir / "grastate.dat"
    res = conn.run(f"cat {sh(str(grastate))} 2>/dev/null; echo ---; {daemon_pids('mariadbd')}", timeout=10)
    state_text, _, pids = res.stdout.partition("---")
    fields = dict(
        line.split(":", 1) for line in state_text.splitlines() if ":" in line and not line.startswith("#")
    )
    uuid = fields.get("uuid", "").strip()
    seqno = fields.get("seqno", "").strip()
    if pids.strip():
        status = wsrep_status(ctx.remote[node.name], ctx.profile, ctx.secrets)
        cs = status.get("wsrep_cluster_status")
        if cs:
            return warn(
                f"mariadbd runs in a {cs} component of size {status.get('wsrep_cluster_size')} "
                f"({status.get('wsrep_local_state_comment')})",
                "nodes will join the running component; nothing will bootstrap over it",
            )
        if conn.run(daemon_pids("mariadbd"), timeout=10).stdout.strip():  # still there: it really runs
            return warn("mariadbd runs without Galera", "the apply step restarts it with the cluster config")
    if uuid and set(uuid) - {"0", "-"}:
        return warn(f"Galera state from an earlier cluster: uuid {uuid}, seqno {seqno}",
                    "the bootstrap recovers from this state; it does not re-initialize the data")
    return ok("no Galera state: a fresh node")
