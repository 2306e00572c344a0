"""``backup restore``: rebuild a lost cluster from one complete backup.

Every data node's data is replaced, none is deleted:

1. Refuse unless the backup is complete and every data node's ``mariadbd`` is stopped (a running cluster is
   not lost: ``recover`` brings a stopped one back without going back in time).
2. On the Arbiter (:data:`PREPARE_SCRIPT`): sha256 of every file against the manifest, a copy beside the
   backup, ``mariabackup --prepare`` on it without the position mariabackup recorded, so that prepare writes
   the position InnoDB really holds (its wsrep checkpoint, committed with the data; the recorded one can be
   ahead of the data, docs/backups.md).
3. The target node pulls the prepared copy over one TCP connection to the Arbiter (``backups.receiver_port``,
   a one-time token first; tar; TLS with both ends verified when ``tls.enabled``) into a staging directory on
   the datadir's filesystem (beside it, or inside it when the datadir is a mount point); the byte count must
   match.
4. On every data node the current data is kept as ``<datadir>.pre-restore-<UTC time>-<node>`` (the operator deletes
   it once satisfied): renamed, or copied when the datadir is a mount point (after a free-space check);
   the target's staging directory becomes its data, owned by mysql; the others get an empty datadir.
5. Where the backup carries Crafter's content repositories, every Crafter node (``studio.nodes``) pulls them
   the same way and they replace ``<studio.data_path>/repos``, the former kept as ``repos.pre-restore-<UTC time>``
   (not with ``--to``: the repositories are then left as they are, and a note says so).
6. The ordinary pipeline (:func:`wizard.pipeline.replay`) then finds one node holding data (its position
   recovered from InnoDB) and the others empty: the restored node bootstraps, the others join by SST.
"""

from __future__ import annotations

import json
import secrets as pysecrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wizard.agent.rootcmd import RootScript
from wizard.backups import BackupError, pitr
from wizard.backups.take import _bind
from wizard.backups.verify import COPY_LIB, resolve_id
from wizard.profile import Profile
from wizard.remote import Remote, RemoteError, daemon_pids
from wizard.secrets import Secrets
from wizard.tls.options import files as tls_files

PREPARE_SCRIPT = COPY_LIB + r"""
d, timeout, binlog_base = sys.argv[1], float(sys.argv[2]), sys.argv[3]
root, bid = os.path.dirname(d), os.path.basename(d)
work = os.path.join(root, ".restore-" + bid)
def fail(msg):
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"error": msg}))
    sys.exit(3)
m = load_manifest(d)
if m is None:
    fail("not a complete backup: %s has no readable manifest.json" % d)
if shutil.which("mariabackup") is None:
    fail("mariabackup is not installed on the Arbiter host (install mariadb-backup there)")
bad = differing_files(d, m)
if bad:
    fail("%d file(s) of the backup differ from its manifest: %s" % (len(bad), ", ".join(bad[:5])))
if not room_for_copy(root, m):
    fail("not enough free space in %s for a prepared copy" % root)
error, position = prepare_copy(d, work, timeout)
if error:
    fail(error)
# InnoDB's own position in the donor's binary log (committed with the data), for restore --to
binlog_pos = None
for name in ("mariadb_backup_binlog_pos_innodb", "xtrabackup_binlog_pos_innodb"):
    try:
        with open(os.path.join(work, name)) as fh:
            parts = fh.read().split()
    except OSError:
        continue
    if len(parts) >= 2 and parts[1].isdigit():
        binlog_pos = [parts[0], int(parts[1])]
        break
# mariabackup copies the donor's current binary log: not this node's history, so it does not go into the datadir
for name in os.listdir(work):
    if re.fullmatch(re.escape(binlog_base) + r"\.(\d+|index)", name):
        os.unlink(os.path.join(work, name))
size = files = 0
for dirpath, _dirs, names in os.walk(work):
    for name in names:
        path = os.path.join(dirpath, name)
        if os.path.isfile(path) and not os.path.islink(path):
            size += os.path.getsize(path)
            files += 1
print(json.dumps({"work": work, "position": position, "recorded": m.get("position"), "size": size,
                  "files": files, "donor": m.get("donor"), "time": m.get("time"), "binlog_pos": binlog_pos,
                  "gtid": m.get("gtid"), "finished_epoch": m.get("finished_epoch"),
                  "content": ({"dir": c.get("dir"), "repos": c.get("repos") or [], "size": c.get("size") or 0,
                               "path": os.path.join(d, "content", c.get("dir") or "")}
                              if (c := m.get("content")) else None)}))
"""
PREPARE = RootScript("restore-prepare", PREPARE_SCRIPT, kind="py")

