"""The one pipeline every front end runs: check -> render/apply -> coordinated bootstrap -> verify.

It knows nothing of who called it: progress goes out through the :class:`Listener` callbacks (the CLI
prints them with rich, the TUI posts them to widgets).  It raises :class:`PipelineError` with the
step that failed and a message a person can act on.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from wizard.agent.rootcmd import RootScript
from wizard.agent.runtime import COMPONENT_GONE
from wizard.apply import (
    FileChange,
    apply_files,
    disable_socket_activation,
    hook_crafter_setenv,
    plan_files,
    prepare_directories,
    sst_auth_changed,
    stale_services,
)
from wizard.checks import CheckResult, Status, run_checks, worst
from wizard.checks.names import query_a
from wizard.coordinator import (
    FRONT_NODE,
    BootstrapError,
    BootstrapReport,
    Coordinator,
    Event,
    RunLease,
    front_key,
    key,
    redis_client,
    run_family,
)
from wizard.crafter.publisher import PublisherError, await_publisher
from wizard.crafter.sync_trust import SyncTrustError, ensure_sync_trust
from wizard.datadir import initialise_empty
from wizard.dnsapi import DnsApiError, RecordChange, push_record
from wizard.nodesql import sql
from wizard.profile import Profile, Role
from wizard.remote import PIDS_TEXT, Remote, RemoteError, RunLog
from wizard.run_history import RunRecorder, follow_run, last_run
from wizard.secrets import Secrets
from wizard.status import ClusterStatus, collect, studio_node_at

STEPS = ("check", "apply", "bootstrap", "verify")
VERIFY_TIMEOUT = 20.0  # seconds verify waits for a healthy verdict before it fails


@dataclass
class Listener:
    """Callbacks a front end may set; each is optional.  A callback may raise to stop the pipeline: it
    stops at that point, files already written stay written (and backed up), agents already launched
    finish on their own."""

    on_step: Callable[[str, str, str], None] | None = None  # (step, state: start/done/fail/skip, message)
    on_check: Callable[[CheckResult], None] | None = None
    on_file: Callable[[FileChange], None] | None = None
    on_event: Callable[[Event], None] | None = None

    def step(self, step: str, state: str, message: str = "") -> None:
        if self.on_step is not None:
            self.on_step(step, state, message)


class PipelineError(Exception):
    def __init__(self, step: str, message: str) -> None:
        self.step = step
        self.message = message
        super().__init__(f"{step}: {message}")


@dataclass
class PipelineResult:
    checks: list[CheckResult] = field(default_factory=list)
    applied: list[FileChange] = field(default_factory=list)
    bootstrap: BootstrapReport | None = None
    status: ClusterStatus | None = None
    seconds: float = 0.0
    pending_restarts: dict[str, str] = field(default_factory=dict)  # "node/service" -> why it waits
    dns_change: RecordChange | None = None  # the authoring record through the PowerDNS API (None: no API)


def new_runlog(directory: Path | str = "runs") -> RunLog:
    return RunLog(Path(directory).absolute() / f"run-{time.strftime('%Y%m%dT%H%M%S')}.jsonl")


DRAIN_TIMEOUT = 5.0
"""How long a data node about to restart waits for its clients' running statements to finish (seconds)."""

CLIENT_STATEMENTS = ("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND IN ('Query', 'Execute') "
                     "AND ID <> CONNECTION_ID() AND USER NOT IN ('system user', 'event_scheduler')")


ACCEPT_QUERIES = "SET GLOBAL wsrep_reject_queries = NONE"
"""Undoes :func:`drain_clients`: the node accepts client queries again."""


