"""The data pods' init containers, run for real: the bundled agent's ``k8s-handover`` for both data nodes at once,
against a real Redis on this machine's loopback (no lab, no network), each in a private pid and mount namespace
as a pod's init container is (it sees no mariadbd; ``galera_recovery`` is absent, as on a host without it).

Exactly one bootstraps (the most advanced node, by the shared election), it gets ``--wsrep-new-cluster`` and
``safe_to_bootstrap: 1``; the other does not start without a Primary Component to join.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.unit.k8s_example import example_profile
from tests.waits import wait_until
from wizard.agent.grastate import render_grastate
from wizard.k8s.manifests import manifests

ROOT = Path(__file__).resolve().parents[2]
UUID = "6b4c1a5e-0d7f-11ef-9f4e-2f1b6c9d3a10"

needs_namespaces = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("redis-server") or not shutil.which("unshare"),
    reason="needs root (pid/mount namespaces), redis-server and unshare")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_until("the test's redis-server to answer", up, 30, interval=0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        client.close()


def pod_config(data: dict[str, str], pod: str, tmp: Path, port: int, galera_port: int) -> dict[str, Any]:
    """The pod's own config from the ConfigMap, with its paths under ``tmp`` and the test's Redis."""
    cfg = json.loads(data[f"{pod}.json"])
    for key in ("redis_sentinels", "redis_master_name", "redis_sentinel_password"):
        cfg.pop(key, None)
    cfg.update(redis_host="127.0.0.1", redis_port=port, data_dir=str(tmp / pod / "mysql"),
               run_dir=str(tmp / pod / "run"), galera_port=galera_port, wait_timeout=20, join_timeout=5,
               key_prefix=f"k8s-test-{port}", addresses={n: "127.0.0.1" for n in cfg["addresses"]})
    cfg["k8s"].update(argv_file=str(tmp / pod / "run" / "mariadbd.argv"), secret_env={})
    return cfg


def start_pod_agent(pyz: Path, cfg: dict[str, Any], log: Path) -> subprocess.Popen[bytes]:
    """``python3 agent.pyz k8s-handover < config`` in new pid and mount namespaces (no mariadbd visible,
    no galera_recovery)."""
    (Path(cfg["run_dir"])).mkdir(parents=True, exist_ok=True)
    conf = Path(cfg["run_dir"]) / "agent.json"
    conf.write_text(json.dumps(cfg))
    script = ('[ -e /usr/bin/galera_recovery ] && mount --bind /bin/true /usr/bin/galera_recovery; '
              'exec python3 "$0" k8s-handover < "$1"')
    argv = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--mount",
            "sh", "-c", script, str(pyz), str(conf)]
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def datadir(path: Path, seqno: int) -> None:
    """What a stopped data node leaves: InnoDB's files and grastate.dat at ``seqno``, not safe to bootstrap."""
    (path / "mysql").mkdir(parents=True)
    (path / "ibdata1").write_bytes(b"")
    (path / "grastate.dat").write_text(render_grastate(UUID, seqno, False))


