"""The monitor: a row per node, a cluster summary with the verdict, history sparklines and an event log.

Polling follows Dolphie's loop: a thread worker collects one :class:`wizard.status.ClusterStatus`
(every node in parallel, with timeouts), the screen redraws on success, then a timer re-arms the next
poll.  A dead or partitioned node costs a poll its timeout, never the screen.
"""

from __future__ import annotations

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

from wizard.tui.history import History
from wizard.tui.screens.base import WizardScreen, describe_error
from wizard.tui.widgets.badges import LEVEL_STYLE, VERDICT_STYLE, clock

if TYPE_CHECKING:
    from wizard.status import ClusterStatus, NodeStatus
    from wizard.tui.form import SecretSpec

COLUMNS = (  # key, two-line header, width: 78 columns in all, so a row per node fits an 80-column terminal
    ("node", "node\nrole", 9), ("address", "address", 12), ("state", "state\nstatus", 12), ("size", "size", 4),
    ("ready", "ready\nconn", 5), ("seqno", "last\nseqno", 8), ("flow", "fc\nrecv q", 6),
    ("heartbeat", "heart\nbeat", 6),
)
INTERVALS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
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


def node_cells(ns: NodeStatus, status: ClusterStatus) -> dict[str, object]:
    """The two-line row of one node, by column key."""
    hb = DASH.copy() if ns.heartbeat_age is None else Text(
        f"{ns.heartbeat_age:.1f}s", style="bold red" if ns.heartbeat_age > 15 else "")
    cells: dict[str, object] = {"node": two(Text(ns.name, style="bold"), Text(ns.role, style="dim")),
                                "address": ns.address, "heartbeat": hb}
    blank = {"size": DASH.copy(), "ready": DASH.copy(), "seqno": DASH.copy(), "flow": DASH.copy()}
    if not ns.reachable:
        cells.update(blank, state=two(Text("unreachable", style="bold red"), DASH.copy()))
        return cells
    if ns.role != "studio":  # the Arbiter: garbd is a voting member of the component, with no data
        member = status.arbiter_member
        state = Text("member" if member else ("running" if ns.process_running else "garbd down"),
                     style="green" if member else ("yellow" if ns.process_running else "bold red"))
        cells.update(blank, state=two(state, Text("Primary", style="green") if member else DASH.copy()))
        if member:
            cells["ready"] = two(DASH.copy(), Text("yes", style="green"))
        return cells
    if not ns.process_running or not ns.wsrep:
        word = "stopped" if not ns.process_running else "no answer"
        cells.update(blank, state=two(Text(word, style="bold red"), DASH.copy()))
        return cells
    w = ns.wsrep
    try:
        fc = f"{float(w.get('wsrep_flow_control_paused', '0')) * 100:.0f}%"
    except ValueError:
        fc = "?"
    primary = ns.cluster_status == "Primary"
    cells.update(
        state=two(Text(ns.state or "?", style="green" if ns.state == "Synced" else "yellow"),
                  Text(ns.cluster_status or "?", style="green" if primary else "bold red")),
        size=str(ns.size),
        ready=two(_yes(w.get("wsrep_ready", "")), _yes(w.get("wsrep_connected", ""))),
        seqno=str(ns.last_committed) if ns.last_committed >= 0 else DASH.copy(),
        flow=two(fc, w.get("wsrep_local_recv_queue", "-")))
    return cells


