"""Command line: one small function per subcommand; parsing, output and exit codes only.

Exit codes: 0 success, 1 the job ran and found a failure, 2 bad input (profile, secret, usage).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from wizard.profile import Profile, ProfileError, file_problems, json_schema, load_profile
from wizard.secrets import REDACTOR, SecretError, Secrets, resolve

if TYPE_CHECKING:
    from wizard.run_history import RunSummary

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# Not a terminal (a pipe, a file): 120 columns, whatever COLUMNS an ancestor left in the environment (honouring it
# wrapped recover's lines at 80 under a test runner that had set it, and squeezed the backup table).
console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _prompt(what: str) -> str:
    if not sys.stdin.isatty():
        raise SecretError(f"{what} is set to 'ask' but there is no terminal to ask on; use env:NAME instead")
    return getpass.getpass(f"{what}: ")


READ_ONLY = {"admin_password", "redis_password"}  # what status needs: never the SST password


def _dry_prompt(what: str) -> str:
    """The check pass of :func:`load`: says whether asking could work, without asking."""
    if not sys.stdin.isatty():
        raise SecretError(f"{what} is set to 'ask' but there is no terminal to ask on; use env:NAME instead")
    return "?"


class InputsMissing(ProfileError):
    """Inputs a command needs that are not there (key files, environment variables, secret files),
    every one of them, so that one round of fixes is enough.  ``problems`` are ``field: message`` lines."""

    def __init__(self, source: str, problems: list[str], hint: str = "") -> None:
        super().__init__(source, problems)
        self.hint = hint

    def __str__(self) -> str:
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        text = (f"{self.source}: {count} input{'s' if count > 1 else ''} this command needs "
                f"{'are' if count > 1 else 'is'} missing; fix {'them all' if count > 1 else 'it'} and run it again:"
                f"\n{lines}")
        names = missing_env_names(self.problems)
        if names:
            text += "\n  environment variables to export: " + " ".join(names)
        return text + (f"\n  {self.hint}" if self.hint else "")


def missing_env_names(problems: list[str]) -> list[str]:
    """The environment variables that ``problems`` say are not set, in order, once each."""
    import re

    found = (re.search(r"environment variable (\S+) is not set", p) for p in problems)
    return list(dict.fromkeys(m.group(1) for m in found if m))


SECRETS_ON_STDIN = "STUDIO_CLUSTER_SECRETS_ON_STDIN"
"""Set to 1 by a parent that hands its resolved secrets over (the wizard's command palette): stdin then holds
one JSON object, Secrets.resolve_for's `given` (``sst_password``, ``key_passphrase:NODE``, ...), used before
the profile's references, so an 'ask' secret typed in the wizard needs no terminal here."""


def _given_secrets() -> dict[str, str] | None:
    if os.environ.get(SECRETS_ON_STDIN) != "1":
        return None
    global _GIVEN
    if _GIVEN is None:
        try:
            data = json.loads(sys.stdin.readline() or "{}")
        except ValueError:
            raise SecretError("the secrets handed over on stdin are not a JSON object") from None
        if not isinstance(data, dict):
            raise SecretError("the secrets handed over on stdin are not a JSON object")
        _GIVEN = {str(k): str(v) for k, v in data.items() if isinstance(v, str) and v}
    return _GIVEN


_GIVEN: dict[str, str] | None = None


def load(path: str, only: set[str] | None = None) -> tuple[Profile, Secrets]:
    """The profile and its resolved secrets.  Raises :class:`ProfileError` for a broken profile, then
    :class:`InputsMissing` naming every missing key file, known_hosts file, environment variable and
    secret file at once (nobody is asked for an 'ask' secret before all the others are known to be there)."""
    profile = load_profile(path, check_files=False)
    problems = file_problems(profile)
    given = _given_secrets()
    try:
        Secrets.resolve_for(profile, prompt=_dry_prompt, given=given, only=only)
    except SecretError as exc:
        problems += exc.problems
    if problems:
        raise InputsMissing(path, problems)
    return profile, Secrets.resolve_for(profile, prompt=_prompt, given=given, only=only)


# -- subcommands ----------------------------------------------------------------------------------
def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


STATUS_STYLE = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]fail[/]", "skip": "[dim]-[/]"}


