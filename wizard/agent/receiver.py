"""The receiving end of a snapshot backup, run on the Arbiter host (stdlib only, Python 3.9+).

``studio-cluster backup take`` copies this file to the Arbiter and starts it in the background::

    python3 receiver.py --dir BACKUP_DIR --bind ADDRESS --port PORT --token TOKEN --donor NODE
                        [--accept-timeout S] [--end-timeout S] [--meta JSON]

It listens on ADDRESS:PORT for the donor's ``wsrep_sst_studio_backup``, which connects twice:

1. ``STUDIO-BACKUP-DATA TOKEN\\n`` then the xbstream of ``mariabackup --backup --galera-info``: piped into
   ``mbstream -x -C BACKUP_DIR/data`` (bytes counted for progress);
2. ``STUDIO-BACKUP-END TOKEN BACKUP_RC NET_RC\\n`` then the tail of the donor's log.

A connection with another token is closed unread.  The state lives in ``BACKUP_DIR/receiver.json``
(rewritten atomically): ``{"state": "listening"|"receiving"|"finishing"|"complete"|"failed", "bytes": int,
"pid": int, "started": epoch s, "updated": epoch s, "reason": str, "donor_log": [str]}``.

The backup is complete only when the stream ended cleanly, mbstream exited 0, the end marker says both
exit codes are 0, and mariabackup's own end files are there; then ``BACKUP_DIR/manifest.json`` is
written LAST (temp file, fsync, rename): time, donor, Galera position, GTID, size, sha256 of every
file, tool versions.  A backup directory without ``manifest.json`` is never complete.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time

MANIFEST = "manifest.json"
STATE = "receiver.json"
DATA = "data"
GALERA_INFO = ("mariadb_backup_galera_info", "mariabackup_galera_info", "xtrabackup_galera_info")
BINLOG_INFO = ("mariadb_backup_binlog_info", "mariabackup_binlog_info", "xtrabackup_binlog_info")
INFO = ("mariadb_backup_info", "mariabackup_info", "xtrabackup_info")
CHECKPOINTS = ("mariadb_backup_checkpoints", "mariabackup_checkpoints", "xtrabackup_checkpoints")
CHUNK = 1 << 20


class Failed(Exception):
    """The backup cannot be complete; the message says why."""


def write_json(path: str, data: dict) -> None:
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class State:
    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, STATE)
        self.data = {"state": "listening", "bytes": 0, "pid": os.getpid(), "started": time.time(),
                     "updated": time.time(), "reason": "", "donor_log": []}
        self.last = 0.0

    def set(self, force: bool = True, **fields: object) -> None:
        self.data.update(fields)
        now = time.time()
        if force or now - self.last >= 0.5:
            self.data["updated"] = now
            write_json(self.path, self.data)
            self.last = now


def read_line(conn: socket.socket, limit: int = 512) -> tuple[str, bytes]:
    """The first line of a connection and whatever arrived after it."""
    buf = b""
    while b"\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
        if len(buf) > limit and b"\n" not in buf[:limit]:
            raise Failed("a connection sent no header line: not studio-cluster's donor script")
    line, _, rest = buf.partition(b"\n")
    return line.decode("ascii", "replace").strip(), rest


def accept(server: socket.socket, token: str, kind: str, deadline: float) -> tuple[socket.socket, list[str], bytes]:
    """The next connection of this backup whose header is ``STUDIO-BACKUP-<kind> <token> ...``."""
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError(kind)
        server.settimeout(left)
        conn, _peer = server.accept()
        conn.settimeout(120)
        try:
            header, rest = read_line(conn)
        except (OSError, Failed):
            conn.close()
            continue
        words = header.split()
        if len(words) >= 2 and words[0] == "STUDIO-BACKUP-" + kind and words[1] == token:
            return conn, words[2:], rest
        conn.close()


def receive_data(conn: socket.socket, first: bytes, directory: str, state: State) -> int:
    """Pipe the stream into mbstream; returns the byte count.  Raises Failed on a broken stream."""
    target = os.path.join(directory, DATA)
    os.makedirs(target, exist_ok=True)
    err_path = os.path.join(directory, "mbstream.log")
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(["mbstream", "-x", "-C", target], stdin=subprocess.PIPE, stderr=err)
    assert proc.stdin is not None
    total = 0
    try:
        if first:
            proc.stdin.write(first)
            total += len(first)
        conn.settimeout(300)
        while True:
            chunk = conn.recv(CHUNK)
            if not chunk:
                break
            proc.stdin.write(chunk)
            total += len(chunk)
            state.set(force=False, bytes=total)
    except OSError as exc:  # socket.timeout is an OSError
        proc.kill()
        proc.wait()
        raise Failed("the stream broke after %d bytes: %s" % (total, exc)) from None
    finally:
        conn.close()
        with contextlib.suppress(OSError):
            proc.stdin.close()
    rc = proc.wait()
    if rc != 0:
        with open(err_path, errors="replace") as fh:
            tail = fh.read()[-500:].strip()
        raise Failed("mbstream failed with exit %d after %d bytes: %s" % (rc, total, tail))
    return total


def first_file(data: str, names: tuple) -> str | None:
    for name in names:
        path = os.path.join(data, name)
        if os.path.exists(path):
            return path
    return None


def read_text(path: str | None) -> str:
    if path is None:
        return ""
    with open(path, errors="replace") as fh:
        return fh.read()


def parse_galera_info(text: str) -> dict:
    """``UUID:SEQNO [DOMAIN]`` (first line) -> {"uuid", "seqno", "domain_id"}; empty dict if unreadable."""
    m = re.match(r"\s*([0-9a-fA-F-]{36}):(-?\d+)(?:\s+(\d+))?", text)
    if not m:
        return {}
    return {"uuid": m.group(1).lower(), "seqno": int(m.group(2)),
            "domain_id": int(m.group(3)) if m.group(3) else None}


def parse_binlog_gtid(text: str) -> str | None:
    """The GTID list of ``*_binlog_info`` (``file pos gtid-list``), None when binary logs were off."""
    parts = text.split()
    return parts[2] if len(parts) >= 3 else None


def parse_info(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def file_hashes(data: str) -> tuple[dict, int]:
    files, size = {}, 0
    for root, _dirs, names in os.walk(data):
        for name in sorted(names):
            path = os.path.join(root, name)
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(CHUNK), b""):
                    digest.update(chunk)
            st = os.stat(path)
            files[os.path.relpath(path, data)] = {"sha256": digest.hexdigest(), "size": st.st_size}
            size += st.st_size
    return dict(sorted(files.items())), size


def tool_version(argv: list) -> str:
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return ""
    return p.stdout.decode(errors="replace").strip().splitlines()[0] if p.stdout.strip() else ""


def build_manifest(directory: str, args: argparse.Namespace, stream_bytes: int, started: float) -> dict:
    data = os.path.join(directory, DATA)
    if first_file(data, CHECKPOINTS) is None:
        raise Failed("the stream lacks mariabackup's checkpoints file: the backup did not finish on the donor")
    galera = parse_galera_info(read_text(first_file(data, GALERA_INFO)))
    if not galera:
        raise Failed("the stream lacks a readable Galera position (mariabackup --galera-info)")
    info = parse_info(read_text(first_file(data, INFO)))
    files, size = file_hashes(data)
    meta = json.loads(args.meta) if args.meta else {}
    return {
        "format": 1,
        "id": os.path.basename(os.path.abspath(directory)),
        "complete": True,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "started_epoch": started,
        "finished_epoch": time.time(),
        "donor": args.donor,
        "position": {"uuid": galera["uuid"], "seqno": galera["seqno"]},
        "gtid": parse_binlog_gtid(read_text(first_file(data, BINLOG_INFO))),
        "gtid_domain_id": galera.get("domain_id"),
        "stream_bytes": stream_bytes,
        "size": size,
        "files": files,
        "tools": {
            "mariabackup": info.get("tool_version", ""),
            "server": info.get("server_version", ""),
            "mbstream": tool_version(["mbstream", "--version"]),
            "garbd": tool_version(["garbd", "--version"]),
        },
        **meta,
    }


def run(args: argparse.Namespace) -> int:
    directory = os.path.abspath(args.dir)
    os.makedirs(directory, exist_ok=True)
    state = State(directory)
    started = time.time()
    server = socket.socket(socket.AF_INET6 if ":" in args.bind else socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((args.bind, args.port))
        server.listen(4)
    except OSError as exc:
        state.set(state="failed", reason="cannot listen on %s:%d: %s" % (args.bind, args.port, exc))
        return 1
    state.set(state="listening")
    try:
        try:
            conn, _, rest = accept(server, args.token, "DATA", time.time() + args.accept_timeout)
        except TimeoutError:
            raise Failed("no donor connected within %d s (garbd could not join, or the donor refused the "
                         "request)" % args.accept_timeout) from None
        state.set(state="receiving", bytes=len(rest))
        total = receive_data(conn, rest, directory, state)
        state.set(state="finishing", bytes=total)
        try:
            end, words, rest = accept(server, args.token, "END", time.time() + args.end_timeout)
        except TimeoutError:
            raise Failed("the stream ended after %d bytes without the donor's end marker (the donor's server or "
                         "mariabackup died mid-stream)" % total) from None
        end.settimeout(30)
        tail = rest
        try:
            while True:
                chunk = end.recv(65536)
                if not chunk:
                    break
                tail += chunk
        except OSError:
            pass
        end.close()
        donor_log = tail.decode(errors="replace").splitlines()[-30:]
        state.set(donor_log=donor_log)
        codes = [*words, "?", "?"][:2]
        if codes != ["0", "0"]:
            raise Failed("the donor reports mariabackup exit %s, transport exit %s" % tuple(codes))
        manifest = build_manifest(directory, args, total, started)
        write_json(os.path.join(directory, MANIFEST), manifest)  # LAST: it is what makes the backup complete
        fsync_dir(directory)
        state.set(state="complete", bytes=total, size=manifest["size"])
        return 0
    except Failed as exc:
        state.set(state="failed", reason=str(exc))
        return 1
    except Exception as exc:  # any surprise is a failed backup with its reason
        state.set(state="failed", reason="receiver error: %s: %s" % (type(exc).__name__, exc))
        return 1
    finally:
        server.close()


def main(argv: list | None = None) -> int:
    p = argparse.ArgumentParser(description="studio-cluster snapshot receiver")
    p.add_argument("--dir", required=True)
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--donor", required=True)
    p.add_argument("--accept-timeout", type=float, default=120)
    p.add_argument("--end-timeout", type=float, default=60)
    p.add_argument("--meta", default="")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
