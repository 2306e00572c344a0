"""Changing a running cluster safely on hosts that boot systemd (issue 16, "Must show"), as ``deploy`` with sudo.

The namespace lab's drills (tests/lab/test_day2.py, tests/lab/test_standalone.py) ported to what differs
under systemd: mariadb.service with Debian's ``Restart=on-abnormal``, garb.service, galera_new_cluster,
Debian's standalone server as the package leaves it, and every remote action through ``sudo -n``.

The knob is the one of the namespace drills: a copy of profiles/lab-systemd.yaml whose SST password is a
file of the module's own; changing it changes ``wsrep_sst_auth`` in the data nodes' config, which owes
mariadb.service a restart.

Order and scopes: the module runs on hosts of its own (down + up, about 3 s, at its start), first the
standalone servers (they need hosts where no cluster was ever formed), and leaves fresh hosts again at its
end, since tests/lab_systemd/test_systemd_cluster.py (same session-scoped ``sd_lab``) expects hosts where
no cluster was ever formed.  Every drill but the first starts from a healthy cluster (``cluster``: formed
there when a drill runs alone) and every drill leaves one (``restored``, ``cluster``), so one failing drill
does not fail the next for the wrong reason.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.lab_systemd.test_systemd_cluster import DATA, sh, unit_state
from tests.waits import wait_until
from wizard import labsystemd
from wizard.apply import apply_files, plan_files
from wizard.checks import Status, run_checks
from wizard.nodesql import sql
from wizard.pipeline import PipelineError, replay
from wizard.profile import Profile, load_profile
from wizard.remote import Remote
from wizard.secrets import Secrets
from wizard.status import collect

pytestmark = pytest.mark.drill  # about 135 s: `make drills`, not `make test`

REPO = Path(__file__).resolve().parents[2]
TIMEOUTS = {"wait_timeout": 60}
CNF = "/etc/mysql/mariadb.conf.d/99-studio-cluster.cnf"
GALERA_PORT = 4567


class Knob:
    """profiles/lab-systemd.yaml with its SST password in a file the test rewrites."""

    def __init__(self, tmp: Path) -> None:
        self.secret = tmp / "sst_password"
        self.original = labsystemd.secret_path("sst_password").read_text().strip()
        self.secret.write_text(self.original + "\n")
        self.secret.chmod(0o600)
        data = yaml.safe_load((REPO / "profiles" / "lab-systemd.yaml").read_text())
        data["database"]["sst_password"] = f"file:{self.secret}"
        self.path = tmp / "lab-systemd-day2.yaml"
        self.path.write_text(yaml.safe_dump(data))

    def set(self, value: str | None = None) -> tuple[Profile, Secrets]:
        """Write `value` as the SST password (None: keep the current one); the profile and its secrets."""
        if value is not None:
            self.secret.write_text(value + "\n")
        profile = load_profile(self.path)
        return profile, Secrets.resolve_for(profile)


@pytest.fixture(scope="module")
def knob(sd_lab: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Knob]:
    labsystemd.down(progress=lambda _m: None)
    labsystemd.up(progress=lambda _m: None)
    yield Knob(tmp_path_factory.mktemp("day2-systemd"))
    # test_systemd_cluster.py (the same lab session) starts from hosts where no cluster was ever formed
    labsystemd.down(progress=lambda _m: None)
    labsystemd.up(progress=lambda _m: None)


def cluster_healthy(profile: Profile, secrets: Secrets) -> bool:
    with Remote(profile) as remote:
        return collect(profile, secrets, remote, dns=False).healthy


def ensure_healthy(knob: Knob) -> None:
    """Undo what a failed drill may have left (hidden binary, dropped packets), then replay until the
    cluster is healthy with the knob's current password."""
    sh("studio1", "[ -e /usr/sbin/mariadbd.hidden ] && mv /usr/sbin/mariadbd.hidden /usr/sbin/mariadbd; true")
    flush_partition("studio2")
    profile, secrets = knob.set()
    if not cluster_healthy(profile, secrets):
        replay(profile, secrets, skip_checks=True, timeouts=TIMEOUTS)
    wait_until("the cluster to be healthy again after the drill", lambda: cluster_healthy(profile, secrets), 60, 1)


@pytest.fixture
def restored(knob: Knob) -> Iterator[Knob]:
    """A healthy cluster after the test (whatever the test left)."""
    yield knob
    ensure_healthy(knob)


