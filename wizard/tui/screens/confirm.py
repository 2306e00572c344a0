"""Asks before an action that changes a running cluster (the palette's recover): what it does, on which profile
and cluster.  Dismisses with True to go ahead, False to cancel; cancelling is the default (Esc, n, Enter on the
focused Cancel button)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from wizard.tui.typeahead import focus_first_field


class ConfirmScreen(ModalScreen[bool]):
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 90%; max-width: 80; height: auto; border: thick $warning;
                               padding: 1 2; background: $surface; }
    ConfirmScreen #confirm-what { margin: 1 0; }
    ConfirmScreen Horizontal { height: auto; align-horizontal: right; }
    ConfirmScreen Button { margin-left: 1; }
    """
    BINDINGS = [Binding("escape,n", "cancel", "Cancel"), Binding("y", "go", "Go ahead")]

    def __init__(self, title: str, what: str, go_label: str) -> None:
        """`title`: the question; `what`: what happens and to which cluster; `go_label`: the button that acts."""
        super().__init__()
        self.title_text, self.what, self.go_label = title, what, go_label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="section-title")
            yield Static(self.what, id="confirm-what", markup=False)
            with Horizontal():
                yield Button(f"{self.go_label} (y)", id="confirm-go", variant="error", compact=True)
                yield Button("Cancel (esc)", id="confirm-cancel", variant="primary", compact=True)

    def on_mount(self) -> None:
        focus_first_field(self, "#confirm-cancel")

    @on(Button.Pressed, "#confirm-cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#confirm-go")
    def action_go(self) -> None:
        self.dismiss(True)
