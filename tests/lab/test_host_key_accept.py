"""Host keys accepted with eyes open (issue 10), through the real CLI against a lab host: an unknown and a
changed key stop the command with the fingerprint the host offered (and the one on file); a wrong
--accept-host-key writes nothing; the right one writes known_hosts and the command goes through."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import paramiko
import yaml

from wizard.known_hosts import KnownHosts, Status, fingerprint
from wizard.profile import Profile
from wizard.remote import NodeConnection

REPO = Path(__file__).resolve().parents[2]
LAB_KNOWN_HOSTS = Path("/var/lib/studio-cluster-lab/known_hosts")
STUDIO1 = "198.18.0.11"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wizard", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def ssh_check(profile_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    res = cli("check", str(profile_path), "--only", "ssh", "--json", *extra)
    try:
        rows = {r["node"]: r["summary"] + " | " + r["fix"] for r in json.loads(res.stdout)["results"]}
    except (ValueError, KeyError):
        rows = {}
    return res, rows


def test_cli_accept_host_key_writes_known_hosts_only_for_the_offered_key(profile: Profile, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    others = [line for line in LAB_KNOWN_HOSTS.read_text().splitlines() if not line.startswith(STUDIO1 + " ")]
    known.write_text("\n".join(others) + "\n")
    data = yaml.safe_load((REPO / "profiles" / "lab.yaml").read_text())
    for node in data["nodes"]:
        node["ssh"]["known_hosts"] = str(known)
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    offered = fingerprint(NodeConnection(profile.node("studio1")).offered_host_key())

    # unknown: refused, naming the offered fingerprint and the flag; nothing written
    before = known.read_text()
    res, rows = ssh_check(path)
    assert res.returncode == 1, res.stderr
    said = rows["studio1"]
    assert f"it offered ssh-ed25519 {offered}" in said and "no key is trusted on first use" in said
    assert f"--accept-host-key studio1={offered}" in rows["studio1"]
    assert known.read_text() == before

    # changed: refused with both fingerprints
    stale = paramiko.Ed25519Key.from_private_key_file(str(_new_key(tmp_path)))
    known.write_text(before + f"{STUDIO1} ssh-ed25519 {stale.get_base64()}\n")
    before = known.read_text()
    res, rows = ssh_check(path)
    assert res.returncode == 1
    assert f"the host offered ssh-ed25519 {offered}, the entry holds {fingerprint(stale)}" in rows["studio1"]

    # a fingerprint that is not the offered key's: refused, nothing written
    res, _ = ssh_check(path, "--accept-host-key", f"studio1={fingerprint(stale)}")
    assert res.returncode == 1
    assert f"offers ssh-ed25519 {offered}, not the {fingerprint(stale)}" in res.stderr, res.stderr
    assert "nothing was written" in res.stderr and known.read_text() == before

    # a malformed value: a usage error before anything connects
    res, _ = ssh_check(path, "--accept-host-key", "studio1=abc")
    assert res.returncode == 2 and "NODE=SHA256:FINGERPRINT" in res.stderr

    # the offered fingerprint: written (the stale entry replaced), and the command goes through
    res, rows = ssh_check(path, "--accept-host-key", f"studio1={offered}")
    assert res.returncode == 0, (res.stderr, rows)
    assert f"studio1: recorded ssh-ed25519 {offered} for {STUDIO1} in {known} (replaced line" in res.stderr
    kh = KnownHosts.parse(known.read_text(), str(known))
    assert kh.verify(STUDIO1, 22, stale).status is Status.CHANGED, "the stale key is no longer trusted"
    assert sum(line.startswith(STUDIO1 + " ") for line in known.read_text().splitlines()) == 1
    res, rows = ssh_check(path)
    assert res.returncode == 0 and "host key verified" in rows["studio1"]


def _new_key(tmp_path: Path) -> Path:
    key = tmp_path / "stale_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key
