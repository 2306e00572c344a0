"""``backup verify``: prove a complete backup restores.

On the Arbiter host, in one run (:data:`VERIFY_SCRIPT`): every file's sha256 against the manifest (the content
repositories' too, and ``git fsck`` of each when git is installed there); a copy
of ``data/`` beside it (``<root>/.verify-<id>``); ``mariabackup --prepare`` on the copy; a throwaway
``mariadbd`` on the copy with no network (``--skip-networking``, its own socket and pid file, no wsrep,
``--no-defaults``, no grant tables, as the mysql user: the root gets o+x); ``CHECK TABLE`` on every
base table and ``COUNT(*)`` of each; then
the server stops and the copy is removed.  The result is stored as ``verify.json`` in the backup
directory and returned.  Needs ``mariabackup`` and ``mariadbd`` on the Arbiter host.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wizard.agent.rootcmd import RootScript
from wizard.backups import BackupError
from wizard.profile import Profile
from wizard.remote import Remote, RemoteError

COPY_LIB = r"""
import hashlib, json, os, re, shutil, subprocess, sys
GALERA_INFOS = ("mariadb_backup_galera_info", "mariabackup_galera_info", "xtrabackup_galera_info")
def load_manifest(d):
    try:
        with open(os.path.join(d, "manifest.json")) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None
