"""Asks before a form's unsaved edits are dropped (Esc on a form that was changed).

Dismisses with True to drop the edits and leave, False to stay and keep editing.  Keeping is the
default: Esc, n, or Enter on the focused "Keep editing" button.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from wizard.tui.typeahead import focus_first_field


class DiscardEditsScreen(ModalScreen[bool]):
    DEFAULT_CSS = """
    DiscardEditsScreen { align: center middle; }
    DiscardEditsScreen > Vertical { width: 90%; max-width: 80; height: auto; border: thick $warning;
                                    padding: 1 2; background: $surface; }
    DiscardEditsScreen #discard-what { margin: 1 0; }
    DiscardEditsScreen Horizontal { height: auto; align-horizontal: right; }
    DiscardEditsScreen Button { margin-left: 1; }
    """
    BINDINGS = [Binding("escape,n", "keep", "Keep editing"), Binding("y,d", "drop", "Drop the edits")]

    def __init__(self, what: str, leaving: str = "go back") -> None:
        """`what`: the edits, in a few words ("3 changed fields of the cluster form"); `leaving`: what dropping
        them does ("go back", "quit")."""
        super().__init__()
        self.what, self.leaving = what, leaving

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Drop your edits and {self.leaving}?", classes="section-title")
            yield Static(f"{self.what} would be lost (what is on disk stays as it is).", id="discard-what",
                         markup=False)
            with Horizontal():
                yield Button("Drop edits (d)", id="discard-drop", variant="error", compact=True)
                yield Button("Keep editing (esc)", id="discard-keep", variant="primary", compact=True)

    def on_mount(self) -> None:
        focus_first_field(self, "#discard-keep")

    @on(Button.Pressed, "#discard-keep")
    def action_keep(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#discard-drop")
    def action_drop(self) -> None:
        self.dismiss(True)
