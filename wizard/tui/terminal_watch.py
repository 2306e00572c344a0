"""Leave when the operator's terminal goes away (issue 15).

Textual's Linux driver reads stdin in a thread; when the terminal disappears without a SIGHUP reaching us (a
pty whose master side closed, an SSH session torn down under a process not in its foreground group), that
thread loops on ``select``/``read`` of a dead descriptor and the app spins at ~90 % of a core forever (seen with
Textual 0.x/1.x on Linux; the upstream fix is an open pull request).  Until a fixed Textual ships, this watch
asks the terminal itself every ``interval`` seconds: ``tcgetattr`` on a terminal that went away fails with EIO
(or EBADF), SIGHUP or not; then the app is asked to exit, and the process ends after ``grace`` seconds whatever
state the app's threads are in.  A SIGHUP does the same at once.

Work in flight is not lost by leaving: the node agents run on the nodes and finish or refuse on their own, files
are replaced whole, and the run lease expires (see the README's "When the terminal goes away").
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import termios
import threading
from typing import Any

EXIT_TERMINAL_LOST = 129  # 128 + SIGHUP, what a shell reports for a job killed by a hangup


class TerminalWatch:
    """Watch ``fd`` (the app's terminal) from a daemon thread; :meth:`lost` ends the app."""

    def __init__(self, app: Any, fd: int, interval: float = 0.5, grace: float = 3.0) -> None:
        self.app, self.fd, self.interval, self.grace = app, fd, interval, grace
        self._stop = threading.Event()
        self._gone = threading.Event()
        self._thread = threading.Thread(target=self._run, name="terminal-watch", daemon=True)

    @classmethod
    def for_stdin(cls, app: Any) -> TerminalWatch | None:
        """A watch of the process's stdin when it is a terminal (the driver reads it), else None."""
        stdin = sys.__stdin__
        if stdin is None:
            return None
        try:
            fd = stdin.fileno()
        except (OSError, ValueError):
            return None
        return cls(app, fd) if os.isatty(fd) else None

    def start(self) -> None:
        self._thread.start()
        with contextlib.suppress(ValueError):  # not the main thread (tests): the terminal check still works
            signal.signal(signal.SIGHUP, lambda _signo, _frame: self.lost("SIGHUP"))

    def stop(self) -> None:
        self._stop.set()

    def alive(self) -> bool:
        """The terminal still answers (``tcgetattr`` works)."""
        try:
            termios.tcgetattr(self.fd)
        except (termios.error, OSError):
            return False
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.alive():
                self.lost("the terminal went away")
                return

    def lost(self, why: str) -> None:
        """Ask the app to exit, and end the process after ``grace`` seconds in any case (the driver's own
        restoring of the terminal can block on a dead one)."""
        if self._gone.is_set():
            return
        self._gone.set()
        timer = threading.Timer(self.grace, os._exit, args=(EXIT_TERMINAL_LOST,))
        timer.daemon = True
        timer.start()
        if threading.current_thread() is threading.main_thread():  # a signal handler: already on the app's loop
            self.app.exit(EXIT_TERMINAL_LOST)
            return
        with contextlib.suppress(Exception):  # blocks this thread until the app's loop ran it (or the timer)
            self.app.call_from_thread(self.app.exit, EXIT_TERMINAL_LOST)