def drain_clients(profile: Profile, secrets: Secrets, remote: Remote, node: str,
                  timeout: float = DRAIN_TIMEOUT) -> int:
    """Before a data node's server is stopped for a restart: ``wsrep_reject_queries=ALL``, then wait (up to
    ``timeout`` seconds) until no client statement runs there.  Returns the statements still running (0: drained).

    Why: MariaDB's shutdown disconnects the Galera provider first and closes client connections only after
    (``wsrep_shutdown_replication`` in sql/wsrep_mysqld.cc), so a commit arriving in between is answered 1180
    "Not connected to Primary Component": a failed commit, on a cluster that stayed Primary.  With the node
    rejecting queries, a client's next statement is refused with 1047 before anything begins (it retries on the
    other node) and the statements already running finish while the node is still a member.  The setting is
    not persistent: the restarted server starts with ``NONE``."""
    conn = remote[node]
    sql(conn, profile, secrets, "SET GLOBAL wsrep_reject_queries = ALL", check=False)
    deadline = time.monotonic() + timeout
    running = -1
    while True:
        rows = sql(conn, profile, secrets, CLIENT_STATEMENTS, check=False, timeout=10)
        running = int(rows[0][0]) if rows and rows[0] and rows[0][0].isdigit() else -1
        if running <= 0 or time.monotonic() > deadline:
            return max(running, 0)
        time.sleep(0.05)


def stop_for_restart(profile: Profile, remote: Remote, node: str, service: str,
                     secrets: Secrets | None = None) -> None:
    """Stop one service cleanly so the agents bring it back with its new config (rolling, one at a time).
    A data node's clients are drained first (:func:`drain_clients`) when ``secrets`` are given; if the stop
    fails, the node accepts queries again."""
    proc = "mariadbd" if service == "mariadb" else "garbd"
    drain = secrets if service == "mariadb" else None
    if drain is not None:
        drain_clients(profile, drain, remote, node)
    try:
        if profile.services.manager == "systemd":
            unit = profile.services.mariadb_unit if service == "mariadb" else profile.services.garbd_unit
            remote[node].run(STOP_UNIT(unit=unit), timeout=300, what=f"stop {unit}")
            return
        remote[node].run(STOP_DAEMON(proc=proc), timeout=90, what=f"stop {proc}")
    except BaseException:  # a failed stop, or this run interrupted between the drain and the stop
        if drain is not None:
            with contextlib.suppress(Exception):
                sql(remote[node], profile, drain, ACCEPT_QUERIES, check=False)
        raise


def accept_queries_again(profile: Profile, secrets: Secrets, remote: Remote, status: ClusterStatus,
                         listener: Listener) -> list[str]:
    """Nodes that run but refuse client queries (``wsrep_reject_queries`` not ``NONE``, read by
    :func:`wizard.status.collect`): a rolling restart cut off after its drain (:func:`drain_clients`) and before
    its stop leaves a node so, Synced but useless to authors.  Sets ``NONE`` on each and says so; returns their
    names.  Run by every replay and recover before it verifies."""
    lifted = []
    for n in status.nodes:
        if n.role == Role.STUDIO.value and n.refuses_queries:
            listener.step("verify", "running", f"{n.name} refused client queries (wsrep_reject_queries="
                          f"{n.refuses_queries}, left by a rolling restart cut off after its drain): accepting "
                          "them again")
            sql(remote[n.name], profile, secrets, ACCEPT_QUERIES, check=False)
            lifted.append(n.name)
    return lifted


STOP_UNIT = RootScript("stop-unit", "systemctl stop {unit}")
STOP_DAEMON = RootScript("stop-daemon", "pkill -TERM -x {proc} || exit 0; i=0; "
                         "while [ -n \"$(" + PIDS_TEXT + ")\" ]; do "
                         "i=$((i+1)); [ $i -gt 600 ] && exit 1; sleep 0.1; done")


def rotate_sst_secret(profile: Profile, secrets: Secrets, remote: Remote, coordinator: Coordinator,
                      listener: Listener, shipping: Future[Any]) -> None:
    """The SST password changed: the account and the running servers first, the files after, so the next
    SST never meets a donor and an account that disagree."""
    status = collect(profile, secrets, remote, dns=False)
    primary = [n.name for n in status.nodes if n.role == "studio" and n.primary_synced]
    if not primary:
        listener.step("apply", "running", "the SST password changed; no Primary Component runs now, so the "
                                          "account is set by the node that bootstraps")
        return
    running = [n.name for n in status.nodes if n.role == "studio" and n.cluster_status == "Primary"]
    shipping.result()
    listener.step("apply", "running", f"the SST password changed: updating the account on {primary[0]} and "
                                      f"wsrep_sst_auth on {', '.join(running)} before the files")
    coordinator.sst_secret(primary[0], running)


