"""The receiving end of a snapshot backup, run on the Arbiter host (stdlib only, Python 3.9+).

``studio-cluster backup take`` copies this file to the Arbiter and starts it in the background::

    python3 receiver.py --dir BACKUP_DIR --bind ADDRESS --port PORT --token TOKEN --donor NODE
                        [--accept-timeout S] [--end-timeout S] [--meta JSON] [--content NAME]
                        [--tls-cert PEM --tls-key PEM --tls-ca PEM]

It listens on ADDRESS:PORT for the donor's ``wsrep_sst_studio_backup``, which connects two or three times:

1. ``STUDIO-BACKUP-DATA TOKEN\\n`` then the xbstream of ``mariabackup --backup --galera-info``: piped into
   ``mbstream -x -C BACKUP_DIR/data`` (bytes counted for progress);
2. on a Crafter node (``--content NAME``: the donor's content directory, ``repos``),
   ``STUDIO-BACKUP-CONTENT TOKEN\\n`` then a tar of that directory: extracted into ``BACKUP_DIR/content``;
3. ``STUDIO-BACKUP-END TOKEN BACKUP_RC NET_RC CONTENT_RC\\n`` then the tail of the donor's log (``CONTENT_RC`` is
   ``none`` where no content is sent, ``absent`` when the donor has no such directory).

With ``--tls-*`` (``tls.enabled``) every connection is TLS: this host shows its certificate, and a donor without
a certificate signed by the CA bundle is refused in the handshake (the last such refusal is named when no donor
connects).  A connection with another token is closed unread.  The state lives in ``BACKUP_DIR/receiver.json``
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
import ssl
import subprocess
import sys
import time

MANIFEST = "manifest.json"
STATE = "receiver.json"
DATA = "data"
CONTENT = "content"
GALERA_INFO = ("mariadb_backup_galera_info", "mariabackup_galera_info", "xtrabackup_galera_info")
BINLOG_INFO = ("mariadb_backup_binlog_info", "mariabackup_binlog_info", "xtrabackup_binlog_info")
INFO = ("mariadb_backup_info", "mariabackup_info", "xtrabackup_info")
CHECKPOINTS = ("mariadb_backup_checkpoints", "mariabackup_checkpoints", "xtrabackup_checkpoints")
CHUNK = 1 << 20


class Failed(Exception):
    """The backup cannot be complete; the message says why."""


REFUSED = {"last": ""}
"""The last connection refused in its TLS handshake (shown when no donor connects)."""


def server_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """TLS for the receiving end: this host's certificate, peers verified against the CA bundle (mutual TLS)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


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


def accept(server: socket.socket, token: str, kind: str, deadline: float,
           tls: ssl.SSLContext | None = None) -> tuple[socket.socket, list[str], bytes]:
    """The next connection of this backup whose header is ``STUDIO-BACKUP-<kind> <token> ...``."""
    conn, _kind, words, rest = accept_any(server, token, (kind,), deadline, tls)
    return conn, words, rest


def accept_any(server: socket.socket, token: str, kinds: tuple, deadline: float,
               tls: ssl.SSLContext | None = None) -> tuple[socket.socket, str, list[str], bytes]:
    """The next connection of this backup whose header is ``STUDIO-BACKUP-<kind> <token> ...`` for one of
    ``kinds``: (connection, kind, the header's further words, what arrived after the header).  With ``tls``, a
    connection whose handshake fails is closed and noted in :data:`REFUSED`."""
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError("/".join(kinds))
        server.settimeout(left)
        conn, peer = server.accept()
        conn.settimeout(120)
        if tls is not None:
            try:
                conn.settimeout(30)
                conn = tls.wrap_socket(conn, server_side=True)
                conn.settimeout(120)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                REFUSED["last"] = "%s: TLS handshake failed: %s" % (peer[0], exc)
                conn.close()
                continue
        try:
            header, rest = read_line(conn)
        except (OSError, Failed):
            conn.close()
            continue
        words = header.split()
        if len(words) >= 2 and words[0].startswith("STUDIO-BACKUP-") and words[1] == token:
            kind = words[0][len("STUDIO-BACKUP-"):]
            if kind in kinds:
                return conn, kind, words[2:], rest
        conn.close()


def pipe_into(argv: list, conn: socket.socket, first: bytes, err_path: str, state: State, base: int,
              what: str) -> int:
    """Feed a connection's bytes (``first``, then until EOF) to ``argv``'s stdin (its stderr to ``err_path``);
    returns the byte count, progress going to ``state`` as ``base`` + bytes.  Raises Failed naming ``what`` when
    the connection breaks or the program exits non-zero (with the tail of its stderr)."""
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=err)
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
            state.set(force=False, bytes=base + total)
    except OSError as exc:  # socket.timeout and ssl.SSLError are OSErrors
        proc.kill()
        proc.wait()
        raise Failed("the %s broke after %d bytes: %s" % (what, total, exc)) from None
    finally:
        conn.close()
        with contextlib.suppress(OSError):
            proc.stdin.close()
    rc = proc.wait()
    if rc != 0:
        with open(err_path, errors="replace") as fh:
            tail = fh.read()[-500:].strip()
        raise Failed("%s failed with exit %d after %d bytes of the %s: %s" % (argv[0], rc, total, what, tail))
    return total


