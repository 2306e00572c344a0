"""Plan and apply the rendered files: diff against what is on each node, back up, replace atomically.

Re-applying unchanged files writes nothing and restarts nothing: a file is only touched when its
content, mode or owner differs.  Every replaced file is first copied to
/var/backups/studio-cluster/<timestamp>/<path> on its node.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from wizard.agent.rootcmd import RootScript
from wizard.profile import Profile
from wizard.remote import Remote, q
from wizard.render import (
    DNS_NODE,
    GARBD_LOG_FILE,
    GARBD_WORK_DIR,
    STUDIO_SETENV,
    RenderedFile,
    render,
    unified_diff,
)
from wizard.secrets import Secrets

BACKUP_ROOT = "/var/backups/studio-cluster"

READ_FILES = r"""
import grp, json, os, pwd, sys
out = {}
for path in sys.argv[1:]:
    if os.path.isdir(path):
        out[path] = {"dir": True}
        continue
    try:
        st = os.stat(path)
        with open(path) as fh:
            out[path] = {"content": fh.read(), "mode": st.st_mode & 0o7777,
                         "owner": pwd.getpwuid(st.st_uid).pw_name, "group": grp.getgrgid(st.st_gid).gr_name}
    except FileNotFoundError:
        out[path] = None
print(json.dumps(out))
"""
READ_FILES_PY = RootScript("apply-read-files", READ_FILES, kind="py")
# Same content: owner and mode in place (the old argv form, so the command line is unchanged).
SET_META = RootScript("apply-set-meta", """sh -c 'chown "$1" "$3" && chmod "$2" "$3"' meta {owner} {mode} {path}""")
MAKE_GARBD_DIRS = RootScript("apply-garbd-dirs", "install -d -o nobody -g nogroup -m 0750 {dirs}")
DISABLE_SOCKET = RootScript("apply-disable-socket", (
    "e=$(systemctl is-enabled {unit} 2>/dev/null); a=$(systemctl is-active {unit} 2>/dev/null); "
    "case \"$e/$a\" in enabled*|*/active|*/listening) systemctl disable --now {unit} && echo disabled;; "
    "*) echo off;; esac"))
READ_SETENV = RootScript("apply-read-setenv", "cat {path} 2>/dev/null || echo __absent__")
STAT_SETENV = RootScript("apply-stat-setenv", "stat -c '%a %U %G' {path}")

Action = Literal["create", "update", "unchanged"]


@dataclass(frozen=True)
class FileChange:
    node: str
    file: RenderedFile
    old: str | None
    action: Action
    meta_only: bool = False  # only mode/owner differ

    @property
    def diff(self) -> str:
        if self.action == "unchanged":
            return ""
        if self.file.hide_content:  # a private key: that it changes, never what it holds
            return f"--- {self.file.path}\n+++ {self.file.path}\n(private key {self.action}d; content not shown)\n"
        return unified_diff(self.file.path, self.old, self.file.content)


def plan_files(profile: Profile, secrets: Secrets | None, remote: Remote) -> list[FileChange]:
    """Compare every rendered file with the node's copy.  Changes nothing."""
    rendered = render(profile, secrets)

    crafter = str(profile.studio.install_path)

    def one(node: str) -> list[FileChange]:
        files = rendered[node]
        res = remote[node].run(READ_FILES_PY(*(str(f.path) for f in files), crafter),
                               what="read configs")
        current = json.loads(res.stdout.strip().splitlines()[-1])
        if not (current.get(crafter) or {}).get("dir"):
            # Crafter is not installed here: its settings wait for it, and no Crafter tree is created.
            files = [f for f in files if not str(f.path).startswith(crafter.rstrip("/") + "/")]
        out = []
        for f in files:
            cur = current.get(str(f.path))
            if cur is None:
                out.append(FileChange(node, f, None, "create"))
            elif cur["content"] != f.content:
                out.append(FileChange(node, f, cur["content"], "update"))
            elif (cur["mode"], cur["owner"], cur["group"]) != (f.mode, f.owner, f.group):
                out.append(FileChange(node, f, cur["content"], "update", meta_only=True))
            else:
                out.append(FileChange(node, f, cur["content"], "unchanged"))
        return out

    nodes = [n.name for n in profile.nodes]
    with ThreadPoolExecutor(len(nodes)) as pool:
        return [c for changes in pool.map(one, nodes) for c in changes]


