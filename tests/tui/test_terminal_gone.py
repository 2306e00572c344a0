"""Issue 15: the wizard and the monitor leave within seconds when their terminal goes away, with no SIGHUP
(the pty is not their controlling terminal, so closing its master side sends none) and no busy loop.

Real processes on a real pseudo-terminal: the wizard's start screen and the monitor replaying a recording."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.waits import wait_until

REPO = Path(__file__).resolve().parents[2]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain(fd: int, until: float) -> bytes:
    out = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def run_then_close_terminal(argv: list[str], tmp_path: Path) -> tuple[int | None, float]:
    """Start argv on a fresh pty (its own session, no controlling terminal), let it paint, close the master
    side; returns (exit status or None if still running after 5 s, CPU seconds used after the close)."""
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30", "HOME": str(tmp_path)}
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, env=env,
                            start_new_session=True, close_fds=True)
    os.close(slave)
    try:
        painted = drain(master, time.monotonic() + 8)
        assert painted, "the app painted nothing on its terminal"
        time.sleep(1.0)  # settled: the first screen is up and idle
        before = cpu_seconds(proc.pid)
        os.close(master)  # the terminal goes away; no SIGHUP is sent to a process it does not control
        try:
            wait_until("the app to exit after its terminal went away", lambda: proc.poll() is not None, 5,
                       interval=0.1)
        except AssertionError:
            used = cpu_seconds(proc.pid) - before
            return None, used
        _pid, _status, usage = os.wait4(proc.pid, 0) if proc.returncode is None else (0, 0, None)
        total = (usage.ru_utime + usage.ru_stime) if usage is not None else before
        return proc.returncode, max(0.0, total - before)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """A short monitor recording (the monitor replays it: no cluster needed)."""
    from tests.tui.conftest import healthy
    from wizard.monitor_record import Recorder
    from wizard.profile import load_profile

    profile = load_profile(REPO / "profiles" / "lab.yaml", check_files=False)
    path = tmp_path / "session.sqlite"
    rec = Recorder(path, profile.cluster_name)
    for i in range(3):
        rec.record(healthy(profile, 1_000_000.0 + i, 10 + i), [])
    rec.close()
    return path


def test_the_wizard_leaves_when_its_terminal_goes_away(tmp_path: Path) -> None:
    code, used = run_then_close_terminal([sys.executable, "-m", "wizard"], tmp_path)
    assert code is not None, f"still running 5 s after its terminal went away, {used:.2f} s of CPU since"
    assert used < 1.5, f"{used:.2f} s of CPU after the terminal went away (a busy loop?)"


def test_the_monitor_leaves_when_its_terminal_goes_away(tmp_path: Path, recording: Path) -> None:
    code, used = run_then_close_terminal([sys.executable, "-m", "wizard", "monitor", "--replay", str(recording)],
                                         tmp_path)
    assert code is not None, f"still running 5 s after its terminal went away, {used:.2f} s of CPU since"
    assert used < 1.5, f"{used:.2f} s of CPU after the terminal went away (a busy loop?)"
