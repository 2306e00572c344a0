"""One probe per node for the facts several checks read, run once and shared by them.

The software, names, redis, datadir and galera-state checks each used to start a python3 probe of their own on
every node: five interpreters, their imports and five SSH channels per node, which on a small machine cost more
than the work itself.  :data:`SESSION_PY` gathers all of them in one python3 process (each part in a thread, so one
part's subprocess or socket wait overlaps the others) and prints one JSON line per part as soon as it is done
(``{"part": name, "value": result}``), then ``{"done": [names]}``: a check waits for its own part only (the Sentinel
part waits up to ``redis.failover_wait_s`` for a failover under way).

The same process is the node's whole check session (:class:`NodeSession`): when the run checks the network it
first binds the listener on the node's free required ports (and says so), and it stays up for requests over its
stdin: the port probe to the peers once every node listens, stopping the listener, its clock for the clock check.
One interpreter per node instead of three (facts, listener, port probe), and no process for ``date``; it ends
when its stdin closes (the runner's :meth:`~wizard.checks.base.CheckContext.close`, or the SSH channel gone).

:func:`node_fact` is what a check calls: the first check of a node to ask runs the probe for every part whose
check the run has planned on that node (``ctx.shared["planned"]``, set by the runner; without it, only the part
asked for), the others wait for that same probe.  A part that raised on the node comes back as
``{"crashed": "Type: message"}`` and :func:`node_fact` raises :class:`FactError` for it (the runner reports it as
a crashed check); a probe that failed as a whole raises its :class:`~wizard.remote.RemoteError` in every check
that reads it.

Parts and their results (each the JSON object the check's own probe used to print):

* ``software`` ``[role, mariadbd, provider]``: python version, ``mariadbd --version`` (data nodes), wsrep support,
  the Galera library and its version, the SST tools' paths; ``garbd --version`` on the Arbiter.
* ``resolve`` ``[name, ...]``: name -> sorted IPv4 addresses, or ``"error: ..."``.
* ``redis`` ``[host, port]`` (secret: the password): PING after AUTH, in plain RESP.
* ``sentinel`` ``{"sentinels", "name", "wait"}`` (secret: ``{"password", "sentinel_password"}``): each Sentinel's
  master and quorum, then the master's PING and ROLE; waits up to ``wait`` s for a failover to settle.
* ``datadir`` ``path``: :data:`wizard.datadir.PROBE`'s classification of the data directory.
* ``daemon`` ``[grastate_path or null, proc]``: the grastate file's text ("" when unreadable) and the pids of a
  running ``proc`` daemon, one a line (as :func:`wizard.remote.daemon_pids` lists them).
"""

from __future__ import annotations

import itertools
import json
import textwrap
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from wizard import datadir as datadir_probe
from wizard.agent.rootcmd import RootScript
from wizard.checks import version_cache
from wizard.checks.base import CLUSTER, CheckContext
from wizard.crafter.sync_trust import FIND_REPO, crafter_pair
from wizard.profile import Node, Role
from wizard.remote import RemoteError, Stream

