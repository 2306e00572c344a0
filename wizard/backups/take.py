"""``backup take``: a consistent snapshot of one data node, streamed to the Arbiter host while the cluster
keeps serving.

1. The donor is the data node the authoring name does NOT point at (``--donor`` overrides); it must be
   Primary and Synced.
2. On the Arbiter: the receiver (:mod:`wizard.agent.receiver`) starts listening on
   ``backups.receiver_port``, then a second garbd (its own ``backups.garbd_port`` and work dir, beside the
   cluster's garbd) joins and requests ``--sst studio_backup:ARBITER:PORT/TOKEN/SIZE --donor DONOR``.
3. The donor desyncs and runs ``wsrep_sst_studio_backup``; the receiver stores the stream and writes the
   manifest last.  The outcome is read from the receiver's state file, never from garbd's exit code
   (garbd exits 0 whatever happened).
4. Once complete, the donor must return to Synced by itself.

Each backup is a directory ``<backups.root>/<UTC time>-<donor>/`` holding ``data/``, ``content/`` (Crafter's
content repositories, ``studio.data_path``/repos, when the donor is one of ``studio.nodes``), ``receiver.json``,
``manifest.json`` (only when complete), ``garbd.log`` and, after a failure seen by this side,
``failure.json``.
"""

from __future__ import annotations

import json
import secrets as pysecrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import PurePosixPath
from typing import Any

from wizard.agent.backup_job import full_disk_reason
from wizard.agent.rootcmd import RootScript
from wizard.backups import BackupError
from wizard.checks.names import query_a
from wizard.nodesql import wsrep_status
from wizard.profile import Node, Profile, is_ip
from wizard.remote import NodeConnection, Remote, RemoteError
from wizard.render import BACKUP_DONOR_LOG, BACKUP_SST_METHOD, backup_content_dir, cluster_address, host_port
from wizard.secrets import Secrets
from wizard.tls.options import files as tls_files
from wizard.tls.options import galera_options_suffix

RECEIVER_FILE = ".studio-cluster-receiver.py"
TERMINAL = ("complete", "failed")


@dataclass(frozen=True)
class Progress:
    """One progress report: receiver ``state``, ``bytes`` received, ``seconds`` since the request, ``rate``
    in bytes/s since the first byte (0 before)."""

    state: str
    bytes: int
    seconds: float
    rate: float


@dataclass
class TakeResult:
    """A complete backup: its ``id`` and ``path`` on the Arbiter, the ``manifest`` (without the per-file list),
    ``seconds`` from request to manifest, ``synced_after_s`` the donor's return to Synced after that (seconds),
    ``timeline`` the seconds from the call to each step (``donor_checked``, ``garbd_started``, ``first_byte_seen``,
    ``finishing_seen``, ``complete_seen``, ``returned``)."""

    id: str
    path: str
    donor: str
    donor_reason: str
    manifest: dict[str, Any]
    seconds: float
    synced_after_s: float | None = None
    notes: list[str] = field(default_factory=list)
    timeline: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "donor": self.donor, "donor_reason": self.donor_reason,
                "seconds": round(self.seconds, 2), "synced_after_s": self.synced_after_s, "notes": self.notes,
                "timeline": self.timeline, "manifest": self.manifest}


def choose_donor(profile: Profile, override: str | None, authoring_addresses: list[str]) -> tuple[str, str]:
    """The donor's name and why it was chosen.  Pure.

    ``override`` must name a Studio node (else :class:`BackupError`).  Otherwise: the Studio node the
    authoring name does not resolve to; when it resolves to neither or both, the profile's secondary."""
    studio = [n.name for n in profile.studio_nodes]
    if override is not None:
        if override not in studio:
            raise BackupError(f"--donor {override!r} is not a Studio node of this profile",
                              f"use one of {', '.join(studio)}")
        return override, "chosen with --donor"
    by_addr = {n.address: n.name for n in profile.studio_nodes}
    pointed = {by_addr[a] for a in authoring_addresses if a in by_addr}
    if len(pointed) == 1:
        (serving,) = pointed
        other = next(n for n in studio if n != serving)
        return other, f"the authoring name {profile.dns.authoring_name} points at {serving}"
    return profile.secondary.name, (f"the authoring name {profile.dns.authoring_name} gave no single Studio node "
                                    f"({', '.join(authoring_addresses) or 'no answer'}); the secondary donates")


