"""Benchmark: `replay` on a fresh lab against the floor, in one run, reported as a ratio.

The floor is a minimal script that runs the same engine steps by hand in the best order, over the same
SSH transport, with no checks, agents, Redis or verification: write the files, start the first node
with --wsrep-new-cluster, create the SST user, start the second node (SST), start garbd, wait for a
cluster of three.  Each round starts from a fresh lab (`lab down; lab up`, not timed).

replay's time is split into parts from its own step callbacks and the agents' events (wall clock): before the
checks (Redis, the run lease), checks, apply, agent start (launch to the first agent's ``started``), register and
election, bootstrap (the first node Primary, the SST user), SST (the joiner's start to Synced; its event names
the SST method sst_choice picked), garbd joining (to cluster size 3), the rest of bootstrap (agents exiting,
restarts owed, daemons), verify.

    flock /tmp/studio-lab.lock .venv/bin/python bench/bootstrap.py [--rounds N] [--out docs/bench-bootstrap.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wizard import lab  # noqa: E402
from wizard.coordinator import Event  # noqa: E402
from wizard.nodesql import sql, wsrep_status  # noqa: E402
from wizard.pipeline import Listener, replay  # noqa: E402
from wizard.profile import Profile, load_profile  # noqa: E402
from wizard.remote import Remote, sh  # noqa: E402
from wizard.render import render  # noqa: E402
from wizard.secrets import Secrets  # noqa: E402


def wait_until(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"floor: timed out waiting for {what}")
        time.sleep(interval)


def floor(profile: Profile, secrets: Secrets) -> float:
    start = time.monotonic()
    with Remote(profile) as remote:
        for node, files in render(profile, secrets).items():
            if node == "dns":
                continue
            for f in files:
                remote[node].put(f.content.encode(), str(f.path), mode=f.mode, owner=f.owner, group=f.group)
        daemon = "setsid {} </dev/null >>/var/log/mysql/floor.out 2>&1 &"
        s1, s2 = remote["studio1"], remote["studio2"]

        def synced(conn: Any, size: int = 1) -> bool:
            w = wsrep_status(conn, profile, secrets, timeout=2)
            return (w.get("wsrep_local_state_comment") == "Synced" and w.get("wsrep_cluster_status") == "Primary"
                    and int(w.get("wsrep_cluster_size") or 0) >= size)

        s1.run(daemon.format(sh("/usr/sbin/mariadbd", "--user=mysql", "--wsrep-new-cluster")))
        wait_until("studio1 Primary", lambda: synced(s1), 60)
        pw = (secrets.sst_password or "").replace("'", "\\'")
        sql(s1, profile, secrets, f"CREATE USER IF NOT EXISTS 'sst'@'localhost' IDENTIFIED BY '{pw}'; "
            "GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO 'sst'@'localhost'")
        s2.run(daemon.format(sh("/usr/sbin/mariadbd", "--user=mysql")))
        wait_until("studio2 Synced", lambda: synced(s2, 2), 180)
        a = profile.database.galera_port
        remote["arbiter"].run("mkdir -p /var/log/garbd /var/lib/garbd")
        remote["arbiter"].run(  # alone: after 'mkdir &&' the whole list would go to the background
            daemon.format(sh("/usr/bin/garbd", "--address", f"gcomm://198.18.0.11:{a},198.18.0.12:{a}",
                               "--group", profile.cluster_name, "--workdir", "/var/lib/garbd",
                               "--log", "/var/log/garbd/garbd.log")).replace("/var/log/mysql/", "/var/log/garbd/"))
        wait_until("cluster size 3", lambda: synced(s1, 3), 60)
    return time.monotonic() - start


PARTS = ("before checks", "checks", "apply", "agent start", "register + election", "bootstrap (first node)",
         "SST (second node)", "garbd joining", "rest of bootstrap", "verify")
GARBD_BESIDE = "garbd's own join (start to member), beside the SST: not a part of the sum"


class Timeline:
    """Wall-clock marks of one replay: pipeline steps (``step/state``) and agent events (first of each kind)."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.sst_method = ""
        self.parts_s: dict[str, float] = {}

    def mark(self, name: str, at: float | None = None) -> None:
        self.marks.setdefault(name, time.time() if at is None else at)

    def on_step(self, step: str, state: str, _message: str) -> None:
        self.mark(f"{step}/{state}")

    def on_event(self, e: Event) -> None:
        if e.step == "agent" and e.state == "started":
            self.mark("agent started", e.ts)
        elif e.step == "elect" and e.state == "done":
            self.mark("elected", e.ts)
        elif e.step == "bootstrap" and e.state == "done":
            self.mark("primary", e.ts)
        elif e.step == "join" and e.state == "running" and "starting mariadbd" in e.message:
            self.mark("join start", e.ts)
            self.sst_method = e.extra.get("sst_method", "")
        elif e.step == "join" and e.state == "done":
            self.mark("joined", e.ts)
        elif e.step == "complete" and e.state == "done":
            self.mark("complete", e.ts)
        elif e.step == "garbd" and e.state == "running" and e.message.startswith("starting garbd"):
            self.mark("garbd start", e.ts)
        elif e.step == "garbd" and e.state == "done":
            self.mark("garbd done", e.ts)

    def parts(self, start: float, end: float) -> dict[str, float]:
        """Seconds per part (PARTS); a part whose marks are missing is left out."""
        order = [("start", start), ("check/start", None), ("check/done", None), ("apply/done", None),
                 ("agent started", None), ("elected", None), ("primary", None), ("joined", None),
                 ("complete", None), ("verify/start", None), ("end", end)]
        at = {k: (v if v is not None else self.marks.get(k)) for k, v in order}
        out: dict[str, float] = {}
        names = list(PARTS)
        keys = [k for k, _ in order]
        for name, a, b in zip(names, keys, keys[1:], strict=False):
            if at.get(a) is not None and at.get(b) is not None:
                out[name] = max(0.0, float(at[b]) - float(at[a]))  # type: ignore[arg-type]
        if "garbd start" in self.marks and "garbd done" in self.marks:
            out[GARBD_BESIDE] = max(0.0, self.marks["garbd done"] - self.marks["garbd start"])
        return out


