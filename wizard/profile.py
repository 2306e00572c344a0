"""The cluster profile: the single source of truth for one Crafter Studio cluster.

The TUI wizard and `replay` both build a :class:`Profile`; every later step (checks, render, apply,
bootstrap, status) reads only from it.  Validation messages name the field and say how to fix it,
because a person reads them, not a program.  Secrets never live here: only references to them
(see :mod:`wizard.secrets`).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from wizard.remote_values import bounded_text, remote_path, unit_name
from wizard.secrets import SecretRef

HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$"
)
NODE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
CLUSTER_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
SENTINEL_PORT = 26379


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _address(value: str) -> str:
    value = value.strip()
    if is_ip(value):
        return value
    if HOSTNAME_RE.match(value) and not re.fullmatch(r"[0-9.]+", value):
        return value
    raise ValueError(
        f"{value!r} is neither an IP address nor a host name; use e.g. 10.0.0.11 or studio1.example.com"
    )


def _hostname(value: str) -> str:
    value = value.strip()
    if not HOSTNAME_RE.match(value) or is_ip(value) or re.fullmatch(r"[0-9.]+", value):
        raise ValueError(f"{value!r} is not a DNS name; use e.g. authoring.example.com")
    return value.rstrip(".")


def _node_name(value: str) -> str:
    if not NODE_NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid node name; use 1-31 lower-case letters, digits or '-', "
            "starting with a letter (e.g. studio1)"
        )
    return value


_PATH_EXAMPLES = {"data_dir": "/var/lib/mysql", "config_file": "/etc/mysql/mariadb.conf.d/99-studio-cluster.cnf",
                  "provider": "/usr/lib/galera/libgalera_smm.so", "socket": "/run/mysqld/mysqld.sock",
                  "mariadbd": "/usr/sbin/mariadbd", "garbd": "/usr/bin/garbd", "run_dir": "/run/studio-cluster",
                  "install_path": "/opt/crafter", "root": "/var/backups/studio-cluster/snapshots",
                  "data_path": "/opt/crafter/data"}


def _on_node(value: Path, info: ValidationInfo) -> Path:
    """A path on the nodes: absolute, one line, characters safe in option files (:mod:`wizard.remote_values`)."""
    return remote_path(value, _PATH_EXAMPLES.get(info.field_name or "", "/var/lib/mysql"))


def _unit_name(value: str, info: ValidationInfo) -> str:
    """A systemd service unit name (systemd.unit(5))."""
    return unit_name(value, "garbd" if info.field_name == "garbd_unit" else "mariadb")


Address = Annotated[str, AfterValidator(_address)]
Hostname = Annotated[str, AfterValidator(_hostname)]
NodeName = Annotated[str, AfterValidator(_node_name)]
RemotePath = Annotated[Path, AfterValidator(_on_node)]
UnitName = Annotated[str, AfterValidator(_unit_name)]
Port = Annotated[int, Field(ge=1, le=65535, description="TCP port, 1-65535")]


class Role(StrEnum):
    STUDIO = "studio"
    ARBITER = "arbiter"


class _Model(BaseModel):
    """Strict base: unknown keys are typos, so they are errors that name the key."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SSHSettings(_Model):
    """How the wizard reaches a node.  Host keys are always verified against the known_hosts file."""

    user: str = Field("root", min_length=1, max_length=32, pattern=r"^[a-z_][a-z0-9_-]*\$?$",
                      description="Unix user to log in as, e.g. root or deploy (with sudo: true when not root)")
    port: Port = Field(22, description="sshd's TCP port on the node, 1-65535, e.g. 22")
    key_file: Path | None = Field(None, description="private key; None uses the SSH agent/default keys")
    known_hosts: Path | None = Field(
        None, description="known_hosts file used to verify host keys; default ~/.ssh/known_hosts"
    )
    key_passphrase: SecretRef = Field(
        "none", description="reference to the passphrase of an encrypted key_file (env:NAME, file:/path, ask); "
                            "none: the key is not encrypted, or ssh-agent holds it")
    sudo: bool = Field(False, description="run privileged commands through sudo -n (user is not root)")
    sudo_scope: Literal["all", "agent"] = Field(
        "all", description="what sudo may run, with sudo: true. all: each root action as sudo -n sh -c (the "
                           "rule NOPASSWD: ALL); agent: only the installed agent, /usr/local/sbin/studio-cluster-agent "
                           "(the rule and installer that studio-cluster sudoers PROFILE prints; "
                           "see docs/least-privilege.md)")
    connect_timeout: float = Field(5.0, gt=0, le=120,
                                   description="seconds to wait for the TCP connect and SSH handshake, e.g. 5")

    @property
    def agent_scope(self) -> bool:
        """True when root on the node is reached only through the installed agent: a sudo user (not root) with
        ``sudo_scope: agent`` (docs/least-privilege.md)."""
        return self.sudo and self.user != "root" and self.sudo_scope == "agent"

    @field_validator("key_file", "known_hosts")
    @classmethod
    def _file_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        value = value.expanduser()
        ctx = info.context or {}
        if ctx.get("check_files", True) and not value.is_file():
            raise ValueError(f"file {str(value)!r} does not exist; create it or point to the right file")
        return value

    @model_validator(mode="after")
    def _passphrase_needs_key(self) -> SSHSettings:
        if self.key_passphrase != "none" and self.key_file is None:  # noqa: S105 (a reference, not a value)
            raise ValueError("key_passphrase is set but key_file is not; set key_file to the encrypted key it "
                             "unlocks, or set key_passphrase: none (keys from ssh-agent need no passphrase)")
        return self


class Node(_Model):
    name: NodeName = Field(description="node name, used as wsrep_node_name and in DNS/hosts")
    role: Role = Field(description="studio (a MariaDB Galera data node running Studio) or arbiter (runs garbd); "
                                   "a cluster has two studio nodes and one arbiter")
    address: Address = Field(description="IP address or host name the other nodes use")
    ssh: SSHSettings = Field(default_factory=SSHSettings,  # type: ignore[arg-type]
                             description="how the wizard reaches the node over SSH (user, port, key, known_hosts)")

    @property
    def is_studio(self) -> bool:
        return self.role is Role.STUDIO


