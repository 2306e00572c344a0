"""``backup restore --to TIME``: a snapshot, then the binary logs up to a moment.

Where the binary logs come from: the rendered config keeps them in the datadir (``log_bin = studio-bin``, relative,
with GTIDs: ``wsrep_gtid_mode``, one ``wsrep_gtid_domain_id`` for the cluster, :data:`WSREP_GTID_DOMAIN`), so each
data node's datadir holds the cluster's whole history for ``database.binlog_keep_days``.  ``restore`` never deletes a
datadir, it sets each aside as ``<datadir>.pre-restore-<time>-<node>``; ``--to`` replays the binary logs of one of
those (the one reaching furthest, the target's own on a tie).  So a point-in-time restore needs at least one data
node whose datadir survived (a lost disk on both nodes leaves only the snapshot: restore without ``--to``).

The steps (:func:`plan` before anything is replaced, :func:`apply` after the swap, before the cluster starts):

1. The snapshot's own position in the donor's binary log: ``mariabackup --prepare`` reads it from InnoDB (committed
   with the data, ``xtrabackup_binlog_pos_innodb``: file and offset); the GTID of the cluster's domain at that offset
   in the donor's binary log is where the snapshot ends, unless it does not fit the backup (after a restore InnoDB
   held an offset from the history before it): then mariabackup's recorded GTID (:func:`choose_start`).  GTIDs are
   the same on every node, offsets are not.
2. A node's logs reach back to the snapshot when the ``Gtid list`` of its first file (the state before that file)
   is at or before that GTID; the snapshot's last transaction must be no later than TIME.
3. On the target, a throwaway ``mariadbd`` (no network, no wsrep, no binary log, its own socket) on the restored
   datadir; ``mysqlbinlog --start-position=GTID --stop-datetime=TIME`` (UTC) piped into it; a clean shutdown.
   InnoDB's wsrep position stays the snapshot's, so the restored node bootstraps from it and the others join it by
   a full SST, which carries the replayed rows.

Binary-log events are stamped in whole seconds: TIME is rounded down to its second, and everything logged in that
second or later is left out.
"""

from __future__ import annotations

import json
import re
import secrets as pysecrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wizard.agent.rootcmd import RootScript
from wizard.backups import BackupError
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets

BINLOG_BASENAME = "studio-bin"
"""``log_bin`` of the rendered config (assets/templates/galera.cnf.j2): relative, so under the datadir."""
WSREP_GTID_DOMAIN = 0
"""``wsrep_gtid_domain_id`` of the rendered config: the GTID domain of every Galera writeset."""

_LOCAL_SUFFIX = " local"


