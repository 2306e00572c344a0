"""The command lines the agent starts mariadbd and garbd with (manager: direct), in one place: the SSH path
(:meth:`wizard.agent.runtime.Node.start_mariadb`, :meth:`~wizard.agent.runtime.Node.start_garbd`) and the
Kubernetes manifests (:mod:`wizard.k8s`) both build them here, so the two cannot drift apart.

Runs on a node: python3 >= 3.9, stdlib only.
"""

from __future__ import annotations

import shlex
from typing import Dict, List, Optional

DEFAULT_GARBD_LOG = "/var/log/garbd.log"


def mariadbd_argv(mariadbd: str, start_position: Optional[str], new_cluster: bool) -> List[str]:
    """``[mariadbd, --user=mysql, (--wsrep_start_position=UUID:SEQNO), (--wsrep-new-cluster)]``.

    ``start_position`` is what Debian's ``galera_recovery`` prints (None when it printed nothing);
    ``new_cluster`` is the election's decision for this node (only ever True for the fenced winner)."""
    argv = [mariadbd, "--user=mysql"]
    if start_position:
        argv.append("--wsrep_start_position=%s" % start_position)
    if new_cluster:
        argv.append("--wsrep-new-cluster")
    return argv


def parse_shell_vars(text: str) -> Dict[str, str]:
    """``VAR=value`` lines of a Debian /etc/default file (comments and blank lines skipped), without
    executing anything: ``{"GALERA_NODES": "a:4567,b:4567", ...}``."""
    out: Dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        words = shlex.split(value)
        out[key.strip()] = words[0] if len(words) == 1 else " ".join(words)
    return out


def garbd_log(env: Dict[str, str]) -> str:
    """garbd's log file: LOG_FILE of /etc/default/garb, else /var/log/garbd.log."""
    return env.get("LOG_FILE") or DEFAULT_GARBD_LOG


def garbd_argv(garbd: str, env: Dict[str, str], cluster_name: str) -> List[str]:
    """garbd's command line from the variables of /etc/default/garb (:func:`parse_shell_vars`):
    ``[garbd, --address, gcomm://NODES, --group, GROUP, (--options, OPTS), (--workdir, DIR), --log, FILE]``."""
    argv = [garbd, "--address", "gcomm://" + env.get("GALERA_NODES", "").replace(" ", ","),
            "--group", env.get("GALERA_GROUP", cluster_name)]
    if env.get("GALERA_OPTIONS"):
        argv += ["--options", env["GALERA_OPTIONS"]]
    if env.get("WORK_DIR"):
        argv += ["--workdir", env["WORK_DIR"]]
    return argv + ["--log", garbd_log(env)]
