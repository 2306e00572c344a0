"""Checks: every prerequisite check of every node as its own row, turning ok/warn/fail as it finishes.

The rows are keyed by (check, node); the runner calls back from its worker threads and each result
is posted to the event loop.  The highlighted row's summary and fix show under the table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static
from textual.widgets.data_table import RowDoesNotExist

from wizard.tui.screens.base import WizardScreen
from wizard.tui.widgets.badges import check_badge

if TYPE_CHECKING:
    from wizard.checks import CheckResult


def row_key(check: str, node: str) -> str:
    return f"{check}@{node}"


class ChecksScreen(WizardScreen):
    BINDINGS = [
        Binding("r", "rerun_one", "Re-run"),
        Binding("a", "rerun_all", "Re-run all"),
        Binding("f", "next_problem", "Next fail"),  # failures; with none, warnings; never a skipped row
        Binding("u", "use_found", "Use found"),
        Binding("k", "review_host_key", "Host key"),
        Binding("ctrl+n", "next", "Plan"),
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "back", "Back"),
        Binding("ctrl+p", "app.command_palette", "Commands"),
    ]

    def __init__(self, *, autorun: bool = True) -> None:
        super().__init__()
        self.autorun = autorun
        self.rows: dict[str, tuple[str, str, str]] = {}  # row key -> (check id, title, node)
        self.results: dict[str, CheckResult] = {}
        self.running = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="checks-summary", markup=False)
        yield DataTable(id="checks", cursor_type="row", zebra_stripes=True)
        yield Static("", id="check-detail")
        yield Footer(compact=True)  # every key fits in 80 columns

    def on_mount(self) -> None:
        self.sub_title = "prerequisite checks"
        table = self.query_one("#checks", DataTable)
        table.add_column("result", key="status", width=6)
        table.add_column("check", key="check", width=16)
        table.add_column("node", key="node", width=9)
        # fixed: a column grown by update_width is not re-laid out while the table is on screen
        table.add_column("summary", key="summary", width=max(30, self.app.size.width - 41))
        if self.autorun:
            self._start(None)

    # -- data in ------------------------------------------------------------------------------------
    def set_planned(self, rows: list[tuple[str, str, str]]) -> None:
        """One pending row per (check id, title, node), in display order."""
        table = self.query_one("#checks", DataTable)
        table.clear()
        self.rows.clear()
        self.results.clear()
        for check, title, node in rows:
            key = row_key(check, node)
            self.rows[key] = (check, title, node)
            table.add_row(check_badge("pending"), title, node, Text("waiting", style="dim"), key=key)
        self._summarize()
        self._show_detail()

    def mark_pending(self, check_ids: list[str]) -> None:
        table = self.query_one("#checks", DataTable)
        for key, (check, _title, _node) in self.rows.items():
            if check in check_ids:
                self.results.pop(key, None)
                table.update_cell(key, "status", check_badge("pending"))
                table.update_cell(key, "summary", Text("running", style="dim"))
        self._summarize()
        self._show_detail()

    def show_result(self, result: CheckResult) -> None:
        """Turn one row ok/warn/fail/skip (adds the row if it was not planned)."""
        table = self.query_one("#checks", DataTable)
        key = row_key(result.check, result.node)
        status = result.status.value
        summary = Text(result.summary, style="red" if status in ("fail", "skip") else "")
        if key not in self.rows:
            self.rows[key] = (result.check, result.title, result.node)
            table.add_row(check_badge(status), result.title, result.node, summary, key=key)
        else:
            table.update_cell(key, "status", check_badge(status))
            table.update_cell(key, "summary", summary)
        self.results[key] = result
        self._summarize()
        if self._highlighted_key() == key:
            self._show_detail()

    def run_finished(self) -> None:
        """The run is over: put the cursor on the first problem so its fix shows."""
        self.running = False
        self.next_problem(from_start=True)
        self._summarize()
        self._show_detail()
        self.refresh_bindings()

    # -- view ---------------------------------------------------------------------------------------
    def _counts(self) -> dict[str, int]:
        counts = {"ok": 0, "warn": 0, "fail": 0, "skip": 0}
        for r in self.results.values():
            counts[r.status.value] += 1
        return counts

    def _summarize(self) -> None:
        c = self._counts()
        waiting = len(self.rows) - len(self.results)
        parts = [f"{c['ok']} ok", f"{c['warn']} warn", f"{c['fail']} failed"]
        if c["skip"]:
            parts.append(f"{c['skip']} not run")
        if waiting:
            parts.append(f"{waiting} running")
        if not self.rows:
            text = "Planning the checks..."
        elif waiting or self.running:
            text = "Checking every node: " + ", ".join(parts)
        elif self.can_continue:
            text = "Ready: " + ", ".join(parts) + ". ctrl+n shows the plan."
        else:
            text = "Fix the failures, then re-run (r: this check, a: all): " + ", ".join(parts)
        found = self.found_settings()
        if found and not self.running:
            text += ".  Found on the hosts: " + ", ".join(f"{k}: {v}" for k, v in found.items()) + \
                " (u uses it and re-runs the checks)"
        summary = self.query_one("#checks-summary", Static)
        summary.update(text)
        summary.set_class(bool(c["fail"] or c["skip"]), "bad")

    def _highlighted_key(self) -> str | None:
        table = self.query_one("#checks", DataTable)
        if not self.rows or table.cursor_row < 0 or table.cursor_row >= table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except RowDoesNotExist:
            return None
        return key

    def _show_detail(self) -> None:
        detail = self.query_one("#check-detail", Static)
        key = self._highlighted_key()
        if key is None:
            detail.update("")
            return
        _check, title, node = self.rows[key]
        r = self.results.get(key)
        text = Text()
        text.append(f"{title} on {node}: ", style="bold")
        if r is None:
            text.append("running...", style="dim")
        else:
            text.append_text(check_badge(r.status.value))
            text.append(f"  {r.summary}")
            if r.fix:
                text.append("\nfix: ", style="bold yellow")
                text.append(r.fix)
            if r.duration:
                text.append(f"  ({r.duration:.1f}s)", style="dim")
        detail.update(text)

    @on(DataTable.RowHighlighted, "#checks")
    def _row_highlighted(self) -> None:
        self._show_detail()

    # -- running ------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="checks", exit_on_error=False)
    def run_checks_worker(self, only: list[str] | None) -> None:
        from wizard.checks import planned, run_checks

        profile, secrets = self.session.profile, self.session.secrets
        assert profile is not None and secrets is not None
        try:
            if only is None:
                self.ui(self.set_planned, [(c.id, c.title, n) for c, n in planned(profile)])
            else:
                self.ui(self.mark_pending, only)
            remote = self.session.remote()
            run_checks(profile, secrets, remote=remote, only=only, on_result=lambda r: self.ui(self.show_result, r))
        finally:
            self.ui(self.run_finished)

    def _start(self, only: list[str] | None) -> None:
        if self.running:
            return
        self.running = True
        self.refresh_bindings()
        self.run_checks_worker(only)

    @property
    def can_continue(self) -> bool:
        if self.running or not self.rows or len(self.results) < len(self.rows):
            return False
        return not any(r.status.value in ("fail", "skip") for r in self.results.values())

    def found_settings(self) -> dict[str, str]:
        """Settings the checks detected that differ from the profile's (e.g. no systemd: manager direct)."""
        from wizard.tui.findings import suggested_settings

        profile = self.session.profile
        if profile is None:
            return {}
        current = profile.model_dump(mode="json")
        found = suggested_settings(self.results.values())
        return {k: v for k, v in found.items() if current.get(k.split(".")[0], {}).get(k.split(".")[1]) != v}

    def action_use_found(self) -> None:
        """Put the detected settings into the profile (and the form behind), then re-run every check."""
        from wizard.profile import ProfileError, validate_profile
        from wizard.tui.findings import with_setting

        found = self.found_settings()
        if not found:
            self.notify("The checks found no setting to change.", severity="warning")
            return
        data = self.session.data or self.session.profile.model_dump(mode="json")  # type: ignore[union-attr]
        for path, value in found.items():
            data = with_setting(data, path, value)
        try:
            profile = validate_profile(data, source="profile", check_files=False)
        except ProfileError as exc:
            self.notify("; ".join(exc.problems), title="cannot use the found setting", severity="error")
            return
        self.session.data, self.session.profile = data, profile
        for screen in self.app.screen_stack:
            adopt = getattr(screen, "adopt_settings", None)
            if adopt is not None:
                adopt(found)
        self.notify("Using " + ", ".join(f"{k}: {v}" for k, v in found.items()) + "; re-running the checks.")
        if self.autorun:  # without autorun the caller feeds the results (tests)
            self._start(None)
        else:
            self.mark_pending([check for check, _t, _n in self.rows.values()])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "review_host_key":  # shown only when a node was refused over its host key
            if self._host_key_node() is None:
                return False
            return None if self.running else True
        if action == "use_found":  # shown only when the checks found a setting to use
            if not self.found_settings():
                return False
            return None if self.running else True
        if action in ("rerun_one", "rerun_all"):
            ready = self.session.profile is not None and self.session.secrets is not None
            return None if self.running or not ready else True
        if action == "next":
            return True if self.can_continue else None
        return True

    def why_disabled(self, action: str) -> str | None:
        if self.running:
            return "The checks are running; wait for them to finish."
        if action == "review_host_key":
            return "No node refused the connection over its host key."
        if action == "use_found":
            return "The checks found no setting to use."
        if action in ("rerun_one", "rerun_all"):
            return "The secrets are not resolved yet: go back (Esc) to the credentials screen."
        if action == "next":
            c = self._counts()
            if len(self.results) < len(self.rows) or not self.rows:
                return "Not every check has a result yet; re-run them (a)."
            return (f"{c['fail']} failed, {c['skip']} not run: fix the failures (f goes to the next one), then re-run "
                    "(r: this check, a: all).")
        return None

    def _host_key_node(self) -> str | None:
        """The node of the highlighted (else the first) SSH check refused over its host key."""
        refused = [k for k, r in self.results.items() if r.check == "ssh" and r.status.value == "fail"
                   and "host key of" in r.summary]
        key = self._highlighted_key()
        chosen = key if key in refused else (refused[0] if refused else None)
        return self.rows[chosen][2] if chosen is not None else None

    def action_review_host_key(self) -> None:
        """Ask the node for its host key again and show it in the host-key dialog (Accept writes known_hosts)."""
        node = self._host_key_node()
        if node is not None and not self.running:
            self._host_key_worker(node)

    @work(thread=True, exclusive=True, group="hostkey-probe", exit_on_error=False)
    def _host_key_worker(self, node: str) -> None:
        problem = self.session.remote()[node].host_key_problem()
        if problem is None:
            self.ui(self.notify, f"{node}'s host key is in known_hosts now; re-running the checks.")
            self.ui(self._start, None)
            return
        self.ui(self._show_host_key, node, problem)

    def _show_host_key(self, node: str, problem: object) -> None:
        from wizard.remote import HostKeyError
        from wizard.tui.screens.host_key import HostKeyScreen

        assert self.session.profile is not None and isinstance(problem, HostKeyError)

        def done(note: str | None) -> None:
            if note:
                self.notify(note)
                self._start(None)

        self.app.push_screen(HostKeyScreen(self.session.profile.node(node), problem), done)

    def action_rerun_one(self) -> None:
        key = self._highlighted_key()
        if key is not None:
            self._start([self.rows[key][0]])

    def action_rerun_all(self) -> None:
        self._start(None)

    def next_problem(self, from_start: bool = False) -> str | None:
        """Put the cursor on the next failed check after it (wrapping round), or with no failure on the next
        warning; a skipped row ("not run": its prerequisite failed) is never one, its cause is.  Returns
        the status gone to ("fail" / "warn"), None when there is none."""
        table = self.query_one("#checks", DataTable)
        keys = list(self.rows)
        if not keys:
            return None
        start = -1 if from_start else table.cursor_row
        order = keys[start + 1:] + keys[:start + 1]
        for wanted in ("fail", "warn"):
            for key in order:
                r = self.results.get(key)
                if r is not None and r.status.value == wanted:
                    table.move_cursor(row=table.get_row_index(key))
                    return wanted
        return None

    def action_next_problem(self) -> None:
        if self.next_problem() is None:
            waiting = len(self.rows) - len(self.results)
            self.notify("No failed check and no warning" + (f" yet ({waiting} still running)." if waiting else "."),
                        title="f: next failure")

    def action_next(self) -> None:
        if self.can_continue:
            from wizard.tui.screens.plan import PlanScreen

            self.app.push_screen(PlanScreen())