def differing_files(d, m):
    # every file the manifest lists, data/ then the content repositories' (named content/...), against its
    # sha256; a symlink of the content against its recorded target (never followed)
    bad = []
    content = (m.get("content") or {}).get("files") or {}
    for part, label, files in (("data", "", m.get("files") or {}), ("content", "content/", content)):
        for rel, meta in sorted(files.items()):
            path = os.path.join(d, part, rel)
            if "symlink" in meta:
                if not os.path.islink(path) or os.readlink(path) != meta["symlink"]:
                    bad.append(label + rel + " (symlink)")
                continue
            h = hashlib.sha256()
            try:
                with open(path, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
            except OSError:
                bad.append(label + rel + " (missing)")
                continue
            if h.hexdigest() != meta.get("sha256"):
                bad.append(label + rel)
    return bad
def fsck_content(d, m):
    # git fsck of every content repository of the backup: (checked, [problems]); None when git is not installed
    repos = (m.get("content") or {}).get("repos") or []
    if not repos:
        return 0, []
    if shutil.which("git") is None:
        return None, []
    problems = []
    for repo in repos:
        p = subprocess.run(["git", "-c", "safe.directory=*", "-C", os.path.join(d, "content", repo), "fsck",
                            "--no-progress", "--no-dangling"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if p.returncode != 0:
            problems.append("%s: %s" % (repo, " | ".join(p.stdout.decode(errors="replace").splitlines()[-2:])))
    return len(repos), problems
def room_for_copy(root, m):
    st = os.statvfs(root)
    return st.f_bavail * st.f_frsize >= int(m.get("size") or 0) * 1.1
def prepare_copy(d, work, timeout):
    # A copy of data/ at work, prepared WITHOUT the position mariabackup recorded while copying (it can be ahead of
    # the data, docs/backups.md): --prepare then writes InnoDB's own wsrep checkpoint, committed with the data.
    # Returns (error or "", position {uuid, seqno} or None).
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(["cp", "-a", "--reflink=auto", os.path.join(d, "data"), work], check=True)
    for name in GALERA_INFOS:
        if os.path.exists(os.path.join(work, name)):
            os.replace(os.path.join(work, name), os.path.join(work, name + ".recorded"))
    p = subprocess.run(["mariabackup", "--prepare", "--target-dir=" + work], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    if p.returncode != 0:
        return "mariabackup --prepare failed: " + " | ".join(p.stdout.decode(errors="replace").splitlines()[-3:]), None
    for name in GALERA_INFOS:
        try:
            with open(os.path.join(work, name)) as fh:
                found = re.match(r"\s*([0-9a-fA-F-]{36}):(-?\d+)", fh.read())
        except OSError:
            continue
        if found:
            return "", {"uuid": found.group(1).lower(), "seqno": int(found.group(2))}
    return "", None
"""
"""Functions both remote scripts (verify here, restore's prepare) start with: manifest, checksums, free space and
a prepared copy."""

VERIFY_SCRIPT = COPY_LIB + r"""
import pwd, signal, time
d, mariadbd, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
root, bid = os.path.dirname(d), os.path.basename(d)
work = os.path.join(root, ".verify-" + bid)
t0 = time.time()
out = {"id": bid, "ok": False, "tables": [], "steps": {}}
def step(name, since):
    out["steps"][name] = round(time.time() - since, 2)
def finish(summary, ok=False):
    out["ok"] = ok
    out["summary"] = summary
    out["verified_epoch"] = time.time()
    out["seconds"] = round(time.time() - t0, 2)
    tmp = os.path.join(d, "verify.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(out, fh, indent=1)
    os.replace(tmp, os.path.join(d, "verify.json"))
    print(json.dumps(out))
    sys.exit(0)
m = load_manifest(d)
if m is None:
    print(json.dumps({"error": "not a complete backup: %s has no readable manifest.json" % d}))
    sys.exit(3)
out["position"] = m.get("position")
out["gtid"] = m.get("gtid")
for tool in ("mariabackup", mariadbd, "mariadb"):
    if shutil.which(tool) is None:
        print(json.dumps({"error": "%s is not installed on the Arbiter host; install mariadb-server-core and "
                          "mariadb-backup there to verify backups" % tool}))
        sys.exit(3)
s = time.time()
bad = differing_files(d, m)
step("checksums", s)
if bad:
    finish("%d file(s) differ from the manifest: %s" % (len(bad), ", ".join(bad[:5])))
content = m.get("content")
if content:
    s = time.time()
    checked, problems = fsck_content(d, m)
    step("content fsck", s)
    out["content"] = {"repos": content.get("repos") or [], "size": content.get("size") or 0,
                      "fsck": "git not installed on the Arbiter" if checked is None else
                      ("OK" if not problems else "; ".join(problems[:3]))}
    if problems:
        finish("git fsck failed on %d content repositories: %s" % (len(problems), "; ".join(problems[:3])))
if not room_for_copy(root, m):
    finish("not enough free space in %s for a copy (%d MB needed)" % (root, int(m.get("size") or 0) * 1.1 // 1e6))
server = None
try:
    s = time.time()
    error, out["data_position"] = prepare_copy(d, work, timeout)
    step("copy and prepare", s)
    if error:
        finish(error)
    try:
        pwd.getpwnam("mysql")
        subprocess.run(["chown", "-R", "mysql:mysql", work], check=True)
        run_as = "mysql"
        os.chmod(root, os.stat(root).st_mode | 0o001)  # mysql must traverse the root to reach the copy
    except KeyError:
        run_as = "root"
    sock = os.path.join(work, "verify.sock")
    s = time.time()
    server = subprocess.Popen([mariadbd, "--no-defaults", "--datadir=" + work, "--socket=" + sock,
                               "--pid-file=" + os.path.join(work, "verify.pid"), "--skip-networking",
                               "--skip-grant-tables", "--wsrep-on=OFF", "--skip-log-bin", "--skip-slave-start",
                               "--innodb-buffer-pool-size=64M", "--log-error=" + os.path.join(work, "verify.err"),
                               "--user=" + run_as], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    client = ["mariadb", "--no-defaults", "--socket=" + sock, "--user=root", "--batch", "--skip-column-names"]
    def q(sql):
        r = subprocess.run(client + ["-e", sql], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(r.stderr.decode(errors="replace").strip())
        return [line.split("\t") for line in r.stdout.decode(errors="replace").splitlines() if line]
    deadline = time.time() + 120
    while True:
        if server.poll() is not None:
            try:
                with open(os.path.join(work, "verify.err"), errors="replace") as fh:
                    tail = fh.read().splitlines()[-3:]
            except OSError:
                tail = []
            finish("the throwaway server on the copy exited with %s: %s" % (server.returncode, " | ".join(tail)))
        try:
            q("SELECT 1")
            break
        except RuntimeError:
            if time.time() > deadline:
                finish("the throwaway server on the copy did not answer within 120 s")
            time.sleep(0.2)
    step("start", s)
    s = time.time()
    tables = q("SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
               "AND table_schema NOT IN ('information_schema', 'performance_schema') ORDER BY 1, 2")
    failed = []
    for schema, name in tables:
        ident = "`%s`.`%s`" % (schema.replace("`", "``"), name.replace("`", "``"))
        rows = q("CHECK TABLE " + ident)
        status = rows[-1][3] if rows and len(rows[-1]) > 3 else "?"
        count = int(q("SELECT COUNT(*) FROM " + ident)[0][0])
        ok = status == "OK"
        if not ok:
            failed.append("%s.%s: %s" % (schema, name, status))
        out["tables"].append({"schema": schema, "table": name, "rows": count, "check": status, "ok": ok})
    step("check", s)
    user_tables = [t for t in out["tables"] if t["schema"] not in ("mysql", "sys")]
    if failed:
        finish("CHECK TABLE failed on %d table(s): %s" % (len(failed), "; ".join(failed[:5])))
    summary = "%d tables checked OK (%d of them user tables, %d rows)" % (len(out["tables"]), len(user_tables),
                                                                       sum(t["rows"] for t in user_tables))
    if out.get("content"):
        n = len(out["content"]["repos"])
        summary += "; content: %d repositor%s, fsck %s" % (n, "y" if n == 1 else "ies", out["content"]["fsck"])
    finish(summary, ok=True)
finally:
    if server is not None and server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    shutil.rmtree(work, ignore_errors=True)
"""  # noqa: S608 (a Python script, not SQL built from input: its queries quote identifiers)
VERIFY = RootScript("backup-verify", VERIFY_SCRIPT, kind="py")


@dataclass(frozen=True)
class VerifyResult:
    """``ok``; ``summary`` one line; ``tables`` [{schema, table, rows, check, ok}]; ``position`` {uuid, seqno} as
    mariabackup recorded it while copying; ``data_position`` {uuid, seqno} the copy really holds (InnoDB's own
    wsrep checkpoint, read by ``--prepare``; None when the data carries none): restore starts from this one;
    ``steps`` seconds per step (checksums, "content fsck", "copy and prepare", start, check); ``seconds`` in all;
    ``content`` {repos [paths], size bytes, fsck "OK" or the problems} for a backup that carries Crafter's content
    repositories, else None."""

    id: str
    ok: bool
    summary: str
    tables: list[dict[str, Any]]
    position: dict[str, Any]
    gtid: str | None
    steps: dict[str, float]
    seconds: float
    data_position: dict[str, Any] | None = None
    content: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ok": self.ok, "summary": self.summary, "position": self.position,
                "data_position": self.data_position, "gtid": self.gtid, "content": self.content,
                "seconds": self.seconds, "steps": self.steps, "tables": self.tables}

    def rows(self, schema: str, table: str) -> int | None:
        for t in self.tables:
            if t["schema"] == schema and t["table"] == table:
                return int(t["rows"])
        return None


def resolve_id(ids: list[str], wanted: str | None) -> str:
    """The backup id to use: ``wanted`` (an exact id or a unique prefix), else the newest.  Pure;
    raises :class:`BackupError` naming the choices."""
    if not ids:
        raise BackupError("there is no complete backup yet", "take one with `studio-cluster backup take`")
    if wanted is None:
        return sorted(ids)[-1]
    if wanted in ids:
        return wanted
    matches = [i for i in ids if i.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise BackupError(f"{wanted!r} is the start of {len(matches)} backups' ids",
                          "give more of the id: one of " + ", ".join(sorted(matches)[-10:]))
    raise BackupError(f"no complete backup has the id {wanted!r} (nor one starting with it)",
                      "`studio-cluster backup list` shows them; the newest: "
                      + ", ".join(sorted(ids, reverse=True)[:3]))


def verify(profile: Profile, remote: Remote, backup: str | None = None, *, timeout: float = 3600,
           on_start: Callable[[str], None] | None = None) -> VerifyResult:
    """Verify one complete backup (``backup``: id or unique prefix; default the newest complete one);
    ``on_start`` gets the backup's id once it is known to exist, before the long part."""
    from wizard.backups.catalog import list_backups

    entries = [e for e in list_backups(profile, remote) if e.complete]
    bid = resolve_id([e.id for e in entries], backup)
    path = next(e.path for e in entries if e.id == bid)
    if on_start is not None:
        on_start(bid)
    try:
        res = remote[profile.arbiter.name].run(
            VERIFY(path, profile.services.mariadbd, timeout),
            timeout=timeout + 180, check=False, what="verify the backup")
    except RemoteError as exc:
        raise BackupError(f"verify of {bid} did not finish: {exc.message}", exc.hint) from None
    lines = res.stdout.strip().splitlines()
    try:
        out = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise BackupError(f"verify of {bid} failed on the Arbiter (exit {res.exit_code}): "
                          f"{(res.stderr.strip() or res.stdout.strip())[-400:]}") from None
    if "error" in out:
        raise BackupError(out["error"])
    return VerifyResult(bid, bool(out["ok"]), out.get("summary", ""), out.get("tables", []),
                        out.get("position") or {}, out.get("gtid"), out.get("steps", {}),
                        float(out.get("seconds", 0.0)), out.get("data_position"), out.get("content"))

