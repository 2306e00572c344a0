"""Apply and bootstrap: the pipeline's progress, per node, with the remote commands in a log pane.

The pipeline runs in a thread worker and reports through its Listener (steps, files, coordination
events) as typed messages posted without waiting for the UI; the run log's listener feeds the command log,
its floods coalesced (one :class:`CommandsRan` per UI turn, however many commands ran).  Cancel is
cooperative: the pipeline stops at the next step boundary, and agents already started on the nodes finish on
their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, ProgressBar, RichLog, Static

from wizard.secrets import REDACTOR
from wizard.tui.screens.base import WizardScreen, describe_error
from wizard.tui.widgets.badges import STEP_STYLE, clock

if TYPE_CHECKING:
    from wizard.apply import FileChange
    from wizard.coordinator import Event
    from wizard.pipeline import Listener
    from wizard.profile import Profile

STEPS = ("check", "apply", "bootstrap", "verify")
WEIGHT = {"check": 10, "apply": 20, "bootstrap": 60, "verify": 10}
# how far an agent is, from its events: (step, state) -> fraction of its own work
NODE_PHASE = {
    ("agent", "started"): 0.05, ("register", "running"): 0.1, ("register", "done"): 0.2,
    ("elect", "running"): 0.3, ("elect", "waiting"): 0.3, ("elect", "done"): 0.4,
    ("bootstrap", "running"): 0.6, ("bootstrap", "skipped"): 0.5, ("bootstrap", "done"): 0.85,
    ("join", "waiting"): 0.5, ("join", "running"): 0.7, ("join", "done"): 0.85,
    ("complete", "waiting"): 0.9, ("complete", "done"): 1.0,
    ("garbd", "waiting"): 0.5, ("garbd", "running"): 0.7, ("garbd", "done"): 1.0, ("done", "done"): 1.0,
}


class Cancelled(Exception):
    """Raised from the listener at the next step boundary after the person cancelled."""


class PipelineStep(Message):
    """The pipeline entered or left a step (check, apply, bootstrap, verify)."""

    def __init__(self, step: str, state: str, message: str) -> None:
        super().__init__()
        self.step, self.state, self.text = step, state, message


class AgentEvent(Message):
    """A node agent's event, from the coordination store's stream."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class FileWritten(Message):
    """Apply wrote one file on one node."""

    def __init__(self, change: FileChange) -> None:
        super().__init__()
        self.change = change


class CommandsRan(Message):
    """Remote commands ran (the run log's entries).  They come in floods (several per second per node), so the
    listener buffers them and posts one of these only when none is pending; the handler drains the buffer."""