SOFTWARE = r'''
def probe_software(arg, secret):
    role, mariadbd, provider = arg[:3]
    known = arg[3] if len(arg) > 3 else {}  # binary path -> [fingerprint, version text]: the controller's cache
    def fingerprint(path, options):
        # the binary's stat; with options, also every option file mariadbd reads (--version says "-log" when
        # they enable a log), following !include and !includedir as it does
        def stat(p):
            st = os.stat(p)
            return [p, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        try:
            key = [stat(path)]
        except OSError:
            return None
        if not options:
            return key
        seen = set()
        def visit(p, depth):
            if p in seen or depth > 10:
                return
            seen.add(p)
            try:
                key.append(stat(p))
                with open(p, "rb") as fh:
                    text = fh.read().decode(errors="replace")
            except OSError:
                key.append([p, None])
                return
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("!includedir"):
                    d = line[len("!includedir"):].strip()
                    try:
                        names = sorted(n for n in os.listdir(d) if n.endswith(".cnf"))
                    except OSError:
                        names = None
                    key.append([d, names])
                    for n in names or ():
                        visit(os.path.join(d, n), depth + 1)
                elif line.startswith("!include"):
                    visit(line[len("!include"):].strip(), depth + 1)
        home = os.environ.get("MARIADB_HOME") or os.environ.get("MYSQL_HOME")
        for p in ["/etc/my.cnf", "/etc/mysql/my.cnf"] + ([os.path.join(home, "my.cnf")] if home else []) + \
                [os.path.expanduser("~/.my.cnf")]:
            visit(p, 0)
        return key
    versions = {}
    def asked(path, options):
        # (path, the cached answer, None, fingerprint) when the fingerprint is the cached one, else
        # (path, None, `path --version` started, fingerprint)
        key = fingerprint(path, options)
        hit = known.get(path)
        if key is not None and hit and hit[0] == key:
            return path, hit[1], None, key
        return path, None, start(path, "--version"), key
    def answer(path, text, proc, key):
        if proc is None:
            return 0, text
        rc, text = finish(proc)
        if rc == 0 and key is not None:
            versions[path] = [key, text]
        return rc, text
    def found(name):
        for d in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
            p = os.path.join(d, name)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return p
        import shutil
        return shutil.which(name)
    def start(*argv):
        import subprocess  # only when a binary is asked: ~5 ms of imports
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
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
            rc, text = answer(*asked(p, False))
            m = re.search(r"(\d+\.\d+(\.\d+)?)", text) if rc == 0 else None
            out["garbd"] = m.group(1) if m else ""
        else:
            out["garbd"] = None  # missing or not executable
        out["versions"] = versions
        return out
    # a data node: `mariadbd --version` (its output depends on the server's config, e.g. "-log": asked, not
    # read from the binary) runs while the files are searched; the SST tools only need to be there, executable
    server = asked(mariadbd, True) if os.access(mariadbd, os.X_OK) else None
    import mmap
    def mapped(path):
        with open(path, "rb") as fh:
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
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
            out["wsrep"] = mm.find(b"wsrep_provider_options") != -1  # ~20x faster than `--verbose --help`
    out["provider"] = os.path.isfile(provider)
    if out["provider"]:
        with mapped(provider) as mm:
            out["provider_version"] = galera_version(mm)
    for tool in ("mariabackup", "socat", "rsync"):
        out[tool] = found(tool)  # its path, or None: missing or not executable
    if server is None:
        out["mariadbd"] = None
    else:
        rc, text = answer(*server)
        out["mariadbd"] = text if rc == 0 else None
    out["versions"] = versions
    return out
'''

RESOLVE = r'''
def probe_resolve(names, secret):
    out = {}
    for name in names:
        try:
            out[name] = sorted({ai[4][0] for ai in socket.getaddrinfo(name, None, socket.AF_INET)})
        except socket.gaierror as e:
            out[name] = "error: " + str(e)
    return out
'''

# Speaks just enough RESP to AUTH and PING with the node's bare python3 (no redis-py there yet).
REDIS = r'''
def probe_redis(arg, password):
    host, port = arg[0], int(arg[1]); password = password or ""
    def cmd(*parts):
        out = b"*%d\r\n" % len(parts)
        for p in parts:
            b = p.encode(); out += b"$%d\r\n%s\r\n" % (len(b), b)
        return out
    try:
        s = socket.create_connection((host, port), timeout=3); s.settimeout(3)
        try:
            payload = (cmd("AUTH", password) if password else b"") + cmd("PING")
            s.sendall(payload); data = b""
            want = 2 if password else 1
            while data.count(b"\r\n") < want:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        lines = data.decode(errors="replace").split("\r\n")
        return {"ok": lines[-2] == "+PONG" if len(lines) >= 2 else False, "reply": lines[:want]}
    except socket.timeout:
        return {"ok": False, "error": "timeout"}
    except OSError as e:
        return {"ok": False, "error": e.strerror or str(e)}
'''

