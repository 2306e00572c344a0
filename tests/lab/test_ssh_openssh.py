"""SSH behaves as OpenSSH does, against real sshd processes in a lab host (issue 9, items 3-6).

Extra sshd instances run inside lab host studio1 on ports 2222-2224 with a host key of their own (so a
key recorded for port 22 is a *different* key there), their own authorized_keys and MaxSessions.  Each
known_hosts case is also given to OpenSSH's ssh(1) (StrictHostKeyChecking=yes), and our verdict must
be the same as its exit status."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from wizard import lab
from wizard.profile import Node, Profile
from wizard.remote import AuthError, HostKeyError, NodeConnection, RemoteError

HOST = "studio1"
PASSPHRASE = "correct horse battery"
TEST_DIR = "/tmp/sc-ssh-openssh-test"  # inside the lab host (its private /tmp)


@dataclass
class Sshd:
    port: int
    pid: int


@dataclass
class Keys:
    ed25519: Path
    rsa_pem: Path
    host_pub: str  # "ssh-ed25519 AAAA..." of the extra sshds
    port22_pub: str  # the lab sshd's key on port 22


def _banner(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5) as s:
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _wait(what: str, predicate: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout}s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def keys(profile: Profile, tmp_path_factory: pytest.TempPathFactory) -> Keys:
    d = tmp_path_factory.mktemp("keys")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-C", "", "-f", str(d / "ed")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASSPHRASE, "-C", "",
                    "-f", str(d / "rsa")], check=True)
    inside = lab.host_path(HOST, TEST_DIR)
    shutil.rmtree(inside, ignore_errors=True)
    inside.mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(inside / "host_ed25519")],
                   check=True)
    authorized = [lab.key_path().with_suffix(".pub").read_text().strip(),
                  (d / "ed.pub").read_text().strip(), (d / "rsa.pub").read_text().strip()]
    (inside / "authorized_keys").write_text("\n".join(authorized) + "\n")
    host_pub = " ".join((inside / "host_ed25519.pub").read_text().split()[:2])
    port22 = " ".join(lab.host_path(HOST, "/etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2])
    return Keys(d / "ed", d / "rsa", host_pub, port22)


def _start_sshd(port: int, max_sessions: int) -> Sshd:
    ip = lab.HOSTS[HOST]
    cfg = lab.host_path(HOST, f"{TEST_DIR}/sshd_{port}.conf")
    cfg.write_text(f"""ListenAddress {ip}
