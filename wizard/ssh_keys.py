"""Private key files for SSH: is a key encrypted, what is its public half, load it (with a passphrase).

OpenSSH's ``ssh -i KEY`` uses an encrypted key through ssh-agent when the agent holds it, or asks for its
passphrase.  paramiko instead tries every key class on the file and reports the last class's error, so a
passphrase-protected key came out as "refused our key" (ed25519) or a connection failure (RSA PEM).  This
module says what is true before any connection is made.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import paramiko

_OPENSSH_MAGIC = b"openssh-key-v1\x00"
_ARMOR = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)-----END \1-----", re.DOTALL)


class KeyFileError(Exception):
    """A key file cannot be used as it is.  `hint` is the one line a person acts on; `encrypted` says the
    reason is a missing or wrong passphrase."""

    def __init__(self, message: str, hint: str, *, encrypted: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.encrypted = encrypted


@dataclass(frozen=True)
class KeyInfo:
    """What a private key file says without its passphrase: `encrypted`, and the public key blob
    (SSH wire format) when the file or ``<file>.pub`` holds it, else None."""

    encrypted: bool
    public_blob: bytes | None


def _string(buf: bytes, at: int) -> tuple[bytes, int]:
    (n,) = struct.unpack_from(">I", buf, at)
    start = at + 4
    if start + n > len(buf):
        raise ValueError("truncated")
    return buf[start:start + n], start + n


def _pub_file_blob(path: Path) -> bytes | None:
    try:
        fields = path.with_name(path.name + ".pub").read_text().split()
        return base64.b64decode(fields[1], validate=True)
    except (OSError, IndexError, ValueError, binascii.Error):
        return None


def key_info(path: Path) -> KeyInfo:
    """Read `path` (an OpenSSH-format or PEM private key).  Raises OSError when it cannot be read."""
    text = path.read_text(errors="replace")
    armor = _ARMOR.search(text)
    if armor is None:
        return KeyInfo(False, _pub_file_blob(path))
    label, body = armor.group(1), armor.group(2)
    if label == "OPENSSH PRIVATE KEY":
        try:
            raw = base64.b64decode("".join(body.split()), validate=True)
            if not raw.startswith(_OPENSSH_MAGIC):
                raise ValueError("bad magic")
            cipher, at = _string(raw, len(_OPENSSH_MAGIC))
            _kdf, at = _string(raw, at)
            _kdf_options, at = _string(raw, at)
            (count,) = struct.unpack_from(">I", raw, at)
            public, _ = _string(raw, at + 4) if count >= 1 else (b"", at)
        except (ValueError, binascii.Error, struct.error):
            return KeyInfo(False, _pub_file_blob(path))
        return KeyInfo(cipher != b"none", public or _pub_file_blob(path))
    encrypted = label == "ENCRYPTED PRIVATE KEY" or "Proc-Type: 4,ENCRYPTED" in body
    return KeyInfo(encrypted, _pub_file_blob(path))


def load_private_key(path: Path, passphrase: str | None = None) -> paramiko.PKey:
    """The private key at `path`, decrypted with `passphrase` when it is encrypted.

    Raises KeyFileError: encrypted and no passphrase, wrong passphrase, or not a key paramiko can use."""
    try:
        info = key_info(path)
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror or exc}",
                           f"fix ssh.key_file or the permissions of {path}") from None
    if info.encrypted and passphrase is None:
        raise KeyFileError(
            f"the key file {path} is encrypted (passphrase-protected) and no passphrase was given",
            f"load it into ssh-agent (eval $(ssh-agent); ssh-add {path}) and run studio-cluster where "
            f"SSH_AUTH_SOCK is set, or set ssh.key_passphrase to a secret reference (env:NAME, file:/path, ask)",
            encrypted=True,
        )
    try:
        password = passphrase.encode() if info.encrypted and passphrase is not None else None
        return paramiko.PKey.from_path(path, password)  # type: ignore[arg-type]  # cryptography wants bytes
    except TypeError:  # cryptography: encrypted but no password (a format key_info did not recognise)
        raise KeyFileError(
            f"the key file {path} is encrypted (passphrase-protected) and no passphrase was given",
            f"load it into ssh-agent (ssh-add {path}), or set ssh.key_passphrase (env:NAME, file:/path, ask)",
            encrypted=True,
        ) from None
    except (ValueError, paramiko.SSHException) as exc:
        if info.encrypted:
            raise KeyFileError(f"the passphrase does not decrypt the key file {path}",
                               "fix the secret ssh.key_passphrase refers to, or load the key into ssh-agent",
                               encrypted=True) from None
        raise KeyFileError(f"{path} is not a private key paramiko can use: {exc}",
                           "point ssh.key_file at an OpenSSH or PEM private key (ed25519, ecdsa or rsa)") from None


def agent_key_for(info: KeyInfo) -> paramiko.AgentKey | None:
    """The ssh-agent's key with the same public half as the key file, if an agent runs and holds it."""
    if info.public_blob is None:
        return None
    try:
        agent = paramiko.Agent()
    except paramiko.SSHException:
        return None
    for key in agent.get_keys():
        if key.asbytes() == info.public_blob:
            return key
    return None