ID_TRIES = 5
"""How many ids (consecutive seconds) ``take`` tries when a backup of the same donor already has one."""


def backup_id(donor: str, now: float | None = None) -> str:
    """``20261130T155904Z-studio2``: sortable by time, names the donor."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time())) + "-" + donor


def receiver_source() -> bytes:
    return resources.files("wizard.agent").joinpath("receiver.py").read_bytes()


def receiver_tls_args(profile: Profile) -> list[str]:
    """The receiver's ``--tls-cert/--tls-key/--tls-ca`` (the Arbiter's own TLS files) when ``tls.enabled``:
    the snapshot stream is then TLS, both ends verified against the cluster's CA; [] when TLS is off."""
    return [arg for flag, path in zip(("--tls-cert", "--tls-key", "--tls-ca"), tls_files(profile), strict=False)
            for arg in (flag, path)]


def _bind(node: Node) -> str:
    return node.address if is_ip(node.address) else "0.0.0.0"  # noqa: S104 (a host name: listen on all)


GARBD_KEEPALIVE = "evs.keepalive_period=PT0.1S"


def garbd_argv(profile: Profile, donor: str, token: str, workdir: str, log: str,
               size: int | None = None) -> list[str]:
    """The backup garbd's command line: the cluster's group and every member's address (the Arbiter's own garbd
    too: told only the data nodes, it learnt that one from them and connected to it 0.5 s later, a connection its
    first membership round waited for), its own listen port, the SST request, and
    ``pc.weight=0``: a member of weight 0 counts for nothing in Galera's quorum (MariaDB, "Quorum Control with
    Weighted Votes"), so the backup's garbd joining or leaving never decides whether the cluster keeps its Primary
    Component.  (The donor-killed drill's non-Primary survivor came from a stalled membership round, not from the
    votes: it happened with weight 0 too; docs/backups.md.)

    ``evs.keepalive_period=PT0.1S`` (Galera's default is 1 s): this garbd is a member for well under a second
    (it leaves once it has sent its request), and with the default its first views waited for the next
    keepalive: on the lab, 1.0 s from the stable membership to the Primary view and 0.5 s more to
    ``gcomm: connected``; with 0.1 s, 0.5 s and 0.1 s.  Only this garbd's keepalives change: the suspect and
    inactive timeouts, and the join retransmission (lowered to 0.1-0.2 s it made garbd form a view alone and
    fail to join), stay Galera's.

    The request ends in ``/SIZE``: the cluster's size before this garbd joins (``size``: the donor's
    ``wsrep_cluster_size`` as ``take`` saw it; else the profile's member count, as in the scheduled job).  garbd
    leaves the group the moment it has asked, and the donor's script waits (50 polls, about 5 s at most) for the
    size to be back to SIZE before it streams, so that a donor dying mid-stream never falls into the same
    membership round as that leave (the drill's non-Primary survivor, docs/backups.md)."""
    arb = profile.arbiter
    b = profile.backups
    listen = f"tcp://{host_port(_bind(arb), b.garbd_port)}"
    # HOST:PORT/TOKEN/SIZE: the donor's script starts streaming once the cluster is back to SIZE members (this
    # garbd's leave installed), so that the donor failing mid-stream never shares a membership round with it.
    request = f"{BACKUP_SST_METHOD}:{host_port(arb.address, b.receiver_port)}/{token}/{size or len(profile.nodes)}"
    return [str(profile.services.garbd), "--address", cluster_address(profile),
            "--group", profile.cluster_name, "--options",
            f"gmcast.listen_addr={listen};pc.weight=0;{GARBD_KEEPALIVE}" + galera_options_suffix(profile),
            "--donor", donor, "--sst", request, "--workdir", workdir, "--log", log]


