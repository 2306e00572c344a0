"""End-to-end tests of the real ``studio-cluster`` TUI in a real terminal: tmux.

Each test starts the installed entry point in a detached tmux session of a fixed size on a private
server (``tmux -L <unique socket>``, no config file), so it never touches a person's own tmux.  Keys go
in with ``send-keys``; what the terminal shows comes back with ``capture-pane -p`` and is polled until
the expected text appears (no fixed sleeps).  The server is always killed in the fixture's teardown.

Nothing here contacts a remote host: the tests stay on the start screen and the cluster/nodes form,
which only validate what is typed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.tui.conftest import FIXTURES, REPO

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

COLS, ROWS = 100, 30
SESSION = "wizard"
ENTRY = Path(sys.executable).with_name("studio-cluster")  # the console script of this venv
PROD = FIXTURES / "profiles" / "prod.yaml"


class Tmux:
    """One private tmux server running one command in a fixed-size pane."""

    def __init__(self, socket: str, status_file: Path, record: Path | None = None) -> None:
        self.socket = socket
        self.status_file = status_file  # the app's exit status, written by the shell around it
        self.record = record  # every byte the app writes to its terminal goes here too (tmux pipe-pane)

    def kill(self) -> None:
        """Kill the private server and remove its socket file (tmux leaves it behind)."""
        found = self.tmux("display-message", "-p", "#{socket_path}", check=False).stdout.strip()
        self.tmux("kill-server", check=False)
        if found:
            Path(found).unlink(missing_ok=True)

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check,
                              timeout=10)

    def start(self, argv: list[str], env: dict[str, str]) -> None:
        """Run `argv` from the repository root with exactly `env`; the pane stays after it exits.

        A POSIX shell around it writes the app's exit status to a file once the app is gone: tmux 3.3
        sometimes never reaps the pane's process (``#{pane_dead_status}`` stays empty) and can drop the
        last output before the terminal closes, so neither the pane's status nor an echo is reliable.
        """
        script = (f"cd {shlex.quote(str(REPO))} && env -i "
                  + " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(env.items()))
                  + f" {shlex.join(argv)}; echo $? > {shlex.quote(str(self.status_file))}")
        # -f /dev/null: no user config; remain-on-exit is set in the same client command, before the
        # server can process the child's exit, so a crash at start-up still leaves a dead pane to read
        recording = [";", "pipe-pane", "-o", "-t", SESSION, f"cat >> {shlex.quote(str(self.record))}"] \
            if self.record is not None else []
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", SESSION, "-x", str(COLS), "-y", str(ROWS),
                  "/bin/sh", "-c", script, ";", "set-option", "-w", "-t", SESSION, "remain-on-exit", "on",
                  *recording)

    def send(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", SESSION, *(["-l"] if literal else []), *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", SESSION).stdout

    def pane(self, fmt: str) -> str:
        return self.tmux("list-panes", "-t", SESSION, "-F", fmt).stdout.strip()

    def cursor(self) -> tuple[int, int]:
        """Where the terminal's cursor is (Textual keeps it on the focused input, even while hidden)."""
        x, y = self.tmux("display-message", "-p", "-t", SESSION, "#{cursor_x} #{cursor_y}").stdout.split()
        return int(x), int(y)

    def wait_until(self, predicate: Callable[[str], bool], what: str, timeout: float = 10.0) -> str:
        """Poll the pane until `predicate(screen)` holds; return that screen.

        On timeout the failure shows what the terminal last showed, which is what one needs to see.
        """
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"{what} not on screen after {timeout:.0f}s; last screen:\n{screen}", pytrace=False)
            time.sleep(0.05)

    def wait_for_screen(self, expected: str | re.Pattern[str] | Callable[[str], bool], timeout: float = 10.0,
                        ) -> str:
        """Wait for a text, a regex or a predicate on the screen; return that screen."""
        if isinstance(expected, str):
            text = expected
            return self.wait_until(lambda screen: text in screen, repr(text), timeout)
        if isinstance(expected, re.Pattern):
            pattern = expected
            return self.wait_until(lambda screen: pattern.search(screen) is not None, f"/{pattern.pattern}/",
                                   timeout)
        return self.wait_until(expected, getattr(expected, "__name__", "the predicate"), timeout)

    def wait_for_exit(self, timeout: float = 10.0) -> int:
        """Wait until the app has exited and its terminal has closed; return the app's exit status."""
        deadline = time.monotonic() + timeout
        while True:
            written = self.status_file.read_text() if self.status_file.exists() else ""
            # the status is in, and no process holds the pane's terminal any more
            if written.endswith("\n") and self.pane("#{pane_dead}") == "1":
                return int(written)
            if time.monotonic() > deadline:
                pytest.fail(f"the app has not exited after {timeout:.0f}s (exit status file: {written!r}); "
                            f"last screen:\n{self.screen()}", pytrace=False)
            time.sleep(0.05)


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Tmux]:
    tmux = Tmux(f"studio-cluster-test-{os.getpid()}-{uuid.uuid4().hex[:8]}", tmp_path / "exit-status")
    try:
        yield tmux
    finally:
        tmux.kill()


