"""Render the files each node needs from the profile, with the Jinja2 templates ``templates/*.j2`` of the
package data ``wizard.assets`` (``assets/templates`` in the source tree, see :mod:`wizard.assets_files`).

:func:`render` is pure: the same profile and secrets give byte-identical files, in the same order.
It returns ``{node name: [RenderedFile, ...]}`` in profile order, plus the pseudo-node ``"dns"``
holding the authoring name's PowerDNS LUA record (the lab's zone file includes that line; on a
real site a person or a DNS API puts it in place).

Secrets: when ``secrets`` is None (``plan`` without secrets) every password is rendered as the
placeholder ``<name>`` (e.g. ``<sst_password>``, see :func:`placeholder`), so a plan shows where a
secret goes without knowing it.  Files holding a password have ``secret=True``; :func:`unified_diff`
redacts every known secret value (``wizard.secrets.REDACTOR``) and every ``wsrep_sst_auth`` value,
so even an old password on the node that this run never resolved does not reach a screen or log.

Files per node:

* Studio nodes: the Galera server config (``database.config_file``, 0640 root:mysql, secret,
  restart mariadb), ``<studio.install_path>/bin/crafter-setenv-cluster.sh`` (to be sourced from
  ``crafter-setenv.sh``) and Studio's ``studio-config-override.yaml`` (no restart: Studio is not a
  service this tool restarts).
  Also the donor side of Arbiter snapshot backups, ``/usr/bin/wsrep_sst_studio_backup`` (0755, no
  restart: the server runs it when garbd asks for a snapshot, see :mod:`wizard.backups`).
* Arbiter: ``/etc/default/garb`` as read by Debian's ``garb-systemd`` (restart garbd).
* With ``tls.enabled``, every node also gets ``tls.remote_dir``/``ca.pem``, ``cert.pem`` and ``key.pem`` (the key
  0640 root:mysql on a data node, root:nogroup on the Arbiter; secret; a plan without secrets shows a
  placeholder), and the Galera, SST, garbd and client options that name them (:mod:`wizard.tls.options`).
* ``"dns"``: ``/zones/<zone>/<authoring name>.lua-record`` (no service; not a real path on a node).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from wizard.assets_files import AssetsMissing, asset_text
from wizard.profile import Node, Profile, is_ip
from wizard.secrets import REDACTOR, Secrets
from wizard.tls import material as tls_material
from wizard.tls import options as tls_options

TEMPLATE_DIR = "templates"
"""Directory of the templates inside the package data (see :mod:`wizard.assets_files`)."""

DNS_NODE = "dns"
"""Key of the pseudo-node that holds the DNS record in :func:`render`'s result."""

HEALTH_PATH = "/"
"""Path of the health endpoint PowerDNS checks on each Studio node (``dns.health_port``)."""

DEFAULT_GALERA_PORT = 4567
SLAVE_THREADS = 2
"""wsrep_slave_threads: parallel appliers; 2 suits the small (2-core) Studio hosts this targets."""

GARB_CONFIG = PurePosixPath("/etc/default/garb")

BACKUP_SST_METHOD = "studio_backup"
"""The SST method garbd requests for a snapshot backup: the server runs ``wsrep_sst_<method>``."""
BACKUP_SST_SCRIPT = PurePosixPath(f"/usr/bin/wsrep_sst_{BACKUP_SST_METHOD}")
BACKUP_DONOR_LOG = "studio-backup-donor.log"
"""The donor script's log, in the donor's data dir (the last snapshot only)."""
GARBD_LOG_FILE = PurePosixPath("/var/log/garbd/garbd.log")
GARBD_WORK_DIR = PurePosixPath("/var/lib/garbd")