def parse_time(text: str, *, local_tz: Any = None) -> datetime:
    """``--to TIME`` as an aware UTC datetime.  TIME is ISO-8601 with a UTC offset (``2026-11-30T21:12:33+01:00``,
    ``...Z``) or a time followed by the word ``local`` (this machine's time zone, or ``local_tz``).

    Raises :class:`ValueError` naming ``--to`` and the forms it takes."""
    raw = text.strip()
    local = raw.lower().endswith(_LOCAL_SUFFIX)
    body = raw[: -len(_LOCAL_SUFFIX)].strip() if local else raw
    if body.endswith(("Z", "z")):
        body = body[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(body)
    except ValueError:
        raise ValueError(f"--to {text!r} is not a time: use ISO-8601 with a UTC offset, e.g. 2026-11-30T21:12:33Z "
                         "or 2026-11-30T22:12:33+01:00, or a local time said so, e.g. '2026-11-30 22:12:33 local'"
                         ) from None
    if local and when.tzinfo is not None:
        raise ValueError(f"--to {text!r} has both a UTC offset and 'local': give one of them")
    if local:
        when = when.replace(tzinfo=local_tz) if local_tz is not None else when.astimezone()
    elif when.tzinfo is None:
        raise ValueError(f"--to {text!r} has no UTC offset, so the moment is ambiguous: add one (e.g. "
                         f"{body}Z or {body}+01:00), or say 'local' after it for this machine's time zone")
    return when.astimezone(UTC)


def check_window(target: datetime, *, backup_started: float, now: datetime) -> None:
    """Refuse a TIME in the future or before the backup started (both before anything is touched).

    Raises :class:`BackupError` saying which and what to do."""
    if target > now:
        raise BackupError(f"--to {iso(target)} is in the future (now is {iso(now)})",
                          "give a moment that has passed; the binary logs cannot reach beyond the cluster's last write")
    started = datetime.fromtimestamp(backup_started, UTC)
    if target < started:
        raise BackupError(f"--to {iso(target)} is before this backup was taken ({iso(started)})",
                          "restore an older backup (`studio-cluster backup list`), one taken before that moment")


def iso(when: datetime) -> str:
    """``2026-11-30T21:12:33.250000Z`` (UTC, microseconds only when there are any)."""
    return when.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def stop_datetime(target: datetime) -> str:
    """``mysqlbinlog --stop-datetime`` for TIME, in UTC (mysqlbinlog runs with TZ=UTC), rounded down to the second:
    binary-log events are stamped in whole seconds."""
    return target.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_gtid_list(text: str) -> dict[int, tuple[int, int]]:
    """``0-1-6,1-2-3`` as {domain: (server_id, seqno)}.  Raises :class:`ValueError` on a malformed entry."""
    out: dict[int, tuple[int, int]] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        found = re.fullmatch(r"(\d+)-(\d+)-(\d+)", part)
        if not found:
            raise ValueError(f"{part!r} is not a GTID (domain-server-seqno)")
        out[int(found.group(1))] = (int(found.group(2)), int(found.group(3)))
    return out


def reaches_back(first_list: str | None, start: str) -> bool:
    """Whether binary logs whose first file starts after ``first_list`` (its ``Gtid list``; empty or None: from the
    very first transaction) hold every cluster transaction after GTID ``start``."""
    before = parse_gtid_list(first_list or "").get(WSREP_GTID_DOMAIN)
    want = parse_gtid_list(start).get(WSREP_GTID_DOMAIN)
    if before is None:
        return True
    return want is not None and before[1] <= want[1]


SCAN_SCRIPT = r"""
import glob, json, os, re, shutil, subprocess, sys
d, base, domain, pos_file, pos = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
tool = shutil.which("mysqlbinlog") or shutil.which("mariadb-binlog")
files = sorted(f for f in glob.glob(os.path.join(glob.escape(d), base + ".[0-9]*")) if re.search(r"\.\d+$", f))
out = {"dir": d, "files": [os.path.basename(f) for f in files], "size": sum(os.path.getsize(f) for f in files)}
if not files:
    print(json.dumps(out)); sys.exit(0)
if tool is None:
    out["error"] = "mysqlbinlog is not installed (install mariadb-client)"
    print(json.dumps(out)); sys.exit(0)
HEAD = re.compile(r"^#(\d{6} +\d+:\d\d:\d\d) server id \d+ +end_log_pos (\d+) .*?\t"
                  r"(GTID (\d+-\d+-\d+)|Gtid list \[([^\]]*)\])")
def events(path, *extra):
    p = subprocess.Popen([tool, "--no-defaults", *extra, path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env={"TZ": "UTC", "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    for raw in p.stdout:
        m = HEAD.match(raw.decode(errors="replace"))
        if m:
            yield m
    p.wait()
def when(stamp):
    s = stamp.split()
    return "20%s-%s-%s %s" % (s[0][:2], s[0][2:4], s[0][4:6], s[1].zfill(8))
first = next((m.group(5) for m in events(files[0], "--stop-position=4096") if m.group(5) is not None), None)
out["first_list"] = first
last = None
for m in events(files[-1]):
    if m.group(4):
        last = (m.group(4), when(m.group(1)))
out["last_gtid"], out["last_time"] = last if last else (None, None)
if pos_file:
    path = os.path.join(d, os.path.basename(pos_file))
    if os.path.exists(path):
        state = None
        for m in events(path, "--stop-position=%d" % pos):
            if m.group(5) is not None:
                for g in m.group(5).split(","):
                    g = g.strip()
                    if g and int(g.split("-")[0]) == domain:
                        state = (g, None)
            elif int(m.group(4).split("-")[0]) == domain:
                state = (m.group(4), when(m.group(1)))
        out["at_pos"] = {"gtid": state[0] if state else None, "time": state[1] if state else None}
print(json.dumps(out))
"""
SCAN = RootScript("pitr-scan-binlogs", SCAN_SCRIPT, kind="py")

APPLY_SCRIPT = r"""
import json, os, re, shutil, signal, subprocess, sys, tempfile, time
datadir, bindir, files, start, stop, mariadbd, user = (sys.argv[1], sys.argv[2], json.loads(sys.argv[3]),
                                                       sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7])
tool = shutil.which("mysqlbinlog") or shutil.which("mariadb-binlog")
sock, pidf, errf = (os.path.join(datadir, ".studio-pitr." + n) for n in ("sock", "pid", "err"))
out = {"applied": 0, "first": None, "last": None, "last_time": None}
fd, cred = tempfile.mkstemp(prefix="studio-pitr-")
os.write(fd, sys.stdin.buffer.read())
os.close(fd)
server = None
def finish(error=None):
    if server is not None and server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(600)
        except subprocess.TimeoutExpired:
            server.kill()
            error = error or "the throwaway server did not shut down within 600 s"
    for f in (sock, pidf, cred):
        try:
            os.unlink(f)
        except OSError:
            pass
    if error:
        out["error"] = error
        try:
            with open(errf) as fh:
                out["log"] = fh.read().splitlines()[-8:]
        except OSError:
            pass
    try:
        os.unlink(errf)
    except OSError:
        pass
    print(json.dumps(out))
    sys.exit(0)
if tool is None:
    finish("mysqlbinlog is not installed on this node (install mariadb-client)")
server = subprocess.Popen([mariadbd, "--no-defaults", "--datadir=" + datadir, "--socket=" + sock, "--pid-file=" + pidf,
                           "--skip-networking", "--wsrep-on=OFF", "--skip-log-bin", "--skip-slave-start",
                           "--max-allowed-packet=1G", "--log-error=" + errf, "--user=mysql"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
client = ["mariadb", "--defaults-extra-file=" + cred, "--socket=" + sock, "--user=" + user, "--binary-mode",
          "--max-allowed-packet=1G", "--batch"]
deadline = time.time() + 300
while True:
    if server.poll() is not None:
        finish("the throwaway server on the restored data exited (code %s)" % server.returncode)
    if os.path.exists(sock) and subprocess.run(client + ["-e", "SELECT 1"], stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL).returncode == 0:
        break
    if time.time() > deadline:
        finish("the throwaway server on the restored data did not answer within 300 s")
    time.sleep(0.2)
HEAD = re.compile(rb"^#(\d{6} +\d+:\d\d:\d\d) server id \d+ .*?\tGTID (\d+-\d+-\d+)")
args = [tool, "--no-defaults", "--stop-datetime=" + stop] + (["--start-position=" + start] if start else [])
with tempfile.TemporaryFile() as e1, tempfile.TemporaryFile() as e2:
    mb = subprocess.Popen(args + [os.path.join(bindir, f) for f in files], stdout=subprocess.PIPE, stderr=e1,
                          env={"TZ": "UTC", "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    cl = subprocess.Popen(client, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=e2)
    broken = False
    for line in mb.stdout:
        m = HEAD.match(line)
        if m:
            out["applied"] += 1
            out["first"] = out["first"] or m.group(2).decode()
            stamp = m.group(1).decode().split()
            out["last"] = m.group(2).decode()
            out["last_time"] = "20%s-%s-%s %s" % (stamp[0][:2], stamp[0][2:4], stamp[0][4:6], stamp[1].zfill(8))
        try:
            cl.stdin.write(line)
        except BrokenPipeError:
            broken = True
            break
    if broken:
        mb.kill()
    try:
        cl.stdin.close()
    except BrokenPipeError:
        pass
    crc, mrc = cl.wait(), mb.wait()
    e1.seek(0)
    e2.seek(0)
    mb_err = [l for l in e1.read().decode(errors="replace").splitlines() if l.strip() and not l.startswith("WARNING")]
    cl_err = e2.read().decode(errors="replace").strip()
if crc != 0 or broken:
    finish("the server refused a replayed event: " + (cl_err[-400:] or "client exit %d" % crc))
if mrc != 0 or mb_err:
    finish("mysqlbinlog failed: " + " | ".join(mb_err[-3:] or ["exit %d" % mrc]))
finish()
"""
APPLY = RootScript("pitr-apply", APPLY_SCRIPT, kind="py")


LINK_SCRIPT = r"""
import os, sys
src, dst, names = sys.argv[1], sys.argv[2], sys.argv[3:]
os.makedirs(dst, exist_ok=True)
for n in names:
    t = os.path.join(dst, n)
    os.path.exists(t) or os.link(os.path.join(src, n), t)
"""
LINK = RootScript("pitr-link-binlogs", LINK_SCRIPT, kind="py")
RM_BINLOG_COPY = RootScript("pitr-rm-binlog-copy", "rm -rf {path}")
RM_LINKS = RootScript("pitr-rm-links", "rm -rf {path}")


@dataclass
class Plan:
    """What ``--to`` will replay: ``source`` node and the ``files`` of its binary logs, from ``start`` (the GTID the
    snapshot ends at, in the cluster's domain) to ``stop`` (``mysqlbinlog --stop-datetime``, UTC), and ``notes``."""

    source: str
    files: list[str]
    size: int
    start: str
    start_time: str | None
    stop: str
    last_time: str | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "files": self.files, "size": self.size, "start": self.start,
                "start_time": self.start_time, "stop": self.stop, "last_time": self.last_time, "notes": self.notes}