TAIL_DONOR_LOG = RootScript("backup-tail-donor-log", "tail -n {lines} {path} 2>/dev/null")
TAIL_RECEIVER_LOG = RootScript("backup-tail-receiver-log", "tail -n {lines} {path}")
GARBD_ERRORS = RootScript("backup-garbd-errors",
                          "grep -E 'ERROR|WARN|FATAL|failed' {log} 2>/dev/null | tail -n {lines}")
KILL = RootScript("backup-kill", "kill {pid} 2>/dev/null; true")
RM_PARTIAL = RootScript("backup-rm-partial", "rm -rf {path}")
WRITE_FAILURE = RootScript("backup-write-failure", "cat > {path}")

# One round trip starts a backup on the Arbiter: the backup directory (root 0751: others may traverse, verify's
# throwaway server runs as mysql, but not list; the backup 0750), the receiver detached (own session, output to
# its log), a wait of up to WAIT seconds for its state file to say listening (or failed, or for it to exit), and
# only then, when it listens, the backup's garbd detached: the donor connects only after garbd's request, so the
# receiver always listens first.  Prints {"rpid", "gpid" (0: not started), "state", "reason"}.
START = r"""
import json, os, subprocess, sys, time
root, path, rargv, rlog, gargv, gwork, glog, wait = sys.argv[1:9]
os.makedirs(root, exist_ok=True)
os.chmod(root, 0o751)
try:
    os.mkdir(path, 0o750)
except FileExistsError:  # a backup of this donor started in the same second: the caller takes the next id
    print(json.dumps({"rpid": 0, "gpid": 0, "state": "exists", "reason": path}))
    sys.exit(0)
os.chmod(path, 0o750)
def start(argv, log):
    with open(log, "ab") as out, open(os.devnull, "rb") as null:
        return subprocess.Popen(argv, stdin=null, stdout=out, stderr=out, start_new_session=True)
receiver = start(json.loads(rargv), rlog)
deadline = time.monotonic() + float(wait)
st = {}
while time.monotonic() < deadline:
    try:
        with open(os.path.join(path, "receiver.json")) as fh:
            st = json.load(fh)
    except (OSError, ValueError):
        st = {}
    if st.get("state") in ("listening", "failed") or receiver.poll() is not None:
        break
    time.sleep(0.01)
gpid = 0
if st.get("state") == "listening":
    os.makedirs(gwork, exist_ok=True)
    gpid = start(json.loads(gargv), glog).pid
print(json.dumps({"rpid": receiver.pid, "gpid": gpid, "state": st.get("state", ""), "reason": st.get("reason", "")}))
"""
START_PY = RootScript("backup-start", START, kind="py")

# Follow a backup without a fixed poll interval: waits up to WAIT seconds on the Arbiter, reading the receiver's
# state file every 20 ms, and returns as soon as its state differs from SINCE or either process is gone (else
# at WAIT, with the bytes so far).  Prints {"state": the state file, "receiver": alive, "garbd": alive}.
WAIT = r"""
import json, os, sys, time
d, rp, gp, since, wait = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
def alive(pid):
    try:
        with open("/proc/%s/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
deadline = time.monotonic() + wait
while True:
    try:
        with open(os.path.join(d, "receiver.json")) as fh:
            st = json.load(fh)
    except (OSError, ValueError):
        st = {}
    out = {"state": st, "receiver": alive(rp), "garbd": alive(gp)}
    if st.get("state") != since or not out["receiver"] or time.monotonic() >= deadline:
        break
    time.sleep(0.02)
print(json.dumps(out))
"""
WAIT_PY = RootScript("backup-wait", WAIT, kind="py")
WAIT_S = 1.0
"""How long one follow-up call waits on the Arbiter for a change of state (seconds): the progress interval."""

