"""One source of truth: the pods run the same agent, with the same config and command line, and the same
MariaDB/garbd options as the SSH path for the same profile (profiles/example.yaml as it is: TLS on, so the
Galera/IST ``socket.ssl_*``, SST ``encrypt``/``tca``/``tcert``/``tkey``, client ``ssl_*`` and garbd options too:
the same paths, since each pod mounts its Secret at ``tls.remote_dir``)."""

from __future__ import annotations

import base64
import hashlib
import inspect
import io
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.unit.k8s_example import example_profile
from wizard import render
from wizard.agent import k8s_pod, runtime
from wizard.agent.serverargs import garbd_argv, mariadbd_argv, parse_shell_vars
from wizard.agent_bundle import _build, agent_argv, pod_agent_digest
from wizard.coordinator import Coordinator, agent_config
from wizard.k8s import configs, galera
from wizard.k8s.manifests import manifests
from wizard.k8s.topology import RUN_ID, galera_pods, pod_address, pod_profile
from wizard.profile import Profile
from wizard.secrets import Secrets
from wizard.tls import certs, options
from wizard.tls.material import NodeTLS, node_names

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def profile() -> Profile:
    return example_profile(tls=True)


def host_material(profile: Profile) -> dict[str, NodeTLS]:
    """Real material for the hosts' render (made here: render would generate it into the user's tls.store)."""
    ca = certs.new_ca("parity test CA")
    out = {}
    for node in profile.nodes:
        pair = certs.new_node_cert(ca, node.name, node_names(node), 30)
        out[node.name] = NodeTLS(ca.cert, pair.cert, pair.key)
    return out


TLS_LINES = ("ssl_ca", "ssl_cert", "ssl_key", "encrypt", "tca", "tcert", "tkey")


@pytest.fixture(scope="module")
def objs(profile: Profile) -> list[dict[str, Any]]:
    return manifests(profile)


