"""Software: MariaDB with wsrep, the Galera library, garbd, mariabackup, socat, python3 >= 3.9."""

from __future__ import annotations

import re

from wizard.agent.rootcmd import RootScript
from wizard.checks.base import CheckContext, Outcome, fail, ok, register, warn
from wizard.profile import Node, Role

PROBE = r"""
import json, os, re, subprocess, sys
role, mariadbd, provider = sys.argv[1], sys.argv[2], sys.argv[3]
def found(name):
    for d in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    import shutil
    return shutil.which(name)
def start(*argv):
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    except Exception as e:
        return str(e)
def finish(p):
    if isinstance(p, str):
        return 127, p
    try:
        out = p.communicate(timeout=20)[0]
        return p.returncode, out.strip()
    except Exception as e:
        p.kill()
        return 127, str(e)
out = {"python": list(sys.version_info[:3])}
if role == "arbiter":  # the Arbiter runs garbd only: its version is the one thing executed
    p = found("garbd")
    if p:
        rc, text = finish(start(p, "--version"))
        m = re.search(r"(\d+\.\d+(\.\d+)?)", text) if rc == 0 else None
        out["garbd"] = m.group(1) if m else ""
    else:
        out["garbd"] = None  # missing or not executable
    print(json.dumps(out))
    sys.exit(0)
# a data node: `mariadbd --version` (its output depends on the server's config, e.g. "-log": asked, not read)
# runs while the binaries are searched; the SST tools only need to be there and executable
server = start(mariadbd, "--version") if os.access(mariadbd, os.X_OK) else None
import mmap
def mapped(path):
    fh = open(path, "rb")
    try:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    finally:
        fh.close()
def galera_version(mm):
    # the first VERSION(rREVISION), e.g. 4.23(rXXXX): a literal search for "(r", then the digits before it
    # (a regex that starts with \d tries every byte of the library: ~20x slower)
    tail, at = re.compile(rb"\(r\w+\)"), mm.find(b"(r")
    while at != -1:
        if tail.match(mm, at):
            m = re.search(rb"(\d+\.\d+(?:\.\d+)?)\Z", mm[max(0, at - 256):at])
            if m:
                return m.group(1).decode()
        at = mm.find(b"(r", at + 1)
    return None
if server is not None:
    with mapped(mariadbd) as mm:
        out["wsrep"] = mm.find(b"wsrep_provider_options") != -1  # ~20x faster than `mariadbd --verbose --help`
out["provider"] = os.path.isfile(provider)
if out["provider"]:
    with mapped(provider) as mm:
        out["provider_version"] = galera_version(mm)
for tool in ("mariabackup", "socat", "rsync"):
    out[tool] = found(tool)  # its path, or None: missing or not executable
if server is None:
    out["mariadbd"] = None
else:
    rc, text = finish(server)
    out["mariadbd"] = text if rc == 0 else None
print(json.dumps(out))
"""
PROBE_PY = RootScript("check-software", PROBE, kind="py")


@register("software", "Software", order=10)
def software(ctx: CheckContext, node: Node) -> Outcome:
    db, svc = ctx.profile.database, ctx.profile.services
    facts = ctx.run_json(node, PROBE_PY, "arbiter" if node.role is Role.ARBITER else "studio", svc.mariadbd,
                         db.provider)
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

