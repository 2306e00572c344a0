"""`studio-cluster k8s render`: the manifests validate against the Kubernetes API schemas of 1.35, 1.36 and 1.37
(kubernetes-validate's strict schemas, shipped in the package: offline), and keep the safety rules."""

from __future__ import annotations

import copy
import json
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes_validate import utils as kv

from tests.unit.k8s_example import EXAMPLE, example_file, example_profile
from wizard.cli import main
from wizard.k8s.manifests import manifests
from wizard.k8s.topology import VOTE_LABEL
from wizard.profile import validate_profile

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("1.35.0", "1.36.0", "1.37.0")


@pytest.fixture(scope="module")
def objs() -> list[dict[str, Any]]:
    return manifests(example_profile())


@pytest.fixture(scope="module")
def tls_objs() -> list[dict[str, Any]]:
    """profiles/example.yaml as it is: TLS on (a Secret per Galera member mounted in its pod)."""
    return manifests(example_profile(tls=True))


def by(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


@pytest.mark.parametrize("tls", [False, True], ids=["tls-off", "tls-on"])
@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_validates_strictly(objs: list[dict[str, Any]], tls_objs: list[dict[str, Any]], version: str,
                                         tls: bool) -> None:
    for obj in tls_objs if tls else objs:
        # kubernetes-validate answers with the schema version it used: the requested one, not an older fallback
        assert kv.validate(obj, version, strict=True) == version.rsplit(".", 1)[0], obj["metadata"]["name"]


def test_the_schemas_catch_a_mistake(objs: list[dict[str, Any]]) -> None:
    """Strict schemas refuse an unknown field and a wrong type: the validation above is not vacuous."""
    bad = copy.deepcopy(by(objs, "StatefulSet", "galera"))
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, "1.37.0", strict=True)
    bad = copy.deepcopy(by(objs, "PodDisruptionBudget", "galera-votes"))
    bad["spec"]["selector"] = "galera"
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, "1.35.0", strict=True)


