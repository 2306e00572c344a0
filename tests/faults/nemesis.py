"""The seeded nemesis: schedules of faults built from ``random.Random(seed)``, and how each is struck.

A fault either happens *before* recovery (``strike``) or *during* the product's recovery run (``hook``,
fed the run's output lines).  Every random choice (target, delays, durations) is drawn when the schedule
is built, so a seed and a schedule index reproduce the same faults."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.faults.hostsql import DATA_NODES, HostSQLError, host_sql, pids, signal_pids
from wizard import lab


@dataclass(frozen=True)
class Kind:
    name: str
    what: str
    weight: int
    short: bool  # fast enough for the smoke schedules
    by_hand: bool  # has a manual recovery to compare with


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("kill-one", "kill -9 of one data node's mariadbd", 3, True, True),
    Kind("kill-both", "kill -9 of both data nodes' mariadbd", 2, False, True),
    Kind("kill-garbd", "kill -9 of garbd", 2, True, True),
    Kind("partition", "one host cut off the lab network, then healed", 2, True, True),
    Kind("ddl-crash", "the other node stopped cleanly, ALTER TABLE ... ALGORITHM=COPY of 300k rows, kill -9 mid-way",
         1, False, True),
    Kind("agent-stop", "both nodes killed, then one agent SIGSTOPped during the election of the recovery", 1, False,
         False),
    Kind("ssh-drop", "a node's SSH sessions killed in the middle of apply (a local edit to re-apply)", 1, False,
         False),
    Kind("redis-master", "both nodes killed, then the Redis master (Sentinel) killed during the recovery's election",
         1, False, False),
)}


def unavailable(kind: str) -> str:
    """Why `kind` cannot run on this lab ('' when it can)."""
    if kind == "redis-master":
        try:
            from wizard import labredis  # noqa: F401
        except ImportError:
            return "the lab runs one Redis without Sentinel (no wizard/labredis.py yet): skipped"
    return ""


@dataclass
class Fault:
    kind: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.kind}({self.target}{', ' + extra if extra else ''})"


def draw(rng: random.Random, kind: str) -> Fault:
    """A fault of `kind` with every random choice made now."""
    if kind == "kill-one":
        return Fault(kind, rng.choice(DATA_NODES), {"down_s": round(rng.uniform(0.5, 4), 1)})
    if kind == "kill-both":
        first = rng.choice(DATA_NODES)
        return Fault(kind, first, {"gap_s": round(rng.uniform(0, 3), 1)})
    if kind == "kill-garbd":
        return Fault(kind, "arbiter", {"down_s": round(rng.uniform(0.5, 3), 1)})
    if kind == "partition":
        return Fault(kind, rng.choice([*DATA_NODES, "arbiter"]), {"cut_s": round(rng.uniform(7, 14), 1)})
    if kind == "ddl-crash":
        return Fault(kind, rng.choice(DATA_NODES), {"kill_at_pct": rng.randint(10, 60)})
    if kind == "agent-stop":
        return Fault(kind, rng.choice(DATA_NODES), {"after_s": round(rng.uniform(0, 1), 2),
                                                    "hold_s": round(rng.uniform(3, 10), 1)})
    if kind == "ssh-drop":
        return Fault(kind, rng.choice(DATA_NODES), {"after_s": round(rng.uniform(0, 0.4), 2)})
    return Fault(kind, rng.choice(DATA_NODES), {"after_s": round(rng.uniform(0, 1.5), 2)})


def build_schedule(rng: random.Random, *, short: bool = False, faults: tuple[int, int] = (1, 3),
                   only: tuple[str, ...] = ()) -> list[Fault]:
    """1-3 faults (one in a short schedule), kinds weighted by :data:`KINDS` (only those in `only`, if given)."""
    kinds = [k for k in KINDS.values() if (k.short or not short) and (not only or k.name in only)]
    n = 1 if short else rng.randint(*faults)
    chosen = rng.choices([k.name for k in kinds], weights=[k.weight for k in kinds], k=n)
    return [draw(rng, k) for k in chosen]


# ------------------------------------------------------------------------------------------ striking


def wait_until(what: str, pred: Callable[[], bool], timeout: float, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def kill9(node: str, proc: str) -> None:
    signal_pids(node, "KILL", pids(node, proc))
    wait_until(f"{proc} on {node} to die", lambda: not pids(node, proc), 20)


def ensure_big_table(rows: int = 300_000) -> None:
    """faults.big with `rows` rows (made once, in chunks so no writeset is huge)."""
    node = next(n for n in DATA_NODES if _primary(n))
    have = host_sql(node, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='faults' "
                          "AND TABLE_NAME='big'")
    if have == [["1"]] and host_sql(node, "SELECT COUNT(*) FROM faults.big") == [[str(rows)]]:
        return
    host_sql(node, "DROP TABLE IF EXISTS faults.big; CREATE TABLE faults.big (id INT PRIMARY KEY, "
                   "v VARCHAR(100) NOT NULL) ENGINE=InnoDB")
    step = 50_000
    for lo in range(1, rows + 1, step):
        host_sql(node, f"INSERT INTO faults.big SELECT seq, REPEAT(CHAR(65 + seq % 26), 80) "
                       f"FROM faults.seq_{lo}_to_{min(rows, lo + step - 1)}", timeout=120)


def _primary(node: str) -> bool:
    try:
        return host_sql(node, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
                              "WHERE VARIABLE_NAME='wsrep_cluster_status'", timeout=5) == [["Primary"]]
    except HostSQLError:
        return False


def strike(fault: Fault, notes: list[str], config_file: str) -> None:
    """Do the part of `fault` that happens before recovery; return when it is over (a partition healed,
    a killed process gone).  `notes` collects what happened; `config_file` is the Galera config (ssh-drop
    edits it so that apply has something to replace)."""
    k, t, p = fault.kind, fault.target, fault.params
    if k == "kill-one":
        kill9(t, "mariadbd")
        time.sleep(p["down_s"])
    elif k in ("kill-both", "agent-stop", "redis-master"):
        other = next(n for n in DATA_NODES if n != t)
        kill9(t if k == "kill-both" else other, "mariadbd")
        time.sleep(p.get("gap_s", 0.5))
        kill9(other if k == "kill-both" else t, "mariadbd")
    elif k == "kill-garbd":
        kill9("arbiter", "garbd")
        time.sleep(p["down_s"])
    elif k == "partition":
        lab.partition(t)
        try:
            time.sleep(p["cut_s"])
        finally:
            lab.heal(t)
    elif k == "ddl-crash":
        _ddl_crash(t, p["kill_at_pct"], notes)
    elif k == "ssh-drop":
        marker = f"# local edit by the fault suite {time.time_ns()}"
        lab.host_exec(t, ["sh", "-c", 'echo "$2" >> "$1"', "edit", config_file, marker])
        p["marker"] = marker


def _ddl_crash(node: str, kill_at_pct: int, notes: list[str]) -> None:
    other = next(n for n in DATA_NODES if n != node)
    ensure_big_table()
    signal_pids(other, "TERM", pids(other, "mariadbd"))  # the other node stopped cleanly first (issue 7, input 1)
    wait_until(f"mariadbd on {other} to stop", lambda: not pids(other, "mariadbd"), 90)
    time.sleep(1.0)  # the writer commits a few rows that only `node` has
    result: dict[str, Any] = {}

    def alter() -> None:
        try:
            host_sql(node, "ALTER TABLE faults.big FORCE, ALGORITHM=COPY", timeout=300)
            result["finished"] = True
        except HostSQLError as exc:
            result["error"] = str(exc)

    th = threading.Thread(target=alter, daemon=True)
    th.start()
    progress = -1.0
    deadline = time.monotonic() + 120
    while th.is_alive() and time.monotonic() < deadline:
        try:  # PROGRESS is 0-100 within the stage; the rows are copied in the stage 'copy to tmp table'
            rows = host_sql(node, "SELECT STATE, PROGRESS FROM information_schema.PROCESSLIST "
                                  "WHERE INFO LIKE 'ALTER TABLE faults.big%'", timeout=5)
            copying = [float(r[1]) for r in rows if len(r) > 1 and r[0] == "copy to tmp table"]
            progress = max(copying) if copying else -1.0
        except (HostSQLError, ValueError):
            progress = -1.0
        if 0 <= progress <= 100 and progress >= kill_at_pct:
            break
        time.sleep(0.05)
    kill9(node, "mariadbd")
    th.join(timeout=30)
    notes.append(f"ALTER killed at {progress:.0f}% on {node}" + (" (it had finished first)" if "finished" in result
                                                                 else ""))


def hook_for(fault: Fault, notes: list[str]) -> Callable[[str], None] | None:
    """A hook for the product's first recovery run, striking mid-run (agent-stop, ssh-drop)."""
    k, t, p = fault.kind, fault.target, fault.params
    fired = threading.Event()

    def later(fn: Callable[[], None]) -> None:
        threading.Thread(target=fn, daemon=True).start()

    if k == "agent-stop":
        def stop_agent() -> None:
            time.sleep(p["after_s"])
            victims = pids(t, "agent-[0-9a-f]+ bootstrap", full=True)
            signal_pids(t, "STOP", victims)
            notes.append(f"SIGSTOP agent pids {victims} on {t} for {p['hold_s']} s")
            time.sleep(p["hold_s"])
            signal_pids(t, "CONT", victims)

        def hook(line: str) -> None:
            if not fired.is_set() and f" {t} " in line and "elect:" in line:
                fired.set()
                later(stop_agent)
        return hook
    if k == "ssh-drop":
        def drop() -> None:
            time.sleep(p["after_s"])
            victims = pids(t, "sshd: root@", full=True)
            signal_pids(t, "KILL", victims)
            notes.append(f"killed {len(victims)} SSH session process(es) on {t} during apply")

        def hook(line: str) -> None:
            if not fired.is_set() and "apply" in line and "start" in line:
                fired.set()
                later(drop)
        return hook
    if k == "redis-master":
        from wizard import labredis

        def kill_master() -> None:
            time.sleep(p["after_s"])
            master = labredis.master_host()
            labredis.stop_host_redis(master, sentinel=False)
            p["killed"] = master
            notes.append(f"killed the Redis master on {master} (its Sentinel kept running)")

        def hook(line: str) -> None:
            if not fired.is_set() and "register:" in line:
                fired.set()
                later(kill_master)
        return hook
    return None


def after_recovery(fault: Fault, notes: list[str]) -> None:
    """Undo what the fault left that the product is not asked to repair (a killed Redis comes back)."""
    if fault.kind == "redis-master" and fault.params.get("killed"):
        from wizard import labredis

        labredis.start_host_redis(fault.params["killed"])
        notes.append(f"restarted Redis on {fault.params['killed']} after the recovery")
