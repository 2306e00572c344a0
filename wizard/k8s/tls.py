"""TLS in Kubernetes: one Secret per Galera member, mounted where the SSH path puts the files.

The rendered options are the SSH path's (:mod:`wizard.tls.options` through the same render functions): every
member reads ``tls.remote_dir``/``ca.pem``, ``cert.pem`` and ``key.pem``.  In a pod that directory is a
read-only mount of the member's own Secret, referenced by name and never inlined:

* ``<kubernetes.secret_name>-tls-galera-0``, ``-tls-galera-1`` and ``-tls-garbd``, each with the keys
  ``ca.crt`` (the CA bundle the member trusts), ``tls.crt`` (its certificate) and ``tls.key`` (its key);
* the data pods share one pod template, so their volume projects both data Secrets into ``galera-0/`` and
  ``galera-1/`` and each container mounts only its own directory (``subPathExpr: $(POD_NAME)``); the files are
  0440 and group :data:`MYSQL_GID` (the pod's ``fsGroup``), so mariadbd and the SST scripts (user mysql)
  read them, as 0640 root:mysql on a host;
* garbd (root in its container) and the scheduled backup's pod (it stands for the Arbiter) mount the
  ``garbd`` Secret with mode 0400.

:func:`write_material` makes the Secrets' files on ``k8s render --out``: with ``generate``, a CA and one
certificate per member whose subject alternative names are the member's pod DNS name
(``galera-0.galera.<namespace>.svc.<cluster_domain>``) and its node name, by :func:`wizard.tls.material.load`
into a directory of its own (0700, beside --out, never in it: that one is applied); with the operator's own
files, it checks them (key, CA, the pod names) and names them.  It returns the ``kubectl create secret``
commands.  A Secret is a subPath mount, so a changed Secret reaches a pod only when it restarts (rotation is
by hand: docs/kubernetes.md).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from wizard.k8s.topology import GARBD, K8sError, galera_pods, pod_address, pod_profile, settings
from wizard.profile import TLS_GENERATE, Node, Profile
from wizard.tls import certs, material
from wizard.tls.options import CA_FILE, CERT_FILE, KEY_FILE

VOLUME = "tls"
MYSQL_GID = 999
"""The group of mysql in the Galera image (docs/kubernetes.md's Dockerfile fixes it, as the official MariaDB
images do): the data pods' ``fsGroup``, the group of their TLS files."""
DATA_MODE = 0o440
ARBITER_MODE = 0o400
KEYS = {"ca.crt": CA_FILE, "tls.crt": CERT_FILE, "tls.key": KEY_FILE}
"""The Secret's key -> the file it becomes in ``tls.remote_dir`` (the SSH path's names)."""


def enabled(profile: Profile) -> bool:
    return bool(profile.tls.enabled)


def members(profile: Profile) -> dict[str, Node]:
    """``{"galera-0": first Studio node, "galera-1": second, "garbd": the Arbiter}``."""
    return {**galera_pods(profile), GARBD: profile.arbiter}


def secret_name(profile: Profile, member: str) -> str:
    """The Secret of one member: ``<kubernetes.secret_name>-tls-<member>``."""
    return f"{settings(profile).secret_name}-tls-{member}"


def _items(prefix: str = "") -> list[dict[str, str]]:
    return [{"key": key, "path": prefix + path} for key, path in KEYS.items()]


def galera_volume(view: Profile) -> dict[str, Any]:
    """Both data Secrets, each in a directory named after its pod, 0440 (group: the pod's fsGroup)."""
    return {"name": VOLUME, "projected": {"defaultMode": DATA_MODE, "sources": [
        {"secret": {"name": secret_name(view, pod), "items": _items(f"{pod}/")}} for pod in galera_pods(view)]}}


def galera_mount(view: Profile) -> dict[str, Any]:
    """This pod's own directory of :func:`galera_volume` at ``tls.remote_dir`` (the container has POD_NAME)."""
    return {"name": VOLUME, "mountPath": view.tls.remote_dir.as_posix(), "subPathExpr": "$(POD_NAME)",
            "readOnly": True}


def galera_security() -> dict[str, Any]:
    """The data pods' securityContext: their volumes' files get group mysql (the TLS files 0440 root:mysql);
    ``OnRootMismatch`` so a large datadir is not walked again at every start."""
    return {"fsGroup": MYSQL_GID, "fsGroupChangePolicy": "OnRootMismatch"}


def arbiter_volume(view: Profile) -> dict[str, Any]:
    return {"name": VOLUME, "secret": {"secretName": secret_name(view, GARBD), "defaultMode": ARBITER_MODE,
                                       "items": _items()}}


def arbiter_mount(view: Profile) -> dict[str, Any]:
    return {"name": VOLUME, "mountPath": view.tls.remote_dir.as_posix(), "readOnly": True}


# -- the Secrets' files ------------------------------------------------------------------------------------


