"""The cluster form as pure data: flatten a profile dict into form values, build it back, map problems.

The nodes screen validates with the same :func:`wizard.profile.validate_profile` the CLI uses; this
module turns the form's flat values into the profile dict it validates and maps each problem line
(``field.path: message``) back to the input it is about.  No Textual here, so it is tested on its own.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# -- the fields -----------------------------------------------------------------------------------
NODE_LABELS = ("Studio node 1", "Studio node 2", "Arbiter")
NODE_ROLES = ("studio", "studio", "arbiter")
DEFAULT_NAMES = ("studio1", "studio2", "arbiter")


@dataclass(frozen=True)
class FieldSpec:
    key: str  # form key, e.g. "nodes-0-address"; the input's id is "f-" + key
    label: str
    placeholder: str = ""
    kind: str = "text"  # text | bool | choice
    wide: bool = False  # a row of its own: its example (placeholder) is longer than half of 80 columns
    check: str = ""  # kind bool: the checkbox's own text, short enough for a node column at 80x24


def node_fields(i: int) -> list[FieldSpec]:
    p = f"nodes-{i}-"
    return [
        FieldSpec(p + "name", "name", DEFAULT_NAMES[i]),
        FieldSpec(p + "address", "address", f"10.0.0.1{i + 1}"),
        FieldSpec(p + "ssh-user", "ssh user", "root"),
        FieldSpec(p + "ssh-port", "ssh port", "22"),
        FieldSpec(p + "ssh-key_file", "ssh key file", "empty: ssh agent"),
        FieldSpec(p + "ssh-known_hosts", "known_hosts", "~/.ssh/known_hosts"),
        FieldSpec(p + "ssh-sudo", "sudo -n for privileged commands", kind="bool", check="sudo"),
        # ssh.sudo_scope: agent (docs/least-privilege.md); off: the default, all.  Meaningful only with sudo on
        FieldSpec(p + "ssh-sudo_scope", "sudo runs only the agent (sudo_scope: agent)", kind="bool",
                  check="sudo: agent only"),
    ]


CLUSTER_FIELDS = [FieldSpec("cluster_name", "Cluster name", "studio-prod")]
# every other setting a person must decide, grouped as the form shows them; an empty text field means the
# profile's default (the placeholder says which), so a loaded profile round-trips unchanged
DNS_FIELDS = [
    FieldSpec("dns-authoring_name", "Authoring DNS name", "authoring.example.com"),
    FieldSpec("dns-zone", "DNS zone of the record", "empty: parent, e.g. example.com"),
    FieldSpec("dns-servers", "DNS server(s), comma-separated", "10.0.0.53"),
    FieldSpec("dns-port", "DNS server port", "53"),
    FieldSpec("dns-ttl", "Record TTL (seconds)", "5"),
    FieldSpec("dns-api_url", "PowerDNS API URL (apply pushes the record there)",
              "empty: a rendered zone file; or e.g. http://10.0.0.53:8081", wide=True),
]
REDIS_FIELDS = [
    FieldSpec("redis-mode", "Coordination store", kind="choice"),
    FieldSpec("redis-url", "Redis URL (no password in it)", "redis://10.0.0.20:6379/0"),
    FieldSpec("redis-sentinels", "Sentinels, comma-separated HOST:PORT", "10.0.0.11:26379, 10.0.0.12:26379, "
                                                                          "10.0.0.13:26379", wide=True),
    FieldSpec("redis-master_name", "Sentinel master name", "studio-prod"),
    FieldSpec("redis-key_prefix", "Key prefix in Redis", "studio-cluster"),
    FieldSpec("redis-failover_wait_s", "Failover wait (seconds)", "30"),
]
SYSTEM_FIELDS = [
    FieldSpec("services-manager", "Service manager", kind="choice"),
    FieldSpec("studio-install_path", "Crafter install path", "/opt/crafter"),
    FieldSpec("database-sst_user", "SST database user", "sst"),
    FieldSpec("database-min_free_mb", "Free space the data dir needs (MB)", "1024"),
]
CRAFTER_FIELDS = [  # the Crafter-aware cluster (docs/crafter.md); empty nodes: database only
    FieldSpec("studio-nodes", "Studio nodes running Crafter", "empty: none; e.g. studio1, studio2"),
    FieldSpec("studio-publisher_url", "Publisher URL ({address}: the node)",
              "http://{address}:8080/studio/api/2/cluster/primary", wide=True),
    FieldSpec("studio-status_url", "Status URL ({address}: the node)",
              "http://127.0.0.1:8080/studio/api/2/monitoring/status", wide=True),
    FieldSpec("studio-management_token", "Management token (env:, file:)", "none"),
    FieldSpec("studio-os_user", "Unix user Crafter runs as", "crafter"),
    FieldSpec("studio-data_path", "Crafter data directory", "/opt/crafter/data"),
]
BACKUP_FIELDS = [  # the profile's backups section (studio-cluster backup; docs/backups.md)
    FieldSpec("backups-schedule", "Schedule: hourly/daily/weekly/HH:MM", "empty: by hand; e.g. 02:30"),
    FieldSpec("backups-root", "Backup directory on the Arbiter", "/var/backups/studio-cluster/snapshots"),
    FieldSpec("backups-keep_last", "Keep the newest N backups", "7"),
    FieldSpec("backups-keep_days", "Also keep the last D days' backups", "0: no age rule"),
    FieldSpec("backups-receiver_port", "Receiver port on the Arbiter", "4450"),
    FieldSpec("backups-garbd_port", "Backup garbd's Galera port", "4570"),
]
TAIL_FIELDS = [
    FieldSpec("preferred_primary", "Preferred primary", kind="choice"),
    *DNS_FIELDS, *REDIS_FIELDS, *SYSTEM_FIELDS, *CRAFTER_FIELDS, *BACKUP_FIELDS,
]
ALL_FIELDS: list[FieldSpec] = [*CLUSTER_FIELDS, *(f for i in range(3) for f in node_fields(i)), *TAIL_FIELDS]
REDIS_MODES = (("Redis Sentinel (no single point of failure)", "sentinel"), ("One Redis server", "url"))
MANAGERS = (("systemd (units, restarted on failure)", "systemd"),
            ("direct (hosts without systemd)", "direct"))
SENTINEL_ONLY = ("redis-sentinels", "redis-master_name")
URL_ONLY = ("redis-url",)
# text fields that are optional: empty removes the setting, so the profile's default applies
OPTIONAL = {
    "dns-zone": ("dns", "zone"), "dns-port": ("dns", "port"), "dns-ttl": ("dns", "ttl"),
    "dns-api_url": ("dns", "api_url"),
    "redis-key_prefix": ("redis", "key_prefix"), "redis-failover_wait_s": ("redis", "failover_wait_s"),
    "studio-install_path": ("studio", "install_path"),
    "database-sst_user": ("database", "sst_user"), "database-min_free_mb": ("database", "min_free_mb"),
    **{f.key: ("studio", f.key.removeprefix("studio-")) for f in CRAFTER_FIELDS},
    **{f.key: ("backups", f.key.removeprefix("backups-")) for f in BACKUP_FIELDS},
}
LISTS = {"studio-nodes"}  # optional fields typed as comma-separated lists
FIELD_KEYS = {f.key for f in ALL_FIELDS}
LABELS = {f.key: f.label for f in ALL_FIELDS} | {"dns": "DNS", "redis": "Coordination store",
                                                 "studio": "Crafter Studio", "backups": "Backups"}
# where a problem goes when it names no single input: a node column, the nodes block, or the general line
CONTAINERS = {"nodes-0", "nodes-1", "nodes-2", "nodes", "dns", "redis", "studio", "backups"}
GENERAL = "general"

Values = dict[str, Any]  # form key -> str (text inputs), bool (sudo, sudo_scope agent) or int (preferred primary)


def field_label(key: str) -> str:
    """A human label for a form key: ``nodes-1-address`` -> ``Studio node 2 address``."""
    m = re.fullmatch(r"nodes-(\d)(?:-(.*))?", key)
    if m:
        base = NODE_LABELS[int(m.group(1))]
        return f"{base} {LABELS.get(key, '')}".strip() if m.group(2) else base
    return LABELS.get(key, key)


# -- profile dict <-> form values -----------------------------------------------------------------
def new_cluster_data() -> dict[str, Any]:
    """The raw profile dict behind a fresh form."""
    return {
        "cluster_name": "",
        "nodes": [{"name": n, "role": r, "address": "", "ssh": {"user": "root", "port": 22}}
                  for n, r in zip(DEFAULT_NAMES, NODE_ROLES, strict=True)],
        "preferred_primary": DEFAULT_NAMES[0],
        "dns": {"authoring_name": "", "servers": []},
        "redis": {"url": ""},
        "services": {"manager": "systemd"},
    }


def _ordered_nodes(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The profile's node dicts as [studio, studio, arbiter], padding missing ones with defaults."""
    raw = [n for n in data.get("nodes") or [] if isinstance(n, dict)]
    studios = [n for n in raw if n.get("role") == "studio"]
    arbiters = [n for n in raw if n.get("role") == "arbiter"]
    others = [n for n in raw if n.get("role") not in ("studio", "arbiter")]
    out: list[dict[str, Any]] = []
    for i, role in enumerate(NODE_ROLES):
        pool = studios if role == "studio" else arbiters
        node = pool.pop(0) if pool else (others.pop(0) if others else {"name": DEFAULT_NAMES[i]})
        node = copy.deepcopy(node)
        node["role"] = role
        out.append(node)
    return out


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def values_from_data(data: dict[str, Any]) -> Values:
    """Flatten a (possibly invalid) raw profile dict into form values."""
    values: Values = {"cluster_name": _text(data.get("cluster_name"))}
    nodes = _ordered_nodes(data)
    for i, node in enumerate(nodes):
        ssh: dict[str, Any] = node["ssh"] if isinstance(node.get("ssh"), dict) else {}
        p = f"nodes-{i}-"
        values[p + "name"] = _text(node.get("name"))
        values[p + "address"] = _text(node.get("address"))
        values[p + "ssh-user"] = _text(ssh.get("user", "root"))
        values[p + "ssh-port"] = _text(ssh.get("port", 22))
        values[p + "ssh-key_file"] = _text(ssh.get("key_file"))
        values[p + "ssh-known_hosts"] = _text(ssh.get("known_hosts"))
        values[p + "ssh-sudo"] = bool(ssh.get("sudo", False))
        values[p + "ssh-sudo_scope"] = ssh.get("sudo_scope") == "agent"
    primary = data.get("preferred_primary")
    values["preferred_primary"] = 1 if primary and primary == nodes[1].get("name") else 0
    dns: dict[str, Any] = data["dns"] if isinstance(data.get("dns"), dict) else {}
    values["dns-authoring_name"] = _text(dns.get("authoring_name"))
    servers = dns.get("servers")
    values["dns-servers"] = ", ".join(str(s) for s in servers) if isinstance(servers, list) else _text(servers)
    redis: dict[str, Any] = data["redis"] if isinstance(data.get("redis"), dict) else {}
    values["redis-mode"] = "sentinel" if redis.get("sentinels") or redis.get("master_name") else "url"
    values["redis-url"] = _text(redis.get("url"))
    sentinels = redis.get("sentinels")
    values["redis-sentinels"] = ", ".join(str(s) for s in sentinels) if isinstance(sentinels, list) \
        else _text(sentinels)
    values["redis-master_name"] = _text(redis.get("master_name"))
    services: dict[str, Any] = data["services"] if isinstance(data.get("services"), dict) else {}
    values["services-manager"] = "direct" if services.get("manager") == "direct" else "systemd"
    for key, (section, name) in OPTIONAL.items():
        part = data.get(section)
        value = part.get(name) if isinstance(part, dict) else None
        values[key] = ", ".join(str(v) for v in value) if isinstance(value, list) else _text(value)
    return values


