"""One picture of the cluster: per-node wsrep status + agent heartbeats + DNS -> a verdict with a reason.

`studio-cluster status` prints it; the monitor redraws it; `replay` verifies with it.  Collection runs
every node in parallel with timeouts, so a dead or partitioned node shows as such instead of hanging.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import redis

from wizard.agent.health import refusing
from wizard.agent.membership import is_member, parse_gvwstate_uuid
from wizard.agent.rootcmd import RootScript
from wizard.checks.names import query_a
from wizard.coordinator import key, redis_client
from wizard.crafter.publisher import read_publisher
from wizard.nodesql import sql, wsrep_status
from wizard.profile import Node, Profile, Role
from wizard.remote import Remote, RemoteError, daemon_pids, q
from wizard.render import GARBD_WORK_DIR
from wizard.secrets import Secrets
from wizard.tls.expiry import read_expiry

Verdict = Literal["healthy", "degraded", "split", "down", "unknown"]

READ_GVWSTATE = RootScript("status-read-gvwstate", "cat " + q(f"{GARBD_WORK_DIR}/gvwstate.dat"))


@dataclass
class NodeStatus:
    name: str
    role: str
    address: str
    reachable: bool = False
    error: str = ""
    wsrep: dict[str, str] = field(default_factory=dict)
    heartbeat_age: float | None = None
    process_running: bool = False
    health: str = ""  # Studio nodes: the health endpoint's answer ("200", "503", or why it gave none)
    members: list[str] = field(default_factory=list)  # Primary data nodes: the component's member uuids
    garbd_uuid: str = ""  # the Arbiter: the running garbd's identity (my_uuid of its gvwstate.dat)

    def _int(self, k: str, default: int = 0) -> int:
        try:
            return int(float(self.wsrep.get(k, default)))
        except ValueError:
            return default

    @property
    def cluster_status(self) -> str:
        return self.wsrep.get("wsrep_cluster_status", "")

    @property
    def state(self) -> str:
        return self.wsrep.get("wsrep_local_state_comment", "")

    @property
    def size(self) -> int:
        return self._int("wsrep_cluster_size")

    @property
    def last_committed(self) -> int:
        return self._int("wsrep_last_committed", -1)

    @property
    def primary_synced(self) -> bool:
        return self.cluster_status == "Primary" and self.state == "Synced"

    @property
    def refuses_queries(self) -> str:
        """``@@wsrep_reject_queries`` when it is not ``NONE`` (``ALL``, ``ALL_KILL``): the node refuses client
        queries, as a rolling restart leaves it between its drain and its stop; "" otherwise or when not read."""
        return refusing(self.wsrep.get("wsrep_reject_queries", ""))

    @property
    def uptime(self) -> int:
        return self._int("Uptime")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(cluster_status=self.cluster_status, state=self.state, size=self.size,
                 last_committed=self.last_committed)
        return d


@dataclass
class ClusterStatus:
    cluster: str
    nodes: list[NodeStatus]
    verdict: Verdict
    reason: str
    primary_members: list[str]
    uuids_agree: bool
    authoring_addresses: list[str]
    authoring_node: str | None
    arbiter_member: bool
    coordination: str = "ok"  # "ok", or why the coordination store (Redis) cannot be used
    authoring_problem: str = ""  # "" when the authoring name points at a serving Studio node (or was not asked)
    ts: float = field(default_factory=time.time)
    # the backups (wizard.backups.health.BackupHealth.to_dict()), None when not asked; never part of the verdict
    backups: dict[str, Any] | None = None
    # the primary publisher record (wizard.crafter.publisher.PublisherRecord.to_dict()), None without Crafter nodes
    publisher: dict[str, Any] | None = None
    # with tls.enabled: node -> nearest certificate expiry it holds (wizard.tls.expiry.read_expiry); never the verdict
    tls_expiry: dict[str, Any] | None = None

    @property
    def healthy(self) -> bool:
        return self.verdict == "healthy"

    def node(self, name: str) -> NodeStatus:
        return next(n for n in self.nodes if n.name == name)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["nodes"] = [n.to_dict() for n in self.nodes]
        return d


def _collect_node(profile: Profile, secrets: Secrets, remote: Remote, node: Node, timeout: float) -> NodeStatus:
    st = NodeStatus(node.name, node.role.value, node.address)
    try:
        conn = remote[node.name]
        proc = "mariadbd" if node.role is Role.STUDIO else "garbd"
        res = conn.run(daemon_pids(proc), timeout=timeout, what="pgrep")
        st.reachable = True
        st.process_running = bool(res.stdout.strip())
        if node.role is Role.STUDIO and st.process_running:
            st.wsrep = wsrep_status(conn, profile, secrets, timeout=timeout)
            if not st.wsrep:
                st.error = "mariadbd runs but does not answer SQL"
            elif st.cluster_status == "Primary":
                rows = sql(conn, profile, secrets,
                           "SELECT node_uuid, @@wsrep_reject_queries FROM mysql.wsrep_cluster_members",
                           check=False, timeout=timeout)
                st.members = [r[0] for r in rows if r and r[0]]
                st.wsrep["wsrep_reject_queries"] = next((r[1] for r in rows if len(r) > 1), "")
        elif node.role is Role.ARBITER and st.process_running:
            res = conn.run(READ_GVWSTATE(), timeout=timeout, check=False, what="gvwstate")
            st.garbd_uuid = parse_gvwstate_uuid(res.stdout) if res.exit_code == 0 else ""
    except RemoteError as exc:
        st.error = exc.message
    return st


def not_serving(profile: Profile, node: NodeStatus) -> str:
    """Why a Studio node cannot serve authors ("" when it can): unreachable, mariadbd stopped, not
    Primary and Synced, or its health endpoint (what the DNS record checks) not answering 200."""
    if not node.reachable:
        return f"unreachable ({node.error or 'no answer'})"
    if not node.process_running:
        return "its mariadbd is stopped"
    if not node.primary_synced:
        return f"it is {node.cluster_status or 'not answering SQL'}{f' / {node.state}' if node.state else ''}"
    if node.health and node.health != "200":
        return f"its health endpoint :{profile.dns.health_port} answers {node.health}"
    return ""


def authoring_problem(profile: Profile, nodes: list[NodeStatus], addresses: list[str] | None,
                      dns_error: str = "") -> str:
    """What is wrong with where the authoring name sends authors, in plain words ("" when it points at a
    node that serves).  ``addresses`` is the DNS answer (None: not asked); ``dns_error`` why no server
    answered."""
    name = profile.dns.authoring_name
    if addresses is None:
        return ""
    if dns_error:
        return (f"the authoring name {name} could not be resolved ({dns_error}): authors cannot reach Studio; "
                f"check the DNS server(s) {', '.join(profile.dns.servers)}")
    if not addresses:
        return (f"the authoring name {name} has no address: authors cannot reach Studio; check its LUA record "
                "on the DNS server")
    by_addr = {n.address: n for n in nodes if n.role == Role.STUDIO.value}
    strangers = [a for a in addresses if a not in by_addr]
    if strangers:
        return (f"the authoring name {name} points at {', '.join(strangers)}, which is not a Studio node of this "
                "cluster: authors are sent elsewhere; fix the DNS record (replay renders or pushes it)")
    dead = [(by_addr[a], why) for a in addresses if (why := not_serving(profile, by_addr[a]))]
    if not dead:
        return ""
    live = [n.name for n in nodes if n.role == Role.STUDIO.value and not not_serving(profile, n)]
    where = "; ".join(f"{n.name} ({n.address}), where {why}" for n, why in dead)
    if len(dead) < len(addresses):
        return (f"the authoring name {name} points at a DOWN node, {where}, as well as at a serving one: "
                "some authors are sent to a dead node")
    lag = profile.dns.ttl + profile.dns.health_interval
    moved = (f"PowerDNS should move it to {' or '.join(live)} within about {lag} s (TTL + health check); if it "
             "does not, check the LUA record and the health endpoints" if live else "no Studio node can take it")
    return f"the authoring name {name} points at a DOWN node: {where}; authors cannot work now; {moved}"


def studio_node_at(profile: Profile, addresses: list[str]) -> str | None:
    """The Studio node whose address is the one A record ``addresses`` holds, or None (none, several, or an
    address of no Studio node).  Pure."""
    by_address = {n.address: n.name for n in profile.studio_nodes}
    return by_address.get(addresses[0]) if len(addresses) == 1 else None


def tls_problems(expiry: dict[str, Any] | None) -> str:
    """With ``tls.enabled``: the nodes that hold no readable certificate (the profile says TLS, the node was never
    given it: its traffic may be in the clear) or an expired one, as a reason that degrades the verdict; "" when
    every node holds a valid one or TLS is off.  Pure."""
    missing = sorted(n for n, e in (expiry or {}).items() if e.get("error"))
    expired = sorted(n for n, e in (expiry or {}).items() if not e.get("error") and float(e.get("days", 1)) <= 0)
    parts = []
    if missing:
        parts.append(f"TLS is on in the profile but {', '.join(missing)} hold{'s' if len(missing) == 1 else ''} no "
                     "readable certificate (the cluster may run without TLS there): run replay")
    if expired:
        parts.append(f"the TLS certificate or CA of {', '.join(expired)} has expired: run replay (it renews generated "
                     "certificates) or install new ones")
    return "; ".join(parts)


def verdict_of(profile: Profile, nodes: list[NodeStatus], coordination: str = "",
               authoring: str = "") -> tuple[Verdict, str, list[str], bool, bool]:
    """``(verdict, reason, Primary members, uuids agree, garbd member)``.  ``coordination`` is "" when
    the coordination store answered, else why not: the cluster may serve, but no recovery could run.
    ``authoring`` is :func:`authoring_problem`'s answer: a name that sends authors to a dead node makes
    the cluster at best degraded, and is said first."""
    data = [n for n in nodes if n.role == Role.STUDIO.value]
    arb = next(n for n in nodes if n.role == Role.ARBITER.value)
    primary = [n for n in data if n.cluster_status == "Primary"]
    uuids = {n.wsrep.get("wsrep_cluster_state_uuid") for n in primary}
    conf_ids = {n.wsrep.get("wsrep_cluster_conf_id") for n in primary}
    uuids_agree = len({n.wsrep.get("wsrep_cluster_state_uuid") for n in data if n.wsrep}) <= 1
    members = [n.name for n in primary]
    expected = len(profile.nodes)
    # By identity when both sides are known (a dead incarnation not yet evicted keeps the size up),
    # else by the size.  A component short of a dead data node still holds garbd: its uuid is among the
    # members and every member is a node of the profile (no corpse), whatever the size.
    own = {n.wsrep.get("wsrep_gcomm_uuid", "") for n in data} | {arb.garbd_uuid}
    own.discard("")
    arbiter_member = arb.process_running and any(
        (is_member(arb.garbd_uuid, n.members, expected) or (arb.garbd_uuid in n.members and set(n.members) <= own))
        if (arb.garbd_uuid and n.members) else n.size >= expected
        for n in primary)
    if len(primary) > 1 and (len(uuids) > 1 or len(conf_ids) > 1):
        return "split", "data nodes are Primary in different components: " + ", ".join(
            f"{n.name} (conf {n.wsrep.get('wsrep_cluster_conf_id')})" for n in primary), members, uuids_agree, \
            arbiter_member
    if not primary:
        running = [n.name for n in data if n.process_running]
        unreachable = [n for n in data if not n.reachable]
        if unreachable and not running:
            # Not knowing is not "down": the nodes may be serving authors while this machine cannot see them.
            return "unknown", ("cannot tell whether a Primary Component exists: " + "; ".join(
                f"{n.name} unreachable ({n.error or 'no answer'})" for n in unreachable)), members, uuids_agree, \
                arbiter_member
        why = (f"{', '.join(running)} run(s) without quorum (non-Primary)" if running
               else "no data node is running")
        return "down", f"no Primary Component: {why}", members, uuids_agree, arbiter_member
    problems = [authoring] if authoring else []
    for n in data:
        if not n.reachable:
            problems.append(f"{n.name} unreachable ({n.error})")
        elif not n.process_running:
            problems.append(f"{n.name} mariadbd stopped")
        elif n.cluster_status != "Primary":
            problems.append(f"{n.name} is {n.cluster_status or 'not answering'}")
        elif n.state != "Synced":
            problems.append(f"{n.name} is {n.state}")
        elif n.refuses_queries:
            problems.append(f"{n.name} refuses client queries (wsrep_reject_queries={n.refuses_queries}, as a "
                            "rolling restart cut off between its drain and its stop leaves it): `studio-cluster "
                            "replay` lets it accept them again")
    if not arb.reachable:
        problems.append(f"Arbiter unreachable ({arb.error})")
    elif not arbiter_member:
        problems.append("garbd is not a member" if not arb.process_running else
                        f"component size {max(n.size for n in primary)} < {expected}")
    for n in data:
        if n.primary_synced and n.health and n.health != "200" and not n.refuses_queries:
            problems.append(f"{n.name}'s health endpoint :{profile.dns.health_port} answers {n.health} "
                            "(the authoring name cannot fail over to or from it correctly)")
    if not uuids_agree:
        problems.append("nodes disagree on the state UUID")
    if coordination:
        problems.append(f"the coordination store (Redis) is unreachable ({coordination}): a recovery or "
                        "bootstrap would fail now; bring Redis back")
    if problems:
        return "degraded", "; ".join(problems), members, uuids_agree, arbiter_member
    return "healthy", f"{len(members)} data nodes Primary and Synced, garbd member, size {expected}", members, \
        uuids_agree, arbiter_member


def heartbeat_ages(profile: Profile, secrets: Secrets) -> tuple[dict[str, float], str]:
    """``(node -> seconds since its daemon's last heartbeat, problem)``; ``problem`` is "" when the
    coordination store answered, else what went wrong (a recovery would fail the same way)."""
    out: dict[str, float] = {}
    try:
        client = redis_client(profile, secrets, failover_wait_s=2.0)
        try:
            pipe = client.pipeline()
            for n in profile.nodes:
                pipe.hget(key(profile, "heartbeat", n.name), "heartbeat")
            now = time.time()
            for n, ts in zip(profile.nodes, pipe.execute(), strict=True):
                if ts:
                    out[n.name] = max(0.0, now - float(ts))
        finally:
            client.close()
    except (redis.RedisError, ValueError, OSError) as exc:
        return out, f"{type(exc).__name__}: {exc}"
    return out, ""


def health_endpoint(node: Node, port: int, timeout: float) -> str:
    """GET the node's health endpoint (what the authoring name's DNS record checks): "200", "503 (the body's first
    line: which part failed)"..., or why it gave no answer."""
    try:
        with urllib.request.urlopen(f"http://{node.address}:{port}/", timeout=timeout) as resp:
            return str(resp.status)
    except urllib.error.HTTPError as exc:
        try:  # the agent's body says which part failed ("... Studio does not answer ..."): shown after the code
            body = exc.read(300).decode(errors="replace").strip().splitlines()
        except OSError:
            body = []
        return f"{exc.code} ({body[0]})" if body and body[0] else str(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"no answer ({reason})"


def collect(profile: Profile, secrets: Secrets, remote: Remote, *, timeout: float = 5.0,
            dns: bool = True, backups: bool = False) -> ClusterStatus:
    """Everything in parallel, each part within ``timeout`` seconds.  ``backups``: also read the backup
    catalog on the Arbiter (one SSH command, at most ``timeout`` s) into ``ClusterStatus.backups``; an
    Arbiter that cannot answer makes it "unknown" with the reason, never fails the status."""
    from wizard.backups.health import read_health

    with ThreadPoolExecutor(len(profile.nodes) + 4) as pool:
        catalog = pool.submit(read_health, profile, remote, timeout=timeout) if backups else None
        futs = [pool.submit(_collect_node, profile, secrets, remote, n, timeout) for n in profile.nodes]
        hb = pool.submit(heartbeat_ages, profile, secrets)
        publisher = pool.submit(read_publisher, profile, secrets)
        expiry = pool.submit(read_expiry, profile, remote, timeout=timeout) if profile.tls.enabled else None
        answer = pool.submit(query_a, profile, profile.dns.authoring_name, 1.0) if dns else None
        health = {n.name: pool.submit(health_endpoint, n, profile.dns.health_port, min(timeout, 2.0))
                  for n in profile.studio_nodes}
        nodes = [f.result() for f in futs]
        ages, coordination = hb.result()
        for n in nodes:
            if n.name in health:
                n.health = health[n.name].result()
        dns_error = ""
        try:
            addresses = answer.result() if answer is not None else []
        except OSError as exc:
            addresses, dns_error = [], str(exc)
    for n in nodes:
        n.heartbeat_age = ages.get(n.name)
    misrouted = authoring_problem(profile, nodes, addresses if dns else None, dns_error)
    verdict, reason, members, agree, arb = verdict_of(profile, nodes, coordination, misrouted)
    record = publisher.result()
    tls_expiry = expiry.result() if expiry is not None else None
    # problems that do not stop the database but do stop an operator: a failed publisher call, TLS not in place
    for problem in (f"primary publisher {record.describe()}" if record is not None and record.error else "",
                    tls_problems(tls_expiry)):
        if problem and verdict in ("healthy", "degraded"):
            verdict, reason = "degraded", "; ".join(x for x in (reason if verdict == "degraded" else "", problem)
                                                    if x)
    authoring_node = studio_node_at(profile, addresses)
    return ClusterStatus(profile.cluster_name, nodes, verdict, reason, members, agree, addresses, authoring_node, arb,
                         coordination or "ok", misrouted,
                         backups=catalog.result().to_dict() if catalog is not None else None,
                         publisher=record.to_dict() if record is not None else None,
                         tls_expiry=tls_expiry)
