"""Issue 15: the front end goes away in the middle of the bootstrap of a fresh cluster.

Each test starts from fresh hosts (the lab torn down and brought up again: no cluster ever formed), runs
``studio-cluster replay`` as an operator would, on a pseudo-terminal that is its controlling terminal, and
takes the front end away once the winner has started ``--wsrep-new-cluster``:

- SIGHUP (the terminal closed): the run goes on headless to a healthy cluster, exit 0; the run log and
  ``status`` tell that its terminal hung up;
- SIGKILL: the node agents, detached from the SSH channels that started them, go on; ``status`` right after
  names the interrupted run and its last step; a ``replay`` started at once follows the run still at work
  instead of starting a second one, and completes the cluster.

A third (a drill): studio2's SSH connection killed mid-bootstrap; the front end reconnects and reads the
result its detached agent left on the node.

Either way exactly one ``--wsrep-new-cluster`` start happened: counted from the agents' events and from the
data nodes' journals.  The module sorts after test_systemd_cluster.py and resets the hosts itself.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waits import wait_until
from wizard import labsystemd
from wizard.coordinator import FRONT_NODE, key, redis_client
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.run_history import read_events
from wizard.secrets import Secrets
from wizard.status import collect

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "lab-systemd.yaml"
DATA = ("studio1", "studio2")
NEW_CLUSTER_LOG = "WSREP: gcomm: bootstrapping new group"  # mariadbd's line when it forms a new component


@pytest.fixture
def fresh_hosts(sd_lab: None) -> Iterator[None]:
    """Hosts on which no cluster was ever formed (the session fixture's own reset, once more)."""
    labsystemd.down(progress=lambda _msg: None)
    labsystemd.up(progress=lambda _msg: None)
    yield


def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wizard", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


def on_a_terminal(args: list[str], run_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``studio-cluster ARGS`` in a session of its own whose controlling terminal is a new pty; returns the
    process and the pty's master side (reading it keeps the child's writes from blocking)."""
    master, slave = pty.openpty()

    def ctty() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([sys.executable, "-m", "wizard", *args, "--run-dir", str(run_dir)], stdin=slave,
                            stdout=slave, stderr=slave, preexec_fn=ctty, cwd=REPO)
    os.close(slave)
    os.set_blocking(master, False)
    return proc, master


def drain(master: int) -> bytes:
    out = b""
    try:
        while chunk := os.read(master, 65536):
            out += chunk
    except (BlockingIOError, OSError):
        pass
    return out


class Stream:
    """The cluster's event stream, from the entry after the newest one when the test began."""

    def __init__(self, profile: Profile, secrets: Secrets) -> None:
        self.client = redis_client(profile, secrets)
        self.key = key(profile, "events")
        newest = self.client.xrevrange(self.key, count=1)
        self.since = newest[0][0] if newest else "0-0"
        self.profile = profile

    def events(self) -> list:
        return [e for e in read_events(self.client, self.profile, 5000) if self._after(e.id)]

    def _after(self, entry_id: str) -> bool:
        a, b = (int(x) for x in entry_id.split("-"))
        c, d = (int(x) for x in self.since.split("-"))
        return (a, b) > (c, d)

    def new_cluster_started(self) -> list:
        return [e for e in self.events() if e.extra.get("new_cluster") == "1"]

    def front_runs(self) -> list[str]:
        return [e.run for e in self.events() if e.node == FRONT_NODE and e.step == "run" and e.state == "started"]


def journal_new_cluster_starts() -> int:
    total = 0
    for host in DATA:
        out = labsystemd.host_exec(host, ["journalctl", "-u", "mariadb", "--no-pager", "-o", "cat"], check=False,
                                   timeout=30).stdout
        total += out.count(NEW_CLUSTER_LOG)
    return total


def healthy(profile: Profile, secrets: Secrets) -> bool:
    with Remote(profile) as remote:
        return collect(profile, secrets, remote).healthy


def kill_during_bootstrap(sig: int, profile: Profile, secrets: Secrets,
                          tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, Stream, str]:
    stream = Stream(profile, secrets)
    proc, master = on_a_terminal(["replay", str(PROFILE), "--skip-checks"], tmp_path)
    started = wait_until("the winner to start --wsrep-new-cluster",
                         lambda: (drain(master), stream.new_cluster_started())[1], 120, 0.1)
    assert proc.poll() is None, "the replay ended before it could be interrupted"
    run = stream.front_runs()[-1]
    assert started[0].run == run
    if sig == signal.SIGHUP:
        os.close(master)  # the terminal goes away: the kernel hangs up the session (SIGHUP), writes fail
        master = -1
    else:
        proc.send_signal(sig)
    return proc, master, stream, run


def test_sighup_mid_bootstrap_the_run_goes_on_to_a_healthy_cluster(fresh_hosts: None, sd_profile: Profile,
                                                                     sd_secrets: Secrets, tmp_path: Path) -> None:
    t0 = time.monotonic()
    proc, _master, stream, run = kill_during_bootstrap(signal.SIGHUP, sd_profile, sd_secrets, tmp_path)
    assert proc.wait(timeout=240) == 0, "the replay did not finish after its terminal hung up"
    assert healthy(sd_profile, sd_secrets)
    log = [json.loads(line) for f in tmp_path.glob("run-*.jsonl") for line in f.read_text().splitlines()]
    assert any("hung up" in str(e.get("note", "")) for e in log), "no hangup note in the run log"
    assert any(e.get("step") == "verify" and e.get("state") == "done" for e in log), "the run log has no verify"
    status = cli("status", str(PROFILE), "--json")
    last = json.loads(status.stdout)["last_run"]
    assert (last["run"], last["outcome"]) == (run, "finished") and last["hangup"] > 0, last
    assert len(stream.new_cluster_started()) == 1
    assert journal_new_cluster_starts() == 1
    print(f"SIGHUP drill: {time.monotonic() - t0:.1f}s after the fresh hosts were up")


def test_sigkill_mid_bootstrap_status_names_the_run_and_replay_follows_it(fresh_hosts: None, sd_profile: Profile,
                                                                          sd_secrets: Secrets,
                                                                          tmp_path: Path) -> None:
    t0 = time.monotonic()
    proc, master, stream, run = kill_during_bootstrap(signal.SIGKILL, sd_profile, sd_secrets, tmp_path)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    os.close(master)
    # status right after the kill: the run, that it was interrupted, and its last step
    status = " ".join(cli("status", str(PROFILE)).stdout.split())
    assert f"last run {run}: started" in status, status
    assert "interrupted: its front end went away" in status, status
    assert "last step: " in status, status
    print("status right after the kill:", status[status.index(f"last run {run}"):])
    last = json.loads(cli("status", str(PROFILE), "--json").stdout)["last_run"]
    assert last["run"] == run and last["outcome"] == "interrupted" and last["last_step"], last
    # a replay at once: it follows the run still at work, then completes the cluster
    again = cli("replay", str(PROFILE), "--skip-checks", "--run-dir", str(tmp_path))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    said = " ".join(again.stdout.split())
    assert f"last run {run}" in said or f"run {run}" in said, said[:3000]
    # the agents hold the lease while they work (or it lasts its TTL after them): the replay follows the run
    assert f"run {run} (studio-cluster replay" in said and "is still going: following it" in said, said[:3000]
    assert f"run {run} let the cluster go" in said, said[:3000]
    # the killed run's agents formed the cluster by themselves: the replay's own agents had nothing to do
    assert said.count("agent:finished agent finished: none") == 3, said[-3000:]
    print("the next replay:", " | ".join(line for line in again.stdout.splitlines() if line.lstrip().startswith("run ")
                                         or "(front end)" in line or "agent:" in line))
    assert healthy(sd_profile, sd_secrets)
    assert len(stream.new_cluster_started()) == 1
    assert journal_new_cluster_starts() == 1
    # the interrupted run's agents finished on their own (none failed)
    agents = [e for e in stream.events() if e.run == run and e.step == "agent" and e.state in ("finished", "failed")]
    assert sorted((e.node, e.state) for e in agents) == [("arbiter", "finished"), ("studio1", "finished"),
                                                         ("studio2", "finished")], agents
    print(f"SIGKILL drill: {time.monotonic() - t0:.1f}s after the fresh hosts were up")


@pytest.mark.drill  # about 30 s with its fresh hosts: `make drills` (the two tests above are the must-show)
def test_a_dropped_ssh_connection_mid_bootstrap_loses_nothing(fresh_hosts: None, sd_profile: Profile,
                                                              sd_secrets: Secrets, tmp_path: Path) -> None:
    """studio2's SSH connection is killed (its sshd session processes, SIGKILL) while its agent waits to join:
    the agent, detached, goes on; the front end reconnects and reads its result; the run ends healthy."""
    t0 = time.monotonic()
    stream = Stream(sd_profile, sd_secrets)
    proc, master = on_a_terminal(["replay", str(PROFILE), "--skip-checks"], tmp_path)
    seen = bytearray()
    wait_until("the winner to start --wsrep-new-cluster",
               lambda: (seen.extend(drain(master)), stream.new_cluster_started())[1], 120, 0.1)
    killed = labsystemd.host_exec("studio2", ["sh", "-c", "pids=$(pgrep -f '^sshd: [d]eploy'); kill -9 $pids; "
                                              "echo $pids"], check=False).stdout.split()
    assert killed, "no SSH session of deploy on studio2 to drop"
    while proc.poll() is None:
        seen.extend(drain(master))
        time.sleep(0.2)
    seen.extend(drain(master))
    out = seen.decode(errors="replace")
    os.close(master)
    assert proc.returncode == 0, out[-6000:]
    assert healthy(sd_profile, sd_secrets)
    assert len(stream.new_cluster_started()) == 1 and journal_new_cluster_starts() == 1
    run = stream.front_runs()[-1]
    agents = {e.node: e.extra.get("action") for e in stream.events() if e.run == run and e.step == "agent"
              and e.state == "finished"}
    assert agents == {"studio1": "bootstrap", "studio2": "join", "arbiter": "start"}, agents
    print(f"SSH drop drill: {time.monotonic() - t0:.1f}s after the fresh hosts were up ({len(killed)} sshd killed)")