def cmd_check(args: argparse.Namespace) -> int:
    from wizard.checks import CLUSTER, planned, run_checks, worst

    profile, secrets = load(args.profile)
    done: list[str] = []

    def progress(r: object) -> None:
        done.append("")
        if not args.json and err_console.is_terminal:
            err_console.print(f"  {len(done)}/{total} checks", end="\r")

    total = len(planned(profile, args.only))
    results = run_checks(profile, secrets, only=args.only, on_result=progress)
    verdict = worst(results)
    if args.json:
        print(json.dumps({"verdict": verdict.value, "results": [r.to_dict() for r in results]}, indent=2))
        return EXIT_FAIL if verdict.value == "fail" else EXIT_OK
    # one row per check and one column per node: as many columns as nodes, so it fits 80 columns whatever the
    # number of checks (a column per check cut its headers at 120; newcomer finding)
    checks = list(dict.fromkeys(r.check for r in results))
    by_key = {(r.node, r.check): r for r in results}
    nodes = [n for n in [*(n.name for n in profile.nodes), CLUSTER] if any((n, c) in by_key for c in checks)]
    table = Table(title=f"Prerequisites of {profile.cluster_name}", title_justify="left")
    table.add_column("check")
    for node in nodes:
        table.add_column(node, justify="center")
    for check in checks:
        table.add_row(check, *(STATUS_STYLE[by_key[(n, check)].status.value] if (n, check) in by_key else ""
                               for n in nodes))
    console.print(table)
    for r in results:
        if r.status.value in ("fail", "warn"):
            style = "red" if r.status.value == "fail" else "yellow"
            console.print(f"[{style}]{r.status.value}[/] {r.node} / {r.title}: {r.summary}")
            if r.fix:
                console.print(f"     fix: {r.fix}")
    console.print(f"verdict: {STATUS_STYLE[verdict.value]}")
    return EXIT_FAIL if verdict.value == "fail" else EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    """Render without connecting anywhere: no key files needed; secrets only those the files embed
    (or none with --placeholders)."""
    from wizard.render import PLACEHOLDER_NOTE, placeholders_in, render_to_dir, rendered_secret_refs

    profile = load_profile(args.profile, check_files=False)
    secrets: Secrets | None = None
    if not args.placeholders:
        values: dict[str, str | None] = {}
        problems: list[str] = []
        for name, (ref, what) in rendered_secret_refs(profile).items():
            try:
                values[name] = resolve(ref, what, _dry_prompt)
            except SecretError as exc:
                problems += exc.problems
        if problems:
            raise InputsMissing(args.profile, problems, hint=(
                "or run `studio-cluster render --placeholders ...` to render every file now with marked "
                "placeholders such as <sst_password> in the secrets' place (for review, not for deploying)"))
        values = {name: resolve(ref, what, _prompt) for name, (ref, what) in rendered_secret_refs(profile).items()}
        secrets = Secrets(sst_password=values.get("sst_password"), admin_password=None, redis_password=None)
    out = Path(args.out)
    written = render_to_dir(profile, secrets, out)
    by_node: dict[str, list[Path]] = {}
    for path in written:
        by_node.setdefault(path.relative_to(out).parts[0], []).append(path)
    console.print(f"wrote {len(written)} files for {len(by_node)} targets ({', '.join(by_node)}) into {out}/:",
                  highlight=False)
    for paths in by_node.values():
        for path in paths:
            console.print(f"  {path.relative_to(out)}", highlight=False, markup=False)
    marked = [p for p in written if placeholders_in(p.read_text())]
    if secrets is None:
        console.print(f"[yellow]placeholders:[/] {len(marked)} of them hold placeholders instead of secrets "
                      f"({', '.join(sorted({m for p in marked for m in placeholders_in(p.read_text())}))}); "
                      f"{PLACEHOLDER_NOTE}", highlight=False)
        console.print(f"  listed in {out / 'PLACEHOLDERS'}", highlight=False)
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    from wizard.apply import plan_files
    from wizard.remote import Remote
    from wizard.render import DNS_NODE

    profile, secrets = load(args.profile)
    with Remote(profile, key_passphrases=secrets.key_passphrases) as remote:
        changes = plan_files(profile, secrets, remote)
    for change in changes:
        label = {"create": "[green]create[/]", "update": "[yellow]update[/]", "unchanged": "[dim]unchanged[/]"}
        console.print(f"{change.node:10} {label[change.action]:>20} {change.file.path}")
        if change.action != "unchanged" and args.diff:
            console.print(change.diff, markup=False, highlight=False)
    from wizard.render import authoring_record

    if profile.dns.api_url:
        from wizard.dnsapi import DnsApiError, plan_record

        try:
            record = plan_record(profile, secrets)
        except DnsApiError as exc:
            console.print(f"[bold red]{DNS_NODE}[/]: {exc.message}\n     fix: {exc.hint}", highlight=False)
            return EXIT_FAIL
        label = {"create": "[green]create[/]", "update": "[yellow]update[/]", "unchanged": "[dim]unchanged[/]"}
        console.print(f"{DNS_NODE:10} {label[record.action]:>20} {record.name} LUA in zone {record.zone} "
                      f"(PowerDNS API {profile.dns.api_url})", highlight=False)
        if record.action != "unchanged" and args.diff:
            console.print(record.diff, markup=False, highlight=False)
    else:
        console.print(f"\n[bold]{DNS_NODE}[/]: the authoring record for zone {profile.dns.record_zone}:")
        console.print(f"  {authoring_record(profile)}", markup=False)
    console.print("\n[bold]Bootstrap steps[/] (decided by the nodes through Redis):")
    from wizard.pipeline import bootstrap_steps

    for i, step in enumerate(bootstrap_steps(profile), 1):
        console.print(f"  {i}. {step}")
    return EXIT_OK


def _event_printer(e: object) -> None:
    from wizard.coordinator import Event

    assert isinstance(e, Event)
    colour = {"done": "green", "failed": "red", "waiting": "yellow", "skipped": "dim"}.get(e.state, "cyan")
    console.print(f"  [dim]{time.strftime('%H:%M:%S', time.localtime(e.ts))}[/] {e.node:9} "
                  f"[{colour}]{e.step}:{e.state}[/] {e.message}", highlight=False)


def _step_printer(step: str, state: str, message: str) -> None:
    colour = {"done": "green", "fail": "bold red", "skip": "dim"}.get(state, "bold cyan")
    console.print(f"[{colour}]{step:>9} {state}[/] {message}", highlight=False)


def _check_printer(r: object) -> None:
    from wizard.checks import CheckResult

    assert isinstance(r, CheckResult)
    if r.status.value != "ok":
        console.print(f"  {STATUS_STYLE[r.status.value]} {r.node}/{r.title}: {r.summary}", highlight=False)


