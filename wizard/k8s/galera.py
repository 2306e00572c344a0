"""The Galera members: the data nodes' StatefulSet, garbd's Deployment, their Services and the budget.

Safety rules carried over from the hosts:

* every start of a data node's mariadbd goes through the agent's election (:mod:`wizard.agent.k8s_pod`):
  the init container ``agent`` decides, the server container runs the decision once (a restart of that
  container alone asks the agent again, since init containers do not re-run);
* no two of the three votes on one Kubernetes node (required pod anti-affinity on
  ``kubernetes.io/hostname`` over the three members), and no voluntary eviction of a second vote (a
  PodDisruptionBudget over the three: ``minAvailable: 2``);
* a pod is ready, and in the client Service, only while the agent's health endpoint (``dns.health_port``)
  answers 200: Primary and Synced, as on the hosts;
* garbd starts only once both data nodes are Primary and Synced, with a fresh identity, and its liveness
  fails only when Redis answers and the data agents' election says a data node bootstraps (it must not hold a
  Primary of its own); a Redis outage does not restart it.
"""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath
from typing import Any

from wizard.agent.serverargs import garbd_log, parse_shell_vars
from wizard.agent_bundle import agent_argv, pod_agent_digest
from wizard.k8s import configs
from wizard.k8s import tls as k8s_tls
from wizard.k8s.topology import (
    COMPONENT,
    GALERA,
    GARBD,
    PART_OF,
    VOTE_LABEL,
    secret_keys,
    settings,
)
from wizard.profile import Profile

HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"
TERMINATION_GRACE_S = 300
"""A clean mariadbd shutdown (so the last node out is safe_to_bootstrap) before the kubelet kills it."""
DATA_SUBPATH = "mysql"
"""The datadir is a directory of the volume, not its root: a file system's own ``lost+found`` would look
like a database of this node's own to the election."""
SIDECAR_CPU, SIDECAR_MEMORY = "50m", "128Mi"
LIVENESS_TIMEOUT_S = 10
"""garbd's liveness probe's ``timeoutSeconds``: the agent's Redis read gives up well before
(:data:`wizard.agent.k8s_pod.LIVE_REDIS_BUDGET_S`), and an unreachable Redis passes."""

INIT_SCRIPT = 'exec "$@" < "{config}/$POD_NAME.json"'
"""Runs the agent command given as arguments with this pod's config on stdin."""

SERVER_SCRIPT = """f={argv_file}
if [ ! -s "$f" ]; then
  echo "the server container restarted alone: the agent decides again" >&2
  "$@" < "{config}/$POD_NAME.json" || exit 1
fi
a=$(cat "$f")
rm -f "$f"
eval "exec $a"
"""
"""The server container: mariadbd's command line as the agent handed it over, used once."""

GARBD_SCRIPT = """{wait} < {config} || exit 1
ln -sf /dev/stdout {log} || exit 1
exec "$@"
"""
"""garbd's container: the agent's wait for both data nodes, then garbd's own command line (the arguments).  Its
``--log FILE`` (the SSH path's, from /etc/default/garb) is made a link to the container's stdout first, so
``kubectl logs deploy/garbd`` shows garbd's log (the nginx images' way)."""


def selector(component: str) -> dict[str, str]:
    return {PART_OF: "studio-cluster", COMPONENT: component}


def _meta(view: Profile, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": settings(view).namespace, "labels": labels}


def _env(view: Profile, keys: list[str] | None = None) -> list[dict[str, Any]]:
    """POD_NAME, and each secret the profile uses from the Secret, by name (``keys``: only these config keys)."""
    env: list[dict[str, Any]] = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    for sk in secret_keys(view):
        if keys is None or sk.config_key in keys:
            env.append({"name": sk.env, "valueFrom": {"secretKeyRef": {"name": settings(view).secret_name,
                                                                       "key": sk.key}}})
    return env


def _resources(cpu: str, memory: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}


def anti_affinity() -> dict[str, Any]:
    """No two Galera votes on one Kubernetes node (required, not preferred)."""
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {VOTE_LABEL: "true"}}, "topologyKey": HOSTNAME_TOPOLOGY}]}}


def agent_command(command: str) -> list[str]:
    """``sh -c INIT_SCRIPT sh python3 AGENT COMMAND``: the agent's command line (:func:`agent_argv`, as the
    coordinator runs it over SSH) with this pod's config on stdin."""
    return ["sh", "-c", INIT_SCRIPT.format(config=configs.CONFIG_DIR), "sh", *agent_argv(configs.AGENT, command)]


