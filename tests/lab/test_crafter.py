"""The Crafter-aware cluster on the lab (docs/crafter.md): Studio in the health verdict and the failover, the
primary publisher set through Studio's cluster API, git over SSH between the Studio nodes as Crafter's user.

The lab runs a stand-in Studio on each Studio host (wizard/lab/studio_standin.py): its status URL answers while
it runs, and its cluster API records every call.  The tests run in order on one formed cluster.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.waits import wait_until
from wizard import lab
from wizard.checks.base import CheckContext, Status
from wizard.checks.crafter import content_sync
from wizard.checks.runner import run_checks
from wizard.coordinator import key, redis_client
from wizard.crafter.publisher import PublisherError, await_publisher, read_publisher
from wizard.crafter.sync_trust import ls_remote_both_ways
from wizard.lab import studio_standin
from wizard.nodesql import wsrep_status
from wizard.pipeline import replay
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets
from wizard.status import collect


def authoring() -> list[str]:
    return lab.dns_query(lab.AUTHORING_NAME)


def health(node: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://{lab.HOSTS[node]}:{lab.HEALTH_PORT}/", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def publisher_is(profile: Profile, secrets: Secrets, node: str) -> bool:
    record = read_publisher(profile, secrets)
    return record is not None and record.node == node and record.ok


def calls_for(node: str) -> list[str]:
    return [c["body"]["node"] for c in studio_standin.calls(node)]


@pytest.fixture(scope="module")
def formed(profile: Profile, secrets: Secrets) -> Iterator[None]:
    """A formed cluster whose stand-ins have recorded no call, and no publisher record: the daemons are held
    off by the publisher lock while both are cleared, so no call lands in between.  A first replay brings
    the cluster to this profile (an earlier module may have left other settings, whose rolling restart would
    move the name); the second is the one the first test judges."""
    replay(profile, secrets, skip_checks=True)
    client = redis_client(profile, secrets)
    try:
        client.set(key(profile, "publisher-lock"), "test", px=30000)
        client.delete(key(profile, "publisher"))
        for name in studio_standin.studio_hosts():
            studio_standin.start_studio(name)
            studio_standin.clear_calls(name)
        client.delete(key(profile, "publisher-lock"))
    finally:
        client.close()
    replay(profile, secrets, skip_checks=True)
    yield
    for name in studio_standin.studio_hosts():
        studio_standin.start_studio(name)


def test_replay_makes_exactly_one_primary_publisher_call(formed: None, profile: Profile, secrets: Secrets,
                                                         remote: Remote) -> None:
    # replay's verify waited for the record: the name points at studio1, which the daemons made publisher
    assert publisher_is(profile, secrets, "studio1")
    assert calls_for("studio1") == ["studio1"] and calls_for("studio2") == []
    st = collect(profile, secrets, remote)
    assert st.healthy, st.reason
    assert st.publisher is not None and st.publisher["node"] == "studio1" and not st.publisher["error"]
    code, body = health("studio1")
    assert code == 200 and "Studio answers" in body["reason"]


def test_studio_down_moves_the_name_and_the_publisher(formed: None, profile: Profile, secrets: Secrets,
                                                      remote: Remote) -> None:
    wait_until("the authoring name on studio1", lambda: authoring() == [lab.HOSTS["studio1"]], 20)
    start = time.monotonic()
    studio_standin.stop_studio("studio1")
    try:
        _code, body = wait_until("studio1's health endpoint to answer 503", lambda: (r := health("studio1"))[0] == 503
                                and r, 10)
        assert "Studio does not answer" in body["reason"] and body["cluster_status"] == "Primary", body
        wait_until("the authoring name to move to studio2", lambda: authoring() == [lab.HOSTS["studio2"]], 30)
        moved = time.monotonic() - start
        w = wsrep_status(remote["studio1"], profile, secrets)
        assert (w["wsrep_cluster_status"], w["wsrep_local_state_comment"]) == ("Primary", "Synced"), \
            "MariaDB on studio1 keeps serving: only Studio is down"
        wait_until("studio2 made primary publisher", lambda: publisher_is(profile, secrets, "studio2"), 20)
        assert calls_for("studio2") == ["studio2"], "exactly one call for the move, on studio2's Studio"
        print(f"authoring name moved to studio2 {moved:.1f} s after studio1's Studio stopped "
              f"(TTL {profile.dns.ttl} s + health interval {profile.dns.health_interval} s)")
    finally:
        studio_standin.start_studio("studio1")
    start = time.monotonic()
    wait_until("the authoring name back on studio1 (preferred)", lambda: authoring() == [lab.HOSTS["studio1"]], 30)
    back = time.monotonic() - start
    wait_until("studio1 made primary publisher again", lambda: publisher_is(profile, secrets, "studio1"), 20)
    assert calls_for("studio1") == ["studio1", "studio1"], "one call at replay, one when the name came back"
    assert calls_for("studio2") == ["studio2"]
    print(f"authoring name back on studio1 {back:.1f} s after its Studio started")


def test_git_over_ssh_both_ways_as_the_crafter_user(formed: None, profile: Profile, secrets: Secrets,
                                                    remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    results = ls_remote_both_ways(profile, remote)
    assert [(r.source, r.target, r.ok) for r in results] == [("studio1", "studio2", True),
                                                             ("studio2", "studio1", True)], results
    for r in results:
        assert r.url.startswith(f"ssh://crafter@{lab.HOSTS[r.target]}/opt/crafter-lab/data/repos/")
    for name in ("studio1", "studio2"):
        peer = "studio2" if name == "studio1" else "studio1"
        home = studio_standin.CRAFTER_ROOT
        known = remote[name].run(["cat", f"{home}/.ssh/known_hosts"]).stdout
        assert known.startswith(lab.HOSTS[peer] + " ssh-ed25519 "), "the peer's host key is pinned"
        config = remote[name].run(["sh", "-c", f'cat "{home}/.ssh/config" 2>/dev/null || true']).stdout
        assert "stricthostkeychecking" not in config.lower()
    ctx = CheckContext(profile, secrets, remote, shared={"ssh_ok": {"studio1", "studio2", "arbiter"}})
    outcome = content_sync(ctx)
    assert outcome.status is Status.OK, outcome
    # the check as `check` runs it: the repository search in each node's check session (wizard.checks.facts), which
    # finds what the probe of its own finds
    from wizard.remote import NodeConnection

    ran: list[str] = []
    real_run = NodeConnection.run

    def run(self: NodeConnection, argv: Any, **kw: Any) -> Any:
        ran.append(getattr(argv, "name", str(argv)))
        return real_run(self, argv, **kw)

    monkeypatch.setattr(NodeConnection, "run", run)
    in_session = {r.check: r for r in run_checks(profile, secrets, only=["crafter-sync", "clock"])}
    assert "crafter-find-repo" not in ran and "crafter-ls-remote" in ran, ran
    assert in_session["crafter-sync"].status is Status.OK, in_session
    assert in_session["crafter-sync"].summary == outcome.summary
    assert all(f"as crafter: {r.detail}" in outcome.summary for r in results)
    # a re-run of the trust changes nothing
    from wizard.crafter.sync_trust import ensure_sync_trust

    assert ensure_sync_trust(profile, remote) == {"studio1": [], "studio2": []}


def test_a_failed_publisher_call_is_an_error_with_its_reason(formed: None, profile: Profile, secrets: Secrets,
                                                              remote: Remote) -> None:
    wait_until("studio1 primary publisher", lambda: publisher_is(profile, secrets, "studio1"), 20)
    before = calls_for("studio1")
    client = redis_client(profile, secrets)
    studio_standin.fail_publisher("studio1")
    try:
        client.delete(key(profile, "publisher"))  # as if the name had just moved to studio1
        record = wait_until("the failed call recorded", lambda: (r := read_publisher(profile, secrets)) is not None
                            and r.error and r, 20)
        assert record.node == "studio1" and "HTTP 503" in record.error, record
        with pytest.raises(PublisherError) as err:
            await_publisher(profile, secrets, "studio1", timeout=5)
        assert "HTTP 503" in err.value.message and "studio1" in err.value.message
        st = collect(profile, secrets, remote)
        assert st.verdict == "degraded" and "primary publisher studio1" in st.reason and "HTTP 503" in st.reason
    finally:
        studio_standin.fail_publisher("studio1", False)
        client.close()
    wait_until("the daemons' retry to succeed", lambda: publisher_is(profile, secrets, "studio1"), 30)
    assert calls_for("studio1") == [*before, "studio1"], "the retry made one call"
    assert collect(profile, secrets, remote).healthy
