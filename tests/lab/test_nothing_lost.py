"""Issue 7 on real hosts: recovery keeps the most advanced data whatever the state files say.

Runs on one lab, in order: each test leaves the cluster healthy (or re-forms it first).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.lab.test_cluster import kill9, row_ids, stop_clean, write_rows
from tests.waits import wait_until
from wizard import lab
from wizard.coordinator import BootstrapError, Coordinator, agent_config, key, redis_client
from wizard.nodesql import sql, wsrep_status
from wizard.pipeline import replay
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets
from wizard.status import collect

REPO = Path(__file__).resolve().parents[2]


def healthy(profile: Profile, secrets: Secrets, remote: Remote) -> None:
    if collect(profile, secrets, remote, dns=False).verdict != "healthy":
        replay(profile, secrets, skip_checks=True)


def recover(*extra: str, timeout: float = 500) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wizard", "recover", "profiles/lab.yaml", "--skip-checks", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)


def grastate(name: str) -> str:
    return lab.host_exec(name, ["cat", "/var/lib/mysql/grastate.dat"], check=False).stdout


@pytest.fixture(scope="module", autouse=True)
def fresh_lab(profile: Profile, secrets: Secrets) -> None:
    lab.down(progress=lambda _m: None)
    lab.up(progress=lambda _m: None)


def test_the_donor_stays_healthy_while_the_first_joiner_never_is(profile: Profile, secrets: Secrets) -> None:
    """Issue 7 input 6: during the first join (mariabackup SST, which does not block the donor) the only
    serving node answers 200 on its health endpoint; the joiner answers 503 until it is Synced."""
    import urllib.error
    import urllib.request

    seen: list[tuple[str, int]] = []
    done = threading.Event()

    def code(name: str) -> int:
        try:
            with urllib.request.urlopen(f"http://{profile.node(name).address}:{profile.dns.health_port}/",
                                        timeout=1) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0

    def state(name: str) -> str:
        out = lab.host_exec(name, ["mariadb", "-N", "-B", "-e", "SHOW STATUS LIKE 'wsrep_local_state_comment'"],
                            check=False).stdout
        return out.split("\t")[-1].strip()

    def poll() -> None:
        while not done.is_set():
            for name in ("studio1", "studio2"):
                before = state(name)
                answer = code(name)
                if state(name) == before:  # not on a state change: the answer belongs to this state
                    seen.append((f"{name}:{before}", answer))
            time.sleep(0.1)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    try:
        replay(profile, secrets, skip_checks=True)
    finally:
        done.set()
        t.join(timeout=10)
    donor = [c for s, c in seen if s == "studio1:Donor/Desynced"]
    assert donor, f"never saw studio1 donating: {sorted(set(s for s, _ in seen))}"
    assert set(donor) == {200}, f"the donor answered {set(donor)} while donating by mariabackup"
    joining = [c for s, c in seen if s.startswith("studio2:") and s not in ("studio2:Synced", "studio2:")]
    assert 200 not in joining, "a joiner answered healthy"


def test_crash_during_ddl_keeps_the_node_whose_grastate_is_zeroed(profile: Profile, secrets: Secrets,
                                                                   remote: Remote) -> None:
    """Issue 7 input 1, end to end: A stopped cleanly; B writes, builds a big table, crashes in an ALTER
    (Galera zeroed its grastate.dat); recover must bootstrap B and keep every row and the new table."""
    healthy(profile, secrets, remote)
    sql(remote["studio1"], profile, secrets, "DROP DATABASE IF EXISTS itest; DROP DATABASE IF EXISTS ddl")
    write_rows(remote, profile, secrets, "studio1", 1, 3)
    wait_until("rows on studio2", lambda: row_ids(remote, profile, secrets, "studio2") == {1, 2, 3}, 20)
    stop_clean("studio1")  # A: clean stop, an older position
    write_rows(remote, profile, secrets, "studio2", 10, 5)  # B moves ahead
    sql(remote["studio2"], profile, secrets,
        "CREATE DATABASE ddl; CREATE TABLE ddl.big (id INT PRIMARY KEY AUTO_INCREMENT, pad CHAR(100)) ENGINE=InnoDB;"
        "INSERT INTO ddl.big (pad) SELECT 'x' FROM ddl.seq_1_to_300000", timeout=120)
    alter = threading.Thread(target=lambda: sql(remote["studio2"], profile, secrets,
                                                "ALTER TABLE ddl.big FORCE, ALGORITHM=COPY", timeout=120, check=False),
                             daemon=True)
    alter.start()
    wait_until("Galera to zero studio2's grastate.dat during the ALTER",
               lambda: "00000000-0000-0000-0000-000000000000" in grastate("studio2"), 30, interval=0.05)
    kill9("studio2")
    alter.join(timeout=30)
    assert "seqno:   -1" in grastate("studio2") or "seqno: -1" in grastate("studio2")
    out = recover()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "studio2   bootstrap:running starting mariadbd --wsrep-new-cluster" in out.stdout, out.stdout
    for node in ("studio1", "studio2"):
        assert row_ids(remote, profile, secrets, node) == {1, 2, 3, 10, 11, 12, 13, 14}, node
        count = sql(remote[node], profile, secrets, "SELECT COUNT(*) FROM ddl.big")
        assert count == [["300000"]], (node, count)


def test_unknown_position_blocks_and_force_is_the_way_out(profile: Profile, secrets: Secrets,
                                                          remote: Remote) -> None:
    """A node whose position nobody can find (grastate zeroed and --wsrep-recover failing) blocks an
    automatic bootstrap, naming it; --force-bootstrap of the other node goes through and says what it loses."""
    healthy(profile, secrets, remote)
    stop_clean("studio1")
    kill9("studio2")
    # studio2: a zeroed grastate, and an InnoDB the server cannot open (ibdata1 unreadable to mysql)
    zeroed = ("# GALERA saved state\nversion: 2.1\nuuid:    00000000-0000-0000-0000-000000000000\nseqno:   -1\n"
              "safe_to_bootstrap: 0\n")
    lab.host_exec("studio2", ["sh", "-c", 'printf %s "$1" > /var/lib/mysql/grastate.dat && '
                              "chmod 000 /var/lib/mysql/ibdata1", "sh", zeroed])
    try:
        out = recover(timeout=200)
        assert out.returncode != 0
        assert "studio2 (position unknown" in out.stdout and "--force-bootstrap" in out.stdout, out.stdout
        assert "starting mariadbd --wsrep-new-cluster" not in out.stdout
    finally:
        lab.host_exec("studio2", ["chmod", "660", "/var/lib/mysql/ibdata1"])
    out = recover("--force-bootstrap", "studio1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "forced by the operator" in out.stdout and "lost" in out.stdout, out.stdout


def test_a_server_still_dying_when_recover_starts_is_waited_for_not_refused(profile: Profile, secrets: Secrets,
                                                                            remote: Remote) -> None:
    """A full outage where the most advanced node's mariadbd is still going away when `recover` starts (a kill
    not yet delivered: here the process is frozen with SIGSTOP, and killed once the agent has seen it silent).
    It runs but answers no SQL; registered as it is, its position is unknown and the election refuses (a
    full-suite run of the backup fault drill met exactly this).  The agent waits for it to answer or exit,
    then reads its position from InnoDB: the advanced node bootstraps and no row is lost."""
    healthy(profile, secrets, remote)
    sql(remote["studio1"], profile, secrets, "DROP DATABASE IF EXISTS itest")
    write_rows(remote, profile, secrets, "studio1", 1, 3)
    wait_until("rows on studio2", lambda: row_ids(remote, profile, secrets, "studio2") == {1, 2, 3}, 20)
    stop_clean("studio1")
    write_rows(remote, profile, secrets, "studio2", 10, 3)  # studio2 moves ahead of studio1
    lab.host_exec("studio2", ["pkill", "-STOP", "-x", "mariadbd"])
    proc = subprocess.Popen([sys.executable, "-m", "wizard", "recover", "profiles/lab.yaml", "--skip-checks"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    killed = False
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the kill lands once the agent has seen the silent server, not after a sleep
            lines.append(line)
            if "does not answer SQL" in line and not killed:
                lab.host_exec("studio2", ["pkill", "-KILL", "-x", "mariadbd"], check=False)
                killed = True
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        if not killed:  # never leave a frozen server behind
            lab.host_exec("studio2", ["pkill", "-KILL", "-x", "mariadbd"], check=False)
    stdout = "".join(lines)
    assert proc.returncode == 0, stdout
    assert "does not answer SQL" in stdout and "waiting up to" in stdout, stdout
    assert "has exited; position read from InnoDB" in stdout, stdout
    assert "studio2   bootstrap:running starting mariadbd --wsrep-new-cluster" in stdout, stdout
    for node in ("studio1", "studio2"):
        assert row_ids(remote, profile, secrets, node) == {1, 2, 3, 10, 11, 12}, node


def test_recover_right_after_a_healed_partition_waits_for_the_merge(profile: Profile, secrets: Secrets,
                                                                    remote: Remote) -> None:
    """Issue 7 input 3: link down 10 s, link up, recover at once: the node merges by itself."""
    healthy(profile, secrets, remote)
    lab.host_exec("studio2", ["iptables", "-I", "INPUT", "-p", "tcp", "--dport", "4567", "-j", "DROP"])
    lab.host_exec("studio2", ["iptables", "-I", "OUTPUT", "-p", "tcp", "--dport", "4567", "-j", "DROP"])
    try:
        wait_until("studio2 non-Primary", lambda: wsrep_status(remote["studio2"], profile, secrets)
                   .get("wsrep_cluster_status") == "non-Primary", 30)
        time.sleep(10 - 6)  # the link stays down about 10 s in all
    finally:
        lab.host_exec("studio2", ["iptables", "-D", "INPUT", "-p", "tcp", "--dport", "4567", "-j", "DROP"], check=False)
        lab.host_exec("studio2", ["iptables", "-D", "OUTPUT", "-p", "tcp", "--dport", "4567", "-j", "DROP"],
                      check=False)
    out = recover()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "stop it so it can rejoin" not in out.stdout


def test_killed_garbd_is_counted_by_identity(profile: Profile, secrets: Secrets, remote: Remote) -> None:
    """Issue 7 input 4: kill -9 garbd, recover at once: the dead incarnation is not taken for the new one."""
    healthy(profile, secrets, remote)
    kill9("arbiter", "garbd")
    out = recover()
    assert out.returncode == 0, out.stdout + out.stderr
    st = collect(profile, secrets, remote, dns=False)
    assert st.verdict == "healthy", st.reason
    members = sql(remote["studio1"], profile, secrets, "SELECT node_name FROM mysql.wsrep_cluster_members")
    assert sorted(r[0] for r in members) == ["garb", "studio1", "studio2"], members


@pytest.mark.parametrize("failover", [False, True], ids=["lock-expired", "sentinel-failover"])
def test_a_paused_winner_never_starts_a_second_primary(profile: Profile, secrets: Secrets, remote: Remote,
                                                       failover: bool) -> None:
    """Issue 7 input 5: the winning agent freezes (SIGSTOP) right after it took the lock and token; the lock
    expires, a second run wins and forms the cluster; the first, resumed, must refuse: one Primary only.
    With ``failover`` the Redis master also dies while the winner is frozen (Sentinel promotes a replica,
    which may or may not have the lock): the fencing check still stops the first winner."""
    from wizard import labredis

    healthy(profile, secrets, remote)
    stop_clean("arbiter", "garbd")
    stop_clean("studio2")
    stop_clean("studio1")  # studio1 left last: safe_to_bootstrap 1, it wins both runs
    first: dict[str, Any] = {}
    first_run = f"paused-{uuid.uuid4().hex[:8]}"  # events of an earlier test must not stand for this one
    coordinator = Coordinator(profile, secrets, remote)
    coordinator.ship_agent()
    node = profile.node("studio1")
    # The first winner runs alone (forced, so it need not wait for the others), with a run dir of its own
    # so that its node-local agent lock does not hold the second run back.
    cfg = agent_config(profile, secrets, node, run_id=first_run, force="studio1",
                       timeouts={"lock_ttl": 3, "test_stop_after_lock": 1, "run_dir": "/run/studio-cluster-paused"})

    def run_first() -> None:
        with Remote(profile) as r:
            first["out"] = Coordinator(profile, secrets, r)._run_agent(node, "bootstrap", cfg, 300)

    t = threading.Thread(target=run_first, daemon=True)
    t.start()
    client = redis_client(profile, secrets)
    try:
        def stopped_pid() -> int | None:
            for _id, f in client.xrange(key(profile, "events"), "-", "+"):
                if f.get("run") == first_run and "bootstrap lock taken" in f.get("message", ""):
                    return int(f["pid"])
            return None

        pid = wait_until("the first run's winner to take the lock", stopped_pid, 120)
        dead_master = ""
        if failover:
            dead_master = labredis.master_host()
            labredis.stop_host_redis(dead_master)
            def promoted() -> bool:
                try:
                    return labredis.master_host() != dead_master
                except labredis.LabRedisError:
                    return False  # mid-failover: no Sentinel names a master yet

            wait_until("Sentinel to promote a new master", promoted, 60)
        wait_until("the first winner's lock to expire", lambda: not client.exists(key(profile, "bootstrap-lock")), 30)
        try:
            try:
                second = coordinator.bootstrap(run_id=f"second-{uuid.uuid4().hex[:8]}")
            except BootstrapError as exc:
                events = "\n".join(f"{e.node:9} {e.step}:{e.state} {e.message}" for e in exc.report.events)
                raise AssertionError(f"the second run failed: {exc}\n{events}") from None
        finally:
            if dead_master:
                labredis.start_host_redis(dead_master)
        assert second.ok
        assert second.outcomes["studio1"].action == "bootstrap"
    finally:
        client.close()
    lab.host_exec("studio1", ["kill", "-CONT", str(pid)], check=False)
    t.join(timeout=120)
    assert "lost the bootstrap lock" in str(first.get("out", {}).get("error")), first
    st = collect(profile, secrets, remote, dns=False)
    assert st.verdict == "healthy", st.reason
    conf = {wsrep_status(remote[n], profile, secrets)["wsrep_cluster_state_uuid"] for n in ("studio1", "studio2")}
    assert len(conf) == 1


@pytest.mark.drill  # 26 s: make drills (make test's time budget)
def test_status_is_degraded_when_the_coordination_store_is_down(profile: Profile, secrets: Secrets,
                                                                remote: Remote) -> None:
    """Issue 7 input 7: every Redis down: the cluster serves, but no recovery could run."""
    from wizard import labredis

    healthy(profile, secrets, remote)
    hosts = [n.name for n in profile.nodes]
    for name in hosts:
        labredis.stop_host_redis(name)
    try:
        out = subprocess.run([sys.executable, "-m", "wizard", "status", "profiles/lab.yaml"], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 1, out.stdout + out.stderr
        assert "degraded" in out.stdout and "coordination store" in out.stdout, out.stdout
    finally:
        for name in hosts:
            labredis.start_host_redis(name, wait=False)
        labredis.await_healthy(60)


def test_status_is_degraded_when_a_health_endpoint_is_dead(profile: Profile, secrets: Secrets,
                                                           remote: Remote) -> None:
    """Issue 16 input 8: the endpoint the DNS record checks is part of the verdict."""
    healthy(profile, secrets, remote)
    pid = lab.host_exec("studio2", ["cat", f"{profile.services.run_dir}/daemon.pid"]).stdout.strip()
    lab.host_exec("studio2", ["kill", "-9", pid])
    try:
        st = collect(profile, secrets, remote, dns=False)
        assert st.verdict == "degraded" and "studio2's health endpoint" in st.reason, st.reason
    finally:
        replay(profile, secrets, skip_checks=True)  # ensure_daemons starts it again
    assert collect(profile, secrets, remote, dns=False).verdict == "healthy"