def _port(text: str) -> int | str:
    text = text.strip()
    return int(text) if text.isdigit() else text


def _number(text: str) -> int | float | str:
    """A typed number as a number (so pydantic checks its range), anything else as typed (pydantic names it)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


NUMERIC = {"dns-port", "dns-ttl", "redis-failover_wait_s", "database-min_free_mb", "backups-keep_last",
           "backups-keep_days", "backups-receiver_port", "backups-garbd_port"}


def build_data(base: dict[str, Any], values: Values) -> dict[str, Any]:
    """The profile dict the form stands for: `base` (a loaded or new profile) with the form's values."""
    data = copy.deepcopy(base)
    data["cluster_name"] = str(values.get("cluster_name", "")).strip()
    nodes = _ordered_nodes(data)
    for i, node in enumerate(nodes):
        p = f"nodes-{i}-"
        ssh = dict(node.get("ssh") or {})
        node["name"] = str(values.get(p + "name", "")).strip()
        node["address"] = str(values.get(p + "address", "")).strip()
        ssh["user"] = str(values.get(p + "ssh-user", "")).strip()
        ssh["port"] = _port(str(values.get(p + "ssh-port", "")))
        for k in ("key_file", "known_hosts"):
            text = str(values.get(p + "ssh-" + k, "")).strip()
            if text:
                ssh[k] = text
            else:
                ssh.pop(k, None)
        ssh["sudo"] = bool(values.get(p + "ssh-sudo", False))
        # checked: agent; unchecked: the default (all), so a profile without sudo_scope saves without it and
        # one that says `sudo_scope: all` keeps saying so
        if values.get(p + "ssh-sudo_scope"):
            ssh["sudo_scope"] = "agent"
        elif ssh.get("sudo_scope") != "all":
            ssh.pop("sudo_scope", None)
        node["ssh"] = ssh
    data["nodes"] = nodes
    index = int(values.get("preferred_primary", 0) or 0)
    data["preferred_primary"] = nodes[1 if index == 1 else 0]["name"]
    dns = dict(data.get("dns") or {})
    dns["authoring_name"] = str(values.get("dns-authoring_name", "")).strip()
    dns["servers"] = [s for s in re.split(r"[,\s]+", str(values.get("dns-servers", ""))) if s]
    data["dns"] = dns
    redis = dict(data.get("redis") or {})
    if values.get("redis-mode", "url") == "sentinel":
        redis.pop("url", None)
        redis["sentinels"] = [s for s in re.split(r"[,\s]+", str(values.get("redis-sentinels", ""))) if s]
        redis["master_name"] = str(values.get("redis-master_name", "")).strip() or None
    else:
        for k in ("sentinels", "master_name", "sentinel_password", "database"):
            redis.pop(k, None)
        redis["url"] = str(values.get("redis-url", "")).strip()
    data["redis"] = redis
    services = dict(data.get("services") or {})
    services["manager"] = "direct" if values.get("services-manager") == "direct" else "systemd"
    data["services"] = services
    for key, (section, name) in OPTIONAL.items():
        text = str(values.get(key, "")).strip()
        part = dict(data.get(section) or {})
        if key in LISTS and text:
            part[name] = [s for s in re.split(r"[,\s]+", text) if s]
        elif text:
            part[name] = _number(text) if key in NUMERIC else text
        else:
            part.pop(name, None)
        data[section] = part
    # the API key lives in the credentials screen: with an API URL it must come from somewhere (ask until
    # told), without one it must be none
    if data["dns"].get("api_url"):
        if data["dns"].get("api_key") in (None, "none"):
            data["dns"]["api_key"] = "ask"
    else:
        data["dns"].pop("api_key", None)
    return data


