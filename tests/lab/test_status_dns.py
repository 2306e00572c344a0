"""status when the authoring name sends authors to a dead node (issue 9 leftovers d), on the lab.

A failover record moves the name within TTL + health interval, too quickly to read a status in
between; a record that does not fail over (a static A record left in the zone, replacing the LUA
record) keeps pointing at the node we stop, so the status can be read at leisure.  The record and
the node are put back (push_record + replay) whatever happens.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.waits import wait_until
from wizard import lab
from wizard.checks.names import query_a
from wizard.dnsapi import Api, push_record
from wizard.pipeline import replay
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets
from wizard.status import collect

REPO = Path(__file__).resolve().parents[2]


def _pin_name_to(profile: Profile, secrets: Secrets, address: str) -> None:
    """Replace the authoring name's LUA record with a static A record (what a hand edit leaves behind)."""
    name = profile.dns.authoring_name.rstrip(".") + "."
    Api(profile, secrets).patch([
        {"name": name, "type": "LUA", "changetype": "DELETE"},
        {"name": name, "type": "A", "ttl": profile.dns.ttl, "changetype": "REPLACE",
         "records": [{"content": address, "disabled": False}]},
    ])


def test_status_says_the_name_points_at_a_dead_node(profile: Profile, secrets: Secrets, remote: Remote) -> None:
    if collect(profile, secrets, remote).verdict != "healthy":
        replay(profile, secrets, skip_checks=True)
    primary = profile.primary
    try:
        _pin_name_to(profile, secrets, primary.address)
        wait_until(f"the authoring name to answer {primary.address} only",
                   lambda: query_a(profile, profile.dns.authoring_name) == [primary.address], 15)
        lab.host_exec(primary.name, ["pkill", "-TERM", "-x", "mariadbd"], check=False)
        wait_until(f"mariadbd on {primary.name} to stop",
                   lambda: lab.host_exec(primary.name, ["pgrep", "-x", "mariadbd"], check=False).returncode == 1, 60)

        st = collect(profile, secrets, remote)
        assert st.authoring_addresses == [primary.address]
        assert st.authoring_problem.startswith(
            f"the authoring name {profile.dns.authoring_name} points at a DOWN node: {primary.name} "
            f"({primary.address}), where its mariadbd is stopped; authors cannot work now"), st.authoring_problem
        assert st.verdict == "degraded" and st.reason.startswith(st.authoring_problem), st.reason

        out = subprocess.run([sys.executable, "-m", "wizard", "status", "profiles/lab.yaml"], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
        text = " ".join(out.stdout.split())  # the console wraps long lines
        assert out.returncode == 1, out.stdout + out.stderr
        assert f"points at a DOWN node: {primary.name} ({primary.address}), where its mariadbd is stopped" in text, text
        assert "verdict: degraded: the authoring name" in text, text
    finally:
        push_record(profile, secrets)  # the failover record back
        replay(profile, secrets, skip_checks=True)  # the primary rejoins
    st = collect(profile, secrets, remote)
    assert st.verdict == "healthy" and st.authoring_problem == "", st.reason