STUDIO_SETENV = PurePosixPath("bin/crafter-setenv-cluster.sh")
STUDIO_OVERRIDE = PurePosixPath(
    "bin/apache-tomcat/shared/classes/crafter/studio/extension/studio-config-override.yaml"
)
STUDIO_SYNC_URL_FORMAT = "ssh://{username}@{localAddress}{absolutePath}"  # Crafter 3.1's SSH format (docs/crafter.md)
REDIS_PASSWORD_ENV = "STUDIO_CLUSTER_REDIS_PASSWORD"  # noqa: S105 (a variable name, not a password)
"""Environment variable Studio reads the Redis password from, unless redis.password is env:NAME."""

# Characters a password cannot hold in a MariaDB option file value that the SST scripts then pass
# around in shell variables: quotes, backslash, backtick, whitespace and control characters.
_UNSAFE_SECRET = re.compile(r"[\"'\\`\s\x00-\x1f\x7f]")
# wsrep_sst_auth = "user:password" -> keep the user, hide the password, whatever its value.
_SST_AUTH_RE = re.compile(r"(wsrep[_-]sst[_-]auth\s*=\s*\"?[^:\"\n]*:)[^\"\n]*")

Restart = tuple[str, ...]


class RenderError(Exception):
    """The profile or a secret cannot be rendered; the message says what to change."""


@dataclass(frozen=True)
class RenderedFile:
    """One file for one node, ready to be pushed by apply."""

    path: PurePosixPath
    content: str
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    secret: bool = False
    restart: Restart = ()
    hide_content: bool = False
    """A private key: diffs and plans say that it changes, never what it holds."""


def placeholder(name: str) -> str:
    """What a secret looks like when rendered without secrets: ``<sst_password>``."""
    return f"<{name}>"


SECRET_NAMES = ("sst_password",)
"""The secrets (attributes of :class:`~wizard.secrets.Secrets`) that rendered files embed."""

PLACEHOLDERS_FILE = "PLACEHOLDERS"
"""Written beside the node directories by :func:`render_to_dir` when it renders without secrets."""
PLACEHOLDER_NOTE = ("they are for review only: render again with the secrets set before deploying them "
                    "(replay and apply always render with the secrets)")


def rendered_secret_refs(profile: Profile) -> dict[str, tuple[str, str]]:
    """``{secret name: (reference, setting)}`` of the secrets :func:`render` embeds, e.g.
    ``{"sst_password": ("env:SST", "database.sst_password")}``: what rendering needs resolved."""
    return {name: (getattr(profile.database, name), f"database.{name}") for name in SECRET_NAMES}


def placeholders_in(text: str) -> list[str]:
    """The secret placeholders (``<sst_password>``...) that a rendered text holds."""
    return [placeholder(name) for name in SECRET_NAMES if placeholder(name) in text]


# -- quoting filters ---------------------------------------------------------------------------------
def _cnf(value: object) -> str:
    """Double-quote a MariaDB option-file value (so '#' or ';' inside it are not comments)."""
    text = str(value)
    if '"' in text or "\\" in text or "\n" in text:
        raise RenderError(f"{text!r} cannot be written to a MariaDB option file (quote, backslash or newline)")
    return f'"{text}"'


def _yaml(value: object) -> str:
    """A YAML scalar: JSON strings are valid YAML and quote everything that needs it."""
    return json.dumps(str(value))


def _sh(value: object) -> str:
    return shlex.quote(str(value))


def _lua(value: object) -> str:
    """A single-quoted Lua string (it sits inside the double-quoted LUA record content)."""
    text = str(value)
    if re.search(r"['\"\\\s]", text):
        raise RenderError(f"{text!r} cannot be written into a LUA record (quote, backslash or space)")
    return f"'{text}'"