def cmd_replay(args: argparse.Namespace) -> int:
    import uuid

    from wizard.hangup import go_on_after_hangup, quiet_on_loss
    from wizard.pipeline import Listener, PipelineError, new_runlog, replay

    profile, secrets = load(args.profile)
    runlog = new_runlog(args.run_dir)
    run_id = uuid.uuid4().hex[:12]

    def hangup() -> None:  # the terminal went away: the run goes on to its end (wizard.hangup says why)
        from wizard.coordinator import redis_client
        from wizard.run_history import RunRecorder

        runlog.record(run=run_id, note="the terminal hung up (SIGHUP): going on headless to the end of the run; "
                                       "this log and `studio-cluster status` tell how it ended", file_only=True)
        client = redis_client(profile, secrets, failover_wait_s=5.0)
        RunRecorder(client, profile, run_id).hangup()
        client.close()

    go_on_after_hangup(hangup)
    say = quiet_on_loss(console.print)
    listener = Listener(on_step=quiet_on_loss(_step_printer), on_check=quiet_on_loss(_check_printer),
                        on_event=quiet_on_loss(_event_printer),
                        on_file=quiet_on_loss(lambda c: console.print(f"  wrote {c.node}:{c.file.path}",
                                                                      highlight=False)))
    timeouts = {"wait_timeout": float(args.wait_timeout)}
    try:
        result = replay(profile, secrets, listener=listener, force=args.force_bootstrap,
                        skip_checks=args.skip_checks, runlog=runlog, timeouts=timeouts, run_id=run_id)
    except PipelineError as exc:
        runlog.record(run=run_id, result=f"failed at {exc.step}: {exc.message}", file_only=True)
        say(f"[bold red]{args.command or 'replay'} failed at {exc.step}:[/] {exc.message}", highlight=False)
        say(f"run log: {runlog.path}")
        return EXIT_FAIL
    runlog.record(run=run_id, result=f"healthy in {result.seconds:.1f}s", file_only=True)
    say(f"[bold green]cluster {profile.cluster_name} is healthy[/] in {result.seconds:.1f}s; run log: {runlog.path}")
    return EXIT_OK


def _last_run(profile: Profile, secrets: Secrets) -> RunSummary | None:
    """The last run's story for status (wizard.run_history.RunSummary), None when none or the store is down."""
    import redis

    from wizard.coordinator import redis_client
    from wizard.run_history import last_run

    client = redis_client(profile, secrets, failover_wait_s=2.0)
    try:
        return last_run(client, profile)
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()


def cmd_status(args: argparse.Namespace) -> int:
    from wizard.remote import Remote
    from wizard.status import collect

    profile, secrets = load(args.profile, only=READ_ONLY)
    with Remote(profile, key_passphrases=secrets.key_passphrases) as remote:
        st = collect(profile, secrets, remote, backups=True)
    run = _last_run(profile, secrets)
    if args.json:
        print(json.dumps({**st.to_dict(), "last_run": run.to_dict() if run is not None else None}, indent=2))
        return EXIT_OK if st.healthy else EXIT_FAIL
    table = Table(title=f"{profile.cluster_name}: {st.verdict}", title_justify="left")
    for col in ("node", "role", "address", "reachable", "status", "size", "state", "last committed", "heartbeat"):
        table.add_column(col)
    for n in st.nodes:
        hb = f"{n.heartbeat_age:.1f}s" if n.heartbeat_age is not None else "-"
        if n.role == "arbiter":
            state = "garbd member" if st.arbiter_member else ("garbd running" if n.process_running else "garbd down")
            table.add_row(n.name, n.role, n.address, "yes" if n.reachable else "no", "", "", state, "", hb)
        else:
            table.add_row(n.name, n.role, n.address, "yes" if n.reachable else f"no ({n.error})",
                          n.cluster_status or "-", str(n.size or "-"), n.state or ("down" if n.reachable else "?"),
                          str(n.last_committed) if n.last_committed >= 0 else "-", hb)
    console.print(table)
    console.print(f"authoring name {profile.dns.authoring_name} -> {', '.join(st.authoring_addresses) or 'no answer'}"
                  + (f" ({st.authoring_node})" if st.authoring_node else ""), highlight=False)
    from rich.text import Text  # reasons quote errors such as "[Errno 111]": text, not markup

    if st.authoring_problem:
        console.print(Text(st.authoring_problem, style="bold red"))
    if st.publisher:  # Crafter nodes: which node publishes (docs/crafter.md)
        from wizard.crafter.publisher import publisher_line

        console.print(Text("primary publisher -> " + publisher_line(st.publisher),
                           style="bold red" if st.publisher.get("error") else ""))
    colour = {"healthy": "green", "degraded": "yellow"}.get(st.verdict, "red")
    console.print(Text.assemble("verdict: ", (st.verdict, colour), f": {st.reason}"))
    _print_backups(st.backups)
    from wizard.tls.expiry import expiry_lines

    for line, warning in expiry_lines(st.tls_expiry, profile.tls.warn_days):
        console.print(Text(line, style="bold yellow" if warning else ""))
    for line in run.lines() if run is not None else []:
        console.print(Text(line))
    return EXIT_OK if st.healthy else EXIT_FAIL


def _print_backups(backups: dict[str, object] | None) -> None:
    """The backups line of ``status`` and a warning line each (warnings never change the verdict)."""
    from rich.text import Text

    from wizard.backups.health import BackupHealth

    if backups is None:
        return
    health = BackupHealth.from_dict(backups)
    console.print(Text(health.line(), style="" if health.known else "yellow"))
    for warning in health.warnings:
        console.print(Text.assemble(("warning", "yellow"), f": {warning}"))


def _monitor_usage(message: str) -> int:
    err_console.print(f"[red]error:[/] monitor {message}", markup=True, highlight=False)
    return EXIT_USAGE


