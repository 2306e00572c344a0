"""Service manager: does the node boot systemd, does that match ``services.manager``, are the units there.

A host runs systemd when ``/run/systemd/system`` exists (``sd_booted(3)``).  With ``manager: systemd``
the node needs the MariaDB unit (data nodes) or the garbd unit (the Arbiter), and Debian's
``mariadb.socket`` should not be enabled on a data node: it listens on 3306 and the first connection (a
client, a health probe, this tool's own network check) starts a standalone ``mariadb.service`` outside the
coordinated bootstrap: a warning, since apply turns it off.
"""

from __future__ import annotations

from wizard.checks.base import CheckContext, Outcome, fail, ok, register, warn
from wizard.checks.facts import node_fact_or
from wizard.profile import Node
from wizard.remote import q

PROBE = r"""
if [ -d /run/systemd/system ]; then echo "booted=systemd"; else echo "booted=none"; fi
echo "pid1=$(cat /proc/1/comm 2>/dev/null)"
if [ -d /run/systemd/system ]; then
  echo "unit=$(systemctl show -p LoadState --value {unit} 2>/dev/null)"
  echo "socket=$(systemctl is-enabled {socket} 2>/dev/null)/$(systemctl is-active {socket} 2>/dev/null)"
fi
"""


def _unit(name: str, kind: str = "service") -> str:
    return name if "." in name else f"{name}.{kind}"


def probed_units(ctx: CheckContext, node: Node) -> tuple[str, str]:
    """The unit the node needs (MariaDB's on a data node, garbd's on the Arbiter) and its socket unit."""
    svc = ctx.profile.services
    unit = _unit(svc.mariadb_unit if node.is_studio else svc.garbd_unit)
    return unit, unit.rsplit(".", 1)[0] + ".socket"


def _probe(ctx: CheckContext, node: Node, unit: str, socket: str) -> str:
    """What :data:`PROBE` prints on the node: from the node's check session (its ``services`` part says the same),
    else (the session failed) from the shell probe itself."""
    said: str = node_fact_or(ctx, node, "services", lambda: ctx.remote[node.name].run(
        PROBE.format(unit=q(unit), socket=q(socket)), privileged=False, timeout=15,
        what="probe the service manager").stdout)
    return said


@register("services", "Service manager", order=5)
def services(ctx: CheckContext, node: Node) -> Outcome:
    svc = ctx.profile.services
    unit, socket = probed_units(ctx, node)
    facts = dict(line.split("=", 1) for line in _probe(ctx, node, unit, socket).splitlines() if "=" in line)
    booted = facts.get("booted") == "systemd"
    pid1 = facts.get("pid1") or "?"
    if svc.manager == "systemd" and not booted:
        return fail(f"{node.name} does not run systemd (its PID 1 is {pid1}) but services.manager is systemd",
                    "set services.manager: direct for hosts without systemd, or boot the host with systemd")
    if svc.manager == "direct":
        if booted:
            return warn(f"{node.name} runs systemd but services.manager is direct: mariadbd and garbd would run "
                        "outside systemd (not restarted on failure, not started at boot)",
                        "set services.manager: systemd")
        return ok(f"no systemd (PID 1 is {pid1}); services.manager is direct")
    load = facts.get("unit", "")
    if load != "loaded":
        field = "services.mariadb_unit" if node.is_studio else "services.garbd_unit"
        package = "mariadb-server galera-4" if node.is_studio else "galera-arbitrator-4"
        return fail(f"systemd unit {unit} is {load or 'unknown'} on {node.name}",
                    f"install {package} on {node.name}, or set {field} to the unit that runs it")
    enabled, _, active = facts.get("socket", "").partition("/")
    if node.is_studio and (enabled in ("enabled", "enabled-runtime", "static") or active in ("active", "listening")):
        return warn(f"{socket} is {enabled or '?'} and {active or '?'} on {node.name}: the first connection to the "
                    f"database port starts a standalone {unit} outside the coordinated bootstrap",
                    f"apply turns it off (systemctl disable --now {socket}); the bootstrap stops a standalone "
                    "server it started, keeping its data")
    return ok(f"systemd (PID 1 {pid1}), {unit} present" + (f", {socket} off" if node.is_studio else ""))