@pytest.fixture
def cluster(knob: Knob) -> Iterator[Knob]:
    """A healthy cluster before the test (formed here when the test runs alone) and after it."""
    ensure_healthy(knob)
    yield knob
    ensure_healthy(knob)


def main_pid(host: str, unit: str = "mariadb") -> str:
    return sh(host, f"systemctl show -p MainPID --value {unit}")


def stop_unit(host: str, unit: str = "mariadb") -> None:
    sh(host, f"systemctl stop {unit}", timeout=120)
    assert sh(host, f"systemctl is-active {unit}") in ("inactive", "failed"), f"{unit} on {host} did not stop"


def write_rows(remote: Remote, profile: Profile, secrets: Secrets, node: str, start: int, count: int) -> None:
    values = ",".join(f"({i}, '{node}')" for i in range(start, start + count))
    sql(remote[node], profile, secrets,
        "CREATE DATABASE IF NOT EXISTS itest; CREATE TABLE IF NOT EXISTS itest.t (id INT PRIMARY KEY, "
        f"origin VARCHAR(20)) ENGINE=InnoDB; INSERT INTO itest.t VALUES {values}")


def row_ids(remote: Remote, profile: Profile, secrets: Secrets, node: str) -> set[int]:
    return {int(r[0]) for r in sql(remote[node], profile, secrets, "SELECT id FROM itest.t")}


def host_clock(host: str) -> str:
    return sh(host, "date +%s")


def journal_since(host: str, since: str, unit: str = "mariadb") -> str:
    return sh(host, f"journalctl -u {unit} --since @{since} --no-pager -o cat", timeout=60)


PARTITION_RULES = [f"INPUT -p tcp --dport {GALERA_PORT}", f"OUTPUT -p tcp --dport {GALERA_PORT}",
                   f"INPUT -p tcp --sport {GALERA_PORT}", f"OUTPUT -p tcp --sport {GALERA_PORT}"]


def netns_iptables(host: str, action: str, rule: str, check: bool = True) -> None:
    """iptables in the host's network namespace, run from outside (the hosts have no iptables of their own)."""
    subprocess.run(["ip", "netns", "exec", labsystemd.netns_name(host), "iptables", action, *rule.split(), "-j",
                    "DROP"], check=check, capture_output=True, timeout=10)


def flush_partition(host: str) -> None:
    for rule in PARTITION_RULES:
        for _ in range(3):  # a rule inserted twice needs two deletes
            netns_iptables(host, "-D", rule, check=False)


def test_debian_standalone_servers_become_a_cluster_keeping_the_data(restored: Knob) -> None:
    """Input 7: mariadb.service enabled and running standalone as Debian's package leaves it (wsrep off,
    bound to 127.0.0.1), studio1 holding a database.  The checks say what is true, and replay turns the
    servers into Galera nodes: studio1, the one with the data, bootstraps (galera_new_cluster), studio2
    joins (its data replaced), and the units stay enabled."""
    profile, secrets = restored.set()
    for host in DATA:
        sh(host, "systemctl enable --now mariadb", timeout=120)
        assert unit_state(host, "mariadb") == ("active", "enabled"), host
    sh("studio1", "mariadb -e \"CREATE DATABASE crafter; CREATE TABLE crafter.items (id INT PRIMARY KEY) "
                  "ENGINE=InnoDB; INSERT INTO crafter.items VALUES (1), (2), (3)\"")

    results = {(r.node, r.check): r for r in run_checks(profile, secrets)}
    for host in DATA:
        net = results[(host, "network")]
        assert net.status is Status.OK, f"{host}: {net.summary} ({net.fix})"
        state = results[(host, "galera-state")]
        assert "standalone" in state.summary and "Disconnected" not in state.summary, state.summary
    assert "1 database(s) of its own (crafter)" in results[("studio1", "galera-state")].summary
    assert "no database of its own" in results[("studio2", "galera-state")].summary

    result = replay(profile, secrets, timeouts=TIMEOUTS)
    assert result.status is not None and result.status.healthy, result.status
    assert result.bootstrap is not None
    starts = [e.node for e in result.bootstrap.events if e.step == "bootstrap" and e.extra.get("new_cluster") == "1"]
    assert starts == ["studio1"], ("the node with the data bootstraps", starts)
    with Remote(profile) as remote:
        for host in DATA:
            rows = sql(remote[host], profile, secrets, "SELECT id FROM crafter.items ORDER BY id")
            assert rows == [["1"], ["2"], ["3"]], host
    for host in DATA:
        assert unit_state(host, "mariadb") == ("active", "enabled"), host
        assert sh(host, "ps -o unit= -C mariadbd") == "mariadb.service", host
    assert unit_state("arbiter", "garb") == ("active", "enabled")