def apply_files(changes: list[FileChange], remote: Remote,
                on_change: Callable[[FileChange], None] | None = None) -> list[FileChange]:
    """Write what changed: back up the old file, then replace atomically with owner and mode."""
    stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"  # unique even for two runs at once
    todo = [c for c in changes if c.action != "unchanged" and c.node != DNS_NODE]

    def one(change: FileChange) -> FileChange:
        conn, f = remote[change.node], change.file
        if change.meta_only:
            # Same content: set owner and mode in place.  A rewrite would give the file a new mtime, and a
            # running service older than its config's mtime owes a restart (stale_services).
            conn.run(SET_META(owner=f"{f.owner}:{f.group}", mode=f"{f.mode:o}", path=str(f.path)),
                     what=f"owner and mode of {f.path}")
        else:
            backup = f"{BACKUP_ROOT}/{stamp}{f.path}" if change.old is not None else None
            conn.put(f.content.encode(), str(f.path), mode=f.mode, owner=f.owner, group=f.group, backup=backup)
        if on_change is not None:
            on_change(change)
        return change

    by_node: dict[str, list[FileChange]] = {}
    for c in todo:
        by_node.setdefault(c.node, []).append(c)
    if not by_node:
        return []
    with ThreadPoolExecutor(len(by_node)) as pool:  # nodes in parallel, one node's files in order
        results = pool.map(lambda cs: [one(c) for c in cs], by_node.values())
        return [c for cs in results for c in cs]


def prepare_directories(profile: Profile, remote: Remote) -> None:
    """Directories the rendered settings name but no package creates: garbd's log and work dirs, owned by
    the user Debian's garb.service runs garbd as (nobody).  `install -d` on a right directory changes
    nothing, so a re-run is a no-op."""
    dirs = sorted({str(GARBD_LOG_FILE.parent), str(GARBD_WORK_DIR)})
    remote[profile.arbiter.name].run(MAKE_GARBD_DIRS(dirs=dirs), what="create garbd's directories")


def disable_socket_activation(profile: Profile, remote: Remote) -> dict[str, str]:
    """Under systemd, turn off the MariaDB unit's socket activation on the data nodes (Debian enables
    ``mariadb.socket``: the first connection to 3306 starts a standalone server outside the coordinated
    bootstrap).  Returns node -> "disabled" / "off"; a re-run changes nothing."""
    if profile.services.manager != "systemd":
        return {}
    unit = profile.services.mariadb_unit.rsplit(".", 1)[0] + ".socket"

    def one(node: str) -> tuple[str, str]:
        out = remote[node].run(DISABLE_SOCKET(unit=unit), what=f"disable {unit}").stdout.strip().splitlines()
        return node, out[-1] if out else "off"

    names = [n.name for n in profile.studio_nodes]
    with ThreadPoolExecutor(len(names)) as pool:
        return dict(pool.map(one, names))


SOURCE_MARK = "# studio-cluster: cluster settings"


