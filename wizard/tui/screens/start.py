"""The first screen: a new cluster, a saved profile to continue with, or a cluster to monitor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Header, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker

from wizard.tui.screens.base import WizardScreen, describe_error, show_error
from wizard.tui.widgets.footer import CoalescingFooter

INTRO = (
    "Stand up a highly available Crafter Studio cluster: two Studio nodes with MariaDB Galera and an "
    "Arbiter (garbd), coordinated through Redis, with an authoring DNS name that follows the primary."
)


class StartScreen(WizardScreen):
    BINDINGS = [
        Binding("n", "new", "New cluster"),
        Binding("l", "load", "Load profile"),
        Binding("m", "monitor", "Monitor"),
        Binding("o", "open_path", "Open file"),
        Binding("q", "app.quit", "Quit", show=False),
        Binding("ctrl+p", "app.command_palette", "Commands"),
    ]

    def __init__(self, preload: Path | None = None) -> None:
        super().__init__()
        self.preload = preload
        self.profiles: list[Path] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="start"):
            yield Static(INTRO, id="intro")
            # above the buttons: at 80x24 a line below them is off-screen, and `l` or `m` seemed to do nothing
            message = Static("", id="start-message", markup=False)
            message.display = False
            yield message
            with Horizontal(id="start-body"):
                with Vertical(id="start-actions"):
                    yield Button("New cluster", id="new", variant="primary")
                    yield Button("Load profile", id="load")
                    yield Button("Monitor cluster", id="monitor")
                    yield Button("Open file...", id="open_path")
                with Vertical(id="start-profiles"):
                    yield Label(f"Saved profiles in {self.session.profiles_dir}/", classes="section-title")
                    yield OptionList(id="profile-list")
        yield CoalescingFooter(compact=True)  # every key fits in 80 columns

    def on_mount(self) -> None:
        self.sub_title = "start"
        # the profiles are listed by on_screen_resume, which Textual also sends when the screen first shows
        if self.preload is not None:
            self.load_profile(self.preload)

    def on_screen_resume(self) -> None:
        """Back on the start screen (after a save, say): list the profiles again."""
        self.list_profiles()

    # -- profiles -----------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="profiles", exit_on_error=False)
    def list_profiles(self) -> None:
        paths = self.session.list_profiles()
        # a profile saved or opened elsewhere (outside the profiles dir) is listed too
        listed = {p.resolve() for p in paths}
        for extra in (self.session.saved_path, self.session.profile_path):
            if extra is not None and Path(extra).is_file() and Path(extra).resolve() not in listed:
                paths.append(Path(extra))
                listed.add(Path(extra).resolve())
        self.ui(self.show_profiles, paths)

    def show_profiles(self, paths: list[Path]) -> None:
        """Fill the list of saved profiles (public: tests feed it directly)."""
        previous = self.selected_profile()
        self.profiles = list(paths)
        options = self.query_one("#profile-list", OptionList)
        options.clear_options()
        if paths:
            inside = self.session.profiles_dir.resolve()
            options.add_options([Option(p.name if p.resolve().parent == inside else str(p), id=str(p))
                                 for p in paths])
            options.highlighted = paths.index(previous) if previous in paths else 0
        else:
            options.add_option(Option("none yet: n starts a new cluster, o opens a file", disabled=True))
        # no refresh_bindings() here or on a highlight: no key of this screen depends on the list (no
        # check_action; load and monitor say why when nothing is picked), and each refresh rebuilt the footer

    def selected_profile(self) -> Path | None:
        options = self.query_one("#profile-list", OptionList)
        if options.highlighted is None or not self.profiles:
            return None
        option = options.get_option_at_index(options.highlighted)
        return Path(option.id) if option.id else None

    @on(OptionList.OptionSelected, "#profile-list")
    def _selected(self) -> None:
        self.action_load()

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        {"new": self.action_new, "load": self.action_load, "monitor": self.action_monitor,
         "open_path": self.action_open_path}[event.button.id or "new"]()

    # -- actions ------------------------------------------------------------------------------------
    def action_new(self) -> None:
        from wizard.tui.form import new_cluster_data
        from wizard.tui.screens.nodes import NodesScreen

        self.session.profile_path = None  # a new cluster is not the file loaded before: saving writes it whole
        self.app.push_screen(NodesScreen(new_cluster_data(), source="new cluster"))

    def action_load(self) -> None:
        path = self.selected_profile()
        if path is None:
            self.message(f"No saved profile in {self.session.profiles_dir.resolve()}/ to load: o opens a profile "
                         "file by path, n starts a new cluster.")
            return
        self.load_profile(path)

    def action_open_path(self) -> None:
        from wizard.tui.screens.open_path import OpenPathScreen

        def opened(path: Path | None) -> None:
            if path is not None:
                self.load_profile(path)

        self.app.push_screen(OpenPathScreen(), opened)

    def action_monitor(self) -> None:
        from wizard.tui.screens.monitor import MonitorScreen

        path = self.selected_profile()
        if path is None:
            self.message("No saved profile to monitor: o opens a profile file by path, n starts a new cluster.")
            return
        self.app.push_screen(MonitorScreen(profile_path=path, interval=self.session.interval))

    @work(thread=True, group="load", exit_on_error=False)
    def load_profile(self, path: Path) -> None:
        data = self.session.read_profile_data(path)
        self.ui(self.open_form, data, path)

    def open_form(self, data: dict[str, Any], path: Path) -> None:
        from wizard.tui.screens.nodes import NodesScreen

        self.session.profile_path = path
        self.message("")
        self.app.push_screen(NodesScreen(data, source=str(path)))
        self.tell_last_run(data)

    @work(thread=True, group="last-run", exit_on_error=False)
    def tell_last_run(self, data: dict[str, Any]) -> None:
        """An interrupted, failed or still running last run of this cluster is told when its profile opens
        (issue 15); the form does not wait for it."""
        from wizard.run_history import unfinished_story

        story = unfinished_story(data)
        if story:
            self.app.call_from_thread(self.app.notify, "\n".join(story), title="The last run did not finish",
                                      severity="warning", timeout=60)

    def message(self, text: str) -> None:
        line = self.query_one("#start-message", Static)
        line.update(text)
        line.display = bool(text)  # no empty line above the buttons

    def worker_failed(self, worker: Worker[Any], error: BaseException) -> None:
        self.message(describe_error(error))
        show_error(self, worker, error)
