"""Runs every check on every node in parallel and reports each result as it finishes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from wizard.checks.base import (
    CLUSTER,
    Check,
    CheckContext,
    CheckResult,
    Outcome,
    SetupFunc,
    Status,
    all_checks,
    fail,
)
from wizard.profile import Node, Profile
from wizard.remote import Remote, RemoteError
from wizard.secrets import REDACTOR, Secrets

OnResult = Callable[[CheckResult], None]


def planned(profile: Profile, only: Iterable[str] | None = None) -> list[tuple[Check, str]]:
    """Every (check, node name) pair a run will report, in display order."""
    wanted = set(only) if only else None
    out: list[tuple[Check, str]] = []
    for check in all_checks():
        if wanted is not None and check.id not in wanted:
            continue
        if check.scope == "cluster":
            out.append((check, CLUSTER))
        else:
            out.extend((check, n.name) for n in profile.nodes if check.applies_to(n))
    return out


def _execute(check: Check, ctx: CheckContext, node: Node | None) -> CheckResult:
    start = time.monotonic()
    try:
        outcome: Outcome = check.func(ctx) if node is None else check.func(ctx, node)
    except RemoteError as exc:
        outcome = fail(exc.message, exc.hint or "see the run log for the failing command")
    except Exception as exc:  # a bug or an unexpected answer must not kill the whole run
        outcome = fail(f"check crashed: {type(exc).__name__}: {REDACTOR(str(exc))[:200]}",
                       "report this; run again with --json for details")
    return CheckResult(check.id, check.title, node.name if node else CLUSTER, outcome.status,
                       REDACTOR(outcome.summary), REDACTOR(outcome.fix), round(time.monotonic() - start, 3))


def run_checks(profile: Profile, secrets: Secrets, *, remote: Remote | None = None,
               only: Iterable[str] | None = None, on_result: OnResult | None = None,
               workers: int | None = None) -> list[CheckResult]:
    """Run the planned checks; `on_result` gets each result as it finishes (from this thread).  Returns the
    results in display order.

    Nothing runs on a node before its SSH access check has passed.  A node's own checks start the moment it has
    (nodes do not wait for each other); cluster checks that use no node start at once, and a cluster check that
    uses some nodes (``Check.uses``) once their SSH checks are in.  A node setup (``Check.node_setup``) runs on a
    node as soon as its SSH check passes.  Checks with a setup step, and the other cluster checks, start once
    every SSH check is in and the setups have run.  ``ctx.shared["ssh_ok"]``: the nodes whose SSH check passed so
    far (complete for the checks that wait for every node).  `workers`: threads, by default one per planned check
    and node setup (a node's commands share its connection).  A teardown runs once its checks' results are in."""
    own_remote = remote is None
    remote = remote or Remote(profile, key_passphrases=secrets.key_passphrases)
    ctx = CheckContext(profile, secrets, remote)
    results: list[CheckResult] = []

    def report(r: CheckResult) -> None:
        results.append(r)
        if on_result is not None:
            on_result(r)

    plan = planned(profile, only)
    ctx.shared["planned"] = {(c.id, n) for c, n in plan}  # which node facts to gather (wizard.checks.facts)
    stages = _Stages(profile, plan)
    try:
        threads = workers or len(plan) + len(profile.nodes) * len(stages.node_setups) + 2  # + setups, teardowns
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="check") as pool:
            pending: dict[Future[CheckResult], str | None] = {}  # -> the node an SSH check reached, else None
            ssh_ok: set[str] = set()
            ssh_failed: dict[str, str] = {}
            # a teardown runs once every result of its checks is in, beside the checks still running
            teardowns: dict[SetupFunc, int] = {}
            for c, _ in stages.gated:
                if c.teardown is not None:
                    teardowns[c.teardown] = teardowns.get(c.teardown, 0) + 1
            tearing: list[Future[None]] = []

            def finished(r: CheckResult) -> None:
                report(r)
                teardown = stages.teardown_of.get(r.check)
                if teardown is not None:
                    teardowns[teardown] -= 1
                    if teardowns[teardown] == 0:
                        tearing.append(pool.submit(teardown, ctx))

            def start(checks: Iterable[tuple[Check, str]]) -> None:
                for check, name in checks:
                    if name == CLUSTER:
                        pending[pool.submit(_execute, check, ctx, None)] = None
                    elif check.needs_ssh and name not in ssh_ok:
                        why = ssh_failed.get(name, "")
                        finished(CheckResult(check.id, check.title, name, Status.SKIP,
                                             f"not run: the SSH access check failed ({why[:90]})" if why else
                                             "not run: SSH failed", "fix the SSH access finding on this node first"))
                    else:
                        pending[pool.submit(_execute, check, ctx, profile.node(name))] = (
                            name if check in stages.ssh_checks else None)

            node_setups: list[Future[None]] = []

            def answered(names: Iterable[str]) -> Future[None] | None:
                """Some nodes' SSH checks are in: start what waited for them, and the node setups where SSH passed;
                the setups once all are in (beside the nodes' own checks, not before them)."""
                names = list(names)
                ctx.shared["ssh_ok"] = frozenset(ssh_ok)  # a snapshot: running checks may be reading it
                for name in names:
                    if name in ssh_ok:
                        node_setups.extend(pool.submit(s, ctx, profile.node(name)) for s in stages.node_setups)
                start(stages.answered(names))
                if not stages.all_answered:
                    return None
                return pool.submit(stages.run_setups, ctx, list(node_setups))

            start(stages.first)
            if not stages.first:  # run without the SSH check: treat every node as reachable
                ssh_ok.update(n.name for n in profile.nodes)
            gate = answered(ssh_ok if not stages.first else ())
            while pending or gate is not None:
                waiting: set[Future[Any]] = set(pending) | ({gate} if gate is not None else set())
                done, _ = wait(waiting, return_when=FIRST_COMPLETED)
                if gate is not None and gate in done:
                    gate.result()  # a setup's exception ends the run, as it always did
                    gate = None
                    start(stages.gated)
                for fut in done:
                    if fut not in pending:
                        continue
                    reached = pending.pop(fut)
                    r = fut.result()
                    finished(r)
                    if reached is not None:
                        if r.status is not Status.FAIL:
                            ssh_ok.add(reached)
                        else:
                            ssh_failed[reached] = r.summary
                        gate = answered([reached]) or gate
            for fut in tearing:
                fut.result()  # a teardown's exception ends the run, as it always did
    finally:
        try:
            ctx.close()
        finally:
            if own_remote:
                remote.close()
    order = {(c.id, n): i for i, (c, n) in enumerate(plan)}
    return sorted(results, key=lambda r: order.get((r.check, r.node), 0))


class _Stages:
    """When each planned check may start: `first` (the SSH checks) and cluster checks that use no node at once;
    the rest as :meth:`answered` releases them; `gated` after every SSH check and the setups."""

    def __init__(self, profile: Profile, plan: list[tuple[Check, str]]) -> None:
        self.ssh_checks = {c for c, _ in plan if not c.needs_ssh and c.scope == "node"}
        self.first = [(c, n) for c, n in plan if c in self.ssh_checks]
        self._expected = {n for _, n in self.first}  # nodes whose SSH check will answer
        self._answered: set[str] = set()
        self.gated: list[tuple[Check, str]] = []
        self._waiting: list[tuple[tuple[Check, str], set[str]]] = []  # a check and the nodes it waits for
        for c, n in plan:
            if c in self.ssh_checks:
                continue
            if c.setup is not None or c.node_setup is not None or (n == CLUSTER and c.needs_ssh and c.uses is None):
                self.gated.append((c, n))
            elif n == CLUSTER:
                self._waiting.append(((c, n), set(c.uses(profile)) if c.uses is not None and c.needs_ssh else set()))
            else:
                self._waiting.append(((c, n), {n}))
        self.teardown_of = {c.id: c.teardown for c, _ in self.gated if c.teardown is not None}
        self.node_setups = list(dict.fromkeys(c.node_setup for c, _ in self.gated if c.node_setup is not None))
        self.all_answered = False

    def answered(self, names: Iterable[str]) -> list[tuple[Check, str]]:
        """The checks that may start now that these nodes' SSH checks are in (every node once all are)."""
        self._answered.update(names)
        if not self.all_answered and self._expected <= self._answered:
            self.all_answered = True
            self._answered.update(n for _, needs in self._waiting for n in needs)  # no SSH check planned there
        ready = [key for key, needs in self._waiting if needs <= self._answered]
        self._waiting = [(key, needs) for key, needs in self._waiting if not needs <= self._answered]
        return ready

    def run_setups(self, ctx: CheckContext, node_setups: list[Future[None]]) -> None:
        """After the nodes' own setups (`node_setups`, running), every setup once."""
        for fut in node_setups:
            fut.result()
        for setup in dict.fromkeys(c.setup for c, _ in self.gated if c.setup is not None):
            setup(ctx)


def worst(results: Iterable[CheckResult]) -> Status:
    statuses = {r.status for r in results}
    for s in (Status.FAIL, Status.SKIP, Status.WARN):
        if s in statuses:
            return Status.FAIL if s is Status.SKIP else s
    return Status.OK
