"""Where the TLS files go on a node and the options that name them.

Each node keeps three files in ``tls.remote_dir``: ``ca.pem`` (the CA bundle it trusts), ``cert.pem`` (its
certificate) and ``key.pem`` (its private key: 0640 root:mysql on a data node, whose mariadbd and SST scripts run
as mysql; 0640 root:nogroup on the Arbiter, whose garbd runs as nobody under Debian's unit).

The options (MariaDB 10.11, Galera 4 26.4, socat 1.7.4 with OpenSSL, as on Debian 12):

* Galera replication and IST: ``socket.ssl=yes;socket.ssl_cert=...;socket.ssl_key=...;socket.ssl_ca=...`` in
  ``wsrep_provider_options`` (IST follows the socket settings); a peer whose certificate is not signed by a CA of
  the bundle fails the handshake and cannot join.
* garbd: the same ``socket.ssl_*`` in its ``--options`` (``GALERA_OPTIONS``).
* mariabackup SST: ``[sst] encrypt=4`` with ``tca``/``tcert``/``tkey``: socat ``openssl-listen`` on the joiner,
  ``openssl-connect`` on the donor, each verifying the other's certificate against the CA bundle.
* Clients: ``[mysqld] ssl_cert``/``ssl_key``/``ssl_ca`` (TLS offered on the client port).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from wizard.profile import Node, Profile

CA_FILE = "ca.pem"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
ARBITER_KEY_GROUP = "nogroup"
"""Group of the Arbiter's key: Debian's garb.service runs garbd as nobody:nogroup."""
DATA_KEY_GROUP = "mysql"


def paths(profile: Profile) -> dict[str, PurePosixPath]:
    """``{"ca": ..., "cert": ..., "key": ...}``: the files' paths on every node."""
    base = PurePosixPath(profile.tls.remote_dir.as_posix())
    return {"ca": base / CA_FILE, "cert": base / CERT_FILE, "key": base / KEY_FILE}


def files(profile: Profile) -> list[str]:
    """``[cert, key, ca]`` paths on every node when ``tls.enabled`` (what the backup streams' two ends are given),
    [] when TLS is off."""
    if not profile.tls.enabled:
        return []
    p = paths(profile)
    return [str(p["cert"]), str(p["key"]), str(p["ca"])]


def key_group(node: Node) -> str:
    """The group that may read the node's private key (the user its Galera process runs as)."""
    return DATA_KEY_GROUP if node.is_studio else ARBITER_KEY_GROUP


def galera_options(profile: Profile) -> list[str]:
    """``socket.ssl*`` entries of ``wsrep_provider_options`` / garbd's ``--options``; [] when TLS is off."""
    if not profile.tls.enabled:
        return []
    p = paths(profile)
    return ["socket.ssl=yes", f"socket.ssl_cert={p['cert']}", f"socket.ssl_key={p['key']}",
            f"socket.ssl_ca={p['ca']}"]


def galera_options_suffix(profile: Profile) -> str:
    """``;socket.ssl=yes;...`` to append to an options string that has entries already; "" when TLS is off."""
    return "".join(";" + o for o in galera_options(profile))