class DNSSettings(_Model):
    """The authoring name that follows the primary Studio node, and where to ask for it."""

    authoring_name: Hostname = Field(description="DNS name authors use; points at the primary node")
    zone: Hostname | None = Field(None, description="zone the record lives in (default: parent of the name)")
    servers: list[Address] = Field(min_length=1, description="DNS server(s) to ask")
    port: Port = Field(53, description="TCP/UDP port of the DNS servers, 1-65535, e.g. 53")
    ttl: int = Field(5, ge=1, le=86400, description="seconds resolvers may cache the authoring record, 1-86400; "
                                                    "short (e.g. 5) so a failover shows quickly")
    health_port: Port = Field(9200, description="port of the clustercheck-style health endpoint")
    health_interval: int = Field(1, ge=1, le=60, description="seconds between PowerDNS health checks")
    api_url: str | None = Field(
        None, description="PowerDNS HTTP API base URL (http://HOST:8081); set: apply creates/updates the record "
                          "through it; unset: the record is a rendered file to include in the zone")
    api_key: SecretRef = Field("none", description="reference to the PowerDNS API key (the server's api-key)")
    api_server_id: str = Field("localhost", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                               description="PowerDNS API server id (always localhost for pdns_server)")

    @field_validator("api_url", mode="before")
    @classmethod
    def _blank_api_url(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        m = re.fullmatch(r"https?://(?P<cred>[^@/]*@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/@\[\]]+)(:(?P<port>\d+))?/?",
                         value.strip())
        if not m:
            raise ValueError(f"{value!r} is not a PowerDNS API URL; use http://HOST:8081 (no path: /api/v1 is added)")
        if m.group("cred"):
            raise ValueError("the API URL holds credentials; remove them and set dns.api_key to env:NAME or file:/path")
        _address(m.group("host").strip("[]"))
        if m.group("port") and not 1 <= int(m.group("port")) <= 65535:
            raise ValueError(f"port {m.group('port')} is out of range; use 1-65535 (PowerDNS's webserver uses 8081)")
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _api_key_with_url(self) -> DNSSettings:
        if self.api_url is not None and self.api_key == "none":
            raise ValueError("api_url is set but api_key is none; set api_key to env:NAME, file:/path or ask "
                             "(the server's api-key), or remove api_url to keep the record a rendered file")
        if self.api_url is None and self.api_key != "none":
            raise ValueError("api_key is set but api_url is not; set api_url (http://HOST:8081) or remove api_key")
        return self

    @property
    def record_zone(self) -> str:
        return self.zone or self.authoring_name.split(".", 1)[-1]


def _sentinel_address(value: str) -> str:
    """`host:port` (or `host`, meaning port 26379) of one Sentinel, normalised to `host:port`."""
    value = value.strip()
    m = re.fullmatch(r"\[(?P<v6>[0-9A-Fa-f:.]+)\](:(?P<p6>\d+))?|(?P<host>[^:\[\]]+)(:(?P<port>\d+))?", value)
    if not m:
        raise ValueError(f"{value!r} is not a Sentinel address; use HOST:PORT, e.g. 10.0.0.11:26379")
    host = m.group("v6") or m.group("host")
    port = int(m.group("p6") or m.group("port") or SENTINEL_PORT)
    _address(host)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} of Sentinel {value!r} is out of range; use 1-65535 (Sentinel uses 26379)")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(address: str) -> tuple[str, int]:
    """`"10.0.0.11:26379"` -> `("10.0.0.11", 26379)`; `"[::1]:26379"` -> `("::1", 26379)`."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


SentinelAddress = Annotated[str, AfterValidator(_sentinel_address)]


class RedisSettings(_Model):
    """The coordination store the agents and the wizard share: exactly one of

    - url: one Redis server (simple, but a single point of failure), or
    - sentinels and master_name: a Redis master with replicas that Redis Sentinel watches; every
      client asks the Sentinels for the current master and follows a failover by itself.
    """

    url: str | None = Field(
        None, description="one Redis: redis://host:port/db (no password in the URL); leave unset with sentinels")
    sentinels: list[SentinelAddress] | None = Field(
        None, description="Redis Sentinel: HOST:PORT of each Sentinel (usually three, one per host, port 26379); "
                          "leave unset with url")
    master_name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Redis Sentinel: the name the Sentinels monitor the master under (sentinel monitor NAME ...)")
    sentinel_password: SecretRef | None = Field(
        None, description="Redis Sentinel: reference to the Sentinels' own password (their requirepass); "
                          "unset when the Sentinels need none")
    database: int = Field(0, ge=0, description="Redis Sentinel: logical database number (with url, it is the URL's /N)")
    password: SecretRef | None = Field(None, description="reference to the Redis password (requirepass / masterauth), "
                                                         "or the ACL user's password with username")
    username: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.@-]{1,64}$",
        description="Redis ACL user the wizard and the agents log in as, limited to key_prefix and the commands they "
                    "send (wizard.redis_acl: ACL SETUSER on every Redis); unset: Redis's default user")
    key_prefix: str = Field("studio-cluster", max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
                            description="prefix of every key the cluster uses in Redis")
    failover_wait_s: float = Field(
        30.0, gt=0, le=600,
        description="seconds a client keeps retrying a failed Redis command before giving up: cover the "
                    "Sentinels' down-after-milliseconds plus a failover (30 s suits Sentinel's defaults)")

    @field_validator("url", mode="before")
    @classmethod
    def _blank_url(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value  # a blank form field: not given

    @field_validator("sentinels", mode="before")
    @classmethod
    def _no_sentinels(cls, value: Any) -> Any:
        if isinstance(value, str):  # `sentinels: a:26379, b:26379` written as one string
            value = [v for v in re.split(r"[,\s]+", value) if v]
        return value or None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        m = re.fullmatch(r"redis://(?P<cred>[^@/]*@)?(?P<host>[^:/@]+)(:(?P<port>\d+))?(/(?P<db>\d+))?/?", value)
        if not m:
            raise ValueError(f"{value!r} is not a Redis URL; use redis://HOST:6379/0")
        if m.group("cred"):
            raise ValueError(
                "the Redis URL holds credentials; remove them and set redis.password to env:NAME or ask"
            )
        _address(m.group("host"))
        port = int(m.group("port") or 6379)
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} is out of range; use 1-65535")
        return value

    @field_validator("sentinels")
    @classmethod
    def _distinct_sentinels(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            dup = next(v for v in value if value.count(v) > 1)
            raise ValueError(f"{dup} is listed twice; list each Sentinel once")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> RedisSettings:
        if self.url is not None and self.sentinels is not None:
            raise ValueError("both url and sentinels are set; keep url for one Redis, or sentinels + master_name "
                             "for Redis Sentinel, and remove the other")
        if self.url is None and self.sentinels is None:
            raise ValueError("no Redis given; set url: redis://HOST:6379/0 for one Redis, or sentinels: "
                             "[HOST:26379, ...] with master_name: NAME for Redis Sentinel")
        if self.sentinels is not None and self.master_name is None:
            raise ValueError("master_name is required with sentinels; set it to the name the Sentinels monitor "
                             "(the NAME in `sentinel monitor NAME HOST 6379 2`)")
        if self.url is not None:
            for name in ("master_name", "sentinel_password"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} applies to sentinels only; remove it, or replace url with sentinels")
            if self.database:
                raise ValueError("database applies to sentinels only; with url put the number in the URL "
                                 "(redis://HOST:6379/N) and remove database")
        return self

    @property
    def uses_sentinel(self) -> bool:
        return self.sentinels is not None

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """Each Sentinel as `(host, port)`; empty with `url`."""
        return [split_host_port(s) for s in self.sentinels or []]

    @property
    def where(self) -> str:
        """A one-line description for messages: the URL, or the master name and its Sentinels."""
        if self.url is not None:
            return self.url
        return f"Sentinel master {self.master_name!r} via {', '.join(self.sentinels or [])}"

    def _hostport(self) -> str:
        if self.url is None:
            raise ValueError("redis.host/port are defined for redis.url only; with sentinels ask the Sentinels")
        return re.sub(r"^redis://", "", self.url).split("/")[0]

    @property
    def host(self) -> str:
        """The host of `url` (url mode only: with sentinels the master moves; raises ValueError)."""
        return self._hostport().rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        """The port of `url` (url mode only; raises ValueError with sentinels)."""
        hostport = self._hostport()
        return int(hostport.rsplit(":", 1)[1]) if ":" in hostport else 6379

    @property
    def db(self) -> int:
        """The logical database: the URL's /N, or `database` with sentinels."""
        if self.url is None:
            return self.database
        rest = re.sub(r"^redis://", "", self.url).split("/")
        return int(rest[1]) if len(rest) > 1 and rest[1] else 0


