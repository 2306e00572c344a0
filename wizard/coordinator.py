"""Launches the node agents over SSH and follows their Redis event stream.  It decides nothing itself:
the agents elect the bootstrapper among themselves (see wizard/agent/runtime.py)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import redis

from wizard.agent import redisconn
from wizard.agent.rootcmd import ENTRY, RootScript
from wizard.agent_bundle import CACHE_TAG, agent_argv, agent_digest, build_agent
from wizard.crafter.agent_settings import crafter_agent_config
from wizard.profile import Node, Profile, Role
from wizard.remote import Remote, RemoteError, Result, UnreachableError
from wizard.secrets import REDACTOR, Secrets

GARB_CONFIG = "/etc/default/garb"
FRONT_NODE = "(front end)"  # the node field of the events a front end writes about its own run


@dataclass(frozen=True)
class Event:
    id: str
    node: str
    step: str
    state: str
    message: str
    ts: float
    run: str
    extra: dict[str, str] = field(default_factory=dict)


OnEvent = Callable[[Event], None]
EVENT_FIELDS = ("node", "step", "state", "message", "ts", "run")


def event_from(entry_id: str, fields: dict[str, str]) -> Event:
    """One entry of the event stream as an Event (fields beyond the known ones go to ``extra``)."""
    return Event(entry_id, fields.get("node", ""), fields.get("step", ""), fields.get("state", ""),
                 fields.get("message", ""), float(fields.get("ts", 0) or 0), fields.get("run", ""),
                 {k: v for k, v in fields.items() if k not in EVENT_FIELDS})


@dataclass
class NodeOutcome:
    node: str
    ok: bool
    action: str = ""
    token: int | None = None
    error: str = ""


@dataclass
class BootstrapReport:
    run_id: str
    outcomes: dict[str, NodeOutcome]
    events: list[Event]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes.values())

    @property
    def errors(self) -> list[str]:
        return [f"{o.node}: {o.error}" for o in self.outcomes.values() if not o.ok]


class BootstrapError(Exception):
    def __init__(self, report: BootstrapReport) -> None:
        self.report = report
        super().__init__("; ".join(report.errors))


def redis_config(profile: Profile, secrets: Secrets) -> dict[str, Any]:
    """The coordination store's connection settings as the JSON keys :mod:`wizard.agent.redisconn` reads
    (the agents get the same keys in their config): Sentinels + master name, or the one Redis."""
    r = profile.redis
    cfg: dict[str, Any] = {"redis_db": r.db, "redis_password": secrets.redis_password,
                           "redis_failover_wait_s": r.failover_wait_s}
    if r.username is not None:  # an ACL user (wizard.redis_acl); absent: the default user, as before
        cfg["redis_username"] = r.username
    if r.uses_sentinel:
        cfg.update(redis_sentinels=[list(a) for a in r.sentinel_addresses], redis_master_name=r.master_name,
                   redis_sentinel_password=secrets.sentinel_password)
    else:
        cfg.update(redis_host=r.host, redis_port=r.port)
    return cfg


def redis_client(profile: Profile, secrets: Secrets, *, failover_wait_s: float | None = None) -> redis.Redis:
    """A client of the coordination store's master (through Sentinel when the profile lists Sentinels);
    every wizard-side Redis client is built here.  Lazy: the first command connects.  ``failover_wait_s``
    overrides how long a command retries a lost connection (a read-only view such as status wants an
    answer in seconds, not the whole failover budget)."""
    cfg = redis_config(profile, secrets)
    if failover_wait_s is not None:
        cfg["redis_failover_wait_s"] = failover_wait_s
    return redisconn.connect(cfg)


def key(profile: Profile, *parts: str) -> str:
    return ":".join((profile.redis.key_prefix, profile.cluster_name, *parts))


def agent_path(profile: Profile) -> str:
    """The agent as the node runs it: the zipapp unpacked and byte-compiled once per version (a zip
    import recompiles redis-py on every start, 0.3 s per agent call).  The directory is named after
    the version and never changes once in place, so two runs shipping at once cannot trip each other."""
    return f"{profile.services.run_dir}/agent-{agent_digest()[:16]}"


# Unpacks the uploaded zipapp into a private staging dir, compiles it, and renames it into place;
# if another run got there first, its copy (the same version) stays.  Older versions are pruned.
UNPACK = r"""
import compileall, glob, os, shutil, sys, tempfile, zipfile
pyz, target, digest, tag = sys.argv[1:5]
staging = tempfile.mkdtemp(prefix=os.path.basename(target) + ".", dir=os.path.dirname(target))
try:
    with zipfile.ZipFile(pyz) as zf:
        zf.extractall(staging)
    if sys.implementation.cache_tag != tag:  # byte code in the bundle is for another Python
        compileall.compile_dir(staging, quiet=1)
    with open(os.path.join(staging, "DIGEST"), "w") as fh:
        fh.write(digest)
    os.chmod(staging, 0o755)
    try:
        os.rename(staging, target)
    except OSError:
        if not os.path.exists(os.path.join(target, "DIGEST")):
            raise
