"""redis: one Redis (`url`) or Redis with Sentinel (`sentinels` + `master_name`), exactly one of them;
every bad form is rejected naming the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_profile import base
from wizard.agent import redisconn
from wizard.coordinator import agent_config, redis_config
from wizard.profile import ProfileError, json_schema, load_profile, profile_to_yaml, validate_profile
from wizard.secrets import Secrets

REPO = Path(__file__).resolve().parents[2]
SENTINELS = ["10.0.0.11:26379", "10.0.0.12:26379", "10.0.0.13:26379"]


def with_redis(**redis: Any) -> dict[str, Any]:
    data = base()
    data["redis"] = {"password": "env:REDIS_PASSWORD", **redis}
    return data


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ProfileError) as err:
        validate_profile(data)
    return err.value.problems


def test_sentinel_form_is_valid_and_normalised() -> None:
    p = validate_profile(with_redis(sentinels=["10.0.0.11", "10.0.0.12:26380", "[fd00::13]:26379"],
                                    master_name="studio-prod"))
    assert p.redis.uses_sentinel
    assert p.redis.sentinels == ["10.0.0.11:26379", "10.0.0.12:26380", "[fd00::13]:26379"]
    assert p.redis.sentinel_addresses == [("10.0.0.11", 26379), ("10.0.0.12", 26380), ("fd00::13", 26379)]
    assert p.redis.db == 0
    assert "studio-prod" in p.redis.where and "10.0.0.12:26380" in p.redis.where


def test_sentinel_form_round_trips_through_yaml(tmp_path: Path) -> None:
    p = validate_profile(with_redis(sentinels=SENTINELS, master_name="m", sentinel_password="env:SENTINEL_PW",
                                    database=2))
    path = tmp_path / "p.yaml"
    path.write_text(profile_to_yaml(p))
    assert load_profile(path) == p


def test_url_form_still_works() -> None:
    p = validate_profile(with_redis(url="redis://10.0.0.20:6380/3"))
    assert not p.redis.uses_sentinel
    assert (p.redis.host, p.redis.port, p.redis.db) == ("10.0.0.20", 6380, 3)
    assert p.redis.sentinel_addresses == []


@pytest.mark.parametrize(("redis", "expected"), [
    ({}, "redis: no Redis given; set url: redis://HOST:6379/0 for one Redis, or sentinels:"),
    ({"url": "redis://10.0.0.20:6379/0", "sentinels": SENTINELS, "master_name": "m"},
     "redis: both url and sentinels are set;"),
    ({"sentinels": SENTINELS}, "redis: master_name is required with sentinels;"),
    ({"sentinels": ["10.0.0.11:99999"], "master_name": "m"}, "redis.sentinels[0]: port 99999 of Sentinel"),
    ({"sentinels": ["not a host"], "master_name": "m"}, "redis.sentinels[0]: 'not a host' is neither an IP"),
    ({"sentinels": ["10.0.0.11", "10.0.0.11:26379"], "master_name": "m"},
     "redis.sentinels: 10.0.0.11:26379 is listed twice; list each Sentinel once"),
    ({"sentinels": SENTINELS, "master_name": "has space"}, "redis.master_name: "),
    ({"url": "redis://10.0.0.20:6379/0", "master_name": "m"}, "redis: master_name applies to sentinels only;"),
    ({"url": "redis://10.0.0.20:6379/0", "sentinel_password": "env:X"},
     "redis: sentinel_password applies to sentinels only;"),
    ({"url": "redis://10.0.0.20:6379/0", "database": 2}, "redis: database applies to sentinels only;"),
    ({"sentinels": SENTINELS, "master_name": "m", "sentinel_password": "plaintext"}, "redis.sentinel_password: "),
    ({"sentinels": SENTINELS, "master_name": "m", "failover_wait_s": 0}, "redis.failover_wait_s: "),
])
def test_bad_redis_settings_name_the_field_and_the_fix(redis: dict[str, Any], expected: str) -> None:
    found = problems(with_redis(**redis))
    assert len(found) == 1 and found[0].startswith(expected), found


def test_a_blank_url_from_a_form_counts_as_not_given() -> None:
    p = validate_profile(with_redis(url="  ", sentinels=SENTINELS, master_name="m"))
    assert p.redis.url is None and p.redis.uses_sentinel


def test_host_of_a_sentinel_profile_is_an_error_not_a_guess() -> None:
    p = validate_profile(with_redis(sentinels=SENTINELS, master_name="m"))
    with pytest.raises(ValueError, match=r"redis\.url only"):
        _ = p.redis.host


def test_schema_describes_every_redis_field() -> None:
    redis = json_schema()["$defs"]["RedisSettings"]
    assert set(redis["properties"]) >= {"url", "sentinels", "master_name", "sentinel_password", "password"}
    assert all(prop.get("description") for prop in redis["properties"].values())
    assert redis.get("description")


def test_the_lab_uses_sentinel_and_the_example_a_url() -> None:
    lab = load_profile(REPO / "profiles" / "lab.yaml", check_files=False)
    assert lab.redis.uses_sentinel and len(lab.redis.sentinels or []) == 3 and lab.redis.master_name
    assert load_profile(REPO / "profiles" / "example.yaml", check_files=False).redis.url


def test_the_agent_gets_the_same_connection_settings_as_the_wizard() -> None:
    p = validate_profile(with_redis(sentinels=SENTINELS, master_name="m", failover_wait_s=12))
    secrets = Secrets(None, None, "redis-pw", "sentinel-pw")
    cfg = redis_config(p, secrets)
    assert cfg == {"redis_db": 0, "redis_password": "redis-pw", "redis_failover_wait_s": 12.0,
                   "redis_sentinels": [["10.0.0.11", 26379], ["10.0.0.12", 26379], ["10.0.0.13", 26379]],
                   "redis_master_name": "m", "redis_sentinel_password": "sentinel-pw"}
    agent = agent_config(p, secrets, p.nodes[0])
    assert {k: agent[k] for k in cfg} == cfg
    url = redis_config(validate_profile(with_redis(url="redis://10.0.0.20:6379/1")), secrets)
    assert url["redis_host"] == "10.0.0.20" and url["redis_db"] == 1 and "redis_sentinels" not in url


def test_clients_retry_for_about_the_failover_wait() -> None:
    for wait in (1.0, 15.0, 30.0, 120.0):
        retry = redisconn.retry_policy(wait)
        backoff = sum(min(0.5, 0.05 * 2 ** i) for i in range(1, retry.get_retries() + 1))
        assert wait <= backoff <= wait + 1.0, (wait, backoff)


def test_no_sentinel_answering_is_a_short_message_naming_each() -> None:
    import socket

    ports = []
    for _ in range(2):  # ports nobody listens on: bound, then closed
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    cfg = {"redis_sentinels": [["127.0.0.1", p] for p in ports], "redis_master_name": "m", "redis_failover_wait_s": 0.1}
    with pytest.raises(redisconn.MasterNotFoundError) as err:
        redisconn.connect(cfg).ping()
    message = str(err.value)
    assert message.startswith("no Sentinel reports a master named 'm': ")
    assert all(f"127.0.0.1:{p}" in message for p in ports) and "ConnectionPool" not in message
    assert len(message) < 300
