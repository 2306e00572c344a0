"""The lab's infrastructure host sc-infra: a Redis with a password and PowerDNS with its HTTP API."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

from wizard.lab.layout import (
    AUTHORING_NAME,
    DEFAULT_AUTHORING,
    DNS_PORT,
    HOSTS,
    INFRA,
    PDNS_API_PORT,
    PDNS_SCHEMA,
    REDIS_PORT,
    ZONE,
    LabError,
    infra_dir,
    secret_path,
)
from wizard.lab.netns import _in_netns, _netns_ident
from wizard.lab.processes import (
    _kill_pidfile,
    _pid_alive,
    _read_pid,
    _run,
    _spawn_root,
    _tail,
    _tcp_refused,
    _wait_for,
    _write,
)


def redis_password() -> str:
    return secret_path("redis_password").read_text().strip()


def sst_password() -> str:
    return secret_path("sst_password").read_text().strip()


def pdns_api_key() -> str:
    return secret_path("pdns_api_key").read_text().strip()


def pdns_api_url() -> str:
    return f"http://{INFRA[1]}:{PDNS_API_PORT}"


def redis_ping(password: str | None = None, timeout: float = 0.5) -> str:
    """PING the lab Redis (redis-py, AUTH with `password` when given); return ``+PONG``, else the error reply as
    Redis words it (``-NOAUTH ...``, ``-WRONGPASS ...``, ``-ERR ...``).  Raises OSError when it does not answer."""
    import redis

    client = redis.Redis(INFRA[1], REDIS_PORT, password=password, socket_timeout=timeout,
                         socket_connect_timeout=timeout)
    try:
        return "+PONG" if client.ping() else "-ERR no PONG"
    except redis.exceptions.AuthenticationError as exc:  # redis-py drops the reply's code word: put it back
        return f"-{'NOAUTH' if 'required' in str(exc).lower() else 'WRONGPASS'} {exc}"
    except redis.exceptions.ResponseError as exc:
        return f"-ERR {exc}"
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        message = f"the lab Redis at {INFRA[1]}:{REDIS_PORT} does not answer: {exc}"
        if "refused" in str(exc).lower():
            raise ConnectionRefusedError(message) from None
        raise (TimeoutError if isinstance(exc, redis.exceptions.TimeoutError) else OSError)(message) from None
    finally:
        client.close()


def _redis_ok() -> bool:
    try:
        return redis_ping(redis_password()) == "+PONG"
    except (OSError, LabError):
        return False


def dns_query_at(server: str, qname: str, rdtype: str = "A", timeout: float = 1.0, port: int = 53) -> list[str]:
    """Ask the DNS server at server:port directly; return the answer's addresses/values (empty on NXDOMAIN
    etc.).  Raises dns.exception.DNSException or OSError when it does not answer."""
    import dns.message
    import dns.query
    import dns.rdatatype

    r = dns.query.udp(dns.message.make_query(qname, rdtype), server, timeout=timeout, port=port)
    want = dns.rdatatype.from_text(rdtype)
    return [rd.to_text() for rrset in r.answer if rrset.rdtype == want for rd in rrset]


def dns_query(qname: str, rdtype: str = "A", timeout: float = 1.0) -> list[str]:
    """Ask the lab PowerDNS directly; return the answer's addresses/values (empty on NXDOMAIN etc.)."""
    return dns_query_at(INFRA[1], qname, rdtype, timeout, DNS_PORT)


def _pdns_ok() -> bool:
    try:
        return dns_query(f"studio1.{ZONE}", timeout=0.5) == [HOSTS["studio1"]]
    except Exception:
        return False


def _redis_pid() -> int | None:
    pid = _read_pid(infra_dir() / "redis.pid")
    return pid if _pid_alive(pid, "redis-server") else None


def _pdns_pid() -> int | None:
    pid = _read_pid(infra_dir() / "pdns.pid")
    return pid if _pid_alive(pid, "pdns_server") else None


def redis_conf(bind: str, port: int, password: str, directory: Path, by: str) -> str:
    """A lab Redis server's config: one address, a password, nothing saved to disk."""
    return f"""# studio-cluster {by} Redis (written by wizard/lab)
bind {bind}
port {port}
protected-mode no
daemonize no
requirepass {password}
save ""
appendonly no
dir {directory}
logfile ""
"""


def _redis_conf() -> str:
    return redis_conf(INFRA[1], REDIS_PORT, redis_password(), infra_dir() / "redis", "lab")


def _start_redis_now() -> None:
    d = infra_dir()
    (d / "redis").mkdir(parents=True, exist_ok=True)
    _write(d / "redis.conf", _redis_conf(), 0o600)
    _spawn_root(_in_netns(INFRA[0], ["redis-server", str(d / "redis.conf")]), d / "redis.pid", d / "redis.log")


def _await_redis() -> None:
    _wait_for(f"Redis on {INFRA[1]}:{REDIS_PORT} to answer PING", _redis_ok, 10,
              detail=lambda: _tail(infra_dir() / "redis.log"))


def pdns_conf(by: str, address: str, port: int, socket_dir: Path, backend: str, api: str) -> str:
    """A lab PowerDNS config: `backend` (``launch=...`` and its settings) and `api` (``webserver``/``api``
    settings) lines, LUA records with 1 s health checks, no caches (answers follow the zone at once)."""
    return f"""# studio-cluster {by} PowerDNS (written by wizard/lab)
{backend.strip()}
enable-lua-records=yes
lua-health-checks-interval=1
local-address={address}
local-port={port}
guardian=no
daemon=no
socket-dir={socket_dir}
disable-syslog=yes
security-poll-suffix=
cache-ttl=0
query-cache-ttl=0
negquery-cache-ttl=0
zone-cache-refresh-interval=0
{api.strip()}
loglevel=4
"""