def _run_json(remote: Remote, node: str, script: RootScript, args: list[str], what: str, *, stdin: str | None = None,
              timeout: float = 600) -> dict[str, Any]:
    r = remote[node].run(script(*args), stdin=stdin, timeout=timeout, check=False,
                         what=what)
    lines = r.stdout.strip().splitlines()
    try:
        out: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"error": f"{what} on {node} said: {(r.stderr.strip() or r.stdout.strip())[-300:] or 'nothing'}"}
    return out


def choose_start(at: dict[str, Any] | None, recorded: str | None, finished: float | None
                 ) -> tuple[str, str | None, str | None]:
    """Where the replay starts: (GTID, its time or None, a note or None).  Pure.

    ``at`` is what InnoDB's binary-log offset gives in the donor's log ({gtid, time}, or None when that file is not
    there); ``recorded`` mariabackup's GTID list; ``finished`` when the backup finished (epoch s).  The offset is
    preferred (committed with the data), unless it does not fit this backup: a GTID after the recorded one, or a
    transaction stamped after the backup finished.  That was seen on the lab after a restore: InnoDB still held an
    offset from the history before it, and the same file name in the new history pointed past the backup.  Then the
    recorded GTID is used.  Raises :class:`BackupError` when neither is there."""
    rec = parse_gtid_list(recorded or "").get(WSREP_GTID_DOMAIN)
    rec_text = f"{WSREP_GTID_DOMAIN}-{rec[0]}-{rec[1]}" if rec else None
    mapped = at.get("gtid") if at else None
    if at and mapped:
        seqno = parse_gtid_list(mapped)[WSREP_GTID_DOMAIN][1]
        late = finished is not None and at.get("time") and at["time"] > stop_datetime(
            datetime.fromtimestamp(finished, UTC))
        if (rec is None or seqno <= rec[1]) and not late:
            return mapped, at.get("time"), None
    if rec_text:
        why = (f"InnoDB's binary-log offset gives {mapped}, which does not fit this backup (a position left from "
               "before a restore?)" if mapped else "InnoDB's binary-log offset cannot be read in the donor's logs")
        return rec_text, None, f"{why}: mariabackup's recorded GTID {rec_text} is where the replay starts"
    if at is not None and not mapped:
        return "", None, None  # no cluster transaction before the backup: from the first one
    raise BackupError("the GTID this backup ends at cannot be told: it recorded none, and InnoDB's offset in the "
                      "donor's binary log cannot be read there",
                      "restore without --to (the snapshot alone), or bring back the donor's datadir with its "
                      "binary logs")


