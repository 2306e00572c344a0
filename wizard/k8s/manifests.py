"""Every Kubernetes object of a profile, in apply order, as YAML files or one JSON list.

:func:`manifests` is pure: the same profile (and agent version) gives the same objects in the same order.
No secret value is ever in them: a secret is a ``secretKeyRef`` to the Secret ``kubernetes.secret_name``, and
with ``tls.enabled`` each Galera member mounts its TLS Secret by name (:mod:`wizard.k8s.tls`).
"""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wizard.k8s import backup, configs, galera, redis
from wizard.k8s.topology import PART_OF, K8sError, pod_profile, secret_keys, settings
from wizard.profile import Profile
from wizard.render import RenderError


def manifests(profile: Profile) -> list[dict[str, Any]]:
    """The Namespace, ConfigMaps, Services, PodDisruptionBudgets, Redis StatefulSet, Galera StatefulSet and
    garbd Deployment, then with ``backups.schedule`` the backup CronJob and its volume (:mod:`wizard.k8s.backup`),
    each a dict as ``kubectl apply`` reads it.  Raises K8sError (what to change)."""
    view = pod_profile(profile)
    labels = {PART_OF: "studio-cluster", "app.kubernetes.io/instance": view.cluster_name}
    ns = settings(view).namespace
    try:
        maps = configs.configmaps(view, labels)
    except RenderError as exc:
        raise K8sError(str(exc)) from None
    red = redis.objects(view, labels)
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}},
        *maps, red[0],
        *galera.services(view, labels), red[1],
        galera.disruption_budget(view, labels), red[2],
        red[3],
        galera.galera_statefulset(view, labels),
        galera.garbd_deployment(view, labels),
        *backup.objects(view, labels),
    ]


def file_name(index: int, obj: dict[str, Any]) -> str:
    """``NN-kind-name.yaml``: ``kubectl apply -f DIR`` reads a directory in name order, the Namespace first."""
    return f"{index:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


class _PlainDumper(yaml.SafeDumper):
    """Plain expanded YAML: an object used twice (a label map, a selector) is written out twice, never as an
    anchor and alias (``&id001`` / ``*id001``), which some tools and readers do not expect."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(obj: dict[str, Any]) -> str:
    return yaml.dump(obj, Dumper=_PlainDumper, sort_keys=False, width=120, default_flow_style=False)


def to_json(objs: list[dict[str, Any]]) -> str:
    """One ``v1`` ``List`` of the objects: ``k8s render --json | kubectl apply --server-side -f -`` reads it."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}, indent=2) + "\n"


MARKER = "# Rendered by `studio-cluster k8s render`: the next render into this directory replaces or removes this file."
"""The first line of every file :func:`write` writes; a file without it is never replaced or removed."""
INDEX = ".studio-cluster-k8s-render"
"""In the output directory: the names of the files the last render wrote, one a line (no .yaml/.json suffix,
so ``kubectl apply -f DIR`` does not read it)."""


@dataclass(frozen=True)
class Written:
    """What :func:`write` did: the files it wrote, and those of an earlier render it removed (no longer rendered)."""

    written: list[Path]
    removed: list[Path]


def _ours(path: Path) -> bool:
    """``path`` is a file a render wrote (its first line is :data:`MARKER`)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            return fh.readline().rstrip("\n") == MARKER
    except OSError:
        return False


def _os_error(out: Path, what: str, exc: OSError) -> K8sError:
    """K8sError for --out: what failed, on which path, why, and what to do."""
    fixes = {
        errno.EACCES: "choose a directory you can write to (or fix its permissions)",
        errno.EPERM: "choose a directory you can write to (or fix its permissions)",
        errno.EROFS: "the file system is read-only: choose another directory",
        errno.ENOTDIR: "a part of that path is a file, not a directory: choose another --out",
        errno.EEXIST: "a file is in the way: choose another --out, or move that file",
        errno.EISDIR: "a directory is where a manifest file goes: remove or rename it, or choose another --out",
        errno.ENOENT: "a parent directory cannot be created there: choose another --out",
        errno.ENOSPC: "the disk is full: free space or choose another --out",
    }
    fix = fixes.get(exc.errno or 0, "choose another --out")
    where = exc.filename or out
    return K8sError(f"--out {out}: cannot {what} {where}: {exc.strerror or exc}; {fix}")


def write(profile: Profile, out: Path) -> Written:
    """One YAML file per object in ``out`` (created with its parents), each starting with :data:`MARKER`; the
    names go to :data:`INDEX`.  Of an earlier render's files (those :data:`INDEX` lists and that still start with
    the marker) the ones not rendered now are removed.  A file there this did not write is never removed nor
    overwritten (K8sError names it).  Renders first: a profile error leaves ``out`` as it was.  Raises K8sError
    (the profile, or --out: which path, why, the fix)."""
    objs = manifests(profile)
    names = [file_name(i, obj) for i, obj in enumerate(objs)]
    if out.exists() and not out.is_dir():
        raise K8sError(f"--out {out} is a file, not a directory: give a directory (it is created if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _os_error(out, "create the directory", exc) from None
    for name in names:
        target = out / name
        if target.is_dir():
            raise K8sError(f"--out {out}: {target} is a directory where a manifest file goes: remove or rename it, "
                           "or choose another --out")
        if target.exists() and not _ours(target):
            raise K8sError(f"--out {out}: {target} exists and was not written by `k8s render` (its first line is not "
                           "the render's marker): move it away, or choose an empty --out")
    try:
        earlier = (out / INDEX).read_text().split()
    except FileNotFoundError:
        earlier = []
    except OSError as exc:
        raise _os_error(out, "read", exc) from None
    written: list[Path] = []
    try:
        for name, obj in zip(names, objs, strict=True):
            path = out / name
            path.write_text(MARKER + "\n" + to_yaml(obj))
            written.append(path)
        removed = []
        for name in earlier:
            old = out / Path(name).name
            if name not in names and old.is_file() and _ours(old):
                old.unlink()
                removed.append(old)
        (out / INDEX).write_text("".join(n + "\n" for n in names))
    except OSError as exc:
        raise _os_error(out, "write", exc) from None
    return Written(written, removed)


def next_steps(profile: Profile, source: str, tls_commands: list[str] | None = None) -> list[str]:
    """The commands to run after a render, in order: create the namespace (the Secret must exist in it before
    the pods start), create the Secret the manifests reference (one ``--from-literal`` per secret the profile
    uses, each line saying which setting it is), the TLS Secrets (``tls_commands``, from
    :func:`wizard.k8s.tls.write_material`), then ``kubectl apply --server-side -f SOURCE``."""
    keys = secret_keys(profile)
    k = settings(profile)
    steps = [f"kubectl create namespace {k.namespace}"]
    if keys:
        literal = " ".join(f"--from-literal={sk.key}=..." for sk in keys)
        steps.append(f"kubectl -n {k.namespace} create secret generic {k.secret_name} {literal}")
        steps.append("    (" + ", ".join(f"{sk.key}: the value of {sk.setting}" for sk in keys) + ")")
    else:
        steps.append(f"    (the profile references no secret: no Secret {k.secret_name!r} is needed)")
    if tls_commands:
        steps.extend(tls_commands)
        steps.append("    (the TLS Secrets, one per Galera member; their files are private keys: keep that "
                     "directory, it is reused by the next render, and never apply it)")
    steps.append(f"kubectl apply --server-side -f {source}")
    return steps