class _AssetLoader(jinja2.BaseLoader):
    """Templates read from the package data through importlib.resources (works from a wheel or a zip)."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, Any]:
        try:
            return asset_text(TEMPLATE_DIR, template), None, lambda: True
        except (FileNotFoundError, NotADirectoryError):
            raise jinja2.TemplateNotFound(template) from None


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=_AssetLoader(),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "xml")),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(cnf=_cnf, yaml=_yaml, sh=_sh, lua=_lua)
    return env


def _template(name: str, **context: Any) -> str:
    try:
        return _env().get_template(name).render(**context)
    except AssetsMissing as exc:
        raise RenderError(str(exc)) from None
    except jinja2.TemplateNotFound:
        raise RenderError(f"template {name} is missing from the package data wizard.assets/{TEMPLATE_DIR}; "
                          "reinstall studio-cluster") from None
    except jinja2.UndefinedError as exc:  # a template bug, named so it can be fixed
        raise RenderError(f"template {name}: {exc.message}") from None


# -- address helpers ---------------------------------------------------------------------------------
def _host(address: str) -> str:
    """An address as it appears before ``:port`` (IPv6 in brackets)."""
    if is_ip(address) and ipaddress.ip_address(address).version == 6:
        return f"[{address}]"
    return address


def host_port(address: str, port: int) -> str:
    return f"{_host(address)}:{port}"


def _galera_addr(address: str, port: int) -> str:
    """``address`` alone when the port is Galera's default, else ``address:port``."""
    return _host(address) if port == DEFAULT_GALERA_PORT else host_port(address, port)


def cluster_address(profile: Profile) -> str:
    """``gcomm://a,b,c`` with every node (both data nodes and the Arbiter), in profile order."""
    port = profile.database.galera_port
    return "gcomm://" + ",".join(_galera_addr(n.address, port) for n in profile.nodes)


def _listen_addr(node: Node, port: int) -> str:
    """Listen on the node's own IP; on all interfaces when the node is known by a host name."""
    if is_ip(node.address):
        return f"tcp://{host_port(node.address, port)}"
    return f"tcp://0.0.0.0:{port}"


# -- secrets -----------------------------------------------------------------------------------------
def _secret(secrets: Secrets | None, name: str) -> str | None:
    """The value to render: a placeholder without secrets, None when the reference is ``none``."""
    if secrets is None:
        return placeholder(name)
    value: str | None = getattr(secrets, name)
    if value is None:
        return None
    if _UNSAFE_SECRET.search(value):
        raise RenderError(
            f"database.{name} contains a quote, backslash, backtick, space or control character, which "
            "MariaDB's option file and the SST scripts cannot carry safely; choose a password without them"
        )
    REDACTOR.add(value)  # whoever built `secrets`, what we embed is never shown
    return value


def _redis_password_env(profile: Profile) -> str | None:
    ref = profile.redis.password
    if ref is None or ref == "none":
        return None
    if ref.startswith("env:"):
        return ref[4:]
    return REDIS_PASSWORD_ENV


# -- files -------------------------------------------------------------------------------------------
TLS_KEY_PLACEHOLDER = "<tls private key: rendered at apply time, never shown>"


def _tls_files(profile: Profile, node: Node, tls: tls_material.NodeTLS, secrets: Secrets | None) -> list[RenderedFile]:
    p = tls_options.paths(profile)
    restart: Restart = ("mariadb",) if node.is_studio else ("garbd",)
    key = TLS_KEY_PLACEHOLDER if secrets is None else tls.key.decode()
    return [
        RenderedFile(path=p["ca"], content=tls.ca_bundle.decode(), restart=restart),
        RenderedFile(path=p["cert"], content=tls.cert.decode(), restart=restart),
        RenderedFile(path=p["key"], content=key, mode=0o640, group=tls_options.key_group(node), secret=True,
                     restart=restart, hide_content=True),
    ]


