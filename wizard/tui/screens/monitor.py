"""The monitor: a row per node, a cluster summary with the verdict, history sparklines and an event log.

``--record FILE`` keeps every poll and event in a recording (:mod:`wizard.monitor_record`); ``--replay
FILE`` draws a recording again through this same screen, a poll at a time (``r`` steps, ``p`` pauses,
``+``/``-`` change the pace), instead of polling the cluster.

Polling follows Dolphie's loop: a thread worker collects one :class:`wizard.status.ClusterStatus`
(every node in parallel, with timeouts), the screen redraws on success, then a timer re-arms the next
poll.  A dead or partitioned node costs a poll its timeout, never the screen.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Label, RichLog, Sparkline, Static
from textual.worker import Worker

from wizard.component import ComponentView, component_of
from wizard.rates import NodeFlow, human_rate
from wizard.tui.history import History, HistoryEvent
from wizard.tui.screens.base import WizardScreen, describe_error
from wizard.tui.widgets.backups_pane import BackupsPane, JobNote, JobProgress, Latest, progress_text
from wizard.tui.widgets.badges import LEVEL_STYLE, VERDICT_STYLE, clock

if TYPE_CHECKING:
    from collections.abc import Callable

    from wizard.backups.catalog import Entry
    from wizard.backups.take import Progress
    from wizard.monitor_record import Frame, Recorder
    from wizard.status import ClusterStatus, NodeStatus
    from wizard.tui.app import WizardApp
    from wizard.tui.form import SecretSpec

COLUMNS = (  # key, two-line header, width: 78 columns in all, so a row per node fits an 80-column terminal
    ("node", "node\naddress", 12), ("state", "state\nstatus", 12), ("size", "size", 4),
    ("ready", "ready\nconn", 5), ("seqno", "last\nseqno", 7), ("flow", "fc\ncert", 5),
    ("queue", "sendq\nrecvq", 5), ("bytes", "repl\nB/s", 5), ("heartbeat", "heart\nbeat", 5),
)
INTERVALS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
BACKUP_INTERVAL_S = 30.0  # the backup catalog changes slowly: read it far less often than the cluster
DASH = Text("-", style="dim")


def _yes(value: str) -> Text:
    if value == "ON":
        return Text("yes", style="green")
    if value == "OFF":
        return Text("no", style="bold red")
    return DASH.copy()


def two(top: Text | str, bottom: Text | str) -> Text:
    """Two lines in one cell."""
    out = Text(top) if isinstance(top, str) else top.copy()
    out.append("\n")
    out.append_text(Text(bottom) if isinstance(bottom, str) else bottom)
    return out


def _count(value: int | None, warn_from: int = 1) -> Text:
    if value is None:
        return DASH.copy()
    return Text(str(value), style="yellow" if value >= warn_from else "")


def flow_cells(flow: NodeFlow | None) -> dict[str, object]:
    """The replication columns of one data node: flow control paused in the last interval over
    certification failures (red when new ones came), send over receive queue, bytes/s."""
    if flow is None:
        return {"flow": DASH.copy(), "queue": DASH.copy(), "bytes": DASH.copy()}
    fc = DASH.copy() if flow.paused is None else Text(
        f"{flow.paused * 100:.0f}%", style="bold red" if flow.paused >= 0.5 else ("yellow" if flow.paused > 0 else ""))
    cert = DASH.copy() if flow.cert_failures is None else Text(
        str(flow.cert_failures), style="bold red" if flow.new_cert_failures else "")
    return {"flow": two(fc, cert), "queue": two(_count(flow.send_queue), _count(flow.recv_queue)),
            "bytes": Text(human_rate(flow.bytes_per_s), style="dim" if flow.bytes_per_s is None else "")}


def node_cells(ns: NodeStatus, status: ClusterStatus, flow: NodeFlow | None = None,
               component: ComponentView | None = None) -> dict[str, object]:
    """The two-line row of one node, by column key (``component``: the Primary Component by identity,
    computed from ``status`` when not given)."""
    age = ns.heartbeat_age
    hb = DASH.copy() if age is None else Text(
        f"{age:.1f}s" if age < 100 else f"{age:.0f}s", style="bold red" if age > 15 else "")
    cells: dict[str, object] = {"node": two(Text(ns.name, style="bold"), Text(ns.address, style="dim")),
                                "heartbeat": hb}
    blank = {"size": DASH.copy(), "ready": DASH.copy(), "seqno": DASH.copy(), "flow": DASH.copy(),
             "queue": DASH.copy(), "bytes": DASH.copy()}
    if not ns.reachable:
        cells.update(blank, state=two(Text("unreachable", style="bold red"), DASH.copy()))
        return cells
    if ns.role != "studio":  # the Arbiter: garbd is a voting member of the component, with no data
        member = (component or component_of(status)).garbd
        if member:
            state = Text("member", style="green")
        elif member is None and ns.process_running:
            state = Text("running?", style="yellow")
        else:
            state = Text("running" if ns.process_running else "garbd down",
                         style="yellow" if ns.process_running else "bold red")
        cells.update(blank, state=two(state, Text("Primary", style="green") if member else DASH.copy()))
        if member:
            cells["ready"] = two(DASH.copy(), Text("yes", style="green"))
        return cells
    if not ns.process_running or not ns.wsrep:
        word = "stopped" if not ns.process_running else "no answer"
        cells.update(blank, state=two(Text(word, style="bold red"), DASH.copy()))
        return cells
    w = ns.wsrep
    primary = ns.cluster_status == "Primary"
    cells.update(
        state=two(Text(ns.state or "?", style="green" if ns.state == "Synced" else "yellow"),
                  Text(ns.cluster_status or "?", style="green" if primary else "bold red")),
        size=str(ns.size),
        ready=two(_yes(w.get("wsrep_ready", "")), _yes(w.get("wsrep_connected", ""))),
        seqno=str(ns.last_committed) if ns.last_committed >= 0 else DASH.copy(),
        **flow_cells(flow))
    return cells


class MonitorScreen(WizardScreen):
    BINDINGS = [
        Binding("r", "refresh_now", "Refresh"),
        Binding("p", "pause", "Pause"),
        Binding("plus,equals_sign", "faster", "Faster", key_display="+"),
        Binding("minus", "slower", "Slower", key_display="-"),
        Binding("b", "take_backup", "Backup"),
        Binding("v", "verify_backup", "Verify"),
        Binding("z", "zoom_backups", "Zoom backups", show=False),
        Binding("escape", "back", "Back"),
        Binding("q", "app.quit", "Quit", show=False),
    ]

    def __init__(self, *, profile_path: Path | None = None, interval: float = 2.0, poll: bool = True,
                 record: Path | None = None, replay: Path | None = None,
                 backup_source: Callable[[], list[Entry]] | None = None,
                 backup_interval: float = BACKUP_INTERVAL_S) -> None:
        """``record``: keep every poll and event in this recording; ``replay``: draw this recording
        instead of polling (``profile_path`` is then not needed).  ``backup_source``: what the Backups pane
        lists, read in a worker every ``backup_interval`` s (default: the catalog on the cluster's Arbiter,
        once polling starts)."""
        super().__init__()
        self.backup_source = backup_source
        self.backup_interval = backup_interval
        self._backup_timer: Timer | None = None
        self.job: str = ""  # "take" / "verify" while one runs
        self._job_notes: list[str] = []
        self._job_started = 0.0
        self._job_ticker: Timer | None = None
        self._progress: Latest[Progress] = Latest(lambda: self.post_message(JobProgress()))
        self.profile_path = profile_path
        self.interval = interval
        self.poll_enabled = poll
        self.record_path = record
        self.replay_path = replay
        self.recorder: Recorder | None = None
        self._record_failed = False
        self.frames: list[Frame] = []  # a replay's polls, and the next one to draw
        self.frame_index = 0
        self.paused = False
        self.history = History()
        self.last: ClusterStatus | None = None
        self.polling_since: float | None = None
        self._timer: Timer | None = None
        self._ticker: Timer | None = None
        self._poll_target: tuple[Any, Any] | None = None  # (profile, secrets) once known

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="mon-nodes", cursor_type="none", show_cursor=False, header_height=2)
        with Horizontal(id="mon-middle"):
            yield Static("Waiting for the first poll...", id="mon-summary")
            with Vertical(id="mon-history"):
                yield Label("commits/s", id="mon-commit-label")
                yield Sparkline([], id="mon-commits")
                yield Label("flow control paused", id="mon-fc-label")
                yield Sparkline([], id="mon-fc")
        with Horizontal(id="mon-lower"):  # Arbiter snapshot backups get their pane beside the events
            yield RichLog(id="mon-events", wrap=True, markup=False, max_lines=1000, min_width=20)  # wraps at 80 cols
            yield BackupsPane(id="mon-backups")
        yield Static("", id="mon-status")
        yield Footer(compact=True)  # every key fits in 80 columns

    def on_mount(self) -> None:
        self.sub_title = "monitor"
        table = self.query_one("#mon-nodes", DataTable)
        for key, header, width in COLUMNS:
            table.add_column(header, key=key, width=width)
        self.query_one("#mon-events", RichLog).border_title = "events"
        self.query_one("#mon-history", Vertical).border_title = "last minutes"
        self.query_one("#mon-summary", Static).border_title = "cluster"
        self._draw_status_line()
        if self.backup_source is not None:
            self.refresh_backups()
        elif self.replay_path is not None or not self.poll_enabled:
            self.query_one(BackupsPane).show_note("not read: no cluster is polled")
        if not self.poll_enabled:
            return
        if self.replay_path is not None:
            self.load_replay(self.replay_path)
            return
        if self.session.profile is not None and self.session.secrets is not None and self.profile_path is None:
            self._poll_target = (self.session.profile, self.session.secrets)
            self._begin()
        elif self.profile_path is not None:
            self.prepare(self.profile_path)
        else:
            self.show_error("no profile to monitor: run `studio-cluster monitor PROFILE`")

    # -- getting ready: profile and secrets ---------------------------------------------------------
    @work(thread=True, group="prepare", exit_on_error=False)
    def prepare(self, path: Path) -> None:
        from wizard.profile import load_profile
        from wizard.secrets import Secrets, resolve
        from wizard.tui.form import secret_ref

        profile = load_profile(path)
        data = profile.model_dump(mode="json")
        self.session.profile_path = path
        self.session.saved_path = path
        self.session.data = data
        self.session.profile = profile
        specs = self._secret_specs()
        if any(secret_ref(data, s) == "ask" for s in specs):
            self.ui(self._ask_secrets, data)
            return
        by_key = {s.key: resolve(secret_ref(data, s), s.dotted) for s in specs}
        self.session.secrets = Secrets(None, by_key["admin_password"], by_key["redis_password"])
        self._poll_target = (profile, self.session.secrets)
        self.ui(self._begin)

    # -- a replay: the polls of a recording instead of the cluster ----------------------------------
    @work(thread=True, group="prepare", exit_on_error=False)
    def load_replay(self, path: Path) -> None:
        from wizard.monitor_record import RecordingError, read_frames

        try:
            frames = list(read_frames(path))
        except RecordingError as exc:
            self.ui(self.show_error, str(exc))
            return
        self.ui(self._begin_replay, frames)

    def _begin_replay(self, frames: list[Frame]) -> None:
        self.frames = frames
        self.frame_index = 0
        first = next((f.status for f in frames if f.status is not None), None)
        self.sub_title = f"replay: {first.cluster if first else 'empty recording'}"
        if not frames:
            self.show_error(f"{self.replay_path}: the recording holds no poll")
            return
        self.step()

    def step(self) -> None:
        """Draw the replay's next poll and arm the timer for the one after."""
        if self.frame_index >= len(self.frames):
            self._draw_status_line()
            return
        frame = self.frames[self.frame_index]
        self.frame_index += 1
        self.draw_frame(frame)
        self._rearm()

    def draw_frame(self, frame: Frame) -> None:
        """Draw one recorded poll: its status with its recorded events, or a failed poll's events."""
        if frame.status is not None:
            self.show_status(frame.status, frame.events)
        else:
            for ev in frame.events or []:
                self.show_error(f"{clock(ev.ts)} {ev.text}")
            self._draw_status_line()

    @staticmethod
    def _secret_specs() -> list[SecretSpec]:
        from wizard.tui.form import SECRET_SPECS
        from wizard.tui.screens.credentials import MONITOR_KEYS

        return [s for s in SECRET_SPECS if s.key in MONITOR_KEYS]

    def _ask_secrets(self, data: dict[str, Any]) -> None:
        from wizard.tui.screens.credentials import MONITOR_KEYS, CredentialsScreen

        def resumed(ok: bool | None) -> None:
            if ok and self.session.profile is not None and self.session.secrets is not None:
                self._poll_target = (self.session.profile, self.session.secrets)
                self._begin()
            else:
                self.show_error("the monitor needs the Redis and DB admin credentials to poll; "
                                "set them as env:NAME or file:/path references in the profile")

        self.app.push_screen(CredentialsScreen(data, MONITOR_KEYS, purpose="monitor"), resumed)

    def _begin(self) -> None:
        profile = self._poll_target[0] if self._poll_target else None
        if profile is not None:
            self.sub_title = f"monitor: {profile.cluster_name}"
        self._ticker = self.set_interval(1.0, self._draw_status_line)
        self.poll()
        if self.backup_source is None:
            self.backup_source = self._catalog_source
            self.refresh_backups()

    # -- the poll loop ------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def poll(self) -> None:
        from wizard.status import collect

        assert self._poll_target is not None
        profile, secrets = self._poll_target
        self.polling_since = time.monotonic()
        try:
            remote = self.session.monitor_remote()
            timeout = max(2.0, min(10.0, self.interval * 2))
            status = collect(profile, secrets, remote, timeout=timeout)
        except Exception as exc:
            self.ui(self._poll_failed, f"poll failed: {describe_error(exc)}")
        else:
            self.ui(self.show_status, status)
        finally:
            self.polling_since = None
            self.ui(self._rearm)

    # -- the Backups pane: the catalog (slow refresh), take and verify ------------------------------
    def _catalog_source(self) -> list[Entry]:
        from wizard.backups.health import read_entries

        assert self._poll_target is not None
        return read_entries(self._poll_target[0], self.session.monitor_remote(),
                            timeout=max(5.0, min(15.0, self.interval * 3)))

    @work(thread=True, exclusive=True, group="backups", exit_on_error=False)
    def refresh_backups(self) -> None:
        """Read the backup list (a worker) and draw it; a failure says why in the pane, never the screen."""
        source = self.backup_source
        if source is None:
            return
        try:
            entries = source()
        except Exception as exc:
            self.ui(self.query_one(BackupsPane).show_unknown, describe_error(exc))
        else:
            self.ui(self._show_backups, entries)
        finally:
            self.ui(self._rearm_backups)

    def _show_backups(self, entries: list[Entry]) -> None:
        from wizard.backups.health import max_age_for

        profile = self._poll_target[0] if self._poll_target is not None else None
        self.query_one(BackupsPane).show_entries(entries, time.time(),
                                                 max_age_for(profile.backups.schedule if profile else None))

    def _rearm_backups(self) -> None:
        if self._backup_timer is not None:
            self._backup_timer.stop()
        self._backup_timer = self.set_timer(self.backup_interval, self.refresh_backups)

    def action_zoom_backups(self) -> None:
        """The Backups pane over the whole lower half (events and history hidden), and back."""
        zoomed = self.query_one("#mon-middle").display
        self.query_one("#mon-middle").display = not zoomed
        self.query_one("#mon-events").display = not zoomed
        self.query_one(BackupsPane).border_title = f"backups (z {'back' if zoomed else 'zoom'})"

    def action_take_backup(self) -> None:
        if self._poll_target is None or self.job:
            return
        self._start_job("take")
        self.run_take()

    def action_verify_backup(self) -> None:
        if self._poll_target is None or self.job:
            return
        self._start_job("verify")
        self.run_verify()

    def _start_job(self, what: str) -> None:
        self.job = what
        self._job_notes = []
        self._job_started = time.monotonic()
        self._progress.take()
        self._progress = Latest(lambda: self.post_message(JobProgress()))  # nothing of an earlier job
        self.query_one(BackupsPane).show_job(progress_text(what, None, [], 0.0))
        self._job_ticker = self.set_interval(1.0, self._draw_job)
        self.refresh_bindings()

    def _draw_job(self) -> None:
        """The running job's line again (its seconds go on while no progress report comes)."""
        if self.job:
            self.query_one(BackupsPane).show_job(progress_text(self.job, self._progress.peek(), self._job_notes,
                                                               time.monotonic() - self._job_started))

    def _end_job(self) -> None:
        self.job = ""
        if self._job_ticker is not None:
            self._job_ticker.stop()
            self._job_ticker = None
        self.refresh_bindings()

    @work(thread=True, exclusive=True, group="backup-job", exit_on_error=False)
    def run_take(self) -> None:
        """``backup take`` with its progress coalesced into :class:`JobProgress` messages."""
        from wizard.backups.catalog import human_size
        from wizard.backups.take import take

        assert self._poll_target is not None
        profile, secrets = self._poll_target

        def note(message: str) -> None:
            self.post_message(JobNote(message))

        try:
            result = take(profile, secrets, self.session.monitor_remote(), on_progress=self._progress.offer,
                          on_note=note)
        except Exception as exc:
            self.ui(self._job_failed, "backup take", exc)
        else:
            self.ui(self._job_done, f"backup {result.id} complete: {human_size(result.manifest.get('size', 0))} "
                                    f"in {result.seconds:.1f}s from {result.donor}", "good")

    @work(thread=True, exclusive=True, group="backup-job", exit_on_error=False)
    def run_verify(self) -> None:
        """``backup verify`` of the newest complete backup."""
        from wizard.backups.verify import verify

        assert self._poll_target is not None
        profile = self._poll_target[0]
        try:
            result = verify(profile, self.session.monitor_remote(), None)
        except Exception as exc:
            self.ui(self._job_failed, "backup verify", exc)
        else:
            word = "verified" if result.ok else "verify FAILED"
            self.ui(self._job_done, f"{result.id} {word}: {result.summary} ({result.seconds:.1f}s)",
                    "good" if result.ok else "bad")

    def on_job_progress(self, _message: JobProgress) -> None:
        if self._progress.take() is not None:
            self._draw_job()

    def on_job_note(self, message: JobNote) -> None:
        self._job_notes.append(message.text)
        self._draw_job()

    def _job_done(self, text: str, level: str) -> None:
        self._end_job()
        self.query_one(BackupsPane).show_job(Text(text, style=LEVEL_STYLE.get(level, "")))
        self._log_event(HistoryEvent(time.time(), text, level))
        self.refresh_backups()

    def _job_failed(self, what: str, error: BaseException) -> None:
        from wizard.tui.screens.error import ErrorScreen

        self._end_job()
        self.query_one(BackupsPane).show_job(Text(f"{what} failed: {describe_error(error)}", style="bold red"))
        self._log_event(HistoryEvent(time.time(), f"{what} failed: {describe_error(error)}", "bad"))
        self.app.push_screen(ErrorScreen(what, error))
        self.refresh_backups()

    def _log_event(self, ev: HistoryEvent) -> None:
        line = Text(clock(ev.ts) + " ", style="dim")
        line.append(ev.text, style=LEVEL_STYLE.get(ev.level, ""))
        self.query_one("#mon-events", RichLog).write(line)

    def _poll_failed(self, message: str) -> None:
        self.show_error(message)
        self._record(None, [HistoryEvent(time.time(), message, "bad")])

    def _record(self, status: ClusterStatus | None, events: list[HistoryEvent]) -> None:
        """Keep one poll in the recording, opened at the first one (for its cluster's name); a recording
        that cannot be opened or written is said once in the event log, and the monitor goes on."""
        if self.recorder is None:
            from wizard.monitor_record import Recorder, RecordingError

            if self.record_path is None or status is None or self._record_failed:
                return
            try:
                self.recorder = Recorder(self.record_path, status.cluster)
            except RecordingError as exc:
                self._record_failed = True
                self.show_error(str(exc))
                return
        try:
            self.recorder.record(status, events)
        except (sqlite3.Error, OSError) as exc:  # the disk filled up, the file went away...
            self.recorder = None
            self._record_failed = True
            self.show_error(f"recording to {self.record_path} stopped: {type(exc).__name__}: {exc}")

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        if not self.paused:
            self._timer = self.set_timer(self.interval, self.step if self.replay_path is not None else self.poll)

    def on_unmount(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    # -- drawing (public: tests feed real ClusterStatus values) -------------------------------------
    def show_status(self, status: ClusterStatus, events: list[HistoryEvent] | None = None) -> None:
        """Redraw everything from one status; the history records the change from the previous one
        (``events``: a recording's own events for it, instead)."""
        events = self.history.add(status, events)
        self._record(status, events)
        self.last = status
        component = component_of(status)
        table = self.query_one("#mon-nodes", DataTable)
        with self.app.batch_update():
            for ns in status.nodes:
                cells = node_cells(ns, status, self.history.flows.get(ns.name), component)
                if ns.name in table.rows:
                    for key, value in cells.items():
                        table.update_cell(ns.name, key, value)
                else:
                    table.add_row(*(cells[k] for k, _, _ in COLUMNS), key=ns.name, height=2)
            self._draw_summary(status, component)
            self._draw_history()
            log = self.query_one("#mon-events", RichLog)
            for ev in events:
                line = Text(clock(ev.ts) + " ", style="dim")
                line.append(ev.text, style=LEVEL_STYLE.get(ev.level, ""))
                log.write(line)
            self._draw_status_line()

    def _draw_summary(self, st: ClusterStatus, component: ComponentView) -> None:
        t = Text()
        t.append(f"{st.verdict.upper()}", style=VERDICT_STYLE.get(st.verdict, "bold"))
        t.append(f"  {st.reason}\n")
        t.append("Primary Component: ", style="bold")
        members = component.names
        t.append(", ".join(members) if members else "none", style="" if members else "red")
        if component.unknown:
            t.append(f" +{len(component.unknown)} unknown", style="yellow")
        t.append("\nstate UUIDs: ", style="bold")
        t.append("agree" if st.uuids_agree else "DISAGREE", style="green" if st.uuids_agree else "bold red")
        t.append("\nauthoring name -> ", style="bold")
        if st.authoring_node:
            t.append(f"{st.authoring_node} ({', '.join(st.authoring_addresses)})")
        elif st.authoring_addresses:
            t.append(f"{', '.join(st.authoring_addresses)} (not a Studio node)", style="yellow")
        else:
            t.append("no answer", style="red")
        if st.publisher:  # Crafter nodes: the primary publisher (docs/crafter.md)
            from wizard.crafter.publisher import publisher_line

            t.append("\nprimary publisher -> ", style="bold")
            t.append(publisher_line(st.publisher), style="red" if st.publisher.get("error") else "")
        self.query_one("#mon-summary", Static).update(t)

    def _draw_history(self) -> None:
        h = self.history
        rates = list(h.commit_rate)
        fc = [v * 100 for v in h.flow_control]
        self.query_one("#mon-commits", Sparkline).data = rates or [0.0]
        self.query_one("#mon-fc", Sparkline).data = fc or [0.0]
        now_rate = rates[-1] if rates else 0.0
        moved = h.bytes_rate[-1] if h.bytes_rate else None
        self.query_one("#mon-commit-label", Label).update(
            f"commits/s  now {now_rate:.1f}  max {max(rates, default=0.0):.1f}  {human_rate(moved)}B/s")
        self.query_one("#mon-fc-label", Label).update(
            f"flow control paused  now {fc[-1] if fc else 0:.0f}%  max {max(fc, default=0.0):.0f}%")

    def _draw_status_line(self) -> None:
        parts = []
        if self.replay_path is not None:
            parts.append(f"replay {self.replay_path.name}: poll {self.frame_index}/{len(self.frames)}"
                         + (" (the end)" if self.frames and self.frame_index >= len(self.frames) else ""))
        elif self.recorder is not None:
            parts.append(f"recording {self.record_path}: {self.recorder.polls} polls")
        if self.last is not None:
            parts.append(f"updated {clock(self.last.ts)}")
        parts.append("paused" if self.paused else f"every {self.interval:g}s")
        if self.polling_since is not None:
            waited = time.monotonic() - self.polling_since
            if waited > max(self.interval, 3.0):
                parts.append(f"waiting {waited:.0f}s for a slow node")
        self.query_one("#mon-status", Static).update(" | ".join(parts))

    def show_error(self, message: str) -> None:
        log = self.query_one("#mon-events", RichLog)
        log.write(Text(message, style="bold red"))
        if self.last is None:
            self.query_one("#mon-summary", Static).update(Text(message, style="bold red"))

    def worker_failed(self, worker: Worker[Any], error: BaseException) -> None:
        self.show_error(describe_error(error))

    # -- actions ------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return len(self.app.screen_stack) > 1
        if action in ("refresh_now", "pause"):
            return True if self._poll_target is not None or self.frames else None
        if action in ("take_backup", "verify_backup"):  # shown only with a cluster; greyed while a job runs
            return (not self.job) if self._poll_target is not None and self.replay_path is None else None
        return True

    def why_disabled(self, action: str) -> str | None:
        if action == "back":
            return "This is the first screen: nothing to go back to (ctrl+q quits)."
        if action in ("refresh_now", "pause"):
            return "Nothing to poll yet: the profile and its secrets come first."
        if action in ("take_backup", "verify_backup"):
            if self.job:
                return f"A backup job ({self.job}) is running; wait for it to finish."
            return "Backups need a live cluster: " + ("not in a replay." if self.replay_path is not None
                                                       else "nothing to poll yet.")
        return None

    def action_refresh_now(self) -> None:
        if self.frames:  # a replay: the next poll now
            if self._timer is not None:
                self._timer.stop()
            self.step()
        elif self._poll_target is not None:
            if self._timer is not None:
                self._timer.stop()
            self.poll()

    def action_pause(self) -> None:
        self.paused = not self.paused
        if self.paused and self._timer is not None:
            self._timer.stop()
        elif not self.paused and self.frames:
            self.step()
        elif not self.paused and self._poll_target is not None:
            self.poll()
        self._draw_status_line()

    def _step_interval(self, direction: int) -> None:
        idx = min(range(len(INTERVALS)), key=lambda i: abs(INTERVALS[i] - self.interval))
        self.interval = INTERVALS[max(0, min(len(INTERVALS) - 1, idx + direction))]
        self.session.interval = self.interval
        self._draw_status_line()

    def action_faster(self) -> None:
        self._step_interval(-1)

    def action_slower(self) -> None:
        self._step_interval(1)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()


def run_monitor(profile_path: Path | None, interval: float = 2.0, *, record: Path | None = None,
                replay: Path | None = None) -> int:
    """Run the monitor alone until the person quits: polling ``profile_path`` (recording to ``record``
    when given) or replaying ``replay``; returns the exit code."""
    from wizard.tui.app import create_app

    app = create_app(profile_path, monitor=True, interval=interval)
    screen = MonitorScreen(profile_path=profile_path, interval=interval, record=record, replay=replay)
    _install(app, screen)
    try:
        app.run()
    finally:
        app.session.close()
    return app.return_code or 0


def _install(app: WizardApp, screen: MonitorScreen) -> None:
    """Make ``screen`` the app's first screen (the app's own default would build a plain monitor)."""
    app.get_default_screen = lambda: screen  # type: ignore[method-assign]