Port {port}
HostKey {TEST_DIR}/host_ed25519
PidFile {TEST_DIR}/sshd_{port}.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile {TEST_DIR}/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
MaxStartups 100:30:200
MaxSessions {max_sessions}
""")
    pid = lab.host_spawn(HOST, ["/usr/sbin/sshd", "-D", "-e", "-f", f"{TEST_DIR}/sshd_{port}.conf"],
                         log=f"{TEST_DIR}/sshd_{port}.log")
    _wait(f"test sshd on {ip}:{port} to answer", lambda: _banner(ip, port))
    return Sshd(port, pid)


@pytest.fixture(scope="module")
def sshds(keys: Keys) -> Iterator[dict[int, Sshd]]:
    started: dict[int, Sshd] = {}
    try:
        for port, sessions in ((2222, 10), (2223, 2), (2224, 0)):
            started[port] = _start_sshd(port, sessions)
        yield started
    finally:
        for s in started.values():
            lab.host_exec(HOST, ["kill", str(s.pid)], check=False)
        shutil.rmtree(lab.host_path(HOST, TEST_DIR), ignore_errors=True)


def _node(profile: Profile, port: int, known: Path, key_file: Path | None = None) -> Node:
    node = profile.node(HOST)
    ssh = node.ssh.model_copy(update={"port": port, "known_hosts": known,
                                      **({"key_file": key_file} if key_file else {})})
    return node.model_copy(update={"ssh": ssh})


def _hashed(name: str) -> str:
    salt = os.urandom(20)
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def _openssh_accepts(port: int, known: Path) -> bool:
    proc = subprocess.run(
        ["ssh", "-F", "/dev/null", "-p", str(port), "-i", str(lab.key_path()), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
         "-o", "ConnectTimeout=5", "-o", "CheckHostIP=no", f"root@{lab.HOSTS[HOST]}", "true"],
        capture_output=True, text=True, timeout=30)
    return proc.returncode == 0


def _ours_accepts(node: Node) -> tuple[bool, Exception | None, NodeConnection]:
    conn = NodeConnection(node)
    try:
        conn.run("true", privileged=False, timeout=15)
        return True, None, conn
    except HostKeyError as exc:
        return False, exc, conn
    finally:
        conn.close()


UNPARSABLE = [
    "@cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "this line is not a known_hosts line",
    "sk.example.com sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIA==",
    "bad.example.com ssh-ed25519 not-base64!",
]


@pytest.mark.parametrize("case", ["plain", "hashed", "bracketed-hashed", "plain-host-for-2222",
                                  "wrong-plain-host-for-2222", "wildcard", "negated", "unknown"])
def test_known_hosts_matching_agrees_with_openssh(case: str, profile: Profile, keys: Keys, sshds: dict[int, Sshd],
                                                  tmp_path: Path) -> None:
    ip = lab.HOSTS[HOST]
    port, lines = {
        "plain": (22, [f"{ip} {keys.port22_pub}"]),
        "hashed": (22, [f"{_hashed(ip)} {keys.port22_pub}"]),
        "bracketed-hashed": (2222, [f"{_hashed(f'[{ip}]:2222')} {keys.host_pub}"]),
        "plain-host-for-2222": (2222, [f"{ip} {keys.host_pub}"]),  # OpenSSH: "found matching key w/out port"
        "wrong-plain-host-for-2222": (2222, [f"{ip} {keys.port22_pub}"]),
        "wildcard": (2222, [f"[198.18.0.1?]:2222 {keys.host_pub}"]),
        "negated": (2222, [f"[198.18.0.*]:2222,![{ip}]:2222 {keys.host_pub}"]),
        "unknown": (22, [f"198.18.0.99 {keys.port22_pub}"]),
    }[case]
    known = tmp_path / "known_hosts"
    known.write_text("\n".join([*UNPARSABLE, *lines]) + "\n")
    openssh = _openssh_accepts(port, known)
    ours, exc, _ = _ours_accepts(_node(profile, port, known))
    assert ours == openssh, f"{case}: OpenSSH {'accepts' if openssh else 'refuses'}, we {exc or 'accept'}"
    assert openssh == (case not in ("wrong-plain-host-for-2222", "negated", "unknown"))
    if not ours:
        assert isinstance(exc, HostKeyError) and "is not in" in exc.message, exc


def test_unparsable_lines_are_skipped_and_reported_once(profile: Profile, keys: Keys, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("\n".join([*UNPARSABLE, f"{lab.HOSTS[HOST]} {keys.port22_pub}"]) + "\n")
    first = NodeConnection(_node(profile, 22, known))
    second = NodeConnection(_node(profile, 22, known))
    try:
        assert first.run("id -u", privileged=False).stdout.strip() == "0"
        assert second.run("id -u", privileged=False).stdout.strip() == "0"
    finally:
        first.close()
        second.close()
    (note,) = first.notes
    for n in (1, 2, 3, 4):
        assert f"{known}:{n}:" in note
    assert "@cert-authority" in note and "sk-ssh-ed25519@openssh.com is not supported" in note
    assert second.notes == []  # once per process, not once per node


def test_changed_key_on_2222_names_the_bracketed_entry(profile: Profile, keys: Keys, sshds: dict[int, Sshd],
                                                       tmp_path: Path) -> None:
    ip = lab.HOSTS[HOST]
    known = tmp_path / "known_hosts"
    # the good port-22 entry, and a stale entry for port 2222 (that port now presents another key)
    known.write_text(f"{ip} {keys.port22_pub}\n[{ip}]:2222 {keys.port22_pub}\n")
    assert not _openssh_accepts(2222, known)
    ok, exc, _ = _ours_accepts(_node(profile, 2222, known))
    assert not ok and isinstance(exc, HostKeyError)
    assert f"does not match known_hosts entry {known}:2" in exc.message
    assert f"ssh-keygen -R '[{ip}]:2222' -f {known}" in exc.hint, exc.hint
    # following the hint removes the stale entry and keeps the good one
    subprocess.run(["ssh-keygen", "-R", f"[{ip}]:2222", "-f", str(known)], check=True, capture_output=True)
    assert known.read_text() == f"{ip} {keys.port22_pub}\n"
    assert _ours_accepts(_node(profile, 22, known))[0]


@pytest.mark.parametrize("which", ["ed25519", "rsa_pem"])
def test_encrypted_key_is_reported_as_encrypted_and_works_with_agent_or_passphrase(
        which: str, profile: Profile, keys: Keys, sshds: dict[int, Sshd], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    key = getattr(keys, which)
    known = tmp_path / "known_hosts"
    known.write_text(f"[{lab.HOSTS[HOST]}]:2222 {keys.host_pub}\n")
    node = _node(profile, 2222, known, key_file=key)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)

    conn = NodeConnection(node)
    with pytest.raises(AuthError) as info:
        conn.run("true", privileged=False)
    assert "is encrypted (passphrase-protected)" in info.value.message
    assert "ssh-add" in info.value.hint and "passphrase" in info.value.hint
    assert "authorized_keys" not in info.value.hint and "sshd runs" not in info.value.hint

    with_passphrase = NodeConnection(node, key_passphrase=PASSPHRASE)
    try:
        assert with_passphrase.run("id -u", privileged=False).stdout.strip() == "0"
    finally:
        with_passphrase.close()

    wrong = NodeConnection(node, key_passphrase="not it")
    with pytest.raises(AuthError) as info:
        wrong.run("true", privileged=False)
    assert "passphrase does not decrypt" in info.value.message

    sock = tmp_path / "agent.sock"
    agent = subprocess.run(["ssh-agent", "-a", str(sock)], capture_output=True, text=True, check=True)
    agent_pid = int(agent.stdout.split("SSH_AGENT_PID=")[1].split(";")[0])
    try:
        askpass = tmp_path / "askpass"
        askpass.write_text(f"#!/bin/sh\necho '{PASSPHRASE}'\n")
        askpass.chmod(0o700)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock), "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force",
               "DISPLAY": ":0"}
        subprocess.run(["ssh-add", str(key)], env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL,
                       timeout=30)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        through_agent = NodeConnection(node)
        try:
            assert through_agent.run("id -u", privileged=False).stdout.strip() == "0"
        finally:
            through_agent.close()
    finally:
        os.kill(agent_pid, signal.SIGTERM)


def test_max_sessions_2_is_back_pressure(profile: Profile, keys: Keys, sshds: dict[int, Sshd],
                                         tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"[{lab.HOSTS[HOST]}]:2223 {keys.host_pub}\n")
    conn = NodeConnection(_node(profile, 2223, known))
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            results[i] = conn.run(f"sleep 0.3; echo {i}", privileged=False, timeout=60).stdout.strip()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(7)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        conn.close()
    assert not errors, errors
    assert results == {i: str(i) for i in range(7)}
    assert 1 <= conn.channel_limit <= 2


def test_no_session_allowed_names_max_sessions(profile: Profile, keys: Keys, sshds: dict[int, Sshd],
                                               tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"[{lab.HOSTS[HOST]}]:2224 {keys.host_pub}\n")
    conn = NodeConnection(_node(profile, 2224, known))
    try:
        with pytest.raises(RemoteError) as info:
            conn.run("true", privileged=False, timeout=20)
    finally:
        conn.close()
    assert "refused to open even one session channel" in info.value.message
    assert "MaxSessions" in info.value.hint


def test_ssh_check_passes_every_node_with_a_cert_authority_line(profile: Profile, tmp_path: Path) -> None:
    from wizard.checks import run_checks
    from wizard.checks.base import Status
    from wizard.secrets import Secrets

    known = tmp_path / "known_hosts"
    known.write_text(UNPARSABLE[0] + "\n" + lab.known_hosts_path().read_text())
    nodes = [n.model_copy(update={"ssh": n.ssh.model_copy(update={"known_hosts": known})}) for n in profile.nodes]
    copy = profile.model_copy(update={"nodes": nodes})
    results = [r for r in run_checks(copy, Secrets.resolve_for(profile), only=["ssh"]) if r.check == "ssh"]
    assert sorted(r.node for r in results) == sorted(n.name for n in profile.nodes)
    assert all(r.status is Status.OK for r in results), [(r.node, r.summary) for r in results]
    mentions = [r for r in results if f"{known}:1: @cert-authority" in r.summary]
    assert len(mentions) == 1, [r.summary for r in results]  # reported once, not once per node
