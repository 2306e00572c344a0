"""A value of the wrong type is named with the field, what was given, what is expected and an example fix
(issue 11: `port: "three"` used to say pydantic's "Input should be a valid integer, unable to parse...")."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from wizard.profile import ProfileError, validate_profile

BASE: dict[str, Any] = {
    "cluster_name": "studio-prod",
    "nodes": [{"name": "studio1", "role": "studio", "address": "10.20.0.11"},
              {"name": "studio2", "role": "studio", "address": "10.20.0.12"},
              {"name": "arbiter", "role": "arbiter", "address": "10.20.0.13"}],
    "preferred_primary": "studio1",
    "dns": {"authoring_name": "authoring.example.com", "servers": ["10.20.0.53"]},
    "redis": {"url": "redis://10.20.0.20:6379/0"},
    "database": {"sst_password": "env:SST_PASSWORD"},
}


def problems_with(path: tuple[str | int, ...], value: Any) -> list[str]:
    data = copy.deepcopy(BASE)
    cursor: Any = data
    for part in path[:-1]:
        cursor = cursor.setdefault(part, {}) if isinstance(part, str) else cursor[part]
    cursor[path[-1]] = value
    with pytest.raises(ProfileError) as err:
        validate_profile(data, check_files=False)
    return err.value.problems


@pytest.mark.parametrize("path, value, line", [
    (("nodes", 0, "ssh", "port"), "three",
     "nodes[0:studio1].ssh.port: is 'three' (a string), but it must be a whole number; write it like `port: 22`"),
    (("dns", "ttl"), "five", "dns.ttl: is 'five' (a string), but it must be a whole number; write it like `ttl: 5`"),
    (("nodes", 1, "ssh", "sudo"), "maybe",
     "nodes[1:studio2].ssh.sudo: is 'maybe' (a string), but it must be true or false; write it like `sudo: false`"),
    (("redis", "failover_wait_s"), "soon",
     "redis.failover_wait_s: is 'soon' (a string), but it must be a number; write it like `failover_wait_s: 30.0`"),
    (("database", "min_free_mb"), 1.5,
     "database.min_free_mb: is 1.5 (a number), but it must be a whole number (no fraction); "
     "write it like `min_free_mb: 1024`"),
    (("nodes", 2, "ssh", "port"), [22],
     "nodes[2:arbiter].ssh.port: is a list, but it must be a whole number; write it like `port: 22`"),
])
def test_a_type_error_says_field_given_expected_and_an_example(path: tuple[str | int, ...], value: Any,
                                                                line: str) -> None:
    assert problems_with(path, value) == [line]


def test_no_pydantic_wording_is_left_for_scalar_types() -> None:
    for path, value in [(("dns", "ttl"), "x"), (("nodes", 0, "ssh", "sudo"), "x"), (("redis", "failover_wait_s"), "x")]:
        (problem,) = problems_with(path, value)
        assert "Input should be" not in problem and "write it like `" in problem
