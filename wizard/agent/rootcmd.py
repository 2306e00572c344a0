"""Root actions by name: how the controller's commands run as root on a node whose SSH user may run only the
agent through sudo (``ssh.sudo_scope: agent``; the rule ``studio-cluster sudoers PROFILE`` prints).

A :class:`RootScript` is a named, fixed text: a shell template (``kind="sh"``) whose ``{field}``s are filled
with shell-quoted values, or a Python program (``kind="py"``) run as ``python3 -I -S -c TEXT ARGS...``.
Every script is registered when its module is imported, and the whole catalogue travels inside the agent
bundle (``wizard/agent/root_catalogue.json``).  On a node in agent scope the installed agent runs only texts
of its own catalogue: the SSH user chooses a name and values, never the text, and every value is quoted
here, on the node.  With full sudo (or as root) the controller renders the same call itself, so both
scopes run the same command line.

Wire format of ``ENTRY root NAME``: stdin's first line is a JSON object ``{"args": [...], "values": {...}}``;
the rest of stdin is the script's own stdin.  The exit code, stdout and stderr are the script's.

Stdlib only: this module runs on the nodes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

ENTRY = "/usr/local/sbin/studio-cluster-agent"
"""The one program the SSH user may run as root in agent scope (a root-owned two-line shell script)."""
INSTALL_ROOT = "/usr/local/lib/studio-cluster"
"""Where the installer unpacks agent versions (``agent-<digest16>``), root-owned."""
INSTALLED = INSTALL_ROOT + "/agent"
"""A symlink to the installed version's directory: what :data:`ENTRY` runs."""
AGENT_FIELD = "AGENT"
"""A template field naming the agent's own path: the controller's value in full scope, the installed agent's
path on a node in agent scope (whatever the controller sent)."""
CATALOGUE_FILE = "root_catalogue.json"

Value = Union[str, int, Sequence[str], "RootCall"]
SCRIPTS: dict[str, RootScript] = {}


class RootScriptError(Exception):
    """A call the catalogue cannot run: unknown name, missing or wrong-typed value."""


@dataclass(frozen=True)
class RootScript:
    """One named root action.  ``text``: for ``sh``, a :meth:`str.format` template (literal braces doubled)
    whose fields are replaced by quoted values; for ``py``, a Python program given its values as ``argv``."""

    name: str
    text: str
    kind: str = "sh"

    def __post_init__(self) -> None:
        if self.kind not in ("sh", "py"):
            raise ValueError(f"root script {self.name}: kind must be sh or py, not {self.kind!r}")
        other = SCRIPTS.get(self.name)
        if other is not None and (other.text, other.kind) != (self.text, self.kind):
            raise ValueError(f"two root scripts are named {self.name!r}")
        SCRIPTS[self.name] = self

    def __call__(self, *args: object, **values: Value) -> RootCall:
        """A call of this script: ``py`` scripts take positional ``args`` (each becomes one argv word), ``sh``
        templates take keyword ``values`` (str/int quoted, a list becomes quoted words, a RootCall the quoted
        command line of that call)."""
        if self.kind == "py" and values:
            raise TypeError(f"root script {self.name} (py) takes positional arguments only")
        if self.kind == "sh" and args:
            raise TypeError(f"root script {self.name} (sh) takes keyword values only")
        return RootCall(self.name, tuple(str(a) for a in args), dict(values))


