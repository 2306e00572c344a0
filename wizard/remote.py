"""Every remote action goes through here: SSH connections, host-key policy, quoting, timeouts, run log.

Why one module: quoting, host-key verification and redaction are security properties, and they only
hold if there is exactly one road to a remote shell.  Commands are given as argv lists and quoted
with :func:`shlex.quote`; a command that needs a pipeline is built with :func:`sh` from quoted parts.

Host keys are verified against the node's `known_hosts` file with paramiko's RejectPolicy (Fabric's
default is to auto-add, which we undo): an unknown or changed key is an error the person must act on.
"""

from __future__ import annotations

import json
import select
import shlex
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection

from wizard.profile import Node, Profile
from wizard.secrets import REDACTOR


def q(value: object) -> str:
    """Quote one value for a POSIX shell."""
    return shlex.quote(str(value))


def sh(*argv: object) -> str:
    """Join argv into one shell command line, every part quoted."""
    return " ".join(q(a) for a in argv)


MAX_CHANNELS = 8  # concurrent commands per node: below OpenSSH's default MaxSessions of 10


def daemon_pids(proc: str) -> str:
    """Shell: the pids of a running `proc` daemon, one a line.  Skips short-lived invocations of the same
    binary (`mariadbd --version` from a check, `--wsrep-recover` from an agent), which pgrep alone would
    count as a running server, and processes gone (or zombies) by the time their cmdline is read."""
    return (f"for p in $(pgrep -x {q(proc)}); do "
            "c=$(tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null) || continue; [ -n \"$c\" ] || continue; "
            "echo \"$c\" | grep -qE -- '--(version|help|wsrep-recover)' || echo $p; done")


class RemoteError(Exception):
    """A remote step failed.  `hint` is the one line a person acts on."""

    def __init__(self, node: str, message: str, hint: str = "", *, command: str = "", exit_code: int | None = None,
                 stderr: str = "") -> None:
        self.node = node
        self.message = REDACTOR(message)
        self.hint = hint
        self.command = REDACTOR(command)
        self.exit_code = exit_code
        self.stderr = REDACTOR(stderr)
        super().__init__(f"{node}: {self.message}" + (f" ({hint})" if hint else ""))


class UnreachableError(RemoteError):
    pass


class HostKeyError(RemoteError):
    pass


class AuthError(RemoteError):
    pass


@dataclass(frozen=True)
class Result:
    node: str
    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class RunLog:
    """Every remote command, redacted, as JSON lines in a file and to any listeners (the TUI log pane)."""

    path: Path | None = None
    listeners: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, **entry: Any) -> None:
        entry = {k: REDACTOR(v) if isinstance(v, str) else v for k, v in entry.items()}
        entry.setdefault("ts", round(time.time(), 3))
        line = json.dumps(entry)
        with self._lock:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a") as fh:
                    fh.write(line + "\n")
        for listener in list(self.listeners):
            listener(entry)


def _tail(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]