SEND_SCRIPT = r"""
import json, socket, ssl, subprocess, sys, time
bind, port, token, src, accept_timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
cert, key, ca = (sys.argv[6:9] + ["", "", ""])[:3]
tls = None
if cert:  # tls.enabled: this (the Arbiter's) certificate; the node must show one signed by the CA bundle
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(cert, key)
    tls.load_verify_locations(ca)
    tls.verify_mode = ssl.CERT_REQUIRED
refused = ""
fam = socket.AF_INET6 if ":" in bind else socket.AF_INET
srv = socket.socket(fam, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    srv.bind((bind, port))
except OSError as exc:
    print(json.dumps({"error": "cannot listen on %s:%d: %s" % (bind, port, exc)}))
    sys.exit(3)
srv.listen(4)
deadline = time.monotonic() + accept_timeout
while True:
    left = deadline - time.monotonic()
    if left <= 0:
        print(json.dumps({"error": "the data node did not connect within %.0f s%s"
                                   % (accept_timeout, "; refused " + refused if refused else "")}))
        sys.exit(3)
    srv.settimeout(left)
    try:
        conn, peer = srv.accept()
    except socket.timeout:
        continue
    conn.settimeout(30)
    if tls is not None:
        try:
            conn = tls.wrap_socket(conn, server_side=True)
        except (OSError, ValueError) as exc:
            refused = "%s: TLS handshake failed: %s" % (peer[0], exc)
            conn.close()
            continue
    try:
        line = b""
        while not line.endswith(b"\n") and len(line) < 200:
            got = conn.recv(1)
            if not got:
                break
            line += got
    except OSError:
        line = b""
    if line.decode(errors="replace").strip() == "STUDIO-RESTORE " + token:
        break
    conn.close()  # not ours: keep waiting for the node that knows the token
srv.close()
tar = subprocess.Popen(["tar", "-C", src, "-cf", "-", "."], stdout=subprocess.PIPE)
sent = 0
conn.settimeout(300)
while True:
    chunk = tar.stdout.read(1 << 20)
    if not chunk:
        break
    conn.sendall(chunk)
    sent += len(chunk)
rc = tar.wait()
if tls is not None:
    try:
        conn.unwrap()  # close_notify: the node reads a clean end of stream, not a truncation
    except (OSError, ValueError):
        pass
else:
    conn.shutdown(socket.SHUT_WR)
conn.close()
print(json.dumps({"sent": sent, "tar": rc, "peer": peer[0]}))
"""
SEND = RootScript("restore-send", SEND_SCRIPT, kind="py")

