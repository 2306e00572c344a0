"""Every prerequisite check passes on a healthy lab; each fault, made for real, fails its check."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from wizard import lab
from wizard.checks import CLUSTER, CheckResult, Status, run_checks
from wizard.profile import Profile, RedisSettings, save_profile
from wizard.secrets import Secrets


def url_profile(profile: Profile) -> Profile:
    """The lab profile with the single-Redis option (the Redis in sc-infra) instead of Sentinel."""
    return profile.model_copy(update={"redis": RedisSettings(url=f"redis://{lab.INFRA[1]}:{lab.REDIS_PORT}/0",
                                                             password=profile.redis.password)})


def by_key(results: list[CheckResult]) -> dict[tuple[str, str], CheckResult]:
    return {(r.node, r.check): r for r in results}


def test_all_checks_pass_on_a_healthy_lab(profile: Profile, secrets: Secrets) -> None:
    seen: list[CheckResult] = []
    results = run_checks(profile, secrets, on_result=seen.append)
    bad = [r for r in results if r.status is not Status.OK]
    assert not bad, "\n".join(f"{r.node}/{r.check}: {r.status} {r.summary} ({r.fix})" for r in bad)
    nodes = {r.node for r in results}
    assert nodes == {"studio1", "studio2", "arbiter", CLUSTER}
    checks = {r.check for r in results}
    assert checks >= {"ssh", "software", "network", "redis", "names", "authoring-dns", "clock", "disk",
                      "galera-state"}
    assert len(seen) == len(results), "every result is reported as it finishes"
    software = by_key(results)[("studio1", "software")].summary
    assert "wsrep" in software and re.search(r"Galera \d+\.\d+", software), software


def test_sshd_stopped_fails_ssh_and_skips_the_rest(profile: Profile, secrets: Secrets) -> None:
    lab.stop_sshd("studio2")
    try:
        results = by_key(run_checks(profile, secrets))
    finally:
        lab.start_sshd("studio2")
    r = results[("studio2", "ssh")]
    assert r.status is Status.FAIL
    assert "start sshd on studio2" in r.fix
    assert results[("studio2", "software")].status is Status.SKIP
    assert results[("studio1", "ssh")].status is Status.OK


def test_wrong_key_is_refused(profile: Profile, secrets: Secrets, tmp_path: Path) -> None:
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    nodes = [n.model_copy(update={"ssh": n.ssh.model_copy(update={"key_file": key})}) if n.name == "studio1"
             else n for n in profile.nodes]
    bad = profile.model_copy(update={"nodes": nodes})
    r = by_key(run_checks(bad, secrets, only=["ssh"]))[("studio1", "ssh")]
    assert r.status is Status.FAIL
    assert "refused our key" in r.summary
    assert "authorized_keys" in r.fix


def test_changed_host_key_is_rejected_not_accepted(profile: Profile, secrets: Secrets) -> None:
    known_hosts = profile.nodes[0].ssh.known_hosts
    assert known_hosts is not None
    before = known_hosts.read_text()
    lab.regenerate_host_key("studio1")
    try:
        r = by_key(run_checks(profile, secrets, only=["ssh"]))[("studio1", "ssh")]
        assert r.status is Status.FAIL
        assert "does not match known_hosts" in r.summary
        assert "ssh-keygen -R" in r.fix
        assert known_hosts.read_text() == before, "a changed key must never be written to known_hosts"
    finally:
        lab.up(progress=lambda _m: None)  # re-trusts the lab's own (new) key the way the lab does
    assert by_key(run_checks(profile, secrets, only=["ssh"]))[("studio1", "ssh")].status is Status.OK


def test_port_4567_blocked_on_one_node(profile: Profile, secrets: Secrets) -> None:
    lab.block_port("studio2", 4567)
    try:
        results = by_key(run_checks(profile, secrets, only=["ssh", "network"]))
    finally:
        lab.unblock_port("studio2", 4567)
    for src in ("studio1", "arbiter"):
        r = results[(src, "network")]
        assert r.status is Status.FAIL, r
        assert "studio2:4567 timeout" in r.summary
        assert "firewall drops TCP 4567 on studio2" in r.fix
    assert results[("studio2", "network")].status is Status.OK


def test_redis_stopped(profile: Profile, secrets: Secrets) -> None:
    lab.stop_redis()
    try:
        results = by_key(run_checks(url_profile(profile), secrets, only=["ssh", "redis"]))
    finally:
        lab.start_redis()
    for node in ("studio1", "studio2", "arbiter"):
        r = results[(node, "redis")]
        assert r.status is Status.FAIL
        assert "start Redis on 198.18.0.2" in r.fix


def test_wrong_redis_password(profile: Profile, secrets: Secrets) -> None:
    wrong = Secrets(secrets.sst_password, secrets.admin_password, "not-the-password")
    r = by_key(run_checks(profile, wrong, only=["ssh", "redis"]))[("studio1", "redis")]
    assert r.status is Status.FAIL
    assert "rejected the password" in r.summary


def test_dns_record_pointing_elsewhere(profile: Profile, secrets: Secrets) -> None:
    """Without the PowerDNS API the record is the operator's to fix: a failure naming the fix.  With the
    API, apply replaces it: the check says so and passes."""
    without_api = profile.model_copy(
        update={"dns": profile.dns.model_copy(update={"api_url": None, "api_key": "none"})})
    lab.set_authoring_record("A 198.18.0.99")
    try:
        r = by_key(run_checks(without_api, secrets, only=["authoring-dns"]))[(CLUSTER, "authoring-dns")]
        with_api = by_key(run_checks(profile, secrets, only=["authoring-dns"]))[(CLUSTER, "authoring-dns")]
    finally:
        lab.set_authoring_record(None)
    assert r.status is Status.FAIL
    assert "198.18.0.99, which is not a Studio node" in r.summary
    assert "point the record at 198.18.0.11" in r.fix
    assert with_api.status is Status.OK and "replacing A 198.18.0.99" in with_api.summary, with_api


def test_garbd_missing_on_the_arbiter(profile: Profile, secrets: Secrets) -> None:
    lab.hide_binary("arbiter", "/usr/bin/garbd")
    try:
        results = by_key(run_checks(profile, secrets, only=["ssh", "software"]))
    finally:
        lab.unhide_binary("arbiter", "/usr/bin/garbd")
    r = results[("arbiter", "software")]
    assert r.status is Status.FAIL
    assert "garbd is missing" in r.summary
    assert "galera-arbitrator-4" in r.fix
    assert results[("studio1", "software")].status is Status.OK


@pytest.mark.parametrize("as_json", [True, False])
def test_check_command_exit_code_and_json(profile: Profile, as_json: bool, tmp_path: Path) -> None:
    import json
    import sys

    argv = [sys.executable, "-m", "wizard", "check", "profiles/lab.yaml"] + (["--json"] if as_json else [])
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=repo, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    if as_json:
        data = json.loads(out.stdout)
        assert data["verdict"] == "ok", [r for r in data["results"] if r["status"] != "ok"]
        assert {r["node"] for r in data["results"]} >= {"studio1", "studio2", "arbiter", "cluster"}
    else:
        assert "verdict: ok" in out.stdout
    argv[argv.index("profiles/lab.yaml")] = str(save_profile(url_profile(profile), tmp_path / "lab-url.yaml"))
    lab.stop_redis()
    try:
        out = subprocess.run(argv, capture_output=True, text=True, cwd=repo, timeout=120)
    finally:
        lab.start_redis()
    assert out.returncode == 1


def test_many_commands_at_once_on_one_node_stay_within_sshd_max_sessions(profile: Profile) -> None:
    """sshd refuses an 11th concurrent channel (MaxSessions 10): the connection must queue, not fail."""
    from concurrent.futures import ThreadPoolExecutor

    from wizard.remote import Remote

    with Remote(profile) as remote, ThreadPoolExecutor(24) as pool:
        outs = list(pool.map(
            lambda i: remote["studio1"].run(["sh", "-c", 'sleep 0.3; echo "$1"', "probe", str(i)]).stdout.strip(),
            range(24)))
    assert outs == [str(i) for i in range(24)]


def test_replay_with_redis_down_says_what_to_do_without_a_traceback(profile: Profile, tmp_path: Path) -> None:
    """It writes the cluster's files (and leaves them): later check tests must not expect a fresh node."""
    import sys

    repo = Path(__file__).resolve().parents[2]
    url_file = str(save_profile(url_profile(profile), tmp_path / "lab-url.yaml"))
    lab.stop_redis()
    try:
        out = subprocess.run([sys.executable, "-m", "wizard", "replay", url_file, "--skip-checks"],
                             capture_output=True, text=True, cwd=repo, timeout=120)
    finally:
        lab.start_redis()
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "replay failed at bootstrap" in text and "start Redis there" in text, text
    assert "Traceback" not in text


def test_short_lived_mariadbd_invocations_are_not_a_running_server(profile: Profile) -> None:
    """A check runs `mariadbd --version` while another asks whether a server runs: with a bare pgrep (or
    a cmdline read racing the exit) the answer was 'yes' about one time in eight."""
    from wizard.agent.rootcmd import SCRIPTS, catalogue_of, render
    from wizard.remote import daemon_pids

    pids = render(daemon_pids("mariadbd"), catalogue_of(SCRIPTS))  # the command line a node runs
    script = ("( for i in $(seq 150); do /usr/sbin/mariadbd --version >/dev/null; done ) & "
              f"fp=0; for i in $(seq 200); do [ -n \"$({pids})\" ] && fp=$((fp+1)); done; "
              "wait; echo $fp")
    assert lab.host_exec("studio1", ["sh", "-c", script], timeout=120).stdout.strip() == "0"
