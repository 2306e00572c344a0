"""The SST choice on real hosts (docs/sst-choice.md): the first join of a brand-new cluster asks for rsync,
a later join (a node that lost its datadir, rejoining a running cluster) keeps the configured mariabackup."""

from __future__ import annotations

from typing import Any

import pytest

from tests.lab.test_cluster import fresh_lab, kill9
from wizard import lab
from wizard.nodesql import sql
from wizard.pipeline import replay
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets

JOINER_LOG = "/var/log/mysql/mariadbd.out"


def join_starts(events: list[Any]) -> list[tuple[str, str]]:
    return [(e.node, e.extra.get("sst_method", "")) for e in events
            if e.step == "join" and e.state == "running" and "starting mariadbd" in e.message]


def sst_scripts(node: str) -> list[str]:
    """The SST scripts the node's server ran as joiner, in order (its direct-start log)."""
    out = lab.host_exec(node, ["grep", "-o", r"wsrep_sst_[a-z]* --role 'joiner'", JOINER_LOG], check=False).stdout
    return [line.split()[0] for line in out.splitlines()]


@pytest.mark.drill  # 36 s: make drills (make test's time budget)
def test_first_join_of_a_new_cluster_uses_rsync_and_a_later_join_mariabackup(
        profile: Profile, secrets: Secrets, remote: Remote) -> None:
    fresh_lab()
    first = replay(profile, secrets, skip_checks=True)
    assert first.bootstrap is not None
    assert join_starts(first.bootstrap.events) == [("studio2", "rsync")], first.bootstrap.events
    assert sst_scripts("studio2") == ["wsrep_sst_rsync"]
    # Set back once Synced: a later SST this server takes part in is the configured, non-blocking one.
    assert sql(remote["studio2"], profile, secrets, "SELECT @@wsrep_sst_method") == [["mariabackup"]]

    kill9("studio2")
    lab.host_exec("studio2", ["sh", "-c", "rm -rf /var/lib/mysql/* /var/lib/mysql/.[!.]*"])  # a lost disk
    later = replay(profile, secrets, skip_checks=True)
    assert later.bootstrap is not None
    assert join_starts(later.bootstrap.events) == [("studio2", "configured")], later.bootstrap.events
    assert sst_scripts("studio2") == ["wsrep_sst_rsync", "wsrep_sst_mariabackup"]
    assert later.status is not None and later.status.verdict == "healthy", later.status
