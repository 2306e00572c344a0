"""Benchmark: `check` on the three lab nodes against `check` on one node, in one run, as a ratio.

Both are the runner's call the CLI makes (``run_checks``: a fresh SSH connection per node, every check family,
results as they finish), timed around it.  The one-node run plans the node-scoped checks of studio1 only (no
cluster-scoped check: they compare nodes), so its network check, whose peers then listen nowhere, fails fast:
tolerated there; the three-node run plans every check and must pass entirely.  They alternate; the lab is
brought up once (``--fresh``: down first), no cluster formed.

    flock /tmp/studio-lab.lock .venv/bin/python bench/checks.py [--rounds N] [--out docs/bench-checks.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wizard import lab  # noqa: E402
from wizard.checks import runner  # noqa: E402
from wizard.checks.base import CLUSTER, Check, CheckResult, Status  # noqa: E402
from wizard.profile import Profile, load_profile  # noqa: E402
from wizard.secrets import Secrets  # noqa: E402

ALL_PLANNED = runner.planned
ONE = "studio1"
NOTES = "<!-- notes: kept by bench/checks.py -->"


def only_one(profile: Profile, only: Iterable[str] | None = None) -> list[tuple[Check, str]]:
    return [(c, n) for c, n in ALL_PLANNED(profile, only) if n == ONE]


def node_checks(profile: Profile, only: Iterable[str] | None = None) -> list[tuple[Check, str]]:
    return [(c, n) for c, n in ALL_PLANNED(profile, only) if n != CLUSTER]


PLANS = {"one": only_one, "three": ALL_PLANNED, "three-nodes-only": node_checks}


def busy_cpu() -> float:
    """CPU seconds the whole machine has spent busy (every core, every process: the lab's nodes, this client and
    anything else running), from /proc/stat; 0.0 where there is none."""
    try:
        with open("/proc/stat") as fh:
            ticks = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def sample(profile: Profile, secrets: Secrets, plan: str) -> tuple[float, list[CheckResult], float, float]:
    """(wall seconds, results, machine busy CPU seconds, this process's CPU seconds) of one run of `plan`."""
    runner.planned = PLANS[plan]
    try:
        busy, own, start = busy_cpu(), time.process_time(), time.monotonic()
        results = runner.run_checks(profile, secrets)
        return time.monotonic() - start, results, busy_cpu() - busy, time.process_time() - own
    finally:
        runner.planned = ALL_PLANNED


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench-checks.md")
    parser.add_argument("--fresh", action="store_true", help="lab down; lab up first (else: lab up, as it is)")
    args = parser.parse_args()
    quiet: Callable[[str], None] = lambda _m: None  # noqa: E731
    if args.fresh:
        lab.down(progress=quiet)
    lab.up(progress=quiet)
    profile = load_profile(REPO / "profiles" / "lab.yaml")
    secrets = Secrets.resolve_for(profile)
    sample(profile, secrets, "one")  # warm: the agent-free checks' imports, DNS, the page cache (untimed)
    times: dict[str, list[float]] = {k: [] for k in PLANS}
    cpu: dict[str, list[tuple[float, float]]] = {k: [] for k in PLANS}
    loads: list[float] = []
    counts: dict[str, int] = {}
    slowest: Counter[str] = Counter()
    began = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for i in range(args.rounds):
        for plan in (list(PLANS) if i % 2 == 0 else list(reversed(PLANS))):
            one = plan == "one"
            loads.append(os.getloadavg()[0])
            t, results, busy, own = sample(profile, secrets, plan)
            bad = [r for r in results if r.status in (Status.FAIL, Status.SKIP) and not (one and r.check == "network")]
            if bad:
                raise SystemExit(f"bench: checks failed on the lab: {[(r.node, r.check, r.summary) for r in bad]}")
            times[plan].append(t)
            cpu[plan].append((busy, own))
            counts[plan] = len(results)
            if plan == "three":
                for r in results:
                    slowest[f"{r.check} ({r.node})"] = max(slowest[f"{r.check} ({r.node})"], int(r.duration * 1000))
            print(f"round {i + 1}: {plan:16} {t:6.2f}s load {loads[-1]:.2f} cpu {busy:.2f}s (client {own:.2f}s)",
                  flush=True)
    ones, threes, nodes_only = times["one"], times["three"], times["three-nodes-only"]
    o, t3, tn = statistics.median(ones), statistics.median(threes), statistics.median(nodes_only)
    ratio = t3 / o
    top = ", ".join(f"{name} {ms} ms" for name, ms in slowest.most_common(5))

    def used(plan: str) -> str:
        busy, own = statistics.median(b for b, _ in cpu[plan]), statistics.median(o for _, o in cpu[plan])
        return f"{busy:.2f} s ({own:.2f} s of it this client)"

    report = (
        "# Checks benchmark\n\n"
        "`bench/checks.py`: `check` (the runner's call, a fresh SSH connection per node, every check family) on\n"
        f"the three lab nodes ({counts.get('three')} results) against one node ({counts.get('one')} results: "
        "studio1's node checks; no cluster check, which would compare nodes; its network check fails fast, its\n"
        "peers listening nowhere), alternating, one run.\n\n"
        f"Run {began}, {args.rounds} rounds; 1-minute load average at each sample's start: "
        f"{', '.join(f'{x:.2f}' for x in loads)} (2 cores, shared with other engineers' tests).\n\n"
        "| | rounds | median | all |\n|---|---|---|---|\n"
        f"| one node | {len(ones)} | {o:.2f}s | {', '.join(f'{x:.2f}' for x in ones)} |\n"
        f"| three nodes | {len(threes)} | {t3:.2f}s | {', '.join(f'{x:.2f}' for x in threes)} |\n"
        f"| three nodes, node checks only ({counts.get('three-nodes-only')} results) | {len(nodes_only)} | {tn:.2f}s | "
        f"{', '.join(f'{x:.2f}' for x in nodes_only)} |\n\n"
        f"**ratio three nodes / one node = {ratio:.2f}** (goal <= 1.3); node checks only: {tn / o:.2f}. "
        f"Slowest single checks on three nodes (max over rounds): {top}.\n\n"
        f"Busy CPU of the whole machine during a run (median; the nodes' sshd and probes, this client, and whatever "
        f"else ran): one node {used('one')}, three nodes {used('three')}, three nodes' node checks only "
        f"{used('three-nodes-only')}.  The three lab nodes share this machine's cores with the client, so the "
        "three-node run cannot be shorter than that CPU divided by the cores.\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.exists() and NOTES in args.out.read_text():  # the hand-written analysis below the numbers stays
        report += "\n" + NOTES + args.out.read_text().split(NOTES, 1)[1]
    args.out.write_text(report)
    print(report)
    print(f"RATIO checks three/one = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
