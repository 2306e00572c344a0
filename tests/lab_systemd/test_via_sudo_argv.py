"""Values reach the remote command exactly as typed through sudo too (issue 10): on the systemd lab the
product logs in as ``deploy`` and runs privileged commands as ``sudo -n -- sh -c CMD``.  Hypothesis-generated
argv (any text but NUL) go through NodeConnection.run(privileged=True) to a root-owned script that prints its
argv NUL-separated and its uid.  Named to sort after test_systemd_cluster.py (it forms no cluster)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wizard.profile import Profile
from wizard.remote import NodeConnection, Remote

ECHO = "/usr/local/bin/studio-cluster-argv-echo"
ECHO_SCRIPT = b'#!/bin/sh\nid -u\nfor a in "$@"; do printf \'%s\\0\' "$a"; done\n'
ANY_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
HOSTILE = st.sampled_from(["$(touch x)", ";touch x", "`id`", "'", '"', "\\", "\n", "*", "-n", "--", "$HOME", "a b",
                           "|", "&", "#", "!", "\r", "\t", "é"])


@pytest.fixture(scope="module")
def echo(sd_profile: Profile) -> Iterator[NodeConnection]:
    remote = Remote(sd_profile)
    conn = remote[sd_profile.nodes[0].name]
    assert conn.node.ssh.user != "root" and conn.node.ssh.sudo, "the systemd lab logs in as a sudo user"
    conn.put(ECHO_SCRIPT, ECHO, mode=0o755)
    yield conn
    conn.run(["rm", "-f", ECHO], check=False)
    remote.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(st.lists(st.one_of(ANY_TEXT, HOSTILE), min_size=1, max_size=6))
def test_argv_arrives_exactly_through_sudo(echo: NodeConnection, words: list[str]) -> None:
    out = echo.run([ECHO, *words], privileged=True).stdout
    uid, _, rest = out.partition("\n")
    assert uid == "0", "ran as root through sudo"
    assert rest.split("\0")[:-1] == words
