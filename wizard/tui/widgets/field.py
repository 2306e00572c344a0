"""A labelled form input with its validation message right under it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Static


def show_message(widget: Static, messages: list[str]) -> bool:
    """Put `messages` in `widget` (hidden when none); touch nothing when it already shows them, since
    every update re-lays out the form and the form validates on every key.  Returns whether any show."""
    text = "\n".join(messages)
    if getattr(widget, "_shown_text", None) != text:
        widget._shown_text = text  # type: ignore[attr-defined]
        widget.update(text)
    set_display(widget, bool(messages))
    return bool(messages)


def set_display(widget: Widget, on: bool) -> None:
    if widget.display != on:
        widget.display = on


class FormField(Vertical):
    """Label, input and message.  The input's id is ``f-<key>``, the message's ``e-<key>``."""

    DEFAULT_CLASSES = "form-field"

    def __init__(self, key: str, label: str, value: str = "", *, placeholder: str = "", password: bool = False,
                 classes: str | None = None) -> None:
        super().__init__(id=f"ff-{key}", classes=classes)
        self.key = key
        self.label = label
        self.value = value
        self.placeholder = placeholder
        self.password = password

    def compose(self) -> ComposeResult:
        yield Label(self.label, classes="field-label")
        yield Input(self.value, placeholder=self.placeholder, password=self.password, id=f"f-{self.key}",
                    compact=True)
        yield Static("", id=f"e-{self.key}", classes="field-error", markup=False)

    def set_error(self, messages: list[str]) -> None:
        """Show the messages under the input (hidden when there are none)."""
        bad = show_message(self.query_one(f"#e-{self.key}", Static), messages)
        if self.has_class("bad") != bad:
            self.set_class(bad, "bad")


class CheckField(Vertical):
    """A checkbox in the same shape as :class:`FormField` (no message line needed)."""

    DEFAULT_CLASSES = "form-field"

    def __init__(self, key: str, label: str, value: bool = False) -> None:
        super().__init__(id=f"ff-{key}")
        self.key = key
        self.label = label
        self.value = value

    def compose(self) -> ComposeResult:
        yield Checkbox(self.label, self.value, id=f"f-{self.key}", compact=True)
        yield Static("", id=f"e-{self.key}", classes="field-error", markup=False)

    def set_error(self, messages: list[str]) -> None:
        show_message(self.query_one(f"#e-{self.key}", Static), messages)
