"""The profile model: valid profiles round-trip; every bad one is rejected naming the field."""

from __future__ import annotations

import copy
import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wizard.profile import (
    HOSTNAME_RE,
    ProfileError,
    json_schema,
    load_profile,
    profile_to_yaml,
    save_profile,
    validate_profile,
)

REPO = Path(__file__).resolve().parents[2]


def base() -> dict[str, Any]:
    def node(name: str, role: str, addr: str) -> dict[str, Any]:
        return {"name": name, "role": role, "address": addr, "ssh": {"user": "root", "port": 22}}

    return {
        "cluster_name": "studio-prod",
        "nodes": [node("studio1", "studio", "10.0.0.11"), node("studio2", "studio", "10.0.0.12"),
                  node("arbiter", "arbiter", "10.0.0.13")],
        "preferred_primary": "studio1",
        "dns": {"authoring_name": "authoring.example.com", "servers": ["10.0.0.53"]},
        "redis": {"url": "redis://10.0.0.20:6379/0", "password": "env:REDIS_PASSWORD"},
        "database": {"sst_password": "env:SST_PASSWORD"},
    }


def test_base_profile_is_valid() -> None:
    p = validate_profile(base())
    assert [n.name for n in p.studio_nodes] == ["studio1", "studio2"]
    assert p.arbiter.name == "arbiter"
    assert p.secondary.name == "studio2"
    assert p.redis.host == "10.0.0.20" and p.redis.port == 6379 and p.redis.db == 0


def test_yaml_round_trip_is_lossless(tmp_path: Path) -> None:
    p = validate_profile(base())
    path = save_profile(p, tmp_path / "p.yaml")
    again = load_profile(path)
    assert again == p
    assert profile_to_yaml(again) == profile_to_yaml(p)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "p.yaml"
    target.write_text("old")
    save_profile(validate_profile(base()), target)
    assert [f.name for f in tmp_path.iterdir()] == ["p.yaml"]
    assert "studio-prod" in target.read_text()


def test_no_secret_value_is_accepted() -> None:
    data = base()
    data["database"]["sst_password"] = "hunter2secret"
    with pytest.raises(ProfileError) as err:
        validate_profile(data)
    assert err.value.problems == [
        "database.sst_password: a secret must be a reference, never the value itself: "
        "use env:VARIABLE, file:/path, ask or none"
    ]
    assert "hunter2secret" not in str(err.value)


def test_redis_url_with_password_is_rejected() -> None:
    data = base()
    data["redis"]["url"] = "redis://:s3cret@10.0.0.20:6379/0"
    with pytest.raises(ProfileError) as err:
        validate_profile(data)
    assert err.value.problems[0].startswith("redis.url: the Redis URL holds credentials")


def test_missing_key_file_is_named(tmp_path: Path) -> None:
    data = base()
    data["nodes"][1]["ssh"]["key_file"] = str(tmp_path / "nope")
    with pytest.raises(ProfileError) as err:
        validate_profile(data)
    assert err.value.problems[0].startswith("nodes[1:studio2].ssh.key_file: file")
    assert "does not exist" in err.value.problems[0]


def test_shipped_profiles_are_valid() -> None:
    for name in ("lab.yaml", "example.yaml"):
        load_profile(REPO / "profiles" / name, check_files=False)


def test_schema_names_every_section() -> None:
    schema = json_schema()
    assert set(schema["properties"]) >= {"cluster_name", "nodes", "dns", "redis", "database", "services"}


# -- hypothesis: every bad profile is rejected with an error naming the field --------------------
def _not_ip_or_host(s: str) -> bool:
    s = s.strip()
    try:
        ipaddress.ip_address(s)
        return False
    except ValueError:
        pass
    return not (HOSTNAME_RE.match(s) and not re.fullmatch(r"[0-9.]+", s))