class NodeConnection:
    """One node's SSH connection: opened lazily once, then shared by threads (paramiko channels are)."""

    def __init__(self, node: Node, runlog: RunLog | None = None) -> None:
        self.node = node
        self.runlog = runlog
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        # sshd allows MaxSessions (default 10) channels per connection; past that, opening one fails
        self._slots = threading.BoundedSemaphore(MAX_CHANNELS)

    # -- connection ---------------------------------------------------------------------------
    def _make(self) -> Connection:
        ssh = self.node.ssh
        config = Config(overrides={"load_ssh_configs": False, "run": {"hide": True, "warn": True}})
        connect_kwargs: dict[str, Any] = {
            "look_for_keys": ssh.key_file is None,
            "allow_agent": ssh.key_file is None,
            "banner_timeout": ssh.connect_timeout,
            "auth_timeout": ssh.connect_timeout,
        }
        if ssh.key_file is not None:
            connect_kwargs["key_filename"] = str(ssh.key_file)
        conn = Connection(
            self.node.address,
            user=ssh.user,
            port=ssh.port,
            config=config,
            connect_timeout=max(1, int(ssh.connect_timeout)),
            connect_kwargs=connect_kwargs,
        )
        client: paramiko.SSHClient = conn.client
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        known = Path(self._known_hosts_name())
        if known.is_file():
            client.load_host_keys(str(known))
        return conn

    def _known_hosts_name(self) -> str:
        return str(self.node.ssh.known_hosts or Path("~/.ssh/known_hosts").expanduser())

    def open(self) -> Connection:
        with self._lock:
            if self._conn is not None and self._conn.is_connected:
                return self._conn
            conn = self._make()
            name, addr, port = self.node.name, self.node.address, self.node.ssh.port
            try:
                conn.open()
            except paramiko.BadHostKeyException as exc:
                raise HostKeyError(
                    name, f"host key of {addr} does not match known_hosts ({exc.key.get_name()})",
                    f"the host was reinstalled or someone is in the middle: verify its key, then "
                    f"ssh-keygen -R {addr} -f {self._known_hosts_name()} and add the new key",
                ) from None
            except paramiko.SSHException as exc:
                text = str(exc)
                if "not found in known_hosts" in text:
                    raise HostKeyError(
                        name, f"host key of {addr} is not in {self._known_hosts_name()}",
                        f"verify the key, then add it: ssh-keyscan -p {port} {addr} >> {self._known_hosts_name()}",
                    ) from None
                if isinstance(exc, paramiko.AuthenticationException) or "Authentication" in text:
                    raise AuthError(
                        name, f"{self.node.ssh.user}@{addr} refused our key",
                        f"add the public key of {self.node.ssh.key_file or 'your agent'} to "
                        f"~{self.node.ssh.user}/.ssh/authorized_keys on {name}, or fix ssh.key_file",
                    ) from None
                raise UnreachableError(name, f"SSH to {addr}:{port} failed: {text}",
                                       f"check that sshd runs on {name} and port {port} is open") from None
            except TimeoutError:
                raise UnreachableError(name, f"no answer from {addr}:{port} within {self.node.ssh.connect_timeout}s",
                                       f"check the address, routing and firewall to {name}") from None
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise UnreachableError(name, f"cannot connect to {addr}:{port}: {reason}",
                                       f"start sshd on {name} or fix ssh.port / address") from None
            self._conn = conn
            return conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- commands -----------------------------------------------------------------------------
    def _wrap(self, command: str, privileged: bool) -> str:
        if privileged and self.node.ssh.sudo and self.node.ssh.user != "root":
            return sh("sudo", "-n", "--", "sh", "-c", command)
        return command

    def run(self, argv: Sequence[object] | str, *, stdin: str | None = None, timeout: float = 60,
            check: bool = True, privileged: bool = True, what: str = "", stdin_bytes: bytes | None = None) -> Result:
        """Run a command.  A list is quoted word by word; a str must come from :func:`sh`."""
        command = argv if isinstance(argv, str) else sh(*argv)
        full = self._wrap(command, privileged)
        conn = self.open()
        start = time.monotonic()
        try:
            payload = stdin_bytes if stdin_bytes is not None else (stdin.encode() if stdin is not None else None)
            with self._slots:
                code, out, err = self._exec(conn, full, payload, timeout)
        except TimeoutError:
            self._log(command, -1, "", "timed out", time.monotonic() - start)
            raise RemoteError(self.node.name, f"{what or 'command'} timed out after {timeout:.0f}s",
                              f"{self.node.name} may be overloaded or hung", command=command) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.close()
            raise UnreachableError(self.node.name, f"connection lost: {exc}", "check the node and retry",
                                   command=command) from None
        duration = time.monotonic() - start
        self._log(command, code, out, err, duration)
        result = Result(self.node.name, REDACTOR(command), code, out, err, duration)
        if check and code != 0:
            raise RemoteError(
                self.node.name,
                f"{what or 'command'} failed with exit code {code}: {_tail(err.strip() or out.strip(), 300)}",
                command=command, exit_code=code, stderr=err,
            )
        return result

    @staticmethod
    def _exec(conn: Connection, command: str, stdin: bytes | None, timeout: float) -> tuple[int, str, str]:
        """One exec channel on the shared transport.  Invoke's runner feeds stdin a byte at a time with a
        sleep between bytes (seconds for a 1 kB config), so stdin goes in one write here."""
        transport = conn.client.get_transport()
        if transport is None or not transport.is_active():
            raise EOFError("SSH transport is closed")
        chan = transport.open_session(timeout=timeout)
        try:
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = bytearray(), bytearray()
            deadline = time.monotonic() + timeout
            while True:
                progressed = False
                while chan.recv_ready():
                    out += chan.recv(65536)
                    progressed = True
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                    progressed = True
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(command)
                if not progressed:
                    select.select([chan], [], [], 0.05)
            return chan.recv_exit_status(), out.decode(errors="replace"), err.decode(errors="replace")
        finally:
            chan.close()

    def _log(self, command: str, code: int, out: str, err: str, duration: float) -> None:
        if self.runlog is not None:
            self.runlog.record(node=self.node.name, command=command, exit_code=code,
                               duration=round(duration, 3), stdout=_tail(out), stderr=_tail(err))

    def put(self, data: bytes, path: str, *, mode: int = 0o644, owner: str = "root", group: str = "root",
            backup: str | None = None) -> None:
        """Write a file atomically in one round trip: the content arrives on stdin into a temp file beside
        the target, gets its owner and mode, then is renamed over it.  With `backup`, the old file (if
        any) is first copied there with its owner, mode and times."""
        staged = f"{path}.studio-cluster-{uuid.uuid4().hex[:12]}.tmp"  # two runs may write the same file
        steps = [sh("mkdir", "-p", str(Path(path).parent))]
        if backup:
            steps.append(f"if [ -e {q(path)} ]; then mkdir -p {q(str(Path(backup).parent))} && "
                         f"cp -p {q(path)} {q(backup)}; fi")
        steps += [
            f"(umask 077 && cat > {q(staged)})",
            sh("chown", f"{owner}:{group}", staged),
            sh("chmod", f"{mode:o}", staged),
            sh("mv", "-f", staged, path),
        ]
        script = " && ".join(steps) + f" || {{ rc=$?; rm -f {q(staged)}; exit $rc; }}"
        self.run(script, stdin_bytes=data, what=f"write {path}")


class Remote:
    """The connections of one run, one per node, opened on first use and closed together."""

    def __init__(self, profile: Profile, runlog: RunLog | None = None) -> None:
        self.profile = profile
        self.runlog = runlog
        self._conns: dict[str, NodeConnection] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> NodeConnection:
        with self._lock:
            if name not in self._conns:
                self._conns[name] = NodeConnection(self.profile.node(name), self.runlog)
            return self._conns[name]

    def nodes(self, names: Iterable[str] | None = None) -> list[NodeConnection]:
        return [self[n] for n in (names or [n.name for n in self.profile.nodes])]

    def close(self) -> None:
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            c.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
