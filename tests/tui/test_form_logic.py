"""The form's pure logic: values <-> profile dict, and each problem line mapped to its input."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tui.conftest import profile_data
from wizard.profile import ProfileError, validate_profile
from wizard.tui.form import (
    GENERAL,
    build_data,
    duplicate_problems,
    map_problems,
    new_cluster_data,
    path_to_key,
    values_from_data,
    with_secret_refs,
)


def problems_of(data: dict[str, Any]) -> list[str]:
    try:
        validate_profile(data)
    except ProfileError as exc:
        return exc.problems
    return []


def test_round_trip_keeps_everything_the_form_does_not_show() -> None:
    data = profile_data()
    data["database"]["min_free_mb"] = 2048
    data["nodes"][2]["ssh"]["connect_timeout"] = 9
    again = build_data(data, values_from_data(data))
    assert validate_profile(again) == validate_profile(data)


def test_arbiter_first_in_the_file_still_lands_in_the_arbiter_column() -> None:
    data = profile_data()
    data["nodes"] = [data["nodes"][2], data["nodes"][0], data["nodes"][1]]
    values = values_from_data(data)
    assert (values["nodes-0-name"], values["nodes-1-name"], values["nodes-2-name"]) == ("studio1", "studio2",
                                                                                       "arbiter")


@pytest.mark.parametrize(("path", "key"), [
    ("nodes[1:studio2].ssh.port", "nodes-1-ssh-port"),
    ("dns.servers[0]", "dns-servers-0"),
    ("cluster_name", "cluster_name"),
])
def test_path_to_key(path: str, key: str) -> None:
    assert path_to_key(path) == key


def test_each_problem_lands_by_its_input() -> None:
    values = values_from_data(profile_data())
    values["nodes-1-address"] = "10.20.0.300"
    values["nodes-2-ssh-port"] = "70000"
    values["dns-servers"] = "not an address!"
    values["redis-url"] = "http://x"
    mapped = map_problems(problems_of(build_data(profile_data(), values)), values)
    assert "neither an IP address nor a host name" in mapped["nodes-1-address"][0]
    assert "65535" in mapped["nodes-2-ssh-port"][0]
    assert mapped["dns-servers"] and mapped["redis-url"]
    assert GENERAL not in mapped


def test_duplicate_names_mark_both_name_inputs() -> None:
    values = values_from_data(profile_data())
    values["nodes-1-name"] = "studio1"
    mapped = map_problems(problems_of(build_data(profile_data(), values)), values)
    assert mapped["nodes-0-name"] == mapped["nodes-1-name"]
    assert "share the name 'studio1'" in mapped["nodes-0-name"][0]


def test_duplicates_are_reported_even_when_another_node_is_invalid() -> None:
    values = values_from_data(profile_data())
    values["nodes-1-name"] = "studio1"
    values["nodes-2-address"] = "300.1.1.1"
    problems = problems_of(build_data(profile_data(), values))
    assert not any(p.startswith("nodes: ") for p in problems)  # the core cannot tell yet
    mapped = map_problems(problems + duplicate_problems(values, problems), values)
    assert "share the name" in mapped["nodes-1-name"][0]
    assert mapped["nodes-2-address"]


def test_problems_outside_the_form_go_to_the_general_line() -> None:
    data = profile_data()
    data["database"]["sst_password"] = "hunter2"
    values = values_from_data(data)
    mapped = map_problems(problems_of(build_data(data, values)), values)
    assert mapped[GENERAL][0].startswith("database.sst_password:")


def test_pydantic_messages_name_the_fix() -> None:
    values = values_from_data(profile_data())
    values["nodes-0-ssh-port"] = "ssh"
    values["nodes-0-ssh-user"] = "Root User"
    mapped = map_problems(problems_of(build_data(profile_data(), values)), values)
    assert mapped["nodes-0-ssh-port"] == [
        "is 'ssh' (a string), but it must be a whole number; write it like `port: 22`"]
    assert "Unix user name" in mapped["nodes-0-ssh-user"][0]


def test_new_cluster_form_is_not_valid_until_filled() -> None:
    data = new_cluster_data()
    values = values_from_data(data)
    assert problems_of(build_data(data, values))


def test_secret_refs_replace_references_only() -> None:
    data = with_secret_refs(profile_data(), {"sst_password": "ask", "redis_password": "none"})
    assert data["database"]["sst_password"] == "ask"
    assert data["redis"]["password"] == "none"
    validate_profile(data)


def test_backups_settings_round_trip_and_empty_means_the_default() -> None:
    data = profile_data()
    data["backups"] = {"schedule": "02:30", "keep_last": 14, "keep_days": 30, "root": "/srv/backups",
                       "timeout_s": 7200}
    values = values_from_data(data)
    assert (values["backups-schedule"], values["backups-keep_last"], values["backups-keep_days"],
            values["backups-root"], values["backups-receiver_port"]) == ("02:30", "14", "30", "/srv/backups", "")
    again = validate_profile(build_data(data, values))
    assert again == validate_profile(data)  # timeout_s, which the form does not show, stays
    values["backups-keep_days"] = ""
    assert validate_profile(build_data(data, values)).backups.keep_days == 0


def test_backups_problems_land_by_their_inputs_in_plain_words() -> None:
    values = values_from_data(profile_data())
    values.update({"backups-schedule": "25:99", "backups-keep_last": "0", "backups-root": "backups",
                   "backups-receiver_port": "4570"})  # also the garbd port's default: a clash
    mapped = map_problems(problems_of(build_data(profile_data(), values)), values)
    assert "is not a schedule: use hourly, daily, weekly or HH:MM" in mapped["backups-schedule"][0]
    assert mapped["backups-keep_last"] == ["must be at least 1"]
    assert "absolute" in mapped["backups-root"][0]
    values.update({"backups-schedule": "daily", "backups-keep_last": "3", "backups-root": "/srv/b"})
    mapped = map_problems(problems_of(build_data(profile_data(), values)), values)
    assert "receiver_port and garbd_port are both 4570" in mapped["backups"][0]
    values["backups-receiver_port"] = "99999"
    mapped = map_problems(problems_of(build_data(profile_data(), values)), values)
    assert mapped["backups-receiver_port"] == ["must be at most 65535; a port is 1-65535"]
