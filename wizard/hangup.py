"""A headless run (``replay``, ``recover``) outlives the terminal it was started from.

The behaviour, on purpose: a SIGHUP (the shell or SSH session went away) does not stop the run.  Stopping
half way is the worse choice: files may be written and not yet used, agents are already at work on the
nodes (they run detached and finish anyway), and a run that dies mid-step leaves the next one to follow or
redo it.  So the run goes on to its end: its output goes to /dev/null from then on (the terminal is gone),
its run log keeps every step and command as before, and the event stream records the hangup
(``run:hangup``), so ``status`` tells the story afterwards.  The exit code is that of the run.

A write to a terminal that is gone fails (EIO) even before the SIGHUP is handled: :func:`quiet_on_loss` wraps
the output callbacks so such a failure also turns output off instead of ending the run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_lock = threading.RLock()  # re-entered when the SIGHUP handler runs while a write failure holds it
_hung_up = threading.Event()
_callbacks: list[Callable[[], None]] = []


def hung_up() -> bool:
    """True once the terminal went away (a SIGHUP, or a write to it failed)."""
    return _hung_up.is_set()


def _detach_output() -> None:
    """Point stdin, stdout and stderr at /dev/null (the file descriptors, so every writer follows)."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            with contextlib.suppress(OSError):
                os.dup2(null, fd)
        os.close(null)


def terminal_lost() -> None:
    """The terminal is gone: output off, then the callbacks (once).  Safe from a signal handler and threads."""
    with _lock:
        if _hung_up.is_set():
            return
        _hung_up.set()
    _detach_output()
    for callback in list(_callbacks):
        with contextlib.suppress(Exception):
            callback()


def go_on_after_hangup(on_hangup: Callable[[], None] | None = None) -> None:
    """Install the SIGHUP behaviour of a headless run (see the module doc).  ``on_hangup`` runs once, on a
    thread of its own, when the terminal goes away (it records the hangup; it must not print)."""
    if on_hangup is not None:
        def later() -> None:
            threading.Thread(target=on_hangup, daemon=True, name="hangup").start()

        _callbacks.append(later)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, lambda _signum, _frame: terminal_lost())


def quiet_on_loss(fn: F) -> F:
    """``fn`` (an output callback), with a failed write to a terminal that is gone (an OSError such as EIO or
    EPIPE, or a write to a closed stream) turned into :func:`terminal_lost` instead of an exception that would
    end the run.  Once the terminal is gone, the same failures are ignored."""
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OSError:
            terminal_lost()
        except ValueError as exc:
            if "closed file" not in str(exc):
                raise
            terminal_lost()
        return None

    return wrapped  # type: ignore[return-value]