class DatabaseSettings(_Model):
    port: Port = Field(3306, description="MariaDB client port on the data nodes, e.g. 3306")
    galera_port: Port = Field(4567, description="Galera replication port (gmcast) on every node, garbd too, e.g. 4567")
    ist_port: Port = Field(4568, description="Galera incremental state transfer (IST) port, e.g. 4568")
    sst_port: Port = Field(4444, description="state snapshot transfer (SST) port a joiner listens on, e.g. 4444")
    data_dir: RemotePath = Field(Path("/var/lib/mysql"),
                                 description="MariaDB's datadir on the data nodes, e.g. /var/lib/mysql")
    config_file: RemotePath = Field(
        Path("/etc/mysql/mariadb.conf.d/99-studio-cluster.cnf"), description="where the Galera config goes"
    )
    provider: RemotePath = Field(
        Path("/usr/lib/galera/libgalera_smm.so"),
        description="the Galera library (wsrep_provider), e.g. /usr/lib/galera/libgalera_smm.so")
    sst_method: Literal["mariabackup", "rsync"] = Field(
        "mariabackup", description="how a joiner copies a full snapshot: mariabackup (donor stays writable) or rsync")
    sst_user: str = Field("sst", pattern=r"^[A-Za-z0-9_]{1,32}$",
                          description="database user SST uses on the donor (created by apply), e.g. sst")
    sst_password: SecretRef = Field("ask", description="reference to the SST user's password")
    admin_user: str = Field("root", pattern=r"^[A-Za-z0-9_]{1,32}$",
                            description="database user the tool runs status and setup queries as, e.g. root")
    admin_password: SecretRef = Field(
        "none", description="reference to the admin password; none = unix-socket auth on the node"
    )
    socket: RemotePath = Field(Path("/run/mysqld/mysqld.sock"), description="MariaDB's unix socket on the data nodes")
    min_free_mb: int = Field(1024, ge=0, description="free space the data dir needs, in MB (MiB), e.g. 1024")
    binlog_keep_days: int = Field(
        7, ge=1, le=3650,
        description="days the data nodes keep their binary logs (binlog_expire_logs_seconds), 1-3650; "
                    "backup restore --to TIME replays them from a backup onwards, so keep more than the time "
                    "between two backups, e.g. 7")

    @field_validator("galera_port", "ist_port", "sst_port")
    @classmethod
    def _distinct_ports(cls, port: int, info: ValidationInfo) -> int:
        for other in ("port", "galera_port", "ist_port", "sst_port"):
            if other == info.field_name:
                break
            if info.data.get(other) == port:
                raise ValueError(f"{port} is already database.{other}; give each service its own port")
        return port


class ServiceSettings(_Model):
    """How services are started: systemd units, or direct commands on hosts without systemd."""

    manager: Literal["systemd", "direct"] = Field(
        "systemd", description="systemd: mariadbd and garbd run as units (restarted on failure, started at boot); "
                               "direct: started as processes, for hosts without systemd (the check finds which)")
    mariadb_unit: UnitName = Field("mariadb", description="systemd unit of MariaDB on the data nodes, e.g. mariadb")
    garbd_unit: UnitName = Field("garbd", description="systemd unit of garbd on the Arbiter, e.g. garbd")
    mariadbd: RemotePath = Field(Path("/usr/sbin/mariadbd"), description="the mariadbd binary (manager: direct)")
    garbd: RemotePath = Field(Path("/usr/bin/garbd"), description="the garbd binary (manager: direct)")
    run_dir: RemotePath = Field(Path("/run/studio-cluster"), description="agent state, pid files")


class StudioSettings(_Model):
    install_path: RemotePath = Field(Path("/opt/crafter"), description="Crafter install; overrides go under it")
    http_port: Port = Field(8080, description="Studio's HTTP port on the Studio nodes, e.g. 8080")
    heartbeat_interval_s: int = Field(60, ge=1, description="seconds between Studio's cluster heartbeats, e.g. 60")
    inactivity_limit_s: int = Field(300, ge=1,
                                    description="seconds without a heartbeat before Studio treats a node as gone, "
                                                "e.g. 300")
    # -- the Crafter-aware cluster (docs/crafter.md): empty `nodes` keeps the cluster database-only --------------
    nodes: list[NodeName] = Field(
        default_factory=list,
        description="Studio nodes where Crafter Studio is installed and runs, e.g. [studio1, studio2]: their health "
                    "endpoint also asks Studio, the node the authoring name points at is made primary publisher, and "
                    "the Crafter user of each may reach the other by SSH (content sync); empty: database only")
    status_url: str = Field(
        "http://127.0.0.1:8080/studio/api/2/monitoring/status",
        description="URL the node agent asks for Studio's status on its own node ({address}: the node's address); "
                    "200 means Studio serves, e.g. http://127.0.0.1:8080/studio/api/2/monitoring/status")
    management_token: SecretRef = Field(
        "none", description="reference to Studio's management token (STUDIO_MANAGEMENT_TOKEN), sent as ?token= to the "
                            "status URL and the publisher URL: env:NAME, file:/path; none: no token")
    publisher_url: str | None = Field(
        None, description="Studio cluster API endpoint that makes a node the primary publisher, POSTed on the node the "
                          "authoring name points at ({address}: its address); required when nodes is set, e.g. "
                          "http://{address}:8080/studio/api/2/cluster/primary")
    os_user: str = Field("crafter", max_length=32, pattern=r"^[a-z_][a-z0-9_-]*$",
                         description="Unix user Crafter runs as; content sync reaches the peer by SSH as this user")
    data_path: RemotePath = Field(Path("/opt/crafter/data"),
                                  description="Crafter's data directory (CRAFTER_DATA_DIR); its repos/ are synced over "
                                              "SSH, e.g. /opt/crafter/data")

    @model_validator(mode="after")
    def _crafter_needs_publisher(self) -> StudioSettings:
        if self.nodes and not self.publisher_url:
            raise ValueError("nodes lists Crafter Studio nodes but publisher_url is not set; set it to Studio's "
                             "cluster API endpoint, e.g. http://{address}:8080/studio/api/2/cluster/primary")
        for field, url in (("status_url", self.status_url), ("publisher_url", self.publisher_url or "http://x")):
            if not re.match(r"^https?://[^\s/]+", url):
                raise ValueError(f"{field} {url!r} is not an http(s) URL; use e.g. "
                                 "http://127.0.0.1:8080/studio/api/2/monitoring/status")
            unknown = sorted(set(re.findall(r"\{([^{}]*)\}", url)) - {"address"})
            if unknown:  # the agent fills in {address} only: anything else would be requested literally
                raise ValueError(f"{field} {url!r} has the placeholder {{{unknown[0]}}}; the only one filled in is "
                                 "{address} (the node's address): fix its spelling or remove it")
        return self
    # -- end of the Crafter-aware cluster


