"""Builds the node agent as a zipapp: wizard/agent plus the redis-py it needs, nothing else.

The zip is deterministic (fixed timestamps, sorted entries), so its hash only changes when the code
does, and a re-run uploads nothing.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import io
import json
import marshal
import sys
import zipfile
from functools import cache
from pathlib import Path

import async_timeout
import redis

import wizard.agent
from wizard.agent.rootcmd import CATALOGUE_FILE

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


def _build(compiled: bool, catalogue: bool = True) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        _add(zf, "__main__.py", MAIN.encode())
        _add(zf, "wizard/__init__.py", b'"""The node-side part of studio-cluster."""\n')
        _add_tree(zf, Path(wizard.agent.__file__).parent, "wizard/agent", compiled)
        if catalogue:  # the named root scripts (wizard.agent.rootcmd): what the agent runs as root for an SSH user
            from wizard.root_scripts import catalogue as root_catalogue

            text = json.dumps(root_catalogue(), indent=0, sort_keys=True)
            _add(zf, f"wizard/agent/{CATALOGUE_FILE}", text.encode())
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


POD_UNUSED_REDIS = (
    "redis/asyncio/", "redis/cluster.py", "redis/commands/search/", "redis/commands/timeseries/",
    "redis/commands/json/", "redis/commands/bf/", "redis/commands/graph/", "redis/commands/vectorset/",
    "redis/ocsp.py", "redis/auth/idp.py", "redis/auth/token_manager.py",
)
"""redis-py's parts the agent never imports (asyncio, Redis Cluster, the modules' commands, OCSP, token auth):
left out of the Kubernetes bundle, whose ConfigMap must stay under ``kubectl apply``'s 256 KiB annotation."""
POD_REDIS_INIT_DROP = ("from redis import asyncio  # noqa\n", "from redis.cluster import RedisCluster\n",
                       '    "RedisCluster",\n')
"""The lines of ``redis/__init__.py`` that import what :data:`POD_UNUSED_REDIS` leaves out."""


def _strip_docstrings(source: str) -> str:
    """``source`` with every module, class and function docstring replaced by ``""`` in place (the rest of the
    code byte for byte: valid for any Python the original is valid for)."""
    tree = ast.parse(source)
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str) and first.end_lineno and first.end_col_offset is not None):
                spans.append((first.lineno, first.col_offset, first.end_lineno, first.end_col_offset))
    lines = source.splitlines(keepends=True)
    for l0, c0, l1, c1 in sorted(spans, reverse=True):
        lines[l0 - 1:l1] = [lines[l0 - 1][:c0] + '""' + lines[l1 - 1][c1:]]
    return "".join(lines)


@cache
def build_agent_sources() -> bytes:
    """The zipapp for Kubernetes pods (about 150 kB, 200 kB as the ConfigMap's base64): sources only, no byte
    code (the pods' Python may be any >= 3.9), wizard/agent whole, redis-py without :data:`POD_UNUSED_REDIS`
    and without its docstrings.  A ConfigMap ``kubectl apply`` (client side) copies into its
    last-applied-configuration annotation must stay under 262,144 bytes.  Raises RuntimeError when this
    redis-py's ``__init__`` no longer has the lines :data:`POD_REDIS_INIT_DROP` removes."""
    full = zipfile.ZipFile(io.BytesIO(_build(compiled=False, catalogue=False)))  # pods run no SSH root scripts
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in full.namelist():
            if name.startswith(POD_UNUSED_REDIS):
                continue
            data = full.read(name)
            if name.startswith("redis/"):
                text = data.decode()
                if name == "redis/__init__.py":
                    for line in POD_REDIS_INIT_DROP:
                        if line not in text:
                            raise RuntimeError(f"redis-py {redis.__version__}: {line.strip()!r} is no longer in "
                                               "redis/__init__.py: update POD_REDIS_INIT_DROP")
                        text = text.replace(line, "")
                data = _strip_docstrings(text).encode()
            _add(zf, name, data)
    return buf.getvalue()


@cache
def pod_agent_digest() -> str:
    """The version of the Kubernetes bundle: the sha256 of :func:`build_agent_sources` (hex)."""
    return hashlib.sha256(build_agent_sources()).hexdigest()


@cache
def agent_digest() -> str:
    """The version of the agent: its sources only (byte code need not be byte-for-byte reproducible)."""
    return hashlib.sha256(_build(compiled=False)).hexdigest()
