"""Scheduled Arbiter backups in Kubernetes: rendered only when the profile sets ``backups.schedule``.

On a host the Arbiter's agent installs a timer that runs ``agent backup-scheduled`` (the receiver, a second
garbd asking a donor for a ``studio_backup`` SST, then the retention policy: :mod:`wizard.agent.backup_job`).
Here a CronJob runs that same command in a pod of its own, ``backup.galera-backup.<namespace>.svc``: it
stands for the Arbiter host, so its job description is :func:`wizard.backups.schedule.job_config` of the pod
view with the Arbiter's address set to that name (the donor streams there).  The backups live on the
PersistentVolumeClaim ``galera-backups`` (:func:`backup_size`)
mounted at ``backups.root``; one job at a time (``Forbid``), at ``backups.schedule`` in
``kubernetes.backup_time_zone`` (UTC unless set: the CronJob's ``timeZone``).
"""

from __future__ import annotations

import json
from typing import Any

from wizard.agent_bundle import agent_argv
from wizard.backups.schedule import job_config
from wizard.k8s import configs
from wizard.k8s import tls as k8s_tls
from wizard.k8s.topology import COMPONENT, PART_OF, service_domain, settings, validate_view
from wizard.profile import Profile, k8s_size_mib

NAME = "galera-backup"
"""The CronJob, its ConfigMap and its headless Service (the backup pod's DNS subdomain)."""
HOSTNAME = "backup"
CLAIM = "galera-backups"
JOB_KEY = "backup-job.json"
UNPACKED = "/run/studio-cluster/agent"
"""The backup job runs the receiver as a file of the agent (``receiver.py``): the bundle is unpacked first,
as the SSH path unpacks it on a host."""

SCRIPT = """python3 -m zipfile -e {pyz} {unpacked} || exit 1
exec "$@" < {config}/{job}
"""


def selector() -> dict[str, str]:
    return {PART_OF: "studio-cluster", COMPONENT: "backup"}


def backup_size(view: Profile) -> str:
    """The backups' volume: ``kubernetes.backup_storage_size``, else the data volume's size times
    ``backups.keep_last + 1`` (the full backups kept, and the one being taken; each at most a datadir)."""
    k = settings(view)
    if k.backup_storage_size:
        return k.backup_storage_size
    mib = k8s_size_mib(k.storage_size) * (view.backups.keep_last + 1)
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def backup_view(view: Profile) -> Profile:
    """The pod view with the Arbiter's address set to the backup pod's stable name."""
    data = view.model_dump(mode="json")
    for raw in data["nodes"]:
        if raw["role"] == "arbiter":
            raw["address"] = f"{HOSTNAME}.{service_domain(view, NAME)}"
    return validate_view(data, view)


def objects(view: Profile, labels: dict[str, str]) -> list[dict[str, Any]]:
    """ConfigMap (the job), headless Service, PersistentVolumeClaim and CronJob; [] without a schedule."""
    job = job_config(backup_view(view))
    if job is None:
        return []
    k = settings(view)
    b = view.backups
    meta = lambda name: {"name": name, "namespace": k.namespace, "labels": labels}  # noqa: E731
    claim: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": backup_size(view)}}}
    if k.storage_class:
        claim["storageClassName"] = k.storage_class
    script = SCRIPT.format(pyz=configs.AGENT, unpacked=UNPACKED, config=configs.CONFIG_DIR, job=JOB_KEY)
    container: dict[str, Any] = {
        "name": "backup", "image": k.garbd_image,
        "command": ["sh", "-c", script, "sh", *agent_argv(UNPACKED, "backup-scheduled")],
        "ports": [{"name": "receiver", "containerPort": b.receiver_port},
                  {"name": "galera", "containerPort": b.garbd_port}],
        "resources": {"requests": {"cpu": k.garbd_cpu, "memory": k.garbd_memory},
                      "limits": {"memory": k.garbd_memory}},
        "volumeMounts": [
            {"name": "agent", "mountPath": configs.AGENT_DIR.as_posix(), "readOnly": True},
            {"name": "config", "mountPath": configs.CONFIG_DIR.as_posix(), "readOnly": True},
            {"name": "backups", "mountPath": b.root.as_posix()},
            {"name": "run", "mountPath": "/run/studio-cluster"},
        ],
    }
    pod: dict[str, Any] = {
        "metadata": {"labels": {**labels, **selector()}},
        "spec": {
            "restartPolicy": "Never", "hostname": HOSTNAME, "subdomain": NAME,
            "containers": [container],
            "volumes": [
                {"name": "agent", "configMap": {"name": configs.AGENT_CONFIGMAP}},
                {"name": "config", "configMap": {"name": NAME}},
                {"name": "backups", "persistentVolumeClaim": {"claimName": CLAIM}},
                {"name": "run", "emptyDir": {}},
            ],
        },
    }
    if k8s_tls.enabled(view):  # its garbd joins with the Arbiter's certificate (it stands for the Arbiter)
        container["volumeMounts"].append(k8s_tls.arbiter_mount(view))
        pod["spec"]["volumes"].append(k8s_tls.arbiter_volume(view))
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(NAME),
         "data": {JOB_KEY: json.dumps(job, indent=2, sort_keys=True) + "\n"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta(NAME),
         "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": selector(),
                  "ports": [{"name": "receiver", "port": b.receiver_port}, {"name": "galera", "port": b.garbd_port}]}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(CLAIM), "spec": claim},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta(NAME),
         "spec": {
             "schedule": job["cron"], "timeZone": k.backup_time_zone, "concurrencyPolicy": "Forbid",
             "startingDeadlineSeconds": 600,
             "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
             "jobTemplate": {"spec": {"backoffLimit": 0, "activeDeadlineSeconds": b.timeout_s + 600,
                                      "template": pod}},
         }},
    ]
