"""Data directory: initialised (system tables present), empty (replay initialises it), or data without
system tables (never touched: the person decides).  See :mod:`wizard.datadir`."""

from __future__ import annotations

from wizard.checks.base import CheckContext, Outcome, fail, ok, register, warn
from wizard.checks.facts import node_fact
from wizard.datadir import DatadirState, fix_command
from wizard.profile import Node, Role
from wizard.remote import daemon_pids


@register("datadir", "Data directory", roles=(Role.STUDIO,), order=25)
def data_directory(ctx: CheckContext, node: Node) -> Outcome:
    conn = ctx.remote[node.name]
    path = str(ctx.profile.database.data_dir)
    info = node_fact(ctx, node, "datadir")  # wizard.datadir.PROBE, in the node's facts probe
    state = DatadirState(node.name, path, info["state"], info["exists"], info["innodb"], info["dirs"])
    if state.state == "initialised":
        return ok(f"{path} is initialised (system tables present)")
    if conn.run(daemon_pids("mariadbd"), timeout=10).stdout.strip():
        return warn(f"{path} has no system tables (mysql/db.frm) although mariadbd runs",
                    "check database.data_dir: it must be the datadir the running server uses")
    if state.state == "empty":
        what = "does not exist" if not state.exists else "is empty"
        return warn(f"{path} {what}: not initialised (no system tables; mariadbd would abort with "
                    "\"Table 'mysql.db' doesn't exist\")",
                    f"replay initialises it as Debian's package does (mariadb-install-db); by hand on {node.name}: "
                    f"{fix_command(path)}")
    return fail(f"{path} holds data ({state.holds}) but no system tables (mysql/db.frm): not initialised, "
                "or damaged; it is never initialised over",
                f"restore {path} from a backup, or move it aside on {node.name} (mv {path} {path}.old) so replay "
                "initialises an empty one and the node receives the cluster's data by SST")
