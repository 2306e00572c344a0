"""The lab's coordination store: a Redis and a Sentinel on each of the three lab hosts.

One master (``studio1`` when the lab is built) and two replicas, all with ``requirepass`` and
``masterauth`` set to the lab's Redis password; three Sentinels monitoring the master as
:data:`MASTER_NAME` with quorum 2, ``auth-pass`` and a short ``down-after-milliseconds`` so a failover
takes a few seconds.  Each runs inside its host like sshd does (started with ``host_exec``, daemonized,
pid file in the host's private ``/run/lab-redis/``, log in its private ``/var/log``), so it dies with
the host and ``lab down`` needs nothing extra.

The Sentinels' configs name each other (``known-sentinel`` with fixed ids) and the replicas
(``known-replica``), so they agree the moment they start instead of after a round of discovery.
Sentinel rewrites its own config as the master moves; a restarted Sentinel keeps that file.

Fault helpers for tests: :func:`stop_host_redis` / :func:`start_host_redis` and :func:`master_host`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from wizard import lab
from wizard.redis_acl import conf_line

REDIS_PORT = 6379
SENTINEL_PORT = 26379
MASTER_NAME = "studio-lab"
QUORUM = 2
DOWN_AFTER_MS = 2000
FAILOVER_TIMEOUT_MS = 10000
INITIAL_MASTER = "studio1"
ACL_USER = "studio-cluster"
"""An ACL user on every lab Redis with the product's rules (wizard.redis_acl) for key prefix
:data:`ACL_KEY_PREFIX`, password the lab's Redis password; profiles/lab.yaml logs in as the default user."""
ACL_KEY_PREFIX = "studio-cluster"
CONF_DIR = "/run/lab-redis"  # inside each host (its private /run)
REDIS_LOG = "/var/log/redis-lab.log"
SENTINEL_LOG = "/var/log/redis-sentinel-lab.log"


def _sentinel_id(name: str) -> str:
    return hashlib.sha256(f"studio-cluster-lab-sentinel-{name}".encode()).hexdigest()[:40]  # a run id: 40 hex


def _pidfile(which: str) -> str:
    return f"{CONF_DIR}/{which}.pid"


def _client(ip: str, port: int, password: str | None, timeout: float = 0.5) -> redis.Redis:
    return redis.Redis(ip, port, password=password, socket_timeout=timeout, socket_connect_timeout=timeout,
                       decode_responses=True, retry=Retry(NoBackoff(), 0))


def _redis_conf(name: str, replica_of: str | None) -> str:
    ip, pw = lab.HOSTS[name], lab.redis_password()
    return f"""# studio-cluster lab Redis on {name} (written by wizard/labredis.py)
bind {ip}
port {REDIS_PORT}
protected-mode no
daemonize yes
pidfile {_pidfile("redis")}
logfile {REDIS_LOG}
dir {CONF_DIR}
requirepass {pw}
masterauth {pw}
{conf_line(ACL_USER, pw, ACL_KEY_PREFIX)}
save ""
appendonly no
repl-diskless-sync-delay 0
""" + (f"replicaof {replica_of} {REDIS_PORT}\n" if replica_of else "")


def _sentinel_conf(name: str, master_ip: str) -> str:
    ip = lab.HOSTS[name]
    known = "".join(f"sentinel known-replica {MASTER_NAME} {other_ip} {REDIS_PORT}\n"
                    for other_ip in lab.HOSTS.values() if other_ip != master_ip)
    known += "".join(f"sentinel known-sentinel {MASTER_NAME} {other_ip} {SENTINEL_PORT} {_sentinel_id(other)}\n"
                     for other, other_ip in lab.HOSTS.items() if other != name)
    return f"""# studio-cluster lab Sentinel on {name} (written by wizard/labredis.py; Sentinel rewrites it)
bind {ip}
port {SENTINEL_PORT}
protected-mode no
daemonize yes
pidfile {_pidfile("sentinel")}
logfile {SENTINEL_LOG}
dir {CONF_DIR}
sentinel myid {_sentinel_id(name)}
sentinel monitor {MASTER_NAME} {master_ip} {REDIS_PORT} {QUORUM}
sentinel auth-pass {MASTER_NAME} {lab.redis_password()}
sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}
sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}
sentinel parallel-syncs {MASTER_NAME} 1
""" + known


# ------------------------------------------------------------------------------------------ processes


def _alive(name: str, which: str) -> bool:
    init = lab._init_pid(name)
    if init is None:
        return False
    pid = lab._read_pid(lab.host_path(name, _pidfile(which)))
    return lab._host_proc_alive(init, pid, "redis-server")


def redis_running(name: str) -> bool:
    """Does host `name`'s Redis process live?"""
    return _alive(name, "redis")


