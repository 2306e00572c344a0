"""ssh.key_passphrase: a secret reference like the others, resolved per node, redacted, checked against key_file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wizard.profile import ProfileError, validate_profile
from wizard.secrets import REDACTOR, SecretError, Secrets


def data(tmp_path: Path, **ssh: Any) -> dict[str, Any]:
    key = tmp_path / "id_ed25519"
    key.write_text("not read by the model\n")

    def node(name: str, role: str, addr: str) -> dict[str, Any]:
        return {"name": name, "role": role, "address": addr,
                "ssh": {"user": "root", "key_file": str(key), **ssh}}

    return {
        "cluster_name": "studio-prod",
        "nodes": [node("studio1", "studio", "10.0.0.11"), node("studio2", "studio", "10.0.0.12"),
                  node("arbiter", "arbiter", "10.0.0.13")],
        "preferred_primary": "studio1",
        "dns": {"authoring_name": "authoring.example.com", "servers": ["10.0.0.53"]},
        "redis": {"url": "redis://10.0.0.20:6379/0"},
        "database": {"sst_password": "none"},
    }


def test_default_is_none_and_resolves_to_nothing(tmp_path: Path) -> None:
    p = validate_profile(data(tmp_path))
    assert p.nodes[0].ssh.key_passphrase == "none"
    assert Secrets.resolve_for(p).key_passphrases == {}


def test_a_value_instead_of_a_reference_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as err:
        validate_profile(data(tmp_path, key_passphrase="hunter2-literal"))
    text = str(err.value)
    assert "nodes[0:studio1].ssh.key_passphrase" in text and "env:VARIABLE, file:/path, ask or none" in text
    assert "hunter2-literal" not in text


def test_a_passphrase_without_a_key_file_names_both_settings(tmp_path: Path) -> None:
    d = data(tmp_path, key_passphrase="env:KEY_PW")
    del d["nodes"][2]["ssh"]["key_file"]
    with pytest.raises(ProfileError) as err:
        validate_profile(d)
    assert "nodes[2:arbiter].ssh: key_passphrase is set but key_file is not" in str(err.value)


def test_file_reference_resolves_per_node_and_is_redacted(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery\nsecond line ignored\n")
    p = validate_profile(data(tmp_path, key_passphrase=f"file:{pw}"))
    s = Secrets.resolve_for(p, only=set())  # the monitor's narrowest set still resolves key passphrases
    assert s.key_passphrases == {"studio1": "correct horse battery", "studio2": "correct horse battery",
                                 "arbiter": "correct horse battery"}
    assert REDACTOR("ssh failed: correct horse battery") == "ssh failed: ***"
    assert "correct horse" not in repr(s)


def test_ask_prompts_once_for_nodes_sharing_a_key_and_names_the_field(tmp_path: Path) -> None:
    p = validate_profile(data(tmp_path, key_passphrase="ask"))
    asked: list[str] = []
    s = Secrets.resolve_for(p, prompt=lambda what: asked.append(what) or "typed-passphrase")
    assert asked.count("nodes[studio1].ssh.key_passphrase") == 1 and len(
        [a for a in asked if a.endswith("key_passphrase")]) == 1
    assert set(s.key_passphrases.values()) == {"typed-passphrase"} and len(s.key_passphrases) == 3


def test_missing_env_names_the_node_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_PW", raising=False)
    p = validate_profile(data(tmp_path, key_passphrase="env:NO_SUCH_KEY_PW"))
    with pytest.raises(SecretError, match=r"nodes\[studio1\]\.ssh\.key_passphrase: environment variable "
                                          r"NO_SUCH_KEY_PW is not set"):
        Secrets.resolve_for(p)


def test_typed_value_wins_per_node(tmp_path: Path) -> None:
    p = validate_profile(data(tmp_path, key_passphrase="ask"))
    given = {f"key_passphrase:{n}": f"pw-{n}" for n in ("studio1", "studio2", "arbiter")}
    assert Secrets.resolve_for(p, given=given).key_passphrases == {
        "studio1": "pw-studio1", "studio2": "pw-studio2", "arbiter": "pw-arbiter"}
