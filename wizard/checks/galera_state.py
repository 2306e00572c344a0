"""An existing Galera cluster on a node is detected and reported, never trampled."""

from __future__ import annotations

from wizard.checks.base import CheckContext, Outcome, ok, register, warn
from wizard.checks.facts import node_fact
from wizard.nodesql import sql, wsrep_status
from wizard.profile import Node, Role
from wizard.remote import daemon_pids

OWN_SCHEMAS = ("SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN "
               "('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY schema_name")


@register("galera-state", "Existing cluster", order=80)
def existing_cluster(ctx: CheckContext, node: Node) -> Outcome:
    conn = ctx.remote[node.name]
    if node.role is Role.ARBITER:
        if node_fact(ctx, node, "daemon")["pids"].strip():  # the probe: wizard.checks.facts.DAEMON
            # a running cluster is not a problem: re-running on it is the day-2 path (newcomer finding)
            return ok("garbd is already running; it is reconfigured only if its settings change")
        return ok("no garbd running")
    daemon = node_fact(ctx, node, "daemon")  # grastate.dat's text and mariadbd's pids
    state_text, pids = daemon["grastate"], daemon["pids"]
    fields = dict(
        line.split(":", 1) for line in state_text.splitlines() if ":" in line and not line.startswith("#")
    )
    uuid = fields.get("uuid", "").strip()
    seqno = fields.get("seqno", "").strip()
    if pids.strip():
        status = wsrep_status(ctx.remote[node.name], ctx.profile, ctx.secrets)
        cs = status.get("wsrep_cluster_status")
        if cs == "Primary" and status.get("wsrep_local_state_comment") == "Synced":
            return ok(f"mariadbd runs in a Primary component of size {status.get('wsrep_cluster_size')} (Synced): "
                      "nodes join it; nothing bootstraps over it")
        if cs and (cs != "Disconnected" or status.get("wsrep_connected") == "ON"):
            return warn(
                f"mariadbd runs in a {cs} component of size {status.get('wsrep_cluster_size')} "
                f"({status.get('wsrep_local_state_comment')})",
                "nodes will join the running component; nothing will bootstrap over it",
            )
        if not status:
            if conn.run(daemon_pids("mariadbd"), timeout=10).stdout.strip():  # still there: it really runs
                return warn("mariadbd runs but answers no SQL (starting, stuck, or waiting for a Primary Component "
                            "that no longer exists)", "the bootstrap inspects it again; if it stays so, see its "
                            "error log")
        else:
            wsrep_on = sql(conn, ctx.profile, ctx.secrets, "SELECT @@wsrep_on", check=False)
            if wsrep_on and wsrep_on[0] and wsrep_on[0][0] == "1":
                return warn(f"mariadbd runs with Galera but outside any cluster ({cs or 'Disconnected'})",
                            "the bootstrap inspects it and joins or re-forms the cluster")
            own = [r[0] for r in sql(conn, ctx.profile, ctx.secrets, OWN_SCHEMAS, check=False)]
            held = (f"with {len(own)} database(s) of its own ({', '.join(own[:5])}{', ...' if len(own) > 5 else ''})"
                    if own else "with no database of its own")
            return warn(f"mariadbd runs standalone, without Galera (wsrep_on=0), {held}",
                        "replay stops it cleanly and starts it as a Galera node; the node that bootstraps keeps its "
                        "data, a node that joins receives the other's by SST and its own databases are replaced")
    if uuid and set(uuid) - {"0", "-"}:
        return warn(f"Galera state from an earlier cluster: uuid {uuid}, seqno {seqno}",
                    "the bootstrap recovers from this state; it does not re-initialize the data")
    return ok("no Galera state: a fresh node")