class CommandBuffer:
    """Run-log entries waiting for the UI; :meth:`add` says whether a :class:`CommandsRan` must be posted.
    Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._posted = False

    def add(self, entry: dict[str, Any]) -> bool:
        with self._lock:
            self._entries.append(entry)
            if self._posted:
                return False
            self._posted = True
            return True

    def drain(self) -> list[dict[str, Any]]:
        with self._lock:
            out, self._entries, self._posted = self._entries, [], False
            return out


class ApplyScreen(WizardScreen):
    BINDINGS = [
        Binding("c", "cancel", "Cancel"),
        Binding("m", "monitor", "Monitor"),
        Binding("escape", "back", "Back"),
        Binding("ctrl+p", "app.command_palette", "Commands"),
    ]

    def __init__(self, *, profile: Profile | None = None, autorun: bool = True) -> None:
        super().__init__()
        self.profile = profile
        self.autorun = autorun
        self.step_state: dict[str, str] = dict.fromkeys(STEPS, "pending")
        self.node_progress: dict[str, float] = {}
        self.current: str = ""
        self.cancel_requested = threading.Event()
        self.outcome: str | None = None  # None while running; "done" | "failed" | "cancelled"
        self.files_written: list[str] = []
        self.command_buffer = CommandBuffer()

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="apply-top"):
            yield Static("", id="apply-steps")
            yield ProgressBar(total=100, show_eta=False, id="apply-progress")
        yield DataTable(id="apply-nodes", cursor_type="none", show_cursor=False)
        yield RichLog(id="apply-log", wrap=True, markup=False, max_lines=5000, min_width=20)
        yield Static("", id="apply-result")
        yield Footer(compact=True)  # every key fits in 80 columns

    def on_mount(self) -> None:
        self.sub_title = "apply and bootstrap"
        profile = self.profile or self.session.profile
        assert profile is not None
        table = self.query_one("#apply-nodes", DataTable)
        table.add_column("node", key="node", width=9)
        table.add_column("role", key="role", width=7)
        table.add_column("step", key="step", width=10)
        table.add_column("state", key="state", width=8)
        # a fixed width: a column that grows with update_width is not re-laid out while the table is on screen
        table.add_column("last message", key="message", width=max(24, self.app.size.width - 46))
        for node in profile.nodes:
            table.add_row(node.name, node.role.value, "-", Text("pending", style="dim"), "", key=node.name)
            self.node_progress[node.name] = 0.0
        self.query_one("#apply-result", Static).display = False
        self._draw_steps()
        if self.autorun:
            self.run_pipeline()

    # -- the worker ---------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="pipeline", exit_on_error=False)
    def run_pipeline(self) -> None:
        from wizard.pipeline import PipelineError, replay

        session = self.session
        profile, secrets = session.profile, session.secrets
        assert profile is not None and secrets is not None
        listener, on_command = self.make_listener()
        runlog = None
        try:
            # saved only where the person chose (the save dialog before apply); re-saved there, so the file
            # holds what runs (e.g. a service manager the checks found)
            path = session.save_profile(session.saved_path) if session.saved_path is not None else None
            self.ui(self.log_line, f"profile saved to {path} (secrets as references)" if path else
                    "profile not saved (ctrl+s on the plan saves it; status and recover need a file)", "dim")
            runlog = session.runlog()
            remote = session.remote()
            runlog.listeners.append(on_command)
            # the checks screen ran every check moments ago; the pipeline goes straight to apply
            result = replay(profile, secrets, remote=remote, listener=listener, skip_checks=True, runlog=runlog)
        except Cancelled:
            self.ui(self.finished, "cancelled", self._cancel_report())
        except PipelineError as exc:
            self.ui(self.finished, "failed", f"Failed at {exc.step}: {describe_error(exc)}", self._detail(exc))
        except Exception as exc:
            self.ui(self.finished, "failed", f"Stopped: {describe_error(exc)}", self._detail(exc))
        else:
            reason = result.status.reason if result.status else ""
            saved = f"Profile saved to {path}." if path else "The profile is not saved."
            self.ui(self.finished, "done", f"Cluster {profile.cluster_name} is healthy: {reason}. {saved}")
        finally:
            if runlog is not None and on_command in runlog.listeners:
                runlog.listeners.remove(on_command)

    def _detail(self, exc: BaseException) -> str:
        """The whole error for the error view, with where the run log is."""
        from wizard.tui.screens.error import error_text

        runlog = self.session._runlog
        where = f"\n\nrun log: {runlog.path}" if runlog is not None and runlog.path is not None else ""
        return error_text(exc) + where + f"\n\n{self._status_hint()}"

    def make_listener(self) -> tuple[Listener, Callable[[dict[str, Any]], None]]:
        """The pipeline's Listener and the run log's listener, both safe to call from any thread.

        After cancel, updates are dropped (we stop following) and the next step boundary raises
        :class:`Cancelled`, so the pipeline ends there instead of starting another step.
        """
        from wizard.pipeline import Listener

        # Typed messages, posted without waiting for the UI (post_message is thread-safe): the pipeline's
        # thread never blocks on the screen; command floods coalesce into one message per UI turn.
        def on_command(entry: dict[str, Any]) -> None:
            if not self.cancel_requested.is_set() and self.command_buffer.add(entry):
                self.post_message(CommandsRan())

        def on_step(step: str, state: str, message: str) -> None:
            if self.cancel_requested.is_set():
                raise Cancelled(step)
            self.post_message(PipelineStep(step, state, message))

        def on_event(event: Event) -> None:
            if not self.cancel_requested.is_set():
                self.post_message(AgentEvent(event))

        def on_file(change: FileChange) -> None:
            self.files_written.append(f"{change.node}:{change.file.path}")
            if not self.cancel_requested.is_set():
                self.post_message(FileWritten(change))

        return Listener(on_step=on_step, on_event=on_event, on_file=on_file), on_command

    def _cancel_report(self) -> str:
        done = [s for s in STEPS if self.step_state[s] in ("done", "skip")]
        written = len(self.files_written)
        parts = [f"Cancelled after {done[-1] if done else 'nothing'}."]
        if written:
            parts.append(f"{written} file(s) were written (the old ones are backed up under "
                         "/var/backups/studio-cluster/ on each node).")
        if self.step_state["bootstrap"] in ("start", "running", "done"):
            parts.append("The node agents finished on their own.")
        parts.append(self._status_hint())
        return " ".join(parts)

    def _status_hint(self) -> str:
        path = self.session.saved_path or "PROFILE"
        return f"`studio-cluster status {path}` shows where the cluster stands."

    # -- progress in: the messages, then the methods they call (public: tests feed them) --------------
    def on_pipeline_step(self, message: PipelineStep) -> None:
        self.pipeline_step(message.step, message.state, message.text)

    def on_agent_event(self, message: AgentEvent) -> None:
        self.pipeline_event(message.event)

    def on_file_written(self, message: FileWritten) -> None:
        self.pipeline_file(message.change)

    def on_commands_ran(self, _message: CommandsRan) -> None:
        for entry in self.command_buffer.drain():
            self.pipeline_command(entry)

    def pipeline_step(self, step: str, state: str, message: str = "") -> None:
        if step in self.step_state:
            self.step_state[step] = state if state != "running" else "start"
        self.current = step
        self.log_line(f"{step} {state}: {message}", STEP_STYLE.get(state, "bold"))
        if step == "bootstrap" and state == "start":
            for name in self.node_progress:
                self._node_cell(name, "state", Text("starting", style="cyan"))
        self._draw_steps()

    def pipeline_event(self, event: Event) -> None:
        style = STEP_STYLE.get(event.state, "cyan")
        message = REDACTOR(event.message)
        self.log_line(f"{clock(event.ts)} {event.node:9} {event.step}:{event.state} {message}", style)
        if event.node in self.node_progress:
            self._node_cell(event.node, "step", event.step)
            self._node_cell(event.node, "state", Text(event.state, style=style))
            self._node_cell(event.node, "message", message)
            phase = NODE_PHASE.get((event.step, event.state))
            if phase is not None:
                self.node_progress[event.node] = max(self.node_progress[event.node], phase)
        self._draw_steps()

    def pipeline_file(self, change: FileChange) -> None:
        self.log_line(f"wrote {change.node}:{change.file.path}", "green")
        if change.node in self.node_progress:
            self._node_cell(change.node, "step", "apply")
            self._node_cell(change.node, "message", f"wrote {change.file.path.name}")

    def pipeline_command(self, entry: dict[str, Any]) -> None:
        command = str(entry.get("command", "")).strip().splitlines() or [""]
        first = command[0] if len(command[0]) <= 140 else command[0][:139] + "..."
        if len(command) > 1:
            first += f" ... (+{len(command) - 1} lines)"
        code = entry.get("exit_code")
        ts = entry.get("ts")
        stamp = clock(float(ts)) + " " if isinstance(ts, int | float) else ""
        self.log_line(f"{stamp}{entry.get('node', ''):9} $ {first}  -> {code} ({entry.get('duration', 0)}s)",
                      "dim" if code == 0 else "red")

    def finished(self, outcome: str, message: str, detail: str = "") -> None:
        """The run ended: show the outcome; a failure also opens the whole message in a copyable view."""
        self.outcome = outcome
        if outcome == "done":
            self.step_state.update({s: self.step_state[s] if self.step_state[s] == "skip" else "done"
                                    for s in STEPS})
        result = self.query_one("#apply-result", Static)
        result.update(message)
        result.display = True
        result.set_class(outcome != "done", "bad")
        result.set_class(outcome == "done", "good")
        self._draw_steps()
        self.refresh_bindings()
        if outcome == "done" and self.autorun:
            self.notify("Opening the monitor.")
            self.action_monitor()
        if outcome == "failed" and detail:
            from wizard.tui.screens.error import TextViewScreen

            self.app.push_screen(TextViewScreen("Apply and bootstrap failed", detail, classes="error"))

    # -- view ---------------------------------------------------------------------------------------
    def log_line(self, text: str, style: str = "") -> None:
        self.query_one("#apply-log", RichLog).write(Text(text, style=style))

    def _node_cell(self, node: str, column: str, value: object) -> None:
        self.query_one("#apply-nodes", DataTable).update_cell(node, column, value)

    def progress(self) -> float:
        total = 0.0
        for step in STEPS:
            state = self.step_state[step]
            if state in ("done", "skip"):
                total += WEIGHT[step]
            elif step == "bootstrap" and state == "start" and self.node_progress:
                share = sum(self.node_progress.values()) / len(self.node_progress)
                total += WEIGHT[step] * share
            elif state == "start":
                total += WEIGHT[step] * 0.1
        return round(total, 1)

    def _draw_steps(self) -> None:
        text = Text()
        marks = {"done": "ok", "skip": "skipped", "fail": "FAILED", "start": "...", "pending": "-"}
        for step in STEPS:
            state = self.step_state[step]
            text.append(f"{step} ", style="bold" if step == self.current else "")
            text.append(marks.get(state, state), style=STEP_STYLE.get(state, ""))
            text.append("  ")
        if self.cancel_requested.is_set() and self.outcome is None:
            text.append("cancelling", style="bold yellow")
        self.query_one("#apply-steps", Static).update(text)
        self.query_one("#apply-progress", ProgressBar).update(progress=self.progress())

    # -- actions ------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        running = self.outcome is None and not self.cancel_requested.is_set()
        if action == "cancel":
            return True if running else None
        if action == "monitor":
            return None if running else True
        if action == "back":
            return None if running else True
        return True

    def why_disabled(self, action: str) -> str | None:
        if action == "cancel":
            return "Nothing to cancel: the run has ended." if self.outcome is not None else "Already cancelling."
        if action in ("monitor", "back"):
            return "The run is still going: wait for it to end, or cancel it (c)."
        return None

    def action_cancel(self) -> None:
        if self.outcome is not None or self.cancel_requested.is_set():
            return
        self.cancel_requested.set()
        if self.step_state["bootstrap"] in ("start", "running"):
            msg = ("Stopped following the bootstrap.  Agents cannot be stopped mid-flight: they finish on their "
                   f"own on the nodes.  {self._status_hint()}")
        else:
            msg = (f"Cancelling: the pipeline stops when the current step ({self.current or 'start'}) ends; "
                   "files already written stay (backed up under /var/backups/studio-cluster/).")
        self.log_line(msg, "bold yellow")
        result = self.query_one("#apply-result", Static)
        result.update(msg)
        result.display = True
        self._draw_steps()
        self.refresh_bindings()

    def action_monitor(self) -> None:
        from wizard.tui.screens.monitor import MonitorScreen

        if self.outcome is not None or self.cancel_requested.is_set():
            self.app.push_screen(MonitorScreen(interval=self.session.interval))

    def action_back(self) -> None:
        if self.outcome is not None or self.cancel_requested.is_set():
            self.app.pop_screen()
