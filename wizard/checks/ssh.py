"""SSH: reachable, authenticates, host key known and matching, root or working sudo."""

from __future__ import annotations

from wizard.agent.rootcmd import ENTRY
from wizard.agent_bundle import agent_digest
from wizard.checks.base import CheckContext, Outcome, fail, ok, register
from wizard.profile import Node
from wizard.remote import RemoteError, Result, sh


@register("ssh", "SSH access", order=0, needs_ssh=False)
def ssh_access(ctx: CheckContext, node: Node) -> Outcome:
    conn = ctx.remote[node.name]
    try:
        res = conn.run("id -u", privileged=False, timeout=10, what="id -u")
    except RemoteError as exc:
        return fail(exc.message, exc.hint or "check SSH settings for this node")
    notes = "".join(f"; {note}" for note in conn.notes)  # e.g. known_hosts lines skipped (said once per run)
    if res.stdout.strip() == "0":
        return ok(f"{node.ssh.user}@{node.address}:{node.ssh.port}, host key verified, root{notes}")
    if not node.ssh.sudo:
        return fail(f"{node.ssh.user} is not root and ssh.sudo is off",
                    "log in as root, or set ssh.sudo: true and allow passwordless sudo")
    if conn.agent_scope:
        return _agent_scope(conn.run(sh("sudo", "-n", "--", ENTRY, "digest"), privileged=False, check=False,
                                     timeout=20), node, notes)
    sudo = conn.run("sudo -n true", privileged=False, check=False, timeout=10)
    if sudo.exit_code != 0:
        user = node.ssh.user
        return fail(f"sudo -n does not work for {user}: {sudo.stderr.strip()[:120]}",
                    f"allow {user} passwordless sudo on {node.name}: the rule '{user} ALL=(root) NOPASSWD: ALL' "
                    f"in /etc/sudoers.d/studio-cluster (visudo -f /etc/sudoers.d/studio-cluster)")
    return ok(f"{node.ssh.user}@{node.address}, host key verified, sudo works{notes}")


def _agent_scope(res: Result, node: Node, notes: str) -> Outcome:
    """``sudo_scope: agent``: sudo runs the installed agent, and it is this studio-cluster's version."""
    user, fix = node.ssh.user, (f"write the installer with `studio-cluster sudoers PROFILE --installer FILE` and run "
                                f"`sh FILE --rule {node.ssh.user}` as root on {node.name}")
    if res.exit_code != 0:
        said = (res.stderr.strip() or res.stdout.strip())[:160]
        return fail(f"sudo -n {ENTRY} does not work for {user}: {said}", fix)
    have, want = res.stdout.strip(), agent_digest()
    if have != want:
        return fail(f"the agent installed on {node.name} is version {have[:16]}; this studio-cluster needs "
                    f"{want[:16]}", fix + " (again after each studio-cluster upgrade)")
    return ok(f"{user}@{node.address}, host key verified, sudo runs only the agent ({want[:16]}){notes}")
