"""Every Kubernetes object of a profile, in apply order, as YAML files or one JSON list.

:func:`manifests` is pure: the same profile (and agent version) gives the same objects in the same order.
No secret value is ever in them: a secret is a ``secretKeyRef`` to the Secret ``kubernetes.secret_name``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from wizard.k8s import backup, configs, galera, redis
from wizard.k8s.topology import PART_OF, K8sError, pod_profile, secret_keys, settings
from wizard.profile import Profile
from wizard.render import RenderError

MANIFEST_GLOB = "[0-9][0-9]-*.yaml"


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


def to_yaml(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=False, width=120, default_flow_style=False)


def to_json(objs: list[dict[str, Any]]) -> str:
    return json.dumps(objs, indent=2) + "\n"


def write(profile: Profile, out: Path) -> list[Path]:
    """One YAML file per object in ``out`` (created; files of an earlier render that match
    :data:`MANIFEST_GLOB` are removed first); returns the paths.  Raises K8sError and OSError."""
    objs = manifests(profile)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(MANIFEST_GLOB):
        old.unlink()
    written = []
    for i, obj in enumerate(objs):
        path = out / file_name(i, obj)
        path.write_text(to_yaml(obj))
        written.append(path)
    return written


def secret_note(profile: Profile) -> str:
    """What to create before applying: ``kubectl create secret generic NAME --from-literal=KEY=...``."""
    keys = secret_keys(profile)
    k = settings(profile)
    if not keys:
        return f"the profile references no secret; no Secret {k.secret_name!r} is needed"
    literal = " ".join(f"--from-literal={sk.key}=..." for sk in keys)
    return (f"create the Secret first: kubectl -n {k.namespace} create secret generic {k.secret_name} {literal} "
            f"({', '.join(f'{sk.key}: {sk.setting}' for sk in keys)})")
