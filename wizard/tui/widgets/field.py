"""A labelled form input with its validation message right under it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Checkbox, Input, Label, Static


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
        msg = self.query_one(f"#e-{self.key}", Static)
        msg.update("\n".join(messages))
        msg.display = bool(messages)
        self.set_class(bool(messages), "bad")


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
        msg = self.query_one(f"#e-{self.key}", Static)
        msg.update("\n".join(messages))
        msg.display = bool(messages)