class MonitorScreen(WizardScreen):
    BINDINGS = [
        Binding("r", "refresh_now", "Refresh"),
        Binding("p", "pause", "Pause"),
        Binding("plus,equals_sign", "faster", "Faster", key_display="+"),
        Binding("minus", "slower", "Slower", key_display="-"),
        Binding("escape", "back", "Back"),
        Binding("q", "app.quit", "Quit", show=False),
    ]

    def __init__(self, *, profile_path: Path | None = None, interval: float = 2.0, poll: bool = True) -> None:
        super().__init__()
        self.profile_path = profile_path
        self.interval = interval
        self.poll_enabled = poll
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
            yield RichLog(id="mon-events", wrap=True, markup=False, max_lines=1000)
        yield Static("", id="mon-status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "monitor"
        table = self.query_one("#mon-nodes", DataTable)
        for key, header, width in COLUMNS:
            table.add_column(header, key=key, width=width)
        self.query_one("#mon-events", RichLog).border_title = "events"
        self.query_one("#mon-history", Vertical).border_title = "last minutes"
        self.query_one("#mon-summary", Static).border_title = "cluster"
        self._draw_status_line()
        if not self.poll_enabled:
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
            self.ui(self.show_error, f"poll failed: {describe_error(exc)}")
        else:
            self.ui(self.show_status, status)
        finally:
            self.polling_since = None
            self.ui(self._rearm)

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        if not self.paused:
            self._timer = self.set_timer(self.interval, self.poll)

    # -- drawing (public: tests feed real ClusterStatus values) -------------------------------------
    def show_status(self, status: ClusterStatus) -> None:
        """Redraw everything from one status; the history records the change from the previous one."""
        events = self.history.add(status)
        self.last = status
        table = self.query_one("#mon-nodes", DataTable)
        with self.app.batch_update():
            for ns in status.nodes:
                cells = node_cells(ns, status)
                if ns.name in table.rows:
                    for key, value in cells.items():
                        table.update_cell(ns.name, key, value)
                else:
                    table.add_row(*(cells[k] for k, _, _ in COLUMNS), key=ns.name, height=2)
            self._draw_summary(status)
            self._draw_history()
            log = self.query_one("#mon-events", RichLog)
            for ev in events:
                line = Text(clock(ev.ts) + " ", style="dim")
                line.append(ev.text, style=LEVEL_STYLE.get(ev.level, ""))
                log.write(line)
            self._draw_status_line()

    def _draw_summary(self, st: ClusterStatus) -> None:
        t = Text()
        t.append(f"{st.verdict.upper()}", style=VERDICT_STYLE.get(st.verdict, "bold"))
        t.append(f"  {st.reason}\n")
        t.append("Primary Component: ", style="bold")
        members = list(st.primary_members) + (["garbd"] if st.arbiter_member else [])
        t.append(", ".join(members) if members else "none", style="" if members else "red")
        t.append("\nstate UUIDs: ", style="bold")
        t.append("agree" if st.uuids_agree else "DISAGREE", style="green" if st.uuids_agree else "bold red")
        t.append("\nauthoring name -> ", style="bold")
        if st.authoring_node:
            t.append(f"{st.authoring_node} ({', '.join(st.authoring_addresses)})")
        elif st.authoring_addresses:
            t.append(f"{', '.join(st.authoring_addresses)} (not a Studio node)", style="yellow")
        else:
            t.append("no answer", style="red")
        self.query_one("#mon-summary", Static).update(t)

    def _draw_history(self) -> None:
        h = self.history
        rates = list(h.commit_rate)
        fc = [v * 100 for v in h.flow_control]
        self.query_one("#mon-commits", Sparkline).data = rates or [0.0]
        self.query_one("#mon-fc", Sparkline).data = fc or [0.0]
        now_rate = rates[-1] if rates else 0.0
        self.query_one("#mon-commit-label", Label).update(
            f"commits/s  now {now_rate:.1f}  max {max(rates, default=0.0):.1f}")
        self.query_one("#mon-fc-label", Label).update(
            f"flow control paused  now {fc[-1] if fc else 0:.0f}%  max {max(fc, default=0.0):.0f}%")

    def _draw_status_line(self) -> None:
        parts = []
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
            return True if self._poll_target is not None else None
        return True

    def action_refresh_now(self) -> None:
        if self._poll_target is not None:
            if self._timer is not None:
                self._timer.stop()
            self.poll()

    def action_pause(self) -> None:
        self.paused = not self.paused
        if self.paused and self._timer is not None:
            self._timer.stop()
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