# -- problems -> fields ---------------------------------------------------------------------------
_PROBLEM_RE = re.compile(r"^(?P<path>\(profile\)|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[^\]]*\])*): "
                         r"(?P<msg>.*)$", re.S)
_SHARE_RE = re.compile(r"two nodes share the (?P<attr>name|address) '(?P<value>[^']*)'")

# pydantic's generic messages, said in a way that names the fix
_FRIENDLIER: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Input should be greater than or equal to (\d+)$"), r"must be at least \1"),
    (re.compile(r"^Input should be less than or equal to (\d+)$"), r"must be at most \1"),
    (re.compile(r"^String should match pattern '\^\[a-z_\].*"),
     "is not a Unix user name; use e.g. root or deploy (lower-case letters, digits, _ or -)"),
    (re.compile(r"^String should have at least 1 character$"), "is empty; fill it in"),
    (re.compile(r"^List should have at least 1 item.*"), "add at least one DNS server address, e.g. 10.0.0.53"),
]


def friendlier(message: str) -> str:
    for pattern, repl in _FRIENDLIER:
        if pattern.match(message):
            return pattern.sub(repl, message)
    return message


def path_to_key(path: str) -> str:
    """``nodes[1:studio2].ssh.port`` -> ``nodes-1-ssh-port``; ``dns.servers[0]`` -> ``dns-servers-0``."""
    path = re.sub(r"\[(\d+)(?::[^\]]*)?\]", r".\1", path)
    return path.replace(".", "-")


