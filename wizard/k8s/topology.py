"""Names and addresses of the cluster in Kubernetes, and the profile as the pods see it.

The two Studio nodes' MariaDB run as the pods ``galera-0`` and ``galera-1`` of the StatefulSet ``galera``
(in profile order: ``galera-0`` is the first Studio node), garbd as the pod of the Deployment ``garbd``
with the host name ``garbd``; all three are in the headless Service ``galera``, so each has a stable DNS
name, e.g. ``galera-0.galera.studio-cluster.svc.cluster.local``.  Redis with Sentinel runs as
``redis-0..2`` of the StatefulSet ``redis``.  :func:`pod_profile` is the profile with those names as node
addresses and those Sentinels as its coordination store: what every rendered file and agent config uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from wizard.profile import KubernetesSettings, Node, Profile, k8s_size_mib

GALERA = "galera"
"""The StatefulSet of the data nodes, and the headless Service of all three Galera members."""
GARBD = "garbd"
"""The Deployment of the Arbiter, and its pod's host name."""
REDIS = "redis"
"""The StatefulSet of Redis + Sentinel, and its headless Service."""
REDIS_PODS = 3
SENTINEL_PORT = 26379
REDIS_PORT = 6379
DEFAULT_MASTER_NAME = "studio-cluster"
"""Sentinel's master name when the profile has a single Redis (``redis.url``) and so names none."""

RUN_ID = "k8s"
"""The run every pod's agent registers under: pods start on their own, not as one run of a front end."""

VOTE_LABEL = "studio-cluster.io/galera-vote"
"""On the three Galera members (both data pods and garbd): the PodDisruptionBudget counts them."""

PART_OF = "app.kubernetes.io/part-of"
COMPONENT = "app.kubernetes.io/component"


@dataclass(frozen=True)
class SecretKey:
    """One secret of the profile as the pods get it: a key of the Secret, an environment variable."""

    setting: str  # e.g. "database.sst_password"
    config_key: str  # the agent config's key, e.g. "sst_password"
    key: str  # the Secret's key, e.g. "sst-password"
    env: str  # the variable the pods see, e.g. "STUDIO_CLUSTER_SST_PASSWORD"


SECRET_KEYS = (
    SecretKey("database.sst_password", "sst_password", "sst-password", "STUDIO_CLUSTER_SST_PASSWORD"),
    SecretKey("database.admin_password", "admin_password", "admin-password", "STUDIO_CLUSTER_ADMIN_PASSWORD"),
    SecretKey("redis.password", "redis_password", "redis-password", "STUDIO_CLUSTER_REDIS_PASSWORD"),
    SecretKey("redis.sentinel_password", "redis_sentinel_password", "sentinel-password",
              "STUDIO_CLUSTER_SENTINEL_PASSWORD"),
)


class K8sError(Exception):
    """The profile cannot be rendered as manifests; the message names the setting and the fix."""


def settings(profile: Profile) -> KubernetesSettings:
    """The profile's ``kubernetes`` section, or its defaults when absent."""
    return profile.kubernetes or KubernetesSettings.model_validate({})


def secret_keys(profile: Profile) -> list[SecretKey]:
    """The secrets this profile uses (its reference is not ``none``), in :data:`SECRET_KEYS` order."""
    out = []
    for sk in SECRET_KEYS:
        section, name = sk.setting.split(".")
        ref = getattr(getattr(profile, section), name)
        if ref is not None and ref != "none":
            out.append(sk)
    return out


def service_domain(profile: Profile, service: str) -> str:
    k = settings(profile)
    return f"{service}.{k.namespace}.svc.{k.cluster_domain}"


def galera_pods(profile: Profile) -> dict[str, Node]:
    """``{"galera-0": first Studio node, "galera-1": second}``."""
    return {f"{GALERA}-{i}": n for i, n in enumerate(profile.studio_nodes)}


def pod_address(profile: Profile, node: Node) -> str:
    """The stable DNS name of the pod that runs ``node`` (a node of ``profile``, not of the pod view)."""
    if node.is_studio:
        pod = next(p for p, n in galera_pods(profile).items() if n.name == node.name)
        return f"{pod}.{service_domain(profile, GALERA)}"
    return f"{GARBD}.{service_domain(profile, GALERA)}"


def sentinels(profile: Profile) -> list[str]:
    return [f"{REDIS}-{i}.{service_domain(profile, REDIS)}:{SENTINEL_PORT}" for i in range(REDIS_PODS)]


def master_name(profile: Profile) -> str:
    return profile.redis.master_name or DEFAULT_MASTER_NAME


def validate_view(data: dict[str, Any], profile: Profile) -> Profile:
    """``data`` (a profile changed for the pods) validated; raises K8sError naming the user's settings that made
    it (the pod names come from ``kubernetes.namespace`` and ``kubernetes.cluster_domain``), never the view's."""
    try:
        return Profile.model_validate(data, context={"check_files": False})  # the pods use no SSH key
    except ValidationError as exc:
        k = settings(profile)
        why = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])
        raise K8sError(f"kubernetes.namespace {k.namespace!r} / kubernetes.cluster_domain {k.cluster_domain!r}: the "
                       f"pod names they make (e.g. {GALERA}-0.{service_domain(profile, GALERA)}) are refused ({why}); "
                       "use shorter DNS labels of lower-case letters, digits and '-'") from None


def check_sizes(profile: Profile) -> None:
    """The data volume must hold ``database.min_free_mb`` free beside the data (1 GiB more, at least): the agent's
    free-space check refuses a smaller one.  Raises K8sError."""
    k = settings(profile)
    need = profile.database.min_free_mb + 1024
    if k8s_size_mib(k.storage_size) < need:
        gib = -(-need // 1024)
        raise K8sError(f"kubernetes.storage_size {k.storage_size} is smaller than database.min_free_mb "
                       f"({profile.database.min_free_mb} MB) plus 1Gi for the data: the agent's free-space check "
                       f"would refuse the volume; set kubernetes.storage_size to {gib}Gi or more, or lower "
                       "database.min_free_mb")


def pod_profile(profile: Profile) -> Profile:
    """The profile as the pods see it: each node's address is its pod's DNS name, the coordination store is
    the Redis Sentinels of these manifests, ``services.manager`` is ``direct`` (no systemd in a container);
    everything else unchanged (``tls`` too: its files are at ``tls.remote_dir`` in the pods,
    :mod:`wizard.k8s.tls`).  Raises K8sError."""
    check_sizes(profile)
    data: dict[str, Any] = profile.model_dump(mode="json")
    for raw, node in zip(data["nodes"], profile.nodes, strict=True):
        raw["address"] = pod_address(profile, node)
    data["services"]["manager"] = "direct"  # no systemd in a pod: the agent's direct start, same argv
    r = profile.redis
    data["redis"] = {
        "sentinels": sentinels(profile), "master_name": master_name(profile), "database": r.db,
        "password": r.password, "sentinel_password": r.sentinel_password, "key_prefix": r.key_prefix,
        "failover_wait_s": r.failover_wait_s,
    }
    return validate_view(data, profile)