def receive_data(conn: socket.socket, first: bytes, directory: str, state: State) -> int:
    """Pipe the stream into mbstream; returns the byte count.  Raises Failed on a broken stream."""
    target = os.path.join(directory, DATA)
    os.makedirs(target, exist_ok=True)
    return pipe_into(["mbstream", "-x", "-C", target], conn, first, os.path.join(directory, "mbstream.log"), state,
                     0, "stream")


def receive_content(conn: socket.socket, first: bytes, directory: str, state: State, base: int) -> int:
    """Extract the donor's content tar into ``BACKUP_DIR/content``; returns its byte count.  Raises Failed on a
    broken stream or a tar that does not extract.  ``base``: bytes already received (progress counts on)."""
    target = os.path.join(directory, CONTENT)
    os.makedirs(target, exist_ok=True)
    # GNU tar refuses absolute and ``..`` member names and defers dangerous symlinks; owners kept by number
    return pipe_into(["tar", "-x", "--numeric-owner", "-C", target, "-f", "-"], conn, first,
                     os.path.join(directory, "content-tar.log"), state, base, "content stream")


def content_manifest(directory: str, name: str) -> dict:
    """``{"dir", "size", "files", "repos"}`` of ``BACKUP_DIR/content``: every regular file's sha256 and size, every
    symlink's target (never followed), and the git repositories found (a ``.git`` directory, or a bare one)."""
    base = os.path.join(directory, CONTENT)
    files: dict = {}
    repos: list = []
    size = 0
    for root, dirs, names in os.walk(base):
        rel_root = os.path.relpath(root, base)
        if ".git" in dirs or ("HEAD" in names and "objects" in dirs and "refs" in dirs):
            repos.append(rel_root[:-5] if rel_root.endswith("/.git") else rel_root)
        for entry in sorted(names) + sorted(d for d in dirs if os.path.islink(os.path.join(root, d))):
            path = os.path.join(root, entry)
            rel = os.path.relpath(path, base)
            if os.path.islink(path):
                files[rel] = {"symlink": os.readlink(path)}
                continue
            if not os.path.isfile(path):
                continue
            st = os.stat(path)
            files[rel] = {"sha256": sha256_file(path), "size": st.st_size}
            size += st.st_size
    repos = sorted({r for r in repos if not r.endswith("/.git") and r != ".git"})
    return {"dir": name, "size": size, "files": dict(sorted(files.items())), "repos": repos}


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


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_hashes(data: str) -> tuple[dict, int]:
    files, size = {}, 0
    for root, _dirs, names in os.walk(data):
        for name in sorted(names):
            path = os.path.join(root, name)
            st = os.stat(path)
            files[os.path.relpath(path, data)] = {"sha256": sha256_file(path), "size": st.st_size}
            size += st.st_size
    return dict(sorted(files.items())), size


def tool_version(argv: list) -> str:
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return ""
    return p.stdout.decode(errors="replace").strip().splitlines()[0] if p.stdout.strip() else ""


def build_manifest(directory: str, args: argparse.Namespace, stream_bytes: int, started: float,
                   content: dict | None = None) -> dict:
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
        "content": content,
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
    tls = None
    if args.tls_cert:
        try:
            tls = server_context(args.tls_cert, args.tls_key, args.tls_ca)
        except (OSError, ValueError) as exc:
            state.set(state="failed", reason="cannot load the TLS files %s: %s" % (args.tls_cert, exc))
            server.close()
            return 1
    state.set(state="listening")
    try:
        try:
            conn, _, rest = accept(server, args.token, "DATA", time.time() + args.accept_timeout, tls)
        except TimeoutError:
            refused = REFUSED["last"]
            raise Failed("no donor connected within %d s (garbd could not join, or the donor refused the "
                         "request)%s" % (args.accept_timeout, "; refused: " + refused if refused else "")) from None
        state.set(state="receiving", bytes=len(rest))
        total = receive_data(conn, rest, directory, state)
        state.set(state="finishing", bytes=total)
        content_bytes = None
        try:
            end, kind, words, rest = accept_any(server, args.token, ("CONTENT", "END"), time.time() + args.end_timeout,
                                                tls)
            if kind == "CONTENT":
                state.set(state="receiving")
                content_bytes = receive_content(end, rest, directory, state, total)
                state.set(state="finishing", bytes=total + content_bytes)
                end, words, rest = accept(server, args.token, "END", time.time() + args.end_timeout, tls)
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
        content = None
        if args.content:
            content_rc = words[2] if len(words) > 2 else None
            if content_rc is None:
                raise Failed("the donor's wsrep_sst_studio_backup sends no content repositories (it predates them): "
                             "run `studio-cluster replay` to install the current one")
            if content_rc == "absent":
                raise Failed("the donor has no content directory %s under studio.data_path" % args.content)
            if content_rc != "0" or content_bytes is None:
                raise Failed("the donor's content tar exited %s (1: a file changed while it was read, the content is "
                             "not a snapshot)" % content_rc)
            content = dict(content_manifest(directory, args.content), stream_bytes=content_bytes)
        manifest = build_manifest(directory, args, total, started, content)
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
    p.add_argument("--content", default="", help="the donor's content directory name (repos): expected in the stream")
    p.add_argument("--tls-cert", default="", help="this host's certificate: every connection is TLS")
    p.add_argument("--tls-key", default="")
    p.add_argument("--tls-ca", default="", help="the CA bundle donors' certificates must be signed by")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