def restart_blocker(profile: Profile, status: ClusterStatus, node: str, service: str) -> str:
    """Why restarting ``service`` on ``node`` now could end the Primary Component ("" when it is safe).

    mariadb: every other data node must be Primary and Synced (a clean leave keeps their component
    Primary).  garbd: some data node must be Primary and Synced.
    """
    data = [n for n in status.nodes if n.role == "studio"]
    if service == "mariadb":
        others = [n for n in data if n.name != node]
        down = [n.name for n in others if not n.primary_synced]
        if down:
            return (f"{' and '.join(down)} {'is' if len(down) == 1 else 'are'} not Primary and Synced, so stopping "
                    f"{node} would leave no serving node")
        return ""
    if not any(n.primary_synced for n in data):
        return "no data node is Primary and Synced"
    return ""


def pointed_at(profile: Profile) -> str | None:
    """The Studio node the authoring name points at now (one A record of a Studio node's address), or None."""
    try:
        return studio_node_at(profile, query_a(profile, profile.dns.authoring_name, 1.0))
    except OSError:
        return None


def _agent_step(p: Profile) -> str:
    shipped = [n.name for n in p.nodes if not n.ssh.agent_scope]
    installed = [n.name for n in p.nodes if n.ssh.agent_scope]
    parts = ([f"ship the node agent to {', '.join(shipped)}"] if shipped else []) + (
        [f"check the version of the agent root installed on {', '.join(installed)} (sudo_scope: agent)"]
        if installed else [])
    return "; ".join(parts) + " and start them at once"


def bootstrap_steps(profile: Profile) -> list[str]:
    p = profile
    data = ", ".join(n.name for n in p.studio_nodes)
    return [
        _agent_step(p),
        f"each agent registers grastate.dat, --wsrep-recover position and server state in Redis ({p.redis.where})",
        "if any node is already in a Primary Component: nobody bootstraps, the others join it",
        f"else, once {data} have registered: the most advanced node wins (ties: {p.preferred_primary})",
        "the winner takes the Redis lock (SET NX PX) and a fencing token (INCR), starts --wsrep-new-cluster",
        "the winner creates the SST user; the other data node joins (IST or SST by mariabackup)",
        f"garbd joins on {p.arbiter.name} once both data nodes are in the Primary Component; health endpoints "
        f"start on :{p.dns.health_port}",
        f"verify: both data nodes Primary + Synced, cluster size 3, {p.dns.authoring_name} resolves to a Studio node",
    ]


def merge_reports(reports: list[BootstrapReport]) -> BootstrapReport:
    """One report for a run that took several agent rounds: per node, the round that did something."""
    outcomes = dict(reports[0].outcomes)
    for report in reports[1:]:
        for name, outcome in report.outcomes.items():
            if outcome.action not in ("", "none") or not outcome.ok:
                outcomes[name] = outcome
    return BootstrapReport(reports[-1].run_id, outcomes, [e for r in reports for e in r.events],
                           sum(r.seconds for r in reports))


def _background(fn: Callable[[], Any]) -> Future[Any]:
    """Run one job on its own thread; its errors surface where the pipeline calls .result()."""
    future: Future[Any] = Future()

    def run() -> None:
        try:
            future.set_result(fn())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True, name=getattr(fn, "__name__", "job")).start()
    return future


def recorded(listener: Listener, recorder: RunRecorder, runlog: RunLog | None) -> Listener:
    """The listener, with every step also told to the run's story (the event stream) and the run log."""
    def on_step(step: str, state: str, message: str) -> None:
        recorder.step(step, state, message)
        if runlog is not None:
            runlog.record(step=step, state=state, message=message, run=recorder.run_id, file_only=True)
        listener.step(step, state, message)

    return Listener(on_step=on_step, on_check=listener.on_check, on_file=listener.on_file,
                    on_event=listener.on_event)


