"""Fault injection for tests: blocked ports, partitions, hidden binaries, and undoing all of it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from wizard.lab.hosts import _init_pid, require_init_pid, start_sshd, write_known_hosts
from wizard.lab.infra import set_authoring_record, start_redis
from wizard.lab.layout import FAULT_COMMENT, HIDDEN_EMPTY, HOSTS, LabError, _check_host
from wizard.lab.netns import _in_netns, _netns_ident
from wizard.lab.processes import _run, _unescape


def _iptables(name: str, action: str, port: int, proto: str) -> subprocess.CompletedProcess[str]:
    return _run(_in_netns(name, ["iptables", "-w", "5", action, "INPUT", "-p", proto, "--dport", str(port),
                                 "-m", "comment", "--comment", FAULT_COMMENT, "-j", "DROP"]), check=False)


def block_port(name: str, port: int, proto: str = "tcp") -> None:
    """Silently drop incoming `proto` packets to `port` on host `name` (iptables in its netns)."""
    require_init_pid(name)
    if _iptables(name, "-C", port, proto).returncode != 0:
        proc = _iptables(name, "-I", port, proto)
        if proc.returncode != 0:
            raise LabError(f"iptables on {name} failed: {proc.stderr.strip()}")


def unblock_port(name: str, port: int, proto: str = "tcp") -> None:
    _check_host(name)
    if _netns_ident(name) is None:
        return
    while _iptables(name, "-C", port, proto).returncode == 0:
        proc = _iptables(name, "-D", port, proto)
        if proc.returncode != 0:
            raise LabError(f"iptables on {name} failed: {proc.stderr.strip()}")


def _mounted_over(init_pid: int, path: str) -> bool:
    try:
        text = Path(f"/proc/{init_pid}/mountinfo").read_text()
    except OSError:
        return False
    return any(_unescape(line.split()[4]) == path for line in text.splitlines())


def hide_binary(name: str, path: str) -> None:
    """Make `path` (e.g. /usr/bin/garbd) an empty, non-executable file inside host `name` only."""
    init = require_init_pid(name)
    if not os.path.exists(f"/proc/{init}/root{path}"):
        raise LabError(f"{path} does not exist on {name}")
    if _mounted_over(init, path):
        return
    _run(["nsenter", "-t", str(init), "-a", "mount", "--bind", HIDDEN_EMPTY, path])


def unhide_binary(name: str, path: str) -> None:
    init = require_init_pid(name)
    while _mounted_over(init, path):
        _run(["nsenter", "-t", str(init), "-a", "umount", path])


def clear_faults() -> None:
    """Undo every fault helper: ports unblocked, binaries unhidden, sshd and Redis running, default
    authoring record, known_hosts matching the real host keys."""
    for name in HOSTS:
        if _netns_ident(name) is not None:
            _run(_in_netns(name, ["sh", "-c", f"iptables-save | grep -q -- '{FAULT_COMMENT}' || exit 0; "
                                  f"iptables-save | grep -v -- '{FAULT_COMMENT}' | iptables-restore"]))
        init = _init_pid(name)
        if init is None:
            continue
        for line in Path(f"/proc/{init}/mountinfo").read_text().splitlines():
            f = line.split()
            if _unescape(f[3]).endswith(HIDDEN_EMPTY):
                _run(["nsenter", "-t", str(init), "-a", "umount", _unescape(f[4])], check=False)
        start_sshd(name)
    start_redis()
    from wizard import labredis

    labredis.repair()
    labredis.await_healthy()
    set_authoring_record(None)
    write_known_hosts()


LAB_IFACE = "eth0"  # every host's one interface on the lab bridge


def _partition_rules(name: str, action: str) -> list[subprocess.CompletedProcess[str]]:
    return [_run(_in_netns(name, ["iptables", "-w", "5", action, chain, flag, LAB_IFACE, "-m", "comment",
                                  "--comment", FAULT_COMMENT, "-j", "DROP"]), check=False)
            for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o"))]


def partition(name: str) -> None:
    """Cut host `name` off the lab network: drop every packet in and out of its lab interface (its
    loopback, unix sockets and :func:`host_exec` keep working).  Undone by :func:`heal` or
    :func:`clear_faults`."""
    require_init_pid(name)
    if all(p.returncode == 0 for p in _partition_rules(name, "-C")):
        return
    for proc in _partition_rules(name, "-I"):
        if proc.returncode != 0:
            raise LabError(f"iptables on {name} failed: {proc.stderr.strip()}")


def heal(name: str) -> None:
    """Undo :func:`partition` on host `name` (idempotent)."""
    _check_host(name)
    if _netns_ident(name) is None:
        return
    while any(p.returncode == 0 for p in _partition_rules(name, "-C")):
        for proc in _partition_rules(name, "-D"):
            if proc.returncode != 0 and "does a matching rule exist" not in proc.stderr:
                raise LabError(f"iptables on {name} failed: {proc.stderr.strip()}")
