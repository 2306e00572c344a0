"""Issue 16, least privilege: the whole path with the one sudoers rule ``deploy ALL=(root) NOPASSWD:
/usr/local/sbin/studio-cluster-agent`` and nothing more (``ssh.sudo_scope: agent``).

On fresh systemd hosts: root runs the installer ``studio-cluster sudoers --installer`` writes (as an operator
would), deploy's ``NOPASSWD: ALL`` is taken away, then check, replay (a new cluster), status and a snapshot
backup, all as deploy (a config change rolled through the units: make drills).  sudo's own log shows that every
root command deploy ran was the agent.  Named to sort last: it resets the hosts first and leaves them to the
session's end."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizard import labsystemd
from wizard.agent.rootcmd import ENTRY
from wizard.checks import Status, run_checks
from wizard.pipeline import replay
from wizard.profile import Profile, profile_to_yaml
from wizard.remote import Remote
from wizard.secrets import Secrets

REPO = Path(__file__).resolve().parents[2]
DATA = ("studio1", "studio2")
INSTALLER: dict[str, str] = {}


def sh(host: str, script: str, timeout: float = 30) -> str:
    return labsystemd.host_exec(host, ["sh", "-c", script], check=False, timeout=timeout).stdout.strip()


@pytest.fixture(scope="module")
def agent_only(sd_lab: None, sd_profile: Profile, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Fresh hosts where deploy may run only the installed agent as root; yields the profile's path."""
    labsystemd.down(progress=lambda _msg: None)
    labsystemd.up(progress=lambda _msg: None)
    tmp = tmp_path_factory.mktemp("least-privilege")
    profile = sd_profile.model_copy(deep=True)
    for node in profile.nodes:
        node.ssh.sudo_scope = "agent"
    path = tmp / "agent-scope.yaml"
    path.write_text(profile_to_yaml(profile))
    proc = subprocess.run([sys.executable, "-m", "wizard", "sudoers", str(path), "--installer",
                           str(tmp / "install.sh")], capture_output=True, text=True, timeout=120, cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    assert f"deploy ALL=(root) NOPASSWD: {ENTRY}" in proc.stdout.splitlines()
    installer = (tmp / "install.sh").read_text()
    INSTALLER["text"] = installer
    for host in labsystemd.HOSTS:
        sh(host, "mv /etc/sudoers.d/deploy /root/deploy.sudoers")
        done = labsystemd.host_exec(host, ["sh", "-s", "--", "--rule", "deploy"], input=installer, timeout=120)
        assert "unpacked" in done.stdout and "rule written to /etc/sudoers.d/studio-cluster" in done.stdout
        again = labsystemd.host_exec(host, ["sh", "-s", "--", "--rule", "deploy"], input=installer, timeout=120)
        assert again.returncode == 0  # a re-run changes nothing and fails nothing
        assert sh(host, "stat -c '%U %a' /usr/local/sbin/studio-cluster-agent /etc/sudoers.d/studio-cluster "
                        "/usr/local/lib/studio-cluster") == "root 755\nroot 440\nroot 755"
    yield path
    for host in labsystemd.HOSTS:
        sh(host, "mv /root/deploy.sudoers /etc/sudoers.d/deploy")


def load(path: Path) -> tuple[Profile, Secrets]:
    from wizard.profile import load_profile

    profile = load_profile(path)
    return profile, Secrets.resolve_for(profile)


def test_sudo_allows_the_agent_and_nothing_else(agent_only: Path) -> None:
    profile, secrets = load(agent_only)
    with Remote(profile) as remote:
        conn = remote["studio1"]
        assert conn.run("sudo -n true", privileged=False, check=False).exit_code != 0
        assert conn.run(f"sudo -n {ENTRY} root put", privileged=False, check=False, stdin="{}\n").exit_code == 2
        # a root command that is not a named script is refused before it leaves
        with pytest.raises(Exception, match="not one of the agent's named scripts"):
            conn.run(["id", "-u"])
    results = {r.node: r for r in run_checks(profile, secrets, only=["ssh"])}
    assert all(r.status is Status.OK for r in results.values()), results
    assert "sudo runs only the agent" in results["studio1"].summary


def test_a_broad_rule_left_and_a_damaged_agent_are_named(agent_only: Path) -> None:
    """A NOPASSWD: ALL rule left beside the narrow one is a warning that names it; an installed agent with a
    changed file is damaged (check), refused with the installer as the fix (status), and repaired by a re-run."""
    profile, secrets = load(agent_only)
    sh("studio2", "cp /root/deploy.sudoers /etc/sudoers.d/deploy")
    try:
        said = next(r for r in run_checks(profile, secrets, only=["ssh"]) if r.node == "studio2")
    finally:
        sh("studio2", "rm -f /etc/sudoers.d/deploy")
    assert said.status is Status.WARN and "may run more than the agent" in said.summary and "ALL" in said.summary
    sh("arbiter", "echo '# changed' >> /usr/local/lib/studio-cluster/agent/wizard/agent/rootcmd.py")
    said = next(r for r in run_checks(profile, secrets, only=["ssh"]) if r.node == "arbiter")
    assert said.status is Status.FAIL and "damaged" in said.summary and "rootcmd.py" in said.summary, said
    sh("arbiter", "echo 0 > /usr/local/lib/studio-cluster/agent/DIGEST")
    status = subprocess.run([sys.executable, "-m", "wizard", "status", str(agent_only)], capture_output=True,
                            text=True, timeout=90, cwd=REPO)
    assert status.returncode != 0 and "the agent installed on arbiter is version 0" in status.stdout + status.stderr
    done = labsystemd.host_exec("arbiter", ["sh", "-s"], input=INSTALLER["text"], timeout=120)
    assert "repaired" in done.stdout and "no sudoers rule written" in done.stdout, done.stdout
    assert all(r.status is Status.OK for r in run_checks(profile, secrets, only=["ssh"]))


def test_replay_status_and_backup_with_the_agent_only(agent_only: Path) -> None:
    profile, secrets = load(agent_only)
    result = replay(profile, secrets, timeouts={"wait_timeout": 60})
    assert result.status is not None and result.status.healthy, result.status
    actions = {n: o.action for n, o in result.bootstrap.outcomes.items()} if result.bootstrap else {}
    assert actions == {"studio1": "bootstrap", "studio2": "join", "arbiter": "start"}, actions
    status = subprocess.run([sys.executable, "-m", "wizard", "status", str(agent_only)], capture_output=True,
                            text=True, timeout=90, cwd=REPO)
    assert status.returncode == 0, status.stdout[-2000:] + status.stderr[-1000:]
    take = subprocess.run([sys.executable, "-m", "wizard", "backup", "take", str(agent_only)], capture_output=True,
                          text=True, timeout=240, cwd=REPO)
    assert take.returncode == 0, take.stdout[-2000:] + take.stderr[-1000:]
    listed = subprocess.run([sys.executable, "-m", "wizard", "backup", "list", str(agent_only)], capture_output=True,
                            text=True, timeout=90, cwd=REPO)
    assert listed.returncode == 0 and "complete" in listed.stdout, listed.stdout + listed.stderr
    # sudo logged every command deploy ran as root: each one is the agent
    for host in labsystemd.HOSTS:
        logged = [line for line in sh(host, "journalctl _COMM=sudo --no-pager -o cat", timeout=60).splitlines()
                  if line.lstrip().startswith("deploy :") and "COMMAND=" in line]
        assert logged, host
        others = [line for line in logged if f"COMMAND={ENTRY}" not in line]
        assert others == [] or all("sudo -n true" in o or "COMMAND=/usr/bin/true" in o for o in others), others[:3]


@pytest.mark.drill  # about 60 s: make drills (make test's time budget)
def test_day2_recover_and_verify_with_the_agent_only(agent_only: Path) -> None:
    """Day 2 through the agent: a changed galera.cnf restarts the units one at a time; recover after kill -9 of
    both servers and garbd; the backup verified on a throwaway server."""
    profile, secrets = load(agent_only)
    if not replay(profile, secrets, timeouts={"wait_timeout": 60}).status.healthy:  # type: ignore[union-attr]
        pytest.fail("the cluster is not healthy before the change")
    from tests.lab_systemd.test_systemd_cluster import test_changed_config_rolls_through_the_units as rolls

    rolls(profile, secrets)  # the same day-2 change and checks, here through the agent only
    for host in DATA:
        sh(host, "pkill -KILL -x mariadbd")
    sh("arbiter", "pkill -KILL -x garbd")
    recovered = subprocess.run([sys.executable, "-m", "wizard", "recover", str(agent_only)], capture_output=True,
                               text=True, timeout=400, cwd=REPO)
    assert recovered.returncode == 0, recovered.stdout[-2000:] + recovered.stderr[-1000:]
    take = subprocess.run([sys.executable, "-m", "wizard", "backup", "take", str(agent_only)], capture_output=True,
                          text=True, timeout=240, cwd=REPO)  # its own: this test may run alone
    assert take.returncode == 0, take.stdout[-2000:] + take.stderr[-1000:]
    verify = subprocess.run([sys.executable, "-m", "wizard", "backup", "verify", str(agent_only)],
                            capture_output=True, text=True, timeout=400, cwd=REPO)
    assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-1000:]