def follow_running(profile: Profile, client: Any, listener: Listener, run_id: str, timeout: float) -> None:
    """Before anything changes: tell what happened to the last run when it ended without its front end, and
    when another run still holds the cluster, follow it to its end instead of starting a second run beside it.
    Raises PipelineError("run", ...) naming that run when it still holds the cluster after ``timeout``."""
    try:
        before = last_run(client, profile)
        holder = str(client.get(key(profile, "run-lease")) or "")
    except redis.RedisError:
        return  # the bootstrap step reports a store that is down, with its fix
    if before is not None and before.run != run_id and before.outcome == "interrupted":
        listener.step("run", "running", "; ".join(line.strip() for line in before.lines()))
    if not holder:
        return
    story = last_run(client, profile, holder.split("-", 1)[0])
    who = f" ({story.front}, started {time.strftime('%H:%M:%S', time.gmtime(story.started))} UTC)" if story else ""
    listener.step("run", "running", f"run {holder}{who} is still going: following it to its end instead of "
                                    "starting a second run beside it")
    def milestone(ev: Event) -> None:  # its agents' start and end and its front end's steps: not every step
        if listener.on_event is not None and (ev.step == "agent" or ev.node == FRONT_NODE or ev.state == "failed"):
            listener.on_event(ev)

    try:
        how = follow_run(client, profile, holder, timeout=timeout, on_event=milestone)
    except TimeoutError:
        raise PipelineError("run", f"run {holder}{who} still holds the cluster after {timeout:.0f}s; wait for it "
                                   f"(studio-cluster status shows its last step) and run again") from None
    after = last_run(client, profile, holder.split("-", 1)[0])
    how_text = "its front end was gone and its agents finished" if how == "abandoned" else "released"
    listener.step("run", "running", f"run {holder} let the cluster go ({how_text})"
                  + (f": {after.verdict}" if after is not None else "") + "; this run goes on from here")


def replay(profile: Profile, secrets: Secrets, *, remote: Remote | None = None, listener: Listener | None = None,
           force: str | None = None, skip_checks: bool = False, runlog: RunLog | None = None,
           timeouts: dict[str, float] | None = None, run_id: str | None = None) -> PipelineResult:
    """The pipeline, as one run ``run_id`` (default: a new id) whose story goes to the event stream and the
    run log (see :mod:`wizard.run_history`).  A run that another front end left going is followed first.
    Raises PipelineError naming the step that failed."""
    client = redis_client(profile, secrets, failover_wait_s=min(profile.redis.failover_wait_s, 5.0))
    recorder = RunRecorder(client, profile, run_id)
    listener = recorded(listener or Listener(), recorder, runlog)
    ok, why = False, "stopped (the front end raised or was interrupted)"
    lease_timeout = float((timeouts or {}).get("lease_timeout", 600))
    # The run's lease covers the whole run, checks to verify: a second run's check listeners or files must never
    # meet this run's agents starting servers (its bootstrap rounds find the lease theirs already).
    lease = RunLease(client, key(profile, "run-lease"), run_family(recorder.run_id),
                     front_key(profile, recorder.run_id))
    owned = False
    try:
        follow_running(profile, client, listener, recorder.run_id, lease_timeout)
        owned = take_lease(lease, listener, lease_timeout)
        recorder.start(str(runlog.path) if runlog is not None and runlog.path is not None else "")
        result = _replay(profile, secrets, remote=remote, listener=listener, force=force, skip_checks=skip_checks,
                         runlog=runlog, timeouts=timeouts, run_id=recorder.run_id)
        ok, why = True, "the cluster verified healthy"
        return result
    except PipelineError as exc:
        why = f"{exc.step}: {exc.message}"
        raise
    finally:
        recorder.end(ok, why)
        if owned:
            lease.release()
        client.close()


def take_lease(lease: RunLease, listener: Listener, timeout: float) -> bool:
    """The run's lease for the whole run; a run that takes it in the meantime is waited for up to ``timeout``
    s.  Returns whether it was taken here.  Raises PipelineError("run", ...) naming the holder; a store that is
    down is left to the bootstrap step, which names it with its fix (returns False)."""
    def waiting(holder: str) -> None:
        listener.step("run", "running", f"another run ({holder}) holds the cluster; waiting for it")

    try:
        return lease.acquire(timeout, waiting)
    except TimeoutError as exc:
        raise PipelineError("run", str(exc)) from None
    except redis.RedisError:
        return False