def _pdns_conf() -> str:
    d = infra_dir()
    backend = f"launch=gsqlite3\ngsqlite3-database={d / 'pdns' / 'pdns.sqlite3'}\ngsqlite3-dnssec=no"
    api = (f"webserver=yes\nwebserver-address={INFRA[1]}\nwebserver-port={PDNS_API_PORT}\n"
           f"webserver-allow-from=198.18.0.0/15\napi=yes\napi-key={pdns_api_key()}")
    return pdns_conf("lab", INFRA[1], DNS_PORT, d / "pdns", backend, api)


def _zone_serial() -> int:
    f = infra_dir() / "zone.serial"
    prev = _read_pid(f) or 0
    serial = max(prev + 1, int(time.time()))
    _write(f, f"{serial}\n")
    return serial


def write_zone(authoring: str | None = None) -> Path:
    """Write the lab.test zone (and bind config); `authoring` is the record for studio.lab.test, e.g.
    ``"A 198.18.0.99"``; None means the default LUA ifurlup record.  Does not reload PowerDNS."""
    d = infra_dir()
    d.mkdir(parents=True, exist_ok=True)
    record = DEFAULT_AUTHORING if authoring is None else authoring
    if "\n" in record:
        raise LabError("the authoring record must be one line")
    host_label = AUTHORING_NAME.removesuffix("." + ZONE)
    zone = f"""; lab.test (written by wizard/lab)
$ORIGIN {ZONE}.
$TTL 60
@\tIN SOA ns1.{ZONE}. hostmaster.{ZONE}. ( {_zone_serial()} 60 60 600 1 )
@\tIN NS ns1.{ZONE}.
ns1\tIN A {INFRA[1]}
{INFRA[0]}\tIN A {INFRA[1]}
redis\tIN A {INFRA[1]}
""" + "".join(f"{n}\tIN A {ip}\n" for n, ip in HOSTS.items()) + f"{host_label}\t1 IN {record}\n"
    zone_file = d / f"{ZONE}.zone"
    _write(zone_file, zone)
    _write(d / "named.conf", f'zone "{ZONE}" {{\n  type master;\n  file "{zone_file}";\n}};\n')
    return zone_file


def _load_zone(zone_file: Path) -> None:
    """Replace the zone's contents in PowerDNS's sqlite database with `zone_file` (records pushed through
    the API since are replaced too)."""
    _run(["pdnsutil", f"--config-dir={infra_dir() / 'pdns'}", "load-zone", ZONE, str(zone_file)], timeout=30)


def _zone_loaded(db: Path) -> bool:
    """The zone's SOA record is in PowerDNS's sqlite database (``pdnsutil load-zone`` finished)."""
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            row = conn.execute("SELECT 1 FROM records r JOIN domains d ON r.domain_id = d.id "
                               "WHERE d.name = ? AND r.type = 'SOA' LIMIT 1", (ZONE,)).fetchone()
    except sqlite3.Error:
        return False
    return row is not None


def _start_pdns_now() -> None:
    d = infra_dir()
    (d / "pdns").mkdir(parents=True, exist_ok=True)
    _write(d / "pdns" / "pdns.conf", _pdns_conf(), 0o600)  # holds the API key
    if not (d / f"{ZONE}.zone").exists():
        write_zone()
    db = d / "pdns" / "pdns.sqlite3"
    if not db.exists():  # a restarted PowerDNS keeps its database (and what the API wrote into it)
        tmp = db.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        with contextlib.closing(sqlite3.connect(tmp)) as conn:
            conn.executescript(PDNS_SCHEMA.read_text())
        tmp.rename(db)
    if not _zone_loaded(db):  # new, or a `lab up` killed between the schema and the zone (seen in a full run)
        _load_zone(d / f"{ZONE}.zone")
    _spawn_root(_in_netns(INFRA[0], ["pdns_server", f"--config-dir={d / 'pdns'}"]), d / "pdns.pid",
                d / "pdns.log")


def _await_pdns() -> None:
    _wait_for(f"PowerDNS on {INFRA[1]}:{DNS_PORT} to answer studio1.{ZONE}", _pdns_ok, 10,
              detail=lambda: _tail(infra_dir() / "pdns.log"))


def _pdns_control(*args: str) -> str:
    return _run(["pdns_control", f"--config-dir={infra_dir() / 'pdns'}", *args], timeout=10).stdout.strip()


def stop_redis() -> None:
    _kill_pidfile(infra_dir() / "redis.pid", "redis-server")
    _wait_for(f"{INFRA[1]}:{REDIS_PORT} to refuse connections", lambda: _tcp_refused(INFRA[1], REDIS_PORT), 5)


def start_redis() -> None:
    if _redis_pid() is None:
        if _netns_ident(INFRA[0]) is None:
            raise LabError("the lab is not up (no sc-infra namespace)")
        _start_redis_now()
    _await_redis()


def set_authoring_record(content: str | None) -> None:
    """Replace the record for studio.lab.test (None = the default LUA ifurlup record; else e.g.
    ``"A 198.18.0.99"``), reload PowerDNS and wait until it answers from the new zone."""
    zone_file = write_zone(content)
    _load_zone(zone_file)
    serial = zone_file.read_text().split("( ", 1)[1].split()[0]

    def served() -> bool:
        try:
            soa = dns_query(ZONE, "SOA", timeout=0.5)
        except Exception:
            return False
        return bool(soa) and soa[0].split()[2] == serial

    _wait_for(f"PowerDNS to serve zone serial {serial}", served, 10,
              detail=lambda: _tail(infra_dir() / "pdns.log"))