def galera_statefulset(view: Profile, labels: dict[str, str]) -> dict[str, Any]:
    k = settings(view)
    db, dns = view.database, view.dns
    data_dir = db.data_dir.as_posix()
    run_dir = view.services.run_dir.as_posix()
    socket_dir = PurePosixPath(db.socket.as_posix()).parent.as_posix()
    cnf = {"name": "galera-cnf", "mountPath": db.config_file.as_posix(), "subPath": configs.CNF_FILE}
    common = [
        {"name": "data", "mountPath": data_dir, "subPath": DATA_SUBPATH},
        {"name": "run", "mountPath": run_dir},
        {"name": "mysqld-run", "mountPath": socket_dir},
        {"name": "agent", "mountPath": configs.AGENT_DIR.as_posix(), "readOnly": True},
        {"name": "config", "mountPath": configs.CONFIG_DIR.as_posix(), "readOnly": True},
    ]
    sst_script = {"name": "sst-script", "mountPath": f"/usr/bin/{configs.SST_SCRIPT_KEY}",
                  "subPath": configs.SST_SCRIPT_KEY, "readOnly": True}
    ports = [{"name": "mysql", "containerPort": db.port}, {"name": "galera", "containerPort": db.galera_port},
             {"name": "ist", "containerPort": db.ist_port}, {"name": "sst", "containerPort": db.sst_port},
             {"name": "health", "containerPort": dns.health_port}]
    server_script = SERVER_SCRIPT.format(argv_file=configs.argv_file(view), config=configs.CONFIG_DIR)
    pod_labels = {**labels, **selector(GALERA), VOTE_LABEL: "true"}
    # With TLS: this pod's own Secret at tls.remote_dir, where the SSH path's options name the files; for
    # mariadbd (and its SST scripts) and for the agent's recovery before it (mariadbd --wsrep-recover reads them).
    tls = [k8s_tls.galera_mount(view)] if k8s_tls.enabled(view) else []
    init = [
        {"name": "config", "image": k.galera_image, "command": agent_command("k8s-config"),
         "env": _env(view), "volumeMounts": [
             *common, {"name": "galera-cnf", "mountPath": configs.CNF_DIR.as_posix()}]},
        {"name": "agent", "image": k.galera_image, "command": agent_command("k8s-handover"),
         "env": _env(view), "volumeMounts": [*common, cnf, *tls]},
    ]
    containers = [
        {"name": "mariadb", "image": k.galera_image,
         "command": ["sh", "-c", server_script, "sh", *agent_argv(configs.AGENT, "k8s-handover")],
         "env": _env(view), "ports": ports,
         "readinessProbe": {"httpGet": {"path": "/", "port": "health"}, "periodSeconds": dns.health_interval,
                            "timeoutSeconds": 2, "failureThreshold": 3},
         "resources": _resources(k.galera_cpu, k.galera_memory),
         "volumeMounts": [*common, cnf, sst_script, *tls]},
        {"name": "health", "image": k.galera_image, "command": agent_command("k8s-sidecar"),
         "env": _env(view), "resources": _resources(SIDECAR_CPU, SIDECAR_MEMORY),
         "volumeMounts": [*common, cnf]},
    ]
    claim: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": k.storage_size}}}
    if k.storage_class:
        claim["storageClassName"] = k.storage_class
    pod_spec: dict[str, Any] = {
        "shareProcessNamespace": True,  # the health sidecar's agent sees mariadbd, as on a host
        "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
        "affinity": anti_affinity(),
        "initContainers": init, "containers": containers,
        "volumes": [
            {"name": "agent", "configMap": {"name": configs.AGENT_CONFIGMAP}},
            {"name": "config", "configMap": {"name": configs.GALERA_CONFIGMAP}},
            {"name": "sst-script", "configMap": {"name": configs.GALERA_CONFIGMAP, "items": [
                {"key": configs.SST_SCRIPT_KEY, "path": configs.SST_SCRIPT_KEY, "mode": 0o755}]}},
            {"name": "galera-cnf", "emptyDir": {}},
            {"name": "run", "emptyDir": {}},
            {"name": "mysqld-run", "emptyDir": {}},
        ],
    }
    if tls:
        pod_spec["securityContext"] = k8s_tls.galera_security()
        pod_spec["volumes"].append(k8s_tls.galera_volume(view))
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _meta(view, GALERA, labels),
        "spec": {
            "serviceName": GALERA, "replicas": len(view.studio_nodes),
            # Parallel: every data pod's agent must register before the election can decide (OrderedReady
            # would wait for galera-0 to be ready, which waits for galera-1 to register: a deadlock).
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": selector(GALERA)},
            "template": {
                "metadata": {"labels": pod_labels,
                             "annotations": {"studio-cluster.io/agent-digest": pod_agent_digest()[:16]}},
                "spec": pod_spec,
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": claim}],
        },
    }