def by(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    spec = obj["spec"]["template"]["spec"]
    return next(c for c in [*spec.get("initContainers", []), *spec["containers"]] if c["name"] == name)


def test_the_init_container_runs_the_agent_as_the_coordinator_does(objs: list[dict[str, Any]]) -> None:
    """`python3 AGENT COMMAND`, the config on stdin: agent_argv is what Coordinator._run_agent runs over SSH."""
    sts = by(objs, "StatefulSet", "galera")
    init = container(sts, "agent")
    assert init["command"] == ["sh", "-c", 'exec "$@" < "/etc/studio-cluster/config/$POD_NAME.json"', "sh",
                               *agent_argv(configs.AGENT, "k8s-handover")]
    assert agent_argv(configs.AGENT, "k8s-handover") == ["python3", "/opt/studio-cluster/agent.pyz", "k8s-handover"]
    assert "agent_argv(agent_path(self.profile), command)" in inspect.getsource(Coordinator._run_agent)
    # the server container asks the same agent again when it restarts alone
    assert container(sts, "mariadb")["command"][4:] == agent_argv(configs.AGENT, "k8s-handover")
    # the bundle's agent is the one the SSH path ships, file for file (only redis-py is trimmed: test_k8s_bundle),
    # and runtime.main dispatches the pod commands
    pyz = base64.b64decode(by(objs, "ConfigMap", "studio-cluster-agent")["binaryData"]["agent.pyz"])
    assert hashlib.sha256(pyz).hexdigest() == pod_agent_digest()
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert annotations["studio-cluster.io/agent-digest"] == pod_agent_digest()[:16]
    # (but for the root scripts of the SSH path: pods run none)
    pod, ssh = zipfile.ZipFile(io.BytesIO(pyz)), zipfile.ZipFile(io.BytesIO(_build(compiled=False, catalogue=False)))
    ours = [n for n in ssh.namelist() if not n.startswith(("redis/", "async_timeout"))]
    assert ours and all(pod.read(n) == ssh.read(n) for n in ours)
    assert "run_pod_command(command, cfg)" in inspect.getsource(runtime.main)


def test_the_pods_agent_config_is_the_ssh_paths(profile: Profile, objs: list[dict[str, Any]]) -> None:
    view = pod_profile(profile)
    data = by(objs, "ConfigMap", "galera-config")["data"]
    none = Secrets(None, None, None, None)
    for pod, node in galera_pods(view).items():
        cfg = json.loads(data[f"{pod}.json"])
        k8s = cfg.pop("k8s")
        ssh_path = agent_config(view, none, node, run_id=RUN_ID, timeouts=configs.POD_TIMEOUTS)
        assert cfg == json.loads(json.dumps(ssh_path))
        assert k8s["secret_env"] == {"sst_password": "STUDIO_CLUSTER_SST_PASSWORD",
                                     "redis_password": "STUDIO_CLUSTER_REDIS_PASSWORD"}
        assert cfg["manager"] == "direct" and cfg["node"] == node.name
        assert cfg["addresses"][node.name] == pod_address(profile, profile.node(node.name))
    garbd_cfg = json.loads(by(objs, "ConfigMap", "garbd-config")["data"]["garbd.json"])
    garbd_cfg.pop("k8s")
    assert garbd_cfg == json.loads(json.dumps(agent_config(view, none, view.arbiter, run_id=RUN_ID,
                                                          timeouts=configs.POD_TIMEOUTS)))


def test_the_mariadb_options_are_the_ssh_paths(profile: Profile, objs: list[dict[str, Any]]) -> None:
    """The same function and template (galera.cnf.j2); against the hosts' file only the lines that name a node's
    address differ, and every option is there with the same value otherwise."""
    view = pod_profile(profile)
    data = by(objs, "ConfigMap", "galera-config")["data"]
    hosts = render.render(profile, None, tls=host_material(profile))
    assert profile.tls.enabled
    for pod, node in galera_pods(view).items():
        assert data[f"{pod}.cnf"] == render._galera_cnf(view, node, None).content
        ssh = render.files_by_path(hosts, node.name)[str(profile.database.config_file.as_posix())].content
        ssh_lines, pod_lines = ssh.splitlines(), data[f"{pod}.cnf"].splitlines()
        assert len(ssh_lines) == len(pod_lines)
        addresses = [n.address for n in profile.nodes]
        for a, b in zip(ssh_lines, pod_lines, strict=True):
            if a != b:
                assert any(addr in a for addr in addresses) and a.split("=")[0] == b.split("=")[0], (a, b)
        assert sum(a != b for a, b in zip(ssh_lines, pod_lines, strict=True)) == 6  # bind, cluster, node,
        # incoming, sst receive addresses and the provider options (listen and IST addresses)
        # TLS: the client and SST options are the same lines, naming the same files (the pod's Secret is mounted
        # at tls.remote_dir), and the provider options end with the same socket.ssl_* entries
        tls_ssh = [line for line in ssh_lines if line.split(" = ")[0] in TLS_LINES]
        tls_pod = [line for line in pod_lines if line.split(" = ")[0] in TLS_LINES]
        assert tls_ssh == tls_pod and len(tls_pod) == 7, tls_pod
        p = options.paths(profile)
        assert f'ssl_key = "{p["key"]}"' in tls_pod and f'tcert = "{p["cert"]}"' in tls_pod and "encrypt = 4" in tls_pod
        ssl = [[o for o in line.split('"')[1].split(";") if o.startswith("socket.ssl")]
               for line in (ssh_lines + pod_lines) if line.startswith("wsrep_provider_options")]
        assert ssl == [options.galera_options(profile)] * 2
    assert data["wsrep_sst_studio_backup"] == render.files_by_path(hosts, "studio1")[
        str(render.BACKUP_SST_SCRIPT)].content


def test_the_mariadbd_command_line_is_built_where_the_hosts_build_it() -> None:
    """Both starts call serverargs.mariadbd_argv: a host's direct start and the pod's handover."""
    assert "mariadbd_argv(" in inspect.getsource(runtime.Node.start_mariadb)
    assert "mariadbd_argv(cfg.mariadbd, node.start_position(), new_cluster)" in inspect.getsource(k8s_pod.handover)
    assert mariadbd_argv("/usr/sbin/mariadbd", "u:7", True) == [
        "/usr/sbin/mariadbd", "--user=mysql", "--wsrep_start_position=u:7", "--wsrep-new-cluster"]
    assert mariadbd_argv("/usr/sbin/mariadbd", None, False) == ["/usr/sbin/mariadbd", "--user=mysql"]


def test_the_garbd_options_are_the_ssh_paths(profile: Profile, objs: list[dict[str, Any]]) -> None:
    view = pod_profile(profile)
    garb = by(objs, "ConfigMap", "garbd-config")["data"]["garb"]
    assert garb == render._garb(view).content
    ssh = render.files_by_path(render.render(profile, None, tls=host_material(profile)), "arbiter")[
        "/etc/default/garb"].content
    ssh_vars, pod_vars = parse_shell_vars(ssh), parse_shell_vars(garb)
    # only what names an address differs: the data nodes, and the listen address (a host name listens on all)
    address_bearing = ("GALERA_NODES", "GALERA_OPTIONS")
    assert {k: v for k, v in ssh_vars.items() if k not in address_bearing} == {
        k: v for k, v in pod_vars.items() if k not in address_bearing}
    ssl = options.galera_options_suffix(profile)  # the same socket.ssl_* entries, the same files
    assert ssl == (";socket.ssl=yes;socket.ssl_cert=/etc/studio-cluster/tls/cert.pem;"
                   "socket.ssl_key=/etc/studio-cluster/tls/key.pem;socket.ssl_ca=/etc/studio-cluster/tls/ca.pem")
    retrans = ";" + render.JOIN_RETRANS  # the same membership timing as the data nodes
    assert ssh_vars["GALERA_OPTIONS"] == "gmcast.listen_addr=tcp://10.20.0.13:4567" + retrans + ssl
    assert pod_vars["GALERA_OPTIONS"] == "gmcast.listen_addr=tcp://0.0.0.0:4567" + retrans + ssl
    cmd = container(by(objs, "Deployment", "garbd"), "garbd")["command"]
    assert cmd[4:] == garbd_argv("/usr/bin/garbd", pod_vars, profile.cluster_name)
    assert "garbd_argv(" in inspect.getsource(runtime.Node.start_garbd)
    assert cmd[4:] == [
        "/usr/bin/garbd", "--address", "gcomm://galera-0.galera.studio-cluster.svc.cluster.local:4567,"
        "galera-1.galera.studio-cluster.svc.cluster.local:4567", "--group", "studio-prod",
        "--options", "gmcast.listen_addr=tcp://0.0.0.0:4567" + retrans + ssl, "--workdir", "/var/lib/garbd",
        "--log", "/var/log/garbd/garbd.log"]
    assert "k8s-arbiter-wait" in cmd[2] and galera.GARBD_SCRIPT.splitlines()[-1] in cmd[2]


def test_the_bundled_agent_fills_the_secret_in_the_pod_layout(objs: list[dict[str, Any]], tmp_path: Path) -> None:
    """The real bundle from the ConfigMap, run as the `config` init container runs it (paths moved under a
    temp dir): the SST password comes from the environment, the file is 0640, an initialised datadir is kept."""
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(base64.b64decode(by(objs, "ConfigMap", "studio-cluster-agent")["binaryData"]["agent.pyz"]))
    data = by(objs, "ConfigMap", "galera-config")["data"]
    (tmp_path / "galera-0.cnf").write_text(data["galera-0.cnf"])
    cfg = json.loads(data["galera-0.json"])
    datadir = tmp_path / "mysql"
    (datadir / "mysql").mkdir(parents=True)
    (datadir / "ibdata1").write_bytes(b"")
    cfg.update(data_dir=str(datadir), run_dir=str(tmp_path / "run"))
    cfg["k8s"].update(cnf_in=str(tmp_path / "galera-0.cnf"), cnf_out=str(tmp_path / "out" / "galera.cnf"))
    env = {**os.environ, "STUDIO_CLUSTER_SST_PASSWORD": "pod-secret-1", "STUDIO_CLUSTER_REDIS_PASSWORD": "r"}
    p = subprocess.run([sys.executable, str(pyz), "k8s-config"], input=json.dumps(cfg), capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout.splitlines()[-1])["datadir"] == "kept"
    out = tmp_path / "out" / "galera.cnf"
    assert 'wsrep_sst_auth = "sst:pod-secret-1"' in out.read_text()
    assert "<sst_password>" not in out.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    # a Secret key missing from the pod is named, not a traceback
    del env["STUDIO_CLUSTER_SST_PASSWORD"]
    p = subprocess.run([sys.executable, str(pyz), "k8s-config"], input=json.dumps(cfg), capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode == 1
    assert "STUDIO_CLUSTER_SST_PASSWORD" in json.loads(p.stdout.splitlines()[-1])["error"]
