"""PID 1 of one lab host (run by /usr/bin/python3, standard library only; see wizard/lab/hosts.py).

`wizard.lab` starts this inside the host's network namespace under
``unshare --mount --uts --ipc --pid --fork --mount-proc --propagation private``, so it is PID 1 of a
fresh pid namespace with a private mount table.  It:

1. bind-mounts the host's private directories (all under ``LAB_DIR/hosts/<name>/``) over the machine's
   ``/etc/mysql``, ``/var/lib/mysql``, ``/run``, ``/var/log``, ``/root``, ``/etc/ssh``, ``/etc/hosts``,
   ``/etc/hostname``, ``/etc/resolv.conf`` and ``/tmp`` -- only in this mount namespace;
2. sets the hostname (private UTS namespace);
3. writes ``/run/lab-init.ready`` (the lab waits for it), or ``lab/init.error`` on failure and exits;
4. reaps every child and orphan forever, so a killed mariadbd never lingers as a zombie.

SIGTERM or SIGINT makes it exit; the kernel then kills everything else in the host.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys

# (path inside the host dir, mount point in the host)
BINDS = (
    ("etc/mysql", "/etc/mysql"),
    ("var/lib/mysql", "/var/lib/mysql"),
    ("run", "/run"),
    ("var/log", "/var/log"),
    ("root", "/root"),
    ("etc/ssh", "/etc/ssh"),
    ("etc/hosts", "/etc/hosts"),
    ("etc/hostname", "/etc/hostname"),
    ("etc/resolv.conf", "/etc/resolv.conf"),
    ("tmp", "/tmp"),
    # what the cluster writes besides MariaDB's own dirs: garbd's settings and state, Crafter's
    # overrides, and the backups apply makes of replaced files
    ("etc/default", "/etc/default"),
    ("var/lib/garbd", "/var/lib/garbd"),
    ("opt", "/opt"),
    ("var/backups", "/var/backups"),
    # the agent's persistent copy and settings, and the scheduled backups' cron line (never the machine's own)
    ("var/lib/studio-cluster", "/var/lib/studio-cluster"),
    ("etc/studio-cluster", "/etc/studio-cluster"),
    ("etc/cron.d", "/etc/cron.d"),
)


def _mount_cmd(*argv: str) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")


def _mount(*args: str) -> None:
    _mount_cmd("mount", *args)


def setup(hostdir: str, hostname: str) -> None:
    # The copy of the machine's /run/netns would pin every lab namespace for this host's lifetime.
    with open("/proc/self/mountinfo") as f:
        mounted = any(line.split()[4] == "/run/netns" for line in f)
    if mounted:
        with contextlib.suppress(RuntimeError):
            _mount_cmd("umount", "--recursive", "--lazy", "/run/netns")
    for rel, target in BINDS:
        source = os.path.join(hostdir, rel)
        if not os.path.exists(target):
            raise RuntimeError(f"{target} does not exist on this machine (is mariadb-server installed?)")
        _mount("--bind", source, target)
    # A sysfs of this network namespace, so /sys/class/net shows the host's own interfaces.
    with contextlib.suppress(RuntimeError):
        _mount("-t", "sysfs", "sysfs", "/sys")
    socket.sethostname(hostname)
    with open("/run/lab-init.ready", "w") as f:
        f.write(f"{hostname}\n")


def reap_forever() -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    # SIGCHLD stays blocked and is collected with sigtimedwait: no race between "no children left"
    # and an orphan being re-parented to us and dying.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    while True:
        try:
            while True:
                pid, _ = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
        except ChildProcessError:
            pass
        signal.sigtimedwait({signal.SIGCHLD}, 5.0)


def main() -> None:
    hostdir, hostname = sys.argv[1], sys.argv[2]
    try:
        setup(hostdir, hostname)
    except Exception as exc:
        with open(os.path.join(hostdir, "lab", "init.error"), "w") as f:
            f.write(f"{exc}\n")
        sys.exit(1)
    sys.stdin.close()
    reap_forever()


if __name__ == "__main__":
    main()