def owner_of(key: str) -> str:
    """The form key (or container) a problem at `key` belongs to; GENERAL when the form has no input for it."""
    parts = key.split("-")
    while parts:
        candidate = "-".join(parts)
        if candidate in FIELD_KEYS or candidate in CONTAINERS:
            return candidate
        parts.pop()
    return GENERAL


def duplicate_problems(values: Values, problems: list[str]) -> list[str]:
    """The core's "two nodes share the name/address" lines, when the core could not say them yet.

    Pydantic only runs the profile's topology check once every node is valid on its own, so with a bad
    address on one node a duplicate name on two others would stay hidden until the address is fixed.
    Same wording as :meth:`wizard.profile.Profile._topology`.
    """
    if any(p.startswith("nodes: ") for p in problems):
        return []
    out = []
    for attr in ("name", "address"):
        seen: set[str] = set()
        for i in range(3):
            value = str(values.get(f"nodes-{i}-{attr}", "")).strip().lower()
            if value and value in seen:
                out.append(f"nodes: two nodes share the {attr} {value!r}; give each node its own {attr}")
                break
            seen.add(value)
    return out


# a problem about a whole section that one input can fix: (section, words in the message) -> input
_SECTION_OWNERS = [
    ("redis", "master_name is required", "redis-master_name"),
    ("redis", "both url and sentinels", "redis-mode"),
    ("redis", "applies to sentinels only", "redis-mode"),
    ("dns", "api_url", "dns-api_url"),
]


