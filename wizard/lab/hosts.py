"""Lab hosts: each a tiny init in private namespaces with its own sshd; running commands inside them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from wizard.lab.layout import (
    HIDDEN_EMPTY,
    HOSTS,
    INFRA,
    INIT_SCRIPT,
    NET,
    SSH_PORT,
    SYSTEM_PYTHON,
    ZONE,
    LabCommandError,
    LabError,
    _check_host,
    host_dir,
    host_path,
    key_path,
    known_hosts_path,
    template_datadir,
)
from wizard.lab.netns import _in_netns, _netns_ident, _pids_in_net_ident
from wizard.lab.processes import (
    _nspid,
    _pid_alive,
    _read_pid,
    _run,
    _spawn_root,
    _tail,
    _tcp_refused,
    _wait_for,
    _write,
    ssh_ready,
    write_known_hosts_file,
)


def _ssh_ready(ip: str) -> bool:
    return ssh_ready(ip, SSH_PORT)


def _init_pid(name: str) -> int | None:
    """The root-namespace pid of the host's PID 1, or None."""
    pidfile = host_dir(name) / "lab" / "init.pid"
    pid = _read_pid(pidfile)
    ident = _netns_ident(name)
    if pid and _is_host_init(pid, ident):
        return pid
    if ident is None:
        return None
    for p in _pids_in_net_ident(ident):
        if _is_host_init(p, ident):
            return p
    return None


def _is_host_init(pid: int, ident: tuple[int, int] | None) -> bool:
    if ident is None or not _pid_alive(pid, "labhost_init.py"):
        return False
    ns = _nspid(pid)
    if len(ns) < 2 or ns[-1] != 1:
        return False
    try:
        st = os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == ident


def require_init_pid(name: str) -> int:
    _check_host(name)
    pid = _init_pid(name)
    if pid is None:
        raise LabError(f"lab host {name} is not running (run `studio-cluster lab up`)")
    return pid


def _host_proc_alive(init_pid: int, host_pid: int | None, cmd_contains: str) -> bool:
    """Is `host_pid` (a pid in the host's own pid namespace) alive, judged through the host's /proc?"""
    if not host_pid:
        return False
    base = Path(f"/proc/{init_pid}/root/proc/{host_pid}")
    try:
        stat = (base / "stat").read_text()
        cmdline = (base / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X") and cmd_contains in cmdline


def _sshd_host_pid(name: str) -> int | None:
    return _read_pid(host_path(name, "/run/sshd.pid"))


def _sshd_alive(name: str, init_pid: int | None) -> bool:
    return bool(init_pid) and _host_proc_alive(init_pid or 0, _sshd_host_pid(name), "sshd")


HOST_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "USER": "root",
    "LOGNAME": "root",
    "SHELL": "/bin/bash",
    "LANG": "C.UTF-8",
}