bad_port = st.one_of(st.integers(max_value=0), st.integers(min_value=65536))
bad_name = st.text(min_size=0, max_size=40).filter(lambda s: not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", s))
bad_address = st.text(min_size=0, max_size=40).filter(_not_ip_or_host)
secret_value = st.text(min_size=1, max_size=30).filter(
    lambda s: not re.fullmatch(r"(env:[A-Za-z_][A-Za-z0-9_]*|file:/\S+|ask|none)", s))


def mutations() -> st.SearchStrategy[tuple[str, Any]]:
    """(field path prefix the error must name, mutate function)."""

    def setter(path: list[Any], prefix: str) -> Any:
        def make(value: Any) -> tuple[str, Any]:
            def mutate(d: dict[str, Any]) -> None:
                cur = d
                for key in path[:-1]:
                    cur = cur[key]
                cur[path[-1]] = value
            return prefix, mutate
        return make

    def dup(attr: str) -> tuple[str, Any]:
        def mutate(d: dict[str, Any]) -> None:
            d["nodes"][1][attr] = d["nodes"][0][attr]
        return "nodes", mutate

    def arbiters(n: int) -> tuple[str, Any]:
        def mutate(d: dict[str, Any]) -> None:
            if n == 0:
                d["nodes"][2]["role"] = "studio"
            else:
                d["nodes"][1]["role"] = "arbiter"
        return "nodes", mutate

    def drop(key: str) -> tuple[str, Any]:
        def mutate(d: dict[str, Any]) -> None:
            del d[key]
        return key, mutate

    node_idx = st.integers(0, 2)
    return st.one_of(
        node_idx.flatmap(lambda i: bad_name.map(setter(["nodes", i, "name"], f"nodes[{i}"))),
        node_idx.flatmap(lambda i: bad_address.map(setter(["nodes", i, "address"], f"nodes[{i}"))),
        node_idx.flatmap(lambda i: bad_port.map(setter(["nodes", i, "ssh", "port"], f"nodes[{i}"))),
        bad_port.map(setter(["dns", "port"], "dns.port")),
        bad_port.map(setter(["database", "port"], "database.port")),
        bad_port.map(setter(["database", "galera_port"], "database.galera_port")),
        secret_value.map(setter(["database", "sst_password"], "database.sst_password")),
        secret_value.map(setter(["redis", "password"], "redis.password")),
        st.text(max_size=20).filter(lambda s: s not in ("studio1", "studio2")).map(
            setter(["preferred_primary"], "preferred_primary")),
        st.sampled_from(["name", "address"]).map(dup),
        st.sampled_from([0, 2]).map(arbiters),
        st.sampled_from(["cluster_name", "nodes", "dns", "redis", "preferred_primary"]).map(drop),
        st.sampled_from(["", "1abc", "has space", "x" * 80]).map(setter(["cluster_name"], "cluster_name")),
        st.sampled_from(["http://x", "redis://", "redis://h:99999/0", "h:6379"]).map(
            setter(["redis", "url"], "redis.url")),
        st.sampled_from(["nope", 3, None, []]).map(setter(["nodes", 0, "role"], "nodes[0")),
        st.sampled_from([["not an ip!"], [], "10.0.0.1"]).map(setter(["dns", "servers"], "dns.servers")),
        st.just(("nodes[0", lambda d: d["nodes"][0]["ssh"].update(key_file="/nonexistent/key"))),
        st.just(("surprise", lambda d: d.update(surprise=1))),
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_every_bad_profile_is_rejected_naming_the_field(mutation: tuple[str, Any]) -> None:
    prefix, mutate = mutation
    data = copy.deepcopy(base())
    mutate(data)
    with pytest.raises(ProfileError) as err:
        validate_profile(data)
    problems = err.value.problems
    assert problems, "a rejection must say what is wrong"
    assert any(p.startswith(prefix) for p in problems), f"no problem names {prefix!r}: {problems}"
    for p in problems:
        assert ": " in p, f"problem without a field: {p!r}"


@given(st.one_of(st.text(), st.integers(), st.lists(st.integers()), st.none()))
def test_garbage_yaml_documents_are_rejected_cleanly(doc: Any) -> None:
    with pytest.raises(ProfileError):
        validate_profile(doc)


def test_invalid_yaml_file_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [unclosed\n")
    with pytest.raises(ProfileError) as err:
        load_profile(bad)
    assert "is not valid YAML" in err.value.problems[0]
    assert yaml  # the YAML library is the one the loader uses