# Asks each Sentinel for the master and for its quorum, then AUTHs and asks the master its ROLE, in plain RESP.
SENTINEL = r'''
def probe_sentinel(args, secrets):
    secrets = secrets or {}
    def enc(*parts):
        out = b"*%d\r\n" % len(parts)
        for p in parts:
            b = str(p).encode(); out += b"$%d\r\n%s\r\n" % (len(b), b)
        return out
    def read(f):
        line = f.readline()
        if not line.endswith(b"\r\n"):
            raise OSError("connection closed")
        t, rest = line[:1], line[1:-2].decode(errors="replace")
        if t == b"+": return rest
        if t == b"-": return {"err": rest}
        if t == b":": return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else f.read(n + 2)[:-2].decode(errors="replace")
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [read(f) for _ in range(n)]
        raise OSError("not RESP: %r" % line[:40])
    def session(host, port, password, *commands):
        s = socket.create_connection((host, int(port)), timeout=2); s.settimeout(2)
        try:
            cmds = ([("AUTH", password)] if password else []) + list(commands)
            s.sendall(b"".join(enc(*c) for c in cmds)); f = s.makefile("rb")
            replies = [read(f) for _ in cmds]
        finally:
            s.close()
        if password and isinstance(replies[0], dict):
            raise OSError(replies[0]["err"])  # AUTH refused
        return replies[1:] if password else replies
    def error(e):
        return "timeout" if isinstance(e, socket.timeout) else (e.strerror or str(e))
    def probe():
        out = {"sentinels": {}, "master": None}
        for host, port in args["sentinels"]:
            where = "%s:%s" % (host, port)
            try:
                addr, quorum = session(host, port, secrets.get("sentinel_password"),
                                       ("SENTINEL", "get-master-addr-by-name", args["name"]),
                                       ("SENTINEL", "ckquorum", args["name"]))
                out["sentinels"][where] = {"master": addr, "quorum": quorum}
            except (OSError, ValueError) as e:
                out["sentinels"][where] = {"error": error(e)}
        masters = [v["master"] for v in out["sentinels"].values() if isinstance(v.get("master"), list)]
        if masters:
            host, port = max(masters, key=masters.count)
            try:
                ping, role = session(host, port, secrets.get("password"), ("PING",), ("ROLE",))
                out["master"] = {"address": "%s:%s" % (host, port), "ping": ping, "role": role}
            except (OSError, ValueError) as e:
                out["master"] = {"address": "%s:%s" % (host, port), "error": error(e)}
        return out
    def settled(out):
        if "WRONGPASS" in str(out) or "NOAUTH" in str(out):
            return True  # waiting will not help
        answers = [v["master"] for v in out["sentinels"].values() if isinstance(v.get("master"), list)]
        if len(answers) <= len(args["sentinels"]) // 2:
            return True  # no majority of Sentinels knows a master: nobody will fail over
        m = out["master"] or {}
        return (len({tuple(a) for a in answers}) == 1 and isinstance(m.get("role"), list)
                and m["role"][:1] == ["master"])
    # a master that just died, or Sentinels still disagreeing, is a failover under way: give it its time
    start = time.monotonic()
    out = probe()
    while not settled(out) and time.monotonic() - start < float(args.get("wait", 0)):
        time.sleep(0.25)
        out = probe()
    out["waited"] = round(time.monotonic() - start, 1)
    return out
'''

# The pids as wizard.remote.PIDS_TEXT lists them (pgrep -x, then skip short-lived runs of the same binary and
# processes gone or zombies), read from /proc without a process per pid.
DAEMON = r'''
def probe_daemon(arg, secret):
    grastate, proc = arg
    text = ""
    if grastate:
        try:
            with open(grastate, errors="replace") as fh:
                text = fh.read()
        except OSError:
            pass
    pids = []
    for p in sorted((int(d) for d in os.listdir("/proc") if d.isdigit())):
        try:
            with open("/proc/%d/comm" % p, "rb") as fh:
                comm = fh.read().rstrip(b"\n").decode(errors="replace")
            if comm != proc[:15]:
                continue
            with open("/proc/%d/cmdline" % p, "rb") as fh:
                c = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if c and not re.search(r"--(version|help|wsrep-recover|donor)", c):
            pids.append(str(p))
    return {"grastate": text, "pids": "\n".join(pids)}
'''



