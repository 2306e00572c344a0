"""The Kubernetes agent bundle and every rendered object fit client-side `kubectl apply`: it copies each object
into the annotation ``kubectl.kubernetes.io/last-applied-configuration``, and an object's annotations may hold at
most 262,144 bytes in all.  The trimmed bundle still runs: its entry points import from it alone."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.unit.k8s_example import example_data
from wizard.agent_bundle import POD_UNUSED_REDIS, build_agent_sources
from wizard.k8s.manifests import manifests
from wizard.profile import validate_profile

ANNOTATIONS_CAP = 262_144
"""Kubernetes' limit on the total size of an object's annotations (apimachinery's TotalAnnotationSizeLimitB)."""


def last_applied(obj: dict[str, Any]) -> int:
    """The size of what kubectl stores: the object as compact JSON, plus the annotation's own name."""
    return len(json.dumps(obj, separators=(",", ":"))) + len("kubectl.kubernetes.io/last-applied-configuration")


@pytest.mark.parametrize("schedule", [None, "02:30"])
def test_every_rendered_object_fits_the_last_applied_annotation(schedule: str | None) -> None:
    data = example_data()
    data.setdefault("backups", {})["schedule"] = schedule
    sizes = {o["metadata"]["name"]: last_applied(o) for o in manifests(validate_profile(data, check_files=False))}
    over = {name: size for name, size in sizes.items() if size >= ANNOTATIONS_CAP}
    assert not over, f"over the {ANNOTATIONS_CAP}-byte annotation cap: {over}"
    assert sizes["studio-cluster-agent"] < 230_000  # room for the agent to grow before apply fails


def test_the_bundle_leaves_out_what_the_agent_never_imports() -> None:
    names = zipfile.ZipFile(io.BytesIO(build_agent_sources())).namelist()
    assert not [n for n in names if n.startswith(POD_UNUSED_REDIS)]
    assert "redis/sentinel.py" in names and "wizard/agent/k8s_pod.py" in names and "__main__.py" in names


def test_the_trimmed_bundle_runs_the_agents_entry_points(tmp_path: Path) -> None:
    """In a fresh interpreter that sees only the bundle (-I -S: no site-packages, so no installed redis-py): every
    module of wizard/agent imports, a Sentinel client and a plain client are built, and the zipapp's main answers."""
    objs = manifests(validate_profile(example_data(), check_files=False))
    agent = next(o for o in objs if o["metadata"]["name"] == "studio-cluster-agent")
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(base64.b64decode(agent["binaryData"]["agent.pyz"]))
    modules = sorted(n[len("wizard/agent/"):-3] for n in zipfile.ZipFile(pyz).namelist()
                     if n.startswith("wizard/agent/") and n.endswith(".py") and "/" not in n[len("wizard/agent/"):])
    assert {"runtime", "k8s_pod", "backup_job", "receiver", "redisconn", "retention"} <= set(modules)
    code = (f"import sys; sys.path.insert(0, {str(pyz)!r})\n"
            "import importlib\n"
            f"for m in {modules!r}: importlib.import_module('wizard.agent.' + m)\n"
            "import redis\n"
            "from redis.sentinel import Sentinel\n"
            "assert redis.__file__.startswith(sys.path[0]), redis.__file__\n"
            "Sentinel([('127.0.0.1', 1)], socket_timeout=0.1).master_for('m')\n"
            "redis.Redis(host='127.0.0.1', port=1).connection_pool\n"
            "print('ok', len([m for m in sys.modules if m.startswith('redis')]))\n")
    run = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.startswith("ok"), run.stderr
    main = subprocess.run([sys.executable, "-I", "-S", str(pyz), "no-such-command"], capture_output=True, text=True,
                          input="{}", timeout=60)
    assert "Traceback" not in main.stderr and "ModuleNotFoundError" not in main.stdout + main.stderr, main.stderr