# After the receiver said complete: the backup's garbd stopped (it has left the group by then) and its work dir
# removed, then the manifest read back without its per-file lists.  One round trip.
FINISH = r"""
import json, os, shutil, signal, sys
pid, work, manifest = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if pid > 0:
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        pass
shutil.rmtree(work, ignore_errors=True)
m = json.load(open(manifest))
m["files"] = len(m["files"])
c = m.get("content")
c and c.update(files=len(c.get("files") or {}))
print(json.dumps(m))
"""
FINISH_PY = RootScript("backup-finish", FINISH, kind="py")


def _tail_donor_log(profile: Profile, conn: NodeConnection, lines: int = 15) -> list[str]:
    path = PurePosixPath(profile.database.data_dir.as_posix()) / BACKUP_DONOR_LOG
    try:
        res = conn.run(TAIL_DONOR_LOG(lines=lines, path=str(path)), check=False, what="read the donor's log")
    except RemoteError:
        return []
    return res.stdout.splitlines()


def _garbd_errors(conn: NodeConnection, log: str, lines: int = 8) -> list[str]:
    res = conn.run(GARBD_ERRORS(log=log, lines=lines), check=False,
                   what="read the backup garbd's log")
    return res.stdout.splitlines()


DONOR_SYNC_WAIT_S = 60.0  # how long take waits for a Primary donor that is not Synced yet


SPACE = r"""
import json, os, sys
d = sys.argv[1]
st = os.statvfs(d)
try:
    with open(os.path.join(d, "receiver.log"), errors="replace") as fh:
        tail = fh.read().splitlines()[-8:]
except OSError:
    tail = []
print(json.dumps({"free": st.f_bavail * st.f_frsize, "total": st.f_blocks * st.f_frsize, "log": tail}))
"""
SPACE_PY = RootScript("backup-disk-space", SPACE, kind="py")


def _disk_full(conn: NodeConnection, path: str, reason: str, log: list[str]) -> str:
    """The reason to give when the backup disk on the Arbiter filled up ("" otherwise), decided by
    :func:`wizard.agent.backup_job.full_disk_reason` on the space the Arbiter reports and the receiver's log."""
    res = conn.run(SPACE_PY(path), check=False, what="read the backup disk's space")
    try:
        info = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return ""
    said = " ".join([reason, *log, *info.get("log", [])])
    return full_disk_reason(path, int(info.get("free", 0)), int(info.get("total", 0)), said)


SETTLE_S = 30.0
"""How long a failed backup waits for the cluster to drop a dead donor before its garbd leaves (seconds)."""


def settle_before_leaving(profile: Profile, secrets: Secrets, remote: Remote, donor: str,
                          timeout: float = SETTLE_S) -> bool:
    """Before the backup's garbd leaves after a failure: when the donor's server no longer answers (killed
    mid-stream), wait until the other data node is Primary in a view without it (cluster size back to the
    profile's node count).  Two membership changes at once, the dead donor's eviction and garbd's leave, were
    seen to end in "no install message received" and every member alone in a non-Primary view (the
    donor-killed drill); one after the other they do not.  Returns True when settled or nothing to wait for."""
    if wsrep_status(remote[donor], profile, secrets).get("wsrep_cluster_status"):
        return True  # the donor is alive: its membership does not change
    others = [n.name for n in profile.studio_nodes if n.name != donor]
    deadline = time.monotonic() + timeout
    while others and time.monotonic() < deadline:
        w = wsrep_status(remote[others[0]], profile, secrets)
        if w.get("wsrep_cluster_status") == "Primary" and int(w.get("wsrep_cluster_size") or 0) <= len(profile.nodes):
            return True
        time.sleep(0.5)
    return not others


def _donor_ready(st: dict[str, str]) -> bool:
    return st.get("wsrep_cluster_status") == "Primary" and st.get("wsrep_local_state_comment") == "Synced"


