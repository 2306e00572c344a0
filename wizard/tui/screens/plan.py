"""Plan: per node, the files that will change (with their diff) and the bootstrap steps.  Changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Header, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from wizard.tui.screens.base import WizardScreen
from wizard.tui.widgets.diffview import DiffView

if TYPE_CHECKING:
    from wizard.apply import FileChange

ACTION_STYLE = {"create": "green", "update": "yellow", "unchanged": "dim"}
ACTION_WORD = {"create": "create", "update": "update", "unchanged": "same"}


class PlanScreen(WizardScreen):
    BINDINGS = [
        Binding("d", "tab('files')", "Diffs"),
        Binding("b", "tab('steps')", "Steps"),
        Binding("ctrl+n", "next", "Apply"),
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "back", "Back"),
        Binding("ctrl+p", "app.command_palette", "Commands"),
    ]

    def __init__(self, *, autorun: bool = True) -> None:
        super().__init__()
        self.autorun = autorun
        self.changes: list[FileChange] = []
        self.ready = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Reading the current files on every node...", id="plan-summary", markup=False)
        with TabbedContent(id="plan-tabs", initial="files"):
            with TabPane("Files and diffs", id="files"), Horizontal(id="plan-files-pane"):
                yield OptionList(id="plan-files")
                yield DiffView(id="plan-diff")
            with TabPane("Steps", id="steps"), VerticalScroll(id="plan-steps-scroll"):
                yield Static("", id="plan-steps")
        yield Footer(compact=True)  # every key fits in 80 columns

    def on_mount(self) -> None:
        self.sub_title = "plan (changes nothing)"
        if self.autorun:
            self.make_plan()

    @work(thread=True, exclusive=True, group="plan", exit_on_error=False)
    def make_plan(self) -> None:
        from wizard.apply import plan_files
        from wizard.pipeline import bootstrap_steps
        from wizard.render import authoring_record

        profile, secrets = self.session.profile, self.session.secrets
        assert profile is not None
        changes = plan_files(profile, secrets, self.session.remote())
        dns = f"{profile.dns.record_zone}: {authoring_record(profile)}"
        self.ui(self.show_plan, changes, bootstrap_steps(profile), dns)

    def show_plan(self, changes: list[FileChange], steps: list[str], dns_record: str = "") -> None:
        """Show the planned file changes and bootstrap steps (public: tests feed real core values)."""
        self.changes = list(changes)
        options = self.query_one("#plan-files", OptionList)
        options.clear_options()
        nodes = list(dict.fromkeys(c.node for c in changes))
        summary = []
        for node in nodes:
            mine = [(i, c) for i, c in enumerate(changes) if c.node == node]
            options.add_option(Option(Text(node, style="bold"), disabled=True))
            for i, c in mine:
                label = Text(no_wrap=True, overflow="ellipsis")
                label.append(f" {ACTION_WORD[c.action]:7}", style=ACTION_STYLE[c.action])
                label.append(str(c.file.path.name))
                options.add_option(Option(label, id=str(i)))
            counts = {a: sum(1 for _, c in mine if c.action == a) for a in ("create", "update", "unchanged")}
            summary.append(f"{node}: " + ", ".join(f"{n} {a}" for a, n in counts.items() if n))
        self.query_one("#plan-summary", Static).update("; ".join(summary) or "No files to write.")
        body = Text()
        for n, step in enumerate(steps, 1):
            body.append(f"{n:2}. ", style="bold")
            body.append(step + "\n")
        if dns_record:
            body.append("\nDNS record", style="bold")
            body.append(f" on the authoritative server, zone {dns_record}\n")
        self.query_one("#plan-steps", Static).update(body)
        first = next((i for i, o in enumerate(options.options) if not o.disabled), None)
        if first is not None:
            options.highlighted = first
        self.ready = True
        self.refresh_bindings()

    @on(OptionList.OptionHighlighted, "#plan-files")
    def _file_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is None:
            return
        c = self.changes[int(event.option.id)]
        title = f"{c.node}:{c.file.path}  ({c.action}, {c.file.owner}:{c.file.group} {c.file.mode:o})"
        if c.action == "unchanged":
            note = "the node already has this file: nothing to write"
        elif c.meta_only:
            note = "the content is the same: only owner or mode will be set"
        else:
            note = "restarts " + ", ".join(c.file.restart) if c.file.restart else ""
        self.query_one("#plan-diff", DiffView).show(title, "" if c.meta_only else c.diff, note)

    def action_tab(self, tab: str) -> None:
        self.query_one("#plan-tabs", TabbedContent).active = tab

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next":
            return True if self.ready else None
        return True

    def why_disabled(self, action: str) -> str | None:
        if action == "next":
            return "The plan is still being made; Apply is ready when it shows."
        return None

    def action_next(self) -> None:
        """Apply; a profile not saved yet gets the save dialog first (save, apply without saving, cancel)."""
        if not self.ready:
            self.notify("The plan is still being made; Apply is ready when it shows.", severity="warning")
            return
        from wizard.tui.screens.apply import ApplyScreen

        if self.session.saved_path is not None:
            self.app.push_screen(ApplyScreen())
            return
        from wizard.tui.screens.save import SaveResult, SaveScreen

        def after(result: SaveResult) -> None:
            if result is not None:
                self.app.push_screen(ApplyScreen())

        self.app.push_screen(SaveScreen(before_apply=True), after)