@needs_namespaces
def test_one_pod_bootstraps_the_other_waits_for_its_primary(tmp_path: Path, redis_port: int) -> None:
    objs = manifests(example_profile())
    agent = next(o for o in objs if o["metadata"]["name"] == "studio-cluster-agent")
    data = next(o for o in objs if o["metadata"]["name"] == "galera-config")["data"]
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(base64.b64decode(agent["binaryData"]["agent.pyz"]))
    galera_port = free_port()  # nothing listens there: no peer holds a Primary, no garbd runs
    cfgs = {pod: pod_config(data, pod, tmp_path, redis_port, galera_port) for pod in ("galera-0", "galera-1")}
    datadir(Path(cfgs["galera-0"]["data_dir"]), 41)
    datadir(Path(cfgs["galera-1"]["data_dir"]), 44)  # studio2 is ahead: it must win although studio1 is preferred
    procs = {pod: start_pod_agent(pyz, cfg, tmp_path / f"{pod}.log") for pod, cfg in cfgs.items()}
    try:
        winner = procs["galera-1"]
        wait_until("galera-1's init container to finish", lambda: winner.poll() is not None, 60, interval=0.1)
        log = (tmp_path / "galera-1.log").read_text()
        assert winner.returncode == 0, log
        result = json.loads(log.strip().splitlines()[-1])
        assert result["action"] == "bootstrap" and result["node"] == "studio2"
        argv = Path(cfgs["galera-1"]["k8s"]["argv_file"]).read_text()
        assert argv == "/usr/sbin/mariadbd --user=mysql --wsrep-new-cluster\n"
        assert "safe_to_bootstrap: 1" in (Path(cfgs["galera-1"]["data_dir"]) / "grastate.dat").read_text()
        # the other waits for a Primary Component to join: it hands nothing over and starts nothing
        client = redis.Redis(port=redis_port, decode_responses=True)
        stream = f"k8s-test-{redis_port}:studio-prod:events"

        def events() -> list[dict[str, str]]:
            entries: Any = client.xrange(stream)
            return [fields for _, fields in entries]

        wait_until("studio1 to wait for a Primary", lambda: any(
            f["node"] == "studio1" and f["step"] == "join" and f["state"] == "waiting" for f in events()), 30,
            interval=0.1)
        assert procs["galera-0"].poll() is None
        assert not Path(cfgs["galera-0"]["k8s"]["argv_file"]).exists()
        assert "safe_to_bootstrap: 0" in (Path(cfgs["galera-0"]["data_dir"]) / "grastate.dat").read_text()
        decided = [f for f in events() if f["step"] == "elect" and f["state"] == "done"]
        assert {f["winner"] for f in decided} == {"studio2"}  # both ran the same election and agree
        assert client.hget(f"k8s-test-{redis_port}:studio-prod:decision", "node") == "studio2"
        client.close()
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()  # unshare ignores SIGTERM while it waits; --kill-child takes the agent with it
                p.wait(timeout=10)


def run_server_script(tmp: Path, agent: list[str]) -> subprocess.CompletedProcess[str]:
    from wizard.k8s.galera import SERVER_SCRIPT

    (tmp / "galera-0.json").write_text("{}")
    script = SERVER_SCRIPT.format(argv_file=tmp / "mariadbd.argv", config=tmp)
    return subprocess.run(["sh", "-c", script, "sh", *agent], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "POD_NAME": "galera-0"})


def test_the_server_container_uses_a_decision_once_then_asks_the_agent_again(tmp_path: Path) -> None:
    """The main container's script with stand-ins for mariadbd (printf) and the agent (a shell that writes the
    hand-over file, or fails): the decision runs once and is removed; a restart without one asks the agent;
    an agent that fails starts nothing."""
    argv_file = tmp_path / "mariadbd.argv"
    argv_file.write_text("printf '%s|' --wsrep-new-cluster 'two words'\n")
    first = run_server_script(tmp_path, ["false"])
    assert first.returncode == 0 and first.stdout == "--wsrep-new-cluster|two words|"
    assert not argv_file.exists()  # a restart of this container alone never reuses --wsrep-new-cluster
    agent = ["sh", "-c", f"cat >/dev/null; echo \"printf joined\" > {argv_file}"]
    again = run_server_script(tmp_path, agent)
    assert again.returncode == 0 and again.stdout == "joined", again.stderr
    assert "the agent decides again" in again.stderr
    failed = run_server_script(tmp_path, ["false"])
    assert failed.returncode == 1 and failed.stdout == ""


