"""The Redis ACL user's rules (wizard.redis_acl) and the profile setting that selects it."""

from __future__ import annotations

import copy

import pytest

from tests.unit.test_profile import base
from wizard.coordinator import redis_config
from wizard.profile import ProfileError, validate_profile
from wizard.redis_acl import COMMANDS, acl_rules, conf_line, setuser_command
from wizard.secrets import Secrets


def test_rules_limit_keys_channels_and_commands() -> None:
    rules = acl_rules("studio-cluster")
    assert rules[:4] == ["resetkeys", "~studio-cluster:*", "resetchannels", "-@all"]
    assert rules[4:] == [f"+{c}" for c in COMMANDS]
    for dangerous in ("flushall", "flushdb", "config", "keys", "acl", "debug", "shutdown", "module", "script"):
        assert dangerous not in COMMANDS
    assert conf_line("u", "pw", "p").startswith("user u reset on >pw resetkeys ~p:* ")
    assert "><password>" in setuser_command("u", "p") and "pw" not in setuser_command("u", "p")


def test_username_is_optional_and_reaches_the_agents_only_when_set() -> None:
    secrets = Secrets("sst", None, "redis-pw")
    assert "redis_username" not in redis_config(validate_profile(base()), secrets)
    data = copy.deepcopy(base())
    data["redis"]["username"] = "studio-cluster"
    assert redis_config(validate_profile(data), secrets)["redis_username"] == "studio-cluster"
    data["redis"]["username"] = "bad user"
    with pytest.raises(ProfileError, match=r"redis\.username"):
        validate_profile(data)