def plan(profile: Profile, remote: Remote, *, target: str, donor: str, binlog_pos: list[Any] | None,
         to: datetime, recorded: str | None = None, finished: float | None = None) -> Plan:
    """Find binary logs that carry the restored snapshot up to ``to``, before anything is replaced: on every data
    node's current datadir (the one restore will keep aside).  ``binlog_pos`` is [file, offset] of the donor's
    binary log that InnoDB recorded with the data (``xtrabackup_binlog_pos_innodb`` after prepare).

    Raises :class:`BackupError` when the snapshot holds no binary-log position (taken while binary logs were off),
    the donor's binary log with that position is gone, no node's logs reach back to it, or the snapshot's last
    transaction is after ``to``."""
    if not binlog_pos and not recorded:
        raise BackupError("this backup holds no binary-log position (it was taken while binary logs were off), so no "
                          "binary log can continue it",
                          "restore a backup taken after `replay` rendered binary logs on (log_bin), or restore "
                          "without --to")
    pos_file, pos = (str(binlog_pos[0]), int(binlog_pos[1])) if binlog_pos else ("", 0)
    data_dir = str(profile.database.data_dir).rstrip("/")
    names = [n.name for n in profile.studio_nodes]
    scans = {name: _run_json(remote, name, SCAN,
                             [data_dir, BINLOG_BASENAME, str(WSREP_GTID_DOMAIN),
                              pos_file if name == donor else "", str(pos)], "read the binary logs")
             for name in names}
    at = (scans.get(donor) or {}).get("at_pos")
    start, start_time, start_note = choose_start(at, recorded, finished)
    stop = stop_datetime(to)
    if start_time and start_time > stop:
        raise BackupError(f"the backup already holds a transaction of {start_time} UTC ({start}), after --to "
                          f"{iso(to)}", "restore an older backup (`studio-cluster backup list`)")
    usable, notes = [], [start_note] if start_note else []
    for name in names:
        s = scans[name]
        if s.get("error"):
            notes.append(f"{name}: {s['error']}")
        elif not s.get("files"):
            notes.append(f"{name}: no binary logs in {data_dir}")
        elif not reaches_back(s.get("first_list"), start):
            notes.append(f"{name}: its binary logs start after {s.get('first_list')}, not at or before the backup's "
                         f"{start} (expired? database.binlog_keep_days)")
        else:
            usable.append(name)
    if not usable:
        raise BackupError(f"no data node's binary logs reach back to the backup's end ({start}): "
                          + "; ".join(notes),
                          "restore a newer backup, or restore without --to (the snapshot alone)")
    # the logs that reach furthest; the target's own on a tie (nothing to copy)
    source = max(usable, key=lambda n: (scans[n].get("last_time") or "", n == target))
    s = scans[source]
    result = Plan(source, list(s["files"]), int(s.get("size") or 0), start, start_time, stop, s.get("last_time"),
                  notes)
    if s.get("last_time") and s["last_time"] < stop:
        result.notes.append(f"{source}'s binary logs end at {s['last_time']} UTC, before --to {iso(to)}: every "
                            "transaction they hold is replayed")
    if to.microsecond:
        result.notes.append(f"binary-log events are stamped in whole seconds: replayed up to {stop} UTC, not after")
    return result