def _check_donor(profile: Profile, secrets: Secrets, conn: NodeConnection, donor_name: str,
                 note: Callable[[str], None]) -> int:
    """Return the cluster's size once the donor is Primary and Synced; a Primary donor that is not Synced yet
    (Joined, or Donor/Desynced after the backup before this one) is waited for up to DONOR_SYNC_WAIT_S.  Raises
    :class:`BackupError` otherwise."""
    st = wsrep_status(conn, profile, secrets)
    if not _donor_ready(st) and st.get("wsrep_cluster_status") == "Primary":
        note(f"waiting up to {DONOR_SYNC_WAIT_S:.0f} s for {donor_name} to be Synced "
             f"(it is {st.get('wsrep_local_state_comment') or '?'})")
        deadline = time.monotonic() + DONOR_SYNC_WAIT_S
        while not _donor_ready(st) and time.monotonic() < deadline:
            time.sleep(0.5)
            st = wsrep_status(conn, profile, secrets)
    if not _donor_ready(st):
        raise BackupError(
            f"the donor {donor_name} is not Primary and Synced (status {st.get('wsrep_cluster_status') or 'no answer'}"
            f", state {st.get('wsrep_local_state_comment') or '-'})",
            "run `studio-cluster status`, or pick the other node with --donor")
    return int(st.get("wsrep_cluster_size") or 0)


def _concurrently(first: Callable[[], Any], second: Callable[[], Any]) -> None:
    """Run both (each on its own node connection), the first in a thread; re-raise the first error seen, the
    first call's before the second's."""
    errors: list[BaseException] = []

    def run_first() -> None:
        try:
            first()
        except BaseException as exc:  # re-raised below, in the caller's thread
            errors.append(exc)

    t = threading.Thread(target=run_first, name="backup-take-setup", daemon=True)
    t.start()
    try:
        second()
    finally:
        t.join()
    if errors:
        raise errors[0]


