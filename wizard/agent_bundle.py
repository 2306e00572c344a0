"""Builds the node agent as a zipapp: wizard/agent plus the redis-py it needs, nothing else.

The zip is deterministic (fixed timestamps, sorted entries), so its hash only changes when the code
does, and a re-run uploads nothing.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from functools import cache
from pathlib import Path

import async_timeout
import redis

import wizard.agent

MAIN = "import sys\nfrom wizard.agent.runtime import main\nsys.exit(main())\n"
EPOCH = (2020, 1, 1, 0, 0, 0)


def _add_tree(zf: zipfile.ZipFile, root: Path, arc_prefix: str) -> None:
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        _add(zf, f"{arc_prefix}/{path.relative_to(root).as_posix()}", path.read_bytes())


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


@cache
def build_agent() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        _add(zf, "__main__.py", MAIN.encode())
        _add(zf, "wizard/__init__.py", b'"""The node-side part of studio-cluster."""\n')
        _add_tree(zf, Path(wizard.agent.__file__).parent, "wizard/agent")
        _add_tree(zf, Path(redis.__file__).parent, "redis")
        at = Path(async_timeout.__file__)
        if at.name == "__init__.py":
            _add_tree(zf, at.parent, "async_timeout")
        else:
            _add(zf, "async_timeout.py", at.read_bytes())
    return buf.getvalue()


def agent_digest() -> str:
    return hashlib.sha256(build_agent()).hexdigest()