RECEIVE_SCRIPT = r"""
import json, os, socket, ssl, subprocess, sys, time
host, port, token, dest = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
cert, key, ca = (sys.argv[5:8] + ["", "", ""])[:3]
tls = None
if cert:  # tls.enabled: the Arbiter's certificate verified against the CA bundle and its address; this node's shown
    tls = ssl.create_default_context(cafile=ca)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(cert, key)
os.makedirs(dest, mode=0o750)
deadline = time.monotonic() + 60
while True:
    try:
        s = socket.create_connection((host, port), timeout=10)
        if tls is not None:
            s = tls.wrap_socket(s, server_hostname=host)
        break
    except ssl.SSLError as exc:
        print(json.dumps({"error": "TLS with %s:%d failed: %s" % (host, port, exc)}))
        sys.exit(3)
    except OSError as exc:
        if time.monotonic() > deadline:
            print(json.dumps({"error": "cannot reach %s:%d: %s" % (host, port, exc)}))
            sys.exit(3)
        time.sleep(0.3)
tar = subprocess.Popen(["tar", "-C", dest, "-xf", "-"], stdin=subprocess.PIPE)
got = 0
try:
    s.sendall(("STUDIO-RESTORE %s\n" % token).encode())
    s.settimeout(300)
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        tar.stdin.write(chunk)
        got += len(chunk)
except OSError as exc:  # a refused certificate (a TLS alert), a reset, a truncated TLS stream
    tar.kill()
    tar.wait()
    print(json.dumps({"error": "the transfer from %s:%d broke after %d bytes: %s" % (host, port, got, exc)}))
    sys.exit(3)
tar.stdin.close()
rc = tar.wait()
size = 0
for dirpath, _dirs, names in os.walk(dest):
    for name in names:
        path = os.path.join(dirpath, name)
        if os.path.isfile(path) and not os.path.islink(path):
            size += os.path.getsize(path)
print(json.dumps({"received": got, "tar": rc, "size": size}))
"""
RECEIVE = RootScript("restore-receive", RECEIVE_SCRIPT, kind="py")


MOUNTED_SCRIPT = r"""
import os, sys
target = os.path.realpath(sys.argv[1])
with open("/proc/self/mountinfo") as fh:
    points = {line.split()[4].replace("\\040", " ") for line in fh}
print("mount" if target in points else "dir")
"""
MOUNTED = RootScript("restore-datadir-kind", MOUNTED_SCRIPT, kind="py")

SWAP_SCRIPT = r"""
import errno, json, os, shutil, subprocess, sys
datadir, aside, staging, mounted = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "mount"
out = {"kept": None, "copied": False}
inner = os.path.basename(staging) if staging and os.path.dirname(staging) == datadir else None
old = [n for n in (os.listdir(datadir) if os.path.isdir(datadir) else []) if n != inner]


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def copy_aside():
    # a mount point cannot be renamed: copy its data beside it first (checked for space), then clear it
    used = 0
    for n in old:
        top = os.path.join(datadir, n)
        for d, _dirs, files in (os.walk(top) if os.path.isdir(top) else [(datadir, [], [n])]):
            used += sum(os.path.getsize(os.path.join(d, f)) for f in files if os.path.isfile(os.path.join(d, f)))
    st = os.statvfs(os.path.dirname(aside))
    if st.f_bavail * st.f_frsize < used * 1.05:
        print(json.dumps({"error": "%s is a mount point, so its current data (%d MB) must be copied aside to "
                          "%s, which has only %d MB free" % (datadir, used // 10**6, os.path.dirname(aside),
                                                             st.f_bavail * st.f_frsize // 10**6)}))
        sys.exit(3)
    os.mkdir(aside, 0o700)
    for n in old:
        subprocess.run(["cp", "-a", os.path.join(datadir, n), aside], check=True)
    for n in old:
        remove(os.path.join(datadir, n))
    out["copied"] = True


def swap():
    if old:
        renamed = False
        if not mounted:
            try:
                os.rename(datadir, aside)  # same filesystem: instant, nothing copied
                os.mkdir(datadir, 0o750)
                renamed = True
            except OSError as exc:
                # EXDEV: overlayfs (a container's image layer) cannot rename a directory of its lower layer;
                # EBUSY: a mount point after all.  Copy instead, as for a mount point.
                if exc.errno not in (errno.EXDEV, errno.EBUSY) or os.path.exists(aside):
                    raise
        if not renamed:
            copy_aside()
        out["kept"] = aside
    os.makedirs(datadir, 0o750, exist_ok=True)
    if staging:
        for n in os.listdir(staging):
            try:
                os.rename(os.path.join(staging, n), os.path.join(datadir, n))
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                subprocess.run(["cp", "-a", os.path.join(staging, n), datadir], check=True)
                remove(os.path.join(staging, n))
        os.rmdir(staging)
    subprocess.run(["chown", "-R", "mysql:mysql", datadir], check=True)
    os.chmod(datadir, 0o750)


try:
    swap()
except OSError as exc:  # a message, not a traceback
    where = exc.filename or datadir
    print(json.dumps({"error": "%s: %s%s" % (exc.strerror or exc, where,
                                             " -> %s" % exc.filename2 if exc.filename2 else "")}))
    sys.exit(3)
except subprocess.CalledProcessError as exc:
    print(json.dumps({"error": "%s exited %s" % (" ".join(exc.cmd), exc.returncode)}))
    sys.exit(3)
print(json.dumps(out))
"""
SWAP = RootScript("restore-swap-datadir", SWAP_SCRIPT, kind="py")