def _datadir_part() -> str:
    """wizard.datadir's probe (the one the data directory's initialisation re-checks with), as a part: its argv[1]
    becomes the argument and its printed JSON the return value.  Raises RuntimeError if its text no longer has
    that shape (then this must follow it)."""
    text = datadir_probe.PROBE
    if text.count("d = sys.argv[1]\n") != 1 or text.count("print(json.dumps(out))") != 1:
        raise RuntimeError("wizard.datadir.PROBE changed shape: update wizard.checks.facts._datadir_part")
    body = text.replace("d = sys.argv[1]\n", "d = arg\n").replace("print(json.dumps(out))", "return out")
    return "\ndef probe_datadir(arg, secret):\n" + textwrap.indent(body.strip("\n"), "    ") + "\n"


DATADIR = _datadir_part()

def _script_part(name: str, text: str, arg_line: str, result: str, owner: str) -> str:
    """A probe script of its own, as a part: its ``arg_line`` (which reads sys.argv) becomes ``<var> = arg`` and its
    last line (which prints `result`) the return value.  Raises RuntimeError if its text no longer has that shape
    (then this must follow it)."""
    last = text.strip("\n").splitlines()[-1]
    if text.count(arg_line + "\n") != 1 or last != f"print({result})":
        raise RuntimeError(f"{owner} changed shape: update wizard.checks.facts._script_part")
    var = arg_line.split("=", 1)[0].strip()
    body = text.strip("\n")[: -len(last)].replace(arg_line + "\n", f"{var} = arg\n") + f"return {result}"
    return f"\ndef probe_{name}(arg, secret):\n" + textwrap.indent(body, "    ") + "\n"


# wizard.crafter.sync_trust's search for the content repository, for crafter-sync's `git ls-remote`
REPO = _script_part("repo", FIND_REPO, 'root = os.path.join(sys.argv[1], "repos")', "found",
                    "wizard.crafter.sync_trust.FIND_REPO")

# A command's output without a shell, a pipe or the subprocess module (its imports cost ~5 ms): for the parts
# that stand in for the services check's and the disk check's shell probes.
COMMAND = r"""
def command(argv, timeout):
    # -> stdout (bytes); stdin and stderr /dev/null; raises OSError (it could not start), TimeoutError
    import select
    r, w = os.pipe()
    try:
        null = os.open(os.devnull, os.O_RDWR)
        try:
            pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=[
                (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_DUP2, null, 2),
                (os.POSIX_SPAWN_CLOSE, r)])
        finally:
            os.close(null); os.close(w)
        out, end = b"", time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, 9); os.waitpid(pid, 0)
                raise TimeoutError("%s did not answer within %s s" % (argv[0], timeout))
            chunk = os.read(r, 65536)
            if not chunk:
                break
            out += chunk
        os.waitpid(pid, 0)
        return out
    finally:
        os.close(r)
"""

# What wizard.checks.services.PROBE prints (its `$(...)` without trailing newlines; a command that is missing or
# fails says nothing), read and asked without a shell.
SERVICES = r"""
def probe_services(arg, secret):
    unit, socket_unit = arg
    def said(*argv):
        try:
            return command(list(argv), 15).decode(errors="replace").rstrip("\n")
        except FileNotFoundError:
            return ""
    booted = os.path.isdir("/run/systemd/system")
    try:
        with open("/proc/1/comm", "rb") as fh:
            pid1 = fh.read().decode(errors="replace").rstrip("\n")
    except OSError:
        pid1 = ""
    lines = ["booted=systemd" if booted else "booted=none", "pid1=" + pid1]
    if booted:
        lines.append("unit=" + said("systemctl", "show", "-p", "LoadState", "--value", unit))
        lines.append("socket=" + said("systemctl", "is-enabled", socket_unit) + "/"
                     + said("systemctl", "is-active", socket_unit))
    return "\n".join(lines) + "\n"
"""

# What wizard.checks.disk.DF prints: df's last line for the nearest existing ancestor of the data directory.
DISK = r"""
def probe_disk(arg, secret):
    d = arg
    while not os.path.exists(d):
        d = os.path.dirname(d) or "."
    lines = command(["df", "-Pk", d], 15).decode(errors="replace").splitlines(True)
    return lines[-1] if lines else ""
"""