def test_a_change_with_one_data_node_down_never_stops_the_last_one(cluster: Knob) -> None:
    """Input 1: mariadb.service on studio1 is stopped and cannot start (its binary hidden: 203/EXEC); the SST
    password changes; replay writes the files but must not restart studio2, the only serving node: the
    restart is reported pending.  Once studio1 can start, the next replay finishes the rollout."""
    profile, secrets = cluster.set("rotated-one")
    with Remote(profile) as remote:
        write_rows(remote, profile, secrets, "studio2", 1, 3)
    stop_unit("studio1")
    before = main_pid("studio2")
    sh("studio1", "mv /usr/sbin/mariadbd /usr/sbin/mariadbd.hidden")
    try:
        with pytest.raises(PipelineError) as failed:
            replay(profile, secrets, skip_checks=True, timeouts=TIMEOUTS)
        assert "studio1" in str(failed.value), str(failed.value)
        assert main_pid("studio2") == before, "studio2, the last serving node, was restarted"
        assert "rotated-one" in sh("studio2", f"grep -h wsrep_sst_auth {CNF}"), "the new file is on disk"
        assert sh("studio2", "mariadb -N -e \"SHOW STATUS LIKE 'wsrep_cluster_status'\"").endswith("Primary")
    finally:
        sh("studio1", "mv /usr/sbin/mariadbd.hidden /usr/sbin/mariadbd")
    result = replay(profile, secrets, skip_checks=True, timeouts=TIMEOUTS)
    assert result.status is not None and result.status.healthy, result.status
    assert main_pid("studio2") != before, "the owed restart of studio2 was finished"
    assert not result.pending_restarts, result.pending_restarts
    with Remote(profile) as remote:
        assert {1, 2, 3} <= row_ids(remote, profile, secrets, "studio1")


def test_sst_password_rotated_under_writes_then_an_sst_succeeds(cluster: Knob) -> None:
    """Input 4: the password changes where it lives (account, running servers, files) with a writer
    running; then a full SST of studio1 (empty datadir, mariabackup, the new password) succeeds."""
    profile, secrets = cluster.set("rotated-two")
    acked: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        with Remote(profile) as remote:
            i = 1000
            while not stop.is_set():
                for node in DATA:
                    try:
                        write_rows(remote, profile, secrets, node, i, 1)
                    except Exception:  # a node restarting refuses: only acknowledged rows count
                        continue
                    acked.append(i)
                    break
                i += 1

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        result = replay(profile, secrets, skip_checks=True, timeouts=TIMEOUTS)
    finally:
        stop.set()
        t.join(timeout=30)
    assert result.status is not None and result.status.healthy, result.status
    assert acked, "the writer never committed"
    for host in DATA:
        assert "rotated-two" in sh(host, f"grep -h wsrep_sst_auth {CNF}"), host

    stop_unit("studio1")
    sh("studio1", "find /var/lib/mysql -mindepth 1 -delete")
    since = host_clock("studio1")
    result = replay(profile, secrets, skip_checks=True, timeouts={**TIMEOUTS, "join_timeout": 120})
    assert result.status is not None and result.status.healthy, result.status
    log = journal_since("studio1", since)
    assert "Access denied" not in log, log[-3000:]
    with Remote(profile) as remote:
        for node in DATA:
            ids = row_ids(remote, profile, secrets, node)
            assert set(acked) <= ids, (node, sorted(set(acked) - ids)[:10])
        users = sql(remote["studio1"], profile, secrets,
                    f"SELECT authentication_string FROM mysql.user WHERE user='{profile.database.sst_user}'")
        assert users and users[0][0].startswith("*"), "the SST account holds a password hash"
    assert unit_state("studio1", "mariadb") == ("active", "enabled")


