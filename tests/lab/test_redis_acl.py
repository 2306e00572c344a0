"""The Redis ACL user (issue 10): with redis.username the wizard and every agent log in as an ACL user limited
to the product's key prefix and the commands they send (wizard.redis_acl).  On the lab (whose Redis has that
user): replay and status go through as that user with no ACL denial logged on any Redis, and the user is
refused keys outside the prefix and commands outside the list.  profiles/lab.yaml (no username) is the
backwards-compatible case every other lab test runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from wizard import lab, labredis
from wizard.coordinator import redis_client
from wizard.pipeline import replay
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets
from wizard.status import collect


def each_redis() -> Iterator[redis.Redis]:
    for ip in lab.HOSTS.values():
        client = redis.Redis(ip, labredis.REDIS_PORT, password=lab.redis_password(), socket_timeout=2,
                             decode_responses=True)
        try:
            yield client
        finally:
            client.close()


def denials() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for client in each_redis():
        log: Any = client.execute_command("ACL", "LOG")
        out += [dict(zip(e[::2], e[1::2], strict=False)) if isinstance(e, list) else dict(e) for e in log]
    return [e for e in out if e.get("username") == labredis.ACL_USER]


def test_replay_and_status_as_the_acl_user(profile: Profile, secrets: Secrets) -> None:
    assert profile.redis.key_prefix == labredis.ACL_KEY_PREFIX
    for client in each_redis():
        assert client.execute_command("ACL", "GETUSER", labredis.ACL_USER), "the lab's Redis has the ACL user"
        client.execute_command("ACL", "LOG", "RESET")
    acl = profile.model_copy(update={"redis": profile.redis.model_copy(update={"username": labredis.ACL_USER})})

    result = replay(acl, secrets, skip_checks=True)
    assert result.status is not None and result.status.verdict == "healthy", result.status
    with Remote(acl) as remote:
        st = collect(acl, secrets, remote)
    assert st.verdict == "healthy", st.reason
    refused = denials()
    assert refused == [], f"refused: {[(e.get('reason'), e.get('object')) for e in refused]}"

    client = redis_client(acl, secrets, failover_wait_s=2)
    try:
        client.set(f"{labredis.ACL_KEY_PREFIX}:acl-probe", "1", px=5000)
        for refused in (lambda: client.set("elsewhere:acl-probe", "1"), lambda: client.get("other"),
                        lambda: client.flushall(), lambda: client.config_get("requirepass"),
                        lambda: client.keys("*"), lambda: client.execute_command("ACL", "LIST")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                refused()
    finally:
        client.close()