def _replay(profile: Profile, secrets: Secrets, *, remote: Remote | None, listener: Listener, force: str | None,
            skip_checks: bool, runlog: RunLog | None, timeouts: dict[str, float] | None,
            run_id: str) -> PipelineResult:
    own = remote is None
    remote = remote or Remote(profile, runlog, key_passphrases=secrets.key_passphrases)
    result = PipelineResult()
    start = time.monotonic()
    coordinator = Coordinator(profile, secrets, remote)
    # Shipping the agent changes nothing a node runs, so it overlaps the checks instead of following them.
    shipping = _background(coordinator.ship_agent)
    daemons: Future[Any] | None = None
    try:
        if skip_checks:
            listener.step("check", "skip", "checks skipped")
        else:
            listener.step("check", "start", "running prerequisite checks")
            result.checks = run_checks(profile, secrets, remote=remote, on_result=listener.on_check)
            failed = [r for r in result.checks if r.status in (Status.FAIL, Status.SKIP)]
            if worst(result.checks) is Status.FAIL:
                listener.step("check", "fail", f"{len(failed)} check(s) failed")
                raise PipelineError("check", "; ".join(f"{r.node}/{r.title}: {r.summary} (fix: {r.fix})"
                                                       for r in failed))
            listener.step("check", "done", f"{len(result.checks)} checks passed")

        # The health/heartbeat daemons (503 until Primary + Synced) start alongside apply and bootstrap.
        daemons = _background(lambda: (shipping.result(), coordinator.ensure_daemons()))
        listener.step("apply", "start", "comparing rendered files with the nodes")
        try:
            changes = plan_files(profile, secrets, remote)
            if sst_auth_changed(changes):
                rotate_sst_secret(profile, secrets, remote, coordinator, listener, shipping)
            result.applied = apply_files(changes, remote, on_change=listener.on_file)
            prepare_directories(profile, remote)
            disable_socket_activation(profile, remote)  # Debian's mariadb.socket would start a standalone server
            datadirs = initialise_empty(profile, remote)  # an empty datadir would abort the first start
            hooked = hook_crafter_setenv(profile, remote)
            ensure_sync_trust(profile, remote)  # Crafter nodes: git over SSH between them, host keys pinned
            # With a PowerDNS API the authoring record is pushed; without one it stays a rendered file.
            dns_change = push_record(profile, secrets) if profile.dns.api_url else None
        except RemoteError as exc:
            listener.step("apply", "fail", exc.message)
            raise PipelineError("apply", str(exc)) from None
        except DnsApiError as exc:
            listener.step("apply", "fail", exc.message)
            raise PipelineError("apply", f"{exc.message} (fix: {exc.hint})") from None
        except SyncTrustError as exc:
            listener.step("apply", "fail", exc.message)
            raise PipelineError("apply", exc.message) from None
        result.dns_change = dns_change
        added = [n for n, state in hooked.items() if state == "added"]
        initialised = [n for n, state in datadirs.items() if state == "initialised now"]
        listener.step("apply", "done", (f"{len(result.applied)} file(s) written" if result.applied
                                        else "every file already up to date")
                      + (f"; crafter-setenv.sh now sources the cluster settings on {', '.join(added)}" if added
                         else "")
                      + (f"; initialised the empty data directory {profile.database.data_dir} on "
                         f"{', '.join(initialised)} (mariadb-install-db)" if initialised else "")
                      + (f"; DNS record {dns_change.name} LUA {dns_change.action} through the PowerDNS API"
                         if dns_change is not None and dns_change.action != "unchanged" else ""))

        listener.step("bootstrap", "start", "agents electing and starting nodes")
        try:
            shipping.result()
            # Restarts owed: services running with a config older than the file on disk (written now, or
            # by an earlier run that stopped half way).  Rolling, one at a time, each only while it is safe.
            # First every node up (a stopped one starts with the new files and owes nothing), then the restarts.
            try:
                reports: list[BootstrapReport] = [coordinator.bootstrap(force=force, on_event=listener.on_event,
                                                                        timeouts=timeouts, run_id=run_id)]
            except BootstrapError as exc:
                if not any(COMPONENT_GONE in e for e in exc.report.errors):
                    raise
                # The Primary Component a node was joining went non-Primary under it (Galera's own membership
                # round failed, e.g. a donor killed while the backup's garbd left): the positions are judged
                # again by a fresh election, once, as `recover` would.  Nothing was bootstrapped before.
                listener.step("bootstrap", "running", "the Primary Component vanished while a node joined it: "
                              "electing again from the nodes' positions")
                reports = [coordinator.bootstrap(force=force, on_event=listener.on_event, timeouts=timeouts,
                                                 run_id=f"{run_id}-again")]
            owed = stale_services(changes, remote)
            for node, services in owed.items():
                for service in sorted(services):
                    current = collect(profile, secrets, remote, dns=False)
                    why = restart_blocker(profile, current, node, service)
                    if why:
                        result.pending_restarts[f"{node}/{service}"] = why
                        listener.step("bootstrap", "running", f"restart of {service} on {node} for its new config "
                                      f"is pending: {why}; the new file is on disk and the next replay finishes "
                                      "the rollout")
                        continue
                    listener.step("bootstrap", "running", f"restarting {service} on {node} for its new config")
                    stop_for_restart(profile, remote, node, service, secrets)
                    reports.append(coordinator.bootstrap(force=force, on_event=listener.on_event,
                                                         timeouts=timeouts, run_id=f"{run_id}-{len(reports) + 1}"))
            result.bootstrap = merge_reports(reports)
            if daemons is not None:
                daemons.result()
        except BootstrapError as exc:
            listener.step("bootstrap", "fail", "; ".join(exc.report.errors))
            raise PipelineError("bootstrap", "; ".join(exc.report.errors)) from None
        except RemoteError as exc:
            listener.step("bootstrap", "fail", exc.message)
            raise PipelineError("bootstrap", str(exc)) from None
        except redis.RedisError as exc:
            fix = ("the Redis servers and Sentinels (or fix redis.sentinels / redis.master_name / redis.password)"
                   if profile.redis.uses_sentinel else "Redis there (or fix redis.url / redis.password)")
            message = (f"the coordination store {profile.redis.where} failed: {exc}; start {fix} "
                       "and run again: the agents decide nothing without it")
            listener.step("bootstrap", "fail", message)
            raise PipelineError("bootstrap", message) from None
        actions = {n: o.action for n, o in result.bootstrap.outcomes.items()}
        listener.step("bootstrap", "done", ", ".join(f"{n}: {a}" for n, a in actions.items()))

        listener.step("verify", "start", "reading the cluster status")
        # A condition with a deadline: a dead garbd incarnation is evicted and health checks settle
        # within Galera's and the endpoint's own timeouts (evs.inactive_timeout 15 s).
        deadline = time.monotonic() + VERIFY_TIMEOUT
        result.status = collect(profile, secrets, remote)
        if accept_queries_again(profile, secrets, remote, result.status, listener):
            result.status = collect(profile, secrets, remote)
        while not result.status.healthy and time.monotonic() < deadline:
            time.sleep(0.5)
            result.status = collect(profile, secrets, remote)
        if not result.status.healthy:
            listener.step("verify", "fail", result.status.reason)
            raise PipelineError("verify", f"cluster is {result.status.verdict}: {result.status.reason}")
        if profile.studio.nodes and result.status.authoring_node in profile.studio.nodes:
            try:  # the daemons make the node the authoring name points at the primary publisher
                await_publisher(profile, secrets, result.status.authoring_node, pointed=lambda: pointed_at(profile))
            except PublisherError as exc:
                listener.step("verify", "fail", exc.message)
                raise PipelineError("verify", exc.message) from None
        listener.step("verify", "done", result.status.reason)
        return result
    finally:
        for job in (shipping, daemons):
            if job is not None:
                with contextlib.suppress(Exception):
                    job.result()  # never leave a thread using the connections we are about to close
        result.seconds = time.monotonic() - start
        if own:
            remote.close()
