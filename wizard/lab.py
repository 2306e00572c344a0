"""The local three-host lab: studio1, studio2 and arbiter as namespace "hosts", plus Redis and PowerDNS.

Everything lives on the lab network 198.18.0.0/24 (a bridge in the root namespace); no lab host has a
default route, so nothing in the lab can talk to anything but the lab.

* ``scbr0`` (198.18.0.1/24) in the root namespace: the wizard reaches every host through it.
* ``sc-studio1``, ``sc-studio2``, ``sc-arbiter``: a network namespace each, and inside it a tiny init
  (``wizard/labhost_init.py``) as PID 1 of private pid/mount/uts/ipc namespaces.  The init bind-mounts
  the host's private ``/etc/mysql``, ``/var/lib/mysql``, ``/run``, ``/var/log``, ``/root``, ``/etc/ssh``,
  ``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf`` and ``/tmp`` (all under ``LAB_DIR/hosts/<name>/``)
  and reaps orphans.  Each host runs its own sshd; MariaDB is installed (the machine's binaries and a
  freshly initialised datadir) but not started.  Each host also runs a Redis and a Sentinel
  (``wizard/labredis.py``: one master, two replicas, quorum 2), the coordination store of ``profiles/lab.yaml``.
* ``sc-infra`` (198.18.0.2, network namespace only): a single Redis on 6379 with a password (for profiles
  with ``redis.url``), and PowerDNS
  serving ``lab.test`` with a LUA ``ifurlup`` record for ``studio.lab.test`` from a gsqlite3 database
  (so its HTTP API on :8081, key in ``secrets/pdns_api_key``, can edit the zone).

Kept across ``down``: the lab client key, the secrets and the template datadir.  Everything else
(``hosts/``, ``infra/``, ``known_hosts``) is per run and removed by ``down``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from wizard.labhost_init import BINDS

LAB_DIR = Path(os.environ.get("STUDIO_CLUSTER_LAB_DIR", "/var/lib/studio-cluster-lab"))
BRIDGE = "scbr0"
BRIDGE_ADDR = "198.18.0.1/24"
HOSTS = {"studio1": "198.18.0.11", "studio2": "198.18.0.12", "arbiter": "198.18.0.13"}
INFRA = ("infra", "198.18.0.2")
ZONE = "lab.test"
AUTHORING_NAME = "studio.lab.test"
HEALTH_PORT = 9200
REDIS_PORT = 6379
DNS_PORT = 53
PDNS_API_PORT = 8081  # PowerDNS's HTTP API (webserver) in sc-infra; the zone lives in gsqlite3 so the API can edit it
PDNS_SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")
SSH_PORT = 22
NETNS_PREFIX = "sc-"
VETH_PREFIX = "scv-"
PREFIX_LEN = 24

INIT_SCRIPT = Path(__file__).with_name("labhost_init.py")
SYSTEM_PYTHON = "/usr/bin/python3"
DEFAULT_AUTHORING = (
    f"LUA A \"ifurlup('http://{HOSTS['studio1']}:{HEALTH_PORT}/', "
    f"{{{{'{HOSTS['studio1']}'}}, {{'{HOSTS['studio2']}'}}}}, "
    "{interval='1', timeout='1', stringmatch=''})\""
)
FAULT_COMMENT = "studio-cluster-lab-fault"
HIDDEN_EMPTY = "/run/lab-hidden-empty"  # inside each host: the empty file hide_binary mounts over a binary

# Paths inside a host that are private to it, and where they live under LAB_DIR/hosts/<name>/.
PRIVATE_PATHS = {target: rel for rel, target in BINDS}

Progress = Callable[[str], None]


class LabError(Exception):
    """The lab could not be built, inspected or changed; the message says what and why."""


class LabCommandError(subprocess.CalledProcessError):
    """A command inside a lab host exited non-zero (``host_exec(..., check=True)``)."""

    def __init__(self, host: str, returncode: int, cmd: Sequence[str], output: str, stderr: str) -> None:
        super().__init__(returncode, list(cmd), output, stderr)
        self.host = host

    def __str__(self) -> str:
        tail = (self.stderr or self.output or "").strip()[-800:]
        return f"{self.host}: {' '.join(self.cmd)} exited {self.returncode}" + (f": {tail}" if tail else "")


# ------------------------------------------------------------------------------------------ paths


def netns_name(name: str) -> str:
    return NETNS_PREFIX + name


def _netns_path(name: str) -> Path:
    return Path("/run/netns") / netns_name(name)


def key_path() -> Path:
    return LAB_DIR / "id_ed25519"


def known_hosts_path() -> Path:
    return LAB_DIR / "known_hosts"


def secret_path(which: str) -> Path:
    """`which` is ``redis_password`` or ``sst_password``."""
    return LAB_DIR / "secrets" / which


def host_dir(name: str) -> Path:
    return LAB_DIR / "hosts" / name


def infra_dir() -> Path:
    return LAB_DIR / "infra"


def template_datadir() -> Path:
    return LAB_DIR / "template-datadir"


def host_path(name: str, path: str) -> Path:
    """Where a host's private path (e.g. ``/var/lib/mysql/grastate.dat``) is seen from the root namespace."""
    _check_host(name)
    for prefix, rel in sorted(PRIVATE_PATHS.items(), key=lambda kv: -len(kv[0])):
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            rest = path[len(prefix):].lstrip("/")
            return host_dir(name) / rel / rest if rest else host_dir(name) / rel
    raise LabError(f"{path} is not private to a lab host (private: {', '.join(PRIVATE_PATHS)})")


