"""Values reach the remote command exactly as typed (issue 10): hypothesis-generated strings go through the
product's own remote path (NodeConnection.run with an argv list, a command built with sh(), and the
`sh -c` wrapping sudo uses) to a script on a lab host that prints its argv NUL-separated."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wizard.profile import Profile
from wizard.remote import NodeConnection, Remote, sh
from wizard.remote_values import remote_path, unit_name

ECHO = "/root/argv-echo.sh"
ECHO_SCRIPT = b'#!/bin/sh\nfor a in "$@"; do printf \'%s\\0\' "$a"; done\n'

# any text a shell word can carry: every code point but NUL (argv is NUL-terminated) and surrogates (not UTF-8)
ANY_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
HOSTILE = st.sampled_from(["$(touch x)", ";touch x", "`id`", "'", '"', "\\", "\n", "*", "~", "-n", "--", "$HOME",
                           "a b", "|", "&", ">x", "<x", "#", "!", "{a,b}", "\r", "\t", "\x1b[31m", "é", "日本"])
WORDS = st.lists(st.one_of(ANY_TEXT, HOSTILE), min_size=1, max_size=6)
PATH_CHARS = st.sampled_from("abcXYZ019._+@%,:=~-/")
VALID_PATHS = st.text(PATH_CHARS, min_size=1, max_size=60).map(lambda t: "/" + t)
UNIT_NAMES = st.from_regex(r"[A-Za-z0-9:_\\][A-Za-z0-9:_\\-]{0,20}(@[A-Za-z0-9:_\\@-]{1,10})?(\.service)?",
                           fullmatch=True)


@pytest.fixture(scope="module")
def echo(profile: Profile) -> Iterator[NodeConnection]:
    remote = Remote(profile)
    conn = remote["studio1"]
    conn.put(ECHO_SCRIPT, ECHO, mode=0o755)
    yield conn
    conn.run(["rm", "-f", ECHO], check=False)
    remote.close()


def argv_of(stdout: str) -> list[str]:
    assert stdout.endswith("\0") or stdout == "", repr(stdout)
    return stdout.split("\0")[:-1]


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


@FAST
@given(WORDS)
def test_argv_lists_arrive_exactly(echo: NodeConnection, words: list[str]) -> None:
    assert argv_of(echo.run([ECHO, *words], privileged=False).stdout) == words
    # a command built with sh(), then wrapped once more as `sudo -n -- sh -c CMD` wraps it
    assert argv_of(echo.run(sh("sh", "-c", sh(ECHO, *words)), privileged=False).stdout) == words


@FAST
@given(st.lists(VALID_PATHS, min_size=1, max_size=4), UNIT_NAMES)
def test_valid_profile_values_arrive_exactly(echo: NodeConnection, paths: list[str], unit: str) -> None:
    values = [str(remote_path(p)) for p in paths]
    with contextlib.suppress(ValueError):  # the regex also makes names systemd refuses ('a.b'): not valid
        values.append(unit_name(unit))
    assert argv_of(echo.run([ECHO, *values], privileged=False).stdout) == values
