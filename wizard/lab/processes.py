"""Running and watching processes from the root namespace: commands, pid files, waits, files."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from wizard.lab.layout import LabError


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 30,
         input: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input,
                              check=False, stdin=None if input is not None else subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]} is not installed: {exc}") from exc
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}")
    return proc


def _wait_for(what: str, predicate: Callable[[], object], timeout: float, interval: float = 0.02,
              detail: Callable[[], str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            extra = ""
            if detail is not None:
                with contextlib.suppress(Exception):
                    extra = detail()
            raise LabError(f"timed out after {timeout:g} s waiting for {what}" + (f": {extra}" if extra else ""))
        time.sleep(interval)


def _tail(path: Path, n: int = 5) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _proc_state(pid: int) -> str | None:
    """The one-letter state of a process, or None when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _pid_alive(pid: int | None, cmd_contains: str | None = None) -> bool:
    if not pid or pid <= 0:
        return False
    state = _proc_state(pid)
    if state is None or state in ("Z", "X"):
        return False
    if cmd_contains is not None:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        return cmd_contains in cmdline
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _nspid(pid: int) -> list[int]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return [int(x) for x in line.split()[1:]]
    except (OSError, ValueError):
        pass
    return []


def _link_exists(ifname: str) -> bool:
    return Path("/sys/class/net", ifname).exists()


def _tcp_banner(ip: str, port: int, timeout: float = 0.5) -> bytes:
    with socket.create_connection((ip, port), timeout=timeout) as s:
        s.settimeout(timeout)
        return s.recv(64)


def _tcp_refused(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def _spawn_root(argv: Sequence[str], pidfile: Path, logfile: Path) -> None:
    """Start `argv` detached from the root namespace; its pid (after exec) lands in `pidfile`."""
    pidfile.unlink(missing_ok=True)
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as log:
        subprocess.run(["setsid", "-f", "/bin/sh", "-c", 'echo $$ > "$0"; exec "$@"', str(pidfile), *argv],
                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=True, cwd="/")
    _wait_for(f"pid file {pidfile}", lambda: _read_pid(pidfile) is not None, 5)


def _unescape(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def _kill_pidfile(pidfile: Path, expect: str, timeout: float = 10) -> bool:
    pid = _read_pid(pidfile)
    if not _pid_alive(pid, expect):
        return False
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    _wait_for(f"{expect} (pid {pid}) to exit", lambda: not _pid_alive(pid, expect), timeout)
    return True


@contextlib.contextmanager
def file_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``directory/.lock`` (created, with the directory) for the block."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ssh_ready(ip: str, port: int = 22) -> bool:
    """Does an sshd answer on ip:port with its ``SSH-`` banner?"""
    try:
        return _tcp_banner(ip, port).startswith(b"SSH-")
    except OSError:
        return False


def write_known_hosts_file(path: Path, keys: dict[str, Path]) -> None:
    """Write a known_hosts file with one entry per address from each host's public key file
    (``{address: .../ssh_host_ed25519_key.pub}``); a key that cannot be read raises LabError."""
    lines = []
    for address, pub in keys.items():
        try:
            keytype, blob = pub.read_text().split()[:2]
        except (OSError, ValueError) as exc:
            raise LabError(f"no host key for {address} at {pub}: {exc}") from exc
        lines.append(f"{address} {keytype} {blob}")
    _write(path, "\n".join(lines) + "\n", 0o644)
