"""The systemd lab: three Debian 12 hosts that boot systemd (``systemd-nspawn``), beside the namespace lab.

A second kind of lab host, for the product's ``services.manager: systemd`` path and a non-root SSH user
with sudo.  It shares no state with the namespace lab (:mod:`wizard.lab`, whose helpers it uses): its own
bridge, subnet, namespace and interface names, key, known_hosts, secrets, Redis and PowerDNS, so both run at once and
each has its own lock (``/tmp/studio-lab-systemd.lock`` for tests and scripts).

* ``sdbr0`` (198.18.1.1/24) in the root namespace; network namespaces ``sd-studio1``, ``sd-studio2``,
  ``sd-arbiter`` (198.18.1.11-13) and ``sd-infra`` (198.18.1.2: Redis on 6379 with a password, PowerDNS
  serving ``sdlab.test`` with a LUA ``ifurlup`` record for ``studio.sdlab.test``).  No default route.
* Each host is ``systemd-nspawn -b`` of a private overlay (upper dir per host) over one cached base
  rootfs: Debian bookworm minbase + systemd, dbus, sshd, sudo, python3, MariaDB, Galera, garbd,
  mariabackup, socat, rsync from Debian's packages.  MariaDB is installed with the datadir Debian's
  package initialises, and neither ``mariadb`` (nor its socket activation, ``mariadb.socket``, which
  Debian enables: the first connection to 3306 would start a standalone server) nor ``garb`` is enabled
  at boot: the product configures and starts them.  A user ``deploy`` with passwordless sudo and root
  both accept the lab's key.
* A supervisor per host (``unshare -m`` + a shell loop) mounts the overlay in a private mount namespace
  and restarts ``systemd-nspawn`` when the container reboots (exit status 133), so ``systemctl reboot``
  inside a host brings the same host back.

Kept across ``down``: the base rootfs (``base/``, built once in about a minute with ``debootstrap``), the
key and the secrets.  Everything else (``hosts/``, ``infra/``, ``known_hosts``) is per run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from wizard import lab
from wizard.lab import LabCommandError, LabError, Progress

SD_DIR = lab.LAB_DIR / "systemd"
BRIDGE = "sdbr0"
BRIDGE_ADDR = "198.18.1.1/24"
HOSTS = {"studio1": "198.18.1.11", "studio2": "198.18.1.12", "arbiter": "198.18.1.13"}
INFRA = ("infra", "198.18.1.2")
ZONE = "sdlab.test"
AUTHORING_NAME = "studio.sdlab.test"
NETNS_PREFIX = "sd-"
VETH_PREFIX = "sdv-"
PREFIX_LEN = 24
HEALTH_PORT = 9200
REDIS_PORT = 6379
DNS_PORT = 53
SSH_PORT = 22
DEPLOY_USER = "deploy"
SUITE = "bookworm"
MIRROR = os.environ.get("STUDIO_CLUSTER_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_INCLUDE = "systemd,systemd-sysv,dbus,openssh-server,iproute2,sudo,python3,procps"
BASE_PACKAGES = ["mariadb-server", "galera-4", "galera-arbitrator-4", "mariadb-backup", "socat", "rsync"]
BASE_VERSION = "2"  # bump when the base's recipe changes: the cached base is rebuilt
REBOOT_EXIT = 133  # systemd-nspawn's exit status when the container asked for a reboot
LOCK_FILE = "/tmp/studio-lab-systemd.lock"

SD_NET = lab.Net(BRIDGE, BRIDGE_ADDR, NETNS_PREFIX, VETH_PREFIX, HOSTS, INFRA, ZONE, PREFIX_LEN)
"""The systemd lab's network (the shared helpers of :mod:`wizard.lab` build and inspect it)."""

DEFAULT_AUTHORING = (
    f"LUA A \"ifurlup('http://{HOSTS['studio1']}:{HEALTH_PORT}/', "
    f"{{{{'{HOSTS['studio1']}'}}, {{'{HOSTS['studio2']}'}}}}, "
    "{interval='1', timeout='1', stringmatch=''})\""
)


# ------------------------------------------------------------------------------------------ paths


def netns_name(name: str) -> str:
    return SD_NET.netns_name(name)