def apply(profile: Profile, secrets: Secrets, remote: Remote, p: Plan, *, target: str, source_dir: str,
          timeout: float = 3600) -> dict[str, Any]:
    """Replay ``p`` into the restored datadir of ``target`` (its mariadbd stopped) through a throwaway server; the
    binary logs are read from ``source_dir`` on ``p.source`` (copied to the target first when that is another node,
    over ``database.sst_port``).  Returns {applied, first, last, last_time}.

    Raises :class:`BackupError` when the copy is short, the server does not start, or an event is refused."""
    from wizard.backups.restore import RECEIVE, SEND

    data_dir = str(profile.database.data_dir).rstrip("/")
    bindir = source_dir
    staging = ""
    if p.source != target:
        staging = f"{data_dir}.pitr-binlogs"
        links = f"{source_dir}.binlogs-for-{target}"
        remote[p.source].run(LINK(source_dir, links, *p.files),
                             what="gather the binary logs")
        remote[target].run(RM_BINLOG_COPY(path=staging), what="clear an earlier copy of binary logs")
        token, port = pysecrets.token_hex(16), profile.database.sst_port
        sent: dict[str, Any] = {}
        src_addr = profile.node(p.source).address

        def send() -> None:
            sent.update(_run_json(remote, p.source, SEND, [src_addr, str(port), token, links, "120"],
                                  "send the binary logs", timeout=timeout))

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        got = _run_json(remote, target, RECEIVE, [src_addr, str(port), token, staging],
                        "receive the binary logs", timeout=timeout)
        sender.join(timeout)
        remote[p.source].run(RM_LINKS(path=links), check=False, what="remove the gathered links")
        if "error" in sent or "error" in got or got.get("size") != p.size:
            remote[target].run(RM_BINLOG_COPY(path=staging), check=False)
            why = sent.get("error") or got.get("error") or f"{got.get('size')} of {p.size} bytes arrived"
            raise BackupError(f"the binary logs of {p.source} did not reach {target}: {why}",
                              f"{target} must reach {p.source} on port {port} (database.sst_port)")
        bindir = staging
    db = profile.database
    cred = "[client]\n" + (f"password={secrets.admin_password}\n" if secrets.admin_password else "")
    try:
        out = _run_json(remote, target, APPLY,
                        [data_dir, bindir, json.dumps(p.files), p.start, p.stop, str(profile.services.mariadbd),
                         db.admin_user], "replay the binary logs", stdin=cred, timeout=timeout)
    finally:
        if staging:
            remote[target].run(RM_BINLOG_COPY(path=staging), check=False, what="remove the copied binary logs")
    if "error" in out:
        raise BackupError(f"replaying {p.source}'s binary logs on {target} failed: {out['error']}",
                          "the snapshot alone is in place on " + target + "; fix the cause and restore --to again "
                          "(every datadir this restore replaced is kept aside)", log=list(out.get("log") or []))
    return out