def cmd_monitor(args: argparse.Namespace) -> int:
    """The monitor screen; headless (--headless, or --on-change) it prints events instead; --record
    keeps every poll in a file, --replay shows a recording instead of the cluster."""
    import shlex

    from wizard.monitor_record import RecordingError

    hook: list[str] | None = None
    if args.on_change is not None:
        try:
            hook = shlex.split(args.on_change)
        except ValueError as exc:
            return _monitor_usage(f"--on-change: {exc}; quote the command line, e.g. --on-change 'page-me --loud'")
        if not hook:
            return _monitor_usage("--on-change: the command is empty; give the command to run, e.g. "
                                  "--on-change 'logger cluster verdict changed'")
    if args.record and args.replay:
        return _monitor_usage("--record and --replay: choose one (a replay reads a recording, it does not make one)")
    if not args.replay and not args.profile:
        return _monitor_usage("needs the PROFILE of the cluster to watch, or --replay FILE")
    if args.interval <= 0:
        return _monitor_usage(f"--interval {args.interval:g}: give a number of seconds above 0, e.g. 2")
    record = Path(args.record) if args.record else None
    replay = Path(args.replay) if args.replay else None
    try:
        if args.headless or hook is not None:
            return _monitor_headless(args, record, replay, hook)
    except RecordingError as exc:
        return _monitor_usage(str(exc))
    if record is None and replay is None:
        from wizard.tui.app import run_app

        return run_app(Path(args.profile), monitor=True, interval=args.interval)
    from wizard.tui.screens.monitor import run_monitor

    return run_monitor(Path(args.profile) if args.profile else None, args.interval, record=record, replay=replay)


def _monitor_headless(args: argparse.Namespace, record: Path | None, replay: Path | None,
                      hook: list[str] | None) -> int:
    import threading

    from wizard.cluster_events import HistoryEvent
    from wizard.monitor_record import Recorder, live_frames, read_frames, watch

    def out(ev: HistoryEvent) -> None:
        console.print(f"{time.strftime('%H:%M:%S', time.localtime(ev.ts))} {ev.text}", markup=False,
                      highlight=False)

    if replay is not None:
        seen = watch(read_frames(replay), on_change=hook, out=out)
        console.print(f"verdicts: {' -> '.join(seen) or 'none recorded'}", markup=False, highlight=False)
        return EXIT_OK
    from wizard.remote import Remote
    from wizard.status import collect

    profile, secrets = load(args.profile, only=READ_ONLY)
    recorder = Recorder(record, profile.cluster_name) if record is not None else None
    timeout = max(2.0, min(10.0, args.interval * 2))
    try:
        with Remote(profile, key_passphrases=secrets.key_passphrases) as remote:
            frames = live_frames(lambda: collect(profile, secrets, remote, timeout=timeout), args.interval,
                                 threading.Event(), args.polls)
            watch(frames, recorder=recorder, on_change=hook, out=out)
    finally:
        if recorder is not None:
            recorder.close()
    return EXIT_OK


def _backup_take(profile: Profile, secrets: Secrets, remote: object, args: argparse.Namespace) -> int:
    from wizard.backups.catalog import human_size
    from wizard.backups.take import Progress, take
    from wizard.remote import Remote

    assert isinstance(remote, Remote)
    show = not args.json and err_console.is_terminal

    def progress(p: Progress) -> None:
        if show:
            err_console.print(f"  {p.state:10} {human_size(p.bytes):>10}  {human_size(p.rate)}/s  {p.seconds:5.1f}s",
                              end="\r", highlight=False)

    def note(message: str) -> None:
        if not args.json:
            console.print(f"  {message}", highlight=False)

    result = take(profile, secrets, remote, donor=args.donor, on_progress=progress, on_note=note)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return EXIT_OK
    m = result.manifest
    pos = m.get("position", {})
    rate = m.get("stream_bytes", 0) / result.seconds if result.seconds else 0
    console.print(f"[green]backup {result.id} complete[/]: {human_size(m.get('size', 0))} in {result.seconds:.1f}s "
                  f"({human_size(rate)}/s) from {result.donor}, position {pos.get('uuid')}:{pos.get('seqno')}",
                  highlight=False)
    console.print(f"  stored at {profile.arbiter.name}:{result.path}", highlight=False)
    content = m.get("content")
    if isinstance(content, dict):
        repos = content.get("repos") or []
        console.print(f"  with Crafter's content: {len(repos)} repositor{'y' if len(repos) == 1 else 'ies'} "
                      f"({', '.join(repos)}; {human_size(content.get('size') or 0)}) from {result.donor}",
                      highlight=False)
    if result.synced_after_s is not None:
        console.print(f"  {result.donor} was Synced again {result.synced_after_s:.1f}s after the backup",
                      highlight=False)
    for n in result.notes:
        console.print(f"  [yellow]{n}[/]", highlight=False)
    return EXIT_OK


def _backup_list(profile: Profile, remote: object, args: argparse.Namespace) -> int:
    from wizard.backups import BackupError
    from wizard.backups.catalog import human_age, human_size, list_backups, short_position
    from wizard.backups.restore import history_breaks, read_history
    from wizard.remote import Remote

    assert isinstance(remote, Remote)
    entries = list_backups(profile, remote)
    try:
        history = read_history(profile, remote)
    except BackupError:
        history = []
    older = {e.id: brk for e in entries if (brk := history_breaks(history, e.id, e.time)) is not None}
    if args.json:
        print(json.dumps([{**e.to_dict(), "before_restore": older.get(e.id)} for e in entries], indent=2))
        return EXIT_OK
    table = Table(title=f"Backups of {profile.cluster_name} on {profile.arbiter.name}:{profile.backups.root}",
                  title_justify="left")
    for col in ("id", "state", "age", "size", "donor", "position", "content", "note"):
        table.add_column(col, no_wrap=col in ("id", "position"),  # --id needs it whole; the seqno tells them apart
                         min_width=24 if col == "id" else None)
    colour = {"verified": "green", "complete": "cyan", "verify failed": "red", "failed": "red",
              "in progress": "yellow"}
    for e in reversed(entries):
        names = [n.rsplit("/", 1)[-1] for n in e.content_names or []]
        content = ("-" if e.content_repos is None else ", ".join(names) if names and len(names) <= 3
                   else f"{e.content_repos} repo{'' if e.content_repos == 1 else 's'}")
        brk = older.get(e.id)
        why = e.reason
        if brk is not None and "unreadable" not in brk:
            why = "; ".join(x for x in (why, f"an older history: before the restore of {brk.get('backup')} "
                                              f"{human_age(time.time() - float(brk.get('time') or 0))} ago "
                                              "(restore --to cannot continue it)") if x)
        table.add_row(e.id, f"[{colour.get(e.state, 'white')}]{e.state}[/]", human_age(e.age_s), human_size(e.size),
                      e.donor, short_position(e.position), content, why)
    console.print(table)
    if not entries:
        console.print("no backups yet: take one with `studio-cluster backup take PROFILE`")
    return EXIT_OK


