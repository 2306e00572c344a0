"""SSH: reachable, authenticates, host key known and matching, root or working sudo."""

from __future__ import annotations

from wizard.checks.base import CheckContext, Outcome, fail, ok, register
from wizard.profile import Node
from wizard.remote import RemoteError


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
    sudo = conn.run("sudo -n true", privileged=False, check=False, timeout=10)
    if sudo.exit_code != 0:
        user = node.ssh.user
        return fail(f"sudo -n does not work for {user}: {sudo.stderr.strip()[:120]}",
                    f"allow {user} passwordless sudo on {node.name}: the rule '{user} ALL=(root) NOPASSWD: ALL' "
                    f"in /etc/sudoers.d/studio-cluster (visudo -f /etc/sudoers.d/studio-cluster)")
    return ok(f"{node.ssh.user}@{node.address}, host key verified, sudo works{notes}")