CONTENT_SWAP_SCRIPT = r"""
import json, os, subprocess, sys
current, aside, staging, user = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
out = {"kept": None}
try:
    if os.path.lexists(current):
        os.rename(current, aside)  # the content as it was: kept, never deleted
        out["kept"] = aside
    os.rename(staging, current)
    subprocess.run(["chown", "-R", "--no-dereference", user + ":", current], check=True)
except OSError as exc:
    print(json.dumps({"error": "%s: %s" % (exc.strerror or exc, exc.filename or current)}))
    sys.exit(3)
except subprocess.CalledProcessError as exc:
    print(json.dumps({"error": "%s exited %s" % (" ".join(exc.cmd), exc.returncode)}))
    sys.exit(3)
print(json.dumps(out))
"""
CONTENT_SWAP = RootScript("restore-swap-content", CONTENT_SWAP_SCRIPT, kind="py")
"""Put a received copy of Crafter's content repositories in place: the current directory renamed aside (same
filesystem), the copy renamed in, owned by Crafter's OS user (``chown USER:``, the user's login group)."""
HISTORY_DIR = ".restores"
"""Under ``backups.root`` on the Arbiter: one JSON record per restore (:func:`record_restore`); a dot directory, so
the catalog and prune pass it by."""

RECORD_SCRIPT = r"""
import json, os, sys
d, stamp, text = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(d, mode=0o700, exist_ok=True)
path = os.path.join(d, stamp + ".json")
tmp = path + ".tmp"
with open(tmp, "w") as fh:
    fh.write(json.dumps(json.loads(text)) + "\n")
    fh.flush()
    os.fsync(fh.fileno())
os.replace(tmp, path)
"""
RECORD = RootScript("restore-record", RECORD_SCRIPT, kind="py")

HISTORY_SCRIPT = r"""
import glob, json, os, sys
out = []
for path in sorted(glob.glob(os.path.join(glob.escape(sys.argv[1]), "*.json"))):
    try:
        with open(path) as fh:
            out.append(json.load(fh))
    except (OSError, ValueError):
        out.append({"unreadable": os.path.basename(path)})
print(json.dumps(out))
"""
HISTORY = RootScript("restore-history", HISTORY_SCRIPT, kind="py")


def _history_dir(profile: Profile) -> str:
    return f"{str(profile.backups.root).rstrip('/')}/{HISTORY_DIR}"


def record_restore(profile: Profile, remote: Remote, stamp: str, record: dict[str, Any]) -> str:
    """Keep on the Arbiter that a restore put ``record["backup"]`` in place at ``record["time"]`` (epoch s; with
    ``to``: replayed up to that moment): it started a new history of the cluster.  Returns "" or why it could not
    (the restore goes on; the caller says so)."""
    r = remote[profile.arbiter.name].run(RECORD(_history_dir(profile), stamp, json.dumps(record)), check=False,
                                         what="record the restore")
    return "" if r.exit_code == 0 else (r.stderr.strip() or r.stdout.strip() or f"exit {r.exit_code}")[-300:]


