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
