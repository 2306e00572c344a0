"""garbd's liveness (`k8s-arbiter-live`) fails only when Redis answers and the shared election says a data node
bootstraps.  A Redis that is down, a Sentinel set that is down, or a Redis that accepts and never answers passes
the probe, within its timeoutSeconds: a Redis outage must not restart garbd and take a Galera vote away.

Each case runs the bundled agent as the probe does (`python3 agent.pyz k8s-arbiter-live < garbd.json`) in its own
pid namespace beside a process named garbd (the lab's garbd processes on this machine stay out of sight)."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.k8s_example import example_profile
from tests.unit.test_k8s_handover import free_port, needs_namespaces, pod_config, redis_port
from wizard.agent.k8s_pod import LIVE_REDIS_BUDGET_S
from wizard.k8s import galera
from wizard.k8s.manifests import manifests

__all__ = ["redis_port"]  # the fixture, shared with test_k8s_handover


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    objs = manifests(example_profile())
    agent = next(o for o in objs if o["metadata"]["name"] == "studio-cluster-agent")
    pyz = tmp_path_factory.mktemp("agent") / "agent.pyz"
    pyz.write_bytes(base64.b64decode(agent["binaryData"]["agent.pyz"]))
    garbd_json = next(o for o in objs if o["metadata"]["name"] == "garbd-config")["data"]["garbd.json"]
    return pyz, garbd_json


@pytest.fixture
def silent_redis() -> Iterator[int]:
    """A TCP port that accepts connections (the kernel's backlog) and never answers a command."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


def probe(tmp: Path, bundle: tuple[Path, str], **redis: Any) -> tuple[int, dict[str, Any], float]:
    """Run the liveness command as the kubelet would, beside a running "garbd"; (exit code, result, seconds).
    The subprocess timeout is the probe's own timeoutSeconds: past it the kubelet counts a failure."""
    pyz, garbd_json = bundle
    cfg = pod_config({"garbd.json": garbd_json}, "garbd", tmp, 1, free_port())
    for key in ("redis_host", "redis_port"):
        cfg.pop(key)
    cfg.update(redis)
    conf = tmp / "garbd.json"
    conf.write_text(json.dumps(cfg))
    fake = tmp / "garbd"
    shutil.copy("/bin/sleep", fake)  # a process named garbd: what the probe looks for before asking Redis
    script = '"$2" 120 & python3 "$0" k8s-arbiter-live < "$1"; rc=$?; kill $!; exit $rc'
    start = time.monotonic()
    run = subprocess.run(["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", script,
                          str(pyz), str(conf), str(fake)], capture_output=True, text=True,
                         timeout=galera.LIVENESS_TIMEOUT_S)
    took = time.monotonic() - start
    return run.returncode, json.loads(run.stdout.strip().splitlines()[-1]), took


def test_the_probe_gives_up_on_redis_well_before_its_timeout() -> None:
    garbd = next(o for o in manifests(example_profile()) if o["kind"] == "Deployment")
    live = garbd["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    assert live["timeoutSeconds"] == galera.LIVENESS_TIMEOUT_S and live["failureThreshold"] == 1
    assert LIVE_REDIS_BUDGET_S <= galera.LIVENESS_TIMEOUT_S / 2


@needs_namespaces
def test_a_dead_redis_passes(tmp_path: Path, bundle: tuple[Path, str]) -> None:
    rc, result, took = probe(tmp_path, bundle, redis_host="127.0.0.1", redis_port=free_port())
    assert rc == 0 and result["garbd"] == "running" and "garbd stays" in result["redis"], (result, took)


@needs_namespaces
def test_dead_sentinels_pass(tmp_path: Path, bundle: tuple[Path, str]) -> None:
    rc, result, took = probe(tmp_path, bundle, redis_master_name="studio-cluster",
                             redis_sentinels=[["127.0.0.1", free_port()] for _ in range(3)])
    assert rc == 0 and "garbd stays" in result["redis"], (result, took)


@needs_namespaces
def test_a_redis_that_never_answers_passes(tmp_path: Path, bundle: tuple[Path, str], silent_redis: int) -> None:
    rc, result, took = probe(tmp_path, bundle, redis_host="127.0.0.1", redis_port=silent_redis)
    assert rc == 0 and "no answer within" in result["redis"], (result, took)


@needs_namespaces
def test_a_redis_that_answers_without_a_bootstrap_passes(tmp_path: Path, bundle: tuple[Path, str],
                                                         redis_port: int) -> None:
    """The failing side (Redis answers, the election says bootstrap) is test_k8s_handover's garbd test."""
    rc, result, _ = probe(tmp_path, bundle, redis_host="127.0.0.1", redis_port=redis_port)
    assert rc == 0 and result == {"node": "arbiter", "garbd": "running"}, result
