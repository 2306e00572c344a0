"""ssh.key_passphrase end to end: a profile whose node uses a passphrase-protected key with
``key_passphrase: file:...`` passes the SSH check through the same Remote every front end builds
(issue 9), and the passphrase never shows.  Reuses the extra sshd on port 2222 of test_ssh_openssh."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lab.test_ssh_openssh import HOST, PASSPHRASE, Keys, Sshd, keys, sshds  # noqa: F401 (fixtures)
from wizard import lab
from wizard.checks import run_checks
from wizard.checks.base import Status
from wizard.profile import Profile, validate_profile
from wizard.secrets import REDACTOR, Secrets


def _profile_with_key(profile: Profile, key: Path, ref: str, known: Path) -> Profile:
    data = profile.model_dump(mode="json")
    for node in data["nodes"]:
        if node["name"] == HOST:
            node["ssh"].update({"port": 2222, "key_file": str(key), "key_passphrase": ref, "known_hosts": str(known)})
    return validate_profile(data, source="test")


@pytest.mark.parametrize("which", ["ed25519", "rsa_pem"])
def test_encrypted_key_with_a_file_passphrase_connects(which: str, profile: Profile, keys: Keys,  # noqa: F811
                                                       sshds: dict[int, Sshd], tmp_path: Path,  # noqa: F811
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # no agent: the passphrase alone must do it
    known = tmp_path / "known_hosts"
    known.write_text(f"[{lab.HOSTS[HOST]}]:2222 {keys.host_pub}\n")
    secret = tmp_path / "key-passphrase"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o600)
    p = _profile_with_key(profile, getattr(keys, which), f"file:{secret}", known)

    results = {r.node: r for r in run_checks(p, Secrets.resolve_for(p), only=["ssh"])}
    assert results[HOST].status is Status.OK, results[HOST].summary
    assert all(r.status is Status.OK for r in results.values()), [(r.node, r.summary) for r in results.values()]
    assert REDACTOR(f"x {PASSPHRASE} y") == "x *** y"

    secret.write_text("not the passphrase\n")
    wrong = _profile_with_key(profile, getattr(keys, which), f"file:{secret}", known)
    bad = {r.node: r for r in run_checks(wrong, Secrets.resolve_for(wrong), only=["ssh"])}[HOST]
    assert bad.status is Status.FAIL
    assert "passphrase does not decrypt" in bad.summary and "ssh.key_passphrase" in bad.fix
    assert "not the passphrase" not in bad.summary + bad.fix
