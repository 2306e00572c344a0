"""Recovery BY HAND: the documented manual procedure, scripted with the same ``lab.host_exec`` calls an
operator's shell would make.  Used as the yardstick for the product's recovery time.

* Some data node Primary: give a running non-Primary node 20 s to merge, else stop it; start every stopped
  node with Debian's ``galera_recovery`` start position (it joins by IST/SST); restart garbd if it is not a
  member.
* No Primary anywhere: stop garbd and every mariadbd; ``galera_recovery`` (``--wsrep-recover``) on each
  data node; pick the highest seqno (ties: the preferred primary); set ``safe_to_bootstrap: 1`` there; start
  it with ``--wsrep-new-cluster``; start the other; then garbd.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable

from tests.faults.hostsql import DATA_NODES, pids, signal_pids, wsrep_sample
from wizard import lab
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets
from wizard.status import collect

ARBITER = "arbiter"


class ManualError(Exception):
    """A step of the manual procedure failed; the message names it."""


def _wait(what: str, pred: Callable[[], bool], timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise ManualError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def _primary_synced(node: str) -> bool:
    s = wsrep_sample(node)
    return s.get("wsrep_cluster_status") == "Primary" and s.get("wsrep_local_state_comment") == "Synced"


def stop(node: str, proc: str, timeout: float = 90) -> None:
    signal_pids(node, "TERM", pids(node, proc))
    _wait(f"{proc} on {node} to stop", lambda: not pids(node, proc), timeout)


def start_position(node: str) -> tuple[str, int]:
    """Debian's ``galera_recovery`` on a stopped node: (``uuid:seqno[,gtid]``, seqno); with binary logs and GTIDs on,
    it appends the GTID (``uuid:1687,0-0-0``)."""
    out = lab.host_exec(node, ["/usr/bin/galera_recovery"], check=False, timeout=180)
    m = re.search(r"--wsrep_start_position=(\S+)", out.stdout)
    if not m:
        raise ManualError(f"galera_recovery on {node} found no position: {(out.stderr or out.stdout).strip()[-200:]}")
    pos = m.group(1)
    return pos, int(pos.split(",", 1)[0].rsplit(":", 1)[1])


def start_mariadb(profile: Profile, node: str, position: str | None, new_cluster: bool) -> None:
    argv = [str(profile.services.mariadbd), "--user=mysql"]
    if position:
        argv.append(f"--wsrep_start_position={position}")
    if new_cluster:
        argv.append("--wsrep-new-cluster")
    lab.host_spawn(node, argv, log="/var/log/mysql/mariadbd.out")


def start_garbd(profile: Profile) -> None:
    env: dict[str, str] = {}
    for line in lab.host_exec(ARBITER, ["cat", "/etc/default/garb"]).stdout.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            env[k.strip()] = " ".join(shlex.split(v))
    argv = [str(profile.services.garbd), "--address", "gcomm://" + env.get("GALERA_NODES", "").replace(" ", ","),
            "--group", env.get("GALERA_GROUP", profile.cluster_name)]
    if env.get("GALERA_OPTIONS"):
        argv += ["--options", env["GALERA_OPTIONS"]]
    if env.get("WORK_DIR"):
        argv += ["--workdir", env["WORK_DIR"]]
    log = env.get("LOG_FILE") or "/var/log/garbd.log"
    argv += ["--log", log]
    lab.host_spawn(ARBITER, argv, log=log + ".out")


def _set_safe_to_bootstrap(node: str) -> None:
    lab.host_exec(node, ["sed", "-i", "s/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/", "/var/lib/mysql/grastate.dat"])


def recover_by_hand(profile: Profile, secrets: Secrets, timeout: float = 300) -> list[str]:
    """Bring the lab cluster back to healthy by the manual procedure; returns the steps taken.  Raises
    :class:`ManualError` when a step fails or the cluster is not healthy within `timeout` seconds."""
    steps: list[str] = []
    samples = {n: wsrep_sample(n) for n in DATA_NODES}
    primary = [n for n, s in samples.items() if s.get("wsrep_cluster_status") == "Primary"]
    full_outage = not primary
    if primary:
        for node in DATA_NODES:
            if node in primary:
                continue
            if pids(node, "mariadbd"):
                try:
                    _wait(f"{node} to merge", lambda n=node: _primary_synced(n), 20)  # type: ignore[misc]
                    steps.append(f"{node} merged by itself")
                    continue
                except ManualError:
                    stop(node, "mariadbd")
                    steps.append(f"stopped non-Primary {node}")
            pos, _ = start_position(node)
            start_mariadb(profile, node, pos, new_cluster=False)
            steps.append(f"started {node} at {pos} (join)")
    else:
        if pids(ARBITER, "garbd"):
            stop(ARBITER, "garbd")
            steps.append("stopped garbd")
        for node in DATA_NODES:
            if pids(node, "mariadbd"):
                stop(node, "mariadbd")
                steps.append(f"stopped {node}")
        positions = {n: start_position(n) for n in DATA_NODES}
        order = sorted(DATA_NODES, key=lambda n: (positions[n][1], n == profile.preferred_primary), reverse=True)
        best = order[0]
        _set_safe_to_bootstrap(best)
        start_mariadb(profile, best, positions[best][0], new_cluster=True)
        steps.append(f"seqnos {', '.join(f'{n}={positions[n][1]}' for n in DATA_NODES)}: "
                     f"safe_to_bootstrap + --wsrep-new-cluster on {best}")
        _wait(f"{best} Primary and Synced", lambda: _primary_synced(best), 120)
        for node in order[1:]:
            start_mariadb(profile, node, positions[node][0], new_cluster=False)
            steps.append(f"started {node} (join)")
    for node in DATA_NODES:
        _wait(f"{node} Primary and Synced", lambda n=node: _primary_synced(n), timeout)  # type: ignore[misc]
    sizes = {n: wsrep_sample(n).get("wsrep_cluster_size") for n in DATA_NODES}
    if full_outage or not pids(ARBITER, "garbd") or any(v != "3" for v in sizes.values()):
        if pids(ARBITER, "garbd"):
            stop(ARBITER, "garbd")
        start_garbd(profile)
        steps.append("started garbd")
    remote = Remote(profile)
    try:
        deadline = time.monotonic() + timeout
        while True:
            st = collect(profile, secrets, remote)
            if st.healthy:
                break
            if time.monotonic() > deadline:
                raise ManualError(f"not healthy after the manual procedure: {st.verdict}: {st.reason}")
            time.sleep(0.3)
    finally:
        remote.close()
    return steps
