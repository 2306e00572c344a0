"""The health endpoint's verdict: a joiner never healthy, a donor healthy only by a non-blocking SST."""

from __future__ import annotations

import pytest

from wizard.agent.health import health_verdict


@pytest.mark.parametrize(("status", "state", "method", "ok"), [
    ("Primary", "Synced", "mariabackup", True),
    ("Primary", "Synced", "rsync", True),
    # issue 7 input 6: the only serving node while it donates to the first joiner by mariabackup
    ("Primary", "Donor/Desynced", "mariabackup", True),
    ("Primary", "Donor/Desynced", "rsync", False),
    ("Primary", "Donor/Desynced", "mysqldump", False),
    ("Primary", "Donor/Desynced", "", False),
    ("Primary", "Joining", "mariabackup", False),
    ("Primary", "Joining: receiving State Transfer", "mariabackup", False),
    ("Primary", "Joined", "mariabackup", False),
    ("non-Primary", "Synced", "mariabackup", False),
    ("Disconnected", "", "mariabackup", False),
    ("", "", "mariabackup", False),
])
def test_health_verdict(status: str, state: str, method: str, ok: bool) -> None:
    got, reason = health_verdict(status, state, method)
    assert got is ok
    assert reason


@pytest.mark.parametrize(("reject", "ok"), [("NONE", True), ("", True), ("ALL", False), ("ALL_KILL", False),
                                            ("all", False)])
def test_a_node_refusing_client_queries_is_not_healthy(reject: str, ok: bool) -> None:
    """A rolling restart drains a node with wsrep_reject_queries=ALL before it stops it: the authoring name must
    move to the other node first, so the endpoint answers 503 from the drain on."""
    got, reason = health_verdict("Primary", "Synced", "mariabackup", reject)
    assert got is ok
    assert ("refuses client queries" in reason) is not ok


def test_a_server_that_does_not_answer_is_said_so_whatever_the_reject_setting() -> None:
    assert health_verdict("", "", "", "ALL") == (False, "mariadbd does not answer")
