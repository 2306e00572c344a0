"""The node facts probe (wizard.checks.facts), run here with this machine's python3 as a node runs it, and the
runner's staging of checks (pure logic)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from wizard import datadir
from wizard.checks import planned
from wizard.checks.base import CLUSTER, Check, Outcome, Status
from wizard.checks.facts import PARTS, SESSION
from wizard.checks.runner import _Stages
from wizard.profile import load_profile

PROFILE = Path(__file__).resolve().parents[2] / "profiles" / "example.yaml"


def facts(request: dict[str, object], secrets: dict[str, object] | None = None) -> dict[str, object]:
    """The facts a session without requests (as a direct call of a check starts) prints, then it ends."""
    res = subprocess.run([sys.executable, "-I", "-S", "-c", SESSION, json.dumps({"facts": request, "serve": False})],
                         input=json.dumps(secrets or {}) + "\n", capture_output=True, text=True, timeout=60,
                         check=True)
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert lines and lines[-1] == {"done": sorted(request)}, res.stdout  # each part on a line of its own, then done
    out: dict[str, object] = {line["part"]: line["value"] for line in lines[:-1]}
    assert sorted(out) == sorted(request) and len(lines) == len(request) + 1, res.stdout
    return out


def test_every_part_has_its_function() -> None:
    for name in PARTS:
        assert f"def probe_{name}(arg" in SESSION or f"def probe_{name}(args" in SESSION or \
            f"def probe_{name}(names" in SESSION, name


@pytest.mark.parametrize("layout", ["missing", "empty", "initialised", "incomplete"])
def test_datadir_part_answers_as_wizard_datadir_probe(tmp_path: Path, layout: str) -> None:
    d = tmp_path / "data"
    if layout != "missing":
        d.mkdir()
    if layout == "initialised":
        (d / "mysql").mkdir()
        (d / "mysql" / "db.frm").write_text("")
    if layout == "incomplete":
        (d / "ibdata1").write_text("")
        (d / "shop").mkdir()
        (d / "shop" / "orders.ibd").write_text("")
    alone = subprocess.run([sys.executable, "-I", "-S", "-c", datadir.PROBE, str(d)], capture_output=True,
                           text=True, check=True)
    assert facts({"datadir": str(d)})["datadir"] == json.loads(alone.stdout)


def test_daemon_part_reads_grastate_and_skips_short_lived_runs(tmp_path: Path) -> None:
    grastate = tmp_path / "grastate.dat"
    grastate.write_text("# GALERA saved state\nuuid: 1234\nseqno: 7\n")
    # a sleeping process named like a daemon, and one of the same name that only asks for --version
    sleeper = subprocess.Popen(["sleep", "30"])
    version = subprocess.Popen(["sh", "-c", "exec -a sleep sleep 30 --version"])
    try:
        out = facts({"daemon": [str(grastate), "sleep"]})["daemon"]
    finally:
        for p in (sleeper, version):
            p.kill()
            p.wait()
    assert isinstance(out, dict)
    assert out["grastate"] == grastate.read_text()
    pids = out["pids"].split()
    assert str(sleeper.pid) in pids
    assert str(version.pid) not in pids
    assert facts({"daemon": [str(tmp_path / "none"), "no-such-daemon"]})["daemon"] == {"grastate": "", "pids": ""}


def test_software_part_on_a_node_without_mariadb(tmp_path: Path) -> None:
    out = facts({"software": ["studio", str(tmp_path / "mariadbd"), str(tmp_path / "libgalera_smm.so")]})
    software = out["software"]
    assert isinstance(software, dict)
    assert software["python"] == list(sys.version_info[:3])
    assert software["mariadbd"] is None and software["provider"] is False
    arbiter = facts({"software": ["arbiter", "/nowhere", "/nowhere"]})["software"]
    assert isinstance(arbiter, dict) and "garbd" in arbiter and "mariadbd" not in arbiter


def test_software_part_finds_the_galera_version_after_a_literal_search(tmp_path: Path) -> None:
    lib = tmp_path / "libgalera_smm.so"
    lib.write_bytes(b"\x00(rnot-a-version)\x00 1.2 (r99) 26.4.23(rabc123)\x00 9.9(rdef)")
    out = facts({"software": ["studio", str(tmp_path / "mariadbd"), str(lib)]})["software"]
    assert isinstance(out, dict)
    assert out["provider_version"] == "26.4.23"


def test_resolve_part_and_a_crashed_part_stay_apart() -> None:
    out = facts({"resolve": ["localhost", "no-such-host.invalid"], "redis": ["127.0.0.1", "not-a-port"]})
    resolve = out["resolve"]
    assert isinstance(resolve, dict)
    assert resolve["localhost"] == ["127.0.0.1"]
    assert str(resolve["no-such-host.invalid"]).startswith("error: ")
    assert out["redis"] == {"crashed": "ValueError: invalid literal for int() with base 10: 'not-a-port'"}


def test_redis_part_reports_a_refused_port() -> None:
    out = facts({"redis": ["127.0.0.1", "1"]}, {"redis": "secret"})["redis"]
    assert isinstance(out, dict)
    assert out["ok"] is False and out["error"]


def nothing(*_a: object) -> Outcome:
    return Outcome(Status.OK, "")


def _check(id: str, scope: str = "node", needs_ssh: bool = True, setup: bool = False,
           uses: list[str] | None = None) -> Check:
    return Check(id, id, nothing, scope=scope, needs_ssh=needs_ssh,  # type: ignore[arg-type]
                 node_setup=nothing if setup else None, teardown=nothing if setup else None,
                 uses=(lambda _p: list(uses)) if uses is not None else None)


def test_stages_release_a_node_when_its_ssh_check_is_in() -> None:
    profile = load_profile(PROFILE, check_files=False)
    names = [n.name for n in profile.nodes]
    ssh, soft = _check("ssh", needs_ssh=False), _check("software")
    net = _check("network", setup=True)
    dns = _check("authoring-dns", scope="cluster", needs_ssh=False)
    pair = _check("crafter-sync", scope="cluster", uses=names[:2])
    clock = _check("clock", scope="cluster")
    plan = [(ssh, n) for n in names] + [(soft, n) for n in names] + [(net, n) for n in names] + [
        (dns, CLUSTER), (pair, CLUSTER), (clock, CLUSTER)]
    stages = _Stages(profile, plan)
    assert stages.first == [(ssh, n) for n in names]
    assert stages.answered([]) == [(dns, CLUSTER)]
    assert stages.answered([names[0]]) == [(soft, names[0])]
    assert stages.answered([names[1]]) == [(soft, names[1]), (pair, CLUSTER)]
    assert not stages.all_answered
    assert stages.answered([names[2]]) == [(soft, names[2])]
    assert stages.all_answered
    assert stages.gated == [(net, n) for n in names] + [(clock, CLUSTER)]
    assert set(stages.teardown_of) == {"network"}
    assert stages.node_setups == [nothing]


def test_stages_without_ssh_checks_release_everything_at_once() -> None:
    profile = load_profile(PROFILE, check_files=False)
    soft = _check("software")
    plan = [(soft, n.name) for n in profile.nodes]
    stages = _Stages(profile, plan)
    assert stages.answered([]) == plan
    assert stages.all_answered


def test_the_registered_plan_stages_every_check_once() -> None:
    profile = load_profile(PROFILE, check_files=False)
    plan = planned(profile)
    stages = _Stages(profile, plan)
    released = stages.answered([])
    for n in profile.nodes:
        released += stages.answered([n.name])
    assert sorted(map(repr, stages.first + released + stages.gated)) == sorted(map(repr, plan))
    assert {c.id for c, _ in stages.gated} == {"network"}


def test_services_part_says_what_the_shell_probe_says() -> None:
    from wizard.checks.services import PROBE
    from wizard.remote import q

    for unit, socket in (("mariadb.service", "mariadb.socket"), ("no-such-unit.service", "no-such-unit.socket")):
        shell = subprocess.run(["sh", "-c", PROBE.format(unit=q(unit), socket=q(socket))], capture_output=True,
                               text=True, check=True).stdout
        assert facts({"services": [unit, socket]})["services"] == shell


@pytest.mark.parametrize("where", ["existing", "missing/below"])
def test_disk_part_says_what_df_says(tmp_path: Path, where: str) -> None:
    from wizard.checks.disk import DF

    d = tmp_path / where
    if where == "existing":
        d.mkdir()
    shell = subprocess.run(["sh", "-c", DF.text.format(data_dir=str(d))], capture_output=True, text=True,
                           check=True).stdout
    said = facts({"disk": str(d)})["disk"]
    assert isinstance(said, str) and said.endswith("\n") and len(said.split()) == len(shell.split()) == 6
    mine, theirs = said.split(), shell.split()
    assert [mine[i] for i in (0, 1, 5)] == [theirs[i] for i in (0, 1, 5)]  # the filesystem, its size, its mount
    assert abs(int(mine[3]) - int(theirs[3])) < 1024 * 1024  # free space: others write on this disk meanwhile


def test_repo_part_finds_what_find_repo_finds(tmp_path: Path) -> None:
    from wizard.crafter.sync_trust import FIND_REPO

    (tmp_path / "repos" / "sites" / "one" / ".git").mkdir(parents=True)
    (tmp_path / "repos" / "sites" / "two" / ".git").mkdir(parents=True)
    for data in (tmp_path, tmp_path / "none"):
        alone = subprocess.run([sys.executable, "-I", "-S", "-c", FIND_REPO, str(data)], capture_output=True,
                               text=True, check=True).stdout
        assert facts({"repo": str(data)})["repo"] == alone.strip()
    assert facts({"repo": str(tmp_path)})["repo"] == str(tmp_path / "repos" / "sites" / "one")


def test_a_session_serves_requests_until_its_stdin_closes() -> None:
    import socket as sk
    import time

    request = {"facts": {"resolve": ["localhost"]}, "listen": ["127.0.0.1", [0], 30], "serve": True}
    proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", SESSION, json.dumps(request)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write("{}\n")
        proc.stdin.flush()
        first = json.loads(proc.stdout.readline())
        assert first["listener"]["pid"] == proc.pid and first["listener"]["bound"] == [0]
        part, done = json.loads(proc.stdout.readline()), json.loads(proc.stdout.readline())
        assert part["part"] == "resolve" and part["value"]["localhost"] == ["127.0.0.1"]
        assert done == {"done": ["resolve"]}
        with sk.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]  # bound, not listening: refused
        for n, (do, arg) in enumerate([("ports", [3, [f"127.0.0.1:{closed}"]]), ("time", None),
                                       ("unlisten", None), ("nonsense", None)], 1):
            proc.stdin.write(json.dumps({"id": n, "do": do, "arg": arg}) + "\n")
            proc.stdin.flush()
            reply = json.loads(proc.stdout.readline())
            assert reply["id"] == n
            if do == "ports":
                assert reply["result"] == {f"127.0.0.1:{closed}": "refused"}
            elif do == "time":
                assert abs(reply["result"] - time.time()) < 60
            elif do == "unlisten":
                assert reply["result"] is True
            else:
                assert "crashed" in reply
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()



def test_a_session_streams_through_the_agent_in_agent_scope() -> None:
    """In sudo_scope agent the session runs as `ENTRY root check-node-session`: the agent passes stdin on as it comes
    (requests answered before stdin closes) and the script's stdout straight through."""
    from wizard.agent.rootcmd import SCRIPTS, RootCall, catalogue_of
    from wizard.checks.facts import SESSION_PY

    call: RootCall = SESSION_PY(json.dumps({"facts": {}, "serve": True}))
    agent = ("import json, sys; from wizard.agent import rootcmd; "
             f"rootcmd.local_catalogue = lambda: json.loads({json.dumps(json.dumps(catalogue_of(SCRIPTS)))}); "
             "sys.exit(rootcmd.main_root([sys.argv[1]]))")
    proc = subprocess.Popen([sys.executable, "-c", agent, call.name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[2])
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps(call.to_json()) + "\n{}\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline()) == {"done": []}
        proc.stdin.write(json.dumps({"id": 7, "do": "time", "arg": None}) + "\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 7  # answered while stdin is still open
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
