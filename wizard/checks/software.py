"""Software: MariaDB with wsrep, the Galera library, garbd, mariabackup, socat, python3 >= 3.9."""

from __future__ import annotations

import re

from wizard.agent.rootcmd import RootScript
from wizard.checks.base import CheckContext, Outcome, fail, ok, register, warn
from wizard.profile import Node, Role

PROBE = r"""
import json, os, re, shutil, subprocess, sys
def run(*a):
    try:
        p = subprocess.run(list(a), capture_output=True, text=True, timeout=20)
        return p.returncode, (p.stdout + p.stderr).strip()
    except Exception as e:
        return 127, str(e)
def found(name, *extra):
    for d in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin") + extra:
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return shutil.which(name)
out = {"python": list(sys.version_info[:3])}
mariadbd, provider = sys.argv[1], sys.argv[2]
def grep_binary(path, pattern):
    # searching the binary is ~20x faster than asking `mariadbd --verbose --help`
    import mmap
    # the match must be copied out before the map closes
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        m = re.search(pattern, mm)
        return bytes(m.group(m.lastindex or 0)) if m else None
if os.access(mariadbd, os.X_OK):
    rc, text = run(mariadbd, "--version")
    out["mariadbd"] = text if rc == 0 else None
    out["wsrep"] = bool(grep_binary(mariadbd, rb"wsrep_provider_options"))
else:
    out["mariadbd"] = None
out["provider"] = os.path.isfile(provider)
if out["provider"]:
    m = grep_binary(provider, rb"(\d+\.\d+(?:\.\d+)?)\(r\w+\)")  # e.g. 4.23(rXXXX)
    out["provider_version"] = m.decode() if m else None
def version(tool):
    p = found(tool)
    if not p:  # missing or not executable
        return tool, None
    rc, text = run(p, "-V" if tool == "socat" else "--version")
    m = re.search(r"(\d+\.\d+(\.\d+)?)", text) if rc == 0 else None
    return tool, m.group(1) if m else ""
from concurrent.futures import ThreadPoolExecutor
with ThreadPoolExecutor(5) as pool:
    out.update(pool.map(version, ("garbd", "mariabackup", "socat", "rsync", "mbstream")))
print(json.dumps(out))
"""
PROBE_PY = RootScript("check-software", PROBE, kind="py")


@register("software", "Software", order=10)
def software(ctx: CheckContext, node: Node) -> Outcome:
    db, svc = ctx.profile.database, ctx.profile.services
    facts = ctx.run_json(node, PROBE_PY, svc.mariadbd, db.provider)
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