def sentinel_running(name: str) -> bool:
    """Does host `name`'s Sentinel process live?"""
    return _alive(name, "sentinel")


def _start_redis(name: str, replica_of: str | None) -> None:
    conf = lab.host_path(name, f"{CONF_DIR}/redis.conf")
    lab._write(conf, _redis_conf(name, replica_of), 0o600)
    lab.host_exec(name, ["redis-server", f"{CONF_DIR}/redis.conf"], timeout=10)


def _start_sentinel(name: str, master_ip: str) -> None:
    conf = lab.host_path(name, f"{CONF_DIR}/sentinel.conf")
    if not conf.exists():  # a restarted Sentinel keeps what it learnt (Sentinel rewrites the file)
        lab._write(conf, _sentinel_conf(name, master_ip), 0o600)
    lab.host_exec(name, ["redis-server", f"{CONF_DIR}/sentinel.conf", "--sentinel"], timeout=10)


def _stop(name: str, which: str, port: int) -> None:
    init = lab.require_init_pid(name)
    pid = lab._read_pid(lab.host_path(name, _pidfile(which)))
    if lab._host_proc_alive(init, pid, "redis-server"):
        lab.host_exec(name, ["kill", "-KILL", str(pid)], timeout=10)
        lab._wait_for(f"{which} on {name} to exit", lambda: not lab._host_proc_alive(init, pid, "redis-server"), 10)
    ip = lab.HOSTS[name]
    lab._wait_for(f"{ip}:{port} to refuse connections", lambda: lab._tcp_refused(ip, port), 5)


def build() -> None:
    """Start a Redis and a Sentinel on every lab host (fresh hosts: ``INITIAL_MASTER`` is the master)."""
    master_ip = lab.HOSTS[INITIAL_MASTER]
    for name in lab.HOSTS:
        lab.host_path(name, CONF_DIR).mkdir(mode=0o700, exist_ok=True)
        _start_redis(name, None if name == INITIAL_MASTER else master_ip)
    lab._wait_for("the Redis replicas to sync with the master", _replication_ok, 15, interval=0.05,
                  detail=lambda: describe(health()))
    for name in lab.HOSTS:
        _start_sentinel(name, master_ip)


def repair() -> None:
    """Start whatever Redis or Sentinel of the lab hosts is not running (as :func:`start_host_redis`);
    with none running at all, :func:`build` them afresh."""
    if not any(redis_running(n) or sentinel_running(n) for n in lab.HOSTS):
        for name in lab.HOSTS:
            for conf in ("redis.conf", "sentinel.conf"):
                lab.host_path(name, f"{CONF_DIR}/{conf}").unlink(missing_ok=True)
        build()
        return
    for name in lab.HOSTS:
        if not (redis_running(name) and sentinel_running(name)):
            start_host_redis(name, wait=False)


def await_healthy(timeout: float = 20) -> None:
    """Wait until every Sentinel reports the same master, 2 replicas with a working link and 2 peers."""
    lab._wait_for(f"the Sentinels to report a master and {len(lab.HOSTS) - 1} replicas",
                  lambda: health().ok, timeout, interval=0.1, detail=lambda: describe(health()))


# ------------------------------------------------------------------------------------------ fault helpers


def stop_host_redis(name: str, sentinel: bool = True) -> None:
    """Kill host `name`'s Redis (and, unless `sentinel` is False, its Sentinel): that host's part of the
    coordination store is dead.  Returns once the ports refuse connections."""
    lab._check_host(name)
    _stop(name, "redis", REDIS_PORT)
    if sentinel:
        _stop(name, "sentinel", SENTINEL_PORT)


def start_host_redis(name: str, wait: bool = True) -> None:
    """Start host `name`'s Redis and Sentinel if stopped.  A Redis that comes back while another host is
    the master starts as its replica (as Sentinel would reconfigure it).  With `wait`, returns once the
    Sentinels report the master and every replica healthy again."""
    lab.require_init_pid(name)
    lab.host_path(name, CONF_DIR).mkdir(mode=0o700, exist_ok=True)
    if not redis_running(name):
        try:
            current = master_host()
        except LabRedisError:
            current = None
        _start_redis(name, None if current in (None, name) else lab.HOSTS[str(current)])
    if not sentinel_running(name):
        try:
            master_ip = lab.HOSTS[master_host()]
        except LabRedisError:
            master_ip = lab.HOSTS[INITIAL_MASTER]
        _start_sentinel(name, master_ip)
    if wait:
        await_healthy()


class LabRedisError(lab.LabError):
    """No Sentinel of the lab knows a master."""


