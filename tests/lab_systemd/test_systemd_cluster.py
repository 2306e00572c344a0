"""The product's systemd path on hosts that boot systemd, as the non-root user ``deploy`` with sudo.

In order on one systemd lab: check (the service manager detected), replay (galera_new_cluster,
mariadb.service, garb.service, the health daemon as a unit of its own), status, the health unit
restarted on failure, a host reboot after which the node rejoins by itself, recover after kill -9 of
both servers (and garbd), and a user without sudo rights.  Every wait is a loop with a deadline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.waits import wait_until
from wizard import labsystemd
from wizard.checks import Status, run_checks
from wizard.nodesql import sql
from wizard.pipeline import replay
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets
from wizard.status import collect

REPO = Path(__file__).resolve().parents[2]
DATA = ("studio1", "studio2")




def sh(host: str, script: str, timeout: float = 30) -> str:
    return labsystemd.host_exec(host, ["sh", "-c", script], check=False, timeout=timeout).stdout.strip()


def unit_state(host: str, unit: str) -> tuple[str, str]:
    return sh(host, f"systemctl is-active {unit}"), sh(host, f"systemctl is-enabled {unit}")


def healthy(profile: Profile, secrets: Secrets) -> bool:
    with Remote(profile) as remote:
        return collect(profile, secrets, remote).healthy


def row_ids(remote: Remote, profile: Profile, secrets: Secrets, node: str) -> set[int]:
    return {int(r[0]) for r in sql(remote[node], profile, secrets, "SELECT id FROM itest.t")}


def test_hosts_do_not_share_a_cgroup(sd_profile: Profile) -> None:
    """Each host's systemd manages its own units: sharing one cgroup tree, one host stopping mariadb.service
    removed the cgroup another host was starting it in (status=219/CGROUP)."""
    seen = {}
    for host in labsystemd.HOSTS:
        pid = labsystemd.require_leader(host)
        seen[host] = Path(f"/proc/{pid}/cgroup").read_text()
        assert f"/{labsystemd.CGROUP_GROUP}/{host}/" in seen[host], (host, seen[host])
    assert len(set(seen.values())) == len(seen), seen


def test_check_detects_systemd_and_a_manager_that_says_otherwise(sd_profile: Profile, sd_secrets: Secrets) -> None:
    results = run_checks(sd_profile, sd_secrets)
    bad = [(r.node, r.check, r.summary) for r in results if r.status is not Status.OK]
    assert not bad, bad
    services = [r for r in results if r.check == "services"]
    assert len(services) == 3 and all("systemd" in r.summary for r in services)
    ssh = [r for r in results if r.check == "ssh"]
    assert all("deploy@" in r.summary and "sudo works" in r.summary for r in ssh), ssh

    direct = sd_profile.model_copy(deep=True)
    direct.services.manager = "direct"
    said = [r for r in run_checks(direct, sd_secrets, only=["ssh", "services"]) if r.check == "services"]
    assert all(r.status is Status.WARN and "runs systemd but services.manager is direct" in r.summary
               and "services.manager: systemd" in r.fix for r in said), said


def test_replay_as_deploy_through_sudo(sd_profile: Profile, sd_secrets: Secrets) -> None:
    """Also with Debian's default mariadb.socket on: the check warns, its own port probe starts a standalone
    server through the socket, apply turns the socket off and the bootstrap stops that server."""
    for host in DATA:
        sh(host, "systemctl enable --now mariadb.socket")
    said = [r for r in run_checks(sd_profile, sd_secrets, only=["ssh", "services"]) if r.check == "services"]
    assert [r.status for r in said if r.node in DATA] == [Status.WARN, Status.WARN], said
    assert all("mariadb.socket is enabled" in r.summary for r in said if r.node in DATA), said
    result = replay(sd_profile, sd_secrets, timeouts={"wait_timeout": 60})
    assert result.status is not None and result.status.healthy, result.status
    actions = {n: o.action for n, o in result.bootstrap.outcomes.items()} if result.bootstrap else {}
    assert actions == {"studio1": "bootstrap", "studio2": "join", "arbiter": "start"}, actions
    for host in DATA:
        assert unit_state(host, "mariadb") == ("active", "enabled")
        assert unit_state(host, "mariadb.socket") == ("inactive", "disabled")
        assert sh(host, "ps -o unit= -C mariadbd") == "mariadb.service"
        assert sh(host, "stat -c '%U:%G %a' /etc/mysql/mariadb.conf.d/99-studio-cluster.cnf") == "root:mysql 640"
    assert unit_state("arbiter", "garb") == ("active", "enabled")
    assert sh("arbiter", "ps -o user=,unit= -C garbd").split() == ["nobody", "garb.service"]
    for host in labsystemd.HOSTS:
        assert unit_state(host, "studio-cluster-agent") == ("active", "enabled")
        assert sh(host, "systemctl show -p Restart --value studio-cluster-agent") == "on-failure"
        # every write went through sudo -n as root: nothing of the product's is owned by the ssh user
        owned = sh(host, "find /etc /var/lib/mysql /var/lib/studio-cluster /run/studio-cluster /var/backups "
                         "-xdev -user deploy 2>/dev/null")
        assert owned == "", f"{host}: files owned by deploy: {owned}"
        assert "COMMAND=" in sh(host, "journalctl _COMM=sudo --no-pager -o cat | grep -m1 'deploy :'")
        # sudo logs every command line: secrets travel on stdin, never in argv
        logged = sh(host, "journalctl --no-pager -o cat", timeout=60)
        for which in ("sst_password", "redis_password"):
            assert labsystemd.secret_path(which).read_text().strip() not in logged, f"{which} in {host}'s journal"
    # the authoring name resolves to the preferred primary
    wait_until("the authoring name to answer studio1",
               lambda: labsystemd.dns_query(labsystemd.AUTHORING_NAME) == [labsystemd.HOSTS["studio1"]], 15)


def test_status_is_healthy(sd_profile: Profile, sd_remote: Remote, sd_secrets: Secrets) -> None:
    proc = subprocess.run([sys.executable, "-m", "wizard", "status", str(REPO / "profiles" / "lab-systemd.yaml"),
                           "--json"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    st = json.loads(proc.stdout)
    assert st["verdict"] == "healthy"


def test_health_unit_is_restarted_on_failure(sd_profile: Profile) -> None:
    host, port = labsystemd.HOSTS["studio2"], sd_profile.dns.health_port
    before = sh("studio2", "systemctl show -p MainPID --value studio-cluster-agent")
    sh("studio2", f"kill -9 {before}")

    def answering_again() -> bool:
        pid = sh("studio2", "systemctl show -p MainPID --value studio-cluster-agent")
        if pid in ("", "0", before):
            return False
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    wait_until("the health unit on studio2 to be restarted and answer 200", answering_again, 30)


def test_reboot_rejoins_by_itself(sd_profile: Profile, sd_remote: Remote, sd_secrets: Secrets) -> None:
    sql(sd_remote["studio1"], sd_profile, sd_secrets,
        "CREATE DATABASE IF NOT EXISTS itest; CREATE TABLE IF NOT EXISTS itest.t (id INT PRIMARY KEY) ENGINE=InnoDB; "
        "INSERT INTO itest.t VALUES (1), (2), (3)")
    t0 = time.monotonic()
    labsystemd.reboot("studio2")
    labsystemd.await_booted("studio2", 90)
    booted = time.monotonic() - t0
    sql(sd_remote["studio1"], sd_profile, sd_secrets, "INSERT INTO itest.t VALUES (4)")  # while studio2 rejoins
    wait_until("the cluster to be healthy again after studio2 rebooted",
               lambda: healthy(sd_profile, sd_secrets), 120, interval=1)
    print(f"studio2 booted in {booted:.1f}s, healthy after {time.monotonic() - t0:.1f}s")
    with Remote(sd_profile) as remote:
        assert row_ids(remote, sd_profile, sd_secrets, "studio2") == {1, 2, 3, 4}
    assert unit_state("studio2", "mariadb") == ("active", "enabled")
    assert unit_state("studio2", "studio-cluster-agent") == ("active", "enabled")


def test_arbiter_reboot_rejoins_by_itself(sd_profile: Profile, sd_secrets: Secrets) -> None:
    labsystemd.reboot("arbiter")
    labsystemd.await_booted("arbiter", 90)
    wait_until("garbd on the rebooted Arbiter to be a member again",
               lambda: healthy(sd_profile, sd_secrets), 120, interval=1)
    assert unit_state("arbiter", "garb") == ("active", "enabled")


@pytest.mark.parametrize("with_garbd", [False, True], ids=["servers", "servers-and-garbd"])
def test_recover_after_kill9_of_both_servers(sd_profile: Profile, sd_secrets: Secrets, with_garbd: bool) -> None:
    """systemd restarts a crashed mariadbd (Restart=on-abnormal).  With garbd alive, the restarted servers
    find every member of the last Primary view and Galera restores it by itself; with garbd killed too
    they wait (activating) for a Primary that no longer exists, and recover must stop them and bootstrap
    from the most advanced one."""
    if with_garbd:
        sh("arbiter", "pkill -KILL -x garbd")
    old = {h: sh(h, "pgrep -x mariadbd") for h in DATA}
    for host in DATA:
        sh(host, "pkill -KILL -x mariadbd")
    wait_until("systemd to restart both servers",
               lambda: all(sh(h, "pgrep -x mariadbd") not in ("", old[h]) for h in DATA), 30)
    result = replay(sd_profile, sd_secrets, timeouts={"wait_timeout": 60})
    assert result.status is not None and result.status.healthy, result.status
    with Remote(sd_profile) as remote:
        for host in DATA:
            assert row_ids(remote, sd_profile, sd_secrets, host) == {1, 2, 3, 4}
    if with_garbd:
        # systemd restarted both servers; with no Primary left they wait (activating) for one, and the agent
        # must stop them before it registers, unless systemd had already given up on them by then.
        events = [e.message for e in result.bootstrap.events] if result.bootstrap else []
        stopped = any("no data node is Primary, so stopping it" in m for m in events)
        down = all(any(m.startswith(f"{h} (") and "running False" in m for m in events) for h in DATA)
        assert stopped or down, events


def test_changed_config_rolls_through_the_units(sd_profile: Profile, sd_secrets: Secrets) -> None:
    """Day 2 under systemd: a changed galera.cnf restarts mariadb.service one node at a time."""
    before = {h: sh(h, "systemctl show -p MainPID --value mariadb") for h in DATA}
    changed = sd_profile.model_copy(deep=True)
    changed.database.sst_method = "rsync"
    result = replay(changed, sd_secrets, timeouts={"wait_timeout": 60})
    assert result.status is not None and result.status.healthy, result.status
    for host in DATA:
        assert sh(host, "systemctl show -p MainPID --value mariadb") not in ("", "0", before[host])
        assert "wsrep_sst_method" in sh(host, "grep -h sst_method /etc/mysql/mariadb.conf.d/99-studio-cluster.cnf")
        assert "rsync" in sh(host, "grep -h sst_method /etc/mysql/mariadb.conf.d/99-studio-cluster.cnf")


def test_user_without_sudo_rights_fails_the_check_naming_the_rule(sd_profile: Profile, sd_secrets: Secrets) -> None:
    sh("studio2", "mv /etc/sudoers.d/deploy /root/deploy.sudoers")
    try:
        every = run_checks(sd_profile, sd_secrets, only=["ssh", "network", "disk"])
    finally:
        sh("studio2", "mv /root/deploy.sudoers /etc/sudoers.d/deploy")
    results = [r for r in every if r.node == "studio2" and r.check == "ssh"]
    assert results and results[0].status is Status.FAIL
    assert "sudo -n does not work for deploy" in results[0].summary
    assert "deploy ALL=(root) NOPASSWD: ALL" in results[0].fix and "/etc/sudoers.d/" in results[0].fix
    # what follows from it says so, not something else: the other checks on studio2 name the SSH access finding,
    # and the peers' port checks do not blame a firewall for studio2's missing probe listener
    disk = next(r for r in every if r.node == "studio2" and r.check == "disk")
    assert disk.status is Status.SKIP and "SSH access check failed (sudo -n does not work" in disk.summary, disk
    ports = next(r for r in every if r.node == "studio1" and r.check == "network")
    assert ports.status is Status.WARN and "not checked to studio2" in ports.summary, ports


def test_a_failing_join_is_stopped_not_retried_forever(sd_profile: Profile, sd_secrets: Secrets) -> None:
    """Issue 16 input 5: a join whose SST fails says why in the server's own words, and the unit is stopped
    instead of being restarted by systemd (Restart=on-abnormal) again and again, each time wiping the
    joiner's datadir and desyncing the donor."""
    from wizard.pipeline import PipelineError

    if not healthy(sd_profile, sd_secrets):
        replay(sd_profile, sd_secrets, timeouts={"wait_timeout": 60})
    # an empty datadir: nothing to recover, no IST possible: the join needs a full SST
    sh("studio2", "systemctl stop mariadb && find /var/lib/mysql -mindepth 1 -delete")
    sh("studio1", "mv /usr/bin/mariadb-backup /usr/bin/mariadb-backup.hidden")  # the donor cannot send an SST
    try:
        with pytest.raises(PipelineError) as failed:
            replay(sd_profile, sd_secrets, skip_checks=True, timeouts={"wait_timeout": 60, "join_timeout": 120})
        message = str(failed.value)
        assert "studio2" in message and "[ERROR]" in message, message
        assert "the unit was stopped" in message, message
        restarts = sh("studio2", "systemctl show -p NRestarts --value mariadb")
        time.sleep(12)  # longer than Debian's RestartSec (5 s): a restart loop would show by now
        assert sh("studio2", "systemctl is-active mariadb") in ("inactive", "failed")
        assert sh("studio2", "systemctl show -p NRestarts --value mariadb") == restarts, "systemd kept retrying"
        assert sh("studio1", "mariadb -N -e \"SHOW STATUS LIKE 'wsrep_local_state_comment'\"").endswith("Synced")
    finally:
        sh("studio1", "mv /usr/bin/mariadb-backup.hidden /usr/bin/mariadb-backup")
    result = replay(sd_profile, sd_secrets, timeouts={"wait_timeout": 60})
    assert result.status is not None and result.status.healthy, result.status
