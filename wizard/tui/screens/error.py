"""A worker's error in full: a modal with the whole message, selectable and copyable (c), closed with escape.

Used for every worker failure instead of a short toast: a person needs the whole message (and often to
paste it into a ticket).  :func:`error_text` is the text shown: what failed, then the message with each
problem on its own line, secrets redacted.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, TextArea

from wizard.secrets import REDACTOR


def error_text(exc: BaseException) -> str:
    """The whole message of a (core) error: message and hint, or every problem on its own line."""
    message = getattr(exc, "message", None)
    hint = getattr(exc, "hint", None)
    problems = getattr(exc, "problems", None)
    if isinstance(problems, list) and problems:
        where = list(getattr(exc, "where", None) or [])
        where += [""] * (len(problems) - len(where))
        text = f"{getattr(exc, 'source', 'profile')}:\n" + "\n".join(
            f"  - {w + ': ' if w else ''}{p}" for p, w in zip(problems, where, strict=False))
    elif isinstance(message, str) and message:
        text = message + (f"\n\nWhat to do: {hint}" if isinstance(hint, str) and hint else "")
    else:
        text = str(exc) or type(exc).__name__
    step = getattr(exc, "step", None)
    if isinstance(step, str) and step:
        text = f"Failed at {step}.\n\n{text}"
    return REDACTOR(f"{text}\n\n({type(exc).__module__}.{type(exc).__qualname__})")


class TextViewScreen(ModalScreen[None]):
    """A title and a read-only text the person can select in and copy whole (c)."""

    DEFAULT_CSS = """
    TextViewScreen { align: center middle; }
    TextViewScreen > Vertical { width: 95%; height: 90%; border: thick $accent; padding: 0 1;
                                background: $surface; }
    TextViewScreen.error > Vertical { border: thick $error; }
    TextViewScreen #view-title { margin: 1 0 0 0; }
    TextViewScreen TextArea { height: 1fr; margin: 1 0; }
    TextViewScreen Horizontal { height: auto; align-horizontal: right; margin-bottom: 1; }
    TextViewScreen Button { margin-left: 1; }
    """
    BINDINGS = [Binding("escape", "close", "Close"), Binding("c", "copy", "Copy all")]

    def __init__(self, title: str, text: str, *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, id="view-title", classes="section-title", markup=False)
            yield TextArea(self.text, read_only=True, soft_wrap=True, id="view-text", show_line_numbers=False)
            with Horizontal():
                yield Button("Copy all (c)", id="view-copy", compact=True)
                yield Button("Close (esc)", id="view-close", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#view-close", Button).focus()

    def set_text(self, text: str) -> None:
        """Replace the text (an output still coming in), keeping the view at its end."""
        self.text = text
        area = self.query_one("#view-text", TextArea)
        area.load_text(text)
        area.scroll_end(animate=False)

    @on(Button.Pressed, "#view-copy")
    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.text)
        self.notify("Copied the whole text to the clipboard.")

    @on(Button.Pressed, "#view-close")
    def action_close(self) -> None:
        self.dismiss(None)


class ErrorScreen(TextViewScreen):
    def __init__(self, what: str, error: BaseException) -> None:
        super().__init__(f"{what} failed", error_text(error), classes="error")
        self.error = error
