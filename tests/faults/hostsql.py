"""SQL on a lab data node through its local socket, entered with nsenter (``lab.host_exec``): it works
while the host is partitioned, because it never touches the network."""

from __future__ import annotations

import subprocess

from wizard import lab

DATA_NODES = ("studio1", "studio2")
WSREP_FIELDS = ("wsrep_cluster_status", "wsrep_local_state_comment", "wsrep_cluster_conf_id",
                "wsrep_cluster_state_uuid", "wsrep_cluster_size", "wsrep_incoming_addresses",
                "wsrep_last_committed")


class HostSQLError(Exception):
    """The statement failed or the server did not answer; the message has the client's error."""


def host_sql(node: str, statement: str, *, timeout: float = 30, database: str = "") -> list[list[str]]:
    """Run `statement` with the node's ``mariadb`` client as root over the unix socket.

    Returns the rows (tab-separated columns split); raises :class:`HostSQLError` on a non-zero exit or a
    timeout (seconds)."""
    argv = ["mariadb", "--batch", "--skip-column-names", "--connect-timeout=2", "-e", statement]
    if database:
        argv.insert(1, f"--database={database}")
    try:
        proc = lab.host_exec(node, argv, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise HostSQLError(f"{node}: no answer in {timeout:g} s") from exc
    except lab.LabError as exc:
        raise HostSQLError(f"{node}: {exc}") from exc
    if proc.returncode != 0:
        raise HostSQLError(f"{node}: {(proc.stderr or proc.stdout).strip()[-300:]}")
    return [line.split("\t") for line in proc.stdout.splitlines() if line]


def wsrep_sample(node: str, timeout: float = 1.5) -> dict[str, str]:
    """The node's wsrep status (:data:`WSREP_FIELDS`, lower-case names); ``{"down": reason}`` when the
    server does not answer."""
    names = ",".join(f"'{k}'" for k in WSREP_FIELDS)
    try:
        rows = host_sql(node, f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})", timeout=timeout)
    except HostSQLError as exc:
        return {"down": str(exc)[:120]}
    return {r[0].lower(): (r[1] if len(r) > 1 else "") for r in rows}


def pids(node: str, pattern: str, *, full: bool = False) -> list[int]:
    """Pids (in the host's own pid namespace) of processes named `pattern` (``pgrep -x``), or whose
    command line matches it (``full``)."""
    argv = ["pgrep", "-f", pattern] if full else ["pgrep", "-x", pattern]
    out = lab.host_exec(node, argv, check=False, timeout=10).stdout
    return [int(p) for p in out.split()]


def signal_pids(node: str, sig: str, host_pids: list[int]) -> None:
    """Send `sig` (``KILL``, ``STOP``, ``CONT``...) to these host pids, by pid."""
    if host_pids:
        lab.host_exec(node, ["kill", f"-{sig}", *map(str, host_pids)], check=False, timeout=10)
