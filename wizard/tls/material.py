"""The TLS material of one cluster on the operator's machine: what each node gets.

``tls.ca_cert``/``cert``/``key`` set to ``generate``: a CA and one certificate per node are generated on first
use and kept under ``<tls.store>/<cluster_name>/`` (``ca.pem``, ``ca.key``, ``<node>.pem``, ``<node>.key``; the
directory 0700, keys 0600); later runs reuse them, and a node whose certificate no longer fits (another
address, signed by another CA, expiring within ``warn_days``) gets a new one.  With paths, the operator's own
files are read as they are and checked: the key belongs to the certificate, the CA signed it.

A private key is a secret: it is never logged; :func:`load` registers every line of it with the redactor.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from wizard.profile import TLS_GENERATE, Node, Profile
from wizard.secrets import REDACTOR
from wizard.tls import certs
from wizard.tls.certs import CertError, Pair


class TLSError(Exception):
    """The TLS material cannot be read, generated or does not fit; the message names the file and the fix."""


@dataclass(frozen=True)
class NodeTLS:
    """What one node gets: the CA bundle it trusts, its certificate and its private key (PEM)."""

    ca_bundle: bytes
    cert: bytes
    key: bytes


NEXT_CA = "next-ca"
"""A CA rotation's new CA while the nodes only learn to trust it (``next-ca.pem``/``.key`` in the store)."""
OLD_CA = "old-ca"
"""A CA rotation's old CA while the nodes still trust it after the certificates were reissued."""


def store_dir(profile: Profile) -> Path:
    """``<tls.store>/<cluster_name>``, ``~`` expanded."""
    return profile.tls.store.expanduser() / profile.cluster_name


def _read(path: Path, what: str) -> bytes:
    try:
        return path.expanduser().read_bytes()
    except OSError as exc:
        raise TLSError(f"{what}: cannot read {path}: {exc.strerror}; fix the path or its permissions") from None


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with ``mode`` from the start (a key is never readable by others, not even briefly)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def node_names(node: Node) -> list[str]:
    """The subject alternative names of a node's certificate: its name and its address."""
    return [node.name, node.address]


def _fits(pair: Pair, ca_bundle: bytes, node: Node, warn_days: int) -> bool:
    try:
        cert = certs.load_cert(pair.cert, "node certificate")
    except CertError:
        return False
    if not certs.key_matches(pair.cert, pair.key) or not certs.signed_by(pair.cert, ca_bundle):
        return False
    try:
        san = cert.extensions.get_extension_for_class(certs.x509.SubjectAlternativeName).value
    except certs.x509.ExtensionNotFound:
        return False
    have = {str(v) for v in san.get_values_for_type(certs.x509.DNSName)}
    have |= {str(v) for v in san.get_values_for_type(certs.x509.IPAddress)}
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return set(node_names(node)) <= have and left > dt.timedelta(days=warn_days)


def _generated(profile: Profile) -> dict[str, tuple[Pair, bytes]]:
    """node -> (its pair, the CA certificate), generating what is missing or no longer fits."""
    d = store_dir(profile)
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        d.chmod(0o700)
    except OSError as exc:
        raise TLSError(f"tls.store: cannot create {d}: {exc.strerror}; choose a writable directory") from None
    ca_cert_path, ca_key_path = d / "ca.pem", d / "ca.key"
    if ca_cert_path.exists() and ca_key_path.exists():
        ca = Pair(_read(ca_cert_path, "tls.store CA"), _read(ca_key_path, "tls.store CA key"))
    else:
        ca = certs.new_ca(f"studio-cluster CA {profile.cluster_name}")
        _write(ca_key_path, ca.key, 0o600)
        _write(ca_cert_path, ca.cert, 0o644)
    out = {}
    for node in profile.nodes:
        cert_path, key_path = d / f"{node.name}.pem", d / f"{node.name}.key"
        pair = None
        if cert_path.exists() and key_path.exists():
            pair = Pair(_read(cert_path, "tls.store"), _read(key_path, "tls.store"))
            if not _fits(pair, ca.cert, node, profile.tls.warn_days):
                pair = None
        if pair is None:
            try:
                pair = certs.new_node_cert(ca, node.name, node_names(node), profile.tls.valid_days)
            except CertError as exc:
                raise TLSError(f"tls.store {ca_cert_path}: {exc}") from None
            _write(key_path, pair.key, 0o600)
            _write(cert_path, pair.cert, 0o644)
        signer = ca.cert if ca.cert.endswith(b"\n") else ca.cert + b"\n"
        out[node.name] = (pair, signer + _rotating(d))
    return out


