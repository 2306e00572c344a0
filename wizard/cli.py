"""Command line: one small function per subcommand; parsing, output and exit codes only.

Exit codes: 0 success, 1 the job ran and found a failure, 2 bad input (profile, secret, usage).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from wizard.profile import Profile, ProfileError, json_schema, load_profile
from wizard.secrets import REDACTOR, SecretError, Secrets

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _prompt(what: str) -> str:
    if not sys.stdin.isatty():
        raise SecretError(f"{what} is set to 'ask' but there is no terminal to ask on; use env:NAME instead")
    return getpass.getpass(f"{what}: ")


READ_ONLY = {"admin_password", "redis_password"}  # what status needs: never the SST password


def load(path: str, only: set[str] | None = None) -> tuple[Profile, Secrets]:
    profile = load_profile(path)
    return profile, Secrets.resolve_for(profile, prompt=_prompt, only=only)


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
    checks = list(dict.fromkeys((r.check, r.check) for r in results))  # ids: short enough for 80 columns
    rows = [n.name for n in profile.nodes] + [CLUSTER]
    table = Table(title=f"Prerequisites of {profile.cluster_name}", title_justify="left")
    table.add_column("node")
    for _, title in checks:
        table.add_column(title, justify="center")
    by_key = {(r.node, r.check): r for r in results}
    for row in rows:
        cells = [STATUS_STYLE[by_key[(row, c)].status.value] if (row, c) in by_key else "" for c, _ in checks]
        if any(cells):
            table.add_row(row, *cells)
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
    from wizard.render import render_to_dir

    profile, secrets = load(args.profile)
    for path in render_to_dir(profile, secrets, Path(args.out)):
        console.print(str(path))
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
    from wizard.pipeline import Listener, PipelineError, new_runlog, replay

    profile, secrets = load(args.profile)
    runlog = new_runlog(args.run_dir)
    listener = Listener(on_step=_step_printer, on_check=_check_printer, on_event=_event_printer,
                        on_file=lambda c: console.print(f"  wrote {c.node}:{c.file.path}", highlight=False))
    timeouts = {"wait_timeout": float(args.wait_timeout)}
    try:
        result = replay(profile, secrets, listener=listener, force=args.force_bootstrap,
                        skip_checks=args.skip_checks, runlog=runlog, timeouts=timeouts)
    except PipelineError as exc:
        console.print(f"[bold red]{args.command or 'replay'} failed at {exc.step}:[/] {exc.message}", highlight=False)
        console.print(f"run log: {runlog.path}")
        return EXIT_FAIL
    console.print(f"[bold green]cluster {profile.cluster_name} is healthy[/] in {result.seconds:.1f}s; "
                  f"run log: {runlog.path}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from wizard.remote import Remote
    from wizard.status import collect

    profile, secrets = load(args.profile, only=READ_ONLY)
    with Remote(profile, key_passphrases=secrets.key_passphrases) as remote:
        st = collect(profile, secrets, remote)
    if args.json:
        print(json.dumps(st.to_dict(), indent=2))
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
                  + (f" ({st.authoring_node})" if st.authoring_node else ""))
    colour = {"healthy": "green", "degraded": "yellow"}.get(st.verdict, "red")
    console.print(f"verdict: [{colour}]{st.verdict}[/]: {st.reason}", highlight=False)
    return EXIT_OK if st.healthy else EXIT_FAIL


def cmd_monitor(args: argparse.Namespace) -> int:
    from wizard.tui.app import run_app

    return run_app(Path(args.profile), monitor=True, interval=args.interval)


def cmd_lab(args: argparse.Namespace) -> int:
    if args.kind == "systemd":
        from wizard import labsystemd

        return labsystemd.main([args.action])
    if args.action == "base":
        err_console.print("[red]error:[/] `lab base` builds the systemd hosts' rootfs: add --kind systemd")
        return EXIT_USAGE
    from wizard import lab

    return lab.main([args.action])


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
    p.add_argument("profile")
    p.add_argument("--interval", type=float, default=2.0, help="refresh interval in seconds")
    p = sub.add_parser("lab", help="the local three-host lab")
    p.add_argument("action", choices=["up", "down", "status", "base"])
    p.add_argument("--kind", choices=["namespace", "systemd"], default="namespace",
                   help="namespace hosts (default, fast) or systemd-nspawn hosts that boot systemd")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from wizard.tui.app import run_app

            return run_app(Path(args.profile) if args.profile else None)
        return COMMANDS[args.command](args)
    except (ProfileError, SecretError) as exc:
        err_console.print(f"[red]error:[/] {REDACTOR(str(exc))}", markup=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception as exc:  # the last line of defence: a message, not a traceback (unless asked for)
        if os.environ.get("STUDIO_CLUSTER_DEBUG"):
            raise
        err_console.print(f"[red]error:[/] {type(exc).__name__}: {REDACTOR(str(exc))}", markup=True)
        err_console.print("run again with STUDIO_CLUSTER_DEBUG=1 for the traceback, and report it")
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
