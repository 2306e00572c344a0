"""Run seeded fault schedules on the lab and check that recovery by the product alone lost nothing.

One schedule: make sure the lab cluster is healthy (forming it with ``replay`` when needed), start the
writer and the observer, strike each fault and let ``studio-cluster recover`` (the product alone, up to two
runs) bring the cluster back, strike one more fault of a kind seen and recover it BY HAND (the yardstick),
stop writing, then check: every acknowledged row on every data node, the same rows and checksums on both,
no split-brain moment, every rendered config complete and in place, a backup of every replaced file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import re
import secrets as pysecrets
import subprocess
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from tests.faults import checker, nemesis
from tests.faults.hostsql import DATA_NODES, HostSQLError, host_sql
from tests.faults.manual import ManualError, recover_by_hand
from tests.faults.observer import Observer
from tests.faults.recovery import REPO, Run, run_product
from tests.faults.writer import DATABASE, TABLE, USER, Writer
from wizard import lab
from wizard.apply import BACKUP_ROOT, plan_files
from wizard.profile import Profile, load_profile
from wizard.remote import Remote, RemoteError
from wizard.secrets import Secrets
from wizard.status import collect

Say = Callable[[str], None]
ID_STRIDE = 10_000_000  # a schedule writes ids sched*STRIDE+1, ... (sched: unique per run and schedule)


@dataclass
class FaultResult:
    schedule: int
    fault: str
    kind: str
    by: str  # "product" or "hand"
    ok: bool = False
    seconds: float | None = None
    attempts: int = 0
    struck: bool = True  # False: the harness could not strike it (a note says why); not counted as a fault
    skipped: str = ""
    notes: list[str] = field(default_factory=list)
    failure: str = ""  # what recover (or the procedure) said when it failed


@dataclass
class ScheduleResult:
    index: int
    seed: int
    faults: list[FaultResult] = field(default_factory=list)
    acked: int = 0
    in_doubt: int = 0
    lost: dict[str, list[int]] = field(default_factory=dict)  # node -> acknowledged ids missing there
    unverified: str = ""  # why rows could not be read at all
    node_diff: list[str] = field(default_factory=list)
    split_brain: list[tuple[float, str]] = field(default_factory=list)
    skew_moments: int = 0
    samples: int = 0
    config_problems: list[str] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def lost_count(self) -> int:
        return len(set().union(*self.lost.values())) if self.lost else 0

    @property
    def clean(self) -> bool:
        return (not self.lost_count and not self.unverified and not self.node_diff and not self.split_brain
                and not self.config_problems and all(f.ok or f.skipped for f in self.faults))


@contextlib.contextmanager
def lab_lock(path: str | None) -> Iterator[None]:
    """The shared lab lock (``flock``) for one schedule, so other users get turns between schedules."""
    if not path:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Suite:
    def __init__(self, seed: int, *, short: bool = False, lock: str | None = None, say: Say = print,
                 kinds: tuple[str, ...] = ()) -> None:
        self.seed, self.short, self.lock, self.say, self.kinds = seed, short, lock, say, kinds
        self.password = pysecrets.token_hex(12)
        self.results: list[ScheduleResult] = []
        self.addresses = dict(lab.HOSTS)
        self.nonce = int(time.time()) % 1_000_000  # rows of earlier runs stay in the table: never reuse an id

    # -------------------------------------------------------------------------------- setup

    def healthy(self) -> tuple[bool, str]:
        remote = Remote(self.profile)
        try:
            st = collect(self.profile, self.secrets, remote)
            return st.healthy, f"{st.verdict}: {st.reason}"
        finally:
            remote.close()

    def ensure_cluster(self, res: ScheduleResult) -> None:
        lab.up(progress=lambda _m: None)  # the profile names files the lab writes (key, known_hosts)
        lab.clear_faults()
        self.profile: Profile = load_profile(REPO / "profiles" / "lab.yaml")
        self.secrets = Secrets.resolve_for(self.profile)
        ok, why = self.healthy()
        if ok:
            return
        if any(nemesis.pids(n, "mariadbd") for n in DATA_NODES) or any(
                lab.host_path(n, "/var/lib/mysql/grastate.dat").exists() for n in DATA_NODES):
            run = run_product("recover")
            res.setup.append(f"cluster was {why}; recover before the schedule: exit {run.returncode}")
            if run.ok:
                return
            res.setup.append("recover failed: " + run.tail(4).replace("\n", " | "))
        lab.down(progress=lambda _m: None)
        lab.up(progress=lambda _m: None)
        self.profile = load_profile(REPO / "profiles" / "lab.yaml")  # new host keys
        run = run_product("replay", extra=("--skip-checks",))
        res.setup.append(f"fresh lab, replay: exit {run.returncode} in {run.seconds:.1f} s")
        if not run.ok:
            res.setup.append("replay failed: " + _last_error(run.output))
            deadline = time.monotonic() + 30
            while not (state := self.healthy())[0] and time.monotonic() < deadline:
                time.sleep(1)
            if not state[0]:
                raise RuntimeError(f"could not form the lab cluster ({state[1]}): " + run.tail())
            res.setup.append("healthy after waiting")

    def ensure_schema(self) -> None:
        node = next((n for n in DATA_NODES if nemesis._primary(n)), DATA_NODES[0])
        pw = self.password
        host_sql(node, f"CREATE DATABASE IF NOT EXISTS {DATABASE}; "
                       f"CREATE TABLE IF NOT EXISTS {DATABASE}.{TABLE} (id BIGINT PRIMARY KEY, sched INT NOT NULL, "
                       "via VARCHAR(40) NOT NULL, at DOUBLE NOT NULL) ENGINE=InnoDB; "
                       f"CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{pw}'; "
                       f"ALTER USER '{USER}'@'%' IDENTIFIED BY '{pw}'; "
                       f"GRANT SELECT, INSERT ON {DATABASE}.* TO '{USER}'@'%'")

    # -------------------------------------------------------------------------------- recovery

    def recover_product(self, fault: nemesis.Fault, fr: FaultResult, t0: float) -> None:
        hook = nemesis.hook_for(fault, fr.notes)
        runs: list[Run] = []
        for attempt in (1, 2):
            before = self._file_state()
            run = run_product("recover", hook=hook if attempt == 1 else None)
            runs.append(run)
            fr.attempts = attempt
            self._check_written_files(run, fr, before)
            if fault.kind == "ssh-drop" and attempt == 1:
                self._check_not_half_written(fault, fr)
            if run.ok:
                break
            fr.notes.append(f"recover attempt {attempt} failed after {run.seconds:.1f} s: "
                            + _last_error(run.output))
        fr.ok = runs[-1].ok
        fr.seconds = time.monotonic() - t0
        if not fr.ok:
            fr.failure = "\n---\n".join(r.tail(15) for r in runs)

    def _file_state(self) -> dict[tuple[str, str], tuple[bool, int]]:
        """(node, rendered path) -> (exists, number of backups of it under BACKUP_ROOT), read with nsenter."""
        from wizard.render import render

        script = ('for f; do if [ -e "$f" ]; then e=1; else e=0; fi; '
                  f'n=$(ls -d {BACKUP_ROOT}/*"$f" 2>/dev/null | wc -l); echo "$e $n $f"; done')
        out: dict[tuple[str, str], tuple[bool, int]] = {}
        for node, files in render(self.profile, self.secrets).items():
            if node not in self.addresses:
                continue
            try:
                proc = lab.host_exec(node, ["sh", "-c", script, "state", *(str(f.path) for f in files)], check=False)
            except (lab.LabError, subprocess.TimeoutExpired):
                continue
            for line in proc.stdout.splitlines():
                e, n, path = line.split(" ", 2)
                out[(node, path)] = (e == "1", int(n))
        return out

    def _check_written_files(self, run: Run, fr: FaultResult, before: dict[tuple[str, str], tuple[bool, int]]) -> None:
        """Every file a run reports as written must have a new backup when it existed before the run."""
        after = self._file_state()
        for node, path in re.findall(r"wrote (\S+?):(\S+)", run.output):
            existed, n_before = before.get((node, path), (False, 0))
            n_after = after.get((node, path), (False, 0))[1]
            if existed and n_after <= n_before:
                fr.notes.append(f"NO BACKUP: recover replaced {node}:{path} without a new backup under {BACKUP_ROOT}")
            else:
                fr.notes.append(f"recover wrote {node}:{path}" + (" (backed up)" if existed else " (new file)"))

    def _check_not_half_written(self, fault: nemesis.Fault, fr: FaultResult) -> None:
        from wizard.render import render

        path = str(self.profile.database.config_file)
        rendered = next(f.content for f in render(self.profile, self.secrets)[fault.target] if str(f.path) == path)
        now = lab.host_exec(fault.target, ["cat", path]).stdout
        edited = rendered + fault.params["marker"] + "\n"
        if now not in (rendered, edited):
            fr.notes.append(f"HALF-WRITTEN {fault.target}:{path} after the dropped run ({len(now)} bytes)")

    def rescue(self, fr: FaultResult) -> bool:
        """After the product failed: bring the cluster back by hand so its rows can still be checked."""
        try:
            steps = recover_by_hand(self.profile, self.secrets)
            fr.notes.append("rescued by hand for the check: " + "; ".join(steps))
            return True
        except (ManualError, HostSQLError, lab.LabError, TimeoutError) as exc:
            fr.notes.append(f"rescue by hand failed too: {exc}")
            return False

    # -------------------------------------------------------------------------------- one schedule

    def run_schedule(self, index: int) -> ScheduleResult:
        rng = random.Random(f"{self.seed}:{index}")
        faults = nemesis.build_schedule(rng, short=self.short, only=self.kinds)
        res = ScheduleResult(index, self.seed)
        with lab_lock(self.lock):
            start = time.monotonic()
            self.say(f"schedule {index} (seed {self.seed}): {', '.join(f.describe() for f in faults)}")
            try:
                self._schedule_body(index, rng, faults, res)
            except Exception as exc:  # a harness or lab failure: loud, and the next schedule starts afresh
                res.unverified = f"schedule aborted: {type(exc).__name__}: {exc}"[:600]
                self.say("  " + traceback.format_exc().strip().replace("\n", "\n  "))
                with contextlib.suppress(Exception):
                    lab.clear_faults()
        res.seconds = time.monotonic() - start
        self.results.append(res)
        self.say(self.schedule_line(res))
        return res

    def _schedule_body(self, index: int, rng: random.Random, faults: list[nemesis.Fault],
                       res: ScheduleResult) -> None:
        self.ensure_cluster(res)
        self.ensure_schema()
        observer = Observer()
        sched = self.nonce * 1000 + index
        writer = Writer(self.profile, self.password, sched, sched * ID_STRIDE)
        observer.start()
        writer.start()
        broken = False
        try:
            nemesis.wait_until("the writer's first acknowledged rows", lambda: len(writer.log.acked) >= 10, 30)
            for fault in faults:
                fr = self.one_fault(index, fault, "product")
                res.faults.append(fr)
                if not fr.ok and not fr.skipped and not self.rescue(fr):
                    broken = True
                    break
                time.sleep(rng.uniform(1, 2.5))
            hand_kinds = [f.kind for f in faults if nemesis.KINDS[f.kind].by_hand]
            if hand_kinds and not broken:
                fault = nemesis.draw(rng, rng.choice(hand_kinds))
                fr = self.one_fault(index, fault, "hand")
                res.faults.append(fr)
                if not fr.ok:  # the yardstick failed: let the product bring it back so the rows can be read
                    run = run_product("recover")
                    fr.notes.append(f"product recover after the failed manual procedure: exit {run.returncode}")
                    broken = not run.ok
            time.sleep(1.0)
        finally:
            log = writer.stop()
            moments = observer.stop()
        res.acked, res.in_doubt, res.samples = len(log.acked), len(log.in_doubt), len(moments)
        sb = checker.split_brain(moments, self.addresses)
        res.split_brain, res.skew_moments = sb.moments, sb.skew_moments
        if broken:
            res.unverified = "the cluster could not be brought back (product and by hand): rows unreadable"
            with contextlib.suppress(Exception):
                lab.clear_faults()
        else:
            self.check_rows(res, set(log.acked), sched)
            self.check_configs(res)

    def one_fault(self, index: int, fault: nemesis.Fault, by: str) -> FaultResult:
        fr = FaultResult(index, fault.describe(), fault.kind, by)
        why = nemesis.unavailable(fault.kind)
        if why:
            fr.skipped = why
            self.say(f"  {fault.describe()}: {why}")
            return fr
        try:
            nemesis.strike(fault, fr.notes, str(self.profile.database.config_file))
        except (TimeoutError, HostSQLError, lab.LabError) as exc:
            fr.struck = False
            fr.notes.append(f"HARNESS: striking failed: {exc}"[:500])
        t0 = time.monotonic()
        if by == "product":
            self.recover_product(fault, fr, t0)
            with contextlib.suppress(Exception):
                nemesis.after_recovery(fault, fr.notes)
        else:
            try:
                fr.notes.extend(recover_by_hand(self.profile, self.secrets))
                fr.ok = True
            except (ManualError, HostSQLError, lab.LabError, TimeoutError) as exc:
                fr.failure = str(exc)
            fr.seconds = time.monotonic() - t0
        state = "ok" if fr.ok else "FAILED"
        self.say(f"  {by:7} {fault.describe()}: {state} in {fr.seconds:.1f} s"
                 + (f" ({fr.attempts} runs)" if fr.attempts > 1 else "")
                 + (f"; {'; '.join(fr.notes)}" if fr.notes else ""))
        return fr

    # -------------------------------------------------------------------------------- checks

    def check_rows(self, res: ScheduleResult, acked: set[int], sched: int) -> None:
        digests: dict[str, str] = {}
        for node in DATA_NODES:
            try:
                rows = host_sql(node, f"SET SESSION wsrep_sync_wait=15; SELECT id FROM {DATABASE}.{TABLE} "
                                      f"WHERE sched={sched}", timeout=60)
                present = {int(r[0]) for r in rows}
                digest = host_sql(node, "SET SESSION wsrep_sync_wait=15; "
                                        f"SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', id, sched, via, at))), 0) "
                                        f"FROM {DATABASE}.{TABLE}; "
                                        "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', id, v))), 0) "
                                        f"FROM {DATABASE}.big", timeout=60)
            except HostSQLError as exc:
                if "big' doesn't exist" in str(exc):
                    digest = host_sql(node, "SET SESSION wsrep_sync_wait=15; SELECT COUNT(*), "
                                            "COALESCE(SUM(CRC32(CONCAT_WS('|', id, sched, via, at))), 0) "
                                            f"FROM {DATABASE}.{TABLE}", timeout=60)
                else:
                    res.unverified = f"{node}: {exc}"
                    return
            lost = checker.missing(acked, present)
            if lost:
                res.lost[node] = lost
            digests[node] = " / ".join(" ".join(r) for r in digest)
        if len(set(digests.values())) > 1:
            res.node_diff.append("rows + checksum differ: " + "; ".join(f"{n}: {d}" for n, d in digests.items()))

    def check_configs(self, res: ScheduleResult) -> None:
        remote = Remote(self.profile)
        try:
            changes = plan_files(self.profile, self.secrets, remote)
            for c in changes:
                if c.action != "unchanged":
                    res.config_problems.append(f"{c.node}:{c.file.path} is not what was rendered ({c.action})")
            for fr in res.faults:
                res.config_problems += [n for n in fr.notes if n.startswith(("HALF-WRITTEN", "NO BACKUP"))]
                if fr.kind == "ssh-drop" and fr.ok:  # the local edit must survive in a backup
                    node, path = fr.fault.split("(")[1].split(",")[0], str(self.profile.database.config_file)
                    n_backups = remote[node].run(["sh", "-c", 'grep -l "local edit by the fault suite" '
                                                  '"$1"/*"$2" 2>/dev/null | wc -l', "g", BACKUP_ROOT, path],
                                                 check=False).stdout.strip()
                    if n_backups in ("", "0"):
                        res.config_problems.append(f"{node}:{path}: the locally edited file was replaced "
                                                   "without a backup")
        except RemoteError as exc:
            res.config_problems.append(f"could not read the configs: {exc}")
        finally:
            remote.close()

    # -------------------------------------------------------------------------------- report

    @staticmethod
    def schedule_line(r: ScheduleResult) -> str:
        verdict = "clean" if r.clean else "PROBLEM"
        return (f"  -> schedule {r.index}: {verdict}; acked {r.acked}, in doubt {r.in_doubt}, lost {r.lost_count}"
                + (f" ({r.unverified})" if r.unverified else "")
                + f", split-brain moments {len(r.split_brain)}, view skew {r.skew_moments}/{r.samples} samples"
                + (f", node diff: {r.node_diff}" if r.node_diff else "")
                + (f", config: {r.config_problems}" if r.config_problems else "")
                + (f"; setup: {'; '.join(r.setup)}" if r.setup else "") + f" [{r.seconds:.0f} s]")


def _last_error(output: str) -> str:
    for line in reversed(output.strip().splitlines()):
        if "failed" in line or "error" in line.lower():
            return line.strip()[:400]
    return (output.strip().splitlines() or ["(no output)"])[-1][:400]


def as_json(results: list[ScheduleResult]) -> str:
    return json.dumps([asdict(r) for r in results], indent=1, default=str)


def summarize(results: list[ScheduleResult]) -> dict[str, Any]:
    faults = [f for r in results for f in r.faults]
    kinds = [k for k in nemesis.KINDS if any(f.kind == k for f in faults)]
    rows = []
    for k in kinds:
        prod = [f for f in faults if f.kind == k and f.by == "product" and not f.skipped and f.struck]
        hand = [f for f in faults if f.kind == k and f.by == "hand"]
        ps = [f.seconds for f in prod if f.ok and f.seconds is not None]
        hs = [f.seconds for f in hand if f.ok and f.seconds is not None]
        rows.append({
            "kind": k, "faults": len(prod), "recovered": sum(f.ok for f in prod),
            "second_run": sum(f.ok and f.attempts > 1 for f in prod),
            "p50": checker.median(ps), "max": max(ps) if ps else None,
            "hand": len(hand), "hand_ok": sum(f.ok for f in hand), "hand_p50": checker.median(hs),
            "skipped": sorted({f.skipped for f in faults if f.kind == k and f.skipped}),
        })
    return {
        "schedules": len(results),
        "faults": sum(1 for f in faults if f.by == "product" and not f.skipped and f.struck),
        "not_struck": sum(1 for f in faults if not f.struck),
        "hand": sum(1 for f in faults if f.by == "hand"),
        "skipped": sum(1 for f in faults if f.skipped),
        "acked": sum(r.acked for r in results), "in_doubt": sum(r.in_doubt for r in results),
        "lost": sum(r.lost_count for r in results),
        "unverified": sum(1 for r in results if r.unverified),
        "split_brain": sum(len(r.split_brain) for r in results),
        "skew": sum(r.skew_moments for r in results),
        "node_diff": sum(len(r.node_diff) for r in results),
        "config_problems": sum(len(r.config_problems) for r in results),
        "failed_recoveries": sum(1 for f in faults if f.by == "product" and f.attempts and not f.ok),
        "kinds": rows,
    }


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} s"


def table(summary: dict[str, Any]) -> str:
    s = summary
    lines = [
        "| schedules | faults (product) | acknowledged writes | in doubt | lost | split-brain moments | "
        "failed recoveries | node differences | config problems |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {s['schedules']} | {s['faults']}"
        + (f" (+{s['not_struck']} the harness failed to strike)" if s["not_struck"] else "")
        + f" | {s['acked']} | {s['in_doubt']} | {s['lost']}"
        + (f" (+{s['unverified']} schedule(s) unverifiable)" if s["unverified"] else "")
        + f" | {s['split_brain']} | {s['failed_recoveries']} | {s['node_diff']} | {s['config_problems']} |",
        "",
        "| fault kind | faults | recovered by the product | of which on a 2nd run | p50 | max | by hand | "
        "p50 by hand |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k in s["kinds"]:
        if k["skipped"] and not k["faults"]:
            lines.append(f"| {k['kind']} | skipped: {'; '.join(k['skipped'])} | | | | | | |")
            continue
        lines.append(f"| {k['kind']} | {k['faults']} | {k['recovered']} | {k['second_run']} | {_s(k['p50'])} | "
                     f"{_s(k['max'])} | {k['hand_ok']}/{k['hand']} | {_s(k['hand_p50'])} |")
    return "\n".join(lines)


def findings(results: list[ScheduleResult], seed: int, extra: str = "") -> list[str]:
    """One line per problem, each with the command that replays its schedule (`extra`: the run's options
    that shape schedules, e.g. ``--short``)."""
    out = []
    for r in results:
        repro = f"`.venv/bin/python -m tests.faults --seed {seed} --only {r.index}{extra}`"
        for f in r.faults:
            if not f.struck:
                out.append(f"- schedule {r.index}: the harness could not strike {f.fault} ({repro}): "
                           + "; ".join(f.notes))
            if not f.ok and not f.skipped:  # failed, or left a half-written file / a file with no backup
                out.append(f"- schedule {r.index}, {f.by} recovery of {f.fault} FAILED ({repro}): "
                           + "; ".join(f.notes) + ("\n\n  ```\n  " + f.failure.replace("\n", "\n  ") + "\n  ```"
                                                   if f.failure else ""))
        if r.lost:
            for node, ids in r.lost.items():
                out.append(f"- schedule {r.index}: {len(ids)} acknowledged row(s) missing on {node} "
                           f"(ids {ids[:10]}{' ...' if len(ids) > 10 else ''}) after "
                           f"{', '.join(f.fault for f in r.faults)} ({repro})")
        if r.unverified:
            out.append(f"- schedule {r.index}: rows unverifiable: {r.unverified} ({repro})")
        for t, what in r.split_brain[:5]:
            out.append(f"- schedule {r.index}: split-brain at {time.strftime('%H:%M:%S', time.gmtime(t))}: "
                       f"{what} ({repro})")
        for p in r.node_diff + r.config_problems:
            out.append(f"- schedule {r.index}: {p} ({repro})")
    return out