def _section_owner(section: str, msg: str, values: Values) -> str:
    if section == "redis" and msg.startswith("no Redis given"):
        return "redis-sentinels" if values.get("redis-mode") == "sentinel" else "redis-url"
    for sec, words, key in _SECTION_OWNERS:
        if sec == section and words in msg:
            return key
    return section


def map_problems(problems: list[str], values: Values) -> dict[str, list[str]]:
    """Each problem line -> the key of the input it is about (or a container / GENERAL), message fixed up."""
    out: dict[str, list[str]] = {}

    def add(key: str, msg: str) -> None:
        if msg not in out.setdefault(key, []):
            out[key].append(msg)

    for line in problems:
        m = _PROBLEM_RE.match(line)
        if not m:
            add(GENERAL, line)
            continue
        path, msg = m.group("path"), friendlier(m.group("msg"))
        if path.endswith("port") and msg.startswith("must be at "):
            msg += "; a port is 1-65535"
        key = owner_of(path_to_key(path)) if path != "(profile)" else GENERAL
        if key == "nodes":
            share = _SHARE_RE.search(msg)
            if share:
                attr, value = share.group("attr"), share.group("value").lower()
                targets = [f"nodes-{i}-{attr}" for i in range(3)
                           if str(values.get(f"nodes-{i}-{attr}", "")).strip().lower() == value]
                for t in targets:
                    add(t, msg)
                if targets:
                    continue
        if key in ("redis", "dns"):
            key = _section_owner(key, msg, values)
        if key == GENERAL:
            msg = line  # keep the full path: the form has no input for it (fix it in the profile file)
        add(key, msg)
    return out


