"""The ConfigMaps: the SSH path's own files and agent config for each pod, and the agent bundle.

* ``galera-config``: per data pod ``galera-N.cnf`` (the Galera config, :func:`wizard.render`'s function
  and template ``galera.cnf.j2`` on :func:`~wizard.k8s.topology.pod_profile`, rendered without secrets: the
  SST password is the placeholder ``<sst_password>``, which the pod's ``k8s-config`` step fills from the
  Secret) and ``galera-N.json`` (:func:`wizard.coordinator.agent_config` for that node, no secret in it),
  plus the donor script of Arbiter backups ``wsrep_sst_studio_backup``;
* ``garbd-config``: ``garb`` (``/etc/default/garb`` from ``garb.j2``) and ``garbd.json``;
* ``studio-cluster-agent``: the node agent zipapp (:func:`wizard.agent_bundle.build_agent_sources`: only the
  parts of redis-py the agent imports, so the object stays under client-side `kubectl apply`'s 256 KiB
  annotation).

``render()`` as a whole cannot run on the pod view (the authoring DNS record needs IP addresses, and
there is no PowerDNS record in Kubernetes), so this calls the per-file functions it is made of.
"""

from __future__ import annotations

import base64
import json
from pathlib import PurePosixPath
from typing import Any

from wizard import render
from wizard.agent.serverargs import garbd_argv, parse_shell_vars
from wizard.agent_bundle import build_agent_sources, pod_agent_digest
from wizard.coordinator import agent_config
from wizard.k8s.topology import GARBD, RUN_ID, galera_pods, secret_keys
from wizard.profile import Node, Profile
from wizard.secrets import Secrets

AGENT_CONFIGMAP = "studio-cluster-agent"
GALERA_CONFIGMAP = "galera-config"
GARBD_CONFIGMAP = "garbd-config"
AGENT_DIR = PurePosixPath("/opt/studio-cluster")
AGENT_FILE = "agent.pyz"
AGENT = str(AGENT_DIR / AGENT_FILE)
CONFIG_DIR = PurePosixPath("/etc/studio-cluster/config")
"""Where a pod mounts its ConfigMap (``galera-config`` or ``garbd-config``)."""
CNF_DIR = PurePosixPath("/etc/studio-cluster/galera")
"""An emptyDir: ``k8s-config`` writes the Galera config with its secret here (``galera.cnf``)."""
CNF_FILE = "galera.cnf"
SST_SCRIPT_KEY = "wsrep_sst_studio_backup"
GARB_KEY = "garb"
GARBD_JSON = f"{GARBD}.json"

NO_SECRETS = Secrets(None, None, None, None)
POD_TIMEOUTS = {"wait_timeout": 600.0}
"""How long a pod's agent waits for the other data node to register (seconds): pods start when they are
scheduled and their images pulled, not together as the agents of one run over SSH do (60 s there)."""


def argv_file(view: Profile) -> str:
    """The file the init container hands mariadbd's command line over in (in the run dir, an emptyDir)."""
    return f"{view.services.run_dir.as_posix()}/k8s/mariadbd.argv"


def pod_agent_config(view: Profile, node: Node) -> dict[str, Any]:
    """What a pod's agent reads on stdin: the SSH path's :func:`~wizard.coordinator.agent_config` for the
    same node of the pod view, without secrets, under the run :data:`~wizard.k8s.topology.RUN_ID`, with
    :data:`POD_TIMEOUTS`, plus
    ``k8s``: where its files are and which environment variable holds each secret."""
    cfg = agent_config(view, NO_SECRETS, node, run_id=RUN_ID, timeouts=POD_TIMEOUTS)
    keys = secret_keys(view)
    if not node.is_studio:
        keys = [k for k in keys if k.config_key.startswith("redis_")]
    k8s: dict[str, Any] = {"secret_env": {k.config_key: k.env for k in keys}}
    if node.is_studio:
        pod = next(p for p, n in galera_pods(view).items() if n.name == node.name)
        k8s.update(cnf_in=f"{CONFIG_DIR}/{pod}.cnf", cnf_out=f"{CNF_DIR}/{CNF_FILE}", argv_file=argv_file(view),
                   placeholders={render.placeholder(name): name for name in render.SECRET_NAMES})
    cfg["k8s"] = k8s
    return cfg


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def galera_cnf(view: Profile, node: Node) -> render.RenderedFile:
    """The SSH path's Galera config for ``node`` of the pod view, placeholders where secrets go."""
    return render._galera_cnf(view, node, None)


def garb_file(view: Profile) -> render.RenderedFile:
    return render._garb(view)


def garbd_command(view: Profile) -> list[str]:
    """garbd's command line: the SSH path's direct start (:func:`wizard.agent.serverargs.garbd_argv`) on
    the rendered /etc/default/garb."""
    return garbd_argv(view.services.garbd.as_posix(), parse_shell_vars(garb_file(view).content), view.cluster_name)


def _configmap(view: Profile, name: str, labels: dict[str, str], data: dict[str, str] | None = None,
               binary: dict[str, bytes] | None = None) -> dict[str, Any]:
    ns = view.kubernetes.namespace if view.kubernetes else "studio-cluster"
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": name, "namespace": ns, "labels": labels}}
    if data is not None:
        obj["data"] = data
    if binary is not None:
        obj["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
    return obj


def configmaps(view: Profile, labels: dict[str, str]) -> list[dict[str, Any]]:
    """The agent bundle, ``galera-config`` and ``garbd-config`` (see the module docstring)."""
    galera: dict[str, str] = {}
    for pod, node in galera_pods(view).items():
        galera[f"{pod}.cnf"] = galera_cnf(view, node).content
        galera[f"{pod}.json"] = _json(pod_agent_config(view, node))
    galera[SST_SCRIPT_KEY] = render._backup_sst_script(view).content
    garbd = {GARB_KEY: garb_file(view).content, GARBD_JSON: _json(pod_agent_config(view, view.arbiter))}
    agent_labels = {**labels, "studio-cluster.io/agent-digest": pod_agent_digest()[:16]}
    return [
        _configmap(view, AGENT_CONFIGMAP, agent_labels, binary={AGENT_FILE: build_agent_sources()}),
        _configmap(view, GALERA_CONFIGMAP, labels, data=galera),
        _configmap(view, GARBD_CONFIGMAP, labels, data=garbd),
    ]