JOIN_RETRANS = "evs.join_retrans_period=PT0.2S"
"""Galera's membership rounds (EVS gather and install) retransmit their join messages every 0.2 s instead of the
default 1 s, on both data nodes and the Arbiter's garbd.  A round that misses consensus at its first exchange (a
member that joined or left a moment ago: its last messages not yet acknowledged by everyone) waited a whole
period.  Measured on the systemd lab, a backup's garbd joining and leaving again (``backup take``, 5 runs each,
start to Primary view, then its leave to the donor's view without it): defaults 1.0-3.0 s and 1.0-3.0 s; with
0.2 s on the cluster's three members 0.7-1.0 s and 0.2-0.4 s (docs/backups.md).  Only the retransmission period
changes: the suspect, inactive and install timeouts that decide a member is gone stay Galera's, and the messages are
a few hundred bytes among three members.  Not for the backup's own garbd (take.py): a joiner retransmitting that
fast can install a view of its own before it hears the others, and garbd ``--sst`` gives up at its first view."""


def _galera_cnf(profile: Profile, node: Node, secrets: Secrets | None) -> RenderedFile:
    db = profile.database
    password = _secret(secrets, "sst_password")
    sst_auth = None if password is None else f"{db.sst_user}:{password}"
    options = [
        f"gmcast.listen_addr={_listen_addr(node, db.galera_port)}",
        f"ist.recv_addr={host_port(node.address, db.ist_port)}",
        "gcache.size=256M",
        "gcache.recover=yes",
        JOIN_RETRANS,
        *tls_options.galera_options(profile),
    ]
    content = _template(
        "galera.cnf.j2",
        profile=profile,
        node=node,
        db=db,
        cluster_address=cluster_address(profile),
        node_address=_galera_addr(node.address, db.galera_port),
        incoming_address=host_port(node.address, db.port),
        sst_receive_address=host_port(node.address, db.sst_port),
        sst_auth=sst_auth,
        provider_options=";".join(options),
        slave_threads=SLAVE_THREADS,
        tls=tls_options.paths(profile) if profile.tls.enabled else None,
    )
    return RenderedFile(
        path=PurePosixPath(db.config_file.as_posix()),
        content=content,
        mode=0o640,
        owner="root",
        group="mysql",
        secret=sst_auth is not None,
        restart=("mariadb",),
    )


def _studio_files(profile: Profile, node: Node) -> list[RenderedFile]:
    base = PurePosixPath(profile.studio.install_path.as_posix())
    context: dict[str, Any] = {
        "profile": profile,
        "node": node,
        "install_path": base,
        "studio_count": len(profile.studio_nodes),
        "redis_password_env": _redis_password_env(profile),
        "sync_url_format": STUDIO_SYNC_URL_FORMAT,
        "db_port": profile.database.port,
        "heartbeat_interval_ms": profile.studio.heartbeat_interval_s * 1000,
        # Studio counts these limits in whole minutes.
        "inactivity_minutes": max(1, math.ceil(profile.studio.inactivity_limit_s / 60)),
    }
    return [
        RenderedFile(path=base / STUDIO_SETENV, content=_template("crafter-setenv-cluster.sh.j2", **context)),
        RenderedFile(path=base / STUDIO_OVERRIDE, content=_template("studio-config-override.yaml.j2", **context)),
    ]


def backup_content_dir(profile: Profile, node: Node) -> PurePosixPath | None:
    """The directory of Crafter's content repositories a snapshot of ``node`` carries (``studio.data_path``/repos),
    or None where Crafter does not run (``studio.nodes``)."""
    if not (node.is_studio and node.name in profile.studio.nodes):
        return None
    return PurePosixPath(str(profile.studio.data_path)) / "repos"


def _backup_sst_script(profile: Profile, node: Node | None = None) -> RenderedFile:
    """The donor side of snapshot backups; with ``node`` a Crafter node, it also streams the content repositories
    (None: the database only, as in the Kubernetes ConfigMap shared by every pod)."""
    db = profile.database
    content_dir = backup_content_dir(profile, node) if node is not None else None
    content = _template(
        "wsrep_sst_studio_backup.j2", profile=profile, method=BACKUP_SST_METHOD, log_name=BACKUP_DONOR_LOG,
        data_dir=_sq(db.data_dir), socket=_sq(db.socket), mariabackup="mariabackup",
        content_dir=_sq(content_dir) if content_dir else "",
        tls={k: _socat_value(v) for k, v in tls_options.paths(profile).items()} if profile.tls.enabled else None,
    )
    return RenderedFile(path=BACKUP_SST_SCRIPT, content=content, mode=0o755)


