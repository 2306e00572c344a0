"""The app factory and entry point: ``studio-cluster`` (wizard) and ``studio-cluster monitor PROFILE``.

`create_app` builds the app for both `run_app` and the tests (Posting's pattern).  Only light modules
are imported here; the core's heavy ones (checks, remote, status, pipeline) load inside workers, so the
first screen paints at once.
"""

from __future__ import annotations

from pathlib import Path

from textual.binding import Binding
from textual.command import Provider
from textual.screen import Screen

from wizard.assets_files import asset_file
from wizard.tui.session import Session
from wizard.tui.typeahead import TypeAhead

STYLES = asset_file("styles", "wizard.tcss")
"""The wizard's stylesheet: package data wizard.assets (``assets/styles`` in the source tree)."""


def cluster_commands() -> type[Provider]:
    """The palette's cluster actions, imported when the palette first opens (Textual takes a callable in
    COMMANDS): their module brings the text view (TextArea) that the first screen does not need."""
    from wizard.tui.commands import ClusterCommands

    return ClusterCommands


class WizardApp(TypeAhead):
    """Keys act in the order typed, and wait for a screen's first field (wizard/tui/typeahead.py)."""

    CSS_PATH = str(STYLES)
    TITLE = "studio-cluster"
    # ctrl+p: the cluster actions (recover, status, backup list, run log) beside Textual's own commands.
    # Textual's footer key for it stays off (ENABLE_COMMAND_PALETTE): the wizard's screens show their own
    # "Commands" key, and the monitor's footer stays as its owner drew it.
    ENABLE_COMMAND_PALETTE = False
    COMMANDS = TypeAhead.COMMANDS | {cluster_commands}
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True),
                Binding("ctrl+p", "command_palette", "Commands", show=False)]

    def __init__(self, profile_path: Path | None = None, monitor: bool = False, interval: float = 2.0, *,
                 profiles_dir: Path | None = None, runs_dir: Path | None = None) -> None:
        super().__init__()
        self.session = Session(profile_path=profile_path, profiles_dir=profiles_dir, runs_dir=runs_dir,
                               interval=interval)
        self.use_command_palette = True
        self.monitor_mode = monitor
        self.profile_path = profile_path

    def on_mount(self) -> None:
        # Leave when the terminal goes away, SIGHUP or not (Textual's driver would spin on a dead stdin).
        if not self.is_headless:
            from wizard.tui.terminal_watch import TerminalWatch

            watch = TerminalWatch.for_stdin(self)
            if watch is not None:
                watch.start()

    async def action_quit(self) -> None:
        """Quit; from a form with edits, only after the person says to drop them.  Once the person has moved on
        (checks, plan, apply, monitor), the form's values are the session's and quitting does not ask."""
        unsaved = getattr(self.screen, "unsaved_edits", None)
        edits = [text] if callable(unsaved) and (text := unsaved()) else []
        if not edits:
            self.exit()
            return
        from wizard.tui.screens.discard import DiscardEditsScreen

        def answered(drop: bool | None) -> None:
            if drop:
                self.exit()

        self.push_screen(DiscardEditsScreen(" and ".join(edits), "quit"), answered)

    def get_default_screen(self) -> Screen[object]:
        if self.monitor_mode and self.profile_path is not None:
            from wizard.tui.screens.monitor import MonitorScreen

            return MonitorScreen(profile_path=self.profile_path, interval=self.session.interval)
        from wizard.tui.screens.start import StartScreen

        return StartScreen(preload=self.profile_path)


def create_app(profile_path: Path | None = None, monitor: bool = False, interval: float = 2.0, *,
               profiles_dir: Path | None = None, runs_dir: Path | None = None) -> WizardApp:
    """The app, ready to run: the wizard (optionally with a profile preloaded) or the monitor."""
    return WizardApp(profile_path, monitor, interval, profiles_dir=profiles_dir, runs_dir=runs_dir)


def run_app(profile_path: Path | None, monitor: bool = False, interval: float = 2.0) -> int:
    """Run the TUI until the person quits; returns the exit code."""
    app = create_app(profile_path, monitor, interval)
    try:
        app.run()
    finally:
        app.session.close()
    return app.return_code or 0
