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

The sha256 of a file is taken from the bytes handed to mbstream as they pass (:class:`XbstreamHashes`, in a
thread beside the copy) when the stream gave that file whole and in order and the extracted file has exactly
that size; every other file (and every content file) is read back from disk, several at a time.  The manifest's
``sha256_from`` counts both, ``timings`` says when each step ended (seconds after the receiver started).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import queue
import re
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

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


def write_json(path: str, data: dict, sync: bool = True) -> None:
    """Replace ``path`` atomically (temp file, rename); with ``sync``, the content is on disk first (fsync)."""
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        if sync:
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
        """Update the state file: at once with ``force``, else at most every 0.5 s.  Only the verdicts
        (complete, failed) are fsynced: progress need not survive a crash (the manifest is what counts), and an
        fsync while the copy is being written waits for the disk."""
        self.data.update(fields)
        now = time.time()
        if force or now - self.last >= 0.5:
            self.data["updated"] = now
            write_json(self.path, self.data, sync=self.data.get("state") in ("complete", "failed"))
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
        # "TOKEN/SIZE": a donor script rendered before requests carried the member count takes the rest of
        # the address for its token; the token is what it sends before the slash.
        if len(words) >= 2 and words[0].startswith("STUDIO-BACKUP-") and words[1].split("/", 1)[0] == token:
            kind = words[0][len("STUDIO-BACKUP-"):]
            if kind in kinds:
                return conn, kind, words[2:], rest
        conn.close()


def pipe_into(argv: list, conn: socket.socket, first: bytes, err_path: str, state: State, base: int,
              what: str, tap: "Callable[[bytes], None] | None" = None) -> int:
    """Feed a connection's bytes (``first``, then until EOF) to ``argv``'s stdin (its stderr to ``err_path``),
    and each piece to ``tap`` too when given; returns the byte count, progress going to ``state`` as ``base`` +
    bytes.  Raises Failed naming ``what`` when the connection breaks or the program exits non-zero (with the
    tail of its stderr)."""
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=err)
    assert proc.stdin is not None
    total = 0
    try:
        if first:
            proc.stdin.write(first)
            total += len(first)
            if tap is not None:
                tap(first)
        conn.settimeout(300)
        while True:
            chunk = conn.recv(CHUNK)
            if not chunk:
                break
            proc.stdin.write(chunk)
            total += len(chunk)
            if tap is not None:
                tap(chunk)
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


def receive_data(conn: socket.socket, first: bytes, directory: str, state: State,
                 hashes: "StreamHasher | None" = None) -> int:
    """Pipe the stream into mbstream (and into ``hashes``); returns the byte count.  Raises Failed on a broken
    stream."""
    target = os.path.join(directory, DATA)
    os.makedirs(target, exist_ok=True)
    return pipe_into(["mbstream", "-x", "-C", target], conn, first, os.path.join(directory, "mbstream.log"), state,
                     0, "stream", hashes.feed if hashes is not None else None)


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
            files[rel] = {"sha256": path, "size": st.st_size}  # the path until hashed below
            size += st.st_size
    digests = sha256_files([f["sha256"] for f in files.values() if "sha256" in f])
    for f in files.values():
        if "sha256" in f:
            f["sha256"] = digests[f["sha256"]]
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


HASH_THREADS = max(2, min(4, os.cpu_count() or 1))
"""Files read back and hashed at once (hashlib releases the GIL on large buffers)."""


def sha256_files(paths: list) -> dict:
    """``{path: sha256 hex}`` of every file in ``paths``, read back from disk by :data:`HASH_THREADS` threads.
    Raises OSError when one cannot be read."""
    if len(paths) <= 1:
        return {p: sha256_file(p) for p in paths}
    with ThreadPoolExecutor(max_workers=HASH_THREADS) as pool:
        return dict(zip(paths, pool.map(sha256_file, paths)))


XB_MAGIC = b"XBSTCK01"
XB_HEAD = 14  # magic, flags (1), type (1), path length (4, little-endian)
XB_PAYLOAD_HEAD = 20  # payload length (8), offset (8), checksum (4)


