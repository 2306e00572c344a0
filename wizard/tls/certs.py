"""Generate and check X.509 material with ``cryptography``: a CA, node certificates, expiry dates.

Everything here works on PEM bytes and returns PEM bytes; nothing touches the disk.  Keys are ECDSA P-256
(small, fast, supported by the OpenSSL 3 that Galera, MariaDB and socat link against).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
"""Validity of a generated CA, in days (10 years)."""
BACKDATE = dt.timedelta(minutes=5)
"""Certificates start this long before now, so a node whose clock is slightly behind accepts them."""


class CertError(Exception):
    """A certificate or key cannot be read or does not fit; the message names it and the fix."""


@dataclass(frozen=True)
class Pair:
    """A certificate and its private key, PEM-encoded."""

    cert: bytes
    key: bytes


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def new_ca(common_name: str, days: int = CA_DAYS) -> Pair:
    """A self-signed CA (``CA:TRUE, pathlen 0``) named ``common_name``, valid ``days`` days."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for n in dict.fromkeys(names):  # in order, once each
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            entries.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(entries)


def new_node_cert(ca: Pair, common_name: str, names: list[str], days: int) -> Pair:
    """A certificate for one node, signed by ``ca``: CN ``common_name``, every entry of ``names`` (node name,
    address: IP addresses become IP SANs) as a subject alternative name, usable as TLS server and client
    (Galera and SST connect both ways).  Raises :class:`CertError` if the CA cannot be read."""
    ca_cert, ca_key = load_cert(ca.cert, "the CA certificate"), _load_key(ca.key, "the CA key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def load_cert(pem: bytes, what: str) -> x509.Certificate:
    """The first certificate of a PEM text; :class:`CertError` naming ``what`` if there is none."""
    certs = load_certs(pem, what)
    return certs[0]


def load_certs(pem: bytes, what: str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (at least one, else :class:`CertError` naming ``what``)."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        certs = []
    if not certs:
        raise CertError(f"{what} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give a PEM file")
    return certs


def _load_key(pem: bytes, what: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise CertError(f"{what} is not an unencrypted PEM private key; give one without a passphrase") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{what} is not an ECDSA key; only the CA this tool generates can sign node certificates")
    return key


def key_matches(cert_pem: bytes, key_pem: bytes) -> bool:
    """Whether the private key belongs to the certificate (same public key)."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return False
    pub = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(load_cert(cert_pem, "the certificate").public_key().public_bytes(*pub)
                == key.public_key().public_bytes(*pub))


def signed_by(cert_pem: bytes, ca_bundle: bytes) -> bool:
    """Whether the (first) certificate of ``cert_pem`` was issued and signed by one of the CAs of the bundle."""
    cert = load_cert(cert_pem, "the certificate")
    for ca in load_certs(ca_bundle, "the CA bundle"):
        if ca.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def not_after(pem: bytes, what: str) -> dt.datetime:
    """The end of validity (UTC) of the first certificate of ``pem``."""
    return load_cert(pem, what).not_valid_after_utc


def nearest_expiry(pems: list[bytes]) -> dt.datetime:
    """The earliest end of validity among every certificate of the given PEM texts (bundles included)."""
    return min(c.not_valid_after_utc for pem in pems for c in load_certs(pem, "a certificate"))


def subject_cn(pem: bytes) -> str:
    """The common name of the (first) certificate, "" if it has none."""
    attrs = load_cert(pem, "the certificate").subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""
