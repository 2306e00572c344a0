"""Redis with Sentinel on the three lab hosts: bootstrap and recover succeed with any one host's Redis
(and Sentinel) dead, and across a failover in the middle of a run.  Real processes only: the lab's
Redis/Sentinel are stopped with SIGKILL, the product's own CLI does the rest."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.waits import wait_until
from wizard import lab, labredis
from wizard.coordinator import key, redis_client
from wizard.nodesql import sql, wsrep_status
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets
from wizard.status import collect

REPO = Path(__file__).resolve().parents[2]




def cli(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wizard", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def kill9(name: str, proc: str) -> None:
    lab.host_exec(name, ["pkill", "-9", "-x", proc], check=False)
    wait_until(f"{proc} on {name} to die",
               lambda: lab.host_exec(name, ["pgrep", "-x", proc], check=False).returncode == 1, 20)


def rows(remote: Remote, profile: Profile, secrets: Secrets, node: str) -> set[int]:
    return {int(r[0]) for r in sql(remote[node], profile, secrets, "SELECT id FROM stest.t")}


@pytest.fixture(scope="module", autouse=True)
def fresh_lab_afterwards(lab_up: None) -> Iterator[None]:
    """These tests form clusters; the modules after this one expect fresh hosts, as `lab down; lab up` gives."""
    yield
    lab.down(progress=lambda _m: None)
    lab.up(progress=lambda _m: None)


@pytest.fixture
def sentinel_healthy(lab_up: None) -> Iterator[None]:
    """Every host's Redis and Sentinel running before and after the test."""
    labredis.repair()
    labredis.await_healthy()
    yield
    labredis.repair()
    labredis.await_healthy()


def test_lab_status_shows_sentinel_health(sentinel_healthy: None) -> None:
    st = lab.status()
    assert st.sentinel and st.all_up
    master = labredis.master_host()
    assert f"sentinel: master {master}, replicas 2/2, sentinels agreeing 3/3 (quorum 2); OK" in st.table()
    replica = next(n for n in lab.HOSTS if n != master)
    labredis.stop_host_redis(replica)
    st = lab.status()
    assert not st.sentinel and not st.all_up
    assert f"{replica} redis down" in st.table() and f"{replica} sentinel down" in st.table()
    out = subprocess.run([sys.executable, "-m", "wizard", "lab", "status"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1 and "sentinel: master" in out.stdout and "NOT ok" in out.stdout, out.stdout


@pytest.mark.drill  # 20 s: make drills (make test's time budget); the failover mid-replay test stays in make test
def test_bootstrap_with_the_masters_redis_stopped(sentinel_healthy: None, profile: Profile) -> None:
    """A fresh cluster formed by `replay` (checks included) right after the Redis master's host lost its
    Redis and Sentinel: the agents find the new master through the two Sentinels left."""
    lab.down(progress=lambda _m: None)
    lab.up(progress=lambda _m: None)
    master = labredis.master_host()
    labredis.stop_host_redis(master)
    out = cli("replay", "profiles/lab.yaml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "bootstrap:running starting mariadbd --wsrep-new-cluster" in out.stdout, out.stdout
    assert "is healthy" in out.stdout
    assert labredis.master_host() != master


@pytest.mark.drill  # 15 s: make drills (make test's time budget)
def test_recover_with_a_replicas_redis_stopped(sentinel_healthy: None, profile: Profile, secrets: Secrets,
                                               remote: Remote) -> None:
    """Both data nodes crash; one replica host's Redis and Sentinel are dead; `recover` brings the
    cluster back from the most advanced node with every row."""
    if collect(profile, secrets, remote, dns=False).verdict != "healthy":
        assert cli("replay", "profiles/lab.yaml", "--skip-checks").returncode == 0
    sql(remote["studio1"], profile, secrets, "DROP DATABASE IF EXISTS stest; CREATE DATABASE stest; "
        "CREATE TABLE stest.t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO stest.t VALUES (1),(2),(3)")
    replica = next(n for n in lab.HOSTS if n != labredis.master_host())
    labredis.stop_host_redis(replica)
    kill9("studio1", "mariadbd")
    kill9("studio2", "mariadbd")
    out = cli("recover", "profiles/lab.yaml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "bootstrap:running starting mariadbd --wsrep-new-cluster" in out.stdout, out.stdout
    for node in ("studio1", "studio2"):
        assert rows(remote, profile, secrets, node) == {1, 2, 3}, node


def test_replay_survives_a_failover_in_the_middle(sentinel_healthy: None, profile: Profile, secrets: Secrets,
                                                  remote: Remote) -> None:
    """The Redis master dies while the agents wait for studio2's SST: redis-py's Sentinel client and its
    retries carry every agent and the wizard over to the promoted replica."""
    lab.down(progress=lambda _m: None)
    lab.up(progress=lambda _m: None)
    master = labredis.master_host()
    client = redis_client(profile, secrets)
    stream = key(profile, "events")
    last = client.xrevrange(stream, count=1)
    last_id = last[0][0] if last else "0-0"  # type: ignore[index]
    proc = subprocess.Popen([sys.executable, "-m", "wizard", "replay", "profiles/lab.yaml", "--skip-checks"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def joining() -> bool:
            nonlocal last_id
            for _, entries in client.xread({stream: last_id}, block=200) or []:  # type: ignore[union-attr]
                for entry_id, fields in entries:
                    last_id = entry_id
                    if fields.get("step") == "join" and fields.get("state") == "running":
                        return True
            return proc.poll() is not None

        wait_until("studio2's agent to start joining", joining, 120)
        assert proc.poll() is None, "replay ended before the failover could be staged"
        labredis.stop_host_redis(master)
        output, _ = proc.communicate(timeout=400)
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    assert "is healthy" in output
    assert labredis.master_host() != master
    for node in ("studio1", "studio2"):
        status = wsrep_status(remote[node], profile, secrets)
        assert status.get("wsrep_cluster_status") == "Primary", (node, status)


def test_coordination_check_reads_sentinel_from_each_node(sentinel_healthy: None, profile: Profile,
                                                          secrets: Secrets) -> None:
    from wizard.checks import Status, run_checks

    def redis_results(p: Profile) -> dict[str, Any]:
        return {r.node: r for r in run_checks(p, secrets, only=["ssh", "redis"]) if r.check == "redis"}

    master = labredis.master_host()
    for r in redis_results(profile).values():
        assert r.status is Status.OK, r
        assert f"3/3 Sentinels agree: master {lab.HOSTS[master]}:6379, authenticated, 2 replica(s)" in r.summary
    replica = next(n for n in lab.HOSTS if n != master)
    labredis.stop_host_redis(replica)
    for r in redis_results(profile).values():
        assert r.status is Status.WARN, r  # still usable: a warning, not a failure
        assert f"no answer from {lab.HOSTS[replica]}:26379" in r.summary and "start the Sentinel" in r.fix
    wrong = profile.model_copy(update={"redis": profile.redis.model_copy(update={"master_name": "nosuch"})})
    r = redis_results(wrong)["studio1"]
    assert r.status is Status.FAIL and "knows no master named 'nosuch'" in r.summary
    assert "redis.master_name" in r.fix
    for name in lab.HOSTS:
        labredis.stop_host_redis(name)
    r = redis_results(profile)["arbiter"]
    assert r.status is Status.FAIL and "0 of 3 Sentinels answer from arbiter" in r.summary, r
    assert "start the Sentinels" in r.fix