def _netns_path(name: str) -> Path:
    return SD_NET.netns_path(name)


def base_dir() -> Path:
    return SD_DIR / "base"


def key_path() -> Path:
    return SD_DIR / "id_ed25519"


def known_hosts_path() -> Path:
    return SD_DIR / "known_hosts"


def secret_path(which: str) -> Path:
    """`which` is ``redis_password`` or ``sst_password``."""
    return SD_DIR / "secrets" / which


def host_dir(name: str) -> Path:
    return SD_DIR / "hosts" / name


def infra_dir() -> Path:
    return SD_DIR / "infra"


def _check_host(name: str) -> None:
    if name not in HOSTS:
        raise LabError(f"unknown systemd lab host {name!r} (hosts: {', '.join(HOSTS)})")


def _in_netns(name: str, argv: Sequence[str]) -> list[str]:
    return SD_NET.in_netns(name, argv)


def _netns_ident(name: str) -> tuple[int, int] | None:
    return SD_NET.netns_ident(name)


def _netns_present() -> list[str]:
    return SD_NET.present()


def _lock() -> contextlib.AbstractContextManager[None]:
    return lab.file_lock(SD_DIR)


# ------------------------------------------------------------------------------------------ base rootfs


def _base_ready() -> bool:
    try:
        return (base_dir() / ".studio-cluster-base").read_text().strip() == BASE_VERSION
    except OSError:
        return False