def product(profile: Profile, secrets: Secrets, timeline: Timeline | None = None) -> float:
    timeline = timeline or Timeline()
    listener = Listener(on_step=timeline.on_step, on_event=timeline.on_event)
    wall = time.time()
    start = time.monotonic()
    replay(profile, secrets, listener=listener)
    elapsed = time.monotonic() - start
    timeline.parts_s = timeline.parts(wall, wall + elapsed)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench-bootstrap.md")
    args = parser.parse_args()
    quiet: Callable[[str], None] = lambda _m: None  # noqa: E731
    lab.down(progress=quiet)
    lab.up(progress=quiet)
    profile = load_profile(REPO / "profiles" / "lab.yaml")
    secrets = Secrets.resolve_for(profile)
    floors: list[float] = []
    replays: list[float] = []
    timelines: list[Timeline] = []
    loads: list[float] = []
    began = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        for i in range(args.rounds):
            for name in ("floor", "replay"):
                lab.down(progress=quiet)
                lab.up(progress=quiet)
                loads.append(os.getloadavg()[0])
                if name == "floor":
                    t = floor(profile, secrets)
                    floors.append(t)
                    extra = ""
                else:
                    tl = Timeline()
                    t = product(profile, secrets, tl)
                    replays.append(t)
                    timelines.append(tl)
                    extra = f" (SST: {tl.sst_method or '?'})"
                print(f"round {i + 1}: {name:6} {t:6.2f}s load {loads[-1]:.2f}{extra}", flush=True)
    finally:
        lab.down(progress=quiet)
        lab.up(progress=quiet)  # leave the lab up and empty for whoever comes next
    f, r = statistics.median(floors), statistics.median(replays)
    ratio = r / f
    share_rows = []
    for part in (*PARTS, GARBD_BESIDE):
        xs = [tl.parts_s.get(part) for tl in timelines]
        vals = [x for x in xs if x is not None]
        if not vals:
            continue
        med = statistics.median(vals)
        share_rows.append(f"| {part} | {med:.2f}s | {100 * med / r:.0f}% | {', '.join(f'{x:.2f}' for x in vals)} |")
    methods = ", ".join(tl.sst_method or "?" for tl in timelines)
    report = (
        "# Bootstrap benchmark\n\n"
        "`bench/bootstrap.py`: `replay` (checks, render, apply, Redis-coordinated bootstrap, verify) on a fresh lab\n"
        "against the floor (the same engine steps by hand, best order, same SSH transport, the configured\n"
        "mariabackup SST), alternating, one run; every sample starts from `lab down; lab up` (not timed).\n\n"
        f"Run {began}, {args.rounds} rounds; 1-minute load average at each sample's start: "
        f"{', '.join(f'{x:.2f}' for x in loads)} (2 cores, shared with other engineers' tests).\n\n"
        f"| | rounds | median | all |\n|---|---|---|---|\n"
        f"| floor (by hand, mariabackup SST) | {len(floors)} | {f:.2f}s | {', '.join(f'{x:.2f}' for x in floors)} |\n"
        f"| replay | {len(replays)} | {r:.2f}s | {', '.join(f'{x:.2f}' for x in replays)} |\n\n"
        f"**ratio replay / floor = {ratio:.2f}** (goal <= 0.6). The first join's SST method in each replay: "
        f"{methods} (docs/sst-choice.md).\n\n"
        "## Where replay's time goes\n\n"
        "From replay's step callbacks and the agents' events (wall clock); median of the rounds, share of the\n"
        "median replay. \"garbd joining\" is what garbd's join adds after the second node is Synced: garbd starts\n"
        "once both data nodes are in the Primary Component, so its join runs beside the SST (the floor starts it\n"
        "after the second node is Synced, the order Crafter's documentation gives).\n\n"
        "| part | median | share | all |\n|---|---|---|---|\n" + "\n".join(share_rows) + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    print(f"RATIO bootstrap replay/floor = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
