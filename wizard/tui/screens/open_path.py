"""Open a profile by path: a small dialog; dismisses with the path (absolute) or None."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from wizard.tui.typeahead import focus_first_field
from wizard.tui.widgets.field import FieldInput


def check_profile_path(text: str) -> tuple[Path | None, str]:
    """The typed path, absolute, or None with the reason it cannot be opened (names the fix)."""
    if not text.strip():
        return None, "type the path of a profile, e.g. profiles/lab.yaml"
    path = Path(text.strip()).expanduser().absolute()
    if path.is_dir():
        return None, f"{path} is a directory; add the file name (a .yaml profile in it)"
    if not path.is_file():
        return None, f"{path} does not exist; check the path (relative paths start at {Path.cwd()})"
    return path, f"opens {path}"


class OpenPathScreen(ModalScreen[Path | None]):
    DEFAULT_CSS = """
    OpenPathScreen { align: center middle; }
    OpenPathScreen > Vertical { width: 90%; max-width: 110; height: auto; border: thick $accent; padding: 1 2;
                                background: $surface; }
    OpenPathScreen #open-note { color: $text-muted; margin: 1 0; }
    OpenPathScreen #open-note.bad { color: $error; }
    OpenPathScreen Horizontal { height: auto; align-horizontal: right; }
    OpenPathScreen Button { margin-left: 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, initial: str = "") -> None:
        super().__init__()
        self.initial = initial

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Open a profile by path", classes="section-title")
            yield FieldInput(self.initial, placeholder="path/to/profile.yaml", id="open-path")
            yield Static("", id="open-note", markup=False)
            with Horizontal():
                yield Button("Cancel", id="open-cancel", compact=True)
                yield Button("Open", id="open-ok", variant="primary", compact=True)

    def on_mount(self) -> None:
        focus_first_field(self, "#open-path")

    @on(Input.Changed, "#open-path")
    def _changed(self, event: Input.Changed) -> None:
        path, note = check_profile_path(event.value)
        widget = self.query_one("#open-note", Static)
        widget.update(note)
        widget.set_class(path is None and bool(event.value.strip()), "bad")

    @on(Input.Submitted, "#open-path")
    @on(Button.Pressed, "#open-ok")
    def action_open(self) -> None:
        path, note = check_profile_path(self.query_one("#open-path", Input).value)
        if path is None:
            widget = self.query_one("#open-note", Static)
            widget.update(note)
            widget.set_class(True, "bad")
            return
        self.dismiss(path)

    @on(Button.Pressed, "#open-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