def ssh_options() -> list[str]:
    """ssh(1) options that reach lab hosts with strict host-key checking (append ``root@IP``)."""
    return [
        "-i", str(key_path()),
        "-o", f"UserKnownHostsFile={known_hosts_path()}",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes",
        "-o", "ConnectTimeout=5",
        "-o", "KexAlgorithms=curve25519-sha256",
    ]


def _check_host(name: str) -> None:
    if name not in HOSTS:
        raise LabError(f"unknown lab host {name!r} (hosts: {', '.join(HOSTS)})")


# ------------------------------------------------------------------------------------------ helpers


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 30,
         input: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input,
                              check=False, stdin=None if input is not None else subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]} is not installed: {exc}") from exc
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}")
    return proc


def _wait_for(what: str, predicate: Callable[[], object], timeout: float, interval: float = 0.02,
              detail: Callable[[], str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            extra = ""
            if detail is not None:
                with contextlib.suppress(Exception):
                    extra = detail()
            raise LabError(f"timed out after {timeout:g} s waiting for {what}" + (f": {extra}" if extra else ""))
        time.sleep(interval)


def _tail(path: Path, n: int = 5) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _proc_state(pid: int) -> str | None:
    """The one-letter state of a process, or None when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _pid_alive(pid: int | None, cmd_contains: str | None = None) -> bool:
    if not pid or pid <= 0:
        return False
    state = _proc_state(pid)
    if state is None or state in ("Z", "X"):
        return False
    if cmd_contains is not None:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        return cmd_contains in cmdline
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _netns_ident(name: str) -> tuple[int, int] | None:
    try:
        st = os.stat(_netns_path(name))
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _netns_pids(name: str) -> list[int]:
    """Live processes whose network namespace is the lab namespace `name` (like ``ip netns pids``)."""
    ident = _netns_ident(name)
    if ident is None:
        return []
    return _pids_in_net_ident(ident)


def _pids_in_net_ident(ident: tuple[int, int]) -> list[int]:
    pids = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == ident and _pid_alive(int(entry)):
            pids.append(int(entry))
    return pids


def _nspid(pid: int) -> list[int]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return [int(x) for x in line.split()[1:]]
    except (OSError, ValueError):
        pass
    return []


def _lab_netns_present() -> list[str]:
    """Names (without the prefix) of every ``sc-*`` network namespace that exists."""
    try:
        entries = os.listdir("/run/netns")
    except OSError:
        return []
    return sorted(e[len(NETNS_PREFIX):] for e in entries if e.startswith(NETNS_PREFIX))


def _link_exists(ifname: str) -> bool:
    return Path("/sys/class/net", ifname).exists()


def _tcp_banner(ip: str, port: int, timeout: float = 0.5) -> bytes:
    with socket.create_connection((ip, port), timeout=timeout) as s:
        s.settimeout(timeout)
        return s.recv(64)


def _ssh_ready(ip: str) -> bool:
    try:
        return _tcp_banner(ip, SSH_PORT).startswith(b"SSH-")
    except OSError:
        return False


def _tcp_refused(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def redis_password() -> str:
    return secret_path("redis_password").read_text().strip()


def sst_password() -> str:
    return secret_path("sst_password").read_text().strip()


def pdns_api_key() -> str:
    return secret_path("pdns_api_key").read_text().strip()


def pdns_api_url() -> str:
    return f"http://{INFRA[1]}:{PDNS_API_PORT}"


def _resp(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for p in parts:
        b = p.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def redis_ping(password: str | None = None, timeout: float = 0.5) -> str:
    """Send AUTH (when `password` is given) and PING to the lab Redis; return the first error reply, else
    PING's reply (``+PONG``)."""
    ip = INFRA[1]
    with socket.create_connection((ip, REDIS_PORT), timeout=timeout) as s:
        s.settimeout(timeout)
        expected = 1
        payload = b""
        if password is not None:
            payload += _resp("AUTH", password)
            expected += 1
        payload += _resp("PING")
        s.sendall(payload)
        buf = b""
        while buf.count(b"\r\n") < expected:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    lines = buf.decode(errors="replace").split("\r\n")[:expected]
    errors = [line for line in lines if line.startswith("-")]
    return errors[0] if errors else lines[-1]


def _redis_ok() -> bool:
    try:
        return redis_ping(redis_password()) == "+PONG"
    except (OSError, LabError):
        return False


def dns_query(qname: str, rdtype: str = "A", timeout: float = 1.0) -> list[str]:
    """Ask the lab PowerDNS directly; return the answer's addresses/values (empty on NXDOMAIN etc.)."""
    import dns.message
    import dns.query
    import dns.rdatatype

    q = dns.message.make_query(qname, rdtype)
    r = dns.query.udp(q, INFRA[1], timeout=timeout, port=DNS_PORT)
    want = dns.rdatatype.from_text(rdtype)
    return [rd.to_text() for rrset in r.answer if rrset.rdtype == want for rd in rrset]


def _pdns_ok() -> bool:
    try:
        return dns_query(f"studio1.{ZONE}", timeout=0.5) == [HOSTS["studio1"]]
    except Exception:
        return False


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    LAB_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(LAB_DIR / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------ status


@dataclass
class HostStatus:
    name: str
    ip: str
    netns: bool = False
    init_pid: int | None = None
    init_alive: bool = False
    sshd: bool = False

    @property
    def up(self) -> bool:
        return self.netns and self.init_alive and self.sshd


@dataclass
class LabStatus:
    bridge: bool = False
    hosts: dict[str, HostStatus] = field(default_factory=dict)
    infra_netns: bool = False
    redis: bool = False
    pdns: bool = False
    sentinel: bool = False  # a Redis + Sentinel on every host: one master, every replica linked, all agree
    sentinel_line: str = ""

    @property
    def structure_ok(self) -> bool:
        """Bridge, namespaces and host inits are in place (services may still be down)."""
        return (self.bridge and self.infra_netns and len(self.hosts) == len(HOSTS)
                and all(h.netns and h.init_alive for h in self.hosts.values()))

    @property
    def all_up(self) -> bool:
        return (self.structure_ok and all(h.up for h in self.hosts.values()) and self.redis and self.pdns
                and self.sentinel)

    @property
    def anything_present(self) -> bool:
        return (self.bridge or self.infra_netns or bool(_lab_netns_present())
                or any(h.netns or h.init_alive for h in self.hosts.values()))

    def table(self) -> str:
        def yn(b: bool) -> str:
            return "up" if b else "DOWN"

        rows = [f"{'host':<9} {'address':<13} {'netns':<6} {'init':<14} {'sshd':<5}"]
        for h in self.hosts.values():
            init = f"up (pid {h.init_pid})" if h.init_alive else "DOWN"
            rows.append(f"{h.name:<9} {h.ip:<13} {yn(h.netns):<6} {init:<14} {yn(h.sshd):<5}")
        rows.append(f"{INFRA[0]:<9} {INFRA[1]:<13} {yn(self.infra_netns):<6} "
                    f"redis {yn(self.redis)}, pdns {yn(self.pdns)}")
        rows.append(self.sentinel_line or "sentinel: DOWN")
        rows.append(f"bridge {BRIDGE} {BRIDGE_ADDR}: {yn(self.bridge)}; lab is "
                    + ("UP" if self.all_up else "NOT up"))
        return "\n".join(rows)


def _init_pid(name: str) -> int | None:
    """The root-namespace pid of the host's PID 1, or None."""
    pidfile = host_dir(name) / "lab" / "init.pid"
    pid = _read_pid(pidfile)
    ident = _netns_ident(name)
    if pid and _is_host_init(pid, ident):
        return pid
    if ident is None:
        return None
    for p in _pids_in_net_ident(ident):
        if _is_host_init(p, ident):
            return p
    return None


def _is_host_init(pid: int, ident: tuple[int, int] | None) -> bool:
    if ident is None or not _pid_alive(pid, "labhost_init.py"):
        return False
    ns = _nspid(pid)
    if len(ns) < 2 or ns[-1] != 1:
        return False
    try:
        st = os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == ident


def require_init_pid(name: str) -> int:
    _check_host(name)
    pid = _init_pid(name)
    if pid is None:
        raise LabError(f"lab host {name} is not running (run `studio-cluster lab up`)")
    return pid


def _host_proc_alive(init_pid: int, host_pid: int | None, cmd_contains: str) -> bool:
    """Is `host_pid` (a pid in the host's own pid namespace) alive, judged through the host's /proc?"""
    if not host_pid:
        return False
    base = Path(f"/proc/{init_pid}/root/proc/{host_pid}")
    try:
        stat = (base / "stat").read_text()
        cmdline = (base / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X") and cmd_contains in cmdline


def _sshd_host_pid(name: str) -> int | None:
    return _read_pid(host_path(name, "/run/sshd.pid"))


def _sshd_alive(name: str, init_pid: int | None) -> bool:
    return bool(init_pid) and _host_proc_alive(init_pid or 0, _sshd_host_pid(name), "sshd")


def _redis_pid() -> int | None:
    pid = _read_pid(infra_dir() / "redis.pid")
    return pid if _pid_alive(pid, "redis-server") else None


def _pdns_pid() -> int | None:
    pid = _read_pid(infra_dir() / "pdns.pid")
    return pid if _pid_alive(pid, "pdns_server") else None


def status() -> LabStatus:
    st = LabStatus(bridge=_link_exists(BRIDGE), infra_netns=_netns_ident(INFRA[0]) is not None)
    for name, ip in HOSTS.items():
        hs = HostStatus(name=name, ip=ip, netns=_netns_ident(name) is not None)
        hs.init_pid = _init_pid(name) if hs.netns else None
        hs.init_alive = hs.init_pid is not None
        hs.sshd = _sshd_alive(name, hs.init_pid)
        st.hosts[name] = hs
    st.redis = _redis_pid() is not None and _redis_ok()
    st.pdns = _pdns_pid() is not None and _pdns_ok()
    if st.structure_ok:
        from wizard import labredis

        health = labredis.health()
        st.sentinel, st.sentinel_line = health.ok, labredis.describe(health)
    return st


# ------------------------------------------------------------------------------------------ running things


HOST_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "USER": "root",
    "LOGNAME": "root",
    "SHELL": "/bin/bash",
    "LANG": "C.UTF-8",
}


def host_exec(name: str, argv: Sequence[str], check: bool = True, timeout: float = 30,
              input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `argv` inside lab host `name` (all its namespaces, cwd /, a root login's environment plus
    `env`), wait, and return its output.  A non-zero exit raises :class:`LabCommandError` when `check`.

    On timeout the whole process group (inside the host too) is killed and TimeoutExpired raised.
    """
    pid = require_init_pid(name)
    cmd = ["nsenter", "-t", str(pid), "-a", *argv]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
                            start_new_session=True, env={**HOST_ENV, **(env or {})})
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    result = subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise LabCommandError(name, proc.returncode, argv, out, err)
    return result


def host_spawn(name: str, argv: Sequence[str], log: str = "/dev/null") -> int:
    """Start `argv` detached inside host `name` (own session, stdin from /dev/null, output appended to
    `log`, a path inside the host).  Returns its pid *in the host's pid namespace*; the host's init
    reaps it when it dies."""
    script = 'log=$1; shift; echo $$; exec "$@" </dev/null >>"$log" 2>&1'
    proc = host_exec(name, ["setsid", "-f", "/bin/sh", "-c", script, "sh", log, *argv], timeout=10)
    try:
        return int(proc.stdout.split()[0])
    except (ValueError, IndexError) as exc:
        raise LabError(f"{name}: could not start {' '.join(argv)}: {proc.stderr.strip()}") from exc


def _spawn_root(argv: Sequence[str], pidfile: Path, logfile: Path) -> None:
    """Start `argv` detached from the root namespace; its pid (after exec) lands in `pidfile`."""
    pidfile.unlink(missing_ok=True)
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as log:
        subprocess.run(["setsid", "-f", "/bin/sh", "-c", 'echo $$ > "$0"; exec "$@"', str(pidfile), *argv],
                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=True, cwd="/")
    _wait_for(f"pid file {pidfile}", lambda: _read_pid(pidfile) is not None, 5)


def _in_netns(name: str, argv: Sequence[str]) -> list[str]:
    return ["nsenter", f"--net={_netns_path(name)}", *argv]


# ------------------------------------------------------------------------------------------ persistent state


def _ensure_persistent(progress: Progress) -> None:
    LAB_DIR.mkdir(parents=True, exist_ok=True)
    os.chmod(LAB_DIR, 0o755)  # the mysql user must traverse it to build the template datadir
    if not (key_path().exists() and key_path().with_suffix(".pub").exists()):
        progress("creating the lab client key")
        key_path().unlink(missing_ok=True)
        key_path().with_suffix(".pub").unlink(missing_ok=True)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "studio-cluster-lab", "-f", str(key_path())])
    sdir = LAB_DIR / "secrets"
    sdir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(sdir, 0o700)
    for which in ("redis_password", "sst_password", "pdns_api_key"):
        p = secret_path(which)
        if not p.exists():
            _write(p, secrets.token_urlsafe(24) + "\n", 0o600)
    if not (template_datadir() / "mysql").is_dir():
        progress("initialising the template MariaDB datadir (once)")
        tmp = LAB_DIR / "template-datadir.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        shutil.chown(tmp, "mysql", "mysql")
        proc = _run(["mariadb-install-db", "--user=mysql", f"--datadir={tmp}",
                     "--auth-root-authentication-method=socket", "--skip-test-db"], check=False, timeout=120)
        if proc.returncode != 0:
            raise LabError(f"mariadb-install-db failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
        shutil.rmtree(template_datadir(), ignore_errors=True)
        tmp.rename(template_datadir())


# ------------------------------------------------------------------------------------------ network


def _build_network(progress: Progress) -> None:
    progress(f"creating bridge {BRIDGE} {BRIDGE_ADDR} and namespaces")
    batch = [f"link add {BRIDGE} type bridge", f"addr add {BRIDGE_ADDR} dev {BRIDGE}", f"link set {BRIDGE} up"]
    names = [INFRA[0], *HOSTS]
    for n in names:
        batch.append(f"netns add {netns_name(n)}")
    _run(["ip", "-batch", "-"], input="\n".join(batch) + "\n")
    with contextlib.suppress(OSError):
        Path(f"/proc/sys/net/ipv6/conf/{BRIDGE}/disable_ipv6").write_text("1")
    batch = []
    addrs = {INFRA[0]: INFRA[1], **HOSTS}
    for n in names:
        veth = VETH_PREFIX + n
        batch += [
            f"link add {veth} type veth peer name eth0 netns {netns_name(n)}",
            f"link set {veth} master {BRIDGE} up",
        ]
    _run(["ip", "-batch", "-"], input="\n".join(batch) + "\n")
    for n in names:
        veth = VETH_PREFIX + n
        with contextlib.suppress(OSError):
            Path(f"/proc/sys/net/ipv6/conf/{veth}/disable_ipv6").write_text("1")
        # IPv6 off inside (no router solicitations or DAD on the lab wire), then addresses; no default route.
        _run(_in_netns(n, ["sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; "
                                       "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; "
                                       "echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6"]), check=False)
        _run(["ip", "-n", netns_name(n), "-batch", "-"],
             input=f"addr add {addrs[n]}/{PREFIX_LEN} dev eth0\nlink set eth0 up\nlink set lo up\n")


# ------------------------------------------------------------------------------------------ hosts


def _hosts_file() -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", ""]
    for n, ip in HOSTS.items():
        lines.append(f"{ip}\t{n}.{ZONE} {n}")
    lines.append(f"{INFRA[1]}\t{INFRA[0]}.{ZONE} {INFRA[0]} redis.{ZONE} redis")
    return "\n".join(lines) + "\n"


def _sshd_config(ip: str) -> str:
    return f"""# studio-cluster lab host sshd (written by wizard/lab.py)
ListenAddress {ip}
Port {SSH_PORT}
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 100
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
"""


def _gen_host_key(etc_ssh: Path) -> None:
    for old in etc_ssh.glob("ssh_host_*"):
        old.unlink()
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(etc_ssh / "ssh_host_ed25519_key")])


def _prepare_host(name: str, ip: str) -> None:
    d = host_dir(name)
    shutil.rmtree(d, ignore_errors=True)
    (d / "lab").mkdir(parents=True)
    (d / "etc").mkdir()
    (d / "var" / "lib").mkdir(parents=True)
    _run(["cp", "-a", "/etc/mysql", str(d / "etc" / "mysql")])
    _run(["cp", "-a", "/etc/ssh", str(d / "etc" / "ssh")])
    _run(["cp", "-a", "/etc/default", str(d / "etc" / "default")])
    for private in ("var/lib/garbd", "opt", "var/backups"):
        (d / private).mkdir(mode=0o755)
    Path("/var/lib/garbd").mkdir(exist_ok=True)  # the mount point garbd's private work dir binds onto
    _run(["cp", "-a", "--sparse=always", str(template_datadir()), str(d / "var" / "lib" / "mysql")])
    etc_ssh = d / "etc" / "ssh"
    _gen_host_key(etc_ssh)
    _write(etc_ssh / "sshd_config", _sshd_config(ip))
    _write(d / "etc" / "hosts", _hosts_file())
    _write(d / "etc" / "hostname", f"{name}\n")
    _write(d / "etc" / "resolv.conf", f"# lab DNS (PowerDNS in sc-infra)\nsearch {ZONE}\nnameserver {INFRA[1]}\n")
    run = d / "run"
    run.mkdir(mode=0o755)
    (run / "sshd").mkdir(mode=0o755)
    (run / "mysqld").mkdir(mode=0o755)
    shutil.chown(run / "mysqld", "mysql", "mysql")
    (run / "lock").mkdir(mode=0o1777)
    os.chmod(run / "lock", 0o1777)
    log = d / "var" / "log"
    log.mkdir(mode=0o755)
    (log / "mysql").mkdir(mode=0o2750)
    shutil.chown(log / "mysql", "mysql", "adm")
    os.chmod(log / "mysql", 0o2750)
    root = d / "root"
    root.mkdir(mode=0o700)
    (root / ".ssh").mkdir(mode=0o700)
    _write(root / ".ssh" / "authorized_keys", key_path().with_suffix(".pub").read_text(), 0o600)
    tmp = d / "tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777)
    _write(run / HIDDEN_EMPTY.removeprefix("/run/"), "", 0o644)  # hide_binary's stand-in


def _start_host(name: str) -> None:
    d = host_dir(name)
    _spawn_root(_in_netns(name, [
        "unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "--mount-proc", "--propagation", "private",
        SYSTEM_PYTHON, str(INIT_SCRIPT), str(d), name,
    ]), d / "lab" / "unshare.pid", d / "lab" / "init.log")


def _await_host(name: str) -> int:
    d = host_dir(name)
    err = d / "lab" / "init.error"

    def ready() -> bool:
        if err.exists():
            raise LabError(f"lab host {name} failed to start: {err.read_text().strip()}")
        return (d / "run" / "lab-init.ready").exists()

    _wait_for(f"lab host {name}'s init to mount its private directories", ready, 10,
              detail=lambda: _tail(d / "lab" / "init.log"))
    pid = None

    def found() -> bool:
        nonlocal pid
        pid = _init_pid(name)
        return pid is not None

    _wait_for(f"lab host {name}'s init process", found, 5)
    assert pid is not None
    _write(d / "lab" / "init.pid", f"{pid}\n")
    return pid


def _start_sshd_now(name: str) -> None:
    host_exec(name, ["/usr/sbin/sshd", "-f", "/etc/ssh/sshd_config"], timeout=10)


def _await_sshd(name: str, timeout: float = 10) -> None:
    ip = HOSTS[name]
    _wait_for(f"sshd on {name} ({ip}:{SSH_PORT}) to answer with its banner", lambda: _ssh_ready(ip), timeout,
              detail=lambda: _tail(host_path(name, "/var/log") / "sshd.log"))


def write_known_hosts() -> None:
    """(Re)write LAB_DIR/known_hosts from each host's current host key (entries for the IP address)."""
    lines = []
    for name, ip in HOSTS.items():
        pub = host_path(name, "/etc/ssh/ssh_host_ed25519_key.pub")
        try:
            keytype, blob = pub.read_text().split()[:2]
        except (OSError, ValueError) as exc:
            raise LabError(f"no host key for {name} at {pub}: {exc}") from exc
        lines.append(f"{ip} {keytype} {blob}")
    _write(known_hosts_path(), "\n".join(lines) + "\n", 0o644)


# ------------------------------------------------------------------------------------------ infra


def _redis_conf() -> str:
    return f"""# studio-cluster lab Redis (written by wizard/lab.py)
bind {INFRA[1]}
port {REDIS_PORT}
protected-mode no
daemonize no
requirepass {redis_password()}
save ""
appendonly no
dir {infra_dir() / "redis"}
logfile ""
"""


def _start_redis_now() -> None:
    d = infra_dir()
    (d / "redis").mkdir(parents=True, exist_ok=True)
    _write(d / "redis.conf", _redis_conf(), 0o600)
    _spawn_root(_in_netns(INFRA[0], ["redis-server", str(d / "redis.conf")]), d / "redis.pid", d / "redis.log")


def _await_redis() -> None:
    _wait_for(f"Redis on {INFRA[1]}:{REDIS_PORT} to answer PING", _redis_ok, 10,
              detail=lambda: _tail(infra_dir() / "redis.log"))


def _pdns_conf() -> str:
    d = infra_dir()
    return f"""# studio-cluster lab PowerDNS (written by wizard/lab.py)
launch=gsqlite3
gsqlite3-database={d / "pdns" / "pdns.sqlite3"}
gsqlite3-dnssec=no
enable-lua-records=yes
lua-health-checks-interval=1
local-address={INFRA[1]}
local-port={DNS_PORT}
guardian=no
daemon=no
socket-dir={d / "pdns"}
disable-syslog=yes
security-poll-suffix=
cache-ttl=0
query-cache-ttl=0
negquery-cache-ttl=0
zone-cache-refresh-interval=0
webserver=yes
webserver-address={INFRA[1]}
webserver-port={PDNS_API_PORT}
webserver-allow-from=198.18.0.0/15
api=yes
api-key={pdns_api_key()}
loglevel=4
"""


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
    zone = f"""; lab.test (written by wizard/lab.py)
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


def _start_pdns_now() -> None:
    d = infra_dir()
    (d / "pdns").mkdir(parents=True, exist_ok=True)
    _write(d / "pdns" / "pdns.conf", _pdns_conf(), 0o600)  # holds the API key
    if not (d / f"{ZONE}.zone").exists():
        write_zone()
    db = d / "pdns" / "pdns.sqlite3"
    if not db.exists():  # a restarted PowerDNS keeps its database (and what the API wrote into it)
        import sqlite3

        tmp = db.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        with contextlib.closing(sqlite3.connect(tmp)) as conn:
            conn.executescript(PDNS_SCHEMA.read_text())
        tmp.rename(db)
        _load_zone(d / f"{ZONE}.zone")
    _spawn_root(_in_netns(INFRA[0], ["pdns_server", f"--config-dir={d / 'pdns'}"]), d / "pdns.pid",
                d / "pdns.log")


def _await_pdns() -> None:
    _wait_for(f"PowerDNS on {INFRA[1]}:{DNS_PORT} to answer studio1.{ZONE}", _pdns_ok, 10,
              detail=lambda: _tail(infra_dir() / "pdns.log"))


def _pdns_control(*args: str) -> str:
    return _run(["pdns_control", f"--config-dir={infra_dir() / 'pdns'}", *args], timeout=10).stdout.strip()


# ------------------------------------------------------------------------------------------ up / down


def up(progress: Progress = print) -> LabStatus:
    """Bring the lab up (idempotent).  A healthy lab is left alone; a lab whose network and hosts are in
    place gets only its stopped services (sshd, Redis, PowerDNS) restarted; anything else is torn down
    and rebuilt from scratch."""
    t0 = time.monotonic()
    with _lock():
        st = status()
        if st.all_up:
            _ensure_persistent(progress)
            write_known_hosts()
            progress("lab is already up")
            return st
        if st.structure_ok:
            _ensure_persistent(progress)
            _repair(st, progress)
        else:
            if st.anything_present or (LAB_DIR / "hosts").exists():
                progress("cleaning up a previous lab")
            _teardown(progress)  # also ends helpers (cp, ssh-keygen, ...) of an interrupted run
            _ensure_persistent(progress)
            _build(progress)
        write_known_hosts()
        st = status()
    if not st.all_up:
        raise LabError("the lab did not come up:\n" + st.table())
    progress(f"lab is up ({time.monotonic() - t0:.1f} s)")
    return st


def _repair(st: LabStatus, progress: Progress) -> None:
    for name, hs in st.hosts.items():
        if not hs.sshd:
            progress(f"starting sshd on {name}")
            _start_sshd_now(name)
    if not st.redis:
        progress("restarting Redis")
        stop_redis()
        _start_redis_now()
    if not st.pdns:
        progress("restarting PowerDNS")
        _kill_pidfile(infra_dir() / "pdns.pid", "pdns_server")
        _start_pdns_now()
    for name, hs in st.hosts.items():
        if not hs.sshd:
            _await_sshd(name)
    _await_redis()
    _await_pdns()
    if not st.sentinel:
        from wizard import labredis

        progress("starting the stopped Redis and Sentinel processes on the hosts")
        labredis.repair()
        labredis.await_healthy()


def _build(progress: Progress) -> None:
    _build_network(progress)
    progress("preparing host directories")
    with ThreadPoolExecutor(max_workers=len(HOSTS)) as pool:  # mostly cp and ssh-keygen: run them side by side
        for fut in [pool.submit(_prepare_host, name, ip) for name, ip in HOSTS.items()]:
            fut.result()
    progress("starting hosts")
    for name in HOSTS:
        _start_host(name)
    infra_dir().mkdir(parents=True, exist_ok=True)
    write_zone()
    progress("starting Redis and PowerDNS")
    _start_redis_now()
    _start_pdns_now()
    for name in HOSTS:
        _await_host(name)
        _start_sshd_now(name)
    for name in HOSTS:
        _await_sshd(name)
    from wizard import labredis

    progress("starting a Redis and a Sentinel on each host")
    labredis.build()
    _await_redis()
    _await_pdns()
    labredis.await_healthy()


def down(progress: Progress = print) -> None:
    """Tear the lab down (idempotent, also after an interrupted run): kill everything in the lab
    namespaces, delete them and the bridge, remove per-run state.  Keeps the key, secrets and template."""
    with _lock():
        _teardown(progress)
    progress("lab is down")


def _lab_pids_from_files() -> list[int]:
    pids = []
    names = set(HOSTS)
    if (LAB_DIR / "hosts").is_dir():
        names |= {p.name for p in (LAB_DIR / "hosts").iterdir()}
    for name in sorted(names):
        lab = host_dir(name) / "lab"
        for f, expect in (("init.pid", "labhost_init.py"), ("unshare.pid", "unshare")):
            pid = _read_pid(lab / f)
            if pid and _pid_alive(pid, expect):
                pids.append(pid)
    for f, expect in (("redis.pid", "redis-server"), ("pdns.pid", "pdns_server")):
        pid = _read_pid(infra_dir() / f)
        if pid and _pid_alive(pid, expect):
            pids.append(pid)
    return pids


def _stray_helpers() -> list[int]:
    """Processes of an interrupted run that are in no lab namespace but work on per-run lab paths (a
    `cp -a` of a datadir, `ssh-keygen` of a host key, `mariadb-install-db` of the template...)."""
    needles = [f"{LAB_DIR}/hosts", f"{LAB_DIR}/infra", f"{LAB_DIR}/template-datadir.tmp", str(key_path())]
    mine = set()
    pid = os.getpid()
    while pid > 1:  # never ourselves or our ancestors
        mine.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in mine:
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(n in cmd for n in needles) and _pid_alive(int(entry)):
            found.append(int(entry))
    return found


def _teardown(progress: Progress) -> None:
    present = _lab_netns_present()
    idents = [i for i in (_netns_ident(n) for n in present) if i is not None]
    victims = set(_lab_pids_from_files()) | set(_stray_helpers())
    for ident in idents:
        victims.update(_pids_in_net_ident(ident))
    if victims:
        progress(f"stopping {len(victims)} lab processes")
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def all_gone() -> bool:
        if any(_pid_alive(p) for p in victims):
            return False
        return not any(_pids_in_net_ident(i) for i in idents)

    def leftover() -> str:
        alive = [p for p in victims if _pid_alive(p)]
        for i in idents:
            alive += _pids_in_net_ident(i)
        for p in alive:  # anything that appeared meanwhile (e.g. an nsenter racing us)
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        return f"still alive: {sorted(set(alive))}"

    deadline = time.monotonic() + 10
    while not all_gone():
        if time.monotonic() > deadline:
            raise LabError(f"timed out after 10 s waiting for the lab processes to exit ({leftover()})")
        leftover()
        time.sleep(0.02)

    for n in present:
        _run(["ip", "netns", "delete", netns_name(n)], check=False)
    for ifname in [BRIDGE, *(VETH_PREFIX + n for n in [INFRA[0], *HOSTS])]:
        if _link_exists(ifname):
            _run(["ip", "link", "delete", ifname], check=False)
    _check_no_mounts_under_lab()
    for p in (LAB_DIR / "hosts", infra_dir(), LAB_DIR / "template-datadir.tmp"):
        shutil.rmtree(p, ignore_errors=True)
        if p.exists():
            raise LabError(f"could not remove {p}")
    known_hosts_path().unlink(missing_ok=True)
    left = _lab_netns_present()
    if left or _link_exists(BRIDGE):
        raise LabError(f"could not remove lab network: netns {left}, bridge present: {_link_exists(BRIDGE)}")


def _check_no_mounts_under_lab() -> None:
    """Refuse to delete per-run state if something is mounted under it in *our* mount namespace."""
    prefix = str(LAB_DIR).rstrip("/") + "/"
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mp = _unescape(line.split()[4])
        if mp.startswith(prefix):
            raise LabError(f"{mp} is mounted in the root mount namespace; unmount it before `lab down`")


def _unescape(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def _kill_pidfile(pidfile: Path, expect: str, timeout: float = 10) -> bool:
    pid = _read_pid(pidfile)
    if not _pid_alive(pid, expect):
        return False
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    _wait_for(f"{expect} (pid {pid}) to exit", lambda: not _pid_alive(pid, expect), timeout)
    return True


# ------------------------------------------------------------------------------------------ fault helpers


def stop_sshd(name: str) -> None:
    """Stop the sshd listener on `name` (sessions already open live on, as with `systemctl stop ssh`)."""
    init = require_init_pid(name)
    hpid = _sshd_host_pid(name)
    if _host_proc_alive(init, hpid, "sshd"):
        host_exec(name, ["kill", "-TERM", str(hpid)], timeout=10)
        _wait_for(f"sshd on {name} to exit", lambda: not _host_proc_alive(init, hpid, "sshd"), 10)
    ip = HOSTS[name]
    _wait_for(f"{ip}:{SSH_PORT} to refuse connections", lambda: _tcp_refused(ip, SSH_PORT), 5)


def start_sshd(name: str) -> None:
    init = require_init_pid(name)
    if not _host_proc_alive(init, _sshd_host_pid(name), "sshd"):
        _start_sshd_now(name)
    _await_sshd(name)


def regenerate_host_key(name: str) -> None:
    """Give `name` a new host key and restart its sshd; LAB_DIR/known_hosts keeps the old one (call
    :func:`write_known_hosts` to accept the new key)."""
    require_init_pid(name)
    stop_sshd(name)
    _gen_host_key(host_path(name, "/etc/ssh"))
    start_sshd(name)


def _iptables(name: str, action: str, port: int, proto: str) -> subprocess.CompletedProcess[str]:
    return _run(_in_netns(name, ["iptables", "-w", "5", action, "INPUT", "-p", proto, "--dport", str(port),
                                 "-m", "comment", "--comment", FAULT_COMMENT, "-j", "DROP"]), check=False)


def block_port(name: str, port: int, proto: str = "tcp") -> None:
    """Silently drop incoming `proto` packets to `port` on host `name` (iptables in its netns)."""
    require_init_pid(name)
    if _iptables(name, "-C", port, proto).returncode != 0:
        proc = _iptables(name, "-I", port, proto)
        if proc.returncode != 0:
            raise LabError(f"iptables on {name} failed: {proc.stderr.strip()}")


def unblock_port(name: str, port: int, proto: str = "tcp") -> None:
    _check_host(name)
    if _netns_ident(name) is None:
        return
    while _iptables(name, "-C", port, proto).returncode == 0:
        proc = _iptables(name, "-D", port, proto)
        if proc.returncode != 0:
            raise LabError(f"iptables on {name} failed: {proc.stderr.strip()}")


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


def _mounted_over(init_pid: int, path: str) -> bool:
    try:
        text = Path(f"/proc/{init_pid}/mountinfo").read_text()
    except OSError:
        return False
    return any(_unescape(line.split()[4]) == path for line in text.splitlines())


def hide_binary(name: str, path: str) -> None:
    """Make `path` (e.g. /usr/bin/garbd) an empty, non-executable file inside host `name` only."""
    init = require_init_pid(name)
    if not os.path.exists(f"/proc/{init}/root{path}"):
        raise LabError(f"{path} does not exist on {name}")
    if _mounted_over(init, path):
        return
    _run(["nsenter", "-t", str(init), "-a", "mount", "--bind", HIDDEN_EMPTY, path])


def unhide_binary(name: str, path: str) -> None:
    init = require_init_pid(name)
    while _mounted_over(init, path):
        _run(["nsenter", "-t", str(init), "-a", "umount", path])


def clear_faults() -> None:
    """Undo every fault helper: ports unblocked, binaries unhidden, sshd and Redis running, default
    authoring record, known_hosts matching the real host keys."""
    for name in HOSTS:
        if _netns_ident(name) is not None:
            _run(_in_netns(name, ["sh", "-c", f"iptables-save | grep -q -- '{FAULT_COMMENT}' || exit 0; "
                                  f"iptables-save | grep -v -- '{FAULT_COMMENT}' | iptables-restore"]))
        init = _init_pid(name)
        if init is None:
            continue
        for line in Path(f"/proc/{init}/mountinfo").read_text().splitlines():
            f = line.split()
            if _unescape(f[3]).endswith(HIDDEN_EMPTY):
                _run(["nsenter", "-t", str(init), "-a", "umount", _unescape(f[4])], check=False)
        start_sshd(name)
    start_redis()
    from wizard import labredis

    labredis.repair()
    labredis.await_healthy()
    set_authoring_record(None)
    write_known_hosts()


LAB_IFACE = "eth0"  # every host's one interface on the lab bridge


def _partition_rules(name: str, action: str) -> list[subprocess.CompletedProcess[str]]:
    return [_run(_in_netns(name, ["iptables", "-w", "5", action, chain, flag, LAB_IFACE, "-m", "comment",
                                  "--comment", FAULT_COMMENT, "-j", "DROP"]), check=False)
            for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o"))]


def partition(name: str) -> None:
    """Cut host `name` off the lab network: drop every packet in and out of its lab interface (its
    loopback, unix sockets and :func:`host_exec` keep working).  Undone by :func:`heal` or
    :func:`clear_faults`."""
    require_init_pid(name)
    if all(p.returncode == 0 for p in _partition_rules(name, "-C")):
        return
    for proc in _partition_rules(name, "-I"):
        if proc.returncode != 0:
            raise LabError(f"iptables on {name} failed: {proc.stderr.strip()}")


def heal(name: str) -> None:
    """Undo :func:`partition` on host `name` (idempotent)."""
    _check_host(name)
    if _netns_ident(name) is None:
        return
    while any(p.returncode == 0 for p in _partition_rules(name, "-C")):
        for proc in _partition_rules(name, "-D"):
            if proc.returncode != 0 and "does a matching rule exist" not in proc.stderr:
                raise LabError(f"iptables on {name} failed: {proc.stderr.strip()}")


# ------------------------------------------------------------------------------------------ CLI


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: studio-cluster lab up|down|status"
    if len(args) != 1 or args[0] not in ("up", "down", "status"):
        print(usage, file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("the lab needs root (network namespaces, bridges, mounts)", file=sys.stderr)
        return 1
    try:
        if args[0] == "up":
            st = up()
        elif args[0] == "down":
            down()
            return 0
        else:
            st = status()
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(st.table())
    return 0 if st.all_up else 1


if __name__ == "__main__":
    sys.exit(main())
