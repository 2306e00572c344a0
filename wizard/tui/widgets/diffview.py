"""A scrollable unified diff, coloured line by line (added green, removed red, hunks cyan)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import ScrollableContainer
from textual.widgets import Static


def colour_diff(diff: str) -> Text:
    text = Text(overflow="fold")
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        else:
            style = ""
        text.append(line + "\n", style=style)
    return text


class DiffView(ScrollableContainer):
    """Shows one diff (or a note when there is none); long lines wrap, folded, so none is cut off: the
    colour of a wrapped line's rest still says added or removed."""

    DEFAULT_CLASSES = "diff-view"

    def compose(self) -> ComposeResult:
        yield Static("", classes="diff-body")

    def show(self, title: str, diff: str, note: str = "") -> None:
        body = Text(overflow="fold")
        body.append(title + "\n", style="bold")
        if note:
            body.append(note + "\n", style="dim")
        if diff:
            body.append_text(colour_diff(diff))
        self.query_one(".diff-body", Static).update(body)
        self.scroll_home(animate=False)
