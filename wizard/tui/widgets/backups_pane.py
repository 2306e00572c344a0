"""The monitor's Backups pane: the catalog (age, state, size, donor, position), the last failure with its
reason, warnings, and a running take/verify with its live progress.

The pane only draws values (:class:`wizard.backups.catalog.Entry`, :class:`wizard.backups.take.Progress`);
the monitor screen reads the catalog and runs the jobs in workers.  :class:`Latest` coalesces a worker's
progress reports: whatever the rate of reports, at most one message waits in the queue, and the screen
draws the newest value.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from wizard.backups.catalog import Entry, human_age, human_size
from wizard.backups.health import DEFAULT_MAX_AGE_S, BackupHealth, summarize
from wizard.backups.take import Progress

T = TypeVar("T")

STATE_STYLE = {"verified": "green", "complete": "cyan", "verify failed": "bold red", "failed": "red",
               "in progress": "yellow"}
COLUMNS = (("age", "age", 5), ("state", "state", 13), ("size", "size", 8), ("donor", "donor", 8),
           ("position", "position", 9), ("id", "id", 17))


class Latest(Generic[T]):
    """A latest-value mailbox between a worker thread and the UI: :meth:`offer` keeps the value and calls
    ``notify`` (which posts a message) only when no message is pending; :meth:`take` (on the UI side) returns
    the newest value and re-arms.  Thread-safe."""

    def __init__(self, notify: Callable[[], object]) -> None:
        self._notify = notify
        self._lock = threading.Lock()
        self._value: T | None = None
        self._pending = False
        self.offered = 0  # how many values were offered (the rest were coalesced away)

    def offer(self, value: T) -> None:
        with self._lock:
            self._value = value
            self.offered += 1
            if self._pending:
                return
            self._pending = True
        self._notify()

    def peek(self) -> T | None:
        """The newest value, leaving the mailbox as it is."""
        with self._lock:
            return self._value

    def take(self) -> T | None:
        with self._lock:
            self._pending = False
            return self._value


class JobProgress(Message):
    """A take is making progress: the screen takes the newest value from its :class:`Latest`."""


class JobNote(Message):
    """One line a running job wants said (``take``'s notes)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


def position_cell(e: Entry) -> Text:
    if e.seqno is None:
        return Text("-", style="dim")
    return Text(str(e.seqno))


def entry_cells(e: Entry) -> dict[str, object]:
    """One catalog row by column key."""
    return {"age": human_age(e.age_s), "state": Text(e.state, style=STATE_STYLE.get(e.state, "")),
            "size": human_size(e.size), "donor": e.donor or "-", "position": position_cell(e),
            "id": Text(e.id.removesuffix(f"-{e.donor}") if e.donor else e.id, style="dim")}


def health_text(h: BackupHealth) -> Text:
    """The pane's head: the newest complete backup, the last failure with its reason, and the warnings."""
    t = Text()
    if not h.known:
        t.append(f"backups unknown: {h.error}", style="yellow")
        return t
    nc = h.newest_complete
    if nc is not None:
        t.append("newest ", style="bold")
        t.append(f"{human_age(nc['age_s'])} old, {human_size(nc['size'])}, ")
        t.append(nc["state"], style=STATE_STYLE.get(nc["state"], ""))
    else:
        t.append("no complete backup", style="bold yellow")
    if h.in_progress:
        t.append(f"; {h.in_progress} in progress", style="yellow")
    if h.last_failure is not None:
        t.append("\nlast failed ", style="bold red")
        t.append(f"{human_age(h.last_failure['age_s'])} ago: ", style="red")
        t.append(h.last_failure["reason"])
    for w in h.warnings:
        if h.last_failure is not None and w.startswith("the last backup"):
            continue  # said above, with its reason
        t.append(f"\n! {w}", style="yellow")
    return t


def progress_text(what: str, p: Progress | None, notes: list[str], elapsed: float | None = None) -> Text:
    """The running job's line: bytes received, rate and seconds (before any report, or for a job that
    reports none such as verify: the ``elapsed`` seconds), then its latest notes."""
    t = Text(f"{what}: ", style="bold cyan")
    if p is None:
        t.append("running" + (f" {elapsed:.0f}s" if elapsed is not None else "..."))
    else:
        rate = f" {human_size(p.rate)}/s" if p.rate > 0 else ""  # 0 until two reports saw bytes
        t.append(f"{human_size(p.bytes)}{rate} {p.seconds:.0f}s")
        if p.state != "receiving":
            t.append(f" {p.state}", style="dim")
    for n in notes[-2:]:
        t.append(f"\n  {n}", style="dim")
    return t


class BackupsPane(Vertical):
    """The Backups pane (a catalog table between the health head and the job line)."""

    DEFAULT_CSS = """
    BackupsPane { width: 1fr; border-top: solid $primary; padding: 0 1; }
    BackupsPane #mon-backup-job { height: auto; max-height: 3; display: none; }
    BackupsPane #mon-backup-head { height: auto; max-height: 4; }
    BackupsPane #mon-backup-table { height: 1fr; }
    """

    def compose(self) -> ComposeResult:  # the job first: on a small screen the table is what gets cut
        yield Static("", id="mon-backup-job")
        yield Static(Text("reading the catalog...", style="dim"), id="mon-backup-head")
        yield DataTable(id="mon-backup-table", cursor_type="none", show_cursor=False, cell_padding=1)

    def on_mount(self) -> None:
        self.border_title = "backups (z zoom)"
        table = self.query_one("#mon-backup-table", DataTable)
        for key, header, width in COLUMNS:
            table.add_column(header, key=key, width=width)

    def show_entries(self, entries: list[Entry], now: float, max_age_s: float = DEFAULT_MAX_AGE_S) -> BackupHealth:
        """Draw the catalog (``entries`` in any order; newest first on screen) and its health (a newest
        complete backup older than ``max_age_s`` seconds is a warning); returns it."""
        health = summarize(entries, now, max_age_s)
        table = self.query_one("#mon-backup-table", DataTable)
        table.clear()
        for e in sorted(entries, key=lambda e: (e.time, e.id), reverse=True):
            cells = entry_cells(e)
            table.add_row(*(cells[k] for k, _, _ in COLUMNS), key=e.id)
        self.query_one("#mon-backup-head", Static).update(health_text(health))
        return health

    def show_unknown(self, why: str) -> None:
        """The catalog could not be read: say why (the last rows stay, they are what was last seen)."""
        self.query_one("#mon-backup-head", Static).update(Text(f"backups unknown: {why}", style="yellow"))

    def show_note(self, text: str) -> None:
        """A plain word in the head instead of the catalog (e.g. a replay, which reads no catalog)."""
        self.query_one("#mon-backup-head", Static).update(Text(text, style="dim"))

    def show_job(self, text: Text | str) -> None:
        """The running (or last) take/verify; "" hides the line."""
        job = self.query_one("#mon-backup-job", Static)
        job.update(text)
        job.display = bool(str(text))