def default_dir(out: Path) -> Path:
    """Where the generated material goes unless ``--tls-dir`` says: ``<out>-tls`` beside ``out``."""
    full = Path(os.path.abspath(out))
    return full.parent / f"{full.name}-tls"


def _inside(a: Path, b: Path) -> bool:
    return a == b or b in a.parents


def _private_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.chmod(0o700)
    except OSError as exc:
        raise K8sError(f"--tls-dir {path}: cannot create it 0700: {exc.strerror or exc}; choose a directory "
                       "you can write to") from None


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def _command(profile: Profile, member: str, files: dict[str, Path]) -> str:
    ns = settings(profile).namespace
    args = " ".join(f"--from-file={key}={shlex.quote(str(files[key]))}" for key in KEYS)
    return f"kubectl -n {ns} create secret generic {secret_name(profile, member)} {args}"


def _check_names(view: Profile, node: Node, pem: bytes, where: str) -> None:
    """The operator's certificate of ``node`` must name its pod (pod view address) as a DNS SAN."""
    cert = certs.load_cert(pem, where)
    try:
        san = cert.extensions.get_extension_for_class(certs.x509.SubjectAlternativeName).value
        names = {str(v) for v in san.get_values_for_type(certs.x509.DNSName)}
    except certs.x509.ExtensionNotFound:
        names = set()
    if node.address not in names:
        raise K8sError(f"tls.cert {where} (node {node.name}) does not name its pod {node.address} as a subject "
                       "alternative name (DNS): its peers and SST would connect to that name; reissue it with that "
                       "name, or use tls.ca_cert/cert/key: generate for `k8s render`")


def write_material(profile: Profile, out: Path, tls_dir: Path | None = None) -> list[str]:
    """Make or check the TLS Secrets' files and return the ``kubectl create secret generic`` commands, one per
    member (galera-0, galera-1, garbd); [] when ``tls.enabled`` is false (nothing is written).

    ``generate``: the CA and certificates go to ``tls_dir`` (default :func:`default_dir` of ``out``), created
    0700: ``ca/<cluster_name>/`` is :func:`wizard.tls.material.load`'s store (reused by the next render: the
    same CA, a certificate renewed only when it no longer fits), ``<member>/ca.crt|tls.crt|tls.key`` the
    Secrets' files (0600).  The operator's own files: checked (key, CA, the pod's DNS name) and named as
    they are; only with ``tls.extra_ca`` a CA bundle is written to ``tls_dir``.  Raises K8sError (which
    file or setting, and the fix), also when ``tls_dir`` is ``out`` or inside it (that one is applied)."""
    if not enabled(profile):
        return []
    view = pod_profile(profile)
    out_abs = Path(os.path.abspath(out))
    where = Path(os.path.abspath(tls_dir.expanduser())) if tls_dir is not None else default_dir(out)
    if _inside(where, out_abs) or _inside(out_abs, where):
        raise K8sError(f"--tls-dir {where}: the private keys would be in or around --out {out_abs}, which is "
                       "applied with kubectl; give a directory outside it (default: <out>-tls beside it)")
    generate = view.tls.cert == TLS_GENERATE
    if generate:
        view = view.model_copy(update={"tls": view.tls.model_copy(update={"store": where / "ca"})})
    if generate or view.tls.extra_ca:
        _private_dir(where)
    if generate:
        _private_dir(where / "ca")
    try:
        loaded = material.load(view)
    except (material.TLSError, certs.CertError) as exc:
        raise K8sError(str(exc)) from None
    except OSError as exc:
        raise K8sError(f"--tls-dir {where}: {exc.strerror or exc}; choose a directory you can write to") from None
    commands = []
    for member, node in members(view).items():
        mat = loaded[node.name]
        if generate:
            d = where / member
            _private_dir(d)
            files = {"ca.crt": d / "ca.crt", "tls.crt": d / "tls.crt", "tls.key": d / "tls.key"}
            try:
                for key, data in (("ca.crt", mat.ca_bundle), ("tls.crt", mat.cert), ("tls.key", mat.key)):
                    _write(files[key], data)
            except OSError as exc:
                raise K8sError(f"--tls-dir {where}: cannot write {d}: {exc.strerror or exc}; choose a directory "
                               "you can write to") from None
        else:
            cert = Path(view.tls.cert.replace("{node}", node.name)).expanduser()
            _check_names(view, node, mat.cert, str(cert))
            ca = Path(view.tls.ca_cert).expanduser()
            if view.tls.extra_ca:
                ca = where / "ca-bundle.crt"
                _write(ca, mat.ca_bundle)
            files = {"ca.crt": ca, "tls.crt": cert,
                     "tls.key": Path(view.tls.key.replace("{node}", node.name)).expanduser()}
        commands.append(_command(view, member, files))
    return commands


def pod_names(profile: Profile) -> dict[str, str]:
    """member -> the pod DNS name its certificate carries (for docs and tests)."""
    return {m: pod_address(profile, n) for m, n in members(profile).items()}