def _socat_value(value: object) -> str:
    """Text for a socat address option inside a single-quoted shell string (no comma: it separates options)."""
    text = _sq(value)
    if "," in text or "!" in text:
        raise RenderError(f"{text!r} cannot be a socat option value (a comma or '!'); change tls.remote_dir")
    return text


def _sq(value: object) -> str:
    """Text for inside a single-quoted shell string."""
    text = str(value)
    if "'" in text or "\n" in text:
        raise RenderError(f"{text!r} cannot be written into the SST script (quote or newline)")
    return text


def _garb(profile: Profile) -> RenderedFile:
    db = profile.database
    arbiter = profile.arbiter
    content = _template(
        "garb.j2",
        profile=profile,
        galera_nodes=",".join(host_port(n.address, db.galera_port) for n in profile.studio_nodes),
        garbd_options=f"gmcast.listen_addr={_listen_addr(arbiter, db.galera_port)};{JOIN_RETRANS}"
        + tls_options.galera_options_suffix(profile),
        log_file=GARBD_LOG_FILE,
        work_dir=GARBD_WORK_DIR,
    )
    return RenderedFile(path=GARB_CONFIG, content=content, restart=("garbd",))


def _record_name(profile: Profile) -> str:
    name = profile.dns.authoring_name.lower()
    zone = profile.dns.record_zone.rstrip(".").lower()
    if name == zone:
        return "@"
    if name.endswith("." + zone):
        return profile.dns.authoring_name[: -(len(zone) + 1)]
    return profile.dns.authoring_name + "."


def authoring_rdata(profile: Profile) -> str:
    """The record's type and data, without name and TTL: ``LUA A "ifurlup(...)"``."""
    dns = profile.dns
    nodes = [profile.primary, profile.secondary]
    versions = set()
    for n in nodes:
        if not is_ip(n.address):
            raise RenderError(
                f"nodes[{n.name}].address is the host name {n.address!r}; the authoring record lists the Studio "
                "nodes' IP addresses, so give both Studio nodes an IP address"
            )
        versions.add(ipaddress.ip_address(n.address).version)
    if len(versions) > 1:
        raise RenderError("one Studio node has an IPv4 and the other an IPv6 address; use the same family for both")
    rrtype = "AAAA" if versions == {6} else "A"
    url = f"http://{dns.authoring_name}:{dns.health_port}{HEALTH_PATH}"
    groups = ", ".join("{" + _lua(n.address) + "}" for n in nodes)
    interval = str(dns.health_interval)
    timeout = str(max(1, min(dns.health_interval, 2)))
    expr = f"ifurlup({_lua(url)}, {{{groups}}}, {{interval={_lua(interval)}, timeout={_lua(timeout)}}})"
    return f'LUA {rrtype} "{expr}"'


def authoring_record(profile: Profile) -> str:
    """The zone-file line for the authoring name: a PowerDNS LUA ``ifurlup`` record, primary first.

    e.g. ``studio 1 IN LUA A "ifurlup('http://studio.lab.test:9200/', {{'198.18.0.11'}, {'198.18.0.12'}},
    {interval='1', timeout='1'})"``.  PowerDNS fetches the URL from each address in turn (with the
    URL's name as Host) and answers the first group that is up.  The name is relative to
    ``dns.zone`` (``@`` for the apex, absolute with a trailing dot outside the zone).
    """
    return _template(
        "authoring.lua-record.j2", record_name=_record_name(profile), ttl=profile.dns.ttl,
        rdata=authoring_rdata(profile),
    ).rstrip("\n")