def _backup_verify(profile: Profile, remote: object, args: argparse.Namespace) -> int:
    from wizard.backups.verify import verify
    from wizard.remote import Remote

    assert isinstance(remote, Remote)
    def started(bid: str) -> None:
        if not args.json:
            console.print(f"  {bid}: preparing a copy and checking every table on a throwaway server (no network)...",
                          highlight=False)

    result = verify(profile, remote, args.id, on_start=started)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return EXIT_OK if result.ok else EXIT_FAIL
    pos = result.data_position or result.position
    console.print(f"{result.id}: position {pos.get('uuid')}:{pos.get('seqno')}", highlight=False)
    shown = [t for t in result.tables if t["schema"] not in ("mysql", "sys") or not t["ok"]]
    if shown:  # the user tables, and any system table that failed its check
        table = Table()
        for col in ("schema", "table", "rows", "check"):
            table.add_column(col)
        for t in shown:
            table.add_row(t["schema"], t["table"], str(t["rows"]), t["check"])
        console.print(table)
    steps = ", ".join(f"{k} {v:.1f}s" for k, v in result.steps.items())
    colour = "green" if result.ok else "bold red"
    console.print(f"[{colour}]{'verified' if result.ok else 'verify FAILED'}[/]: {result.summary} "
                  f"({result.seconds:.1f}s: {steps})", highlight=False)
    return EXIT_OK if result.ok else EXIT_FAIL


def _backup_prune(profile: Profile, remote: object, args: argparse.Namespace) -> int:
    import time as _time

    from wizard.backups.catalog import list_backups
    from wizard.backups.prune import remove, select
    from wizard.remote import Remote

    assert isinstance(remote, Remote)
    entries = list_backups(profile, remote)
    keep_last = args.keep_last if args.keep_last is not None else profile.backups.keep_last
    keep_days = args.keep_days if args.keep_days is not None else profile.backups.keep_days
    decisions = select(entries, keep_last, keep_days, _time.time())
    gone = [] if args.dry_run else remove(profile, remote, entries, decisions)
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, "removed": gone,
                          "decisions": [d.__dict__ for d in decisions]}, indent=2))
        return EXIT_OK
    for d in decisions:
        verb = "keep  " if d.keep else ("would remove" if args.dry_run else "removed")
        console.print(f"  {verb} {d.id}: {d.why}", highlight=False)
    return EXIT_OK


def _backup_restore(profile: Profile, secrets: Secrets, remote: object, args: argparse.Namespace) -> int:
    from wizard.backups.restore import restore
    from wizard.remote import Remote

    assert isinstance(remote, Remote)
    names = [n.name for n in profile.studio_nodes]
    if args.onto is not None and args.onto not in names:
        err_console.print(f"--onto {args.onto!r} is not a Studio node of {profile.cluster_name}: use one of "
                          f"{', '.join(names)}", highlight=False)
        return EXIT_USAGE
    to = None
    if args.to is not None:
        from wizard.backups.pitr import parse_time

        try:
            to = parse_time(args.to)
        except ValueError as exc:
            err_console.print(str(exc), highlight=False)
            return EXIT_USAGE
    if not args.yes:
        err_console.print(
            f"restore replaces the data of every data node of {profile.cluster_name} "
            f"({', '.join(n.name for n in profile.studio_nodes)}) with backup "
            f"{args.id or '(the newest complete one)'}; "
            f"each current {profile.database.data_dir} is kept as <datadir>.pre-restore-<time>-<node>. "
            "Every data node's mariadbd must be stopped. Run again with --yes to go ahead.", highlight=False)
        return EXIT_USAGE

    def note(message: str) -> None:
        if not args.json:
            console.print(f"  {message}", highlight=False)

    result = restore(profile, secrets, remote, args.id, target=args.onto, on_note=note, to=to)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return EXIT_OK
    pos = result.position or {}
    console.print(f"[green]restored {result.id} onto {result.target}[/] (position {pos.get('uuid')}:{pos.get('seqno')}"
                  f"); the cluster runs from it (the whole restore took {result.seconds:.1f}s)", highlight=False)
    for node, path in result.kept.items():
        console.print(f"  {node}: the former datadir is kept at {path} (delete it once satisfied)", highlight=False)
    if result.pitr and result.pitr.get("applied"):
        done = result.pitr["applied"]
        console.print(f"  replayed {done.get('applied')} transactions of {result.pitr['plan']['source']}'s binary logs "
                      f"up to {result.pitr['plan']['stop']} UTC (the last: {done.get('last')})", highlight=False)
    for n in result.notes:
        console.print(f"  [yellow]{n}[/]", highlight=False)
    return EXIT_OK


BACKUP_OPTIONS = {"donor": ("--donor", ("take",)), "id": ("--id", ("verify", "restore")),
                  "onto": ("--onto", ("restore",)), "to": ("--to", ("restore",)), "yes": ("--yes", ("restore",)),
                  "keep_last": ("--keep-last", ("prune",)), "keep_days": ("--keep-days", ("prune",)),
                  "dry_run": ("--dry-run", ("prune",))}
"""``backup`` options by their argparse dest: (the option, the actions it applies to)."""


def misapplied_backup_options(args: argparse.Namespace) -> list[str]:
    """``backup`` options given to an action they do not apply to (``backup list --donor X``), each as "--donor
    applies to take only"; pure."""
    out = []
    for dest, (option, actions) in BACKUP_OPTIONS.items():
        value = getattr(args, dest, None)
        if value not in (None, False) and args.action not in actions:
            out.append(f"{option} applies to {' and '.join(actions)} only")
    return out


