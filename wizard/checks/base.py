"""The check registry: each prerequisite check is a small unit registered in one place.

A check is a function of (context, node) returning an :class:`Outcome`; the runner turns it into a
:class:`CheckResult` and reports each one the moment it finishes, so the TUI can turn rows green one
by one and `studio-cluster check` can print its table.  Checks with `scope="cluster"` run once, not
per node (e.g. the authoring DNS name, clock skew across nodes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from wizard.agent.rootcmd import RootScript
from wizard.profile import Node, Profile, Role
from wizard.remote import Remote
from wizard.secrets import Secrets

CLUSTER = "cluster"  # the pseudo-node that cluster-scoped checks report under


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Outcome:
    status: Status
    summary: str
    fix: str = ""


def ok(summary: str) -> Outcome:
    return Outcome(Status.OK, summary)


def warn(summary: str, fix: str = "") -> Outcome:
    return Outcome(Status.WARN, summary, fix)


def fail(summary: str, fix: str) -> Outcome:
    return Outcome(Status.FAIL, summary, fix)


@dataclass(frozen=True)
class CheckResult:
    check: str
    title: str
    node: str
    status: Status
    summary: str
    fix: str = ""
    duration: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        return d


@dataclass
class CheckContext:
    """What a check may use.  `shared` holds data a setup step prepared for all nodes."""

    profile: Profile
    secrets: Secrets
    remote: Remote
    shared: dict[str, Any] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def on_close(self, closer: Callable[[], None]) -> None:
        """Have :meth:`close` call `closer` (e.g. end a process a node kept for the run)."""
        self.closers.append(closer)

    def close(self) -> None:
        """Call every closer (the runner does, once every result is in), the last registered first."""
        while self.closers:
            self.closers.pop()()

    def run_json(self, node: Node, script: RootScript, *args: object, stdin: str | None = None,
                 timeout: float = 30) -> Any:
        """Run a python3 probe (a ``py`` root script) on the node and parse the JSON it prints last.  -I -S:
        the probes use the stdlib only, so skip site-packages and the environment (faster, and nothing on the
        node leaks in)."""
        if script.kind != "py":
            raise TypeError(f"run_json runs python probes, not the {script.kind} script {script.name}")
        res = self.remote[node.name].run(script(*args), stdin=stdin, timeout=timeout,
                                         what=f"probe on {node.name}")
        return json.loads(res.stdout.strip().splitlines()[-1])


CheckFunc = Callable[[CheckContext, Node], Outcome]
SetupFunc = Callable[[CheckContext], None]
NodeSetupFunc = Callable[[CheckContext, Node], None]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    func: Callable[..., Outcome]
    roles: frozenset[Role] = frozenset({Role.STUDIO, Role.ARBITER})
    scope: Literal["node", "cluster"] = "node"
    needs_ssh: bool = True
    setup: SetupFunc | None = None
    teardown: SetupFunc | None = None
    order: int = 50
    uses: Callable[[Profile], list[str]] | None = None
    """A cluster check that reaches only some nodes: their names (it starts once their SSH checks are in, without
    waiting for the other nodes or the setups); None: every node."""
    node_setup: NodeSetupFunc | None = None
    """Prepares one node, on each node the moment its SSH check passes; the check starts once every node has had
    its SSH check and its node setup (and every `setup` has run)."""

    def applies_to(self, node: Node) -> bool:
        return node.role in self.roles


REGISTRY: dict[str, Check] = {}


def register(id: str, title: str, *, roles: tuple[Role, ...] = (Role.STUDIO, Role.ARBITER),
             scope: Literal["node", "cluster"] = "node", needs_ssh: bool = True,
             setup: SetupFunc | None = None, teardown: SetupFunc | None = None, order: int = 50,
             uses: Callable[[Profile], list[str]] | None = None, node_setup: NodeSetupFunc | None = None,
             ) -> Callable[[Callable[..., Outcome]], Callable[..., Outcome]]:
    """Decorator: add a check to the registry (ids are unique; re-registering is a bug)."""

    def deco(func: Callable[..., Outcome]) -> Callable[..., Outcome]:
        if id in REGISTRY:
            raise RuntimeError(f"check {id!r} registered twice")
        REGISTRY[id] = Check(id, title, func, frozenset(roles), scope, needs_ssh, setup, teardown, order, uses,
                             node_setup)
        return func

    return deco


def all_checks() -> list[Check]:
    from wizard.checks import families  # noqa: F401  (importing registers them)

    return sorted(REGISTRY.values(), key=lambda c: (c.order, c.id))