def _rotating(d: Path) -> bytes:
    """The CAs of a rotation in progress, trusted besides the signing CA (``next-ca.pem``, ``old-ca.pem``)."""
    out = b""
    for name in (NEXT_CA, OLD_CA):
        path = d / f"{name}.pem"
        if path.exists():
            pem = _read(path, f"tls.store {name}")
            out += pem if pem.endswith(b"\n") else pem + b"\n"
    return out


def _given(profile: Profile) -> dict[str, tuple[Pair, bytes]]:
    tls = profile.tls
    ca = _read(Path(tls.ca_cert), "tls.ca_cert")
    try:
        certs.load_certs(ca, f"tls.ca_cert {tls.ca_cert}")
    except CertError as exc:
        raise TLSError(str(exc)) from None
    out = {}
    for node in profile.nodes:
        cert_path = Path(tls.cert.replace("{node}", node.name))
        key_path = Path(tls.key.replace("{node}", node.name))
        pair = Pair(_read(cert_path, f"tls.cert for {node.name}"), _read(key_path, f"tls.key for {node.name}"))
        try:
            certs.load_cert(pair.cert, f"tls.cert {cert_path}")
        except CertError as exc:
            raise TLSError(str(exc)) from None
        if not certs.key_matches(pair.cert, pair.key):
            raise TLSError(f"tls.key {key_path} does not belong to the certificate {cert_path} of {node.name}; "
                           "give the key the certificate was issued for")
        out[node.name] = (pair, ca)
    return out


def load(profile: Profile) -> dict[str, NodeTLS]:
    """node name -> :class:`NodeTLS`, in profile order (generating what ``generate`` asks for).

    The bundle each node trusts is ``tls.ca_cert`` followed by every ``tls.extra_ca``.  Every node certificate
    must be signed by one CA of that bundle: otherwise its peers would refuse it, so :class:`TLSError` says so
    now (naming the node and the CA) instead of a node that cannot join later."""
    tls = profile.tls
    pairs = _generated(profile) if tls.cert == TLS_GENERATE else _given(profile)
    extra = b"".join(_read(p, "tls.extra_ca") for p in tls.extra_ca)
    if extra:
        try:
            certs.load_certs(extra, "tls.extra_ca")
        except CertError as exc:
            raise TLSError(str(exc)) from None
    out = {}
    for name, (pair, ca) in pairs.items():
        bundle = ca if ca.endswith(b"\n") else ca + b"\n"
        bundle += extra
        if not certs.signed_by(pair.cert, bundle):
            issuer = certs.load_cert(pair.cert, name).issuer.rfc4514_string()
            raise TLSError(f"the certificate of {name} (issuer {issuer}) is not signed by tls.ca_cert nor any "
                           "tls.extra_ca: its peers would refuse it; "
                           "give a certificate from that CA or add its CA to tls.extra_ca")
        for line in pair.key.decode(errors="replace").splitlines():
            if not line.startswith("-----"):
                REDACTOR.add(line)
        out[name] = NodeTLS(bundle, pair.cert, pair.key)
    return out


def expiries(profile: Profile, material: dict[str, NodeTLS] | None = None) -> dict[str, dt.datetime]:
    """node name -> the nearest end of validity among its certificate and the CAs it trusts (UTC)."""
    material = material if material is not None else load(profile)
    return {name: certs.nearest_expiry([m.cert, m.ca_bundle]) for name, m in material.items()}
