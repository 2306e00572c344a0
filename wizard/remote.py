"""Every remote action goes through here: SSH connections, host-key policy, quoting, timeouts, run log.

Why one module: quoting, host-key verification and redaction are security properties, and they only
hold if there is exactly one road to a remote shell.  Commands are given as argv lists and quoted
with :func:`shlex.quote`; a command that needs a pipeline is built with :func:`sh` from quoted parts.

Host keys are verified against the node's `known_hosts` file as OpenSSH verifies them
(:mod:`wizard.known_hosts`; Fabric's default is to auto-add, which we undo): an unknown, changed or revoked
key is an error the person must act on, and its hint names the entry that mismatched.  A key file is read
before connecting (:mod:`wizard.ssh_keys`) so an encrypted key is reported as such; it is used through
ssh-agent when the agent holds it, as ``ssh -i`` does.

Channels: sshd allows MaxSessions channels per connection.  A refused channel is back-pressure: the
node's limit drops to the channels still open and the command waits for one to close; a channel refused
while no other is open is an error that names MaxSessions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import shlex
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import paramiko
from fabric import Config, Connection

from wizard import known_hosts
from wizard.agent.rootcmd import ENTRY, INSTALLED, SCRIPTS, RootCall, RootScript, catalogue_of, render
from wizard.profile import Node, Profile
from wizard.secrets import REDACTOR
from wizard.ssh_keys import KeyFileError, agent_key_for, key_info, load_private_key

# paramiko logs a transport thread's failure (an unreachable host: "Error reading SSH protocol banner") with its
# traceback; with no handler of its own, Python's last-resort handler printed ~60 lines of it on stderr before
# our own one-line error.  What failed reaches the person through RemoteError; the run log keeps the commands.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False


def q(value: object) -> str:
    """Quote one value for a POSIX shell."""
    return shlex.quote(str(value))


def sh(*argv: object) -> str:
    """Join argv into one shell command line, every part quoted."""
    return " ".join(q(a) for a in argv)


def _no_delay(conn: Connection) -> None:
    """Send each SSH packet at once (TCP_NODELAY), as OpenSSH does for interactive sessions.  Without it a
    command's first packet (the channel open) waited for the ACK of the previous command's last one, which the
    node delays up to 40 ms: every command in a row took ~44 ms on the lab instead of ~4.  (Set when the socket is
    connected, by the transport factory; again here for a transport made otherwise.)"""
    _sock_no_delay(getattr(conn.client.get_transport(), "sock", None))


def _sock_no_delay(sock: object) -> None:
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Transport(paramiko.Transport):
    """paramiko's client transport, answering the server's notices with an SSH_MSG_IGNORE.  OpenSSH's sshd sends
    ``hostkeys-00@openssh.com`` (no reply wanted) right after authentication and, without TCP_NODELAY on a session
    without a terminal, holds the first channel's confirmation until that packet is ACKed, which this machine's
    kernel delayed ~40 ms: the first command of every connection took ~45 ms on the lab instead of ~4.  The
    IGNORE carries the ACK at once."""

    def _parse_global_request(self, m: paramiko.Message, *args: Any, **kwargs: Any) -> None:
        # a private hook of paramiko's (present since 1.x, tests/unit/test_remote_notices.py): any arguments a later
        # release adds are passed through untouched
        super()._parse_global_request(m, *args, **kwargs)  # type: ignore[misc]
        if not self.server_mode and self.is_active():
            ignore = paramiko.Message()
            ignore.add_byte(bytes([paramiko.common.MSG_IGNORE]))
            ignore.add_string(b"")
            with contextlib.suppress(Exception):
                self._send_message(ignore)  # type: ignore[attr-defined]


CONNECT_ATTEMPTS = 3  # connections tried while sshd drops them unanswered (starting, or over MaxStartups)


def _transient(exc: BaseException) -> bool:
    """An SSH connection that failed before any key was seen, the way a busy or starting sshd fails it: no
    banner within the timeout, the connection closed or reset before the banner (OpenSSH's MaxStartups drops
    connections so).  Host-key and authentication failures are never transient."""
    if isinstance(exc, (EOFError, ConnectionResetError)):
        return True
    text = str(exc)
    return isinstance(exc, paramiko.SSHException) and not isinstance(exc, paramiko.AuthenticationException) and (
        "protocol banner" in text or "Connection reset" in text)


MAX_CHANNELS = 8  # concurrent commands per node: below OpenSSH's default MaxSessions of 10
CHANNEL_RETRIES = 3  # attempts to open a channel while no other is open, before naming MaxSessions


PIDS_TEXT = ("for p in $(pgrep -x {proc}); do "
             "c=$(tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null) || continue; [ -n \"$c\" ] || continue; "
             "echo \"$c\" | grep -qE -- '--(version|help|wsrep-recover|donor)' || echo $p; done")
"""The loop :func:`daemon_pids` runs, for templates that embed it (their ``{proc}`` field)."""
DAEMON_PIDS = RootScript("daemon-pids", PIDS_TEXT)


def daemon_pids(proc: str) -> RootCall:
    """The pids of a running `proc` daemon, one a line.  Skips short-lived invocations of the same
    binary (`mariadbd --version` from a check, `--wsrep-recover` from an agent), which pgrep alone would
    count as a running server, a snapshot backup's own garbd (``--donor``), and processes gone (or zombies)
    by the time their cmdline is read."""
    return DAEMON_PIDS(proc=proc)


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
    """The node's host key is not the one on file (or none is).  `offered` is the SHA256 fingerprint of the key
    the host presented (`key`, its `key_type`), `on_file` the fingerprint recorded for it ("" when none is),
    `lookup` the name looked up (``host`` or ``[host]:port``), `known_hosts` the file, `status` one of
    ``new``, ``changed``, ``revoked``, ``mismatch`` (an --accept-host-key fingerprint that is not the offered
    key's) or ``""`` (the file could not be read)."""

    def __init__(self, node: str, message: str, hint: str = "", *, offered: str = "", on_file: str = "",
                 key: paramiko.PKey | None = None, lookup: str = "", known_hosts: str = "",
                 status: str = "") -> None:
        super().__init__(node, message, hint)
        self.offered = offered
        self.on_file = on_file
        self.key = key
        self.key_type = key.get_name() if key is not None else ""
        self.lookup = lookup
        self.known_hosts = known_hosts
        self.status = status


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

    def record(self, *, file_only: bool = False, **entry: Any) -> None:
        """Append one entry (redacted); ``file_only``: not to the listeners (a pipeline step, not a command)."""
        entry = {k: REDACTOR(v) if isinstance(v, str) else v for k, v in entry.items()}
        entry.setdefault("ts", round(time.time(), 3))
        line = json.dumps(entry)
        with self._lock:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a") as fh:
                    fh.write(line + "\n")
        for listener in [] if file_only else list(self.listeners):
            listener(entry)


def _tail(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]


_T = TypeVar("_T")


class _ChannelRefused(Exception):
    """sshd refused to open a session channel (MaxSessions reached, or sessions not allowed)."""


class NodeConnection:
    """One node's SSH connection: opened lazily once, then shared by threads (paramiko channels are).

    `key_passphrase` decrypts an encrypted ``ssh.key_file`` (resolved by the caller from a secret
    reference); without it an encrypted key is used through ssh-agent or reported as encrypted."""

    def __init__(self, node: Node, runlog: RunLog | None = None, *, key_passphrase: str | None = None) -> None:
        self.node = node
        self.runlog = runlog
        self.key_passphrase = key_passphrase
        self._key_source = "ssh-agent and ~/.ssh keys"
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        # sshd allows MaxSessions (default 10) channels per connection; past that, opening one fails.
        # `channel_limit` starts at MAX_CHANNELS and drops to what the node accepted when a channel is refused.
        self.channel_limit = MAX_CHANNELS
        self._channels = threading.Condition()
        self._open_channels = 0
        self.notes: list[str] = []
        """Things worth saying once about this connection (e.g. skipped known_hosts lines)."""
        self._agent_checked = False

    # -- connection ---------------------------------------------------------------------------
    def _auth_kwargs(self) -> dict[str, Any]:
        ssh = self.node.ssh
        if ssh.key_file is None:
            return {"look_for_keys": True, "allow_agent": True}
        path = Path(ssh.key_file)
        try:
            info = key_info(path)
        except OSError as exc:
            raise AuthError(self.node.name, f"cannot read the key file {path}: {exc.strerror or exc}",
                            f"fix ssh.key_file or the permissions of {path}") from None
        if info.encrypted and self.key_passphrase is None:
            agent_key = agent_key_for(info)
            if agent_key is not None:
                self._key_source = f"{path} (through ssh-agent)"
                return {"pkey": agent_key, "look_for_keys": False, "allow_agent": False}
        try:
            pkey = load_private_key(path, self.key_passphrase)
        except KeyFileError as exc:
            hint = exc.hint
            if exc.encrypted and self.key_passphrase is None and info.public_blob is None:
                hint += f" (ssh-agent cannot be matched to it without {path}.pub)"
            raise AuthError(self.node.name, exc.message, hint) from None
        self._key_source = str(path)
        return {"pkey": pkey, "look_for_keys": False, "allow_agent": False}

    def _make(self) -> Connection:
        ssh = self.node.ssh
        config = Config(overrides={"load_ssh_configs": False, "run": {"hide": True, "warn": True}})
        self._key_source = "ssh-agent and ~/.ssh keys"
        connect_kwargs: dict[str, Any] = {
            **self._auth_kwargs(),
            "banner_timeout": ssh.connect_timeout,
            "auth_timeout": ssh.connect_timeout,
        }
        kh = self._known_hosts()
        known_types = kh.key_types(self.node.address, ssh.port)

        def factory(sock: Any, disabled_algorithms: Any = None) -> paramiko.Transport:
            # TCP_NODELAY before the handshake, not after: with Nagle's algorithm the key exchange's NEWKEYS and
            # the next message waited for the node's delayed ACK (~40 ms of every connection on the lab)
            _sock_no_delay(sock)
            transport = _Transport(sock, disabled_algorithms=disabled_algorithms)
            if known_types:
                opts = transport.get_security_options()
                opts.key_types = known_hosts.preferred_key_types(list(opts.key_types), known_types)
            return transport
        connect_kwargs["transport_factory"] = factory
        conn = Connection(
            self.node.address,
            user=ssh.user,
            port=ssh.port,
            config=config,
            connect_timeout=max(1, int(ssh.connect_timeout)),
            connect_kwargs=connect_kwargs,
        )
        client: paramiko.SSHClient = conn.client
        # nothing is loaded into paramiko's HostKeys: every key goes through the OpenSSH-rule verifier
        client.set_missing_host_key_policy(_VerifyHostKey(self, kh))
        return conn

    def _known_hosts_name(self) -> str:
        return str(self.node.ssh.known_hosts or Path("~/.ssh/known_hosts").expanduser())

    def _known_hosts(self) -> known_hosts.KnownHosts:
        path = self._known_hosts_name()
        try:
            kh = known_hosts.load(path)
        except OSError as exc:
            raise HostKeyError(self.node.name, f"cannot read {path}: {exc.strerror or exc}",
                               f"fix ssh.known_hosts or the permissions of {path}") from None
        skipped = known_hosts.unreported_skips(kh)
        if skipped:
            note = (f"known_hosts: skipped {len(skipped)} line(s) OpenSSH-compatible matching cannot use: "
                    + "; ".join(str(s) for s in skipped))
            self.notes.append(note)
            if self.runlog is not None:
                self.runlog.record(node=self.node.name, note=note)
        return kh

    def _host_key_error(self, key: paramiko.PKey, verdict: known_hosts.Verdict) -> HostKeyError:
        name, path, node = verdict.name, self._known_hosts_name(), self.node.name
        kind, offered = key.get_name(), known_hosts.fingerprint(key)

        def error(message: str, hint: str, status: str, on_file: str = "") -> HostKeyError:
            return HostKeyError(node, message, hint, offered=offered, on_file=on_file, key=key, lookup=name,
                                known_hosts=path, status=status)

        accept = f"--accept-host-key {node}={offered}"
        check = (f"compare {offered} with the key on {node} itself (ssh-keygen -lf /etc/ssh/ssh_host_"
                 f"{kind.removeprefix('ssh-').split('-')[0]}_key.pub there)")
        if verdict.status is known_hosts.Status.CHANGED and verdict.entry is not None:
            on_file = known_hosts.fingerprint(verdict.entry.key)
            return error(
                f"host key of {name} does not match known_hosts entry {verdict.entry.where}: the host offered "
                f"{kind} {offered}, the entry holds {on_file}; nothing was done",
                f"the host was reinstalled or someone is in the middle: {check}; only if they are the same, run "
                f"again with {accept} or accept it in the wizard (either replaces the entry), or "
                f"ssh-keygen -R {q(name)} -f {q(path)} (removes the entry at {verdict.entry.where}) then add it",
                "changed", on_file)
        if verdict.status is known_hosts.Status.REVOKED and verdict.entry is not None:
            return error(
                f"host key of {name} ({kind} {offered}) is marked @revoked at {verdict.entry.where}",
                f"{node} must get a new host key; do not connect to it with the revoked one",
                "revoked", offered)
        return error(f"host key of {name} is not in {path}: it offered {kind} {offered}; nothing was done "
                     "(no key is trusted on first use)",
                     f"{check}; if they are the same, run again with {accept}, or accept it in the wizard", "new")

    def offered_host_key(self) -> paramiko.PKey:
        """The host key the node presents, with the key types on file preferred as a connection does;
        no authentication, nothing trusted.  Raises UnreachableError."""
        addr, port, timeout = self.node.address, self.node.ssh.port, self.node.ssh.connect_timeout
        kh = self._known_hosts()
        try:
            sock = socket.create_connection((addr, port), timeout=timeout)
        except OSError as exc:
            raise UnreachableError(self.node.name, f"cannot connect to {addr}:{port}: {exc.strerror or exc}",
                                   f"start sshd on {self.node.name} or fix ssh.port / address") from None
        transport = paramiko.Transport(sock)
        try:
            opts = transport.get_security_options()
            known_types = kh.key_types(addr, port)
            if known_types:
                opts.key_types = known_hosts.preferred_key_types(list(opts.key_types), known_types)
            transport.banner_timeout = timeout
            transport.start_client(timeout=timeout)
            key = transport.get_remote_server_key()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise UnreachableError(self.node.name, f"SSH handshake with {addr}:{port} failed: {exc}",
                                   f"check that sshd runs on {self.node.name} and port {port} is open") from None
        finally:
            transport.close()
        return key

    def host_key_problem(self) -> HostKeyError | None:
        """The refusal a connection to this node would meet over its host key (unknown, changed, revoked), with
        the key it offers, or None when known_hosts holds that key.  Raises UnreachableError."""
        key = self.offered_host_key()
        verdict = self._known_hosts().verify(self.node.address, self.node.ssh.port, key)
        return None if verdict.status is known_hosts.Status.OK else self._host_key_error(key, verdict)

    def accept_host_key(self, given: str, key: paramiko.PKey | None = None) -> str:
        """Record the node's host key in its known_hosts file, only when its fingerprint is `given`
        (``SHA256:...``).  `key`: the key a HostKeyError carried (the wizard's dialog); None: ask the node.

        Returns what was done, one line.  Raises HostKeyError (status ``mismatch``: the offered key is not
        `given`, nothing written; ``revoked``), UnreachableError, or HostKeyError naming the file when it
        cannot be written."""
        key = key if key is not None else self.offered_host_key()
        node, port, path = self.node.name, self.node.ssh.port, self._known_hosts_name()
        offered, name = known_hosts.fingerprint(key), known_hosts.host_name(self.node.address, port)
        if not known_hosts.same_fingerprint(given, key):
            raise HostKeyError(node, f"{node} ({name}) offers {key.get_name()} {offered}, not the {given} given to "
                                     f"accept; nothing was written to {path}",
                               f"check the fingerprint on {node} itself; someone may be in the middle",
                               offered=offered, key=key, lookup=name, known_hosts=path, status="mismatch")
        verdict = self._known_hosts().verify(self.node.address, port, key)
        if verdict.status is known_hosts.Status.OK:
            return f"{node}: {key.get_name()} {offered} is already in {path}"
        if verdict.status is known_hosts.Status.REVOKED:
            raise self._host_key_error(key, verdict)
        try:
            removed = known_hosts.record(path, name, key)
        except OSError as exc:
            raise HostKeyError(node, f"cannot write {path}: {exc.strerror or exc}",
                               f"fix ssh.known_hosts or the permissions of {path}") from None
        gone = f" (replaced line {', '.join(map(str, removed))})" if removed else ""
        note = f"{node}: recorded {key.get_name()} {offered} for {name} in {path}{gone}"
        if self.runlog is not None:
            self.runlog.record(node=node, note=note)
        return note

    def open(self) -> Connection:
        with self._lock:
            if self._conn is not None and self._conn.is_connected:
                return self._conn
            name, addr, port = self.node.name, self.node.address, self.node.ssh.port
            conn = self._make()
            try:
                for attempt in range(1, CONNECT_ATTEMPTS + 1):
                    try:
                        conn.open()
                        break
                    except (paramiko.SSHException, EOFError, ConnectionResetError) as exc:
                        if attempt == CONNECT_ATTEMPTS or not _transient(exc):
                            raise
                        conn.close()  # sshd busy or starting: a fresh connection, after a pause
                        time.sleep(0.5 * attempt)
                        conn = self._make()
            except RemoteError:  # raised by the host-key verifier, inside paramiko's connect
                conn.close()
                raise
            except paramiko.BadAuthenticationType as exc:
                conn.close()
                raise AuthError(
                    name, f"sshd on {name} does not accept public keys for {self.node.ssh.user} "
                    f"(it allows: {', '.join(exc.allowed_types) or 'nothing'})",
                    f"enable PubkeyAuthentication in sshd_config on {name}",
                ) from None
            except paramiko.PasswordRequiredException:
                conn.close()
                raise AuthError(
                    name, f"no key was accepted for {self.node.ssh.user}@{addr}, and a key in ~/.ssh is "
                    "encrypted (passphrase-protected)",
                    "load it into ssh-agent (ssh-add KEY) and run studio-cluster where SSH_AUTH_SOCK is set, "
                    "or set ssh.key_file",
                ) from None
            except paramiko.AuthenticationException:
                conn.close()
                raise AuthError(
                    name, f"{self.node.ssh.user}@{addr} refused our key ({self._key_source})",
                    f"add its public key to ~{self.node.ssh.user}/.ssh/authorized_keys on {name}, "
                    f"or fix ssh.key_file / ssh.user",
                ) from None
            except paramiko.SSHException as exc:
                conn.close()
                text = str(exc)
                if "No authentication methods available" in text:
                    raise AuthError(name, f"no SSH key to offer to {self.node.ssh.user}@{addr}",
                                    "set ssh.key_file, or start ssh-agent and ssh-add your key") from None
                raise UnreachableError(name, f"SSH to {addr}:{port} failed: {text}",
                                       f"check that sshd runs on {name} and port {port} is open") from None
            except TimeoutError:
                conn.close()
                raise UnreachableError(name, f"no answer from {addr}:{port} within {self.node.ssh.connect_timeout}s",
                                       f"check the address, routing and firewall to {name}") from None
            except OSError as exc:
                conn.close()
                reason = exc.strerror or str(exc)
                raise UnreachableError(name, f"cannot connect to {addr}:{port}: {reason}",
                                       f"start sshd on {name} or fix ssh.port / address") from None
            _no_delay(conn)
            self._conn = conn
            return conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- commands -----------------------------------------------------------------------------
    @property
    def agent_scope(self) -> bool:
        """True when root is reached only through the installed agent (``ssh.sudo_scope: agent``)."""
        return self.node.ssh.agent_scope

    def sudo_fix(self) -> str:
        """The one line that fixes sudo for this node's SSH user, in its sudo scope."""
        user, name = self.node.ssh.user, self.node.name
        if self.agent_scope:
            return (f"install the agent and {user}'s rule on {name}: `studio-cluster sudoers PROFILE --installer "
                    f"FILE`, then `sh FILE --rule {user}` as root there (docs/least-privilege.md)")
        return (f"allow {user} passwordless sudo on {name}: the rule '{user} ALL=(root) NOPASSWD: ALL' in "
                f"/etc/sudoers.d/studio-cluster (visudo -f /etc/sudoers.d/studio-cluster), or use sudo_scope: agent")

    def require_installed_agent(self) -> None:
        """In agent scope: the installed agent is this studio-cluster's version (its catalogue is the one this
        run's scripts are in).  Read once per connection, without sudo.  Raises RemoteError with the installer
        as the fix."""
        if self._agent_checked or not self.agent_scope:
            return
        from wizard.agent_bundle import agent_digest

        have = self.run(f"cat {q(INSTALLED + '/DIGEST')} 2>/dev/null || true", privileged=False,
                        timeout=15).stdout.strip()
        want = agent_digest()
        if have != want:
            raise RemoteError(
                self.node.name, f"the agent installed on {self.node.name} is "
                f"{'version ' + have[:16] if have else 'missing'}; this studio-cluster needs {want[:16]}",
                self.sudo_fix() + " (again after each studio-cluster upgrade)")
        self._agent_checked = True

    def _wrap(self, command: str, privileged: bool) -> str:
        if privileged and self.node.ssh.sudo and self.node.ssh.user != "root":
            if self.agent_scope:
                if command.startswith(ENTRY + " "):
                    return "sudo -n -- " + command
                raise RemoteError(self.node.name, "a root command that is not one of the agent's named scripts "
                                  "cannot run in sudo_scope agent (a studio-cluster bug: report it)",
                                  command=command)
            return sh("sudo", "-n", "--", "sh", "-c", command)
        return command

    def run(self, argv: Sequence[object] | str | RootCall, *, stdin: str | None = None, timeout: float = 60,
            check: bool = True, privileged: bool = True, what: str = "", stdin_bytes: bytes | None = None) -> Result:
        """Run a command.  A list is quoted word by word; a str must come from :func:`sh`; a
        :class:`~wizard.agent.rootcmd.RootCall` (a named root script) runs as root in either sudo scope: in
        agent scope through ``ENTRY root NAME``, its values on stdin's first line."""
        payload = stdin_bytes if stdin_bytes is not None else (stdin.encode() if stdin is not None else None)
        command, full, payload = self._command(argv, privileged, payload)
        conn = self.open()
        start = time.monotonic()
        try:
            code, out, err = self._with_slot(lambda: self._exec(conn, full, payload, timeout), full, timeout)
        except TimeoutError:
            self._log(command, -1, "", "timed out", time.monotonic() - start)
            raise self._timed_out(command, what, timeout) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._lost(command, exc) from None
        duration = time.monotonic() - start
        self._log(command, code, out, err, duration)
        return self._result(command, full, code, out, err, duration, check, what)

    def _command(self, argv: Sequence[object] | str | RootCall, privileged: bool,
                 payload: bytes | None) -> tuple[str, str, bytes | None]:
        """(the command, the command line sent, stdin) of :meth:`run`'s ``argv``."""
        if isinstance(argv, RootCall):
            if privileged and self.agent_scope:
                command = sh(ENTRY, "root", argv.name)
                header = json.dumps(argv.to_json()).encode() + b"\n"
                payload = header + (payload or b"")
            else:
                command = render(argv, catalogue_of(SCRIPTS))
        else:
            command = argv if isinstance(argv, str) else sh(*argv)
        full = self._wrap(command, privileged)
        if full != command and self.agent_scope:  # through the installed agent: it must be this version
            self.require_installed_agent()
        return command, full, payload

    def _result(self, command: str, full: str, code: int, out: str, err: str, duration: float, check: bool,
                what: str) -> Result:
        if full != command and code == 1 and err.startswith("sudo: "):  # sudo said no: nothing of ours ran
            raise RemoteError(self.node.name, f"sudo refused on {self.node.name}: {_tail(err.strip(), 200)}",
                              self.sudo_fix(), command=command, exit_code=code, stderr=err)
        if check and code != 0:
            raise RemoteError(
                self.node.name,
                f"{what or 'command'} failed with exit code {code}: {_tail(err.strip() or out.strip(), 300)}",
                command=command, exit_code=code, stderr=err,
            )
        return Result(self.node.name, REDACTOR(command), code, out, err, duration)

    def stream(self, argv: Sequence[object] | str | RootCall, *, stdin: str = "", timeout: float = 60,
               privileged: bool = True, what: str = "") -> Stream:
        """Start a command that keeps running while the caller talks to it: lines to its stdin
        (:meth:`Stream.send`), lines from its stdout (:meth:`Stream.readline`), until :meth:`Stream.close`.  It
        holds one of the node's channels until then.  ``stdin``: sent first (its stdin stays open); ``timeout``:
        for opening its channel.  Raises RemoteError as :meth:`run` does."""
        command, full, payload = self._command(argv, privileged, stdin.encode())
        conn = self.open()
        try:
            chan = self._with_slot(lambda: self._open_channel(conn, full, payload, timeout, keep_stdin=True), full,
                                   timeout, keep=True)
        except TimeoutError:
            raise self._timed_out(command, what, timeout) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._lost(command, exc) from None
        return Stream(self, chan, command, full, what)

    def _timed_out(self, command: str, what: str | None, timeout: float) -> RemoteError:
        """The error of a command that did not end within ``timeout`` seconds."""
        return RemoteError(self.node.name, f"{what or 'command'} timed out after {timeout:.0f}s",
                           f"{self.node.name} may be overloaded or hung", command=command)

    def _lost(self, command: str, exc: BaseException) -> UnreachableError:
        """Close the broken connection; the error naming why it broke."""
        self.close()
        return UnreachableError(self.node.name, f"connection lost: {exc}", "check the node and retry",
                                command=command)

    def _release_slot(self) -> None:
        with self._channels:
            self._open_channels -= 1
            self._channels.notify()

    def _with_slot(self, call: Callable[[], _T], command: str, timeout: float, keep: bool = False) -> _T:
        """``call`` (which opens one channel) within the node's channel limit; a refused channel lowers the limit
        to the channels still open and waits for one of them to close (back-pressure, not a failure).  ``keep``:
        a successful call keeps its slot (:meth:`_release_slot` gives it back)."""
        deadline = time.monotonic() + timeout
        refused_alone = 0
        while True:
            with self._channels:
                while self._open_channels >= self.channel_limit:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(command)
                    self._channels.wait(left)
                self._open_channels += 1
            kept = False
            try:
                result = call()
                kept = keep
                return result
            except _ChannelRefused as exc:
                with self._channels:
                    others = self._open_channels - 1
                    if others > 0:
                        lowered = others < self.channel_limit
                        self.channel_limit = min(self.channel_limit, others)
                        refused_alone = 0
                        if lowered and self.runlog is not None:
                            self.runlog.record(node=self.node.name, note=f"sshd refused a channel ({exc}): at most "
                                               f"{self.channel_limit} at once on this connection (MaxSessions)")
                    else:
                        refused_alone += 1
                if others == 0 and refused_alone >= CHANNEL_RETRIES:
                    raise RemoteError(
                        self.node.name,
                        f"sshd on {self.node.name} refused to open even one session channel ({exc})",
                        f"raise MaxSessions in sshd_config on {self.node.name} (OpenSSH's default is 10; "
                        f"this tool uses up to {MAX_CHANNELS} at once, and works with 1 or more)",
                        command=command,
                    ) from None
                if time.monotonic() > deadline:
                    raise TimeoutError(command) from None
                if others == 0:
                    time.sleep(0.05 * refused_alone)  # a channel we just closed may not be freed yet
            finally:
                if not kept:
                    self._release_slot()

    @staticmethod
    def _open_channel(conn: Connection, command: str, stdin: bytes | None, timeout: float,
                      keep_stdin: bool = False) -> paramiko.Channel:
        """An exec channel on the shared transport running ``command``, ``stdin`` sent (then closed unless
        ``keep_stdin``).  Raises _ChannelRefused when sshd refuses the channel (MaxSessions)."""
        transport = conn.client.get_transport()
        if transport is None or not transport.is_active():
            raise EOFError("SSH transport is closed")
        try:
            chan = transport.open_session(timeout=timeout)
        except paramiko.ChannelException as exc:
            raise _ChannelRefused(f"{exc.text} (code {exc.code})") from None
        except paramiko.SSHException as exc:
            # with threads opening channels at once, only one of them gets the ChannelException; the
            # others see "Unable to open channel." on a transport that is still up: the same refusal
            if transport.is_active() and "Unable to open channel" in str(exc):
                raise _ChannelRefused(str(exc)) from None
            raise
        try:
            # Without stdin the command reads /dev/null and no EOF is sent: paramiko builds an EOF under the
            # channel lock but sends it after, so an EOF racing the server's CLOSE of a command that already
            # exited reaches sshd after our CLOSE; sshd then drops the whole connection ("ieof packet referred
            # to nonexistent channel") and every channel open on it ends with exit -1.
            chan.exec_command(command if stdin is not None else "exec </dev/null; " + command)
            if stdin is not None:
                if stdin:
                    chan.sendall(stdin)
                if not keep_stdin:
                    chan.shutdown_write()
        except BaseException:
            chan.close()
            raise
        return chan

    @classmethod
    def _exec(cls, conn: Connection, command: str, stdin: bytes | None, timeout: float) -> tuple[int, str, str]:
        """One exec channel on the shared transport.  Invoke's runner feeds stdin a byte at a time with a
        sleep between bytes (seconds for a 1 kB config), so stdin goes in one write here.

        Raises _ChannelRefused when sshd refuses the channel (MaxSessions)."""
        chan = cls._open_channel(conn, command, stdin, timeout)
        try:
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
                drained = not chan.recv_ready() and not chan.recv_stderr_ready()
                # Done at the end of the output (EOF), not at the exit status: sshd may send the status
                # before the last of the output, which was then lost (an empty stdout with exit 0).
                if drained and chan.exit_status_ready() and (chan.eof_received or chan.closed):
                    break
                if drained and chan.closed:  # closed without an exit status: not an exit code of -1
                    raise EOFError("the channel closed before the command reported its exit status")
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
        script = PUT_BACKUP if backup else PUT
        values: dict[str, Any] = {"dir": str(Path(path).parent), "path": path, "staged": staged, "size": len(data),
                                  "owner": f"{owner}:{group}", "mode": f"{mode:o}"}
        if backup:
            values |= {"backup": backup, "backup_dir": str(Path(backup).parent)}
        self.run(script(**values), stdin_bytes=data, what=f"write {path}")


# whole or not at all: a client that dies mid-upload ends stdin early, and cat exits 0 on a cut file
_PUT_STEPS = ("(umask 077 && cat > {staged}) && [ \"$(wc -c < {staged})\" -eq {size} ] && chown {owner} {staged} && "
              "chmod {mode} {staged} && mv -f {staged} {path} || {{ rc=$?; rm -f {staged}; exit $rc; }}")
PUT = RootScript("put", "mkdir -p {dir} && " + _PUT_STEPS)
PUT_BACKUP = RootScript("put-backup", "mkdir -p {dir} && if [ -e {path} ]; then mkdir -p {backup_dir} && "
                        "cp -p {path} {backup}; fi && " + _PUT_STEPS)


class Stream:
    """A command that keeps running while its caller talks to it (:meth:`NodeConnection.stream`): lines to its
    stdin, lines from its stdout.  One thread reads (:meth:`readline`); any thread may :meth:`send`."""

    def __init__(self, conn: NodeConnection, chan: paramiko.Channel, command: str, full: str, what: str) -> None:
        self._conn, self._chan, self._command, self._full, self._what = conn, chan, command, full, what
        self._out, self._err, self._seen = bytearray(), bytearray(), bytearray()
        self._send = threading.Lock()
        self._closed = False
        self._start = time.monotonic()

    @property
    def node(self) -> str:
        return self._conn.node.name

    def send(self, line: str) -> None:
        """One line to the command's stdin.  Raises UnreachableError when the channel is gone."""
        try:
            with self._send:
                self._chan.sendall(line.encode() + b"\n")
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise UnreachableError(self.node, f"{self._what or 'command'}: cannot write to it: {exc}",
                                   "check the node and retry", command=self._command) from None

    def end_input(self) -> None:
        """Close the command's stdin (it sees EOF); its output goes on to :meth:`readline`."""
        with self._send, contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            self._chan.shutdown_write()

    def _pump(self, wait: float) -> bool:
        """Take what has arrived (waiting up to ``wait`` s for something); False once stdout has ended."""
        chan = self._chan
        if not chan.recv_ready() and not chan.recv_stderr_ready() and not (chan.eof_received or chan.closed):
            select.select([chan], [], [], wait)
        while chan.recv_stderr_ready():
            self._err += chan.recv_stderr(65536)
        if chan.recv_ready():
            data = chan.recv(65536)
            self._out += data
            self._seen += data
            return True
        return not (chan.eof_received or chan.closed)

    def readline(self, timeout: float) -> str | None:
        """The next line of stdout (without its newline); None at the end of stdout.  Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(self._command)
            if not self._pump(min(left, 0.5)) and not self._chan.recv_ready():
                if not self._out:
                    return None
                rest = bytes(self._out)
                self._out.clear()
                return rest.decode(errors="replace")
        line, _, rest = bytes(self._out).partition(b"\n")
        self._out[:] = rest
        return line.decode(errors="replace")

    def close(self, timeout: float = 10, check: bool = False) -> Result:
        """Close its stdin and wait (up to ``timeout``) for it to exit; logged as :meth:`NodeConnection.run` logs a
        command.  Raises RemoteError as ``run`` does (``check``: also for a non-zero exit)."""
        if self._closed:
            raise RuntimeError("stream closed twice")
        self._closed = True
        chan, code = self._chan, -1
        try:
            if not (chan.eof_received or chan.closed or chan.exit_status_ready()):
                # never an EOF after the command ended by itself: paramiko answers the server's CLOSE at once,
                # and an EOF of ours after that CLOSE makes sshd drop the whole connection (see _exec)
                self.end_input()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                # the end of the output (EOF) and the exit status, as run() waits for them
                if not self._pump(0.05) and not chan.recv_ready():
                    if chan.exit_status_ready():
                        code = chan.recv_exit_status()
                        break
                    if chan.closed:
                        break
                    time.sleep(0.002)
        finally:
            chan.close()
            self._conn._release_slot()
        out, err = self._seen.decode(errors="replace"), self._err.decode(errors="replace")
        duration = time.monotonic() - self._start
        self._conn._log(self._command, code, out, err, duration)
        return self._conn._result(self._command, self._full, code, out, err, duration, check, self._what)


class _VerifyHostKey(paramiko.MissingHostKeyPolicy):
    """Every host key goes through here (paramiko's own HostKeys stays empty): OpenSSH's rules."""

    def __init__(self, conn: NodeConnection, kh: known_hosts.KnownHosts) -> None:
        self.conn = conn
        self.kh = kh

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        node = self.conn.node
        verdict = self.kh.verify(node.address, node.ssh.port, key)
        if verdict.status is not known_hosts.Status.OK:
            raise self.conn._host_key_error(key, verdict)


class Remote:
    """The connections of one run, one per node, opened on first use and closed together."""

    def __init__(self, profile: Profile, runlog: RunLog | None = None, *,
                 key_passphrases: dict[str, str] | None = None) -> None:
        """`key_passphrases`: node name -> passphrase of its encrypted ssh.key_file (resolved secrets)."""
        self.profile = profile
        self.runlog = runlog
        self.key_passphrases = dict(key_passphrases or {})
        self._conns: dict[str, NodeConnection] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> NodeConnection:
        with self._lock:
            if name not in self._conns:
                self._conns[name] = NodeConnection(self.profile.node(name), self.runlog,
                                                   key_passphrase=self.key_passphrases.get(name))
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
