"""Benchmark: `replay` on a fresh lab against the floor, in one run, reported as a ratio.

The floor is a minimal script that runs the same engine steps by hand in the best order, over the same
SSH transport, with no checks, agents, Redis or verification: write the files, start the first node
with --wsrep-new-cluster, create the SST user, start the second node (SST), start garbd, wait for a
cluster of three.  Each round starts from a fresh lab (`lab down; lab up`, not timed).

    .venv/bin/python bench/bootstrap.py [--rounds N] [--out docs/bench-bootstrap.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wizard import lab  # noqa: E402
from wizard.nodesql import sql, wsrep_status  # noqa: E402
from wizard.pipeline import replay  # noqa: E402
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
        remote["arbiter"].run(
            "mkdir -p /var/log/garbd /var/lib/garbd && "
            + daemon.format(sh("/usr/bin/garbd", "--address", f"gcomm://198.18.0.11:{a},198.18.0.12:{a}",
                               "--group", profile.cluster_name, "--workdir", "/var/lib/garbd",
                               "--log", "/var/log/garbd/garbd.log")).replace("/var/log/mysql/", "/var/log/garbd/"))
        wait_until("cluster size 3", lambda: synced(s1, 3), 60)
    return time.monotonic() - start


def product(profile: Profile, secrets: Secrets) -> float:
    start = time.monotonic()
    replay(profile, secrets)
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench-bootstrap.md")
    args = parser.parse_args()
    quiet: Callable[[str], None] = lambda _m: None  # noqa: E731
    lab.down(progress=quiet)
    lab.up(progress=quiet)
    profile = load_profile(REPO / "profiles" / "lab.yaml")
    secrets = Secrets.resolve_for(profile)
    floors, replays = [], []
    try:
        for i in range(args.rounds):
            for name, fn, sink in (("floor", floor, floors), ("replay", product, replays)):
                lab.down(progress=quiet)
                lab.up(progress=quiet)
                t = fn(profile, secrets)
                sink.append(t)
                print(f"round {i + 1}: {name:6} {t:6.2f}s", flush=True)
    finally:
        lab.down(progress=quiet)
    f, r = statistics.median(floors), statistics.median(replays)
    ratio = r / f
    report = (
        "# Bootstrap benchmark\n\n"
        "`bench/bootstrap.py`: `replay` (checks, render, apply, Redis-coordinated bootstrap, verify) on a fresh lab\n"
        "against the floor (the same engine steps by hand, best order, same SSH transport), alternating, one run.\n\n"
        f"| | rounds | median | all |\n|---|---|---|---|\n"
        f"| floor | {len(floors)} | {f:.2f}s | {', '.join(f'{x:.2f}' for x in floors)} |\n"
        f"| replay | {len(replays)} | {r:.2f}s | {', '.join(f'{x:.2f}' for x in replays)} |\n\n"
        f"**ratio replay / floor = {ratio:.3f}** (goal <= 1.15)\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
