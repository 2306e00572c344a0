"""The host-key dialog: what a node offered, what is on file, and an explicit Accept.

A node whose host key is unknown or changed is refused (nothing is trusted on first use).  This dialog
shows the SHA256 fingerprint the node offered and the one on file, with how to compare it on the host
itself; focus starts on Reject.  Accept writes the offered key into the node's known_hosts file through the
core (:meth:`wizard.remote.NodeConnection.accept_host_key`, only that key) and dismisses with the line
saying what was written; Reject (or escape) dismisses with None and writes nothing.  A revoked key cannot
be accepted here.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static
from textual.worker import Worker, WorkerState

from wizard.profile import Node
from wizard.remote import HostKeyError, NodeConnection


def host_key_text(node: Node, problem: HostKeyError) -> str:
    """The dialog's body: the node, the fingerprints, the file, and how to check (plain text)."""
    kind = problem.key_type or "key"
    on_file = problem.on_file if problem.status == "changed" else "none (the host is not in the file)"
    what = {"new": "is not known", "changed": "has CHANGED", "revoked": "is REVOKED"}.get(problem.status, "is refused")
    pub = f"/etc/ssh/ssh_host_{kind.removeprefix('ssh-').split('-')[0]}_key.pub"
    return (f"The host key of {node.name} ({problem.lookup or node.address}) {what}.\n\n"
            f"  key type: {kind}\n"
            f"  offered:  {problem.offered}\n"
            f"  on file:  {on_file}\n"
            f"  file:     {problem.known_hosts}\n\n"
            f"Compare the offered fingerprint with the host itself (on {node.name}: ssh-keygen -lf {pub}) "
            "before you accept. A changed key means the host was reinstalled, or someone is in the middle.")


class HostKeyScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    HostKeyScreen { align: center middle; }
    HostKeyScreen > Vertical { width: 90%; max-width: 110; height: auto; border: thick $warning; padding: 1 2;
                               background: $surface; }
    HostKeyScreen #hostkey-body { margin: 1 0; }
    HostKeyScreen #hostkey-note { color: $error; height: auto; }
    HostKeyScreen Horizontal { height: auto; align-horizontal: right; }
    HostKeyScreen Button { margin-left: 1; }
    """
    BINDINGS = [Binding("escape", "reject", "Reject")]

    def __init__(self, node: Node, problem: HostKeyError) -> None:
        super().__init__()
        self.node = node
        self.problem = problem

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Host key of {self.node.name}", classes="section-title")
            yield Static(host_key_text(self.node, self.problem), id="hostkey-body", markup=False)
            yield Static("", id="hostkey-note", markup=False)
            with Horizontal():
                yield Button("Reject", id="hostkey-reject", compact=True)
                yield Button("Accept and write known_hosts", id="hostkey-accept", variant="warning", compact=True,
                             disabled=self.problem.key is None or self.problem.status == "revoked")

    def on_mount(self) -> None:
        self.query_one("#hostkey-reject", Button).focus()

    @on(Button.Pressed, "#hostkey-accept")
    def action_accept(self) -> None:
        if self.problem.key is None or self.problem.status == "revoked":
            return
        self._accept()

    @work(thread=True, exclusive=True, group="hostkey", exit_on_error=False)
    def _accept(self) -> str:
        return NodeConnection(self.node).accept_host_key(self.problem.offered, key=self.problem.key)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "hostkey":
            return
        if event.state is WorkerState.SUCCESS and isinstance(event.worker.result, str):
            self.dismiss(event.worker.result)
        elif event.state is WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            text = getattr(error, "message", None) or str(error)
            self.query_one("#hostkey-note", Static).update(f"nothing written: {text}")

    @on(Button.Pressed, "#hostkey-reject")
    def action_reject(self) -> None:
        self.dismiss(None)