class XbstreamHashes:
    """The sha256 and size of every file of an xbstream, from its bytes as they pass (fed in pieces of any
    size, in order).  The format: chunks of ``XBSTCK01``, flags, type (``P`` payload, ``E`` end of file), the
    path, and for ``P`` the payload's length, offset and CRC, then the payload.

    :meth:`result` gives only files whose payloads came from offset 0 without gap or overlap and then their end
    chunk, once; a file seen again after its end is left out; any other chunk type or a broken header stops the
    parse and leaves every file out.  A file left out is hashed from disk instead (:func:`file_hashes`)."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.payload_left = 0
        self.current: list | None = None  # [hash, bytes so far] of the file whose payload is passing
        self.open: dict = {}
        self.done: dict = {}
        self.bad: set = set()
        self.stopped = ""

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while not self.stopped:
            if self.payload_left:
                if not view:
                    return
                n = min(self.payload_left, len(view))
                if self.current is not None:
                    self.current[0].update(view[:n])
                    self.current[1] += n
                self.payload_left -= n
                view = view[n:]
                continue
            need = XB_HEAD
            if len(self.head) >= XB_HEAD:
                if bytes(self.head[:8]) != XB_MAGIC:
                    self.stopped = "no chunk magic"
                    return
                kind = chr(self.head[9])
                if kind not in "PE":
                    self.stopped = "chunk type %r" % kind
                    return
                plen = struct.unpack_from("<I", self.head, 10)[0]
                if plen > 65536:
                    self.stopped = "path length %d" % plen
                    return
                need = XB_HEAD + plen + (XB_PAYLOAD_HEAD if kind == "P" else 0)
            if len(self.head) < need:
                if not view:
                    return
                take = need - len(self.head)
                self.head += view[:take]
                view = view[take:]
                continue
            self.chunk()

    def chunk(self) -> None:
        """One whole chunk header is in ``self.head``: account for it."""
        kind = chr(self.head[9])
        plen = struct.unpack_from("<I", self.head, 10)[0]
        path = os.path.normpath(bytes(self.head[XB_HEAD:XB_HEAD + plen]).decode("utf-8", "surrogateescape"))
        if kind == "P":
            length, offset = struct.unpack_from("<QQ", self.head, XB_HEAD + plen)
            self.payload_left = length
            self.current = None
            if path in self.done or path in self.bad:
                self.bad.add(path)
            else:
                entry = self.open.setdefault(path, [hashlib.sha256(), 0])
                if offset == entry[1]:
                    self.current = entry
                else:
                    self.bad.add(path)
                    del self.open[path]
        else:
            entry = self.open.pop(path, None)
            if path in self.done or path in self.bad:
                self.bad.add(path)
            elif entry is None:
                self.done[path] = (hashlib.sha256().hexdigest(), 0)  # an empty file: its end chunk alone
            else:
                self.done[path] = (entry[0].hexdigest(), entry[1])
        self.head.clear()

    def result(self) -> dict:
        """``{normalised relative path: (sha256 hex, size)}`` of the files hashed whole; {} after a stop or mid
        chunk."""
        if self.stopped or self.head or self.payload_left:
            return {}
        return {p: v for p, v in self.done.items() if p not in self.bad}


class StreamHasher:
    """:class:`XbstreamHashes` in a thread of its own, fed through a bounded queue (the copy waits when the
    hashing is 64 pieces behind).  :meth:`result` waits for the thread; any error in it leaves every file to be
    hashed from disk."""

    def __init__(self) -> None:
        self.parser = XbstreamHashes()
        self.queue: queue.Queue = queue.Queue(maxsize=64)
        self.error = ""
        self.thread = threading.Thread(target=self.run, name="stream-sha256", daemon=True)
        self.thread.start()

    def feed(self, data: bytes) -> None:
        self.queue.put(data)

    def run(self) -> None:
        while True:
            data = self.queue.get()
            if data is None:
                return
            if not self.error:
                try:
                    self.parser.feed(data)
                except Exception as exc:  # any surprise: every file is hashed from disk
                    self.error = "%s: %s" % (type(exc).__name__, exc)

    def result(self) -> dict:
        self.queue.put(None)
        self.thread.join()
        return {} if self.error else self.parser.result()


def file_hashes(data: str, streamed: dict | None = None) -> tuple[dict, int, int]:
    """``({relative path: {"sha256", "size"}}, total size, files hashed from the stream)`` of every file under
    ``data``.  A file in ``streamed`` (:meth:`XbstreamHashes.result`) whose size on disk is the size that passed
    keeps the stream's sha256; the others are read back (:func:`sha256_files`)."""
    streamed = streamed or {}
    files, size, todo, from_stream = {}, 0, [], 0
    for root, _dirs, names in os.walk(data):
        for name in sorted(names):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, data)
            st = os.stat(path)
            size += st.st_size
            known = streamed.get(os.path.normpath(rel))
            if known is not None and known[1] == st.st_size:
                files[rel] = {"sha256": known[0], "size": st.st_size}
                from_stream += 1
            else:
                files[rel] = {"sha256": "", "size": st.st_size}
                todo.append(path)
    for path, digest in sha256_files(todo).items():
        files[os.path.relpath(path, data)]["sha256"] = digest
    return dict(sorted(files.items())), size, from_stream


