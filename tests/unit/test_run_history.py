"""The story of a run from its events (wizard.run_history.summarize): pure, no Redis."""

from __future__ import annotations

from wizard.coordinator import FRONT_NODE, Event, run_family
from wizard.run_history import summarize


def ev(run: str, node: str, step: str, state: str, message: str = "", ts: float = 100.0, **extra: str) -> Event:
    return Event("0-0", node, step, state, message, ts, run, dict(extra))


STARTED = ev("abc", FRONT_NODE, "run", "started", "run started", 100.0, front="studio-cluster replay (pid 7 on h)",
             runlog="runs/run-1.jsonl")
AGENTS_GOING = [
    STARTED,
    ev("abc", FRONT_NODE, "bootstrap", "start", "agents electing", 101.0),
    ev("abc", "studio1", "agent", "started", ts=102.0),
    ev("abc", "studio2", "agent", "started", ts=102.1),
    ev("abc", "arbiter", "agent", "started", ts=102.2),
    ev("abc", "studio1", "agent", "finished", "agent finished: bootstrap", 110.0, action="bootstrap"),
    ev("abc", "studio2", "join", "running", "joining the Primary Component (SST)", 111.0),
]


def test_a_front_end_that_died_with_agents_at_work_is_interrupted_and_names_the_last_step() -> None:
    s = summarize(AGENTS_GOING, front_alive=False, lease_holder="abc")
    assert s is not None
    assert (s.run, s.started, s.outcome, s.agents_running) == ("abc", 100.0, "interrupted", True)
    assert s.agents == {"studio1": "finished: bootstrap", "studio2": "running", "arbiter": "running"}
    assert (s.last_node, s.last_step, s.last_state) == ("studio2", "join", "running")
    text = "\n".join(s.lines())
    assert "last run abc: started 1970-01-01 00:01:40 UTC by studio-cluster replay (pid 7 on h)" in text
    assert "interrupted: its front end went away; its agents are still at work" in text
    assert "last step: studio2 join:running joining the Primary Component (SST)" in text
    assert "run log: runs/run-1.jsonl" in text


def test_agents_that_finished_after_their_front_end_died() -> None:
    evs = [*AGENTS_GOING,
           ev("abc", "studio2", "agent", "finished", "", 120.0, action="join"),
           ev("abc", "arbiter", "agent", "finished", "", 121.0, action="join")]
    s = summarize(evs, front_alive=False)
    assert s is not None and s.outcome == "interrupted" and not s.agents_running
    assert s.verdict == "interrupted: its front end went away before the end and its agents finished on their own"


def test_a_live_front_end_is_going_and_an_ended_run_says_how() -> None:
    going = summarize(AGENTS_GOING, front_alive=True, lease_holder="abc")
    assert going is not None and going.outcome == "going"
    done = summarize([*AGENTS_GOING, ev("abc", FRONT_NODE, "run", "done", "healthy", 130.0)], front_alive=False)
    assert done is not None and (done.outcome, done.verdict) == ("finished", "finished")
    failed = summarize([*AGENTS_GOING, ev("abc", FRONT_NODE, "run", "fail", "verify: degraded", 130.0)],
                       front_alive=False)
    assert failed is not None and failed.verdict == "failed: verify: degraded"


def test_the_last_agent_round_counts_and_a_hangup_is_told() -> None:
    evs = [*AGENTS_GOING,
           ev("abc", FRONT_NODE, "run", "hangup", "the terminal hung up", 112.0),
           ev("abc-2", "studio1", "agent", "started", ts=140.0),
           ev("abc-2", "studio1", "agent", "failed", "stopped because x", 141.0)]
    s = summarize(evs, front_alive=True)
    assert s is not None and s.agents == {"studio1": "failed: stopped because x"}
    assert s.hangup == 112.0 and any("hung up at" in line for line in s.lines())
    assert run_family("abc-2") == "abc"


def test_no_events_no_story() -> None:
    assert summarize([], front_alive=False) is None


def test_an_agent_without_an_end_and_without_the_lease_is_gone() -> None:
    s = summarize(AGENTS_GOING, front_alive=False, lease_holder="")
    assert s is not None and not s.agents_running
    assert s.agents["studio2"] == "ended without reporting (killed, or its node went down)"
    assert s.agents["studio1"] == "finished: bootstrap"
    assert s.verdict == "interrupted: its front end went away before the end"


def test_one_refusal_reaching_every_agent_is_told_once() -> None:
    """A refused bootstrap fails every agent with the same long reason: status printed it 17 times (12 kB)."""
    why = "refusing to bootstrap: studio2 (position unknown, ...) " + "x" * 400
    evs = [ev("abc", FRONT_NODE, "run", "started", "run started", 100.0),
           *[ev("abc", n, "agent", "started", "agent started", 101.0) for n in ("studio1", "studio2", "arbiter")],
           *[ev("abc", n, "agent", "failed", why, 102.0) for n in ("studio1", "studio2", "arbiter")],
           ev("abc", FRONT_NODE, "run", "fail", f"bootstrap: {why}", 103.0)]
    text = "\n".join(summarize(evs, front_alive=False).lines())  # type: ignore[union-attr]
    assert text.count("x" * 400) == 1, text
    assert "studio2 failed (the failure above)" in text, text