def read_history(profile: Profile, remote: Remote) -> list[dict[str, Any]]:
    """The restores recorded on the Arbiter (:func:`record_restore`), oldest first.  Raises :class:`BackupError`
    when they cannot be read (``--to`` must not guess)."""
    r = remote[profile.arbiter.name].run(HISTORY(_history_dir(profile)), check=False,
                                         what="read the restores")
    try:
        out: list[dict[str, Any]] = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise BackupError(f"cannot read the record of earlier restores on {profile.arbiter.name}: "
                          f"{(r.stderr.strip() or r.stdout.strip())[-300:] or 'no answer'}",
                          "fix what it says (--to needs to know whether a restore since began a new history)"
                          ) from None
    return out


def history_breaks(history: list[dict[str, Any]], backup: str, taken: float) -> dict[str, Any] | None:
    """The first recorded restore since ``backup`` was taken (``taken``, epoch s) that began a history which does
    not continue it, or None.  Pure.

    A restore of another backup, or of this one with ``--to``, started the cluster's history again from another
    point: the binary logs on the nodes since then are of that history (their GTIDs may even repeat this
    backup's, meaning other transactions), so they cannot carry this backup forward.  A restore of this very backup
    without ``--to`` continues it exactly, so it breaks nothing.  An unreadable record counts as a break."""
    for rec in history:
        if "unreadable" in rec:
            return rec
        if float(rec.get("time") or 0) > taken and (rec.get("backup") != backup or rec.get("to")):
            return rec
    return None


RM_STAGING = RootScript("restore-rm-staging", "rm -rf {path}")
RM_PREPARED = RootScript("restore-rm-prepared", "rm -rf {path}")


@dataclass
class RestoreResult:
    """What ``restore`` did: the backup ``id``, the ``target`` node that holds it now, the ``position``
    {uuid, seqno} its data holds (InnoDB's own), ``kept`` {node: path of its former datadir},
    ``seconds`` until the cluster was started, ``notes``; ``content`` {node: {"repos": count, "kept": former
    content directory or None}} where the backup's Crafter content repositories were put back; with ``--to``,
    ``pitr``: the plan
    (:class:`wizard.backups.pitr.Plan` as a dict) and what was replayed {applied, first, last, last_time}."""

    id: str
    target: str
    position: dict[str, Any] | None
    kept: dict[str, str] = field(default_factory=dict)
    bytes: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    pitr: dict[str, Any] | None = None
    content: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "target": self.target, "position": self.position, "kept": self.kept,
                "bytes": self.bytes, "seconds": round(self.seconds, 2), "notes": self.notes, "pitr": self.pitr,
                "content": self.content}