def cmd_backup(args: argparse.Namespace) -> int:
    from wizard.backups import BackupError
    from wizard.remote import Remote, RemoteError

    wrong = misapplied_backup_options(args)
    if wrong:
        err_console.print(f"backup {args.action}: " + "; ".join(wrong) + " (nothing was done)", highlight=False)
        return EXIT_USAGE
    profile, secrets = load(args.profile, only=None if args.action == "restore" else READ_ONLY)
    try:
        with Remote(profile, key_passphrases=secrets.key_passphrases) as remote:
            if args.action == "restore":
                return _backup_restore(profile, secrets, remote, args)
            if args.action == "take":
                return _backup_take(profile, secrets, remote, args)
            if args.action == "list":
                return _backup_list(profile, remote, args)
            if args.action == "verify":
                return _backup_verify(profile, remote, args)
            return _backup_prune(profile, remote, args)
    except BackupError as exc:
        if args.json:
            print(json.dumps({"error": REDACTOR(exc.message), "hint": exc.hint, "log": exc.log}, indent=2))
        else:
            err_console.print(f"[bold red]backup {args.action} failed:[/] {REDACTOR(exc.message)}", highlight=False)
            if exc.hint:
                err_console.print(f"     fix: {exc.hint}", highlight=False)
            for line in exc.log:
                err_console.print(f"     | {REDACTOR(line)}", markup=False, highlight=False)
        return EXIT_FAIL
    except RemoteError as exc:
        err_console.print(f"[bold red]backup {args.action} failed:[/] {exc}", highlight=False)
        return EXIT_FAIL


def cmd_lab(args: argparse.Namespace) -> int:
    if args.kind == "systemd":
        from wizard import labsystemd

        return labsystemd.main([args.action])
    if args.action == "base":
        err_console.print("[red]error:[/] `lab base` builds the systemd hosts' rootfs: add --kind systemd")
        return EXIT_USAGE
    from wizard import lab

    if args.action in ("stop-studio", "start-studio"):
        from wizard.lab import studio_standin

        if args.node not in studio_standin.studio_hosts():
            err_console.print(f"[red]error:[/] `lab {args.action}` needs a Studio host: one of "
                              f"{', '.join(studio_standin.studio_hosts())}")
            return EXIT_USAGE
        try:
            (studio_standin.stop_studio if args.action == "stop-studio" else studio_standin.start_studio)(args.node)
        except lab.LabError as exc:
            err_console.print(f"[red]error:[/] {exc}")
            return EXIT_FAIL
        console.print(f"stand-in Studio on {args.node} {'stopped' if args.action == 'stop-studio' else 'started'}")
        return EXIT_OK

    return lab.main([args.action])