finally:
    shutil.rmtree(staging, ignore_errors=True)
    os.unlink(pyz)
for old in glob.glob(os.path.join(os.path.dirname(target), "agent-*")):
    if old != target and os.path.isdir(old) and "." not in os.path.basename(old):
        shutil.rmtree(old, ignore_errors=True)
"""


def agent_config(profile: Profile, secrets: Secrets, node: Node, *, run_id: str = "",
                 force: str | None = None, timeouts: dict[str, float] | None = None) -> dict[str, Any]:
    db, svc = profile.database, profile.services
    cfg: dict[str, Any] = {
        "node": node.name, "role": node.role.value, "cluster_name": profile.cluster_name,
        "data_nodes": [n.name for n in profile.studio_nodes], "preferred": profile.preferred_primary,
        "addresses": {n.name: n.address for n in profile.nodes}, "galera_port": db.galera_port,
        "data_dir": str(db.data_dir), "run_dir": str(svc.run_dir), "socket": str(db.socket),
        "mariadbd": str(svc.mariadbd), "garbd": str(svc.garbd), "manager": svc.manager,
        "mariadb_unit": svc.mariadb_unit, "garbd_unit": svc.garbd_unit, "garb_config": GARB_CONFIG,
        "admin_user": db.admin_user, "admin_password": secrets.admin_password,
        "sst_user": db.sst_user, "sst_password": secrets.sst_password,
        **redis_config(profile, secrets), "key_prefix": profile.redis.key_prefix,
        "health_port": profile.dns.health_port, "expected_size": 3, "run_id": run_id, "force": force,
    }
    cfg.update(crafter_agent_config(profile, node))  # Studio in the health verdict, the primary publisher
    cfg.update(timeouts or {})
    return cfg


class EventFollower(threading.Thread):
    """Reads the cluster's event stream from where it stood before the run began."""

    def __init__(self, client: redis.Redis, stream: str, run_id: str | None, on_event: OnEvent | None) -> None:
        super().__init__(daemon=True, name="events")
        self.client, self.stream, self.run_id, self.on_event = client, stream, run_id, on_event
        last: Any = client.xrevrange(stream, count=1)
        self.last_id = last[0][0] if last else "0-0"
        self.events: list[Event] = []
        self.stop = threading.Event()

    def poll(self, block_ms: int | None) -> None:
        resp: Any = self.client.xread({self.stream: self.last_id}, block=block_ms, count=200)
        for _, entries in resp or []:
            for entry_id, fields in entries:
                self.last_id = entry_id
                ev = event_from(entry_id, fields)
                if self.run_id and ev.run and ev.run != self.run_id:
                    continue
                if ev.node == FRONT_NODE:  # the front end's own steps (wizard.run_history): it knows them
                    continue
                self.events.append(ev)
                if self.on_event is not None:
                    self.on_event(ev)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.poll(100)  # short blocks: finish() joins this thread at the end of a run
            except redis.RedisError:
                self.stop.wait(0.5)

    def finish(self) -> None:
        self.stop.set()
        self.join(timeout=5)
        with contextlib.suppress(redis.RedisError):
            self.poll(None)  # drain what arrived after the last read, without blocking