def app_env(home: Path) -> dict[str, str]:
    """A small, fixed environment: no inherited settings, a UTF-8 xterm, an empty home."""
    home.mkdir(exist_ok=True)
    return {
        "PATH": f"{ENTRY.parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "TEXTUAL_ANIMATIONS": "none",
    }


def test_new_cluster_shows_an_address_error_and_ctrl_q_quits(term: Tmux, tmp_path: Path) -> None:
    term.start([str(ENTRY)], app_env(tmp_path / "home"))

    # title, intro, the three choices, the profiles list and the footer's key for a new cluster
    start = ("studio-cluster — start", "Stand up a highly available Crafter Studio cluster", "New cluster",
             "Load profile", "Monitor cluster", "Saved profiles in profiles/", "n New cluster")
    term.wait_for_screen(lambda screen: all(text in screen for text in start))

    term.send("n")
    form = ("cluster and nodes (new cluster)", "Cluster name (wsrep_cluster_name)", "Studio node 1",
            "Studio node 2", "Arbiter")
    term.wait_for_screen(lambda screen: all(text in screen for text in form))
    # validation of the blank form has finished once the status line counts the problems
    term.wait_for_screen(re.compile(r"\d+ to fix; first: "))

    # focus chain of the form: the cluster name (focused when the form opens), Studio node 1 name, its address.
    # Wait until the address input has taken the focus (the cursor sits on the line under Studio node 1's
    # "address" label) before typing: an input selects its text when focus arrives, eating early keys.
    term.send("Tab", "Tab")

    def address_focused(screen: str) -> bool:
        lines = screen.splitlines()
        label = next(i for i, line in enumerate(lines) if line.startswith(" address "))
        x, y = term.cursor()
        return y == label + 1 and x < 32  # the first of the three node columns

    term.wait_until(address_focused, "the focus on Studio node 1's address")
    term.send("999.1.1.1", literal=True)
    message = "'999.1.1.1' is neither an IP address nor a host name; use e.g. 10.0.0.11 or studio1.example.com"

    def first_column(screen: str) -> str:
        """Studio node 1's column, its lines joined: the message wraps inside that column."""
        lines = screen.splitlines()
        width = next(line.index("Studio node 2") for line in lines if "Studio node 2" in line)
        return " ".join(" ".join(line[:width].split()) for line in lines)

    screen = term.wait_until(lambda screen: message in first_column(screen), repr(message))
    lines = screen.splitlines()
    label = next(i for i, line in enumerate(lines) if line.startswith(" address "))
    assert lines[label + 1].split()[0] == "999.1.1.1", screen  # typed into Studio node 1's address
    assert lines[label + 2].startswith(" '999.1.1.1' is neither"), screen  # its message right under it
    assert "not a valid node name" not in screen

    term.send("C-q")  # the form has an edit: quitting asks first
    term.wait_for_screen("Drop your edits and quit?")
    term.send("d")
    assert term.wait_for_exit() == 0


def test_profile_option_opens_the_form_filled(term: Tmux, tmp_path: Path) -> None:
    term.start([str(ENTRY), "--profile", str(PROD.relative_to(REPO))], app_env(tmp_path / "home"))

    # the addresses and names of prod.yaml, in the form of the cluster/nodes screen
    filled = (f"cluster and nodes ({PROD.relative_to(REPO)})", "studio-prod", "10.20.0.11", "10.20.0.12",
              "10.20.0.13", "authoring.example.com")
    term.wait_for_screen(lambda screen: all(text in screen for text in filled))
    # the profile names no key or known_hosts file, so it validates as it is
    term.wait_for_screen("All settings are valid.")

    term.send("C-q")
    assert term.wait_for_exit() == 0
