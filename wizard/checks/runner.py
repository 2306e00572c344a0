"""Runs every check on every node in parallel and reports each result as it finishes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed

from wizard.checks.base import CLUSTER, Check, CheckContext, CheckResult, Outcome, Status, all_checks, fail
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
               workers: int = 16) -> list[CheckResult]:
    own_remote = remote is None
    remote = remote or Remote(profile, key_passphrases=secrets.key_passphrases)
    ctx = CheckContext(profile, secrets, remote)
    results: list[CheckResult] = []

    def report(r: CheckResult) -> None:
        results.append(r)
        if on_result is not None:
            on_result(r)

    plan = planned(profile, only)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check") as pool:
            # Phase 1: SSH on every node; nothing else can run on a node we cannot reach.
            ssh_checks = [c for c in {c for c, _ in plan} if not c.needs_ssh and c.scope == "node"]
            first = [pool.submit(_execute, c, ctx, profile.node(n)) for c, n in plan if c in ssh_checks]
            ssh_ok: set[str] = set()
            ssh_failed: dict[str, str] = {}
            for fut in as_completed(first):
                r = fut.result()
                if r.status is not Status.FAIL:
                    ssh_ok.add(r.node)
                else:
                    ssh_failed[r.node] = r.summary
                report(r)
            if not ssh_checks:  # run without the ssh check: treat every node as reachable
                ssh_ok = {n.name for n in profile.nodes}
            ctx.shared["ssh_ok"] = ssh_ok
            rest = [(c, n) for c, n in plan if c not in ssh_checks]
            for setup in dict.fromkeys(c.setup for c, _ in rest if c.setup is not None):
                setup(ctx)
            futures = []
            for check, name in rest:
                if name == CLUSTER:
                    futures.append(pool.submit(_execute, check, ctx, None))
                elif check.needs_ssh and name not in ssh_ok:
                    why = ssh_failed.get(name, "")
                    report(CheckResult(check.id, check.title, name, Status.SKIP,
                                       f"not run: the SSH access check failed ({why[:90]})" if why else
                                       "not run: SSH failed", "fix the SSH access finding on this node first"))
                else:
                    futures.append(pool.submit(_execute, check, ctx, profile.node(name)))
            for fut in as_completed(futures):
                report(fut.result())
            for teardown in dict.fromkeys(c.teardown for c, _ in rest if c.teardown is not None):
                teardown(ctx)
    finally:
        if own_remote:
            remote.close()
    order = {(c.id, n): i for i, (c, n) in enumerate(plan)}
    return sorted(results, key=lambda r: order.get((r.check, r.node), 0))


def worst(results: Iterable[CheckResult]) -> Status:
    statuses = {r.status for r in results}
    for s in (Status.FAIL, Status.SKIP, Status.WARN):
        if s in statuses:
            return Status.FAIL if s is Status.SKIP else s
    return Status.OK