def dns_record_path(profile: Profile) -> PurePosixPath:
    return PurePosixPath("/zones") / profile.dns.record_zone.rstrip(".") / f"{profile.dns.authoring_name}.lua-record"


def _dns_file(profile: Profile) -> RenderedFile:
    content = _template(
        "dns-zone-fragment.j2",
        profile=profile,
        zone=profile.dns.record_zone,
        primary=profile.primary,
        secondary=profile.secondary,
        record=authoring_record(profile),
    )
    return RenderedFile(path=dns_record_path(profile), content=content)


def render(profile: Profile, secrets: Secrets | None,
           tls: Mapping[str, tls_material.NodeTLS] | None = None) -> dict[str, list[RenderedFile]]:
    """Every file of every node, keyed by node name (profile order), then ``"dns"``.

    ``tls``: node name -> its TLS material; None loads it with :func:`wizard.tls.material.load` when
    ``tls.enabled`` (generating it on first use).  Raises :class:`RenderError` (what to change)."""
    if profile.tls.enabled and tls is None:
        try:
            tls = tls_material.load(profile)
        except (tls_material.TLSError, OSError) as exc:
            raise RenderError(str(exc)) from None
    out: dict[str, list[RenderedFile]] = {}
    for node in profile.nodes:
        if node.is_studio:
            out[node.name] = [_galera_cnf(profile, node, secrets), *_studio_files(profile, node),
                              _backup_sst_script(profile, node)]
        else:
            out[node.name] = [_garb(profile)]
        if profile.tls.enabled and tls is not None:
            out[node.name] += _tls_files(profile, node, tls[node.name], secrets)
    out[DNS_NODE] = [_dns_file(profile)]
    return out


def render_to_dir(profile: Profile, secrets: Secrets | None, out: Path) -> list[Path]:
    """Write ``out/<node>/<absolute path>`` for every rendered file, with its mode; return the paths.

    Without secrets the files hold placeholders (:func:`placeholder`) and ``out/PLACEHOLDERS`` lists
    them; rendering with secrets removes that list.  Raises :class:`RenderError` (what to change) and
    OSError (the directory cannot be written)."""
    written: list[Path] = []
    marked: list[str] = []
    for node, files in render(profile, secrets).items():
        for f in files:
            target = out / node / f.path.relative_to("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f.content)
            target.chmod(f.mode)
            written.append(target)
            found = placeholders_in(f.content) if secrets is None else []
            if found:
                marked.append(f"{node}{f.path}: {', '.join(found)}")
    note = out / PLACEHOLDERS_FILE
    if marked:
        note.write_text("Rendered WITHOUT secrets: the files below hold placeholders where a secret belongs;\n"
                        f"{PLACEHOLDER_NOTE}.\n\n" + "\n".join(marked) + "\n")
    else:
        note.unlink(missing_ok=True)
    return written


def redact(text: str) -> str:
    """Hide every known secret and every ``wsrep_sst_auth`` password in text."""
    return _SST_AUTH_RE.sub(r"\1***", REDACTOR(text))


def unified_diff(path: PurePosixPath | str, old: str | None, new: str) -> str:
    """A unified diff from ``old`` (None: the file does not exist yet) to ``new``, secrets redacted."""
    name = str(path)
    lines = difflib.unified_diff(
        [] if old is None else old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile="/dev/null" if old is None else f"a{name}" if name.startswith("/") else f"a/{name}",
        tofile=f"b{name}" if name.startswith("/") else f"b/{name}",
    )
    text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
    return redact(text)


def files_by_path(rendered: Mapping[str, list[RenderedFile]], node: str) -> dict[str, RenderedFile]:
    """``{str(path): file}`` of one node, for lookups by path."""
    return {str(f.path): f for f in rendered[node]}