@dataclass(frozen=True)
class RootCall:
    """A :class:`RootScript` with its values: what crosses to the node in agent scope."""

    name: str
    args: tuple[str, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "args": list(self.args),
                "values": {k: (v.to_json() if isinstance(v, RootCall) else v) for k, v in self.values.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RootCall:
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise RootScriptError("a root call needs a name")
        values: dict[str, Any] = {}
        for k, v in dict(data.get("values") or {}).items():
            values[str(k)] = cls.from_json(v) if isinstance(v, Mapping) else v
        return cls(data["name"], tuple(str(a) for a in data.get("args") or ()), values)


def _quote(name: str, value: Any, catalogue: Mapping[str, Mapping[str, str]], agent: str | None) -> str:
    if isinstance(value, RootCall):
        return shlex.quote(render(value, catalogue, agent))
    if isinstance(value, bool):
        raise RootScriptError(f"value {name}: a bool has no shell form; pass a str or int")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return shlex.quote(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return " ".join(shlex.quote(v) for v in value)
    raise RootScriptError(f"value {name}: {type(value).__name__} has no shell form")


def render(call: RootCall, catalogue: Mapping[str, Mapping[str, str]], agent: str | None = None) -> str:
    """The command line ``sh -c`` runs for ``call``.  ``catalogue``: name -> {"text", "kind"}.  ``agent``: when
    given, the value of :data:`AGENT_FIELD` whatever the call says.  Raises RootScriptError."""
    entry = catalogue.get(call.name)
    if entry is None:
        raise RootScriptError(f"no root script is named {call.name!r} in this agent's catalogue "
                              "(an agent of another studio-cluster version?)")
    text, kind = entry["text"], entry.get("kind", "sh")
    if kind == "py":
        return " ".join(shlex.quote(w) for w in ("python3", "-I", "-S", "-c", text, *call.args))
    values = dict(call.values)
    if agent is not None:
        values[AGENT_FIELD] = agent
    quoted = {k: _quote(k, v, catalogue, agent) for k, v in values.items()}
    try:
        return text.format(**quoted)
    except KeyError as exc:
        raise RootScriptError(f"root script {call.name} needs the value {exc.args[0]}") from None
    except (IndexError, ValueError) as exc:
        raise RootScriptError(f"root script {call.name}: {exc}") from None


def catalogue_of(scripts: Mapping[str, RootScript]) -> dict[str, dict[str, str]]:
    return {name: {"kind": s.kind, "text": s.text} for name, s in sorted(scripts.items())}


def local_catalogue() -> dict[str, dict[str, str]]:
    """The catalogue inside this agent (empty when the bundle has none)."""
    import pkgutil

    try:
        data = pkgutil.get_data("wizard.agent", CATALOGUE_FILE)
    except OSError:
        return {}
    return json.loads(data) if data else {}


def damaged_files(home: str) -> list[str]:
    """Files of the installed agent at ``home`` that are missing or differ from its MANIFEST.json (written by the
    installer); [] when all match or when there is no manifest (an agent the controller unpacked itself)."""
    import hashlib

    try:
        with open(os.path.join(home, "MANIFEST.json")) as fh:
            manifest = json.load(fh)
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        return ["MANIFEST.json"]
    bad = []
    for rel, want in sorted(manifest.items()):
        try:
            with open(os.path.join(home, rel), "rb") as fh:
                if hashlib.sha256(fh.read()).hexdigest() != want:
                    bad.append(rel)
        except OSError:
            bad.append(rel)
    return bad


def agent_home() -> str:
    """This agent's directory (or zipapp), as ``python3 AGENT`` runs it."""
    return os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else INSTALLED


def _read_line(fd: int) -> tuple[bytes, bytes | None]:
    """The first line of ``fd`` and whatever was read past it (None: nothing), without a buffered reader."""
    data = b""
    while b"\n" not in data:
        chunk = os.read(fd, 65536)
        if not chunk:
            return data, None
        data += chunk
    line, rest = data.split(b"\n", 1)
    return line, rest or None


def main_root(argv: list[str]) -> int:
    """``ENTRY root NAME``: run one catalogue script as root; stdin = JSON header line + the script's stdin."""
    if len(argv) != 1:
        print("usage: studio-cluster-agent root NAME (a JSON header line on stdin)", file=sys.stderr)
        return 2
    fd = sys.stdin.fileno()
    header, leftover = _read_line(fd)
    try:
        data = json.loads(header) if header.strip() else {}
        call = RootCall.from_json({**data, "name": argv[0]})
        command = render(call, local_catalogue(), agent_home())
    except (ValueError, RootScriptError) as exc:
        print(f"studio-cluster-agent: {exc}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    proc = subprocess.Popen(["sh", "-c", command], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    pipe = proc.stdin

    def feed() -> None:
        nonlocal leftover  # the script may never read its stdin: a full pipe must not block its exit
        try:
            while True:
                chunk = os.read(fd, 65536) if leftover is None else leftover
                leftover = None
                if not chunk:
                    break
                pipe.write(chunk)
                pipe.flush()
        except (BrokenPipeError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                pipe.close()

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    return proc.wait()