def _nspawn_run(root: Path, argv: Sequence[str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run one command in `root` as a container (not booted): its own /proc, /dev, /sys; the machine's
    network (for apt)."""
    return lab._run(["systemd-nspawn", "-q", "-D", str(root), "--register=no", "--keep-unit", "--pipe",
                     "-E", "DEBIAN_FRONTEND=noninteractive", "-E", "LANG=C.UTF-8", *argv], timeout=timeout)


def build_base(progress: Progress = print) -> Path:
    """Build the cached base rootfs once (debootstrap + Debian's MariaDB/Galera packages); a later call
    returns the cached one.  Raises LabError naming the step that failed."""
    if _base_ready():
        return base_dir()
    for tool in ("debootstrap", "systemd-nspawn"):
        if shutil.which(tool) is None:
            raise LabError(f"{tool} is not installed: apt-get install debootstrap systemd-container")
    t0 = time.monotonic()
    tmp = SD_DIR / "base.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    SD_DIR.mkdir(parents=True, exist_ok=True)
    progress(f"building the systemd lab's base rootfs with debootstrap ({SUITE}, once; about a minute)")
    lab._run(["debootstrap", "--variant=minbase", f"--include={BASE_INCLUDE}", SUITE, str(tmp), MIRROR],
             timeout=900)
    _finish_base(tmp, progress)
    shutil.rmtree(base_dir(), ignore_errors=True)
    tmp.rename(base_dir())
    progress(f"base rootfs ready ({time.monotonic() - t0:.0f} s)")
    return base_dir()


def _finish_base(tmp: Path, progress: Progress) -> None:
    """Install and configure what every host needs into a debootstrapped `tmp`."""
    # Nothing may start during the install (no systemd runs in a non-booted container: invoke-rc.d
    # would fall back to the init scripts); the datadir is still initialised by the package.
    lab._write(tmp / "usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0o755)
    progress("installing MariaDB, Galera, garbd, mariabackup, socat, rsync into the base")
    _nspawn_run(tmp, ["apt-get", "update", "-q"])
    _nspawn_run(tmp, ["apt-get", "install", "-y", "-q", "--no-install-recommends", *BASE_PACKAGES])
    _nspawn_run(tmp, ["sh", "-c", f"""set -e
rm -f /usr/sbin/policy-rc.d
apt-get clean
systemctl disable mariadb.service mariadb.socket garb.service
systemctl mask systemd-networkd-wait-online.service getty@tty1.service console-getty.service 2>/dev/null || true
useradd -m -s /bin/bash {DEPLOY_USER}
printf '%s\\n' '{DEPLOY_USER} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/{DEPLOY_USER}
chmod 0440 /etc/sudoers.d/{DEPLOY_USER}
rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
"""], timeout=120)
    lab._write(tmp / "etc/ssh/sshd_config.d/studio-cluster-lab.conf", _sshd_drop_in())
    lab._write(tmp / ".studio-cluster-base", BASE_VERSION + "\n")


def _sshd_drop_in() -> str:
    return """# studio-cluster systemd lab (written by wizard/labsystemd.py)
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 100:30:200
MaxSessions 100
"""


# ------------------------------------------------------------------------------------------ persistent


def _ensure_persistent(progress: Progress) -> None:
    SD_DIR.mkdir(parents=True, exist_ok=True)
    if not (key_path().exists() and key_path().with_suffix(".pub").exists()):
        progress("creating the systemd lab's client key")
        key_path().unlink(missing_ok=True)
        key_path().with_suffix(".pub").unlink(missing_ok=True)
        lab._run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "studio-cluster-lab-systemd",
                  "-f", str(key_path())])
    sdir = SD_DIR / "secrets"
    sdir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(sdir, 0o700)
    for which in ("redis_password", "sst_password"):
        p = secret_path(which)
        if not p.exists():
            lab._write(p, secrets.token_urlsafe(24) + "\n", 0o600)
    build_base(progress)


def redis_password() -> str:
    return secret_path("redis_password").read_text().strip()


# ------------------------------------------------------------------------------------------ network


def _build_network(progress: Progress) -> None:
    lab.build_network(SD_NET, progress)


# ------------------------------------------------------------------------------------------ hosts


def _hosts_file(name: str) -> str:
    return SD_NET.hosts_file()


def _put(name: str, path: str, text: str, mode: int = 0o644, owner: str | None = None) -> None:
    """Write `path` of host `name` into its overlay's upper dir (before the host boots).  Parent
    directories the base has are created with the base's mode and owner (the upper dir's copy of a
    directory decides what the host sees)."""
    upper = host_dir(name) / "upper"
    base = base_dir()
    parts = Path(path.lstrip("/")).parts
    for i in range(1, len(parts)):
        rel = Path(*parts[:i])
        d = upper / rel
        if d.is_dir():
            continue
        d.mkdir(mode=0o700)
        try:
            st = os.stat(base / rel)
        except FileNotFoundError:  # new in this host: root's, 0755 (the caller may change it)
            os.chmod(d, 0o755)
            continue
        os.chown(d, st.st_uid, st.st_gid)
        os.chmod(d, st.st_mode & 0o7777)
    target = upper / path.lstrip("/")
    lab._write(target, text, mode)
    uid = gid = 0
    if owner is not None:
        import pwd

        rec = _base_passwd(owner)
        uid, gid = rec if rec else (pwd.getpwnam(owner).pw_uid, pwd.getpwnam(owner).pw_gid)
    os.chown(target, uid, gid)


def _base_passwd(user: str) -> tuple[int, int] | None:
    for line in (base_dir() / "etc/passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == user:
            return int(f[2]), int(f[3])
    return None


def _prepare_host(name: str) -> None:
    d = host_dir(name)
    shutil.rmtree(d, ignore_errors=True)
    for sub in ("upper", "work", "root", "lab"):
        (d / sub).mkdir(parents=True)
    os.chmod(d / "upper", 0o755)
    keydir = d / "lab" / "hostkey"
    keydir.mkdir()
    lab._gen_host_key(keydir)
    _put(name, "/etc/ssh/ssh_host_ed25519_key", (keydir / "ssh_host_ed25519_key").read_text(), 0o600)
    _put(name, "/etc/ssh/ssh_host_ed25519_key.pub", (keydir / "ssh_host_ed25519_key.pub").read_text(), 0o644)
    _put(name, "/etc/hosts", _hosts_file(name))
    _put(name, "/etc/hostname", f"{name}\n")
    _put(name, "/etc/resolv.conf", f"# systemd lab DNS (PowerDNS in sd-infra)\nsearch {ZONE}\n"
                                   f"nameserver {INFRA[1]}\n")
    pub = key_path().with_suffix(".pub").read_text()
    _put(name, "/root/.ssh/authorized_keys", pub, 0o600)
    home = f"/home/{DEPLOY_USER}"
    _put(name, f"{home}/.ssh/authorized_keys", pub, 0o600, owner=DEPLOY_USER)
    ssh_dir = d / "upper" / home.lstrip("/") / ".ssh"
    uid, gid = _base_passwd(DEPLOY_USER) or (0, 0)
    os.chown(ssh_dir, uid, gid)
    os.chmod(ssh_dir, 0o700)
    os.chmod(d / "upper" / "root" / ".ssh", 0o700)


CGROUP_GROUP = "studio-lab-systemd"  # each host's own cgroup: <hierarchy>/studio-lab-systemd/<host>


def cgroup_hierarchies(mountinfo: str | None = None) -> list[str]:
    """The mount points of the cgroup hierarchies systemd uses: every cgroup2 mount (the unified tree) and a
    cgroup v1 ``name=systemd`` one (hybrid hosts).  Read from /proc/self/mountinfo unless given."""
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    out = []
    for line in mountinfo.splitlines():
        pre, _, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype, options = tail[0], tail[2].split(",")
        if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in options):
            out.append(fields[4])
    return out


def host_cgroups(name: str) -> list[str]:
    """Host `name`'s own cgroup in every hierarchy systemd uses.  With ``--keep-unit`` and no systemd as
    PID 1 here, systemd-nspawn puts its container below the cgroup it was started in: started in the same
    one, the three hosts' systemds shared ``payload/system.slice/mariadb.service`` and friends, so one
    host stopping a unit removed or killed the cgroup another host was starting the same unit in
    (``status=219/CGROUP``, "Failed to kill control group ... Input/output error")."""
    return [f"{root}/{CGROUP_GROUP}/{name}" for root in cgroup_hierarchies()]


def _remove_cgroups() -> None:
    """rmdir every lab cgroup, deepest first (they are empty once the hosts are gone)."""
    for root in cgroup_hierarchies():
        top = Path(root) / CGROUP_GROUP
        if not top.is_dir():
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def _supervisor_script() -> str:
    """Mounts the overlay (private mount namespace), moves itself into the host's own cgroups and (re)starts
    the container while it reboots."""
    return f"""set -u
name=$1 base=$2 d=$3 netns=$4
shift 4
for cg in "$@"; do
  mkdir -p "$cg" && echo $$ > "$cg/cgroup.procs" || {{ echo "cannot move into cgroup $cg"; exit 1; }}
done
mount -t overlay overlay -o "lowerdir=$base,upperdir=$d/upper,workdir=$d/work" "$d/root" || exit 1
while :; do
  echo "== $(date +%T) starting $name"
  systemd-nspawn -D "$d/root" -b --register=no --keep-unit --network-namespace-path="$netns" -M "$name" \\
    --resolv-conf=off --timezone=off --link-journal=no --console=read-only
  rc=$?
  echo "== $(date +%T) systemd-nspawn exited $rc"
  [ "$rc" -eq {REBOOT_EXIT} ] || exit "$rc"
done
"""


def _start_host(name: str) -> None:
    d = host_dir(name)
    lab._write(d / "lab" / "supervise.sh", _supervisor_script(), 0o755)
    lab._spawn_root(["unshare", "--mount", "--propagation", "private", "/bin/sh", str(d / "lab" / "supervise.sh"),
                     name, str(base_dir()), str(d), str(_netns_path(name)), *host_cgroups(name)],
                    d / "lab" / "supervisor.pid", d / "lab" / "console.log")


def leader_pid(name: str) -> int | None:
    """The root-namespace pid of the host's PID 1 (systemd), or None while it is not running."""
    _check_host(name)
    ident = _netns_ident(name)
    if ident is None:
        return None
    for pid in lab._pids_in_net_ident(ident):
        ns = lab._nspid(pid)
        if len(ns) >= 2 and ns[-1] == 1:
            return pid
    return None


def require_leader(name: str) -> int:
    pid = leader_pid(name)
    if pid is None:
        raise LabError(f"systemd lab host {name} is not running (run `studio-cluster lab up --kind systemd`)")
    return pid


def host_exec(name: str, argv: Sequence[str], check: bool = True, timeout: float = 30,
              input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `argv` as root inside host `name` (``nsenter -a`` into its PID 1's namespaces), wait, return
    its output; a non-zero exit raises :class:`LabCommandError` when `check`."""
    pid = require_leader(name)
    proc = subprocess.Popen(["nsenter", "-t", str(pid), "-a", *argv],
                            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
                            start_new_session=True, env={**lab.HOST_ENV})
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    if check and proc.returncode != 0:
        raise LabCommandError(name, proc.returncode, argv, out, err)
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def system_state(name: str) -> str:
    """``systemctl is-system-running`` inside the host (running, degraded, starting, ...), "down" when the
    host is not running."""
    if leader_pid(name) is None:
        return "down"
    with contextlib.suppress(LabError, subprocess.TimeoutExpired):
        return host_exec(name, ["systemctl", "is-system-running"], check=False, timeout=10).stdout.strip() or "?"
    return "down"


def await_booted(name: str, timeout: float = 60) -> None:
    """Wait until systemd in `name` has finished booting (running or degraded) and sshd answers."""
    def booted() -> bool:
        return system_state(name) in ("running", "degraded")

    lab._wait_for(f"systemd lab host {name} to boot", booted, timeout, interval=0.2,
                  detail=lambda: f"state {system_state(name)}; console: "
                                 + lab._tail(host_dir(name) / "lab" / "console.log"))
    ip = HOSTS[name]
    lab._wait_for(f"sshd on {name} ({ip}:{SSH_PORT})", lambda: _ssh_ready(ip), 20, interval=0.1)


def _ssh_ready(ip: str) -> bool:
    return lab.ssh_ready(ip, SSH_PORT)


def failed_units(name: str) -> list[str]:
    out = host_exec(name, ["systemctl", "list-units", "--failed", "--plain", "--no-legend"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def reboot(name: str) -> None:
    """``systemctl reboot`` inside host `name`; returns once its old PID 1 is gone (the supervisor starts
    the container again; wait for it with :func:`await_booted`)."""
    old = require_leader(name)
    host_exec(name, ["systemctl", "reboot"], check=False, timeout=30)
    lab._wait_for(f"{name}'s old PID 1 ({old}) to exit", lambda: not lab._pid_alive(old), 60, interval=0.1)


def write_known_hosts() -> None:
    lab.write_known_hosts_file(known_hosts_path(), {
        ip: host_dir(name) / "lab" / "hostkey" / "ssh_host_ed25519_key.pub" for name, ip in HOSTS.items()})


# ------------------------------------------------------------------------------------------ infra


def _redis_conf() -> str:
    return lab.redis_conf(INFRA[1], REDIS_PORT, redis_password(), infra_dir() / "redis", "systemd lab")


def _redis_ok() -> bool:
    import redis

    try:
        client = redis.Redis(INFRA[1], REDIS_PORT, password=redis_password(), socket_timeout=0.5,
                             socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def _pdns_conf() -> str:
    d = infra_dir()
    return lab.pdns_conf("systemd lab", INFRA[1], DNS_PORT, d / "pdns", f"launch=bind\nbind-config={d / 'named.conf'}",
                         "webserver=no\napi=no")


def write_zone(authoring: str | None = None) -> Path:
    d = infra_dir()
    d.mkdir(parents=True, exist_ok=True)
    record = DEFAULT_AUTHORING if authoring is None else authoring
    label = AUTHORING_NAME.removesuffix("." + ZONE)
    zone = f"""; {ZONE} (written by wizard/labsystemd.py)
$ORIGIN {ZONE}.
$TTL 60
@\tIN SOA ns1.{ZONE}. hostmaster.{ZONE}. ( {int(time.time())} 60 60 600 1 )
@\tIN NS ns1.{ZONE}.
ns1\tIN A {INFRA[1]}
{INFRA[0]}\tIN A {INFRA[1]}
""" + "".join(f"{n}\tIN A {ip}\n" for n, ip in HOSTS.items()) + f"{label}\t1 IN {record}\n"
    zone_file = d / f"{ZONE}.zone"
    lab._write(zone_file, zone)
    lab._write(d / "named.conf", f'zone "{ZONE}" {{\n  type master;\n  file "{zone_file}";\n}};\n')
    return zone_file


def dns_query(qname: str, rdtype: str = "A", timeout: float = 1.0) -> list[str]:
    return lab.dns_query_at(INFRA[1], qname, rdtype, timeout, DNS_PORT)


def _pdns_ok() -> bool:
    try:
        return dns_query(f"studio1.{ZONE}", timeout=0.5) == [HOSTS["studio1"]]
    except Exception:
        return False


def _start_infra() -> None:
    d = infra_dir()
    (d / "redis").mkdir(parents=True, exist_ok=True)
    (d / "pdns").mkdir(parents=True, exist_ok=True)
    lab._write(d / "redis.conf", _redis_conf(), 0o600)
    lab._spawn_root(_in_netns(INFRA[0], ["redis-server", str(d / "redis.conf")]), d / "redis.pid", d / "redis.log")
    lab._write(d / "pdns" / "pdns.conf", _pdns_conf())
    write_zone()
    lab._spawn_root(_in_netns(INFRA[0], ["pdns_server", f"--config-dir={d / 'pdns'}"]), d / "pdns.pid",
                    d / "pdns.log")


def _await_infra() -> None:
    d = infra_dir()
    lab._wait_for(f"Redis on {INFRA[1]}:{REDIS_PORT}", _redis_ok, 10, detail=lambda: lab._tail(d / "redis.log"))
    lab._wait_for(f"PowerDNS on {INFRA[1]}:{DNS_PORT}", _pdns_ok, 10, detail=lambda: lab._tail(d / "pdns.log"))


# ------------------------------------------------------------------------------------------ status


@dataclass
class HostStatus:
    name: str
    ip: str
    leader: int | None = None
    state: str = "down"
    sshd: bool = False

    @property
    def up(self) -> bool:
        return self.leader is not None and self.state in ("running", "degraded") and self.sshd


@dataclass
class SystemdLabStatus:
    bridge: bool = False
    hosts: dict[str, HostStatus] = field(default_factory=dict)
    redis: bool = False
    pdns: bool = False
    base: bool = False

    @property
    def structure_ok(self) -> bool:
        return self.bridge and all(h.leader is not None for h in self.hosts.values()) and len(self.hosts) == 3

    @property
    def all_up(self) -> bool:
        return self.structure_ok and all(h.up for h in self.hosts.values()) and self.redis and self.pdns

    def table(self) -> str:
        rows = [f"{'host':<9} {'address':<13} {'systemd':<16} {'sshd':<5}"]
        for h in self.hosts.values():
            sd = f"{h.state} (pid {h.leader})" if h.leader else "DOWN"
            rows.append(f"{h.name:<9} {h.ip:<13} {sd:<16} {'up' if h.sshd else 'DOWN':<5}")
        rows.append(f"{INFRA[0]:<9} {INFRA[1]:<13} redis {'up' if self.redis else 'DOWN'}, "
                    f"pdns {'up' if self.pdns else 'DOWN'}")
        rows.append(f"bridge {BRIDGE} {BRIDGE_ADDR}: {'up' if self.bridge else 'DOWN'}; base rootfs: "
                    f"{'cached' if self.base else 'not built'}; systemd lab is "
                    + ("UP" if self.all_up else "NOT up"))
        return "\n".join(rows)


def status() -> SystemdLabStatus:
    st = SystemdLabStatus(bridge=lab._link_exists(BRIDGE), base=_base_ready())
    for name, ip in HOSTS.items():
        hs = HostStatus(name, ip, leader_pid(name))
        if hs.leader is not None:
            hs.state = system_state(name)
            hs.sshd = _ssh_ready(ip)
        st.hosts[name] = hs
    st.redis = lab._pid_alive(lab._read_pid(infra_dir() / "redis.pid"), "redis-server") and _redis_ok()
    st.pdns = lab._pid_alive(lab._read_pid(infra_dir() / "pdns.pid"), "pdns_server") and _pdns_ok()
    return st


# ------------------------------------------------------------------------------------------ up / down


def up(progress: Progress = print) -> SystemdLabStatus:
    """Bring the systemd lab up (idempotent): a healthy lab is left alone, anything else is torn down and
    rebuilt (the cached base rootfs is reused).  Raises LabError."""
    t0 = time.monotonic()
    for tool in ("systemd-nspawn", "redis-server", "pdns_server"):
        if shutil.which(tool) is None:
            raise LabError(f"{tool} is not installed (make deps installs what the labs need)")
    with _lock():
        st = status()
        if st.all_up:
            progress("systemd lab is already up")
            return st
        if st.bridge or _netns_present() or (SD_DIR / "hosts").exists():
            progress("cleaning up a previous systemd lab")
        _teardown(progress)
        _ensure_persistent(progress)
        _build_network(progress)
        progress("preparing host overlays")
        with ThreadPoolExecutor(len(HOSTS)) as pool:
            for fut in [pool.submit(_prepare_host, n) for n in HOSTS]:
                fut.result()
        write_known_hosts()
        progress("starting Redis and PowerDNS")
        _start_infra()
        progress("booting the hosts (systemd-nspawn)")
        t1 = time.monotonic()
        for name in HOSTS:
            _start_host(name)
        for name in HOSTS:
            await_booted(name, 90)
        progress(f"hosts booted ({time.monotonic() - t1:.1f} s)")
        _await_infra()
        for name in HOSTS:
            bad = failed_units(name)
            if bad:
                progress(f"{name}: failed units: {', '.join(bad)}")
        st = status()
    if not st.all_up:
        raise LabError("the systemd lab did not come up:\n" + st.table())
    progress(f"systemd lab is up ({time.monotonic() - t0:.1f} s)")
    return st


def down(progress: Progress = print) -> None:
    """Power the hosts off (clean shutdown, then SIGKILL after a deadline), stop Redis and PowerDNS,
    delete the namespaces, veths and bridge, and remove per-run state.  Keeps the base, key and secrets."""
    with _lock():
        _teardown(progress)
    progress("systemd lab is down")


def _supervisors() -> list[int]:
    out = []
    if (SD_DIR / "hosts").is_dir():
        for d in (SD_DIR / "hosts").iterdir():
            pid = lab._read_pid(d / "lab" / "supervisor.pid")
            if pid and lab._pid_alive(pid, "supervise.sh"):
                out.append(pid)
    return out


def _descendants(pids: list[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    todo = list(pids)
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.add(p)
        todo.extend(children.get(p, []))
    return out


def _teardown(progress: Progress) -> None:
    present = _netns_present()
    sups = _supervisors()
    leaders = [p for p in (leader_pid(n) for n in HOSTS if n in present) if p]
    if leaders:
        progress(f"powering off {len(leaders)} systemd lab hosts")
        for name in HOSTS:
            if leader_pid(name):
                with contextlib.suppress(Exception):
                    host_exec(name, ["systemctl", "poweroff"], check=False, timeout=10)
        with contextlib.suppress(LabError):
            lab._wait_for("the systemd lab hosts to power off", lambda: not any(lab._pid_alive(p) for p in leaders),
                          20, interval=0.1)
    victims = _descendants(sups)
    idents = [i for i in (_netns_ident(n) for n in present) if i is not None]
    for ident in idents:
        victims.update(lab._pids_in_net_ident(ident))
    for f, expect in (("redis.pid", "redis-server"), ("pdns.pid", "pdns_server")):
        pid = lab._read_pid(infra_dir() / f)
        if pid and lab._pid_alive(pid, expect):
            victims.add(pid)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def gone() -> bool:
        return not any(lab._pid_alive(p) for p in victims) and not any(lab._pids_in_net_ident(i) for i in idents)

    lab._wait_for("the systemd lab processes to exit", gone, 15)
    _remove_cgroups()
    for n in present:
        lab._run(["ip", "netns", "delete", netns_name(n)], check=False)
    for ifname in [BRIDGE, *(VETH_PREFIX + n for n in [INFRA[0], *HOSTS])]:
        if lab._link_exists(ifname):
            lab._run(["ip", "link", "delete", ifname], check=False)
    for p in (SD_DIR / "hosts", infra_dir()):
        shutil.rmtree(p, ignore_errors=True)
        if p.exists():
            raise LabError(f"could not remove {p} (something still mounted there?)")
    known_hosts_path().unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ CLI


def _base() -> None:
    build_base()


def main(argv: Sequence[str] | None = None) -> int:
    return lab.lab_command(argv, {"up": up, "down": down, "status": status, "base": _base},
                           "usage: studio-cluster lab up|down|status|base --kind systemd",
                           "network namespaces, bridges, systemd-nspawn")

if __name__ == "__main__":
    sys.exit(main())