class RunLease:
    """One run at a time per cluster: a Redis lease (SET NX PX, renewed while the run lives).

    Two wizards started at once would otherwise interleave their agents node by node (an Arbiter agent
    of one run waiting for data nodes that only the other run's agents are bringing up).  The lease
    serializes runs; the agents' own bootstrap lock and fencing token still guard the bootstrap itself
    should a lease ever lapse.

    The agents renew the lease too while they work (they run detached: a front end that dies leaves them
    going), and the holder keeps a short-lived sign of life of its own (:func:`front_key`, TTL
    ``FRONT_TTL_MS``), so a later run can tell a run still driven from a front end from one whose front end
    is gone (see :mod:`wizard.run_history`)."""

    TTL_MS = 30_000
    FRONT_TTL_MS = 5_000
    RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
    RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

    def __init__(self, client: redis.Redis, lease_key: str, run_id: str, front: str = "") -> None:
        self.client, self.key, self.run_id = client, lease_key, run_id
        self.front = front  # the front end's sign-of-life key ("" none)
        self.stop = threading.Event()
        self.renewer = threading.Thread(target=self._renew, daemon=True, name="lease")

    def acquire(self, timeout: float, on_wait: Callable[[str], None] | None = None) -> bool:
        """Take the lease, waiting up to ``timeout`` s for another run to let it go (``on_wait`` is told who
        holds it).  Returns False, and takes nothing, when this run already holds it (the pipeline holds it for
        the whole run; its bootstrap rounds find it theirs).  Raises TimeoutError naming the holder."""
        deadline = time.monotonic() + timeout
        told = ""
        while not self.client.set(self.key, self.run_id, nx=True, px=self.TTL_MS):
            holder = str(self.client.get(self.key) or "")
            if holder == self.run_id:
                return False
            if holder and holder != told and on_wait is not None:
                on_wait(holder)
                told = holder
            if time.monotonic() > deadline:
                raise TimeoutError(f"another run ({holder}) held the cluster for {timeout:.0f}s; "
                                   "wait for it to finish, or check for a stuck wizard")
            self.stop.wait(0.2)
        self._beat()
        self.renewer.start()
        return True

    def _beat(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self.client.eval(self.RENEW, 1, self.key, self.run_id, str(self.TTL_MS))
            if self.front:
                self.client.set(self.front, self.run_id, px=self.FRONT_TTL_MS)

    def _renew(self) -> None:
        while not self.stop.wait(1.0):
            self._beat()

    def release(self) -> None:
        self.stop.set()
        if self.renewer.is_alive() and self.renewer is not threading.current_thread():
            self.renewer.join(5)  # before the caller closes the client: a beat on a closed connection raised
        with contextlib.suppress(redis.RedisError):
            self.client.eval(self.RELEASE, 1, self.key, self.run_id)


def run_family(run_id: str) -> str:
    """The pipeline run a bootstrap round belongs to: rounds after the first are ``<run>-<n>``."""
    return run_id.split("-", 1)[0]


def front_key(profile: Profile, run_id: str) -> str:
    """The Redis key a live front end of the run keeps (TTL a few seconds): gone means nobody drives it."""
    return key(profile, "run-front", run_family(run_id))


# The agent on the node, detached from the SSH channel that starts it (setsid, its stdio to files in
# <run_dir>/runs): a front end that dies, or a dropped connection, leaves it going to the end of the run.
# The config (secrets included) arrives on stdin into a 0600 file, checked whole by its size, and is
# unlinked as soon as the agent's shell has it open.  The exit code lands in .rc (written whole, renamed).
# The launch returns once the agent has its own session and its config open (its pid file): a sudo that
# runs the command on a pty of its own (Debian's use_pty) hangs that pty up when the command exits.  An agent
# that never started leaves no config behind.
LAUNCH = RootScript("agent-launch", """d={dir}
mkdir -p "$d" && chmod 700 "$d" || exit 1
find "$d" -type f -mtime +7 -delete 2>/dev/null
(umask 077 && cat > {cfg}) || exit 1
[ "$(wc -c < {cfg})" -eq {size} ] || {{ rm -f {cfg}; echo "the agent's config arrived cut short" >&2; exit 1; }}
rm -f {rc} {pid}
setsid sh -c {inner} </dev/null >/dev/null 2>&1 &
i=0
while [ ! -s {pid} ] && [ $i -lt 200 ]; do i=$((i+1)); sleep 0.05; done
[ -s {pid} ] || {{ rm -f {cfg}; echo "the agent did not start within 10s" >&2; exit 1; }}
echo launched""")
INNER = RootScript("agent-detached", "exec 3<{cfg}; rm -f {cfg}; echo $$ > {pid}; python3 {AGENT} {command} <&3 3<&- "
                   ">{out} 2>&1; echo $? > {rc}.tmp; mv -f {rc}.tmp {rc}")
RECONNECT_S = 30.0  # seconds the wait for a detached agent's result tries to reconnect to its node
# Waits for the detached agent's exit code and prints its output; dying with the SSH channel loses nothing.
WAIT = RootScript("agent-wait", """i=0
while [ ! -e {rc} ]; do
  if [ -s {pid} ]; then
    kill -0 "$(cat {pid})" 2>/dev/null || [ -e {rc} ] || {{
      echo "the agent (pid $(cat {pid})) exited without a result; its output:" >&2; tail -c 2000 {out} >&2; exit 70; }}
  else
    i=$((i+1)); [ $i -gt 150 ] && {{ echo "the agent did not start within 30s" >&2; exit 70; }}
  fi
  sleep 0.2
done
cat {out}
exit "$(cat {rc})"
""")
READ_DIGEST = RootScript("agent-digest", "cat {path} 2>/dev/null || true")
UNPACK_AGENT = RootScript("agent-unpack", UNPACK, kind="py")


def agent_result(res: Result) -> dict[str, Any]:
    """An agent call's JSON result (its last ``{...}`` line), with ``error`` set when it exited non-zero; or
    ``{"error": ...}`` with the tail of its output when it printed none."""
    lines = [ln for ln in res.stdout.strip().splitlines() if ln.startswith("{")]
    if lines:
        out: dict[str, Any] = json.loads(lines[-1])
        if res.exit_code != 0 and "error" not in out:
            out["error"] = f"agent exited {res.exit_code}"
        return out
    return {"error": REDACTOR(f"agent exited {res.exit_code}: {(res.stderr or res.stdout).strip()[-400:]}")}


class Coordinator:
    def __init__(self, profile: Profile, secrets: Secrets, remote: Remote) -> None:
        self.profile, self.secrets, self.remote = profile, secrets, remote
        self._shipped: set[str] = set()  # nodes known to hold this agent version: no second round trip

    def ship_agent(self, nodes: list[Node] | None = None) -> dict[str, bool]:
        """Upload the agent where its hash differs; returns node -> uploaded."""
        nodes = [n for n in (nodes or self.profile.nodes) if n.name not in self._shipped]
        if not nodes:
            return {}
        path, digest = agent_path(self.profile), agent_digest()

        def one(node: Node) -> tuple[str, bool]:
            conn = self.remote[node.name]
            if conn.agent_scope:  # the SSH user cannot install: root did, with the installer `sudoers` writes
                conn.require_installed_agent()
                return node.name, False
            have = conn.run(READ_DIGEST(path=path + "/DIGEST"), timeout=15).stdout.strip()
            if have == digest:
                return node.name, False
            upload = f"{path}.{uuid.uuid4().hex[:8]}.pyz"
            conn.put(build_agent(), upload, mode=0o600)
            conn.run(UNPACK_AGENT(upload, path, digest, CACHE_TAG), timeout=120, what="unpack the agent")
            return node.name, True

        with ThreadPoolExecutor(len(nodes)) as pool:
            shipped = dict(pool.map(one, nodes))
        self._shipped.update(shipped)
        return shipped

    def _run_agent(self, node: Node, command: str, cfg: dict[str, Any], timeout: float) -> dict[str, Any]:
        conn = self.remote[node.name]
        argv = [ENTRY, command] if conn.agent_scope else agent_argv(agent_path(self.profile), command)
        res = conn.run(argv, stdin=json.dumps(cfg), timeout=timeout, check=False, what=f"agent {command}")
        return agent_result(res)

    def _run_detached(self, node: Node, command: str, cfg: dict[str, Any], timeout: float,
                      run_id: str) -> dict[str, Any]:
        """:meth:`_run_agent` for a long job: the agent runs detached on the node (its output in
        ``<run_dir>/runs/<run>.<command>.out``) and this call waits for its result over a second channel
        (again after a lost connection, until ``timeout`` seconds); if this process dies, the agent finishes on
        its own.  Returns the agent's JSON result, or ``{"error": ...}``; RemoteError when it cannot start."""
        conn = self.remote[node.name]
        d = f"{self.profile.services.run_dir}/runs"
        base = f"{d}/{run_id}.{command}"
        names = {"cfg": base + ".cfg", "out": base + ".out", "rc": base + ".rc", "pid": base + ".pid"}
        payload = json.dumps(cfg).encode()
        inner = INNER(AGENT=agent_path(self.profile), command=command, **names)
        conn.run(LAUNCH(dir=d, size=len(payload), inner=inner, **names), stdin_bytes=payload,
                 timeout=60, what=f"start the agent ({command})")
        deadline = time.monotonic() + timeout
        lost_since: float | None = None
        while True:  # a lost connection loses nothing: the agent goes on, and its result waits in its files
            attempt = time.monotonic()
            try:
                res = conn.run(WAIT(**names), timeout=max(1.0, deadline - attempt), check=False,
                               what=f"agent {command}")
                if res.exit_code != -1:  # -1: no exit status, the connection went away under the channel
                    break
                conn.close()
                raise UnreachableError(node.name, "connection lost while waiting for the agent")
            except UnreachableError:  # reconnect for up to RECONNECT_S; a node gone for longer is an error
                now = time.monotonic()
                if lost_since is None or now - attempt > 10:  # a new loss, not the next failed reconnect
                    lost_since = now
                if now - lost_since > RECONNECT_S or now > deadline - 5:
                    raise
                time.sleep(1.0)
        return agent_result(res)

    def bootstrap(self, *, force: str | None = None, on_event: OnEvent | None = None,
                  timeouts: dict[str, float] | None = None, run_id: str | None = None) -> BootstrapReport:
        """Run the agents on every node at once (detached: they finish should this process die) and wait
        for all of them.  ``run_id``: rounds after a pipeline's first are ``<run>-<n>``."""
        run_id = run_id or uuid.uuid4().hex[:12]
        start = time.monotonic()
        client = redis_client(self.profile, self.secrets)
        follower = EventFollower(client, key(self.profile, "events"), run_id, on_event)
        follower.start()
        outcomes: dict[str, NodeOutcome] = {}
        # The lease names the pipeline run (its rounds share it): held by the pipeline for the whole run, it is
        # this round's already; a bootstrap on its own takes it for itself.
        lease = RunLease(client, key(self.profile, "run-lease"), run_family(run_id), front_key(self.profile, run_id))
        owned = False

        def waiting(holder: str) -> None:
            if on_event is not None:
                on_event(Event("", "wizard", "lease", "waiting", f"another run ({holder}) is in progress; waiting",
                               time.time(), run_id))

        try:
            try:
                owned = lease.acquire(float((timeouts or {}).get("lease_timeout", 600)), waiting)
            except TimeoutError as exc:
                outcomes = {n.name: NodeOutcome(n.name, False, error=str(exc)) for n in self.profile.nodes}
                raise BootstrapError(BootstrapReport(run_id, outcomes, follower.events, 0.0)) from None
            self.ship_agent()  # a no-op when the pipeline shipped it already
            budget = sum((timeouts or {}).get(k, d) for k, d in
                         (("wait_timeout", 60), ("join_timeout", 300), ("start_timeout", 120))) + 60

            def one(node: Node) -> NodeOutcome:
                cfg = agent_config(self.profile, self.secrets, node, run_id=run_id, force=force, timeouts=timeouts)
                try:
                    out = self._run_detached(node, "bootstrap", cfg, budget, run_id)
                except RemoteError as exc:
                    return NodeOutcome(node.name, False, error=exc.message)
                if "error" in out:
                    return NodeOutcome(node.name, False, error=str(out["error"]))
                return NodeOutcome(node.name, True, str(out.get("action", "")), out.get("token"))

            with ThreadPoolExecutor(len(self.profile.nodes)) as pool:
                for outcome in pool.map(one, self.profile.nodes):
                    outcomes[outcome.node] = outcome
        finally:
            if owned:
                lease.release()
            follower.finish()
            client.close()
        report = BootstrapReport(run_id, outcomes, follower.events, time.monotonic() - start)
        if not report.ok:
            raise BootstrapError(report)
        return report

    def ensure_daemons(self) -> dict[str, str]:
        """The long-running agent side on every node: health endpoint + heartbeat (idempotent)."""

        def one(node: Node) -> tuple[str, str]:
            cfg = agent_config(self.profile, self.secrets, node)
            for k in ("force", "run_id", "sst_password"):
                cfg.pop(k, None)
            cfg["agent_digest"] = agent_digest()  # a new agent restarts the daemon; the same one leaves it be
            if node.role is Role.ARBITER:  # scheduled backups: installed (or removed) by the Arbiter's agent
                from wizard.backups.schedule import job_config

                cfg["backup_job"] = job_config(self.profile)
            out = self._run_agent(node, "ensure-daemon", cfg, 30)
            return node.name, str(out.get("daemon", out.get("error", "?")))

        with ThreadPoolExecutor(len(self.profile.nodes)) as pool:
            return dict(pool.map(one, self.profile.nodes))

    def sst_secret(self, primary: str, running: list[str]) -> None:
        """A rotated SST password, applied where it lives before the files change: the account on one
        Primary node (replicated, by its hash), then each running server's wsrep_sst_auth.  Raises
        RemoteError naming the node that failed."""
        self.ship_agent()
        steps = [(primary, "sst-account")] + [(n, "sst-auth") for n in running]
        for name, command in steps:
            node = self.profile.node(name)
            out = self._run_agent(node, command, agent_config(self.profile, self.secrets, node), 60)
            if "error" in out:
                raise RemoteError(name, f"rotating the SST password: {out['error']}")

    def node_state(self, node: Node, recover: bool = False) -> dict[str, Any]:
        cfg = agent_config(self.profile, self.secrets, node)
        cfg["recover"] = recover
        return self._run_agent(node, "state", cfg, 180)

