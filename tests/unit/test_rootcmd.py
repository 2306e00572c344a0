"""Named root scripts (wizard.agent.rootcmd): quoting on either side, the catalogue in the bundle, the wire format
of ``ENTRY root NAME`` run by a real agent bundle, and every module with scripts listed for the catalogue."""

from __future__ import annotations

import ast
import getpass
import grp
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizard.agent.rootcmd import SCRIPTS, RootCall, RootScript, RootScriptError, catalogue_of, render
from wizard.agent_bundle import build_agent
from wizard.root_scripts import MODULES, catalogue

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _own_scripts_only() -> Iterator[None]:
    """Scripts made here must not reach the catalogue of a bundle built later in the session."""
    yield
    for name in [n for n in SCRIPTS if n.startswith("test-")]:
        del SCRIPTS[name]


def test_values_are_quoted_and_nested_calls_rendered() -> None:
    outer = RootScript("test-outer", "setsid sh -c {inner} > {out}; echo {size} {files}")
    inner = RootScript("test-inner", "python3 {AGENT} {command}")
    cat = catalogue_of({s.name: s for s in (outer, inner)})
    call = outer(inner=inner(AGENT="/x", command="a b"), out="$(touch /tmp/pwn)", size=12, files=["a", "b c"])
    line = render(call, cat)
    assert line == "setsid sh -c 'python3 /x '\"'\"'a b'\"'\"'' > '$(touch /tmp/pwn)'; echo 12 a 'b c'"
    # on a node in agent scope the agent's own path wins over whatever the controller sent
    assert "/installed" in render(call, cat, agent="/installed") and "/x" not in render(call, cat, agent="/installed")
    # the wire form round-trips to the same command line
    assert render(RootCall.from_json(json.loads(json.dumps(call.to_json()))), cat) == line


def test_bad_calls_are_named() -> None:
    s = RootScript("test-needs", "echo {a}")
    cat = catalogue_of({s.name: s})
    with pytest.raises(RootScriptError, match="needs the value a"):
        render(s(), cat)
    with pytest.raises(RootScriptError, match="no root script is named 'nope'"):
        render(RootCall("nope"), cat)
    with pytest.raises(RootScriptError, match="bool"):
        render(s(a=True), cat)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="two root scripts"):
        RootScript("test-needs", "echo {b}")


def test_every_module_with_root_scripts_is_in_the_catalogue() -> None:
    defining = set()
    for path in (ROOT / "wizard").rglob("*.py"):
        if "agent" in path.relative_to(ROOT / "wizard").parts[:1]:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "RootScript":
                defining.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
                break
    assert defining - set(MODULES) == set(), "add these modules to wizard.root_scripts.MODULES"
    assert {"put", "agent-launch", "agent-wait"} <= set(catalogue())


def test_the_bundled_agent_runs_a_catalogue_script_with_stdin(tmp_path: Path) -> None:
    """What ``sudo studio-cluster-agent root put`` does on a node, run here as this user."""
    bundle = tmp_path / "agent.pyz"
    bundle.write_bytes(build_agent())
    target = tmp_path / "d i r" / "file $(x)"
    data = b"x" * 200_000  # more than a pipe holds
    header = RootCall("put", values={"dir": str(target.parent), "path": str(target), "staged": str(target) + ".tmp",
                                     "size": len(data), "mode": "640",
                                     "owner": f"{getpass.getuser()}:{grp.getgrgid(os.getgid()).gr_name}"}).to_json()
    del header["name"]
    agent = [sys.executable, "-I", "-S", str(bundle), "root"]  # -S: this venv's editable install stays out
    proc = subprocess.run([*agent, "put"], input=json.dumps(header).encode() + b"\n" + data, capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert target.read_bytes() == data and (target.stat().st_mode & 0o777) == 0o640
    # a cut upload leaves the old file whole, and the exit code is the script's
    cut = subprocess.run([*agent, "put"], input=json.dumps(header).encode() + b"\nshort", capture_output=True,
                         timeout=60)
    assert cut.returncode != 0 and target.read_bytes() == data
    # a script that never reads its stdin does not hang on a large one
    header["values"] = {"path": str(tmp_path / "none")}
    ok = subprocess.run([*agent, "agent-digest"],
                        input=json.dumps(header).encode() + b"\n" + data, capture_output=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout == b""
    unknown = subprocess.run([*agent, "rm-everything"], input=b"{}\n", capture_output=True, timeout=60)
    assert unknown.returncode == 2 and b"no root script is named 'rm-everything'" in unknown.stderr
