"""Builds the node agent as a zipapp: wizard/agent plus the redis-py it needs, nothing else.

The zip is deterministic (fixed timestamps, sorted entries), so its hash only changes when the code
does, and a re-run uploads nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import marshal
import sys
import zipfile
from functools import cache
from pathlib import Path

import async_timeout
import redis

import wizard.agent

MAIN = "import sys\nfrom wizard.agent.runtime import main\nsys.exit(main())\n"
EPOCH = (2020, 1, 1, 0, 0, 0)


def _add_tree(zf: zipfile.ZipFile, root: Path, arc_prefix: str, compiled: bool) -> None:
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        name = f"{arc_prefix}/{path.relative_to(root).as_posix()}"
        source = path.read_bytes()
        _add(zf, name, source)
        if compiled:
            _add(zf, importlib.util.cache_from_source(name), _unchecked_pyc(source, name))


def _unchecked_pyc(source: bytes, name: str) -> bytes:
    """A PEP 552 unchecked-hash pyc: valid whatever mtime the unpacked source gets on the node."""
    code = compile(source, name, "exec", dont_inherit=True)
    flags = (0b01).to_bytes(4, "little")  # hash-based, do not check the source
    return importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source) + marshal.dumps(code)


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def _build(compiled: bool) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        _add(zf, "__main__.py", MAIN.encode())
        _add(zf, "wizard/__init__.py", b'"""The node-side part of studio-cluster."""\n')
        _add_tree(zf, Path(wizard.agent.__file__).parent, "wizard/agent", compiled)
        _add_tree(zf, Path(redis.__file__).parent, "redis", compiled)
        at = Path(async_timeout.__file__)
        if at.name == "__init__.py":
            _add_tree(zf, at.parent, "async_timeout", compiled)
        else:
            _add(zf, "async_timeout.py", at.read_bytes())
    return buf.getvalue()


@cache
def build_agent() -> bytes:
    """The zipapp with byte code for this interpreter's cache tag: a node with the same Python minor
    version runs it without compiling anything (compiling redis-py costs about a CPU second)."""
    return _build(compiled=True)


CACHE_TAG = sys.implementation.cache_tag


def agent_argv(agent: str, command: str) -> list[str]:
    """How the agent is run, by the coordinator over SSH and by the Kubernetes pods alike: ``[python3, AGENT,
    COMMAND]``, AGENT being the unpacked bundle's directory or the zipapp itself; its config arrives on stdin."""
    return ["python3", agent, command]


@cache
def build_agent_sources() -> bytes:
    """The zipapp with sources only (about 320 kB, no byte code): what a Kubernetes ConfigMap (at most 1 MiB)
    carries to pods whose Python may be any >= 3.9; its sha256 is :func:`agent_digest`."""
    return _build(compiled=False)


@cache
def agent_digest() -> str:
    """The version of the agent: its sources only (byte code need not be byte-for-byte reproducible)."""
    return hashlib.sha256(_build(compiled=False)).hexdigest()
