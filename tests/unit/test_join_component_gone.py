"""The join's wait condition (:func:`wizard.agent.runtime.component_still_there`): a join whose Primary Component
vanished under it (every other data node's daemon heartbeat non-Primary longer than the merge window) fails with
the words the pipeline recognises to elect again, instead of waiting out join_timeout.  Pure logic: the node and
the coordination store are stand-ins that return fixed observations."""

from __future__ import annotations

import time

import pytest

from wizard.agent import runtime
from wizard.agent.election import NodeState


class Joiner:
    name = "s2"

    def __init__(self, status: str) -> None:
        self.status = status

    def mariadb_running(self) -> bool:
        return True

    def wsrep(self) -> dict[str, str]:
        return {"wsrep_cluster_status": self.status, "wsrep_local_state_comment": "Synced"}


class Beats:
    def __init__(self, status: str) -> None:
        self.status = status

    def states(self, names: list[str], kind: str = "node") -> dict[str, NodeState]:
        assert kind == "heartbeat"
        return {n: NodeState(n, running=True, cluster_status=self.status) for n in names}


def config(merge: float) -> runtime.Config:
    return runtime.Config({"data_nodes": ["s1", "s2"], "merge_timeout": merge})


def test_a_vanished_component_fails_the_join_with_the_words_the_pipeline_knows() -> None:
    check = runtime.component_still_there(config(0.2), Joiner("non-Primary"), Beats("non-Primary"))  # type: ignore[arg-type]
    assert check() is False  # first sight: the merge window starts
    time.sleep(0.3)
    with pytest.raises(runtime.AgentError) as err:
        check()
    assert runtime.COMPONENT_GONE in str(err.value) and "s1 non-Primary" in str(err.value)


def test_a_living_component_is_waited_for_and_a_synced_joiner_is_done() -> None:
    waiting = runtime.component_still_there(config(0.0), Joiner("non-Primary"), Beats("Primary"))  # type: ignore[arg-type]
    time.sleep(0.05)
    assert waiting() is False and waiting() is False  # the other node is Primary: keep waiting, no error
    done = runtime.component_still_there(config(0.0), Joiner("Primary"), Beats("non-Primary"))  # type: ignore[arg-type]
    assert done() is True