def hook_crafter_setenv(profile: Profile, remote: Remote) -> dict[str, str]:
    """Make Crafter's own bin/crafter-setenv.sh source the rendered cluster settings, once.

    Crafter owns crafter-setenv.sh, so we never replace it: where it exists and lacks our line, it is
    backed up and the line appended (atomically); where Crafter is not installed yet, nothing happens
    and the rendered file waits for it.  Returns node -> "added" / "present" / "no crafter"."""
    base = PurePosixPath(str(profile.studio.install_path))
    setenv, ours = base / "bin" / "crafter-setenv.sh", base / STUDIO_SETENV
    line = f'{SOURCE_MARK}\n[ -f {q(str(ours))} ] && . {q(str(ours))}\n'
    stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"

    def one(node: str) -> tuple[str, str]:
        conn = remote[node]
        current = conn.run(READ_SETENV(path=str(setenv)), what="read crafter-setenv.sh")
        text = current.stdout
        if text.strip() == "__absent__":
            return node, "no crafter"
        if SOURCE_MARK in text:
            return node, "present"
        meta = conn.run(STAT_SETENV(path=str(setenv)), what="stat crafter-setenv.sh").stdout.split()
        new = text + ("" if text.endswith("\n") else "\n") + line
        conn.put(new.encode(), str(setenv), mode=int(meta[0], 8), owner=meta[1], group=meta[2],
                 backup=f"{BACKUP_ROOT}/{stamp}{setenv}")
        return node, "added"

    names = [n.name for n in profile.studio_nodes]
    with ThreadPoolExecutor(len(names)) as pool:
        return dict(pool.map(one, names))


# The processes behind the services a rendered file may ask to restart.
SERVICE_PROCESS = {"mariadb": "mariadbd", "garbd": "garbd"}

# For each (service, process, path): is the process running, and did it start before the file's last
# change (so it still runs the old config)?  Start time: /proc/PID/stat field 22 (clock ticks after boot)
# on the wall clock.  A short-lived `mariadbd --version` (a check) is not a running server.
STALE_PROBE = r"""
import json, os, sys, time
tick = os.sysconf("SC_CLK_TCK")
boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)  # to the clock tick, not btime's whole second
def starts(name):
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as fh:
                stat = fh.read()
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                args = fh.read().split(b"\0")
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if comm != name or fields[0] == "Z" or any(a in (b"--version", b"--help", b"--wsrep-recover") for a in args):
            continue
        out.append(boot + int(fields[19]) / tick)
    return out
res = {}
for service, proc, path in json.loads(sys.argv[1]):
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        continue
    started = starts(proc)
    if started and min(started) + 0.05 < mtime:
        res.setdefault(service, []).append(path)
print(json.dumps(res))
"""
STALE_PROBE_PY = RootScript("apply-stale-services", STALE_PROBE, kind="py")


def stale_services(changes: list[FileChange], remote: Remote) -> dict[str, dict[str, list[str]]]:
    """node -> service -> config paths changed since the running service started: restarts still owed,
    whether this run wrote the file or an earlier run stopped half way.  Stopped services owe nothing
    (they start with what is on disk)."""
    by_node: dict[str, list[tuple[str, str, str]]] = {}
    for c in changes:
        if c.node == DNS_NODE:
            continue
        for service in c.file.restart:
            if service in SERVICE_PROCESS:
                by_node.setdefault(c.node, []).append((service, SERVICE_PROCESS[service], str(c.file.path)))

    def one(node: str) -> tuple[str, dict[str, list[str]]]:
        res = remote[node].run(STALE_PROBE_PY(json.dumps(by_node[node])),
                               what="compare running services with their config")
        return node, json.loads(res.stdout.strip().splitlines()[-1])

    if not by_node:
        return {}
    with ThreadPoolExecutor(len(by_node)) as pool:
        return {n: s for n, s in pool.map(one, list(by_node)) if s}


def sst_auth_changed(changes: list[FileChange]) -> bool:
    """A file about to be rewritten changes ``wsrep_sst_auth`` (the SST password or user was rotated)."""
    def auth(text: str | None) -> list[str]:
        return [ln.strip() for ln in (text or "").splitlines() if ln.strip().startswith("wsrep_sst_auth")]

    return any(c.action == "update" and c.old is not None and auth(c.old) != auth(c.file.content) for c in changes)