_K8S_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_K8S_SUBDOMAIN = re.compile(rf"(?=.{{1,253}}$){_K8S_LABEL}(\.{_K8S_LABEL})*")
_K8S_RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_IMAGE_DOMAIN = r"(?:localhost|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)+)"
_IMAGE_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_IMAGE_RE = re.compile(rf"(?:{_IMAGE_DOMAIN}(?::[0-9]+)?/|[a-zA-Z0-9-]+:[0-9]+/)?{_IMAGE_PATH}"
                       r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
                       r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?")
_MEMORY_MIB = {"galera_memory": (512, 1024 * 1024), "garbd_memory": (64, 64 * 1024),
               "redis_memory": (64, 256 * 1024)}
"""Bounds of each container's memory, in MiB: below, mariadbd/garbd/Redis do not start; above, no node has it."""
_STORAGE_MIB = (1024, 1024 ** 3)
_UNIT_MIB = {"Mi": 1, "Gi": 1024, "Ti": 1024 ** 2}


def k8s_size_mib(value: str) -> int:
    """A size this section accepts (``20Gi``, ``512Mi``, ``1Ti``) in MiB."""
    return int(value[:-2]) * _UNIT_MIB[value[-2:]]


def _mib_text(mib: int) -> str:
    for unit in ("Ti", "Gi"):
        if mib % _UNIT_MIB[unit] == 0:
            return f"{mib // _UNIT_MIB[unit]}{unit}"
    return f"{mib}Mi"


class KubernetesSettings(_Model):
    """What only studio-cluster k8s render needs (docs/kubernetes.md); the SSH path ignores it."""

    namespace: str = Field("studio-cluster", description="namespace of every object (a DNS label: lower-case "
                                                         "letters, digits and '-', at most 63; not default or kube-*), "
                                                         "e.g. studio-cluster")
    cluster_domain: str = Field("cluster.local", description="the Kubernetes cluster's DNS domain, which pod names "
                                                             "end with (labels of 1-63 lower-case letters, digits and "
                                                             "'-', joined by '.'), e.g. cluster.local")
    storage_class: str | None = Field(None, description="StorageClass of each Galera pod's data volume (and of the "
                                                        "backups' volume); none: the cluster's default class, "
                                                        "e.g. fast-ssd")
    storage_size: str = Field("20Gi", description="size of each Galera pod's data volume, a whole number of Mi, Gi "
                                                  "or Ti (binary units), at least 1Gi and database.min_free_mb, "
                                                  "e.g. 20Gi")
    backup_storage_size: str | None = Field(
        None, description="size of the Arbiter backups' volume (with backups.schedule), a whole number of Mi, Gi or "
                          "Ti; absent: storage_size times (backups.keep_last + 1): keep_last full backups and the "
                          "one being taken, each at most a datadir, e.g. 200Gi")
    backup_time_zone: str = Field("UTC", description="time zone of backups.schedule in the backup CronJob (an IANA "
                                                     "name; the CronJob's timeZone), e.g. Europe/Berlin")
    galera_image: str = Field("localhost/studio-cluster-galera:bookworm",
                              description="image of the Galera pods: mariadbd, galera-4, mariabackup, socat, procps "
                                          "and python3 >= 3.9, as on a host (docs/kubernetes.md builds one from "
                                          "Debian 12; it must be pullable on every node), "
                                          "e.g. registry.example.com/studio-galera:10.11")
    garbd_image: str = Field("localhost/studio-cluster-galera:bookworm",
                             description="image of the Arbiter pod: garbd (galera-arbitrator-4), procps and python3 "
                                         ">= 3.9; the Galera image has them, "
                                         "e.g. registry.example.com/studio-galera:10.11")
    redis_image: str = Field("docker.io/library/redis:7.2-bookworm",
                             description="image of the Redis + Sentinel pods (redis-server, redis-sentinel, redis-cli, "
                                         "Redis >= 7.0), e.g. docker.io/library/redis:7.2-bookworm")
    secret_name: str = Field("studio-cluster",
                             description="the Secret (you create it) holding sst-password, redis-password, "
                                         "admin-password and sentinel-password, each only if the profile's reference "
                                         "is not none; referenced by name, never rendered, e.g. studio-cluster")
    galera_cpu: str = Field("500m", description="CPU request of the MariaDB container, in cores (a number: 2, 0.5) or "
                                                "millicores (500m), e.g. 500m",
                            json_schema_extra={"type": ["string", "number"]})
    galera_memory: str = Field("2Gi", description="memory request and limit of the MariaDB container (Mi or Gi, "
                                                  "512Mi to 1024Gi), e.g. 2Gi")
    garbd_cpu: str = Field("100m", description="CPU request of garbd, in cores (a number) or millicores, e.g. 100m",
                           json_schema_extra={"type": ["string", "number"]})
    garbd_memory: str = Field("256Mi", description="memory request and limit of garbd (Mi or Gi, 64Mi to 64Gi), "
                                                   "e.g. 256Mi")
    redis_cpu: str = Field("100m", description="CPU request of each Redis and each Sentinel container, in cores (a "
                                               "number) or millicores, e.g. 100m",
                           json_schema_extra={"type": ["string", "number"]})
    redis_memory: str = Field("256Mi", description="memory request and limit of each Redis and each Sentinel "
                                                   "container (Mi or Gi, 64Mi to 256Gi), e.g. 256Mi")

    @field_validator("namespace")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not re.fullmatch(_K8S_LABEL, value):
            raise ValueError(f"{value!r} is not a DNS label: use at most 63 lower-case letters, digits and '-', "
                             "starting and ending with a letter or digit (e.g. studio-cluster)")
        if value in _K8S_RESERVED_NAMESPACES or value.startswith("kube-"):
            raise ValueError(f"{value!r} is reserved for Kubernetes' own objects (default, kube-*): use a namespace "
                             "of the cluster's own, e.g. studio-cluster")
        return value

    @field_validator("cluster_domain", "storage_class", "secret_name")
    @classmethod
    def _dns_name(cls, value: str | None) -> str | None:
        if value is not None and not _K8S_SUBDOMAIN.fullmatch(value):
            raise ValueError(f"{value!r} is not a Kubernetes name: labels of 1 to 63 lower-case letters, digits and "
                             "'-' (starting and ending with a letter or digit) joined by single dots, at most 253 "
                             "characters (e.g. cluster.local, fast-ssd)")
        return value

    @field_validator("storage_size", "backup_storage_size", "galera_memory", "garbd_memory", "redis_memory")
    @classmethod
    def _size(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        storage = info.field_name in ("storage_size", "backup_storage_size")
        units = ("Mi", "Gi", "Ti") if storage else ("Mi", "Gi")
        if not re.fullmatch(r"[1-9][0-9]*(" + "|".join(units) + ")", value):
            raise ValueError(f"{value!r} is not a size: write a whole number followed by {', '.join(units)} "
                             "(binary units: Gi, not GB), e.g. 20Gi or 512Mi")
        low, high = _STORAGE_MIB if storage else _MEMORY_MIB[str(info.field_name)]
        if not low <= k8s_size_mib(value) <= high:
            raise ValueError(f"{value!r} is out of range: give {_mib_text(low)} to {_mib_text(high)}")
        return value

    @field_validator("galera_cpu", "garbd_cpu", "redis_cpu", mode="before")
    @classmethod
    def _cpu(cls, value: Any) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = format(value, "f").rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
        if not isinstance(value, str) or not re.fullmatch(r"[1-9][0-9]*m|[0-9]+(\.[0-9]+)?", value) \
                or re.fullmatch(r"0+(\.0+)?", value):
            raise ValueError(f"{value!r} is not a CPU amount: write cores (e.g. 2 or 0.5) or millicores "
                             "(e.g. 500m)")
        return value

    @field_validator("galera_image", "garbd_image", "redis_image")
    @classmethod
    def _image(cls, value: str) -> str:
        if len(value) > 255 or not _IMAGE_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not an image reference: [registry[:port]/]path[:tag][@sha256:digest], "
                             "the path in lower-case letters, digits and '.', '_', '-' separators, at most 255 "
                             "characters (e.g. registry.example.com/studio-galera:10.11)")
        return value

    @field_validator("backup_time_zone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        import zoneinfo

        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*", value):
            raise ValueError(f"{value!r} is not a time zone name: use an IANA name, e.g. UTC or Europe/Berlin")
        try:
            zoneinfo.ZoneInfo("UTC")
        except zoneinfo.ZoneInfoNotFoundError:
            return value  # no time zone database here to check against
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known time zone: use an IANA name, e.g. UTC or Europe/Berlin") \
                from None
        return value

    @model_validator(mode="after")
    def _pod_names_fit(self) -> KubernetesSettings:
        longest = f"backup.galera-backup.{self.namespace}.svc.{self.cluster_domain}"
        if len(longest) > 253:
            raise ValueError(f"namespace and cluster_domain make pod names longer than 253 characters ({longest!r}): "
                             "shorten kubernetes.namespace or kubernetes.cluster_domain")
        return self


class BackupSettings(_Model):
    """Arbiter snapshot backups (studio-cluster backup): garbd on the Arbiter asks a data node for a
    snapshot, which streams to a receiver on the Arbiter host."""

    root: RemotePath = Field(Path("/var/backups/studio-cluster/snapshots"),
                             description="directory on the Arbiter host holding one subdirectory per backup")
    receiver_port: Port = Field(4450, description="TCP port the receiver listens on, on the Arbiter's address "
                                                  "(the data nodes must reach it)")
    garbd_port: Port = Field(4570, description="Galera port of the backup's own garbd on the Arbiter (the "
                                               "cluster's garbd keeps database.galera_port); the data nodes must "
                                               "reach it")
    timeout_s: int = Field(3600, ge=30, le=86400, description="seconds a backup may take before it is abandoned")
    connect_timeout_s: int = Field(120, ge=10, le=3600,
                                   description="seconds for garbd to join and the donor to start streaming")
    keep_last: int = Field(7, ge=1, le=10000, description="prune keeps at least the newest N complete backups")
    keep_days: int = Field(0, ge=0, le=36500,
                           description="prune also keeps every backup younger than D days (0: no age rule)")
    schedule: str | None = Field(
        None, description="when the Arbiter takes backups by itself (a systemd timer where systemd runs, else a "
                          "cron line; each run applies keep_last/keep_days): hourly, daily (00:00), weekly (Monday "
                          "00:00) or HH:MM every day in the Arbiter's local time, e.g. 02:30; none: only by hand")

    @field_validator("schedule")
    @classmethod
    def _known_schedule(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "none", "off"):
            return None
        from wizard.backups.schedule import parse_schedule

        parse_schedule(value)  # raises ValueError naming the forms it knows
        return value.strip().lower()

    @field_validator("root")
    @classmethod
    def _absolute_root(cls, value: Path) -> Path:
        if not value.is_absolute() or value == Path("/"):
            raise ValueError(f"{value} is not an absolute directory below /; use e.g. "
                             "/var/backups/studio-cluster/snapshots")
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> BackupSettings:
        if self.receiver_port == self.garbd_port:
            raise ValueError(f"receiver_port and garbd_port are both {self.garbd_port}; give each its own port")
        return self


TLS_GENERATE = "generate"


def _tls_source(value: str, what: str, example: str) -> str:
    if value == TLS_GENERATE:
        return value
    if "\n" in value or "\x00" in value or not value.startswith(("/", "~")):
        raise ValueError(f"{value!r} is neither 'generate' nor an absolute path; use 'generate' or a path such "
                         f"as {example} ({what})")
    return value


class TLSSettings(_Model):
    """TLS for everything that crosses the network: Galera replication and IST, SST, garbd, client connections.

    With generate the tool makes a small CA and one certificate per node (its name and address as
    subject alternative names) and keeps them on the operator's machine under store, private keys with
    mode 0600; the nodes get their own certificate and key plus the CA under remote_dir."""

    enabled: bool = Field(False, description="encrypt and authenticate Galera (replication, IST), SST, garbd and "
                                              "client connections with TLS, e.g. true")
    ca_cert: str = Field(TLS_GENERATE, description="'generate' (a CA kept in store) or the path of your CA "
                                                   "certificate (PEM) on this machine, e.g. /etc/pki/studio/ca.pem")
    cert: str = Field(TLS_GENERATE, description="'generate' or the path of each node's certificate (PEM) with "
                                                "{node} for the node name, e.g. /etc/pki/studio/{node}.crt")
    key: str = Field(TLS_GENERATE, description="'generate' or the path of each node's private key (PEM, "
                                               "unencrypted; a secret, mode 0600) with {node} for the node name, "
                                               "e.g. /etc/pki/studio/{node}.key")
    extra_ca: list[Path] = Field(default_factory=list,
                                 description="more CA certificates (PEM paths) the nodes trust besides ca_cert, "
                                             "for a CA rotation, e.g. [/etc/pki/studio/new-ca.pem]")
    store: Path = Field(Path("~/.local/share/studio-cluster/tls"),
                        description="directory on this machine for generated material, one subdirectory per "
                                    "cluster; private keys are written with mode 0600")
    remote_dir: Path = Field(Path("/etc/studio-cluster/tls"),
                             description="directory on each node for its CA bundle, certificate and key")
    valid_days: int = Field(825, ge=1, le=3650, description="validity of generated node certificates, in days "
                                                            "(1-3650), e.g. 825")
    warn_days: int = Field(30, ge=1, le=3650, description="status warns when a certificate expires within this "
                                                          "many days, e.g. 30")

    @field_validator("ca_cert")
    @classmethod
    def _ca_source(cls, value: str) -> str:
        return _tls_source(value, "tls.ca_cert", "/etc/pki/studio/ca.pem")

    @field_validator("cert", "key")
    @classmethod
    def _node_source(cls, value: str, info: ValidationInfo) -> str:
        value = _tls_source(value, f"tls.{info.field_name}", f"/etc/pki/studio/{{node}}.{info.field_name}")
        if value != TLS_GENERATE and "{node}" not in value:
            raise ValueError(f"{value!r} has no {{node}}; each node has its own file, e.g. "
                             f"/etc/pki/studio/{{node}}.{'crt' if info.field_name == 'cert' else 'key'}")
        return value

    @field_validator("remote_dir")
    @classmethod
    def _remote_dir(cls, value: Path) -> Path:
        text = str(value)
        if not value.is_absolute() or value == Path("/") or any(c in text for c in "\n\x00'\" \\"):
            raise ValueError(f"{text!r} is not an absolute directory without quotes or spaces; use e.g. "
                             "/etc/studio-cluster/tls")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TLSSettings:
        generated = {name for name in ("cert", "key") if getattr(self, name) == TLS_GENERATE}
        if len(generated) == 1:
            raise ValueError("tls.cert and tls.key are either both 'generate' or both paths; set the other one too")
        if generated and self.ca_cert != TLS_GENERATE:
            raise ValueError("tls.cert is 'generate' but tls.ca_cert is a path: this tool signs node certificates "
                             "only with the CA it generates; set ca_cert: generate, or give cert and key paths")
        return self


class Profile(_Model):
    """One cluster: two Studio nodes and one Arbiter, and everything needed to stand them up."""

    cluster_name: str = Field(description="Galera cluster name (wsrep_cluster_name)")
    nodes: list[Node] = Field(description="exactly two Studio nodes and one Arbiter")
    preferred_primary: NodeName = Field(description="Studio node the authoring name prefers")
    dns: DNSSettings = Field(description="the authoring DNS name that follows the primary, and its servers")
    redis: RedisSettings = Field(description="the coordination store: one Redis (url) or Redis Sentinel")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings,  # type: ignore[arg-type]
                                       description="MariaDB Galera: ports, paths, SST and admin users")
    services: ServiceSettings = Field(default_factory=ServiceSettings,  # type: ignore[arg-type]
                                      description="how mariadbd and garbd are started: systemd units or directly")
    studio: StudioSettings = Field(default_factory=StudioSettings,  # type: ignore[arg-type]
                                   description="Crafter Studio on the Studio nodes")
    kubernetes: KubernetesSettings | None = Field(
        None, description="only for studio-cluster k8s render: namespace, storage, images, resources, Secret name "
                          "(absent: the defaults of each setting)")
    backups: BackupSettings = Field(default_factory=BackupSettings,  # type: ignore[arg-type]
                                    description="Arbiter snapshot backups (studio-cluster backup)")
    tls: TLSSettings = Field(default_factory=TLSSettings,  # type: ignore[arg-type]
                             description="TLS between the nodes and for clients: generated CA or your own files")

    @field_validator("cluster_name")
    @classmethod
    def _cluster_name(cls, value: str) -> str:
        bounded_text(value, 64, "studio-prod")
        if not CLUSTER_NAME_RE.match(value):
            raise ValueError(
                f"{value!r} is not a valid cluster name; use letters, digits, '_' or '-' (e.g. studio-prod)"
            )
        return value

    @field_validator("nodes")
    @classmethod
    def _topology(cls, nodes: list[Node]) -> list[Node]:
        studios = [n for n in nodes if n.role is Role.STUDIO]
        arbiters = [n for n in nodes if n.role is Role.ARBITER]
        if len(arbiters) == 0:
            raise ValueError("no Arbiter node; add one node with role: arbiter (it runs garbd)")
        if len(arbiters) > 1:
            raise ValueError(f"{len(arbiters)} Arbiter nodes; a cluster has exactly one, remove the others")
        if len(studios) != 2:
            raise ValueError(f"{len(studios)} Studio nodes; a cluster has exactly two nodes with role: studio")
        for attr in ("name", "address"):
            seen: set[str] = set()
            for node in nodes:
                value = str(getattr(node, attr)).lower()
                if value in seen:
                    raise ValueError(f"two nodes share the {attr} {value!r}; give each node its own {attr}")
                seen.add(value)
        return nodes

    @field_validator("studio")
    @classmethod
    def _crafter_nodes_are_studio(cls, value: StudioSettings, info: ValidationInfo) -> StudioSettings:
        nodes = info.data.get("nodes")
        names = [n.name for n in nodes if n.role is Role.STUDIO] if nodes else []
        wrong = [n for n in value.nodes if names and n not in names]
        if wrong:
            raise ValueError(f"studio.nodes names {wrong}, which are not Studio nodes; use some of {names}")
        return value

    @field_validator("preferred_primary")
    @classmethod
    def _primary_is_studio(cls, value: str, info: ValidationInfo) -> str:
        nodes = info.data.get("nodes")
        names = [n.name for n in nodes if n.role is Role.STUDIO] if nodes else []
        if names and value not in names:
            raise ValueError(f"{value!r} is not a Studio node; use one of {names}")
        return value

    # -- convenient views -------------------------------------------------------------------------
    @property
    def studio_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.role is Role.STUDIO]

    @property
    def arbiter(self) -> Node:
        return next(n for n in self.nodes if n.role is Role.ARBITER)

    @property
    def primary(self) -> Node:
        return self.node(self.preferred_primary)

    @property
    def secondary(self) -> Node:
        return next(n for n in self.studio_nodes if n.name != self.preferred_primary)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node named {name!r}; nodes are {[n.name for n in self.nodes]}")

    def peers(self, node: Node) -> list[Node]:
        return [n for n in self.nodes if n.name != node.name]