def cmd_k8s(args: argparse.Namespace) -> int:
    """The same cluster as Kubernetes manifests (wizard.k8s): YAML files in --out, or one JSON List with --json.
    Connects nowhere and resolves no secret: the manifests reference the Secret by name."""
    from wizard.k8s.manifests import manifests, next_steps, to_json, write
    from wizard.k8s.tls import write_material
    from wizard.k8s.topology import K8sError

    profile = load_profile(args.profile, check_files=False)
    try:
        if args.json:
            sys.stdout.write(to_json(manifests(profile)))
            return EXIT_OK
        done = write(profile, Path(args.out))
        tls_commands = write_material(profile, Path(args.out), Path(args.tls_dir) if args.tls_dir else None)
    except K8sError as exc:
        err_console.print(f"[red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        return EXIT_USAGE
    for path in done.written:
        console.print(f"  wrote {path}", highlight=False, soft_wrap=True)
    for path in done.removed:
        console.print(f"  removed {path} (an earlier render's, no longer rendered)", highlight=False, soft_wrap=True)
    console.print("then, in this order (docs/kubernetes.md):", highlight=False, soft_wrap=True)
    for line in next_steps(profile, args.out, tls_commands):
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    return EXIT_OK


def _whole_number(low: int, high: int, why: str = "") -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``low`` to ``high``, else a usage error (exit 2) saying the range
    and ``why`` (the same bounds as the profile's field)."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = low - 1
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number from {low} to {high}"
                                             + (f" ({why})" if why else ""))
        return number

    return parse


def _out_dir(value: str) -> str:
    """argparse type of ``k8s render --out``: a non-empty directory path."""
    if not value.strip():
        raise argparse.ArgumentTypeError("an empty --out would be the current directory: give a directory, e.g. "
                                         "--out manifests/ (or --out . if you mean it)")
    return value


def cmd_tls(args: argparse.Namespace) -> int:
    """``tls rotate-ca PROFILE``: rotate the generated CA without downtime (wizard.tls.rotate)."""
    from wizard.pipeline import PipelineError, new_runlog
    from wizard.tls.material import TLSError
    from wizard.tls.rotate import rotate_ca

    profile, secrets = load(args.profile)
    runlog = new_runlog(args.run_dir)
    try:
        rotate_ca(profile, secrets, progress=lambda m: console.print(f"CA rotation {m}", highlight=False),
                  runlog=runlog)
    except (TLSError, PipelineError) as exc:
        err_console.print(f"[red]error:[/] {REDACTOR(str(exc))}", markup=True, highlight=False)
        err_console.print(f"run log: {runlog.path}", highlight=False)
        return EXIT_FAIL
    console.print(f"CA rotation done: every node trusts and uses the new CA only; run log: {runlog.path}",
                  highlight=False)
    return EXIT_OK


def cmd_sudoers(args: argparse.Namespace) -> int:
    """``sudoers PROFILE [--installer FILE]``: the sudoers rule that lets the SSH user run only the agent, and the
    root-run installer of this version of the agent (wizard.sudoers).  Connects nowhere, resolves no secret."""
    from wizard.sudoers import SUDOERS_FILE, installer_script, not_in_agent_scope, rules

    profile = load_profile(args.profile, check_files=False)
    found = rules(profile)
    if not found:
        console.print("every node is reached as root: no sudoers rule is needed", highlight=False)
    for rule in found:
        console.print(f"# {SUDOERS_FILE} on {', '.join(rule.nodes)} (edit with visudo -f {SUDOERS_FILE}):",
                      highlight=False, soft_wrap=True)
        console.print(rule.line, highlight=False, soft_wrap=True, markup=False)
    if args.installer:
        out = Path(args.installer)
        if out.is_dir():
            err_console.print(f"[red]error:[/] --installer {out} is a directory: give a file name, e.g. "
                              f"--installer {out / 'install-agent.sh'}", markup=True, highlight=False)
            return EXIT_USAGE
        if not out.parent.is_dir():
            err_console.print(f"[red]error:[/] --installer {out}: the directory {out.parent} does not exist; "
                              "create it or write the installer elsewhere", markup=True, highlight=False)
            return EXIT_USAGE
        from wizard.profile import atomic_write

        atomic_write(out, installer_script(), mode=0o755)
        console.print(f"wrote {out}: run it as root on each node (sh {out.name} --rule USER also writes the rule); "
                      "again after each studio-cluster upgrade", highlight=False, soft_wrap=True)
    elif found:
        console.print("the agent this rule allows must be installed by root: write its installer with --installer FILE",
                      highlight=False, soft_wrap=True)
    ignored = [n.name for n in profile.nodes if n.ssh.user == "root" and n.ssh.sudo_scope == "agent"]
    if ignored:
        console.print(f"note: {', '.join(ignored)} log in as root: sudo_scope: agent is ignored there (no sudo)",
                      highlight=False, soft_wrap=True)
    left = not_in_agent_scope(profile)
    if left:
        console.print(f"then set ssh.sudo: true and ssh.sudo_scope: agent for {', '.join(left)} in {args.profile}",
                      highlight=False, soft_wrap=True)
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "schema": cmd_schema,
    "check": cmd_check,
    "lab": cmd_lab,
    "render": cmd_render,
    "plan": cmd_plan,
    "replay": cmd_replay,
    "recover": cmd_replay,
    "status": cmd_status,
    "monitor": cmd_monitor,
    "backup": cmd_backup,
    "k8s": cmd_k8s,
    "tls": cmd_tls,
    "sudoers": cmd_sudoers,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio-cluster",
        description="Stand up and run a highly available Crafter Studio cluster (Galera + Arbiter).",
    )
    parser.add_argument("--profile", help="open the wizard with this profile loaded")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("schema", help="print the profile JSON Schema (for editors)")
    p = sub.add_parser("check", help="run every prerequisite check on every node")
    p.add_argument("profile")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--only", action="append", metavar="CHECK", help="run only this check (repeatable)")
    p = sub.add_parser("render", help="write every file each node gets into a directory")
    p.add_argument("profile")
    p.add_argument("--out", required=True, help="directory to write <node>/<path> into")
    p.add_argument("--placeholders", action="store_true",
                   help="render without secrets: each secret becomes a marked placeholder such as <sst_password> "
                        "(for review; the files cannot be deployed as they are)")
    p = sub.add_parser("plan", help="show per node what would change, and the bootstrap steps; changes nothing")
    p.add_argument("profile")
    p.add_argument("--no-diff", dest="diff", action="store_false", help="list files without diffs")
    for name, text in (("replay", "check, apply, bootstrap and verify, headless"),
                       ("recover", "bring a cluster back after an outage (the same pipeline as replay)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("profile")
        p.add_argument("--force-bootstrap", metavar="NODE",
                       help="bootstrap NODE whatever the others hold (the way out of a refusal; says what it loses)")
        p.add_argument("--skip-checks", action="store_true", help="skip the prerequisite checks")
        p.add_argument("--wait-timeout", type=float, default=60, help="seconds to wait for every node to register")
        p.add_argument("--run-dir", default="runs", help="where the run log goes (default: runs/)")
    p = sub.add_parser("status", help="the cluster's membership and health; exit 0 only when healthy")
    p.add_argument("profile")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("monitor", help="the live cluster monitor")
    p.add_argument("profile", nargs="?", help="the cluster's profile (not needed with --replay)")
    p.add_argument("--interval", type=float, default=2.0, help="refresh interval in seconds")
    p.add_argument("--record", metavar="FILE", help="keep every poll and event in this SQLite file (appends)")
    p.add_argument("--replay", metavar="FILE", help="show a recording instead of polling the cluster")
    p.add_argument("--on-change", metavar="CMD",
                   help="headless: run CMD (split like a shell would, no shell) when the verdict changes, "
                        "with STUDIO_CLUSTER_VERDICT and STUDIO_CLUSTER_PREVIOUS in its environment")
    p.add_argument("--headless", action="store_true", help="no screen: print events as lines (until Ctrl-C)")
    p.add_argument("--polls", type=int, metavar="N", help="headless: stop after N polls")
    p = sub.add_parser("backup", help="Arbiter snapshot backups: take, list, verify, prune, restore")
    p.add_argument("action", choices=["take", "list", "verify", "prune", "restore"])
    p.add_argument("profile")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--donor", metavar="NODE",
                   help="take: the data node to copy (default: the one the authoring name does not point at)")
    p.add_argument("--id", metavar="BACKUP",
                   help="verify, restore: the backup id or a unique prefix (default: the newest complete one)")
    p.add_argument("--onto", metavar="NODE", help="restore: the data node that gets the backup (default: its donor)")
    p.add_argument("--to", metavar="TIME",
                   help="restore: then replay the binary logs up to TIME: ISO-8601 with a UTC offset "
                        "(2026-11-30T21:12:33Z) or a local time said so ('2026-11-30 22:12:33 local')")
    p.add_argument("--yes", action="store_true",
                   help="restore: go ahead (every data node's datadir is replaced; the current one is kept aside)")
    p.add_argument("--keep-last", type=_whole_number(1, 10000, "prune never removes every backup"), metavar="N",
                   help="prune: keep the newest N complete backups, 1-10000 (default: backups.keep_last)")
    p.add_argument("--keep-days", type=_whole_number(0, 36500, "0: no age rule"), metavar="D",
                   help="prune: also keep every backup younger than D whole days, 0-36500 (default: "
                        "backups.keep_days)")
    p.add_argument("--dry-run", action="store_true", help="prune: only say what would be removed")
    p = sub.add_parser("k8s", help="the same cluster as Kubernetes manifests (docs/kubernetes.md)",
                       description="The same cluster as Kubernetes manifests (docs/kubernetes.md).")
    k8s_sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = k8s_sub.add_parser("render", help="render the manifests of a profile",
                           description="Render the manifests of PROFILE: one YAML file per object into --out DIR, "
                                       "or one JSON List on stdout with --json. Connects nowhere; secrets are "
                                       "referenced by the Secret's name, never rendered.")
    p.add_argument("profile", metavar="PROFILE", help="the profile (its kubernetes section is optional)")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", metavar="DIR", type=_out_dir,
                     help="write one YAML file per object into DIR (created); files an earlier render wrote there "
                          "are replaced or removed, no other file is touched; then kubectl apply --server-side -f DIR")
    out.add_argument("--json", action="store_true",
                     help="print every object as one JSON List (kubectl apply --server-side -f - reads it)")
    p.add_argument("--tls-dir", metavar="DIR",
                   help="with tls.enabled and --out: where the TLS Secrets' files are made (0700; default: "
                        "<out>-tls beside --out, never inside it)")
    p = sub.add_parser("tls", help="TLS between the nodes: rotate-ca rotates the generated CA without downtime")
    p.add_argument("action", choices=["rotate-ca"])
    p.add_argument("profile")
    p.add_argument("--run-dir", default="runs", help="where the run log goes (default: runs/)")
    p = sub.add_parser("sudoers", help="the sudoers rule that allows the SSH user only the agent, and its installer",
                       description="Print the one sudoers rule per SSH user that lets it run only the studio-cluster "
                                   "agent as root (ssh.sudo_scope: agent); --installer writes the script root runs "
                                   "on each node to install this version of the agent. docs/least-privilege.md")
    p.add_argument("profile")
    p.add_argument("--installer", metavar="FILE", help="write the agent's installer (a shell script) to FILE")
    p = sub.add_parser("lab", help="the local three-host lab")
    p.add_argument("action", choices=["up", "down", "status", "base", "stop-studio", "start-studio"],
                   help="stop-studio/start-studio NODE: the stand-in Crafter Studio on a Studio host (its health "
                        "endpoint then answers 503, and the authoring name moves)")
    p.add_argument("node", nargs="?", help="with stop-studio/start-studio: the Studio host, e.g. studio1")
    p.add_argument("--kind", choices=["namespace", "systemd"], default="namespace",
                   help="namespace hosts (default, fast) or systemd-nspawn hosts that boot systemd")
    for name in CONNECTING:
        sub.choices[name].add_argument(
            "--accept-host-key", action="append", metavar="NODE=SHA256:...", default=[],
            help="record NODE's host key in its known_hosts first, only if it offers this fingerprint (the one a "
                 "refusal printed, compared with the host itself); repeatable")
    return parser


