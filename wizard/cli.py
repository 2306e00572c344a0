"""Command line: one small function per subcommand; parsing, output and exit codes only.

Exit codes: 0 success, 1 the job ran and found a failure, 2 bad input (profile, secret, usage).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from wizard.profile import Profile, ProfileError, json_schema, load_profile
from wizard.secrets import REDACTOR, SecretError, Secrets

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _prompt(what: str) -> str:
    if not sys.stdin.isatty():
        raise SecretError(f"{what} is set to 'ask' but there is no terminal to ask on; use env:NAME instead")
    return getpass.getpass(f"{what}: ")


def load(path: str) -> tuple[Profile, Secrets]:
    profile = load_profile(path)
    return profile, Secrets.resolve_for(profile, prompt=_prompt)


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
        if not args.json:
            err_console.print(f"  {len(done)}/{total} checks", end="\r")

    total = len(planned(profile, args.only))
    results = run_checks(profile, secrets, only=args.only, on_result=progress)
    verdict = worst(results)
    if args.json:
        print(json.dumps({"verdict": verdict.value, "results": [r.to_dict() for r in results]}, indent=2))
        return EXIT_FAIL if verdict.value == "fail" else EXIT_OK
    checks = list(dict.fromkeys((r.check, r.title) for r in results))
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


def cmd_lab(args: argparse.Namespace) -> int:
    from wizard import lab

    return lab.main([args.action])


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "schema": cmd_schema,
    "check": cmd_check,
    "lab": cmd_lab,
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
    p = sub.add_parser("lab", help="the local three-host lab")
    p.add_argument("action", choices=["up", "down", "status"])
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


if __name__ == "__main__":
    sys.exit(main())