class ProfileError(Exception):
    """A profile that cannot be used, with one human-readable line per problem.

    ``problems`` are ``field: message`` lines (the TUI maps them to its fields); ``where`` holds, per
    problem, the place in the file it comes from (``"line 12, column 5"``, or ``""`` when unknown,
    e.g. for a profile that did not come from a file)."""

    def __init__(self, source: str, problems: list[str], where: list[str] | None = None) -> None:
        self.source = source
        self.problems = problems
        self.where = list(where or [])
        self.where += [""] * (len(problems) - len(self.where))
        self.locs: list[tuple[int | str, ...]] = []  # pydantic's location per problem, when known
        super().__init__(f"{source}: " + "; ".join(problems))

    def __str__(self) -> str:
        lines = "\n".join(f"  - {w + ': ' if w else ''}{p.removeprefix('(profile): ')}"
                          for p, w in zip(self.problems, self.where, strict=True))
        return f"{self.source} is not a valid profile:\n{lines}"


def field_path(loc: tuple[int | str, ...], data: Any = None) -> str:
    """`('nodes', 1, 'address')` -> `nodes[1].address` (or `nodes[studio2].address` when known)."""
    out = ""
    cursor = data
    for part in loc:
        if isinstance(part, int):
            label = str(part)
            if isinstance(cursor, list) and 0 <= part < len(cursor):
                cursor = cursor[part]
                if isinstance(cursor, dict) and isinstance(cursor.get("name"), str):
                    label = f"{part}:{cursor['name']}"
            else:
                cursor = None
            out += f"[{label}]"
        else:
            cursor = cursor.get(part) if isinstance(cursor, dict) else None
            out += ("." if out else "") + str(part)
    return out or "(profile)"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The settings model that holds the setting at ``loc`` (``('nodes', 0, 'ssh')`` -> SSHSettings)."""
    model: Any = Profile
    for part in loc:
        if isinstance(part, int):
            continue  # a list index: the element type was taken with the list's field below
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = model.model_fields[part].annotation
        for _ in range(3):  # list[Node] / Node | None -> Node
            args = [a for a in getattr(model, "__args__", ()) if a is not type(None)]
            if (isinstance(model, type) and issubclass(model, BaseModel)) or not args:
                break
            model = args[0]
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


_YAML_KIND = {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number",
              bool: "true/false", type(None): "empty"}


def _kind(value: Any) -> str:
    return _YAML_KIND.get(type(value), type(value).__name__)


def _unknown_key_message(loc: tuple[int | str, ...]) -> str:
    msg = "unknown setting; remove it or check its spelling"
    model = _model_at(loc[:-1])
    if model is not None and isinstance(loc[-1], str):
        close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.6)
        if close:
            msg = f"unknown setting; did you mean {close[0]!r}? (otherwise remove it)"
        else:
            msg += f" (known here: {', '.join(model.model_fields)})"
    return msg


_EXPECTED = {"int_parsing": (int, "a whole number"), "int_type": (int, "a whole number"),
             "int_from_float": (int, "a whole number (no fraction)"), "float_parsing": (float, "a number"),
             "float_type": (float, "a number"), "bool_parsing": (bool, "true or false"),
             "bool_type": (bool, "true or false")}
"""pydantic's scalar type errors: the Python type an example must have, and what to call it."""
_FALLBACK_EXAMPLE = {int: 1, float: 1.5, bool: True}