def test_an_interrupted_rollout_is_finished_by_the_next_run(cluster: Knob) -> None:
    """Input 6: the files were written, then the run stopped before any restart; the next run sees that
    mariadb.service runs a config older than its file and restarts it on both nodes, one at a time; the run
    after that restarts nothing."""
    profile, secrets = cluster.set("rotated-three")
    with Remote(profile) as remote:
        apply_files(plan_files(profile, secrets, remote), remote)  # the run died right here
    pids = {h: main_pid(h) for h in DATA}
    result = replay(profile, secrets, skip_checks=True, timeouts=TIMEOUTS)
    assert not result.applied, "the files were already on disk"
    assert result.status is not None and result.status.healthy, result.status
    assert all(main_pid(h) not in ("", "0", pids[h]) for h in DATA), "every node running the old config restarted"
    again = {h: main_pid(h) for h in DATA}
    replay(profile, secrets, skip_checks=True, timeouts=TIMEOUTS)
    assert {h: main_pid(h) for h in DATA} == again, "a finished rollout restarts nothing"


def test_both_running_but_non_primary_is_reformed_without_a_restart(cluster: Knob) -> None:
    """Input 3: garbd killed (garb.service), then studio2's Galera link cut and healed: both data nodes run,
    non-Primary, and mariadb.service keeps them alive.  recover re-forms the Primary Component on the
    most advanced one with pc.bootstrap (no restart, no "Galera already listens"), then restores garbd.
    Right after the heal Galera may refuse pc.bootstrap for a second while the group merges (ERROR 1210,
    "Cluster configuration change in progress" in the journal): the agent repeats it; the count is printed."""
    profile, secrets = cluster.set()
    sh("arbiter", "systemctl kill -s KILL garb")
    wait_until("garbd to be gone", lambda: sh("arbiter", "pgrep -x garbd") == "", 20)
    for rule in PARTITION_RULES:
        netns_iptables("studio2", "-I", rule)
    try:
        with Remote(profile) as remote:
            wait_until("both data nodes non-Primary", lambda: all(
                collect(profile, secrets, remote, dns=False).node(n).cluster_status == "non-Primary"
                for n in DATA), 40, 0.5)
    finally:
        flush_partition("studio2")
    since = host_clock("studio1")
    pids = {h: main_pid(h) for h in DATA}
    assert all(unit_state(h, "mariadb")[0] == "active" for h in DATA), "the units keep the servers alive"
    out = subprocess.run([sys.executable, "-m", "wizard", "recover", str(cluster.path), "--skip-checks"], cwd=REPO,
                         capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Galera already listens" not in out.stdout
    assert {h: main_pid(h) for h in DATA} == pids, "no data node was restarted"
    refusals = journal_since("studio1", since).count("sending install message for new primary component failed")
    print(f"pc.bootstrap refused {refusals} time(s) while the group merged")
    with Remote(profile) as remote:
        st = collect(profile, secrets, remote, dns=False)
    assert st.verdict == "healthy", st.reason
    assert unit_state("arbiter", "garb") == ("active", "enabled")


def test_no_bootstrap_while_the_arbiter_alone_holds_the_primary_component(cluster: Knob) -> None:
    """Input 2: both mariadb.service units stopped cleanly while garb.service runs, so garbd is left as a
    Primary Component of one.  A new Primary Component on a data node would merge with it and reverse
    history; replay must stop garbd first, then galera_new_cluster, then start garb.service again."""
    profile, secrets = cluster.set()
    with Remote(profile) as remote:
        write_rows(remote, profile, secrets, "studio1", 5000, 3)
    since = {h: host_clock(h) for h in DATA}
    stop_unit("studio2")
    stop_unit("studio1")
    assert unit_state("arbiter", "garb")[0] == "active", "garbd still runs"
    t0 = time.monotonic()
    result = replay(profile, secrets, skip_checks=True, timeouts=TIMEOUTS)
    print(f"re-formed in {time.monotonic() - t0:.1f}s")
    assert result.status is not None and result.status.healthy, result.status
    assert result.bootstrap is not None
    messages = [e.message for e in result.bootstrap.events]
    assert any("stopping garbd" in m or "garbd to stop" in m or "stopping the surviving garbd" in m
               for m in messages), messages
    for h in DATA:
        log = journal_since(h, since[h])
        assert "Reversing history" not in log and "Inconsistent" not in log, (h, log[-3000:])
    with Remote(profile) as remote:
        for h in DATA:
            assert {5000, 5001, 5002} <= row_ids(remote, profile, secrets, h), h
    assert unit_state("arbiter", "garb") == ("active", "enabled")
