"""SSH: reachable, authenticates, host key known and matching, root or working sudo."""

from __future__ import annotations

import re

from wizard.agent.rootcmd import ENTRY
from wizard.agent_bundle import agent_digest
from wizard.checks.base import CheckContext, Outcome, fail, ok, register, warn
from wizard.profile import Node
from wizard.remote import NodeConnection, RemoteError, sh


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
        return _agent_scope(conn, node, notes)
    sudo = conn.run("sudo -n true", privileged=False, check=False, timeout=10)
    if sudo.exit_code != 0:
        user = node.ssh.user
        return fail(f"sudo -n does not work for {user}: {sudo.stderr.strip()[:120]}",
                    f"allow {user} passwordless sudo on {node.name}: the rule '{user} ALL=(root) NOPASSWD: ALL' "
                    f"in /etc/sudoers.d/studio-cluster (visudo -f /etc/sudoers.d/studio-cluster)")
    return ok(f"{node.ssh.user}@{node.address}, host key verified, sudo works{notes}")


def _agent_scope(conn: NodeConnection, node: Node, notes: str) -> Outcome:
    """``sudo_scope: agent``: sudo runs the installed agent, it is this studio-cluster's version and sound, and sudo
    allows the SSH user nothing else (a broader rule left in place makes the narrow one mean nothing)."""
    res = conn.run(sh("sudo", "-n", "--", ENTRY, "digest"), privileged=False, check=False, timeout=20)
    user, fix = node.ssh.user, conn.sudo_fix()
    said = (res.stderr.strip() or res.stdout.strip())[:160]
    if res.exit_code == 3:
        return fail(f"the agent installed on {node.name} is damaged ({said})", fix + ": it replaces what is damaged")
    if res.exit_code != 0:
        return fail(f"sudo -n {ENTRY} does not work for {user}: {said}", fix)
    have, want = res.stdout.strip(), agent_digest()
    if have != want:
        return fail(f"the agent installed on {node.name} is version {have[:16]}; this studio-cluster needs "
                    f"{want[:16]}", fix + " (again after each studio-cluster upgrade)")
    listed = conn.run("sudo -n -l", privileged=False, check=False, timeout=20)
    more = broader_than_agent(listed.stdout) if listed.exit_code == 0 else []
    if more:
        return warn(f"{user} may run more than the agent through sudo on {node.name}: {', '.join(more)[:160]}",
                    f"remove that rule (e.g. /etc/sudoers.d/{user}, with visudo) so that sudo allows {user} only "
                    f"{ENTRY}; until then the narrow rule protects nothing")
    return ok(f"{user}@{node.address}, host key verified, sudo runs only the agent ({want[:16]}){notes}")


def broader_than_agent(listing: str) -> list[str]:
    """The commands ``sudo -n -l`` lists beyond :data:`ENTRY` (``ALL`` for a NOPASSWD: ALL rule).  ``listing``: its
    output, whose command lines look like ``    (root) NOPASSWD: /usr/local/sbin/studio-cluster-agent``."""
    found: list[str] = []
    in_commands = False
    for line in listing.splitlines():
        if "may run the following commands" in line:
            in_commands = True
            continue
        text = line.strip()
        if not in_commands or not text.startswith("("):
            continue
        commands = text.split(")", 1)[1]
        commands = re.sub(r"^\s*(?:[A-Z_]+:\s*)+", "", commands)  # tags: NOPASSWD:, SETENV:, ...
        for command in (c.strip() for c in commands.split(",")):
            if command and command != ENTRY and command not in found:
                found.append(command)
    return found