def _yaml_scalar(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _example_of(loc: tuple[int | str, ...], want: type) -> Any:
    """An example value for the setting at ``loc``: its default when of the right type, else the first
    ``e.g.`` of its description that parses as one, else a plain one."""
    model = _model_at(loc[:-1])
    field = model.model_fields.get(loc[-1]) if model is not None and isinstance(loc[-1], str) else None
    if field is not None:
        default = field.default
        if type(default) is want or (want is float and type(default) is int):
            return default
        for found in re.findall(r"e\.g\.\s+`?([^\s,;)`]+)", field.description or ""):
            try:
                return {"true": True, "false": False}[found] if want is bool else want(found)
            except (KeyError, ValueError):
                continue
    return _FALLBACK_EXAMPLE[want]


def _given(value: Any) -> str:
    return f"{value!r} ({_kind(value)})" if isinstance(value, str | int | float | bool) else _kind(value)


def _type_message(kind: str, value: Any, loc: tuple[int | str, ...] = ()) -> str | None:
    """A plain message for a value of the wrong type, or None to keep pydantic's.  A scalar type error says
    what was given, what is expected and an example fix: ``is 'three' (a string), but it must be a whole
    number; write it like `port: 22```."""
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return (f"is {_kind(value)}, but it must be a mapping of settings (indented `key: value` lines); "
                "check the indentation, or remove a stray '-' that made it a list")
    if kind == "list_type":
        return f"is {_kind(value)}, but it must be a list (`[a, b]`, or one `- item` line each)"
    if kind == "string_type":
        return f"must be text, not {_kind(value)}; quote it if it is meant as text"
    if kind in _EXPECTED:
        want, expected = _EXPECTED[kind]
        name = loc[-1] if loc and isinstance(loc[-1], str) else "value"
        example = _yaml_scalar(_example_of(loc, want)) if loc else _yaml_scalar(_FALLBACK_EXAMPLE[want])
        return f"is {_given(value)}, but it must be {expected}; write it like `{name}: {example}`"
    return None


def describe_errors(err: ValidationError, data: Any = None) -> list[str]:
    """Turn pydantic's errors into `field: message` lines a person can act on."""
    out = []
    for e in err.errors(include_url=False):
        msg = e["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        loc = tuple(e["loc"])
        if e["type"] == "extra_forbidden":
            msg = _unknown_key_message(loc)
        elif e["type"] == "missing":
            msg = "is required; add it"
        else:
            msg = _type_message(e["type"], e.get("input"), loc) or msg
        out.append(f"{field_path(loc, data)}: {msg}")
    return out


def _error_locs(err: ValidationError) -> list[tuple[int | str, ...]]:
    return [tuple(e["loc"]) for e in err.errors(include_url=False)]


def validate_profile(data: Any, *, source: str = "profile", check_files: bool = True) -> Profile:
    """A :class:`Profile` from parsed YAML/JSON data; raises :class:`ProfileError` listing every problem
    (``check_files=False`` skips the existence of ``ssh.key_file``/``ssh.known_hosts``)."""
    if not isinstance(data, dict):
        found = "empty" if data is None else _kind(data)
        raise ProfileError(source, [f"(profile): the profile must be a YAML mapping of settings (`key: value` lines "
                                    f"such as `cluster_name: studio-prod`), but the file holds {found}"])
    try:
        return Profile.model_validate(data, context={"check_files": check_files})
    except ValidationError as err:
        problem = ProfileError(source, describe_errors(err, data))
        problem.locs = _error_locs(err)
        raise problem from None


# -- where in the YAML file a problem is ------------------------------------------------------------------------------
_YAML_HINTS = (
    ("'\\t'", "a tab character: YAML indents with spaces only; replace the tab with spaces"),
    ("scanning a quoted scalar", "a quoted value is not closed; add the closing quote on the same line"),
    ("parsing a flow sequence", "a [ list is not closed or lacks a comma; close it with ] and separate items "
                                "with ', '"),
    ("parsing a flow mapping", "a { mapping is not closed or lacks a comma; close it with } and separate "
                               "entries with ', '"),
    ("mapping values are not allowed", "a ':' where a value was expected: put a space after each key's ':', "
                                       "quote values that hold ': ', and write one `key: value` per line"),
    ("could not find expected ':'", "a line without `key: value`; add the ':' after the key or join it to the "
                                    "line above"),
    ("block end", "the indentation does not line up: settings at the same level need the same number of "
                  "spaces, and a list's `- ` items may not be mixed with `key: value` lines"),
    ("undefined alias", "a '*name' alias without a matching '&name' anchor; quote the value if '*' is text"),
    ("another document", "a second YAML document ('---'); a profile is one document, remove the '---' line"),
)


def _runaway_quote(text: str, before: int) -> yaml.Mark | None:
    """Where a quoted value opens that spans lines and starts before line ``before`` (0-based), if any:
    in a profile that is a quote left open, not a multi-line string."""
    found = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.line >= before:
                break
            if isinstance(token, yaml.ScalarToken) and token.style in ('"', "'") \
                    and token.end_mark.line > token.start_mark.line:
                found = token.start_mark
    except yaml.YAMLError:
        pass
    return found


def yaml_problem(exc: yaml.YAMLError, text: str) -> tuple[str, str]:
    """``(problem, where)`` for a YAML syntax error: what is wrong, the fix, and the offending line."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"(profile): is not valid YAML: {exc}", ""
    said = f"{exc.context or ''} {exc.problem or ''}"
    mark = exc.problem_mark
    if "quoted scalar" in said and exc.context_mark is not None:
        mark = exc.context_mark  # where the quote opens, not the end of the file
    hint = next((h for needle, h in _YAML_HINTS if needle in said), f"YAML says: {said.strip()}; fix the syntax there")
    runaway = _runaway_quote(text, mark.line)
    if runaway is not None:  # a quote left open swallows lines until the next quote (often in a comment)
        mark = runaway
        hint = (f"a quoted value is not closed on its line: the quote runs on to line {exc.problem_mark.line + 1}, "
                "where YAML gave up; add the closing quote on this line")
    lines = text.splitlines()
    shown = ""
    if 0 <= mark.line < len(lines):
        line = lines[mark.line].replace("\t", "→")
        shown = f"\n      {mark.line + 1:>4} | {line}\n           | {' ' * mark.column}^"
    return f"(profile): is not valid YAML: {hint}{shown}", f"line {mark.line + 1}, column {mark.column + 1}"


def _where(root: yaml.Node | None, loc: tuple[int | str, ...], key_only: bool) -> str:
    node = root
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            pair = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
            if pair is None:
                break
            last = i == len(loc) - 1
            node = pair[0] if last and key_only else pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
        else:
            break
    if node is None:
        return ""
    return f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}"


def _duplicate_keys(root: yaml.Node | None) -> list[tuple[str, str]]:
    """``(problem, where)`` per key given twice in one mapping (YAML loaders keep the last silently)."""
    out: list[tuple[str, str]] = []

    def walk(node: yaml.Node | None, path: str) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in node.value:
                name = str(k.value)
                if name in seen:
                    out.append((f"{path + '.' if path else ''}{name}: is given twice (first on line {seen[name]}); "
                                "keep one of them", f"line {k.start_mark.line + 1}, column {k.start_mark.column + 1}"))
                seen.setdefault(name, k.start_mark.line + 1)
                walk(v, f"{path + '.' if path else ''}{name}")
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, f"{path}[{i}]")

    walk(root, "")
    return out


def load_profile(path: str | Path, *, check_files: bool = True) -> Profile:
    """Read and validate a profile file.  Raises :class:`ProfileError` listing every problem, each with
    the line and column it comes from (YAML syntax errors: what is wrong, how to fix it, the line)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ProfileError(str(path), [f"(profile): cannot read it: {exc.strerror}; check the path"]) from None
    except UnicodeDecodeError as exc:
        raise ProfileError(str(path), [f"(profile): is not UTF-8 text (byte {exc.start}); save it as UTF-8"]) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem, where = yaml_problem(exc, text)
        raise ProfileError(str(path), [problem], [where]) from None
    duplicates = _duplicate_keys(root)
    try:
        profile = validate_profile(data, source=str(path), check_files=check_files)
    except ProfileError as err:
        places = [_where(root, loc, "unknown setting" in p) for loc, p in zip(err.locs, err.problems, strict=False)]
        raise ProfileError(str(path), [d[0] for d in duplicates] + err.problems,
                           [d[1] for d in duplicates] + places) from None
    if duplicates:
        raise ProfileError(str(path), [d[0] for d in duplicates], [d[1] for d in duplicates])
    return profile


def file_problems(profile: Profile) -> list[str]:
    """``field: message`` per local file the profile names that does not exist (``ssh.key_file``,
    ``ssh.known_hosts``): what a command that connects needs, checked for every node at once."""
    out = []
    for i, node in enumerate(profile.nodes):
        for name in ("key_file", "known_hosts"):
            value: Path | None = getattr(node.ssh, name)
            if value is None or value.expanduser().is_file():
                continue
            path = str(value.expanduser())
            how = (f"point key_file at your private key, or create one (ssh-keygen -t ed25519 -f {path}) and add "
                   f"{path}.pub to ~{node.ssh.user}/.ssh/authorized_keys on the node" if name == "key_file" else
                   f"point known_hosts at your file, or record the node's key (ssh-keyscan -p {node.ssh.port} "
                   f"{node.address} >> {path}, after checking its fingerprint)")
            out.append(f"nodes[{i}:{node.name}].ssh.{name}: file {path!r} does not exist; {how}")
    return out


def profile_to_yaml(profile: Profile) -> str:
    data = json.loads(profile.model_dump_json(exclude_defaults=False))
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write through a temp file in the same directory and rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_profile(profile: Profile, path: str | Path) -> Path:
    path = Path(path)
    atomic_write(path, profile_to_yaml(profile))
    return path


def json_schema() -> dict[str, Any]:
    return Profile.model_json_schema()
