"""A headless run outlives its terminal (wizard.hangup): a process started on a pseudo-terminal that is its
controlling terminal, whose terminal is then closed (the kernel sends SIGHUP and later writes fail with EIO),
goes on to its end; its output goes nowhere from then on and its callback records the hangup."""

from __future__ import annotations

import fcntl
import os
import pty
import subprocess
import sys
import termios
from pathlib import Path

from tests.waits import wait_until

SCRIPT = r"""
import sys, time
from pathlib import Path
from wizard.hangup import go_on_after_hangup, quiet_on_loss

out = Path(sys.argv[1])
go_on_after_hangup(lambda: (out / "hangup").write_text("recorded"))
say = quiet_on_loss(print)
say("started", flush=True)
while not (out / "go").exists():
    time.sleep(0.05)
for i in range(20):  # the run's steps: output to a terminal that is gone
    say("step", i, flush=True)
    time.sleep(0.05)
(out / "finished").write_text("yes")
"""


def controlling_tty() -> None:  # in the child: a session of its own, whose controlling terminal is the pty
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_closing_the_terminal_does_not_stop_the_run(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)], stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=controlling_tty, cwd=Path(__file__).resolve().parents[2])
    os.close(slave)
    seen = b""

    def started() -> bool:
        nonlocal seen
        seen += os.read(master, 1024)
        return b"started" in seen

    wait_until("the child to start", started, 20)
    os.close(master)  # the terminal goes away: SIGHUP to the session, EIO on its writes
    (tmp_path / "go").write_text("")
    assert proc.wait(timeout=30) == 0
    assert (tmp_path / "finished").read_text() == "yes"
    wait_until("the hangup to be recorded", lambda: (tmp_path / "hangup").exists(), 10)


def test_a_hangup_signal_alone_does_not_stop_the_run(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"started"
    proc.send_signal(1)  # SIGHUP
    wait_until("the hangup to be recorded", lambda: (tmp_path / "hangup").exists(), 10)
    (tmp_path / "go").write_text("")
    assert proc.wait(timeout=30) == 0
    assert (tmp_path / "finished").read_text() == "yes"
    assert proc.stdout.read() == b""  # output went to /dev/null after the hangup