TOOLS: dict = {}
"""The versions of mbstream and garbd on this host, read once (:func:`tool_versions`)."""


def tool_versions() -> None:
    """Fill :data:`TOOLS` with ``mbstream --version`` and ``garbd --version``'s first lines."""
    TOOLS.setdefault("mbstream", tool_version(["mbstream", "--version"]))
    TOOLS.setdefault("garbd", tool_version(["garbd", "--version"]))


def tool_version(argv: list) -> str:
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return ""
    return p.stdout.decode(errors="replace").strip().splitlines()[0] if p.stdout.strip() else ""


def build_manifest(directory: str, args: argparse.Namespace, stream_bytes: int, started: float,
                   content: dict | None = None, streamed: dict | None = None, timings: dict | None = None) -> dict:
    data = os.path.join(directory, DATA)
    if first_file(data, CHECKPOINTS) is None:
        raise Failed("the stream lacks mariabackup's checkpoints file: the backup did not finish on the donor")
    galera = parse_galera_info(read_text(first_file(data, GALERA_INFO)))
    if not galera:
        raise Failed("the stream lacks a readable Galera position (mariabackup --galera-info)")
    info = parse_info(read_text(first_file(data, INFO)))
    files, size, from_stream = file_hashes(data, streamed)
    timings = dict(timings or {}, hashed=round(time.time() - started, 3))
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
        "sha256_from": {"stream": from_stream, "disk": len(files) - from_stream},
        "timings": timings,
        "tools": {
            "mariabackup": info.get("tool_version", ""),
            "server": info.get("server_version", ""),
            "mbstream": TOOLS.get("mbstream") or tool_version(["mbstream", "--version"]),
            "garbd": TOOLS.get("garbd") or tool_version(["garbd", "--version"]),
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
    versions = threading.Thread(target=tool_versions, name="tool-versions", daemon=True)
    versions.start()  # two subprocesses, read while the donor streams
    try:
        try:
            conn, _, rest = accept(server, args.token, "DATA", time.time() + args.accept_timeout, tls)
        except TimeoutError:
            refused = REFUSED["last"]
            raise Failed("no donor connected within %d s (garbd could not join, or the donor refused the "
                         "request)%s" % (args.accept_timeout, "; refused: " + refused if refused else "")) from None
        timings = {"connected": round(time.time() - started, 3)}
        state.set(state="receiving", bytes=len(rest))
        hasher = StreamHasher()
        try:
            total = receive_data(conn, rest, directory, state, hasher)
        finally:
            streamed = hasher.result()
        timings["stream_end"] = round(time.time() - started, 3)
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
        timings["end_marker"] = round(time.time() - started, 3)
        versions.join()
        manifest = build_manifest(directory, args, total, started, content, streamed, timings)
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
