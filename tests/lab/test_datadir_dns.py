"""Issue 9: an empty data directory is named by `check` and initialised by replay as Debian's package does
(a datadir with data is never touched); the authoring record is pushed through the PowerDNS HTTP API,
`plan` shows the change, the name resolves to the preferred primary, and a second run changes nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizard import lab
from wizard.checks import run_checks
from wizard.checks.base import Status
from wizard.datadir import initialise_empty
from wizard.pipeline import Listener, replay
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets

REPO = Path(__file__).resolve().parents[2]
NODE = "studio2"


def _empty(node: str) -> Path:
    d = lab.host_path(node, "/var/lib/mysql")  # the bind-mounted datadir itself stays (a mount point)
    for e in d.iterdir():
        shutil.rmtree(e) if e.is_dir() else e.unlink()
    return d


def _plan() -> str:
    proc = subprocess.run([sys.executable, "-m", "wizard", "plan", str(REPO / "profiles" / "lab.yaml")],
                          capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={"COLUMNS": "250", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _resolves_to(address: str, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    got: list[str] = []
    while time.monotonic() < deadline:
        got = lab.dns_query(lab.AUTHORING_NAME)
        if got == [address]:
            return got
        time.sleep(0.5)
    raise AssertionError(f"{lab.AUTHORING_NAME} answered {got}, not {address}, within {timeout}s")


@pytest.fixture
def fresh_lab(profile: Profile) -> Iterator[None]:
    lab.down(progress=lambda _m: None)  # no cluster running: a datadir is emptied only on a stopped node
    lab.up(progress=lambda _m: None)
    yield
    lab.set_authoring_record(None)


def test_check_names_an_empty_datadir_and_data_is_never_initialised_over(
        fresh_lab: None, profile: Profile, secrets: Secrets) -> None:
    d = _empty(NODE)
    results = {r.node: r for r in run_checks(profile, secrets, only=["datadir"])}
    assert results["studio1"].status is Status.OK, results["studio1"].summary
    empty = results[NODE]
    assert empty.status is Status.WARN
    assert "not initialised" in empty.summary and "mysql.db" in empty.summary
    assert "mariadb-install-db --user=mysql" in empty.fix and "--datadir=/var/lib/mysql" in empty.fix

    (d / "ibdata1").write_bytes(b"somebody's data")
    results = {r.node: r for r in run_checks(profile, secrets, only=["datadir"])}
    assert results[NODE].status is Status.FAIL
    assert "holds data (ibdata1)" in results[NODE].summary and "never initialised over" in results[NODE].summary
    with Remote(profile) as remote:
        assert initialise_empty(profile, remote) == {"studio1": "initialised", NODE: "incomplete"}
    assert (d / "ibdata1").read_bytes() == b"somebody's data" and not (d / "mysql").exists()


def test_replay_initialises_the_empty_datadir_and_pushes_the_record(
        fresh_lab: None, profile: Profile, secrets: Secrets) -> None:
    assert profile.dns.api_url, "the lab profile names the lab PowerDNS API"
    _empty(NODE)
    lab.set_authoring_record("A 198.18.0.99")  # a stale plain record the push must replace

    before = _plan()
    assert "create" in before and f"{lab.AUTHORING_NAME}. LUA in zone lab.test." in before
    assert "- studio.lab.test. IN A 198.18.0.99" in before

    steps: list[tuple[str, str, str]] = []
    result = replay(profile, secrets, listener=Listener(on_step=lambda *s: steps.append(s)))
    applied = next(m for s, state, m in steps if s == "apply" and state == "done")
    assert f"initialised the empty data directory /var/lib/mysql on {NODE}" in applied
    assert "studio.lab.test. LUA create through the PowerDNS API" in applied  # the plain A record went
    assert result.dns_change is not None and result.dns_change.action == "create"
    assert (lab.host_path(NODE, "/var/lib/mysql") / "mysql" / "db.frm").is_file()
    _resolves_to(lab.HOSTS[profile.preferred_primary])

    again = replay(profile, secrets, skip_checks=True,
                   listener=Listener(on_step=lambda *s: steps.append(s)))
    applied = [m for s, state, m in steps if s == "apply" and state == "done"][-1]
    assert again.applied == [] and again.dns_change is not None and again.dns_change.action == "unchanged"
    assert "initialised" not in applied and "PowerDNS" not in applied
    after = _plan()
    assert "unchanged" in after and "studio.lab.test. LUA" in after and "198.18.0.99" not in after
    _resolves_to(lab.HOSTS[profile.preferred_primary])
