"""The cluster verdict as a pure function: what a broken build would call healthy."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizard.profile import Profile, load_profile
from wizard.status import NodeStatus, verdict_of

REPO = Path(__file__).resolve().parents[2]
S1, S2 = "b9484120-ecce-11f1-88b7-8343669929c6", "b99fb547-ecce-11f1-9640-232ea505496f"
DEAD, NEW = "c1a9366f-ecce-11f1-aa79-0ba16d806e0d", "d7c2e0aa-ecce-11f1-8c3e-2a1b3c4d5e6f"


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile(REPO / "profiles" / "lab.yaml", check_files=False)


def data(name: str, members: list[str] | None = None, health: str = "200") -> NodeStatus:
    wsrep = {"wsrep_cluster_status": "Primary", "wsrep_local_state_comment": "Synced", "wsrep_cluster_size": "3",
             "wsrep_cluster_state_uuid": "u", "wsrep_cluster_conf_id": "5"}
    return NodeStatus(name, "studio", "198.18.0.1", reachable=True, wsrep=wsrep, process_running=True,
                      health=health, members=[S1, S2, NEW] if members is None else members)


def arbiter(uuid: str = NEW) -> NodeStatus:
    return NodeStatus("arbiter", "arbiter", "198.18.0.3", reachable=True, process_running=True, garbd_uuid=uuid)


def test_healthy(profile: Profile) -> None:
    verdict, reason, *_ = verdict_of(profile, [data("studio1"), data("studio2"), arbiter()])
    assert verdict == "healthy", reason


def test_redis_down_is_degraded_naming_the_coordination_store(profile: Profile) -> None:
    """Issue 7 input 7."""
    verdict, reason, *_ = verdict_of(profile, [data("studio1"), data("studio2"), arbiter()],
                                     "ConnectionError: Error 111 connecting")
    assert verdict == "degraded" and "coordination store" in reason


def test_dead_health_endpoint_is_degraded(profile: Profile) -> None:
    """Issue 16 input 8: the endpoint the DNS record checks."""
    verdict, reason, *_ = verdict_of(profile, [data("studio1"), data("studio2", health="no answer (refused)"),
                                               arbiter()])
    assert verdict == "degraded" and "studio2's health endpoint" in reason


def test_garbd_counted_by_identity_not_size(profile: Profile) -> None:
    """Issue 7 input 4: size 3, but the third member is the dead incarnation."""
    nodes = [data("studio1", [S1, S2, DEAD]), data("studio2", [S1, S2, DEAD]), arbiter(NEW)]
    verdict, reason, _, _, member = verdict_of(profile, nodes)
    assert verdict == "degraded" and not member, reason


@pytest.mark.parametrize("reject", ["ALL", "ALL_KILL", "all"])
def test_a_node_refusing_client_queries_is_degraded_naming_it_and_the_way_out(profile: Profile, reject: str) -> None:
    """A rolling restart drains a node (wsrep_reject_queries=ALL) before its stop; cut off in between, the node
    stays Synced and Primary but refuses every author: the status must not call that healthy."""
    drained = data("studio2", health="503")
    drained.wsrep["wsrep_reject_queries"] = reject
    verdict, reason, *_ = verdict_of(profile, [data("studio1"), drained, arbiter()])
    assert verdict == "degraded"
    assert f"studio2 refuses client queries (wsrep_reject_queries={reject.upper()}" in reason
    assert "studio-cluster replay" in reason
    assert "health endpoint" not in reason  # one problem, said once


@pytest.mark.parametrize("reject", ["NONE", "none", ""])
def test_a_node_accepting_queries_stays_healthy(profile: Profile, reject: str) -> None:
    node = data("studio2")
    node.wsrep["wsrep_reject_queries"] = reject
    verdict, reason, *_ = verdict_of(profile, [data("studio1"), node, arbiter()])
    assert verdict == "healthy", reason