def master_host() -> str:
    """The lab host whose Redis the Sentinels report as master now (asked through redis-py's Sentinel)."""
    s = Sentinel([(ip, SENTINEL_PORT) for ip in lab.HOSTS.values()],
                 sentinel_kwargs={"socket_timeout": 0.5, "socket_connect_timeout": 0.5, "decode_responses": True})
    try:
        ip, _ = s.discover_master(MASTER_NAME)
    except redis.RedisError as exc:
        raise LabRedisError(f"no Sentinel knows the master {MASTER_NAME!r}: {exc}") from None
    by_ip = {v: k for k, v in lab.HOSTS.items()}
    if ip not in by_ip:
        raise LabRedisError(f"the Sentinels report master {ip}, which is no lab host")
    return by_ip[ip]


# ------------------------------------------------------------------------------------------ health


@dataclass
class SentinelHealth:
    """What the lab's Sentinels say: per host, whether its Redis and Sentinel answer, and the master."""

    redis: dict[str, str] = field(default_factory=dict)  # host -> "master", "replica", or why not
    sentinels: dict[str, str] = field(default_factory=dict)  # host -> master ip it reports, or why not
    master: str | None = None  # host the Sentinels agree on
    replicas_ok: int = 0  # replicas the agreed master's Sentinels see with a working link
    peers_ok: bool = False  # every answering Sentinel sees the other two

    @property
    def ok(self) -> bool:
        return (self.master is not None and self.replicas_ok == len(lab.HOSTS) - 1 and self.peers_ok
                and all(v in ("master", "replica") for v in self.redis.values())
                and len(self.sentinels) == len(lab.HOSTS)
                and all(v == lab.HOSTS[self.master] for v in self.sentinels.values()))


def _replication_ok() -> bool:
    h = _redis_roles()
    return all(v in ("master", "replica") for v in h.values()) and _replicas_of(INITIAL_MASTER) == len(lab.HOSTS) - 1


def _replicas_of(name: str) -> int:
    try:
        info: Any = _client(lab.HOSTS[name], REDIS_PORT, lab.redis_password()).info("replication")
    except (redis.RedisError, OSError):
        return 0
    return sum(1 for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
               and v.get("state") == "online")


def _redis_roles() -> dict[str, str]:
    out = {}
    for name, ip in lab.HOSTS.items():
        try:
            info: Any = _client(ip, REDIS_PORT, lab.redis_password()).info("replication")
        except (redis.RedisError, OSError) as exc:
            out[name] = f"down ({exc.__class__.__name__})"
            continue
        if info.get("role") == "master":
            out[name] = "master"
        elif info.get("master_link_status") == "up":
            out[name] = "replica"
        else:
            out[name] = f"replica, link {info.get('master_link_status')}"
    return out


def health() -> SentinelHealth:
    h = SentinelHealth(redis=_redis_roles())
    peers = []
    replicas = []
    for name, ip in lab.HOSTS.items():
        try:
            c = _client(ip, SENTINEL_PORT, None)
            m: Any = c.execute_command("SENTINEL MASTER", MASTER_NAME)  # sentinel_master() passes a kwarg the
            # parser of a plain client rejects (redis-py 6.4)
            if m.get("is_sdown") or m.get("is_odown"):
                h.sentinels[name] = f"master {m.get('ip')} down"
                continue
            h.sentinels[name] = str(m["ip"])
            peers.append(int(m.get("num-other-sentinels", 0)))
            slaves: Any = c.execute_command("SENTINEL SLAVES", MASTER_NAME)
            replicas.append(sum(1 for r in slaves
                                if not (r.get("is_sdown") or r.get("is_odown") or r.get("is_disconnected"))
                                and r.get("master-link-status") == "ok"))
        except (redis.RedisError, OSError) as exc:
            h.sentinels[name] = f"down ({exc.__class__.__name__})"
    masters = {v for v in h.sentinels.values() if v in lab.HOSTS.values()}
    if len(masters) == 1:
        by_ip = {v: k for k, v in lab.HOSTS.items()}
        h.master = by_ip[masters.pop()]
    h.replicas_ok = min(replicas) if replicas else 0
    h.peers_ok = bool(peers) and min(peers) == len(lab.HOSTS) - 1
    return h


def describe(h: SentinelHealth) -> str:
    """One line for `lab status`: the master, replicas and Sentinels, and what is wrong."""
    down = [f"{n} redis {v}" for n, v in h.redis.items() if v not in ("master", "replica")]
    down += [f"{n} sentinel {v}" for n, v in h.sentinels.items() if v not in lab.HOSTS.values()]
    agree = sum(1 for v in h.sentinels.values() if h.master and v == lab.HOSTS[h.master])
    line = (f"sentinel: master {h.master or 'UNKNOWN'}, replicas {h.replicas_ok}/{len(lab.HOSTS) - 1}, "
            f"sentinels agreeing {agree}/{len(lab.HOSTS)} (quorum {QUORUM})")
    if down:
        line += "; " + ", ".join(down)
    return line + ("; OK" if h.ok else "; NOT ok")
