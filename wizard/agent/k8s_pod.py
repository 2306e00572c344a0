"""The node agent's steps inside Kubernetes pods (see :mod:`wizard.k8s` and docs/kubernetes.md).

In a pod the agent cannot start the server itself: an init container must exit before the main container
starts.  So these commands take the same decision as ``bootstrap`` on a host, with the same code (the
registration, :func:`wizard.agent.runtime.elect` on :func:`wizard.agent.election.decide`, the Redis
bootstrap lock and fencing token, ``position_grastate``, the garbd-must-stop rule), and hand it over to the
main container as mariadbd's command line in a file (:func:`wizard.agent.serverargs.mariadbd_argv`, the
same function a host's direct start uses).  Nothing here decides who bootstraps.

Commands (``python3 AGENT COMMAND < config.json``, the config from :func:`wizard.coordinator.agent_config`
plus a ``k8s`` key; secrets come from environment variables the pod fills from a Secret, never the JSON):

  k8s-config        write the Galera config with its secret filled in, and initialise an empty data volume
                    as Debian's package does on a host (an init container, first)
  k8s-handover      register, elect, fence; write mariadbd's argv for the main container (an init container;
                    the main container runs it again when it restarts alone, init containers do not re-run)
  k8s-sidecar       ensure the SST user once this server is Primary and Synced, then serve the health
                    endpoint and heartbeat (``daemon``); the readiness probe asks that endpoint
  k8s-arbiter-wait  before garbd starts: wait until both data nodes are Primary and Synced (a fresh identity)
  k8s-arbiter-live  garbd's liveness: fails only when Redis answers and the data agents' election says a data
                    node bootstraps, so the kubelet stops garbd first (it could hold a Primary Component of its
                    own); an unreachable Redis passes, within a few seconds

Runs on a node: python3 >= 3.9, stdlib + the bundled redis-py.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shlex
import subprocess
import threading
import time
from typing import Any, Callable, Dict, Tuple

from wizard.agent import election
from wizard.agent.runtime import (
    AgentError,
    Config,
    Coordination,
    Fence,
    Heartbeat,
    Node,
    all_synced,
    arbiters,
    daemon,
    elect,
    peers_listening,
    position_grastate,
    primary_members,
    primary_synced,
    wait_for,
)
from wizard.agent.serverargs import mariadbd_argv


def with_secrets(cfg: Config) -> Config:
    """The config with each secret read from the environment variable ``k8s.secret_env`` names for it
    (``{"sst_password": "STUDIO_CLUSTER_SST_PASSWORD", ...}``); raises AgentError naming a missing one."""
    data = dict(cfg.data)
    for key, env in (cfg.get("k8s") or {}).get("secret_env", {}).items():
        if env not in os.environ:
            raise AgentError("environment variable %s (the %s) is not set: check the Secret the pod references "
                             "and its key" % (env, key))
        data[key] = os.environ[env]
    return Config(data)


def write_file(path: str, text: str, mode: int) -> None:
    """Write ``path`` whole (temp file + rename) with ``mode``."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_config(cfg: Config) -> Dict[str, Any]:
    """``k8s.cnf_in`` (rendered without secrets, holding placeholders such as ``<sst_password>``) to
    ``k8s.cnf_out`` with each placeholder replaced by its secret, 0640 root:mysql as on a host (the SST
    scripts run as mysql and read it); then :func:`prepare_datadir`."""
    k8s = cfg.k8s
    with open(k8s["cnf_in"]) as fh:
        text = fh.read()
    for mark, key in k8s.get("placeholders", {}).items():
        if mark in text:
            value = cfg.get(key)
            if value is None:
                raise AgentError("%s holds %s but no secret was given for %s" % (k8s["cnf_in"], mark, key))
            text = text.replace(mark, value)
    write_file(k8s["cnf_out"], text, 0o640)
    with contextlib.suppress(KeyError):
        os.chown(k8s["cnf_out"], 0, grp.getgrnam("mysql").gr_gid)
    return {"node": cfg.node, "config": k8s["cnf_out"], "datadir": prepare_datadir(cfg)}