@needs_namespaces
@pytest.mark.skipif(not Path("/usr/bin/garbd").exists(), reason="needs garbd (galera-arbitrator-4)")
def test_a_surviving_garbd_is_stopped_by_its_liveness_before_the_bootstrap(tmp_path: Path, redis_port: int) -> None:
    """A full restart with garbd still running (it could hold a Primary Component of one): the winner waits for
    garbd's port to close; garbd's liveness command (`k8s-arbiter-live`, run in garbd's pid namespace every
    second, the kubelet's policy emulated: one failure restarts the container) fails once the shared election
    says bootstrap; garbd is stopped, then the winner hands over --wsrep-new-cluster.  A real garbd, alone,
    listening on 127.0.0.2 (the loopback: nothing leaves the machine)."""
    objs = manifests(example_profile())
    agent = next(o for o in objs if o["metadata"]["name"] == "studio-cluster-agent")
    data = next(o for o in objs if o["metadata"]["name"] == "galera-config")["data"]
    garbd_json = next(o for o in objs if o["metadata"]["name"] == "garbd-config")["data"]["garbd.json"]
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(base64.b64decode(agent["binaryData"]["agent.pyz"]))
    galera_port = free_port()
    cfgs = {pod: pod_config(data, pod, tmp_path, redis_port, galera_port) for pod in ("galera-0", "galera-1")}
    for cfg in cfgs.values():
        cfg["addresses"]["arbiter"] = "127.0.0.2"
    datadir(Path(cfgs["galera-0"]["data_dir"]), 41)
    datadir(Path(cfgs["galera-1"]["data_dir"]), 44)
    # the Arbiter pod: its config from the ConfigMap, the test's Redis; a real garbd and the liveness probe
    arb = pod_config({"garbd.json": garbd_json}, "garbd", tmp_path, redis_port, galera_port)
    arb["addresses"] = {**cfgs["galera-0"]["addresses"]}
    (tmp_path / "garbd" / "run").mkdir(parents=True)
    (tmp_path / "garbd" / "run" / "agent.json").write_text(json.dumps(arb))
    harness = (f'/usr/bin/garbd --address gcomm://127.0.0.1:{galera_port} --group studio-prod '
               f'--options gmcast.listen_addr=tcp://127.0.0.2:{galera_port} --log "$2/garbd.log" & g=$!\n'
               'while :; do\n'
               '  if ! python3 "$0" k8s-arbiter-live < "$1" >> "$2/live.log" 2>&1; then\n'
               '    echo LIVENESS-FAILED; kill $g; wait $g; exit 0\n'
               '  fi\n'
               '  sleep 1\n'
               'done\n')
    with (tmp_path / "arbiter.log").open("wb") as out:
        arbiter = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c",
                                    harness, str(pyz), str(tmp_path / "garbd" / "run" / "agent.json"),
                                    str(tmp_path / "garbd")], stdout=out, stderr=subprocess.STDOUT)

    def garbd_listens() -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.2", galera_port)) == 0

    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        wait_until("the real garbd to listen", garbd_listens, 30, interval=0.1)
        procs = {pod: start_pod_agent(pyz, cfg, tmp_path / f"{pod}.log") for pod, cfg in cfgs.items()}
        winner = procs["galera-1"]
        wait_until("galera-1's init container to finish", lambda: winner.poll() is not None, 60, interval=0.1)
        log = (tmp_path / "galera-1.log").read_text()
        assert winner.returncode == 0, log
        assert json.loads(log.strip().splitlines()[-1])["action"] == "bootstrap"
        assert "--wsrep-new-cluster" in Path(cfgs["galera-1"]["k8s"]["argv_file"]).read_text()
        assert arbiter.wait(timeout=30) == 0
        assert "LIVENESS-FAILED" in (tmp_path / "arbiter.log").read_text()
        assert not garbd_listens()
        client = redis.Redis(port=redis_port, decode_responses=True)
        entries: Any = client.xrange(f"k8s-test-{redis_port}:studio-prod:events")
        steps = [(f["node"], f["step"], f["state"], f["message"]) for _, f in entries]
        client.close()
        # the winner says it waits for garbd only when its port still answers at that moment: the liveness
        # probe (every second) may have stopped garbd before the winner got there
        waited = [i for i, s in enumerate(steps) if s[0] == "studio2" and "waiting for garbd" in s[3]]
        stopped = next(i for i, s in enumerate(steps) if s[0] == "arbiter" and "garbd must stop first" in s[3])
        handed = next(i for i, s in enumerate(steps) if s[0] == "studio2" and s[1] == "handover")
        assert all(i < handed for i in waited) and stopped < handed  # garbd was gone before --wsrep-new-cluster
    finally:
        for p in [*procs.values(), arbiter]:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
