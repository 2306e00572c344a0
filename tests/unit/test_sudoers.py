"""``studio-cluster sudoers``: one rule per SSH user, naming only the agent; an installer that is valid shell and
carries this version's agent (the lab test in tests/lab_systemd/test_zz_least_privilege.py runs it)."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
from pathlib import Path

from wizard.agent.rootcmd import ENTRY
from wizard.agent_bundle import agent_digest, build_agent
from wizard.profile import load_profile, profile_to_yaml
from wizard.sudoers import installer_script, not_in_agent_scope, rules

REPO = Path(__file__).resolve().parents[2]


def test_one_rule_per_ssh_user_and_none_for_root(tmp_path: Path) -> None:
    profile = load_profile(REPO / "profiles" / "lab-systemd.yaml", check_files=False)
    profile.nodes[2].ssh = profile.nodes[2].ssh.model_copy(update={"user": "root", "sudo": False})
    found = rules(profile)
    assert [(r.user, r.nodes) for r in found] == [("deploy", ("studio1", "studio2"))]
    assert found[0].line == f"deploy ALL=(root) NOPASSWD: {ENTRY}"
    assert not_in_agent_scope(profile) == ["studio1", "studio2"]
    assert rules(load_profile(REPO / "profiles" / "lab.yaml", check_files=False)) == []


def test_the_installer_is_shell_that_carries_this_agent(tmp_path: Path) -> None:
    script = installer_script()
    path = tmp_path / "install.sh"
    path.write_text(script)
    assert subprocess.run(["sh", "-n", str(path)], capture_output=True).returncode == 0
    body = script.split("<<'STUDIO_CLUSTER_AGENT'\n", 1)[1].split("\nSTUDIO_CLUSTER_AGENT\n", 1)[0]
    bundle = base64.b64decode(body)
    assert bundle == build_agent()
    assert hashlib.sha256(bundle).hexdigest() in script and agent_digest() in script
    assert re.search(r"visudo -cqf /etc/sudoers\.d/studio-cluster\.new", script)  # checked before it counts


def test_cli_prints_the_rule_and_writes_the_installer(tmp_path: Path) -> None:
    profile = load_profile(REPO / "profiles" / "lab-systemd.yaml", check_files=False)
    src = tmp_path / "p.yaml"
    src.write_text(profile_to_yaml(profile))
    out = tmp_path / "inst.sh"
    proc = subprocess.run([sys.executable, "-m", "wizard", "sudoers", str(src), "--installer", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"deploy ALL=(root) NOPASSWD: {ENTRY}" in proc.stdout.splitlines()
    assert "sudo_scope: agent for studio1, studio2, arbiter" in proc.stdout
    assert out.stat().st_mode & 0o777 == 0o755 and out.read_text().startswith("#!/bin/sh")


LISTING = """Matching Defaults entries for deploy on studio1:
    env_reset, mail_badpass, secure_path=/usr/local/sbin\\:/usr/local/bin\\:/usr/sbin\\:/usr/bin, use_pty

User deploy may run the following commands on studio1:
    (ALL) NOPASSWD: ALL
    (root) NOPASSWD: /usr/local/sbin/studio-cluster-agent
    (root) NOPASSWD: SETENV: /usr/bin/systemctl restart x, /usr/local/sbin/studio-cluster-agent
"""


def test_a_broader_rule_left_in_place_is_named() -> None:
    from wizard.checks.ssh import broader_than_agent

    assert broader_than_agent(LISTING) == ["ALL", "/usr/bin/systemctl restart x"]
    only = LISTING.replace("    (ALL) NOPASSWD: ALL\n", "").replace(
        "    (root) NOPASSWD: SETENV: /usr/bin/systemctl restart x, /usr/local/sbin/studio-cluster-agent\n", "")
    assert broader_than_agent(only) == []


def test_the_installer_refuses_arguments_it_does_not_know(tmp_path: Path) -> None:
    path = tmp_path / "install.sh"
    path.write_text(installer_script())
    for args in (["--rule=deploy"], ["deploy"], ["--help"], ["--rule", "deploy", "extra"], ["--rules", "deploy"]):
        proc = subprocess.run(["sh", str(path), *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "usage: sh" in proc.stderr, (args, proc.stderr)


def test_installer_to_a_directory_or_a_missing_one_is_a_usage_error(tmp_path: Path) -> None:
    profile = REPO / "profiles" / "lab-systemd.yaml"
    for target, said in ((tmp_path, "is a directory"), (tmp_path / "no" / "such" / "x.sh", "does not exist")):
        proc = subprocess.run([sys.executable, "-m", "wizard", "sudoers", str(profile), "--installer", str(target)],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "no").exists()


def test_the_manifest_names_a_damaged_file(tmp_path: Path) -> None:
    import hashlib as h
    import json

    from wizard.agent.rootcmd import damaged_files

    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"a.py": h.sha256(b"x = 1\n").hexdigest(), "b.py": "0"}))
    assert damaged_files(str(tmp_path)) == ["b.py"]
    (tmp_path / "a.py").write_text("x = 2\n")
    assert damaged_files(str(tmp_path)) == ["a.py", "b.py"]
    (tmp_path / "MANIFEST.json").unlink()
    assert damaged_files(str(tmp_path)) == []  # an agent the controller unpacked itself has none
