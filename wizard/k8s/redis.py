"""Redis with Sentinel for the coordination: three pods ``redis-0..2``, each a Redis and a Sentinel (quorum 2),
as the profile's ``redis.sentinels`` describes on hosts.  The agents ask the Sentinels for the master
(:func:`wizard.k8s.topology.sentinels`).  Each container asks the Sentinels for the current master when it
starts (a restarted pod rejoins as a replica of whoever was promoted); with no Sentinel answering,
``redis-0`` is the first master.  The data lives in an emptyDir: it is coordination state only (registrations
with a TTL, the event stream, the bootstrap lock and fencing token).
"""

from __future__ import annotations

from typing import Any

from wizard.k8s.topology import (
    COMPONENT,
    PART_OF,
    REDIS,
    REDIS_PODS,
    REDIS_PORT,
    SENTINEL_PORT,
    master_name,
    secret_keys,
    service_domain,
    settings,
)
from wizard.profile import Profile

CONFIGMAP = "redis-config"
CONFIG_DIR = "/etc/redis-config"
QUORUM = 2
DOWN_AFTER_MS = 5000
FAILOVER_TIMEOUT_MS = 60000

REDIS_CONF = f"""# Managed by studio-cluster (k8s render): the coordination store's Redis.
port {REDIS_PORT}
bind * -::*
protected-mode no
dir /data
appendonly yes
"""

SENTINEL_CONF = f"""# Managed by studio-cluster (k8s render): the coordination store's Sentinel.
port {SENTINEL_PORT}
bind * -::*
protected-mode no
dir /sentinel
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
"""

# Shared by both scripts: $me (this pod's stable name) and $master (the Sentinels' answer, else redis-0).
FIND_MASTER = """me="$POD_NAME.{domain}"
master=""
for s in {sentinels}; do
  master=$(REDISCLI_AUTH="$STUDIO_CLUSTER_SENTINEL_PASSWORD" redis-cli --no-auth-warning -h "$s" -p {sport} \\
           sentinel get-master-addr-by-name {name} 2>/dev/null | head -n 1)
  [ -n "$master" ] && break
done
[ -n "$master" ] || master="{redis}-0.{domain}"
"""

REDIS_SH = """conf=/data/redis.conf
cp {config}/redis.conf "$conf"
echo "replica-announce-ip $me" >> "$conf"
pw="$STUDIO_CLUSTER_REDIS_PASSWORD"
[ -z "$pw" ] || printf 'requirepass "%s"\\nmasterauth "%s"\\n' "$pw" "$pw" >> "$conf"
[ "$master" = "$me" ] || echo "replicaof $master {port}" >> "$conf"
exec redis-server "$conf"
"""

SENTINEL_SH = """conf=/sentinel/sentinel.conf
{{
  cat {config}/sentinel.conf
  echo "sentinel announce-ip $me"
  echo "sentinel monitor {name} $master {port} {quorum}"
  echo "sentinel down-after-milliseconds {name} {down}"
  echo "sentinel failover-timeout {name} {failover}"
  echo "sentinel parallel-syncs {name} 1"
  pw="$STUDIO_CLUSTER_REDIS_PASSWORD"
  [ -z "$pw" ] || echo "sentinel auth-pass {name} \\"$pw\\""
  pw="$STUDIO_CLUSTER_SENTINEL_PASSWORD"
  [ -z "$pw" ] || echo "requirepass \\"$pw\\""
}} > "$conf"
exec redis-sentinel "$conf"
"""


def selector() -> dict[str, str]:
    return {PART_OF: "studio-cluster", COMPONENT: REDIS}


def scripts(view: Profile) -> dict[str, str]:
    """``redis.sh`` and ``sentinel.sh``: each finds the master, writes its config, and execs the server."""
    domain = service_domain(view, REDIS)
    find = FIND_MASTER.format(domain=domain, redis=REDIS, sport=SENTINEL_PORT, name=master_name(view),
                              sentinels=" ".join(f"{REDIS}-{i}.{domain}" for i in range(REDIS_PODS)))
    return {
        "redis.sh": find + REDIS_SH.format(config=CONFIG_DIR, port=REDIS_PORT),
        "sentinel.sh": find + SENTINEL_SH.format(config=CONFIG_DIR, name=master_name(view), port=REDIS_PORT,
                                                 quorum=QUORUM, down=DOWN_AFTER_MS, failover=FAILOVER_TIMEOUT_MS),
    }


def _env(view: Profile) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    for sk in secret_keys(view):
        if sk.config_key.startswith("redis_"):
            env.append({"name": sk.env, "valueFrom": {"secretKeyRef": {"name": settings(view).secret_name,
                                                                       "key": sk.key}}})
    return env


def objects(view: Profile, labels: dict[str, str]) -> list[dict[str, Any]]:
    """The ConfigMap, the headless Service, the StatefulSet and a budget that keeps a Sentinel quorum."""
    k = settings(view)
    meta = lambda name: {"name": name, "namespace": k.namespace, "labels": labels}  # noqa: E731
    res = {"requests": {"cpu": k.redis_cpu, "memory": k.redis_memory}, "limits": {"memory": k.redis_memory}}
    mounts = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]
    ping = 'REDISCLI_AUTH="$STUDIO_CLUSTER_REDIS_PASSWORD" redis-cli --no-auth-warning ping | grep -q PONG'
    containers = [
        {"name": "redis", "image": k.redis_image, "command": ["sh", f"{CONFIG_DIR}/redis.sh"], "env": _env(view),
         "ports": [{"name": "redis", "containerPort": REDIS_PORT}], "resources": res,
         "readinessProbe": {"exec": {"command": ["sh", "-c", ping]}, "periodSeconds": 2},
         "volumeMounts": [*mounts, {"name": "data", "mountPath": "/data"}]},
        {"name": "sentinel", "image": k.redis_image, "command": ["sh", f"{CONFIG_DIR}/sentinel.sh"],
         "env": _env(view), "ports": [{"name": "sentinel", "containerPort": SENTINEL_PORT}], "resources": res,
         "volumeMounts": [*mounts, {"name": "sentinel", "mountPath": "/sentinel"}]},
    ]
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(CONFIGMAP),
         "data": {"redis.conf": REDIS_CONF, "sentinel.conf": SENTINEL_CONF, **scripts(view)}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta(REDIS),
         "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": selector(),
                  "ports": [{"name": "redis", "port": REDIS_PORT}, {"name": "sentinel", "port": SENTINEL_PORT}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(REDIS),
         "spec": {"minAvailable": QUORUM, "selector": {"matchLabels": selector()}}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta(REDIS),
         "spec": {
             "serviceName": REDIS, "replicas": REDIS_PODS, "podManagementPolicy": "Parallel",
             "selector": {"matchLabels": selector()},
             "template": {
                 "metadata": {"labels": {**labels, **selector()}},
                 "spec": {
                     "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                         {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": selector()},
                                                             "topologyKey": "kubernetes.io/hostname"}}]}},
                     "containers": containers,
                     "volumes": [{"name": "config", "configMap": {"name": CONFIGMAP}},
                                 {"name": "data", "emptyDir": {}}, {"name": "sentinel", "emptyDir": {}}],
                 },
             },
         }},
    ]