def prepare_datadir(cfg: Config) -> str:
    """A new data volume is an empty directory owned by root: give it to mysql and initialise it with
    ``mariadb-install-db``, as Debian's package does when it is installed on a host (so the election sees
    what it sees on a fresh host: system schemas only).  Returns what was done; raises AgentError."""
    node = Node(cfg)
    if node.datadir_kind() != election.DATADIR_EMPTY or os.path.exists(os.path.join(cfg.data_dir, "grastate.dat")):
        return "kept"
    os.makedirs(cfg.data_dir, exist_ok=True)
    with contextlib.suppress(KeyError):
        pw = pwd.getpwnam("mysql")
        os.chown(cfg.data_dir, pw.pw_uid, pw.pw_gid)
    p = subprocess.run(["mariadb-install-db", "--user=mysql", "--datadir=%s" % cfg.data_dir],
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise AgentError("mariadb-install-db failed on the empty data volume of %s: %s"
                         % (cfg.node, (p.stderr or p.stdout).strip()[-300:]))
    return "initialised"


def handover(cfg: Config) -> Dict[str, Any]:
    """Register this data node, run the shared election, and write mariadbd's argv (``k8s.argv_file``,
    one shell-quoted line) for the main container: ``--wsrep-new-cluster`` only for the fenced winner.
    Raises AgentError (the election refused, a wait timed out, the fence was lost)."""
    node = Node(cfg)
    coord = Coordination(cfg)

    def ev(step: str, state: str, msg: str = "", **kw: Any) -> None:
        coord.event(node.name, step, state, msg, **kw)

    ev("agent", "started", "pod agent started: deciding how %s starts" % node.name)
    others = [n for n in cfg.data_nodes if n != node.name]
    hb = Heartbeat(node, coord)
    me = hb.beat(node.state(recover=True))
    ev("register", "done", "%s: uuid %s seqno %s safe_to_bootstrap %s recovered %s:%s datadir %s" % (
        me.describe(), me.uuid, me.seqno, int(me.safe_to_bootstrap), me.recovered_uuid or "-", me.recovered_seqno,
        me.datadir or "?"), seqno=me.seqno, recovered=me.recovered_seqno)
    hb.extra = {"recovered_seqno": me.recovered_seqno, "recovered_uuid": me.recovered_uuid, "note": me.note}
    hb.start()
    try:
        new_cluster = False
        primary = primary_members(coord.live_states(others))
        if primary:
            ev("elect", "done", "a Primary Component exists (%s): joining it" % ", ".join(primary))
        else:
            decision = elect(cfg, node, coord, ev)
            if decision.kind == election.BOOTSTRAP and decision.node == node.name:
                new_cluster = fenced_bootstrap(cfg, node, coord, ev, me)
            if not new_cluster:
                ev("join", "waiting", "waiting for a Primary Component to join")
                wait_for("a Primary Component on another data node",
                         lambda: primary_members(coord.live_states(others)),
                         float(cfg.get("wait_timeout", 60)) + float(cfg.get("join_timeout", 300)))
        argv = mariadbd_argv(cfg.mariadbd, node.start_position(), new_cluster)
        write_file(cfg.k8s["argv_file"], shlex.join(argv) + "\n", 0o600)
        ev("handover", "done", "handed over to the server container: %s" % " ".join(argv),
           new_cluster="1" if new_cluster else "0")
        return {"node": node.name, "action": "bootstrap" if new_cluster else "join", "argv": argv}
    finally:
        hb.stop.set()
        hb.join(timeout=2)


def fenced_bootstrap(cfg: Config, node: Node, coord: Coordination, ev: Callable[..., None],
                     me: election.NodeState) -> bool:
    """The winner's steps up to starting the server, as :func:`wizard.agent.runtime.try_bootstrap` takes
    them: the lock and token, no Primary appeared, garbd stopped, no peer's Galera port answers, the
    recovered position and ``safe_to_bootstrap: 1`` in grastate.dat.  False: another agent holds the lock."""
    fence = Fence(cfg, node, coord)
    if not fence.acquire():
        ev("bootstrap", "skipped", "bootstrap lock held by %s: joining instead" % fence.holder())
        return False
    token = fence.token
    try:
        ev("bootstrap", "running", "bootstrap lock taken (fencing token %d)" % token, token=token)
        if primary_members(coord.states(cfg.data_nodes)):
            ev("bootstrap", "skipped", "a Primary Component appeared: joining")
            return False
        arb = arbiters(cfg)
        if arb and peers_listening(cfg, node, arb):
            ev("bootstrap", "waiting", "waiting for garbd on %s to stop before a new Primary Component "
               "(its liveness probe fails while this election says bootstrap)" % ", ".join(arb))
            wait_for("garbd on %s to stop (it may hold a Primary Component of its own)" % ", ".join(arb),
                     lambda: not peers_listening(cfg, node, arb), float(cfg.get("arbiter_stop_timeout", 40)))
        busy = peers_listening(cfg, node)
        if busy:
            raise AgentError("refusing to bootstrap: Galera already listens on %s; a Primary Component may exist"
                             % ", ".join(busy))
        fence.check("setting safe_to_bootstrap")
        position_grastate(cfg, node, me, ev, token)
        fence.check("handing over --wsrep-new-cluster")
        coord.r.hset(coord.key("decision"), mapping={"node": node.name, "token": token, "ts": "%.3f" % time.time(),
                                                     "run": cfg.get("run_id", "")})
        ev("bootstrap", "running", "mariadbd --wsrep-new-cluster handed to the server container (fencing token %d)"
           % token, token=token, new_cluster="1")
        return True
    finally:
        # The lock only guards the decision: once the server container starts, its Primary is what the
        # other agents see (through the sidecar's heartbeat) and join.
        fence.release()


def sidecar(cfg: Config) -> None:
    """Once this server is Primary and Synced, ensure the least-privilege SST user (idempotent, replicated
    by its hash), then run the health endpoint and heartbeat forever.  The heartbeat only starts after the
    user exists, so a joiner never sees this Primary before it can be an SST donor."""
    node = Node(cfg)
    while True:
        with contextlib.suppress(AgentError):
            wait_for("%s to be Primary and Synced" % node.name, lambda: node.mariadb_running() and primary_synced(node),
                     600, max_interval=2)
            try:
                node.ensure_sst_user()
                break
            except AgentError as exc:
                print("ensuring the SST user failed (retrying): %s" % exc, flush=True)
        time.sleep(2)
    daemon(cfg)


def arbiter_wait(cfg: Config) -> Dict[str, Any]:
    """Before garbd starts: both data nodes Primary and Synced (their heartbeats or registrations), then
    garbd's old identity (gvwstate.dat) removed so it joins as a new incarnation."""
    node = Node(cfg)
    coord = Coordination(cfg)
    wait_for("both data nodes Primary and Synced", lambda: all_synced(cfg, coord.live_states(cfg.data_nodes)),
             float(cfg.get("wait_timeout", 60)) + float(cfg.get("join_timeout", 300)), max_interval=1)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(node.garbd_workdir(), "gvwstate.dat"))
    coord.event(node.name, "garbd", "running", "starting garbd (both data nodes Primary and Synced)")
    return {"node": node.name, "action": "start"}


