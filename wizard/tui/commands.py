"""The command palette's cluster actions (ctrl+p): recover, status, backup list, and the run log.

Each cluster action runs the same ``studio-cluster`` command a person would type, on the profile the
wizard has saved or opened (or the one highlighted on the start screen), as a child process; its output
streams into a read-only, copyable view.  On the session's own profile (saved or opened) the command gets
the secrets the session resolved or the person typed (an ``ask`` one too), handed over on its stdin, never
in its arguments or environment (:data:`wizard.cli.SECRETS_ON_STDIN`); on any other profile they resolve
there as on the command line.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from wizard.tui.screens.error import TextViewScreen

if TYPE_CHECKING:
    from wizard.tui.app import WizardApp

# name, help, CLI arguments before the profile path (None: not a CLI command)
ACTIONS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("Cluster status", "membership and health of every node (studio-cluster status)", ("status",)),
    ("Recover the cluster", "after an outage: restart from the most advanced node (studio-cluster recover)",
     ("recover",)),
    ("Backup list", "the Arbiter's snapshot backups (studio-cluster backup list)", ("backup", "list")),
    ("Open the run log", "every remote command of this session's last run, redacted", None),
)


def current_profile_path(app: WizardApp) -> Path | None:
    """The profile the actions work on: saved in this session, else opened, else highlighted at the start."""
    session = app.session
    for known in (session.saved_path, session.profile_path):
        if known is not None and Path(known).is_file():
            return Path(known)
    selected = getattr(app.screen, "selected_profile", None)
    path = selected() if callable(selected) else None
    return path if isinstance(path, Path) else None


def cluster_name(path: Path) -> str:
    """The ``cluster_name`` a profile file names, or ``?`` when it cannot be read."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeError, yaml.YAMLError):
        return "?"
    return str(data.get("cluster_name", "?")) if isinstance(data, dict) else "?"


def latest_run_log(app: WizardApp) -> Path | None:
    """This session's run log, else the newest ``run-*.jsonl`` in the runs directory."""
    runlog = app.session._runlog
    if runlog is not None and runlog.path is not None and runlog.path.is_file():
        return runlog.path
    runs = sorted(Path(app.session.runs_dir).glob("run-*.jsonl"), key=lambda p: p.stat().st_mtime)
    return runs[-1] if runs else None


def format_run_log(path: Path) -> str:
    """A run log (JSON lines) as text: time, node, exit code, command, and any output."""
    import time

    lines = [f"run log {path}", ""]
    for raw in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(raw)
        except json.JSONDecodeError:
            lines.append(raw)
            continue
        ts = entry.get("ts")
        stamp = time.strftime("%H:%M:%S", time.localtime(ts)) if isinstance(ts, int | float) else "--:--:--"
        head = f"{stamp} {entry.get('node', ''):9} -> {entry.get('exit_code', '?')} ({entry.get('duration', '?')}s)"
        lines.append(f"{head}  $ {entry.get('command', '')}")
        for key in ("stdout", "stderr"):
            out = str(entry.get(key) or "").rstrip()
            if out:
                lines.extend(f"    {key}: {line}" for line in out.splitlines())
    return "\n".join(lines)


def session_secrets(app: WizardApp, path: Path) -> dict[str, str]:
    """The secrets the session resolved or the person typed, as Secrets.resolve_for's `given`, for the
    session's own profile only (saved or opened in this session): {} for any other file."""
    session = app.session
    own = {Path(p).absolute() for p in (session.saved_path, session.profile_path) if p is not None}
    if path.absolute() not in own:
        return {}
    given = {k: v for k, v in session.typed.items() if v}
    secrets = session.secrets
    if secrets is not None:
        for key in ("sst_password", "admin_password", "redis_password", "sentinel_password", "dns_api_key"):
            value = getattr(secrets, key, None)
            if value:
                given.setdefault(key, value)
        for node, value in secrets.key_passphrases.items():
            given.setdefault(f"key_passphrase:{node}", value)
    return given


class CommandOutputScreen(TextViewScreen):
    """Runs one ``studio-cluster`` command in a thread and shows its output as it comes; `secrets` (the
    session's, see :func:`session_secrets`) go to it on its stdin."""

    def __init__(self, title: str, argv: list[str], secrets: dict[str, str] | None = None) -> None:
        super().__init__(title, f"$ studio-cluster {' '.join(argv)}\n")
        self.argv = argv
        self.secrets = dict(secrets or {})
        self.exit_code: int | None = None
        self._lines: list[str] = [self.text]
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def on_mount(self) -> None:
        super().on_mount()
        self.run_worker(self._run, thread=True, group="command", exit_on_error=False)

    def _run(self) -> None:
        from wizard.cli import SECRETS_ON_STDIN

        env = dict(os.environ, COLUMNS="120", NO_COLOR="1", TERM="dumb")
        env.pop(SECRETS_ON_STDIN, None)
        if self.secrets:
            env[SECRETS_ON_STDIN] = "1"
        proc = subprocess.Popen([sys.executable, "-m", "wizard", *self.argv],
                                stdin=subprocess.PIPE if self.secrets else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        with self._lock:
            self._proc = proc
        if proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(json.dumps(self.secrets) + "\n")
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        assert proc.stdout is not None
        for line in proc.stdout:
            self._add(line)
        code = proc.wait()
        self._add(f"\n[exit code {code}: {'ok' if code == 0 else 'failed'}]\n", code)

    def _add(self, line: str, code: int | None = None) -> None:
        def show() -> None:
            self._lines.append(line)
            if code is not None:
                self.exit_code = code
            if self.is_attached:
                self.set_text("".join(self._lines))

        self.app.call_from_thread(show)

    def action_close(self) -> None:
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()  # our own child; a recover stops at its next step, as on ctrl+c
        super().action_close()


class ClusterCommands(Provider):
    """The palette's cluster actions; each says why when it cannot run (no profile, no run log yet)."""

    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        return [(name, help_text, partial(self._run, name, argv)) for name, help_text, argv in ACTIONS]

    def _run(self, name: str, argv: tuple[str, ...] | None) -> None:
        app: WizardApp = self.app  # type: ignore[assignment]
        if argv is None:
            log = latest_run_log(app)
            if log is None:
                app.notify(f"No run log yet: a run (checks, apply) writes one under {app.session.runs_dir}/.",
                           severity="warning")
                return
            app.push_screen(TextViewScreen(f"Run log {log}", format_run_log(log)))
            return
        path = current_profile_path(app)
        if path is None:
            app.notify(f"{name} needs a saved profile: save it (ctrl+s) or open one (o on the start screen).",
                       severity="warning")
            return
        extra = ["--run-dir", str(app.session.runs_dir)] if argv == ("recover",) else []
        screen = CommandOutputScreen(f"{name}: {path}", [*argv, str(path), *extra], session_secrets(app, path))
        if argv != ("recover",):
            app.push_screen(screen)
            return
        # recover restarts servers: never on a pick alone, and never on a profile the person did not see named
        from wizard.tui.screens.confirm import ConfirmScreen

        def go(yes: bool | None) -> None:
            if yes:
                app.push_screen(screen)

        app.push_screen(ConfirmScreen(
            "Recover the cluster?",
            f"studio-cluster recover runs on {path} (cluster {cluster_name(path)}): it checks, writes the "
            "configuration, and restarts the cluster from its most advanced node where it is down.", "Recover"), go)

    async def discover(self) -> Hits:
        for name, help_text, run in self._commands():
            yield DiscoveryHit(name, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, run in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, help=help_text)
