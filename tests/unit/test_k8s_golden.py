"""Golden files of `studio-cluster k8s render profiles/example.yaml`: tests/unit/data/k8s/example/*.yaml.

The example as it is, TLS on: the manifests name each member's TLS Secret and mount it; no TLS material is in
them (it is made beside --out, never in the manifests: test_k8s_tls).

Regenerate after an intended change, then review the diff before committing it:

    STUDIO_CLUSTER_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_k8s_golden.py

Three things are replaced by markers before the comparison, because other code owns them and
tests/unit/test_k8s_parity.py checks each against its source instead: the agent zipapp and its digest (they
change with any edit of wizard/agent), and the values of ``galera-config`` and ``garbd-config`` (the SSH
path's templates and agent config, exactly as ``render``/``agent_config`` give them for the pod view).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from tests.unit.k8s_example import EXAMPLE, example_profile
from wizard.k8s import configs
from wizard.k8s.manifests import file_name, manifests, to_yaml
from wizard.profile import validate_profile

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "data" / "k8s" / "example"
DIGEST = "studio-cluster.io/agent-digest"


def normalized(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    name = obj["metadata"]["name"]
    if DIGEST in obj["metadata"].get("labels", {}):
        obj["metadata"]["labels"][DIGEST] = "<agent digest>"
    if obj["kind"] == "ConfigMap" and name == configs.AGENT_CONFIGMAP:
        obj["binaryData"] = {k: "<wizard.agent_bundle.build_agent_sources(), base64>" for k in obj["binaryData"]}
    if obj["kind"] == "ConfigMap" and name in (configs.GALERA_CONFIGMAP, configs.GARBD_CONFIGMAP):
        obj["data"] = {k: "<the SSH path's file for the pod view: test_k8s_parity>" for k in obj["data"]}
    annotations = obj.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
    if DIGEST in annotations:
        annotations[DIGEST] = "<agent digest>"
    return obj


def rendered() -> dict[str, str]:
    objs = manifests(example_profile(tls=True))
    return {file_name(i, o): to_yaml(normalized(o)) for i, o in enumerate(objs)}


def test_manifests_match_the_golden_files() -> None:
    now = rendered()
    if os.environ.get("STUDIO_CLUSTER_UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for old in GOLDEN.glob("*.yaml"):
            old.unlink()
        for name, text in now.items():
            (GOLDEN / name).write_text(text)
    golden = {p.name: p.read_text() for p in sorted(GOLDEN.glob("*.yaml"))}
    assert sorted(golden) == sorted(now), "objects added or removed: regenerate (see the module docstring)"
    for name, text in now.items():
        assert text == golden[name], f"{name} differs from the golden file: regenerate (see the module docstring)"


def test_the_golden_files_are_the_example_as_it_is_with_tls_on() -> None:
    profile = example_profile(tls=True)
    assert profile == validate_profile(yaml.safe_load(EXAMPLE.read_text()), check_files=False)
    assert profile.tls.enabled
    text = "".join(p.read_text() for p in GOLDEN.glob("*.yaml"))
    assert "studio-cluster-tls-galera-0" in text and "studio-cluster-tls-garbd" in text
    assert "BEGIN" not in text and "PRIVATE KEY" not in text


def test_the_golden_files_are_yaml_kubectl_reads() -> None:
    for path in sorted(GOLDEN.glob("*.yaml")):
        obj = yaml.safe_load(path.read_text())
        assert {"apiVersion", "kind", "metadata"} <= set(obj), path.name
