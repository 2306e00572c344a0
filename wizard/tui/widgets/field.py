"""A labelled form input with its validation message right under it."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Static


class FieldInput(Input):
    """An input that Tab (or a click) enters with the cursor at the end and nothing selected, so a key typed
    next edits the value instead of replacing it (Textual's Input selects all on focus: a newcomer's Space
    after a Tab replaced a whole path).  Only the first field of a screen just opened comes selected
    (:func:`wizard.tui.typeahead.focus_first_field`): typing there replaces a prefilled value such as 'ask'."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("select_on_focus", False)
        super().__init__(*args, **kwargs)
        self.select_next_focus = False  # set by focus_first_field for the focus it gives

    def _on_focus(self, event: events.Focus) -> None:
        super()._on_focus(event)
        if event.from_app_focus:  # the terminal got the focus back: leave cursor and selection as they were
            return
        if self.select_next_focus:
            self.select_next_focus = False
            self.select_all()
        else:
            self.cursor_position = len(self.value)  # also clears any selection left from before

    def _on_blur(self, event: events.Blur) -> None:
        self.select_next_focus = False  # meant for the focus given when the screen opened, not a later one
        super()._on_blur(event)


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
        yield FieldInput(self.value, placeholder=self.placeholder, password=self.password, id=f"f-{self.key}",
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