PARTS = {"software": SOFTWARE, "resolve": RESOLVE, "redis": REDIS, "sentinel": SENTINEL, "daemon": DAEMON,
         "datadir": DATADIR, "repo": REPO, "services": SERVICES, "disk": DISK}
CHECK_OF = {"software": "software", "resolve": "names", "redis": "redis", "sentinel": "redis",
            "daemon": "galera-state", "datadir": "datadir", "repo": "crafter-sync", "services": "services",
            "disk": "disk"}
"""The check each part serves: a part runs when its check is planned on the node."""

# The session's first line marks its command line: a run whose front end died and left it behind holds the
# cluster's ports (its listener) until its stdin closes or LISTEN_SECONDS pass; the node agent clears such
# processes before mariadbd needs the ports (wizard.agent.runtime.clear_check_listeners).
LISTENER_MARK = "# studio-cluster check listener"

BIND = r"""
def bind_ports(addr, ports):
    import errno
    socks, bound, busy = [], [], []
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            try:
                s.bind((addr, port))
            except OSError as e:
                if e.errno != errno.EADDRNOTAVAIL:  # the node knows itself by another address (NAT): any
                    raise
                s.bind(("0.0.0.0", port))
            s.listen(16); socks.append(s); bound.append(port)
        except OSError:
            s.close(); busy.append(port)
    return socks, bound, busy
"""
"""Bind the check's ports (the session's listener and the standalone one, wizard.checks.network.LISTENER):
``(listening sockets, ports bound, ports busy)``."""

LISTEN = BIND + r"""
def listen(addr, ports, duration):
    import select
    socks, bound, busy = bind_ports(addr, ports)
    wake_r, wake_w = os.pipe()
    def serve():
        end = time.time() + duration
        try:
            while time.time() < end:
                r, _, _ = select.select(socks + [wake_r], [], [], max(0.0, end - time.time()))
                if wake_r in r:
                    break
                for s in r:
                    try:
                        c, _ = s.accept(); c.close()
                    except OSError:
                        pass
        finally:
            for s in socks:
                s.close()
    t = threading.Thread(target=serve, daemon=True)
    if socks:
        t.start()
    def stop():
        if socks:
            os.write(wake_w, b"x"); t.join()
        return True
    return {"pid": os.getpid() if socks else None, "bound": bound, "busy": busy}, stop
"""

PORTS = r"""
def probe_ports(timeout, targets):
    out = {}
    def one(t):
        host, port = t.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(timeout)
        try:
            s.connect((host, int(port))); out[t] = "open"
        except socket.timeout:
            out[t] = "timeout"
        except ConnectionRefusedError:
            out[t] = "refused"
        except OSError as e:
            out[t] = "error: " + (e.strerror or str(e))
        finally:
            s.close()
    ts = [threading.Thread(target=one, args=(t,)) for t in targets]
    [t.start() for t in ts]; [t.join() for t in ts]
    return out
"""

SESSION = (LISTENER_MARK + "\nimport json, os, re, socket, sys, threading, time\n"
           + COMMAND + "".join(PARTS.values()) + LISTEN + PORTS + r'''
request = json.loads(sys.argv[1]); secrets = json.loads(sys.stdin.readline() or "{}")
lock = threading.Lock()
def say(obj):
    line = json.dumps(obj) + "\n"
    with lock:
        sys.stdout.write(line); sys.stdout.flush()
stop = lambda: True
if request.get("listen"):
    addr, ports, duration = request["listen"]
    info, stop = listen(addr, ports, float(duration))
    say({"listener": info})
def run(name):
    try:
        value = globals()["probe_" + name](request["facts"][name], secrets.get(name))
    except Exception as e:
        value = {"crashed": "%s: %s" % (type(e).__name__, e)}
    say({"part": name, "value": value})  # each part as soon as it is in: its check need not wait for the others
def gather():
    threads = [threading.Thread(target=run, args=(name,)) for name in request.get("facts", {})]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    say({"done": sorted(request.get("facts", {}))})
    if not request.get("serve"):
        os._exit(0)
gathering = threading.Thread(target=gather, daemon=True)
gathering.start()
def answer(req):
    try:
        if req["do"] == "ports":
            result = probe_ports(*req["arg"])
        elif req["do"] == "unlisten":
            result = stop()
        else:
            raise ValueError("no request named %r" % req["do"])
        say({"id": req["id"], "result": result})
    except Exception as e:
        say({"id": req["id"], "crashed": "%s: %s" % (type(e).__name__, e)})
while True:
    line = sys.stdin.readline()
    if not line:
        break  # the controller is done (or gone): so is the listener
    if not request.get("serve"):
        continue  # takes no requests: prints the facts and ends
    req = json.loads(line)
    if req["do"] == "time":
        say({"id": req["id"], "result": time.time()})
    else:
        threading.Thread(target=answer, args=(req,), daemon=True).start()
if not request.get("serve"):
    gathering.join()
sys.stdout.flush()
os._exit(0)
''')
SESSION_PY = RootScript("check-node-session", SESSION, kind="py")


