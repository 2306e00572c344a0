"""Is a Studio node's MariaDB data directory initialised, and initialise an empty one as Debian does.

A datadir without the system tables (``mysql/db.frm``) makes the first start abort with "Table
'mysql.db' doesn't exist".  Debian's mariadb-server postinst creates them once with
``mariadb-install-db --rpm --cross-bootstrap --user=mysql --disable-log-bin --skip-test-db``; a datadir
emptied or replaced later (a new volume, a restore gone wrong) never gets them again.

:func:`probe` classifies a datadir on its node:

* ``initialised``: the system tables are there;
* ``empty``: no InnoDB file (``ibdata1``, ``ib_logfile*``, ``undo*``, ``*.ibd``), no ``mysql/`` and no
  database directory: nothing a person could lose (also a datadir that does not exist yet);
* ``incomplete``: data without the system tables (e.g. ``ibdata1`` but no ``mysql/``): never touched.

:func:`initialise_empty` runs ``mariadb-install-db`` on the nodes whose datadir is ``empty`` and whose
mariadbd is not running; the same command re-checks the datadir right before, so a datadir that gained
data in between is left alone.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from wizard.agent.rootcmd import RootScript
from wizard.profile import Node, Profile
from wizard.remote import NodeConnection, Remote, RemoteError, daemon_pids, q, sh

PROBE = r"""
import json, os, sys
d = sys.argv[1]
out = {"exists": os.path.isdir(d), "innodb": [], "dirs": [], "system_tables": False, "mysql_dir": False}
if out["exists"]:
    for e in sorted(os.listdir(d)):
        p = os.path.join(d, e)
        if e == "ibdata1" or e.startswith("ib_logfile") or e.startswith("undo") or e.endswith(".ibd"):
            out["innodb"].append(e)
        elif os.path.isdir(p) and e != "lost+found":
            out["dirs"].append(e)
            try:
                out["innodb"] += [e + "/" + f for f in sorted(os.listdir(p)) if f.endswith(".ibd")][:3]
            except OSError:
                pass
    out["mysql_dir"] = os.path.isdir(os.path.join(d, "mysql"))
    out["system_tables"] = os.path.isfile(os.path.join(d, "mysql", "db.frm"))
if out["system_tables"]:
    out["state"] = "initialised"
elif not out["innodb"] and not out["dirs"]:
    out["state"] = "empty"
else:
    out["state"] = "incomplete"
print(json.dumps(out))
"""
PROBE_PY = RootScript("datadir-probe", PROBE, kind="py")


def install_command(datadir: str) -> list[str]:
    """Debian's postinst command (mariadb-server 10.11), with the profile's datadir."""
    return ["env", "TMPDIR=", "mariadb-install-db", "--rpm", "--cross-bootstrap", "--user=mysql",
            "--disable-log-bin", "--skip-test-db", f"--datadir={datadir}"]


# Re-checked in the same shell that initialises: a datadir that gained data in between is left alone.
INITIALISE = RootScript("datadir-initialise", (
    "if " + sh("python3", "-I", "-S", "-c", PROBE).replace("{", "{{").replace("}", "}}")
    + " {datadir} | grep -q '\"state\": \"empty\"'; then "
    + sh(*install_command("DATADIR")).replace("--datadir=DATADIR", "--datadir={datadir}")
    + "; else echo not-empty-any-more; fi"))


def fix_command(datadir: str) -> str:
    """What a person runs by hand on the node (as root) to initialise `datadir`."""
    return f"mariadb-install-db --user=mysql --skip-test-db --datadir={q(datadir)}"


@dataclass(frozen=True)
class DatadirState:
    """One node's datadir: `state` is ``initialised``, ``empty`` or ``incomplete``; `innodb` names some
    InnoDB files found, `dirs` the subdirectories (databases)."""

    node: str
    path: str
    state: str
    exists: bool = True
    innodb: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)

    @property
    def holds(self) -> str:
        """A short description of what is there, for messages."""
        found = self.innodb[:3] + [d + "/" for d in self.dirs[:3]]
        return ", ".join(dict.fromkeys(found)) or "nothing"


def probe(conn: NodeConnection, profile: Profile) -> DatadirState:
    """Classify the node's datadir (``database.data_dir``).  Raises RemoteError when the node cannot tell."""
    datadir = str(profile.database.data_dir)
    res = conn.run(PROBE_PY(datadir), what="inspect the data directory", timeout=20)
    try:
        info = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RemoteError(conn.node.name, f"could not read the state of {datadir}: {res.stdout[-200:]!r}",
                          "check that python3 runs on the node") from None
    return DatadirState(conn.node.name, datadir, info["state"], info["exists"], info["innodb"], info["dirs"])


def _initialise_one(conn: NodeConnection, profile: Profile) -> str:
    datadir = str(profile.database.data_dir)
    if conn.run(daemon_pids("mariadbd"), timeout=10).stdout.strip():
        return "running"
    state = probe(conn, profile)
    if state.state != "empty":
        return state.state
    res = conn.run(INITIALISE(datadir=datadir), what=f"initialise {datadir} (mariadb-install-db)", timeout=300,
                   check=False)
    if res.exit_code != 0:
        tail = (res.stderr.strip() or res.stdout.strip())[-400:]
        raise RemoteError(conn.node.name, f"mariadb-install-db failed on {datadir}: {tail}",
                          f"run {fix_command(datadir)} on {conn.node.name} and read its output",
                          exit_code=res.exit_code)
    if "not-empty-any-more" in res.stdout:
        return probe(conn, profile).state
    after = probe(conn, profile)
    if after.state != "initialised":
        raise RemoteError(conn.node.name, f"mariadb-install-db ran but {datadir} still has no system tables",
                          f"run {fix_command(datadir)} on {conn.node.name} and read its output")
    return "initialised now"


def initialise_empty(profile: Profile, remote: Remote, nodes: list[Node] | None = None) -> dict[str, str]:
    """Initialise every empty datadir of the Studio nodes (or `nodes`) whose mariadbd is stopped.

    Returns node -> ``"initialised now"``, ``"initialised"``, ``"running"`` or ``"incomplete"`` (left
    alone: :mod:`wizard.checks.datadir` fails such a node before apply).  Raises RemoteError when
    mariadb-install-db fails."""
    targets = nodes or profile.studio_nodes
    with ThreadPoolExecutor(max(1, len(targets))) as pool:
        states = list(pool.map(lambda n: (n.name, _initialise_one(remote[n.name], profile)), targets))
    return dict(states)
