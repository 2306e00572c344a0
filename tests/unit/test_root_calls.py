"""Every privileged remote command is a named root script (issue 16, least privilege): a static scan of the
controller's code for ``X.run(...)`` calls on node connections whose command is a plain string or argv list without
``privileged=False``.  In ``ssh.sudo_scope: agent`` such a call is refused at run time (RemoteError); this finds
one before a user on a restricted node does."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = ("agent", "lab", "tui")  # node-side code, the labs (root on their own hosts), the screens (no remote calls)
PLAIN = {"sh", "q", "str", "join", "format"}  # calls that build a plain command string


def _plain_command(arg: ast.expr) -> bool:
    if isinstance(arg, (ast.Constant, ast.JoinedStr, ast.List, ast.BinOp, ast.Tuple)):
        return True
    if isinstance(arg, ast.Call):
        name = arg.func.id if isinstance(arg.func, ast.Name) else getattr(arg.func, "attr", "")
        return name in PLAIN
    return False


def _privileged(call: ast.Call) -> bool:
    for kw in call.keywords:
        if kw.arg == "privileged" and isinstance(kw.value, ast.Constant) and kw.value.value is False:
            return False
    return True


def test_no_plain_privileged_remote_command() -> None:
    found = []
    for path in sorted((ROOT / "wizard").rglob("*.py")):
        rel = path.relative_to(ROOT / "wizard")
        if rel.parts[0] in SKIP or rel.name.startswith("lab"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "run"):
                continue
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id in ("subprocess", "asyncio"):
                continue
            if node.args and _plain_command(node.args[0]) and _privileged(node):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == [], "privileged commands not named root scripts (wizard.agent.rootcmd): " + ", ".join(found)
