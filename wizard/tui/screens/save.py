"""Save the profile: a dialog that says where it writes, with the path to change.

The default is the file the profile was loaded from, else ``<profiles dir>/<cluster name>.yaml`` shown
as an absolute path, so nothing lands in the current directory unseen.  Saving runs in a worker (it
validates and writes); the dialog dismisses with the path written, ``None`` when cancelled, or
``"skip"`` when the person chose to go on without saving (offered before apply).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static
from textual.worker import Worker, WorkerState

from wizard.tui.screens.base import describe_error
from wizard.tui.typeahead import focus_first_field
from wizard.tui.widgets.field import FieldInput

SaveResult = Path | str | None  # the path written, "skip", or None (cancelled)


def default_save_path(session: Any) -> Path:
    """Where Save proposes to write: the loaded file, the last save, else the profiles dir (absolute)."""
    for known in (session.saved_path, session.profile_path):
        if known is not None:
            return Path(known).expanduser().absolute()
    name = session.profile.cluster_name if session.profile is not None else "cluster"
    return (Path(session.profiles_dir).expanduser() / f"{name}.yaml").absolute()


def describe_target(path: Path) -> str:
    """One line about what saving to `path` does (new file, overwrite, missing directory)."""
    if path.is_dir():
        return f"{path} is a directory; give a file name, e.g. {path / 'cluster.yaml'}"
    if path.exists():
        return f"overwrites {path}"
    if not path.parent.exists():
        return f"creates {path} (and the directory {path.parent})"
    return f"creates {path}"


class SaveScreen(ModalScreen[SaveResult]):
    DEFAULT_CSS = """
    SaveScreen { align: center middle; }
    SaveScreen > Vertical { width: 90%; max-width: 110; height: auto; border: thick $accent; padding: 1 2;
                            background: $surface; }
    SaveScreen #save-note { color: $text-muted; margin: 1 0; }
    SaveScreen #save-note.bad { color: $error; }
    SaveScreen Horizontal { height: auto; align-horizontal: right; }
    SaveScreen Button { margin-left: 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, *, before_apply: bool = False) -> None:
        super().__init__()
        self.before_apply = before_apply

    def compose(self) -> ComposeResult:
        session = self.app.session  # type: ignore[attr-defined]
        title = ("Save the profile before applying? status, recover and the monitor need it."
                 if self.before_apply else "Save the profile")
        with Vertical():
            yield Label(title, classes="section-title")
            yield Static("Secrets are saved as their references (env:NAME, file:/path, ask), never as values.",
                         markup=False)
            yield FieldInput(str(default_save_path(session)), id="save-path")
            yield Static("", id="save-note", markup=False)
            with Horizontal():
                if self.before_apply:
                    yield Button("Apply without saving", id="save-skip", compact=True)
                yield Button("Cancel", id="save-cancel", compact=True)
                yield Button("Save", id="save-ok", variant="primary", compact=True)

    def on_mount(self) -> None:
        self._note()
        focus_first_field(self, "#save-path")  # now, not in a callback: the path selected, typing replaces it

    def target(self) -> Path:
        return Path(self.query_one("#save-path", Input).value.strip()).expanduser().absolute()

    def _note(self, text: str | None = None, bad: bool = False) -> None:
        note = self.query_one("#save-note", Static)
        note.update(text if text is not None else describe_target(self.target()))
        note.set_class(bad, "bad")

    @on(Input.Changed, "#save-path")
    def _changed(self) -> None:
        self._note()

    @on(Input.Submitted, "#save-path")
    @on(Button.Pressed, "#save-ok")
    def action_save(self) -> None:
        path = self.target()
        if path.is_dir() or not self.query_one("#save-path", Input).value.strip():
            self._note(f"{path} is a directory; give a file name ending in .yaml", bad=True)
            return
        self._save(path)

    @work(thread=True, exclusive=True, group="save", exit_on_error=False)
    def _save(self, path: Path) -> Path:
        return self.app.session.save_profile(path)  # type: ignore[attr-defined]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "save":
            return
        if event.state is WorkerState.SUCCESS and isinstance(event.worker.result, Path):
            self.app.notify(f"Saved the profile to {event.worker.result}.")
            self.dismiss(event.worker.result)
        elif event.state is WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            reason = error.strerror if isinstance(error, OSError) and error.strerror else describe_error(error)
            self._note(f"cannot save to {self.target()}: {reason}; choose another path", bad=True)

    @on(Button.Pressed, "#save-skip")
    def _skip(self) -> None:
        self.dismiss("skip")

    @on(Button.Pressed, "#save-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
