"""Hosts where MariaDB already runs standalone, as Debian's package leaves it (issue 16 input 7)."""

from __future__ import annotations

import pytest

from tests.waits import wait_until
from wizard import lab
from wizard.checks import Status, run_checks
from wizard.nodesql import sql
from wizard.pipeline import replay
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets


def mariadb(name: str, statement: str) -> str:
    return lab.host_exec(name, ["mariadb", "-N", "-B", "-e", statement]).stdout


@pytest.fixture(scope="module")
def standalone() -> None:
    """Both data nodes run mariadbd without Galera, bound to 127.0.0.1 only; studio1 holds a database."""
    lab.down(progress=lambda _m: None)
    lab.up(progress=lambda _m: None)
    for name in ("studio1", "studio2"):
        lab.host_spawn(name, ["/usr/sbin/mariadbd", "--user=mysql", "--bind-address=127.0.0.1", "--wsrep-on=0"],
                       "/var/log/mysql/standalone.out")
        wait_until(f"standalone mariadbd on {name}",
                   lambda n=name: lab.host_exec(n, ["mariadb", "-e", "SELECT 1"], check=False).returncode == 0, 30)
    mariadb("studio1", "CREATE DATABASE crafter; CREATE TABLE crafter.items (id INT PRIMARY KEY) ENGINE=InnoDB;"
                       "INSERT INTO crafter.items VALUES (1), (2), (3)")


def test_checks_say_what_is_true(standalone: None, profile: Profile, secrets: Secrets) -> None:
    results = {(r.node, r.check): r for r in run_checks(profile, secrets)}
    for name in ("studio1", "studio2"):
        net = results[(name, "network")]
        assert net.status is Status.OK, f"{name}: {net.summary} ({net.fix})"
        state = results[(name, "galera-state")]
        assert "standalone" in state.summary and "Disconnected" not in state.summary, state.summary
    assert "1 database(s) of its own (crafter)" in results[("studio1", "galera-state")].summary
    assert "no database of its own" in results[("studio2", "galera-state")].summary


def test_replay_turns_standalone_servers_into_a_cluster_keeping_the_data(standalone: None, profile: Profile,
                                                                         secrets: Secrets) -> None:
    result = replay(profile, secrets)
    assert result.status is not None and result.status.healthy, result.status
    assert result.bootstrap is not None
    starts = [e.node for e in result.bootstrap.events if e.step == "bootstrap" and e.extra.get("new_cluster") == "1"]
    assert starts == ["studio1"], "the node with the data bootstraps"
    with Remote(profile) as remote:
        for name in ("studio1", "studio2"):
            rows = sql(remote[name], profile, secrets, "SELECT id FROM crafter.items ORDER BY id")
            assert rows == [["1"], ["2"], ["3"]], name
