"""What every screen shares: the session, a safe way back from worker threads, one worker error handler."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual import on
from textual.screen import Screen
from textual.widgets import Button
from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from wizard.tui.session import Session


def describe_error(exc: BaseException) -> str:
    """One line a person can act on, secrets redacted (core errors carry message + hint)."""
    from wizard.secrets import REDACTOR  # here, not at import: it brings pydantic, which the first paint does not need

    message = getattr(exc, "message", None)
    hint = getattr(exc, "hint", None)
    problems = getattr(exc, "problems", None)
    if isinstance(problems, list) and problems:
        text = f"{getattr(exc, 'source', 'profile')}: " + "; ".join(str(p) for p in problems)
    elif isinstance(message, str) and message:
        text = message + (f"; {hint}" if isinstance(hint, str) and hint else "")
    else:
        text = str(exc) or type(exc).__name__
    return REDACTOR(text)


def show_error(screen: Screen[Any], worker: Worker[Any], error: BaseException) -> None:
    """Open the error view for a failed worker (its name says what failed)."""
    from wizard.tui.screens.error import ErrorScreen

    what = (worker.name or worker.group or "work").replace("_", " ").strip()
    screen.app.push_screen(ErrorScreen(what, error))


class WizardScreen(Screen[Any]):
    """Base of every screen.  Workers report failures through :meth:`worker_failed`, in one place."""

    @property
    def session(self) -> Session:
        return self.app.session  # type: ignore[attr-defined]

    def ui(self, fn: Callable[..., object], *args: Any) -> None:
        """From a worker thread: run `fn(*args)` on the event loop, if this screen is still there."""

        def guarded() -> None:
            if self.is_attached:
                fn(*args)

        with contextlib.suppress(RuntimeError):  # the app is shutting down
            self.app.call_from_thread(guarded)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.worker_failed(event.worker, event.worker.error)

    def worker_failed(self, worker: Worker[Any], error: BaseException) -> None:
        """Default: a modal with the whole message, copyable.  Screens override to show it in place too."""
        show_error(self, worker, error)

    def why_disabled(self, action: str) -> str | None:
        """Why `action` is off now (check_action said None or False): the app shows it when its key is
        pressed (wizard.tui.typeahead.TypeAhead.say_why_disabled).  None: a general line."""
        return None

    # -- shared actions -----------------------------------------------------------------------------
    @on(Button.Pressed, "#next")
    def _next_pressed(self) -> None:
        self.action_next()

    @on(Button.Pressed, "#back")
    def _back_pressed(self) -> None:
        self.action_back()

    def action_next(self) -> None:
        """Screens with a next step override this."""

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_save(self) -> None:
        """Ask where to save (the dialog shows the absolute path and whether it overwrites), then save."""
        from wizard.tui.screens.save import SaveScreen

        if self.session.profile is None:
            self.notify("Nothing to save yet: fill in the cluster form first.", severity="warning")
            return
        self.app.push_screen(SaveScreen())
