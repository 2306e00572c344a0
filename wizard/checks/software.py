"""Software: MariaDB with wsrep, the Galera library, garbd, mariabackup, socat, python3 >= 3.9."""

from __future__ import annotations

import re

from wizard.checks.base import CheckContext, Outcome, fail, ok, register, warn
from wizard.checks.facts import node_fact
from wizard.profile import Node, Role


@register("software", "Software", order=10)
def software(ctx: CheckContext, node: Node) -> Outcome:
    db, svc = ctx.profile.database, ctx.profile.services
    facts = node_fact(ctx, node, "software")  # the probe: wizard.checks.facts.SOFTWARE
    py = tuple(facts["python"])
    if py < (3, 9):
        return fail(f"python3 is {'.'.join(map(str, py))}", "install python3 >= 3.9 (the node agent needs it)")
    if node.role is Role.ARBITER:
        if facts.get("garbd") is None:
            return fail("garbd is missing or not executable", "apt-get install galera-arbitrator-4")
        return ok(f"garbd {facts['garbd'] or ''}, python {'.'.join(map(str, py))}".strip())
    if facts.get("mariadbd") is None:
        return fail(f"{svc.mariadbd} is missing", "apt-get install mariadb-server")
    if not facts.get("wsrep"):
        return fail("mariadbd has no wsrep (Galera) support", "install Debian's mariadb-server (built with wsrep)")
    if not facts.get("provider"):
        return fail(f"Galera library {db.provider} is missing", "apt-get install galera-4, or fix database.provider")
    missing = [t for t in ("mariabackup", "socat", "rsync") if facts.get(t) is None]
    if db.sst_method == "mariabackup" and "mariabackup" in missing:
        return fail("mariabackup is missing (SST method mariabackup)", "apt-get install mariadb-backup")
    if "socat" in missing:
        return fail("socat is missing (SST streams need it)", "apt-get install socat")
    version = re.search(r"Ver (\S+)", facts["mariadbd"] or "")
    summary = f"MariaDB {version.group(1) if version else '?'} wsrep, Galera {facts.get('provider_version') or '?'}"
    if missing:
        return warn(f"{summary}; missing {', '.join(missing)}", f"apt-get install {' '.join(missing)}")
    return ok(summary)

