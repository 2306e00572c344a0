"""SQL on a node through its own client over SSH (works with Debian's unix-socket root auth).

The admin password, when there is one, reaches the client as a defaults file on stdin, so it never
appears on a command line or in the process list.
"""

from __future__ import annotations

from wizard.agent.rootcmd import RootScript
from wizard.profile import Profile
from wizard.remote import NodeConnection
from wizard.secrets import Secrets

WSREP_KEYS = (
    "wsrep_cluster_status", "wsrep_cluster_size", "wsrep_local_state_comment", "wsrep_ready",
    "wsrep_connected", "wsrep_last_committed", "wsrep_cluster_state_uuid", "wsrep_local_state_uuid",
    "wsrep_flow_control_paused", "wsrep_local_recv_queue", "wsrep_cluster_conf_id", "wsrep_incoming_addresses",
    "wsrep_local_index", "wsrep_evs_state", "wsrep_flow_control_sent", "wsrep_flow_control_recv",
    "wsrep_local_commits", "Uptime",
    # the monitor: identity (who is in the component) and replication figures between polls
    "wsrep_gcomm_uuid", "wsrep_flow_control_paused_ns", "wsrep_local_send_queue", "wsrep_local_cert_failures",
    "wsrep_replicated_bytes", "wsrep_received_bytes",
)


def client_argv(profile: Profile, *extra: str) -> list[str]:
    db = profile.database
    return ["mariadb", "--defaults-extra-file=/dev/stdin", f"--socket={db.socket}", f"--user={db.admin_user}",
            "--batch", "--skip-column-names", "--connect-timeout=5", *extra]


# client_argv with -e STATEMENT: the statement is the client's argument, quoted on the node like every value.
SQL = RootScript("sql-statement", "mariadb --defaults-extra-file=/dev/stdin --socket={socket} --user={user} --batch "
                 "--skip-column-names --connect-timeout=5 -e {statement}")


def defaults_file(secrets: Secrets) -> str:
    return "[client]\n" + (f"password={secrets.admin_password}\n" if secrets.admin_password else "")


def sql(conn: NodeConnection, profile: Profile, secrets: Secrets, statement: str, *, check: bool = True,
        timeout: float = 30) -> list[list[str]]:
    """Run one statement with the node's client; returns rows of tab-separated columns."""
    db = profile.database
    res = conn.run(SQL(socket=str(db.socket), user=db.admin_user, statement=statement),
                   stdin=defaults_file(secrets), check=check, timeout=timeout, what="SQL")
    if res.exit_code != 0:
        return []
    return [line.split("\t") for line in res.stdout.splitlines() if line]


def wsrep_status(conn: NodeConnection, profile: Profile, secrets: Secrets, timeout: float = 10) -> dict[str, str]:
    """The node's wsrep status variables; empty when the server does not answer."""
    names = ",".join(f"'{k}'" for k in WSREP_KEYS)
    rows = sql(conn, profile, secrets, f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})",
               check=False, timeout=timeout)
    return {r[0].lower() if r[0].startswith("wsrep") else r[0]: (r[1] if len(r) > 1 else "") for r in rows}