# -- secrets --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SecretSpec:
    key: str  # as Secrets.resolve_for(given=...) knows it
    label: str
    path: tuple[str, str]  # where the reference lives in the profile dict

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


SECRET_SPECS = (
    SecretSpec("sst_password", "SST password", ("database", "sst_password")),
    SecretSpec("redis_password", "Redis password", ("redis", "password")),
    SecretSpec("admin_password", "DB admin password", ("database", "admin_password")),
    SecretSpec("dns_api_key", "PowerDNS API key", ("dns", "api_key")),
    SecretSpec("sentinel_password", "Sentinel password", ("redis", "sentinel_password")),
)
SECRET_DEFAULTS = {"sst_password": "ask", "redis_password": "none", "admin_password": "none",
                   "dns_api_key": "none", "sentinel_password": "none"}
OPTIONAL_SECRETS = {"redis_password", "sentinel_password"}  # their default is unset, not "none"


def secrets_needed(data: dict[str, Any]) -> tuple[str, ...]:
    """The secret keys a profile dict uses: the API key only with dns.api_url, the Sentinels' own password
    only with sentinels."""
    dns = data.get("dns") if isinstance(data.get("dns"), dict) else {}
    redis = data.get("redis") if isinstance(data.get("redis"), dict) else {}
    skip = set()
    if not (dns or {}).get("api_url"):
        skip.add("dns_api_key")
    if not (redis or {}).get("sentinels"):
        skip.add("sentinel_password")
    return tuple(s.key for s in SECRET_SPECS if s.key not in skip)


def secret_ref(data: dict[str, Any], spec: SecretSpec) -> str:
    section = data.get(spec.path[0])
    value = section.get(spec.path[1]) if isinstance(section, dict) else None
    return SECRET_DEFAULTS[spec.key] if value is None else str(value)


def refs_to_save(refs: dict[str, str], typed: Iterable[str]) -> dict[str, str]:
    """The references a profile keeps for `refs` (secret key -> what the person wrote), given the keys whose
    value was typed: each reference as written (env:NAME, file:/path, ask), never a value.  Only a typed
    secret whose reference could not give it (none, empty, or not a reference) is kept as ``ask``, the
    reference that says "typed at run time"."""
    from wizard.secrets import REF_RE

    typed = set(typed)
    out = {}
    for key, ref in refs.items():
        ref = ref.strip()
        if key in typed and (ref == "none" or not REF_RE.match(ref)):
            ref = "ask"
        out[key] = ref
    return out


def with_secret_refs(data: dict[str, Any], refs: dict[str, str]) -> dict[str, Any]:
    """`data` with the secret references in `refs` (secret key -> env:/file:/ask/none); never values."""
    out = copy.deepcopy(data)
    for spec in SECRET_SPECS:
        if spec.key not in refs:
            continue
        section = dict(out.get(spec.path[0]) or {})
        ref = refs[spec.key]
        if spec.key in OPTIONAL_SECRETS and ref == "none" and section.get(spec.path[1]) is None:
            section.pop(spec.path[1], None)
        else:
            section[spec.path[1]] = ref
        out[spec.path[0]] = section
    return out