LIVE_REDIS_BUDGET_S = 4.0
"""How long garbd's liveness waits for Redis's answer (seconds), well under the probe's ``timeoutSeconds``
(:data:`wizard.k8s.galera.LIVENESS_TIMEOUT_S`): an unreachable or silent Redis passes the probe."""


def bounded(fn: Callable[[], Any], budget_s: float) -> Tuple[Any, str]:
    """``(fn(), "")``, or ``(None, why)`` when ``fn`` raised or had not returned within ``budget_s`` seconds
    (it runs in a daemon thread, left behind: a hung DNS lookup or connect cannot hold the caller)."""
    box: Dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except Exception as exc:  # any failure to read Redis means "no answer"
            box["error"] = "%s: %s" % (type(exc).__name__, exc)

    worker = threading.Thread(target=run, name="bounded", daemon=True)
    worker.start()
    worker.join(budget_s)
    if worker.is_alive():
        return None, "no answer within %.0f s" % budget_s
    if "error" in box:
        return None, box["error"]
    return box["value"], ""


def arbiter_live(cfg: Config) -> Dict[str, Any]:
    """garbd's liveness: raises AgentError only when Redis answers and the data agents' registrations make the
    shared election say a data node bootstraps (the rule the Arbiter's agent applies on a host).  Redis
    unreachable, silent or failing passes within :data:`LIVE_REDIS_BUDGET_S`: a Redis outage is no Galera reason
    to take a vote away, and while Redis is out no agent can take the bootstrap lock either."""
    node = Node(cfg)
    if not node.pids("garbd"):
        return {"node": node.name, "garbd": "not running"}

    def read() -> Any:
        # no retries through a failover: the probe runs again in a few seconds
        coord = Coordination(Config(dict(cfg.data, redis_failover_wait_s=0.5)))
        decision = election.decide(coord.states(cfg.data_nodes), cfg.data_nodes, cfg.preferred, cfg.get("force"))
        if decision.kind == election.BOOTSTRAP:
            coord.event(node.name, "garbd", "running", "a data node is about to bootstrap (%s): garbd must stop "
                        "first" % decision.node)
        return decision

    decision, why = bounded(read, LIVE_REDIS_BUDGET_S)
    if decision is None:
        return {"node": node.name, "garbd": "running", "redis": "not read (%s): garbd stays" % why}
    if decision.kind == election.BOOTSTRAP:
        raise AgentError("a data node is about to bootstrap (%s): garbd must stop first" % decision.node)
    return {"node": node.name, "garbd": "running"}


def run_pod_command(command: str, cfg: Config) -> Dict[str, Any]:
    """Dispatch one of this module's commands (see the module docstring); raises AgentError."""
    cfg = with_secrets(cfg)
    if command == "k8s-config":
        return write_config(cfg)
    if command == "k8s-handover":
        return handover(cfg)
    if command == "k8s-sidecar":
        sidecar(cfg)
        return {}
    if command == "k8s-arbiter-wait":
        return arbiter_wait(cfg)
    if command == "k8s-arbiter-live":
        return arbiter_live(cfg)
    raise AgentError("unknown command %r" % command)