class FactError(Exception):
    """A part of the node facts probe raised on the node."""


def _part(ctx: CheckContext, node: Node, part: str) -> tuple[Any, Any]:
    """(argument, secret) of `part` on `node`, from the profile."""
    p, s = ctx.profile, ctx.secrets
    if part == "software":
        role = "arbiter" if node.role is Role.ARBITER else "studio"
        return [role, str(p.services.mariadbd), str(p.database.provider), version_cache.known(node.address)], None
    if part == "resolve":
        return list(resolve_targets(ctx, node)), None
    if part == "redis":
        return [p.redis.host, p.redis.port], s.redis_password or ""
    if part == "sentinel":
        r = p.redis
        return ({"sentinels": [list(a) for a in r.sentinel_addresses], "name": r.master_name,
                 "wait": r.failover_wait_s},
                {"password": s.redis_password, "sentinel_password": s.sentinel_password})
    if part == "datadir":
        return str(p.database.data_dir), None
    if part == "repo":
        return str(p.studio.data_path), None
    if part == "services":
        from wizard.checks.services import probed_units

        return list(probed_units(ctx, node)), None
    if part == "disk":
        return str(p.database.data_dir), None
    if part == "daemon":
        if node.role is Role.ARBITER:
            return [None, "garbd"], None
        return [str(p.database.data_dir / "grastate.dat"), "mariadbd"], None
    raise ValueError(f"no node fact named {part!r}")


def resolve_targets(ctx: CheckContext, node: Node) -> dict[str, Node]:
    """The names `node` must resolve: each peer's name, and its address when that is a name; -> the peer."""
    from wizard.profile import is_ip

    wanted: dict[str, Node] = {}
    for peer in ctx.profile.peers(node):
        wanted[peer.name] = peer
        if not is_ip(peer.address):
            wanted[peer.address] = peer
    return wanted


def _redis_part(ctx: CheckContext) -> str:
    return "sentinel" if ctx.profile.redis.uses_sentinel else "redis"


def _wanted(ctx: CheckContext, node: Node, part: str | None) -> list[str]:
    """The parts to gather on `node`: those of the checks the run has planned there (always `part`)."""
    planned: set[tuple[str, str]] | None = ctx.shared.get("planned")
    if planned is None:
        return [part] if part else []
    names = [n for n in ("services", "software", "disk", "resolve", _redis_part(ctx), "daemon", "datadir")
             if (CHECK_OF[n], node.name) in planned]
    if ("crafter-sync", CLUSTER) in planned and node.name in {n.name for n in crafter_pair(ctx.profile)}:
        names.append("repo")
    return names if part is None or part in names else [*names, part]


class SessionEnded(RemoteError):
    """The node's session ended before it answered (its own error, if any, is this error's message)."""


