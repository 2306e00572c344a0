"""Hostile profile values: every field that reaches a remote shell or path refuses shell syntax, control
characters and absurd lengths, naming the field and the fix; valid values pass unchanged."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_profile import base
from wizard.profile import ProfileError, validate_profile
from wizard.remote_values import PATH_MAX, remote_path, unit_name

PATH_FIELDS = [("database", "data_dir"), ("database", "config_file"), ("database", "provider"),
               ("database", "socket"), ("services", "mariadbd"), ("services", "garbd"), ("services", "run_dir"),
               ("studio", "install_path"), ("studio", "data_path"), ("backups", "root")]
UNIT_FIELDS = [("services", "mariadb_unit"), ("services", "garbd_unit")]
HOSTILE = ["$(touch x)", ";touch x", "/opt/$(touch x)", "/opt/a;touch x", "/opt/`id`", "/opt/a b", "/opt/a'b",
           "/opt/a\nb", "/opt/a\x00b", "/opt/a\tb", "relative/dir", "/opt/#x", "/opt/a\\b", "/opt/a\"b"]


def problems(section: str, name: str, value: Any) -> list[str]:
    data = copy.deepcopy(base())
    data.setdefault(section, {})[name] = value
    with pytest.raises(ProfileError) as err:
        validate_profile(data)
    return err.value.problems


@pytest.mark.parametrize(("section", "name"), PATH_FIELDS + UNIT_FIELDS)
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_refused_naming_the_field(section: str, name: str, value: str) -> None:
    found = problems(section, name, value)
    assert len(found) == 1 and found[0].startswith(f"{section}.{name}: "), found
    assert "e.g." in found[0], "the message shows a valid value"


def test_a_control_character_is_named() -> None:
    (msg,) = problems("database", "data_dir", "/var/lib/my\nsql")
    assert "control character U+000A (line feed)" in msg
    (msg,) = problems("services", "mariadb_unit", "maria\x00db")
    assert "U+0000 (NUL)" in msg


def test_a_5000_character_cluster_name_is_refused_for_its_length() -> None:
    (msg,) = _cluster_name_problems("a" * 5000)
    assert msg == "cluster_name: is 5000 characters long; at most 64 are allowed: shorten it (e.g. studio-prod)"


def _cluster_name_problems(value: str) -> list[str]:
    data = base()
    data["cluster_name"] = value
    with pytest.raises(ProfileError) as err:
        validate_profile(data)
    return err.value.problems


def test_long_paths_and_units_say_their_length() -> None:
    (msg,) = problems("database", "data_dir", "/" + "a" * 5000)
    assert "5001 characters long" in msg and str(PATH_MAX) in msg
    (msg,) = problems("database", "data_dir", "/var/" + "a" * 300)
    assert "component" in msg and "300 characters" in msg
    (msg,) = problems("services", "garbd_unit", "g" * 300)
    assert "300 characters long" in msg and "255" in msg


@pytest.mark.parametrize(("section", "name", "limit"), [("studio", "os_user", 32), ("redis", "key_prefix", 64)])
def test_names_that_reach_a_node_have_a_length_limit(section: str, name: str, limit: int) -> None:
    (msg,) = problems(section, name, "a" * (limit + 1))
    assert msg.startswith(f"{section}.{name}: ") and str(limit) in msg


def test_ssh_user_has_a_length_limit() -> None:
    data = base()
    data["nodes"][0]["ssh"]["user"] = "u" * 5000
    with pytest.raises(ProfileError) as err:
        validate_profile(data)
    assert err.value.problems[0].startswith("nodes[0:studio1].ssh.user: ")


@pytest.mark.parametrize("value", ["mariadb", "mariadb.service", "garb", "mariadb@main", "mariadb@main.service",
                                   "my_db-2:x", "a\\x2db", "foo.bar.service", "x@a@b"])
def test_valid_unit_names(value: str) -> None:
    assert unit_name(value) == value


@pytest.mark.parametrize("value", ["", "mariadb.socket", "foo.bar", "-x", "x@", "x@.service", "@x", "ma ria",
                                   "mariadb;", "é"])
def test_invalid_unit_names(value: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. mariadb"):
        unit_name(value)


def test_valid_paths_pass_unchanged_in_the_profile() -> None:
    data = base()
    data["database"]["data_dir"] = "/srv/db-1/data_2+x@host,a:b=c%d~e"
    data["services"] = {"mariadb_unit": "mariadb@main.service"}
    p = validate_profile(data)
    assert p.database.data_dir == Path("/srv/db-1/data_2+x@host,a:b=c%d~e")
    assert p.services.mariadb_unit == "mariadb@main.service"


_PATH_ALPHABET = st.sampled_from("abcXYZ019/._+@%,:=~-$;()` '\"\\#*?\n\t\x00é")


@given(st.text(_PATH_ALPHABET, min_size=1, max_size=40))
def test_remote_path_accepts_exactly_its_alphabet(text: str) -> None:
    value = "/" + text
    allowed = set("abcXYZ019/._+@%,:=~-")
    long_part = any(len(p) > 255 for p in value.split("/"))
    if set(value) <= allowed and not long_part:
        assert str(remote_path(value)) == str(Path(value))
    else:
        with pytest.raises(ValueError):
            remote_path(value)