CONNECTING = ("check", "plan", "replay", "recover", "status", "monitor", "backup")
"""The commands that connect to the nodes, and so take --accept-host-key."""


def _accept_host_keys(args: argparse.Namespace) -> int | None:
    """--accept-host-key before the command runs: None to go on, or an exit code.  A key that is not the
    given one raises wizard.remote.HostKeyError (main reports it; nothing was written)."""
    from wizard.host_key_accept import AcceptUsageError, accept_host_keys, parse_accepts

    if not getattr(args, "profile", None):
        err_console.print("[red]error:[/] --accept-host-key needs a profile (it names the nodes and known_hosts)")
        return EXIT_USAGE
    profile = load_profile(args.profile, check_files=False)
    try:
        accepts = parse_accepts(args.accept_host_key, profile)
    except AcceptUsageError as exc:
        err_console.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        return EXIT_USAGE
    accept_host_keys(profile, accepts, say=lambda line: err_console.print(line, markup=False, highlight=False))
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from wizard.tui.app import run_app

            return run_app(Path(args.profile) if args.profile else None)
        if getattr(args, "accept_host_key", None):
            code = _accept_host_keys(args)
            if code is not None:
                return code
        return COMMANDS[args.command](args)
    except (ProfileError, SecretError) as exc:
        err_console.print(f"[red]error:[/] {REDACTOR(str(exc))}", markup=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except BrokenPipeError:  # `studio-cluster schema | head`: the reader left; nothing to say
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (no flush error at exit)
        return EXIT_OK
    except Exception as exc:  # the last line of defence: a message, not a traceback (unless asked for)
        if os.environ.get("STUDIO_CLUSTER_DEBUG"):
            raise
        remote = sys.modules.get("wizard.remote")  # loaded only by commands that connect
        if remote is not None and isinstance(exc, remote.RemoteError):
            # a node that cannot be reached is the cluster's state, not a bug of ours
            err_console.print(f"[red]error:[/] {REDACTOR(exc.node)}: {REDACTOR(exc.message)}", markup=True,
                              highlight=False)
            if exc.hint:
                err_console.print(f"     fix: {REDACTOR(exc.hint)}", highlight=False)
            return EXIT_FAIL
        err_console.print(f"[red]error:[/] {type(exc).__name__}: {REDACTOR(str(exc))}", markup=True)
        err_console.print("run again with STUDIO_CLUSTER_DEBUG=1 for the traceback, and report it")
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