def take(profile: Profile, secrets: Secrets, remote: Remote, *, donor: str | None = None,
         on_progress: Callable[[Progress], None] | None = None,
         on_note: Callable[[str], None] | None = None) -> TakeResult:
    """Take one snapshot backup; returns when the receiver says complete and the manifest exists.

    Raises :class:`BackupError` naming the reason (the receiver's verdict, the donor's log lines, garbd's
    errors) when it is not; the partial directory stays, marked failed, and is never listed complete.
    Waits: up to DONOR_SYNC_WAIT_S for a Primary donor to be Synced, 30 s for the receiver to listen,
    ``backups.connect_timeout_s`` for the donor to start streaming, ``backups.timeout_s`` in all.
    ``on_progress`` is called at each change of the receiver's state and about every :data:`WAIT_S` seconds
    while it receives; the result's ``timeline`` says when each step ended (seconds from the call)."""
    t0 = time.monotonic()
    timeline: dict[str, float] = {}

    def mark(step: str) -> None:
        timeline[step] = round(time.monotonic() - t0, 3)

    note = on_note or (lambda _m: None)
    addresses: list[str] = []
    if donor is None:  # --donor needs no answer from DNS
        try:
            addresses = query_a(profile, profile.dns.authoring_name, 2.0)
        except OSError:
            addresses = []
    donor_name, why = choose_donor(profile, donor, addresses)
    note(f"donor {donor_name}: {why}")
    donor_conn = remote[donor_name]
    b = profile.backups
    arb = remote[profile.arbiter.name]
    root = str(b.root)
    first_id_at = time.time()
    token = pysecrets.token_hex(12)
    receiver = f"{root}/{RECEIVER_FILE}"
    # The donor's state and the receiver's upload at once (the upload leaves no backup behind if the donor
    # refuses); the backup directory, the receiver and garbd only after the donor was found ready.
    seen: dict[str, int] = {}
    _concurrently(lambda: seen.update(size=_check_donor(profile, secrets, donor_conn, donor_name, note)),
                  lambda: arb.put(receiver_source(), receiver, mode=0o600))
    mark("donor_checked")
    meta = json.dumps({"cluster": profile.cluster_name, "arbiter": profile.arbiter.name})
    content_dir = backup_content_dir(profile, profile.node(donor_name))  # Crafter's repositories travel along
    start = time.monotonic()
    listen_wait = 30  # a python3 start on a loaded host: seconds, not tens of them
    for later in range(ID_TRIES):  # ids have whole seconds: a backup of this donor in the same second has it
        bid = backup_id(donor_name, first_id_at + later)
        path = f"{root}/{bid}"
        rargv = ["python3", receiver, "--dir", path, "--bind", _bind(profile.arbiter), "--port",
                 str(b.receiver_port), "--token", token, "--donor", donor_name, "--accept-timeout",
                 str(b.connect_timeout_s), "--meta", meta, *(["--content", content_dir.name] if content_dir else []),
                 *receiver_tls_args(profile)]
        glog = f"{path}/garbd.log"
        gargv = garbd_argv(profile, donor_name, token, f"{path}/garbd", glog, size=seen.get("size") or None)
        started = json.loads(arb.run(START_PY(root, path, json.dumps(rargv), f"{path}/receiver.log",
                                              json.dumps(gargv), f"{path}/garbd", f"{path}/garbd.out", listen_wait),
                                     timeout=listen_wait + 30,
                                     what="start the backup receiver and garbd").stdout.strip().splitlines()[-1])
        if started["state"] != "exists":
            break
    else:
        raise BackupError(f"backups of {donor_name} named for the next {ID_TRIES} seconds already exist in {root}",
                          "wait a few seconds and take the backup again")
    rpid, gpid = str(started["rpid"]), str(started["gpid"])
    mark("garbd_started")

    def wait(since: str) -> dict[str, Any]:
        res = arb.run(WAIT_PY(path, rpid, gpid, since, WAIT_S), timeout=WAIT_S + 60, what="follow the backup")
        out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
        return out

    def fail(reason: str, hint: str, log: list[str]) -> BackupError:
        if gpid != "0":
            settle_before_leaving(profile, secrets, remote, donor_name)
        for pid in (rpid, gpid):
            if pid != "0":
                arb.run(KILL(pid=pid), check=False, what="stop the backup's processes")
        full = _disk_full(arb, path, reason, log)
        # A partial copy restores nothing and holds disk space (all of it, when the disk filled up): remove it;
        # the directory stays with the reason, listed failed.
        for part in ("data", "content"):
            arb.run(RM_PARTIAL(path=f"{path}/{part}"), check=False, what="remove the partial copy")
        if full:
            reason, hint = full, (f"free space in {root} on {profile.arbiter.name} (`studio-cluster backup prune`, "
                                  "or a bigger disk), then take the backup again")
        record = json.dumps({"reason": reason, "log": log, "time": time.time()})
        arb.run(WRITE_FAILURE(path=path + "/failure.json"), stdin=record, check=False, what="record the failure")
        return BackupError(reason, hint, log)

    try:
        if started["state"] == "failed":
            raise fail(f"the receiver could not start: {started.get('reason')}",
                       f"free port {b.receiver_port} on {profile.arbiter.name} or change backups.receiver_port", [])
        if started["state"] != "listening":
            log = arb.run(TAIL_RECEIVER_LOG(lines=5, path=path + "/receiver.log"), check=False).stdout.splitlines()
            raise fail("the receiver on the Arbiter did not start listening",
                       "python3 must be installed on the Arbiter host", log)
        note(f"garbd (port {b.garbd_port}) asked {donor_name} for a snapshot; receiver on "
             f"{host_port(profile.arbiter.address, b.receiver_port)}")
        reach_hint = (f"{profile.arbiter.name} and the data nodes must reach each other (garbd: the data nodes' "
                      f"Galera port and {profile.arbiter.name}'s port {b.garbd_port}; the stream: "
                      f"{profile.arbiter.name}'s port {b.receiver_port}), and {donor_name} needs "
                      f"wsrep_sst_{BACKUP_SST_METHOD} (run replay)")
        connect_deadline = time.monotonic() + b.connect_timeout_s
        deadline = time.monotonic() + b.timeout_s
        garbd_gone_at: float | None = None
        first_byte: tuple[float, int] | None = None
        state = "listening"
        while True:
            p = wait(state)
            s = p["state"]
            state = s.get("state", "?")
            nbytes = int(s.get("bytes") or 0)
            now = time.monotonic()
            if nbytes and first_byte is None:
                first_byte = (now, nbytes)
                mark("first_byte_seen")
            rate = (nbytes - first_byte[1]) / (now - first_byte[0]) if first_byte and now > first_byte[0] else 0.0
            if state in ("finishing", "complete") and "finishing_seen" not in timeline:
                mark("finishing_seen")
            if on_progress is not None:
                on_progress(Progress(state, nbytes, now - start, rate))
            if state == "complete":
                mark("complete_seen")
                break
            if state == "failed" and "no donor connected" in str(s.get("reason")):
                log = _garbd_errors(arb, glog) + _tail_donor_log(profile, donor_conn, 8)
                raise fail(f"the backup failed: {s.get('reason')}", reach_hint, log)
            if state == "failed":
                log = list(s.get("donor_log") or []) or _tail_donor_log(profile, donor_conn)
                raise fail(f"the backup failed: {s.get('reason')}",
                           f"see the donor's log ({profile.database.data_dir}/{BACKUP_DONOR_LOG} on {donor_name})",
                           log[-15:])
            if not p["receiver"]:
                raise fail("the receiver on the Arbiter stopped before the backup was complete (killed?)",
                           "run `backup take` again", _tail_donor_log(profile, donor_conn))
            if not p["garbd"] and garbd_gone_at is None:
                garbd_gone_at = now
            if state == "listening" and (now > connect_deadline or (garbd_gone_at and now - garbd_gone_at > 15)):
                log = _garbd_errors(arb, glog) + _tail_donor_log(profile, donor_conn, 8)
                raise fail(f"no snapshot arrived from {donor_name}: garbd could not join the cluster or the donor "
                           "refused the request", reach_hint, log)
            if now > deadline:
                raise fail(f"the backup took longer than backups.timeout_s ({b.timeout_s} s)",
                           "raise backups.timeout_s", _tail_donor_log(profile, donor_conn))
    except RemoteError as exc:
        raise BackupError(f"lost the Arbiter while taking a backup: {exc.message}", exc.hint) from None
    seconds = time.monotonic() - start
    manifest: dict[str, Any] = {}

    def finish() -> None:
        out = arb.run(FINISH_PY(gpid, path + "/garbd", f"{path}/manifest.json"), what="read the manifest")
        manifest.update(json.loads(out.stdout.strip().splitlines()[-1]))

    synced: dict[str, Any] = {}

    def donor_synced() -> None:
        synced_from = time.monotonic()
        deadline = synced_from + 120
        while True:
            st = wsrep_status(donor_conn, profile, secrets)
            if st.get("wsrep_local_state_comment") == "Synced":
                synced["after"] = round(time.monotonic() - synced_from, 2)
                return
            if time.monotonic() > deadline:
                synced["note"] = (f"{donor_name} is still {st.get('wsrep_local_state_comment') or 'not answering'} "
                                  "120 s after the backup; the backup itself is complete")
                return
            time.sleep(0.1)

    _concurrently(donor_synced, finish)  # garbd's clean-up and the manifest while the donor resyncs
    mark("returned")
    result = TakeResult(bid, path, donor_name, why, manifest, seconds, synced.get("after"), timeline=timeline)
    if "note" in synced:
        result.notes.append(synced["note"])
    return result