def _pull(profile: Profile, remote: Remote, node: str, src: str, staging: str, timeout: float,
          what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``node`` pulls the directory ``src`` on the Arbiter into ``staging`` (:data:`SEND` there, :data:`RECEIVE` on
    the node: one TCP connection to ``backups.receiver_port``, a one-time token first, TLS when ``tls.enabled``).
    Returns what each side said (``error`` on failure; ``tar`` exit codes, bytes, the received ``size``)."""
    arb = remote[profile.arbiter.name]
    port = profile.backups.receiver_port
    token = pysecrets.token_hex(16)
    sent: dict[str, Any] = {}

    def send() -> None:
        r = arb.run(SEND(_bind(profile.arbiter), port, token, src, "120", *tls_files(profile)), timeout=timeout,
                    check=False, what=f"send {what}")
        sent.update(_last_json(r.stdout, r.stderr, "send"))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    r = remote[node].run(RECEIVE(profile.arbiter.address, port, token, staging, *tls_files(profile)),
                         timeout=timeout, check=False, what=f"receive {what}")
    got = _last_json(r.stdout, r.stderr, "receive")
    sender.join(timeout)
    return sent, got


def _running_servers(profile: Profile, remote: Remote) -> list[str]:
    running = []
    for node in profile.studio_nodes:
        out = remote[node.name].run(daemon_pids("mariadbd"), what="look for a running mariadbd").stdout.strip()
        if out:
            running.append(node.name)
    return running


def restore(profile: Profile, secrets: Secrets, remote: Remote, backup: str | None = None, *,
            target: str | None = None, on_note: Callable[[str], None] | None = None,
            start: bool = True, timeout: float = 3600, to: datetime | None = None) -> RestoreResult:
    """Restore ``backup`` (id or unique prefix; default the newest complete one) onto ``target`` (default the
    backup's donor, else the first Studio node), keep every data node's current datadir aside, and (``start``)
    run the pipeline that bootstraps the restored node and joins the others.  ``to`` (aware): then replay the
    binary logs of a kept datadir up to that moment before the cluster starts (:mod:`wizard.backups.pitr`).

    Raises :class:`BackupError` (what and the fix) when the backup is not complete, a data node still runs
    mariadbd, the copy does not match its manifest, the transfer is short, or the pipeline fails."""
    from wizard.backups.catalog import list_backups
    from wizard.pipeline import PipelineError, replay

    note = on_note or (lambda _m: None)
    t0 = time.monotonic()
    entries = [e for e in list_backups(profile, remote) if e.complete]
    bid = resolve_id([e.id for e in entries], backup)
    entry = next(e for e in entries if e.id == bid)
    names = [n.name for n in profile.studio_nodes]
    chosen = target or (entry.donor if entry.donor in names else names[0])
    if chosen not in names:
        raise BackupError(f"--onto {chosen!r} is not a Studio node of this profile", "use one of: " + ", ".join(names))
    if entry.state == "verify failed":
        raise BackupError(f"backup {bid} failed its verification: {entry.reason}",
                          "restore another backup (`studio-cluster backup list`)")
    data_dir = str(profile.database.data_dir).rstrip("/")
    if to is not None:
        pitr.check_window(to, backup_started=entry.time, now=datetime.now(UTC))
        broke = history_breaks(read_history(profile, remote), bid, entry.time)
        if broke is not None:
            newer = [e.id for e in entries if e.time > float(broke.get("time") or 0)]
            if "unreadable" in broke:
                raise BackupError(f"the record of an earlier restore on {profile.arbiter.name} is unreadable "
                                  f"({HISTORY_DIR}/{broke['unreadable']}), so whether the binary logs still continue "
                                  f"{bid} cannot be told", "restore without --to (the snapshot alone)")
            when = pitr.iso(datetime.fromtimestamp(float(broke["time"]), UTC))
            raise BackupError(
                f"{bid} was taken before the restore of {broke.get('backup')} at {when}"
                + (f" (replayed up to {broke['to']})" if broke.get("to") else "")
                + ", which began the cluster's present history from another point: the binary logs on the data "
                f"nodes are of that history, not a continuation of {bid}",
                "restore it without --to (the snapshot alone), or restore a backup taken since with --to"
                + (f" (the newest: {sorted(newer)[-1]})" if newer else " (none yet)")
                + f"; the binary logs of {bid}'s history are in the datadirs that restore kept aside "
                f"({data_dir}.pre-restore-*)")
    running = _running_servers(profile, remote)
    if running:
        raise BackupError(
            f"mariadbd still runs on {', '.join(running)}: restore replaces every data node's data and only "
            "rebuilds a cluster that is down",
            "if the cluster is only stopped or crashed, `studio-cluster recover` brings it back without going back "
            "in time; to go back to this backup, stop mariadb on every data node first "
            "(systemctl stop mariadb), then restore again")
    arb = remote[profile.arbiter.name]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    note(f"preparing a copy of {bid} on {profile.arbiter.name} (checksums, mariabackup --prepare)")
    try:
        res = arb.run(PREPARE(entry.path, timeout, pitr.BINLOG_BASENAME),
                      timeout=timeout + 120,
                      check=False, what="prepare the backup")
        prep = _last_json(res.stdout, res.stderr, "prepare")
        if "error" in prep:
            raise BackupError(f"cannot restore {bid}: {prep['error']}")
        work = str(prep["work"])
        position = prep.get("position")
        result = RestoreResult(bid, chosen, position)
        if position and prep.get("recorded") and position.get("seqno") != (prep["recorded"] or {}).get("seqno"):
            result.notes.append(f"mariabackup recorded seqno {prep['recorded'].get('seqno')}, the data holds "
                                f"{position.get('seqno')}: the data's own position is the one used")
        note(f"prepared: {prep['files']} files, {prep['size']} bytes, position "
             f"{position['uuid'] + ':' + str(position['seqno']) if position else 'none recorded in InnoDB'}")
        plan: pitr.Plan | None = None
        try:
            if to is not None:
                note(f"finding binary logs that carry {bid} up to {pitr.iso(to)}")
                plan = pitr.plan(profile, remote, target=chosen, donor=str(prep.get("donor") or entry.donor),
                                 binlog_pos=prep.get("binlog_pos"), to=to, recorded=prep.get("gtid"),
                                 finished=prep.get("finished_epoch"))
                result.pitr = {"plan": plan.to_dict()}
                result.notes.extend(plan.notes)
                note(f"will replay {plan.source}'s binary logs ({len(plan.files)} files, {plan.size} bytes) from "
                     f"{plan.start or 'the first transaction'} up to {plan.stop} UTC")
            node = remote[chosen]
            kinds = {name: remote[name].run(MOUNTED(data_dir),
                                            what="look at the datadir").stdout.strip()
                     for name in names}
            # beside the datadir (same filesystem: one rename), or inside it when it is a mount point
            staging = (f"{data_dir}/.studio-restore-{bid}" if kinds[chosen] == "mount"
                       else f"{data_dir}.restore-{bid}")
            node.run(RM_STAGING(path=staging), what="clear an earlier staging directory")
            port = profile.backups.receiver_port
            note(f"{chosen} pulls the copy from {profile.arbiter.name} port {port}")
            sent, got = _pull(profile, remote, chosen, work, staging, timeout, "the prepared copy")
        finally:
            arb.run(RM_PREPARED(path=work), check=False, what="remove the prepared copy")
        if "error" in sent or "error" in got:
            node.run(RM_STAGING(path=staging), check=False)
            raise BackupError(f"the copy did not reach {chosen}: {sent.get('error') or got.get('error')}",
                              f"{chosen} must reach {profile.arbiter.name} on port {port} (backups.receiver_port)")
        if sent.get("tar") != 0 or got.get("tar") != 0 or got.get("size") != prep["size"]:
            node.run(RM_STAGING(path=staging), check=False)
            raise BackupError(f"the copy that reached {chosen} is incomplete ({got.get('size')} of {prep['size']} "
                              f"bytes; tar exit {sent.get('tar')}/{got.get('tar')})", "run restore again")
        result.bytes = int(got.get("received") or 0)
        # Nothing is deleted: every current datadir is kept aside under a name that says when and why.
        for name in names:
            aside = f"{data_dir}.pre-restore-{stamp}-{name}"
            r = remote[name].run(SWAP(data_dir, aside, staging if name == chosen else "", kinds[name]),
                                 check=False, timeout=timeout, what="put the data in place")
            swapped = _last_json(r.stdout, r.stderr, "the datadir swap")
            if "error" in swapped:
                said = str(swapped["error"])
                left = f"; the restored copy waits in {staging} on {chosen}" if name == chosen and staging else ""
                raise BackupError(f"restore of {bid} stopped on {name}: {said}{left}",
                                  "free space there (or move the datadir's data off by hand), then restore again"
                                  if "MB free" in said else
                                  f"fix what stopped it on {name}, then restore again (the former data is in "
                                  f"{data_dir} or {aside} there; nothing was deleted)")
            if swapped.get("kept"):
                result.kept[name] = str(swapped["kept"])
        note("data in place on " + chosen + "; former datadirs kept: "
             + (", ".join(f"{n}:{p}" for n, p in result.kept.items()) or "none"))
        # From here the cluster's history starts again from this backup: a later --to from a backup taken
        # before now must not continue it with the binary logs of this new history.
        unrecorded = record_restore(profile, remote, stamp, {
            "time": time.time(), "backup": bid, "position": position, "target": chosen,
            "to": pitr.iso(to) if to is not None else None})
        if unrecorded:
            result.notes.append(f"this restore could not be recorded on {profile.arbiter.name} ({unrecorded}): a "
                                "later restore --to from a backup taken before now would not know that the binary "
                                "logs since are of a new history")
        if plan is not None:
            note(f"replaying {plan.source}'s binary logs into {chosen} up to {plan.stop} UTC")
            done = pitr.apply(profile, secrets, remote, plan, target=chosen, source_dir=result.kept[plan.source],
                              timeout=timeout)
            assert result.pitr is not None
            result.pitr["applied"] = done
            note(f"replayed {done.get('applied')} transactions ({done.get('first')} .. {done.get('last')}, the last "
                 f"of {done.get('last_time')} UTC)")
        content = prep.get("content")
        if content and plan is not None:
            result.notes.append("Crafter's content repositories were left as they are: the backup's are from "
                                f"{entry.time}, before the moment restored to")
        elif content:
            _restore_content(profile, remote, bid, content, stamp, timeout, result, note)
    except RemoteError as exc:
        raise BackupError(f"restore of {bid} stopped on {exc.node}: {exc.message}", exc.hint) from None
    if start:
        note(f"starting the cluster from {chosen} (the others join it by SST)")
        try:
            replay(profile, secrets, remote=remote, skip_checks=True)
        except PipelineError as exc:
            raise BackupError(f"the data is restored on {chosen} but the cluster did not start: {exc.message}",
                              "fix what it says, then `studio-cluster recover PROFILE`") from None
    result.seconds = time.monotonic() - t0
    return result


def _restore_content(profile: Profile, remote: Remote, bid: str, content: dict[str, Any], stamp: str,
                     timeout: float, result: RestoreResult, note: Callable[[str], None]) -> None:
    """Put the backup's Crafter content repositories back on every Crafter node (``studio.nodes``): each pulls
    the backup's ``content/<dir>`` from the Arbiter into ``<data_path>/<dir>.restore-<id>``, the byte count must
    match the manifest, then the current directory is renamed ``<dir>.pre-restore-<UTC time>`` and the copy
    takes its place.  Raises :class:`BackupError` naming the node."""
    port = profile.backups.receiver_port
    base = str(profile.studio.data_path).rstrip("/")
    name = str(content.get("dir") or "repos")
    for node_name in profile.studio.nodes:
        node = remote[node_name]
        current = f"{base}/{name}"
        staging = f"{current}.restore-{bid}"
        node.run(RM_STAGING(path=staging), what="clear an earlier content staging directory")
        sent, got = _pull(profile, remote, node_name, str(content["path"]), staging, timeout,
                          "the content repositories")
        if "error" in sent or "error" in got or sent.get("tar") != 0 or got.get("tar") != 0 \
                or got.get("size") != content.get("size"):
            node.run(RM_STAGING(path=staging), check=False)
            raise BackupError(f"the database of {bid} is restored, but its content repositories did not reach "
                              f"{node_name}: {sent.get('error') or got.get('error') or ''} ({got.get('size')} of "
                              f"{content.get('size')} bytes)",
                              f"{node_name} must reach {profile.arbiter.name} on port {port}; then restore again")
        r = node.run(CONTENT_SWAP(current, f"{current}.pre-restore-{stamp}", staging, profile.studio.os_user),
                     check=False, what="put the content repositories in place")
        swapped = _last_json(r.stdout, r.stderr, "the content swap")
        if "error" in swapped:
            raise BackupError(f"the content repositories of {bid} wait in {staging} on {node_name}: "
                              f"{swapped['error']}", f"fix that on {node_name}, then restore again")
        result.content[node_name] = {"repos": len(content.get("repos") or []), "kept": swapped.get("kept")}
        note(f"content repositories of {bid} in place on {node_name}"
             + (f"; the former ones kept as {swapped['kept']}" if swapped.get("kept") else ""))


def _last_json(stdout: str, stderr: str, what: str) -> dict[str, Any]:
    lines = stdout.strip().splitlines()
    try:
        out: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"error": f"{what} said: {(stderr.strip() or stdout.strip())[-300:] or 'nothing'}"}
    return out
