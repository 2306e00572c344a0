"""Host keys accepted with eyes open: SHA256 fingerprints as ssh-keygen prints them, known_hosts written only
for the key given, and --accept-host-key values checked before anything connects."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import paramiko
import pytest

from tests.unit.test_profile import base
from wizard.host_key_accept import AcceptUsageError, parse_accepts
from wizard.known_hosts import KnownHosts, Status, fingerprint, record, same_fingerprint
from wizard.profile import validate_profile


def test_fingerprint_is_ssh_keygens(tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    key = paramiko.Ed25519Key.from_private_key_file(str(tmp_path / "k"))
    printed = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], check=True, capture_output=True,
                             text=True).stdout.split()[1]
    assert fingerprint(key) == printed and printed.startswith("SHA256:")
    assert same_fingerprint(printed, key) and same_fingerprint(printed + "=", key)
    assert not same_fingerprint(printed[:-1] + ("A" if printed[-1] != "A" else "B"), key)
    assert not same_fingerprint(printed.removeprefix("SHA256:"), key)


def test_record_creates_a_private_file_and_replaces_only_the_changed_entry(tmp_path: Path) -> None:
    old, new, other = paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()
    path = tmp_path / "dir" / "known_hosts"
    assert record(path, "10.0.0.1", old) == []
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    with path.open("a") as fh:
        fh.write(f"10.0.0.2 {other.get_name()} {other.get_base64()}\n# a comment\n")
    assert KnownHosts.parse(path.read_text(), str(path)).verify("10.0.0.1", 22, new).status is Status.CHANGED
    assert record(path, "10.0.0.1", new) == [1]
    kh = KnownHosts.parse(path.read_text(), str(path))
    assert kh.verify("10.0.0.1", 22, new).status is Status.OK
    assert kh.verify("10.0.0.1", 22, old).status is Status.CHANGED, "the old key is no longer accepted"
    assert kh.verify("10.0.0.2", 22, other).status is Status.OK and "# a comment" in path.read_text()
    path.chmod(0o644)
    record(path, "[10.0.0.3]:2222", old)
    assert path.stat().st_mode & 0o777 == 0o644, "an existing file keeps its mode"
    assert KnownHosts.parse(path.read_text(), str(path)).verify("10.0.0.3", 2222, old).status is Status.OK


FP = "SHA256:" + "x" * 43


def test_accept_values_are_checked() -> None:
    profile = validate_profile(copy.deepcopy(base()))
    assert parse_accepts([f"studio1={FP}", f"arbiter={FP}="], profile) == {"studio1": FP, "arbiter": FP + "="}
    for bad, says in ((f"studio9={FP}", "not a node"), ("studio1=MD5:aa", "NODE=SHA256:FINGERPRINT"),
                      ("studio1", "NODE=SHA256"), (f"studio1=SHA256:{'x' * 10}", "NODE=SHA256")):
        with pytest.raises(AcceptUsageError, match=says):
            parse_accepts([bad], profile)
    with pytest.raises(AcceptUsageError, match="two fingerprints"):
        parse_accepts([f"studio1={FP}", f"studio1=SHA256:{'y' * 43}"], profile)
