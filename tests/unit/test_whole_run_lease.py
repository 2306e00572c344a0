"""The run's lease covers the whole run, checks to verify (issue 15, newcomer finding 3: a second replay ran its
checks and apply beside the first's bootstrap, which alone held the lease).  The pipeline takes it under the
run's family id; its bootstrap rounds (``<run>``, ``<run>-2``...) find it theirs; a run whose front end is gone
and whose agents are idle in every round is abandoned at once.  Against a real redis-server on the loopback."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from tests.unit.test_follow_lapsed_lease import agent, setup  # noqa: F401  (setup: the fixture)
from tests.unit.test_k8s_handover import redis_port  # noqa: F401  (the fixture)
from wizard.coordinator import RunLease, front_key, key
from wizard.pipeline import Listener, PipelineError, take_lease
from wizard.profile import Profile
from wizard.run_history import follow_run


def test_the_runs_bootstrap_rounds_find_the_lease_theirs(setup: tuple[redis.Redis, Profile]) -> None:  # noqa: F811
    client, profile = setup
    lease_key = key(profile, "run-lease")
    whole = RunLease(client, lease_key, "aaaa1111bbbb", front_key(profile, "aaaa1111bbbb"))
    assert whole.acquire(1) is True
    assert client.get(front_key(profile, "aaaa1111bbbb")) == "aaaa1111bbbb"  # its front end's sign of life
    round_2 = RunLease(client, lease_key, "aaaa1111bbbb")
    assert round_2.acquire(1) is False, "a round of the run that holds the lease must not take it again"
    assert client.get(lease_key) == "aaaa1111bbbb"
    told: list[str] = []
    other = RunLease(client, lease_key, "cccc2222dddd")
    with pytest.raises(TimeoutError, match="aaaa1111bbbb"):
        other.acquire(0.5, told.append)
    assert told == ["aaaa1111bbbb"]
    whole.release()
    assert client.get(lease_key) is None
    assert other.acquire(1) is True
    other.release()


def test_a_second_pipeline_run_waits_for_the_lease_and_names_its_holder(setup: tuple[redis.Redis, Profile]) -> None:  # noqa: F811
    client, profile = setup
    lease_key = key(profile, "run-lease")
    first = RunLease(client, lease_key, "aaaa1111bbbb")
    assert first.acquire(1)
    steps: list[str] = []
    listener = Listener(on_step=lambda step, state, msg: steps.append(f"{step}:{state} {msg}"))
    with pytest.raises(PipelineError) as exc:
        take_lease(RunLease(client, lease_key, "cccc2222dddd"), listener, 0.5)
    assert exc.value.step == "run" and "aaaa1111bbbb" in exc.value.message
    assert steps == ["run:running another run (aaaa1111bbbb) holds the cluster; waiting for it"]
    # let go within the wait: the second run takes it
    second = RunLease(client, lease_key, "cccc2222dddd")
    threading.Timer(0.5, first.release).start()
    assert take_lease(second, listener, 10) is True
    assert client.get(lease_key) == "cccc2222dddd"
    second.release()


def test_agents_of_a_later_round_keep_the_run_going(setup: tuple[redis.Redis, Profile]) -> None:  # noqa: F811
    """The lease names the run's family: an agent of round ``<run>-2`` at work is the run at work."""
    client, profile = setup
    run = "aaaa1111bbbb"
    client.set(key(profile, "run-lease"), run, px=30_000)  # its agents renew it; its front end is gone
    for node in profile.nodes:
        agent(client, profile, run, node.name, "started")
        agent(client, profile, run, node.name, "finished")
    agent(client, profile, f"{run}-2", profile.nodes[0].name, "started")
    result: list[str] = []
    follower = threading.Thread(target=lambda: result.append(follow_run(client, profile, run, timeout=30)))
    follower.start()
    time.sleep(1.5)
    assert not result, "a run with an agent of its second round at work was taken for abandoned"
    agent(client, profile, f"{run}-2", profile.nodes[0].name, "finished")
    follower.join(timeout=10)
    assert result == ["abandoned"]
    assert client.get(key(profile, "run-lease")) is None, "the abandoned run's lease was left to its TTL"


def test_a_run_whose_front_end_is_gone_and_agents_idle_is_abandoned_at_once(
        setup: tuple[redis.Redis, Profile]) -> None:  # noqa: F811
    """Before any agent started (its front end died in its checks or apply) or after all finished."""
    client, profile = setup
    run = "eeee3333ffff"
    client.set(key(profile, "run-lease"), run, px=30_000)
    t0 = time.monotonic()
    assert follow_run(client, profile, run, timeout=10) == "abandoned"
    assert time.monotonic() - t0 < 2, "the next run waited for the lease's TTL"
    assert client.get(key(profile, "run-lease")) is None
    # a front end still alive (its sign of life): followed, not abandoned
    client.set(key(profile, "run-lease"), run, px=30_000)
    client.set(front_key(profile, run), run, px=30_000)
    with pytest.raises(TimeoutError, match=run):
        follow_run(client, profile, run, timeout=1)
    assert client.get(key(profile, "run-lease")) == run
