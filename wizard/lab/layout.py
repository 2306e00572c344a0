"""Where the namespace lab lives: its addresses, names, directories and errors."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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


INIT_SCRIPT = Path(__file__).resolve().parent.parent / "labhost_init.py"


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


@dataclass(frozen=True, eq=False)
class Net:
    """One lab's network (the namespace lab and the systemd lab each have their own, side by side): a
    bridge in the root namespace, a network namespace per host (``<netns_prefix><host>``) joined to it by
    a veth pair (``<veth_prefix><host>`` outside, ``eth0`` inside), one ``/prefix_len``, no default route."""

    bridge: str
    bridge_addr: str  # the root namespace's address on the bridge, with its prefix length
    netns_prefix: str
    veth_prefix: str
    hosts: Mapping[str, str]  # host name -> address
    infra: tuple[str, str]  # the infrastructure host: (name, address)
    zone: str
    prefix_len: int = 24

    def netns_name(self, name: str) -> str:
        return self.netns_prefix + name

    def netns_path(self, name: str) -> Path:
        return Path("/run/netns") / self.netns_name(name)

    def in_netns(self, name: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run in host `name`'s network namespace (only: mounts and pids stay the caller's)."""
        return ["nsenter", f"--net={self.netns_path(name)}", *argv]

    def netns_ident(self, name: str) -> tuple[int, int] | None:
        """(device, inode) of host `name`'s namespace, what /proc/PID/ns/net of its processes shows; None
        when the namespace does not exist."""
        try:
            st = os.stat(self.netns_path(name))
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def present(self) -> list[str]:
        """Names (without the prefix) of every namespace with this lab's prefix that exists."""
        try:
            entries = os.listdir("/run/netns")
        except OSError:
            return []
        return sorted(e[len(self.netns_prefix):] for e in entries if e.startswith(self.netns_prefix))

    @property
    def addresses(self) -> dict[str, str]:
        """Every namespace's address: the infrastructure host's first, then the hosts'."""
        return {self.infra[0]: self.infra[1], **self.hosts}

    def hosts_file(self, infra_aliases: Sequence[str] = ()) -> str:
        """/etc/hosts of a lab host: localhost, every host, the infrastructure host (and its aliases)."""
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", ""]
        lines += [f"{ip}\t{n}.{self.zone} {n}" for n, ip in self.hosts.items()]
        names = [self.infra[0], *infra_aliases]
        lines.append(f"{self.infra[1]}\t" + " ".join(f"{n}.{self.zone} {n}" for n in names))
        return "\n".join(lines) + "\n"


NET = Net(BRIDGE, BRIDGE_ADDR, NETNS_PREFIX, VETH_PREFIX, HOSTS, INFRA, ZONE, PREFIX_LEN)


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


def netns_name(name: str) -> str:
    return NET.netns_name(name)


def _netns_path(name: str) -> Path:
    return NET.netns_path(name)


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