def host_exec(name: str, argv: Sequence[str], check: bool = True, timeout: float = 30,
              input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `argv` inside lab host `name` (all its namespaces, cwd /, a root login's environment plus
    `env`), wait, and return its output.  A non-zero exit raises :class:`LabCommandError` when `check`.

    On timeout the whole process group (inside the host too) is killed and TimeoutExpired raised.
    """
    pid = require_init_pid(name)
    cmd = ["nsenter", "-t", str(pid), "-a", *argv]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
                            start_new_session=True, env={**HOST_ENV, **(env or {})})
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    result = subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise LabCommandError(name, proc.returncode, argv, out, err)
    return result


def host_spawn(name: str, argv: Sequence[str], log: str = "/dev/null") -> int:
    """Start `argv` detached inside host `name` (own session, stdin from /dev/null, output appended to
    `log`, a path inside the host).  Returns its pid *in the host's pid namespace*; the host's init
    reaps it when it dies."""
    script = 'log=$1; shift; echo $$; exec "$@" </dev/null >>"$log" 2>&1'
    proc = host_exec(name, ["setsid", "-f", "/bin/sh", "-c", script, "sh", log, *argv], timeout=10)
    try:
        return int(proc.stdout.split()[0])
    except (ValueError, IndexError) as exc:
        raise LabError(f"{name}: could not start {' '.join(argv)}: {proc.stderr.strip()}") from exc


def _hosts_file() -> str:
    return NET.hosts_file(infra_aliases=["redis"])


def _sshd_config(ip: str) -> str:
    return f"""# studio-cluster lab host sshd (written by wizard/lab)
ListenAddress {ip}
Port {SSH_PORT}
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 100
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
"""


def _gen_host_key(etc_ssh: Path) -> None:
    for old in etc_ssh.glob("ssh_host_*"):
        old.unlink()
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(etc_ssh / "ssh_host_ed25519_key")])


def _prepare_host(name: str, ip: str) -> None:
    d = host_dir(name)
    shutil.rmtree(d, ignore_errors=True)
    (d / "lab").mkdir(parents=True)
    (d / "etc").mkdir()
    (d / "var" / "lib").mkdir(parents=True)
    _run(["cp", "-a", "/etc/mysql", str(d / "etc" / "mysql")])
    _run(["cp", "-a", "/etc/ssh", str(d / "etc" / "ssh")])
    _run(["cp", "-a", "/etc/default", str(d / "etc" / "default")])
    for private in ("var/lib/garbd", "opt", "var/backups", "var/lib/studio-cluster", "etc/studio-cluster",
                    "etc/cron.d"):
        (d / private).mkdir(mode=0o755)
    for point in ("/var/lib/garbd", "/var/lib/studio-cluster", "/etc/studio-cluster", "/etc/cron.d"):
        Path(point).mkdir(exist_ok=True)  # the mount points the host's private dirs bind onto
    _run(["cp", "-a", "--sparse=always", str(template_datadir()), str(d / "var" / "lib" / "mysql")])
    etc_ssh = d / "etc" / "ssh"
    _gen_host_key(etc_ssh)
    _write(etc_ssh / "sshd_config", _sshd_config(ip))
    _write(d / "etc" / "hosts", _hosts_file())
    _write(d / "etc" / "hostname", f"{name}\n")
    _write(d / "etc" / "resolv.conf", f"# lab DNS (PowerDNS in sc-infra)\nsearch {ZONE}\nnameserver {INFRA[1]}\n")
    run = d / "run"
    run.mkdir(mode=0o755)
    (run / "sshd").mkdir(mode=0o755)
    (run / "mysqld").mkdir(mode=0o755)
    shutil.chown(run / "mysqld", "mysql", "mysql")
    (run / "lock").mkdir(mode=0o1777)
    os.chmod(run / "lock", 0o1777)
    log = d / "var" / "log"
    log.mkdir(mode=0o755)
    (log / "mysql").mkdir(mode=0o2750)
    shutil.chown(log / "mysql", "mysql", "adm")
    os.chmod(log / "mysql", 0o2750)
    root = d / "root"
    root.mkdir(mode=0o700)
    (root / ".ssh").mkdir(mode=0o700)
    _write(root / ".ssh" / "authorized_keys", key_path().with_suffix(".pub").read_text(), 0o600)
    tmp = d / "tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777)
    _write(run / HIDDEN_EMPTY.removeprefix("/run/"), "", 0o644)  # hide_binary's stand-in


def _start_host(name: str) -> None:
    d = host_dir(name)
    _spawn_root(_in_netns(name, [
        "unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "--mount-proc", "--propagation", "private",
        SYSTEM_PYTHON, str(INIT_SCRIPT), str(d), name,
    ]), d / "lab" / "unshare.pid", d / "lab" / "init.log")


def _await_host(name: str) -> int:
    d = host_dir(name)
    err = d / "lab" / "init.error"

    def ready() -> bool:
        if err.exists():
            raise LabError(f"lab host {name} failed to start: {err.read_text().strip()}")
        return (d / "run" / "lab-init.ready").exists()

    _wait_for(f"lab host {name}'s init to mount its private directories", ready, 10,
              detail=lambda: _tail(d / "lab" / "init.log"))
    pid = None

    def found() -> bool:
        nonlocal pid
        pid = _init_pid(name)
        return pid is not None

    _wait_for(f"lab host {name}'s init process", found, 5)
    assert pid is not None
    _write(d / "lab" / "init.pid", f"{pid}\n")
    return pid


def _start_sshd_now(name: str) -> None:
    host_exec(name, ["/usr/sbin/sshd", "-f", "/etc/ssh/sshd_config"], timeout=10)


def _await_sshd(name: str, timeout: float = 10) -> None:
    ip = HOSTS[name]
    _wait_for(f"sshd on {name} ({ip}:{SSH_PORT}) to answer with its banner", lambda: _ssh_ready(ip), timeout,
              detail=lambda: _tail(host_path(name, "/var/log") / "sshd.log"))


def write_known_hosts() -> None:
    """(Re)write LAB_DIR/known_hosts from each host's current host key (entries for the IP address)."""
    write_known_hosts_file(known_hosts_path(),
                           {ip: host_path(name, "/etc/ssh/ssh_host_ed25519_key.pub") for name, ip in HOSTS.items()})

def stop_sshd(name: str) -> None:
    """Stop the sshd listener on `name` (sessions already open live on, as with `systemctl stop ssh`)."""
    init = require_init_pid(name)
    hpid = _sshd_host_pid(name)
    if _host_proc_alive(init, hpid, "sshd"):
        host_exec(name, ["kill", "-TERM", str(hpid)], timeout=10)
        _wait_for(f"sshd on {name} to exit", lambda: not _host_proc_alive(init, hpid, "sshd"), 10)
    ip = HOSTS[name]
    _wait_for(f"{ip}:{SSH_PORT} to refuse connections", lambda: _tcp_refused(ip, SSH_PORT), 5)


def start_sshd(name: str) -> None:
    init = require_init_pid(name)
    if not _host_proc_alive(init, _sshd_host_pid(name), "sshd"):
        _start_sshd_now(name)
    _await_sshd(name)


def regenerate_host_key(name: str) -> None:
    """Give `name` a new host key and restart its sshd; LAB_DIR/known_hosts keeps the old one (call
    :func:`write_known_hosts` to accept the new key)."""
    require_init_pid(name)
    stop_sshd(name)
    _gen_host_key(host_path(name, "/etc/ssh"))
    start_sshd(name)