def test_a_profile_with_every_kubernetes_setting_validates() -> None:
    data = example_profile().model_dump(mode="json")
    data["kubernetes"] = {"namespace": "authoring", "storage_class": "fast-ssd", "storage_size": "50Gi",
                          "galera_image": "registry.example.com/galera:10.11", "galera_cpu": "2",
                          "galera_memory": "4Gi", "secret_name": "studio-db"}
    data["database"]["admin_password"] = "env:ADMIN_PW"
    objs = manifests(validate_profile(data, check_files=False))
    for obj in objs:
        kv.validate(obj, "1.37.0", strict=True)
        assert obj["metadata"].get("namespace", "authoring") == "authoring"
    sts = by(objs, "StatefulSet", "galera")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast-ssd"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "50Gi"
    refs = [e["valueFrom"]["secretKeyRef"] for c in sts["spec"]["template"]["spec"]["containers"]
            for e in c["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert {r["key"] for r in refs} == {"sst-password", "admin-password", "redis-password"}
    assert {r["name"] for r in refs} == {"studio-db"}


def test_the_profile_without_a_kubernetes_section_is_unchanged() -> None:
    profile = example_profile()
    assert profile.kubernetes is None
    assert "kubernetes" not in EXAMPLE.read_text()


def test_secrets_are_referenced_never_inlined(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_CLUSTER_SST_PASSWORD", "Sst-Secret-4711")
    monkeypatch.setenv("STUDIO_CLUSTER_REDIS_PASSWORD", "Redis-Secret-4711")
    text = json.dumps(manifests(example_profile()))
    assert "Secret-4711" not in text
    assert "<sst_password>" in text  # the Galera config's placeholder, filled in the pod from the Secret
    assert not [o for o in json.loads(text) if o["kind"] == "Secret"]


def test_two_galera_pods_with_stable_names_a_volume_each_never_on_one_node(objs: list[dict[str, Any]]) -> None:
    sts = by(objs, "StatefulSet", "galera")
    spec = sts["spec"]
    assert spec["replicas"] == 2 and spec["serviceName"] == "galera"
    assert spec["podManagementPolicy"] == "Parallel"  # both agents must register for the election
    assert [t["metadata"]["name"] for t in spec["volumeClaimTemplates"]] == ["data"]
    pod = spec["template"]["spec"]
    assert pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == [
        {"labelSelector": {"matchLabels": {VOTE_LABEL: "true"}}, "topologyKey": "kubernetes.io/hostname"}]
    garbd = by(objs, "Deployment", "garbd")
    assert garbd["spec"]["replicas"] == 1 and garbd["spec"]["strategy"] == {"type": "Recreate"}
    assert garbd["spec"]["template"]["spec"]["affinity"] == pod["affinity"]
    assert garbd["spec"]["template"]["spec"]["subdomain"] == "galera"
    # a new agent rolls the data pods one at a time; garbd must not restart with them (a second vote gone)
    assert "annotations" not in garbd["spec"]["template"]["metadata"]
    assert "studio-cluster.io/agent-digest" in sts["spec"]["template"]["metadata"]["annotations"]
    headless = by(objs, "Service", "galera")["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert by(objs, "Service", "galera-client")["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]


def test_the_budget_never_lets_an_eviction_take_two_of_three_votes(objs: list[dict[str, Any]]) -> None:
    pdb = by(objs, "PodDisruptionBudget", "galera-votes")["spec"]
    assert pdb["minAvailable"] == 2 and "maxUnavailable" not in pdb
    wanted = pdb["selector"]["matchLabels"]
    voters = [o["metadata"]["name"] for o in objs if o["kind"] in ("StatefulSet", "Deployment")
              and wanted.items() <= o["spec"]["template"]["metadata"]["labels"].items()]
    assert voters == ["galera", "garbd"]  # 2 replicas + 1 = 3 votes; 3 - minAvailable 2 = at most 1 disrupted
    assert by(objs, "PodDisruptionBudget", "redis")["spec"]["minAvailable"] == 2


def test_readiness_is_the_agents_health_endpoint(objs: list[dict[str, Any]]) -> None:
    pod = by(objs, "StatefulSet", "galera")["spec"]["template"]["spec"]
    server = next(c for c in pod["containers"] if c["name"] == "mariadb")
    assert server["readinessProbe"]["httpGet"] == {"path": "/", "port": "health"}
    assert {"name": "health", "containerPort": 9200} in server["ports"]
    assert pod["shareProcessNamespace"] is True  # the health sidecar's agent sees mariadbd, as on a host


def test_every_shell_script_parses(objs: list[dict[str, Any]], tmp_path: Path) -> None:
    """`sh -n` on each script the containers run (dash, as Debian's /bin/sh)."""
    scripts = []
    for obj in objs:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "redis-config":
            scripts += [v for k, v in obj["data"].items() if k.endswith(".sh")]
        if obj["kind"] in ("StatefulSet", "Deployment"):
            spec = obj["spec"]["template"]["spec"]
            for c in [*spec.get("initContainers", []), *spec["containers"]]:
                cmd = c["command"]
                if cmd[:2] == ["sh", "-c"]:
                    scripts.append(cmd[2])
                probe = c.get("livenessProbe", {}).get("exec", {}).get("command", [])
                if probe[:2] == ["sh", "-c"]:
                    scripts.append(probe[2])
    assert len(scripts) >= 8
    for i, text in enumerate(scripts):
        f = tmp_path / f"s{i}.sh"
        f.write_text(text)
        assert subprocess.run(["sh", "-n", str(f)], capture_output=True, text=True).returncode == 0, text


def test_cli_writes_files_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["k8s", "render", str(example_file(tmp_path)), "--out", str(tmp_path / "m")]) == 0
    files = sorted(p.name for p in (tmp_path / "m").glob("*.yaml"))
    assert files[0] == "00-namespace-studio-cluster.yaml" and "11-statefulset-galera.yaml" in files
    out = capsys.readouterr().out
    assert "kubectl -n studio-cluster create secret generic studio-cluster" in out
    assert main(["k8s", "render", str(example_file(tmp_path)), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["items"]
    assert [o["kind"] for o in listed][:2] == ["Namespace", "ConfigMap"] and len(listed) == len(files)


def test_no_network_or_cluster_is_needed() -> None:
    """The schemas are files of the installed package (no download at validation time)."""
    schemas = Path(kv.__file__).parent / "kubernetes-json-schema"
    assert {f"v{v}-local-strict" for v in VERSIONS} <= {p.name for p in schemas.iterdir()}
    assert os.path.getsize(schemas / "v1.37.0-local-strict" / "statefulset-apps-v1.json") > 0


def test_a_backup_schedule_adds_the_arbiters_job_as_a_cronjob(tmp_path: Path) -> None:
    from wizard.backups.schedule import job_config
    from wizard.k8s import backup
    from wizard.k8s.topology import pod_profile

    data = example_profile().model_dump(mode="json")
    data["backups"]["schedule"] = "02:30"
    profile = validate_profile(data, check_files=False)
    objs = manifests(profile)
    for version in VERSIONS:
        for obj in objs:
            kv.validate(obj, version, strict=True)
    cron = by(objs, "CronJob", "galera-backup")["spec"]
    assert cron["schedule"] == "30 2 * * *" and cron["concurrencyPolicy"] == "Forbid"
    job = json.loads(by(objs, "ConfigMap", "galera-backup")["data"]["backup-job.json"])
    assert job == json.loads(json.dumps(job_config(backup.backup_view(pod_profile(profile)))))
    assert "studio_backup:backup.galera-backup.studio-cluster.svc.cluster.local:4450/@TOKEN@/3" in job["garbd_argv"]
    assert job["donors"][0]["health"] == "http://galera-1.galera.studio-cluster.svc.cluster.local:9200/"
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"][4:] == ["python3", backup.UNPACKED, "backup-scheduled"]
    # the job runs the receiver as a file of the agent: the bundle, unpacked as the container does, holds it
    import base64

    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(base64.b64decode(by(objs, "ConfigMap", "studio-cluster-agent")["binaryData"]["agent.pyz"]))
    subprocess.run(["python3", "-m", "zipfile", "-e", str(pyz), str(tmp_path / "agent")], check=True)
    assert (tmp_path / "agent" / "wizard" / "agent" / "receiver.py").is_file()
    assert (tmp_path / "agent" / "__main__.py").is_file()
    assert not [o for o in manifests(example_profile()) if o["kind"] == "CronJob"]


@pytest.mark.parametrize(("key", "value", "says"), [
    ("namespace", "Studio_Prod", "is not a DNS label"),
    ("storage_size", "20GB", "Gi, not GB"),
    ("storage_class", "Fast", "is not a Kubernetes name"),
    ("galera_cpu", "0", "is not a CPU amount"),
    ("redis_memory", "1Ti", "whole number followed by Mi, Gi"),
    ("garbd_image", "a b", "is not an image reference"),
])
def test_a_bad_kubernetes_setting_is_named_with_the_fix(key: str, value: str, says: str) -> None:
    from wizard.profile import ProfileError

    data = example_profile().model_dump(mode="json")
    data["kubernetes"] = {key: value}
    with pytest.raises(ProfileError) as err:
        validate_profile(data, check_files=False)
    assert f"kubernetes.{key}" in str(err.value) and says in str(err.value)


def test_garbd_logs_to_the_containers_stdout(objs: list[dict[str, Any]]) -> None:
    """garbd keeps the SSH path's --log FILE; the container links FILE to its stdout before exec (kubectl logs)."""
    garbd = by(objs, "Deployment", "garbd")["spec"]["template"]["spec"]["containers"][0]
    argv = garbd["command"][4:]
    log = argv[argv.index("--log") + 1]
    script = garbd["command"][2]
    assert f"ln -sf /dev/stdout {log} || exit 1\nexec \"$@\"" in script
    assert {"name": "log", "mountPath": log.rsplit("/", 1)[0]} in garbd["volumeMounts"]


@pytest.mark.parametrize(("kubernetes", "size", "zone"), [
    ({}, "160Gi", "UTC"),  # 20Gi x (keep_last 7 + 1)
    ({"storage_size": "30Gi", "backup_storage_size": "75Gi", "backup_time_zone": "Europe/Berlin"}, "75Gi",
     "Europe/Berlin"),
])
def test_the_backups_volume_holds_keep_last_backups_and_the_schedule_has_a_time_zone(
        kubernetes: dict[str, str], size: str, zone: str) -> None:
    data = example_profile().model_dump(mode="json")
    data["backups"]["schedule"] = "02:30"
    data["kubernetes"] = kubernetes
    objs = manifests(validate_profile(data, check_files=False))
    for obj in objs:
        kv.validate(obj, "1.35.0", strict=True)
    assert by(objs, "PersistentVolumeClaim", "galera-backups")["spec"]["resources"]["requests"]["storage"] == size
    assert by(objs, "CronJob", "galera-backup")["spec"]["timeZone"] == zone


@pytest.mark.skipif(not Path("/usr/bin/garbd").exists() or os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="needs garbd (galera-arbitrator-4), root and unshare (a private /var/log)")
def test_a_real_garbd_started_as_the_container_starts_it_logs_to_stdout(objs: list[dict[str, Any]],
                                                                        tmp_path: Path) -> None:
    """The garbd container's script after the agent's wait (test_k8s_handover runs that), with a real garbd and the
    rendered --log file, in a mount namespace with its own /var/log: garbd's log arrives on the pipe."""
    garbd = by(objs, "Deployment", "garbd")["spec"]["template"]["spec"]["containers"][0]
    script = garbd["command"][2].split("\n", 1)[1]
    rendered = garbd["command"][4:]
    log = rendered[rendered.index("--log") + 1]
    port = socket_port()
    argv = ["/usr/bin/garbd", "--address", f"gcomm://127.0.0.1:{port}", "--group", "k8s-log-test",
            "--options", f"gmcast.listen_addr=tcp://127.0.0.2:{port}", "--log", log]
    outer = f'mount -t tmpfs tmpfs /var/log && mkdir -p {shlex.quote(os.path.dirname(log))} && exec sh -c "$0" "$@"'
    out = tmp_path / "stdout"
    with out.open("wb") as fh:
        proc = subprocess.Popen(["unshare", "--mount", "--fork", "--kill-child", "sh", "-c", outer, script, "sh",
                                 *argv], stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "Read config" not in out.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text(errors="replace")
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert not os.path.islink(log)  # the link was made in the namespace's own /var/log


def socket_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