def garbd_deployment(view: Profile, labels: dict[str, str]) -> dict[str, Any]:
    k = settings(view)
    env = parse_shell_vars(configs.garb_file(view).content)
    work_dir = env.get("WORK_DIR") or "/var/lib/garbd"
    log_dir = PurePosixPath(garbd_log(env)).parent.as_posix()
    garbd_cfg = f"{configs.CONFIG_DIR}/{configs.GARBD_JSON}"
    wait = shlex.join(agent_argv(configs.AGENT, "k8s-arbiter-wait"))
    live = ["sh", "-c", f'exec "$@" < {garbd_cfg}', "sh", *agent_argv(configs.AGENT, "k8s-arbiter-live")]
    script = GARBD_SCRIPT.format(wait=wait, config=garbd_cfg, log=shlex.quote(garbd_log(env)))
    container: dict[str, Any] = {
        "name": "garbd", "image": k.garbd_image,
        "command": ["sh", "-c", script, "sh", *configs.garbd_command(view)],
        "env": _env(view, ["redis_password", "redis_sentinel_password"]),
        "ports": [{"name": "galera", "containerPort": view.database.galera_port}],
        "readinessProbe": {"tcpSocket": {"port": "galera"}, "periodSeconds": 2},
        "livenessProbe": {"exec": {"command": live}, "periodSeconds": 5, "timeoutSeconds": LIVENESS_TIMEOUT_S,
                          "failureThreshold": 1},
        "resources": _resources(k.garbd_cpu, k.garbd_memory),
        "volumeMounts": [
            {"name": "agent", "mountPath": configs.AGENT_DIR.as_posix(), "readOnly": True},
            {"name": "config", "mountPath": configs.CONFIG_DIR.as_posix(), "readOnly": True},
            {"name": "config", "mountPath": "/etc/default/garb", "subPath": configs.GARB_KEY, "readOnly": True},
            {"name": "work", "mountPath": work_dir},
            {"name": "log", "mountPath": log_dir},
            {"name": "run", "mountPath": view.services.run_dir.as_posix()},
        ],
    }
    volumes: list[dict[str, Any]] = [
        {"name": "agent", "configMap": {"name": configs.AGENT_CONFIGMAP}},
        {"name": "config", "configMap": {"name": configs.GARBD_CONFIGMAP}},
        {"name": "work", "emptyDir": {}},
        {"name": "log", "emptyDir": {}},
        {"name": "run", "emptyDir": {}},
    ]
    if k8s_tls.enabled(view):  # its own Secret at tls.remote_dir, 0400 (garbd runs as root in its container)
        container["volumeMounts"].append(k8s_tls.arbiter_mount(view))
        volumes.append(k8s_tls.arbiter_volume(view))
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(view, GARBD, labels),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # never two garbd at once: a second one would be a fourth member
            "selector": {"matchLabels": selector(GARBD)},
            "template": {
                # No agent digest here (the data pods have one): a new agent rolls the data pods one at a time,
                # and a garbd restarted with them would take a second vote away at once.
                "metadata": {"labels": {**labels, **selector(GARBD), VOTE_LABEL: "true"}},
                "spec": {
                    "hostname": GARBD, "subdomain": GALERA,  # garbd.galera.<namespace>.svc: a stable name
                    "affinity": anti_affinity(),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def services(view: Profile, labels: dict[str, str]) -> list[dict[str, Any]]:
    """``galera``: headless, every member's stable name, published before it is ready (peers must find a
    joining node); ``galera-client``: the MariaDB port of the ready (Primary and Synced) data pods."""
    db, dns = view.database, view.dns
    ports = [{"name": "mysql", "port": db.port}, {"name": "galera", "port": db.galera_port},
             {"name": "ist", "port": db.ist_port}, {"name": "sst", "port": db.sst_port},
             {"name": "health", "port": dns.health_port}]
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(view, GALERA, labels),
         "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                  "selector": {PART_OF: "studio-cluster", VOTE_LABEL: "true"}, "ports": ports}},
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(view, f"{GALERA}-client", labels),
         "spec": {"type": "ClusterIP", "selector": selector(GALERA),
                  "ports": [{"name": "mysql", "port": db.port, "targetPort": "mysql"}]}},
    ]


def disruption_budget(view: Profile, labels: dict[str, str]) -> dict[str, Any]:
    """At least two of the three votes stay: a voluntary eviction (a drain) never takes the second.  An
    integer ``minAvailable`` is what a budget over pods of two controllers (StatefulSet + Deployment) allows."""
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(view, "galera-votes", labels),
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {PART_OF: "studio-cluster", VOTE_LABEL: "true"}}}}