class NodeSession:
    """One python3 process on a node for a whole check run (:data:`SESSION_PY`): the facts (each part in a thread),
    and, when the run checks the network from this node, the listener on its free required ports first, then
    requests over its stdin (``ports``: probe the peers; ``unlisten``; ``time``: its clock) until its stdin closes.
    A reader thread takes its lines; requests and the facts are futures."""

    def __init__(self, ctx: CheckContext, node: Node, parts: list[str], listen: list[Any] | None,
                 serve: bool) -> None:
        self.node = node
        self.parts = parts
        self.serves = serve
        self.facts: Future[dict[str, Any]] = Future()  # every part's value, once all are in
        self._facts: dict[str, Any] = {}
        self._parts: dict[str, Future[Any]] = {part: Future() for part in parts}
        self.listener: Future[dict[str, Any] | None] = Future()
        self._replies: dict[int, Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._ended: RemoteError | None = None
        request: dict[str, Any] = {"facts": {}, "listen": listen, "serve": serve}
        secrets: dict[str, Any] = {}
        for part in parts:
            request["facts"][part], secret = _part(ctx, node, part)
            if secret is not None:
                secrets[part] = secret
        self.timeout = 30 + (ctx.profile.redis.failover_wait_s if "sentinel" in parts else 0)
        self.what = f"probe on {node.name}"
        if listen is None:
            self.listener.set_result(None)
        self.stream: Stream = ctx.remote[node.name].stream(SESSION_PY(json.dumps(request)),
                                                           stdin=json.dumps(secrets) + "\n", timeout=30,
                                                           what=self.what)
        self._reader = threading.Thread(target=self._read, name=f"session-{node.name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        error: RemoteError | None = None
        try:
            while True:
                line = self.stream.readline(timeout=24 * 3600)
                if line is None:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(msg, dict):
                    continue
                if "listener" in msg:
                    self.listener.set_result(msg["listener"])
                elif "part" in msg and msg["part"] in self._parts:
                    value = msg.get("value")
                    if msg["part"] == "software" and isinstance(value, dict) and isinstance(value.get("versions"),
                                                                                             dict):
                        version_cache.remember(self.node.address, value.pop("versions"))
                    self._facts[msg["part"]] = value
                    self._parts[msg["part"]].set_result(value)
                elif "done" in msg:
                    self.facts.set_result(dict(self._facts))
                elif "id" in msg:
                    with self._lock:
                        reply = self._replies.pop(msg["id"], None)
                    if reply is not None:
                        reply.set_result(msg)
        except Exception as exc:  # the channel broke
            error = exc if isinstance(exc, RemoteError) else RemoteError(self.node.name, f"{self.what}: {exc}")
        try:
            self.stream.close(check=True)
        except RemoteError as exc:
            error = error or exc
        ended = SessionEnded(self.node.name, error.message if error else f"{self.what} ended without an answer",
                             error.hint if error else "see the run log for the failing command",
                             command=error.command if error else "", exit_code=error.exit_code if error else None,
                             stderr=error.stderr if error else "")
        with self._lock:
            self._ended = ended
            pending: list[Future[Any]] = [*self._replies.values(), *self._parts.values(), self.facts, self.listener]
            self._replies.clear()
        for fut in pending:
            if not fut.done():
                fut.set_exception(ended)

    def _wait(self, fut: Future[Any], timeout: float, what: str) -> Any:
        try:
            return fut.result(timeout)
        except FutureTimeout:
            raise RemoteError(self.node.name, f"{what} timed out after {timeout:.0f}s",
                              f"{self.node.name} may be overloaded or hung") from None

    def result(self) -> dict[str, Any]:
        """The facts (raises RemoteError: the probe failed or timed out)."""
        facts: dict[str, Any] = self._wait(self.facts, self.timeout, self.what)
        return facts

    def part(self, name: str) -> Any:
        """One part's value, as soon as it is in (raises RemoteError: the probe failed or timed out)."""
        return self._wait(self._parts[name], self.timeout, self.what)

    def listening(self, timeout: float = 30) -> dict[str, Any] | None:
        """The listener's report: {"pid", "bound", "busy"}; None when this session has none."""
        info: dict[str, Any] | None = self._wait(self.listener, timeout, f"the listener on {self.node.name}")
        return info

    def ask(self, do: str, arg: Any = None, timeout: float = 30) -> Any:
        """A request's result.  Raises SessionEnded (the session is gone), RemoteError (no answer in time),
        FactError (the request raised on the node)."""
        if not self.serves:
            raise SessionEnded(self.node.name, f"{self.what} takes no requests")
        fut: Future[dict[str, Any]] = Future()
        with self._lock:
            if self._ended is not None:
                raise self._ended
            n = next(self._ids)
            self._replies[n] = fut
        try:
            self.stream.send(json.dumps({"id": n, "do": do, "arg": arg}))
        except RemoteError as exc:
            with self._lock:
                self._replies.pop(n, None)
            raise SessionEnded(exc.node, exc.message, exc.hint) from None
        msg: dict[str, Any] = self._wait(fut, timeout, f"{do} on {self.node.name}")
        if "crashed" in msg:
            raise FactError(f"{do} on {self.node.name} crashed: {msg['crashed']}")
        return msg.get("result")

    def close(self, timeout: float = 10) -> None:
        """Close its stdin (the process ends, and its listener) and wait for it to end."""
        self.stream.end_input()
        self._reader.join(timeout)


def node_session(ctx: CheckContext, node: Node, part: str | None = None) -> NodeSession:
    """The node's session for this run, started by the first caller: the facts of every planned part (and
    `part`), the listener when the run checks the network from it, serving requests when the run checks the
    network or the clocks (closed by :meth:`CheckContext.close`).  Raises RemoteError."""
    key = f"session:{node.name}"
    mine: Future[NodeSession] = Future()
    shared: Future[NodeSession] = ctx.shared.setdefault(key, mine)  # atomic: one session per node
    if shared is mine:
        try:
            planned: set[tuple[str, str]] = ctx.shared.get("planned") or set()
            listen: list[Any] | None = None
            if ("network", node.name) in planned:
                from wizard.checks.network import LISTEN_SECONDS, listen_ports
                from wizard.profile import is_ip

                # On the node's own address, not the wildcard: a server already bound to 127.0.0.1 only (what
                # Debian's standalone MariaDB does) must not make the port look closed to the peers.
                bind = node.address if is_ip(node.address) and ":" not in node.address else "0.0.0.0"  # noqa: S104
                listen = [bind, listen_ports(ctx.profile, node), LISTEN_SECONDS]
            serve = listen is not None or ("clock", CLUSTER) in planned
            session = NodeSession(ctx, node, _wanted(ctx, node, part), listen, serve)
            if serve:
                ctx.on_close(session.close)
            mine.set_result(session)
        except BaseException as exc:
            mine.set_exception(exc)
    return shared.result()


def serving_session(ctx: CheckContext, node: Node) -> NodeSession | None:
    """The node's session when it takes requests in this run (started now if it is not yet), else None (also when
    it could not start)."""
    planned: set[tuple[str, str]] = ctx.shared.get("planned") or set()
    if ("network", node.name) not in planned and ("clock", CLUSTER) not in planned:
        return None
    try:
        session = node_session(ctx, node)
    except RemoteError:
        return None
    return session if session.serves else None


def node_fact(ctx: CheckContext, node: Node, part: str) -> Any:
    """`part`'s result on `node` (see the module's docstring), from the one session the node's checks share.
    Raises RemoteError (the probe failed), FactError (the part raised on the node)."""
    session = node_session(ctx, node, part)
    value = session.part(part) if part in session.parts else _gather(ctx, node, [part])[part]
    if isinstance(value, dict) and set(value) == {"crashed"}:
        raise FactError(f"the {part} probe on {node.name} crashed: {value['crashed']}")
    return value


def node_fact_or(ctx: CheckContext, node: Node, part: str, fallback: Callable[[], Any]) -> Any:
    """`part`'s result from the node's check session, else (the session failed, or the part raised there) what
    `fallback` gives: the check's own probe of the same thing."""
    try:
        return node_fact(ctx, node, part)
    except (RemoteError, FactError):
        return fallback()


def _gather(ctx: CheckContext, node: Node, parts: list[str]) -> dict[str, Any]:
    """`parts` in a session of their own (a part no planned check asked for: a direct call of a check)."""
    return NodeSession(ctx, node, parts, None, serve=False).result()
