"""known_hosts matching by OpenSSH's rules (pure logic; the lab test compares it with ssh(1) itself)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
from pathlib import Path

import paramiko
import pytest

from wizard.known_hosts import KnownHosts, Status, host_name, match_hosts, preferred_key_types
from wizard.ssh_keys import key_info, load_private_key


def _gen() -> paramiko.PKey:
    return paramiko.ECDSAKey.generate()


def _line(hosts: str, key: paramiko.PKey, marker: str = "") -> str:
    return f"{marker} {hosts} {key.get_name()} {key.get_base64()}".strip()


def _hashed(name: str) -> str:
    salt = b"0123456789abcdefghij"
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def test_host_name_brackets_non_default_ports() -> None:
    assert host_name("h", 22) == "h"
    assert host_name("h", 2222) == "[h]:2222"


@pytest.mark.parametrize(("hosts", "name", "expected"), [
    ("a.example.com,10.0.0.1", "10.0.0.1", True),
    ("A.Example.COM", "a.example.com", True),
    ("*.example.com", "db.example.com", True),
    ("*.example.com,!db.example.com", "db.example.com", False),
    ("[10.0.0.?]:2222", "[10.0.0.5]:2222", True),
    ("[10.0.0.5]:2222", "10.0.0.5", False),
    ("10.0.0.5", "[10.0.0.5]:2222", False),
    (_hashed("[10.0.0.5]:2222"), "[10.0.0.5]:2222", True),
    (_hashed("10.0.0.5"), "10.0.0.6", False),
])
def test_match_hosts(hosts: str, name: str, expected: bool) -> None:
    assert match_hosts(hosts, name) is expected


def test_bad_and_unsupported_lines_are_skipped_not_fatal() -> None:
    good = _gen()
    text = "\n".join([
        "# comment", "",
        "@cert-authority *.example.com " + good.get_name() + " " + good.get_base64(),
        "garbage",
        "h sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIA==",
        "h ssh-ed25519 !!!notbase64",
        "@weird h " + good.get_name() + " " + good.get_base64(),
        _line("h", good),
    ])
    kh = KnownHosts.parse(text, "kh")
    assert [s.line for s in kh.skipped] == [3, 4, 5, 6, 7]
    assert kh.verify("h", 22, good).status is Status.OK


def test_statuses_follow_openssh() -> None:
    k22, k2222, other = _gen(), _gen(), _gen()
    kh = KnownHosts.parse("\n".join([_line("h", k22), _line("[h]:2222", other)]), "kh")
    assert kh.verify("h", 22, k22).status is Status.OK
    changed = kh.verify("h", 22, other)
    assert changed.status is Status.CHANGED and changed.entry is not None and changed.entry.line == 1
    # [h]:2222 has a key of this type and it differs: changed, and the entry named is line 2
    v = kh.verify("h", 2222, k2222)
    assert v.status is Status.CHANGED and v.name == "[h]:2222" and v.entry is not None and v.entry.line == 2


def test_non_default_port_falls_back_to_the_plain_host_name() -> None:
    k, other = _gen(), _gen()
    kh = KnownHosts.parse(_line("h", k), "kh")
    v = kh.verify("h", 2222, k)
    assert v.status is Status.OK and v.via_plain_host
    assert kh.verify("h", 2222, other).status is Status.NEW  # a different key under the plain name: unknown


def test_revoked_key_is_refused() -> None:
    k = _gen()
    kh = KnownHosts.parse("\n".join([_line("h", k, "@revoked"), _line("h", k)]), "kh")
    assert kh.verify("h", 22, k).status is Status.REVOKED


def test_key_type_preference_puts_known_types_first() -> None:
    available = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    assert preferred_key_types(available, ["ssh-rsa"])[:3] == ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    assert preferred_key_types(available, []) == available


@pytest.mark.parametrize("args", [["-t", "ed25519"], ["-t", "rsa", "-b", "2048", "-m", "PEM"]])
def test_key_info_sees_encryption_and_the_public_half(args: list[str], tmp_path: Path) -> None:
    plain, locked = tmp_path / "plain", tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", *args, "-N", "", "-f", str(plain)], check=True)
    subprocess.run(["ssh-keygen", "-q", *args, "-N", "pw pw", "-f", str(locked)], check=True)
    assert not key_info(plain).encrypted
    info = key_info(locked)
    assert info.encrypted
    assert info.public_blob == base64.b64decode((tmp_path / "locked.pub").read_text().split()[1])
    assert load_private_key(locked, "pw pw").asbytes() == info.public_blob
