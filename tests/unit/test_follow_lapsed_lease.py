"""A run's lease that lapsed while its agents are still at work (the machine paused longer than the lease's
TTL, or the store was away) is no release: a second run that took it for one started its checks and agents
beside the first and broke its SST (a newcomer met this after a 31 s pause of the whole VM).  Against a real
redis-server on the loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from tests.unit.k8s_example import example_profile
from tests.unit.test_k8s_handover import redis_port  # noqa: F401  (the fixture)
from wizard.coordinator import key
from wizard.profile import Profile
from wizard.run_history import follow_run


@pytest.fixture
def setup(redis_port: int) -> Iterator[tuple[redis.Redis, Profile]]:  # noqa: F811
    client = redis.Redis(port=redis_port, decode_responses=True)
    yield client, example_profile()
    client.close()


def agent(client: redis.Redis, profile: Profile, run: str, node: str, state: str) -> None:
    client.xadd(key(profile, "events"), {"node": node, "step": "agent", "state": state, "message": state,
                                         "ts": str(time.time()), "run": run})


def test_a_lapsed_lease_with_agents_at_work_is_followed_to_their_end(setup: tuple[redis.Redis, Profile]) -> None:
    client, profile = setup
    run = "aaaa1111bbbb"
    for node in profile.nodes:
        agent(client, profile, run, node.name, "started")
    # the lease has lapsed already (nobody holds it), the front end is gone, the agents are still at work
    result: list[str] = []
    follower = threading.Thread(target=lambda: result.append(follow_run(client, profile, run, timeout=30)))
    follower.start()
    time.sleep(1.5)
    assert not result, "a lapsed lease with agents at work was taken for a release"
    for node in profile.nodes:
        agent(client, profile, run, node.name, "finished")
    follower.join(timeout=10)
    assert result == ["released"]


def test_a_lease_taken_by_another_run_or_ended_cleanly_is_released(setup: tuple[redis.Redis, Profile]) -> None:
    client, profile = setup
    run = "cccc2222dddd"
    agent(client, profile, run, profile.nodes[0].name, "started")
    client.set(key(profile, "run-lease"), "eeee3333ffff")  # another run holds it now
    assert follow_run(client, profile, run, timeout=5) == "released"
    client.delete(key(profile, "run-lease"))
    agent(client, profile, run, profile.nodes[0].name, "finished")  # nobody at work, no front end
    assert follow_run(client, profile, run, timeout=5) == "released"
