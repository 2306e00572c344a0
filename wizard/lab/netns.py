"""The lab network: a bridge, one network namespace per host, and the processes inside them."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from wizard.lab.layout import (
    NET,
    Net,
    Progress,
)
from wizard.lab.processes import _pid_alive, _run


def _netns_ident(name: str) -> tuple[int, int] | None:
    return NET.netns_ident(name)


def _netns_pids(name: str) -> list[int]:
    """Live processes whose network namespace is the lab namespace `name` (like ``ip netns pids``)."""
    ident = _netns_ident(name)
    if ident is None:
        return []
    return _pids_in_net_ident(ident)


def _pids_in_net_ident(ident: tuple[int, int]) -> list[int]:
    pids = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == ident and _pid_alive(int(entry)):
            pids.append(int(entry))
    return pids


def _lab_netns_present() -> list[str]:
    """Names (without the prefix) of every ``sc-*`` network namespace that exists."""
    return NET.present()


def _in_netns(name: str, argv: Sequence[str]) -> list[str]:
    return NET.in_netns(name, argv)


def build_network(net: Net, progress: Progress) -> None:
    """Create `net`: its bridge with the root namespace's address, a namespace per host and the
    infrastructure host, each with eth0 on the bridge and its address; IPv6 off (no router solicitations
    or DAD on the lab wire); no default route."""
    progress(f"creating bridge {net.bridge} {net.bridge_addr} and namespaces")
    names = list(net.addresses)
    batch = [f"link add {net.bridge} type bridge", f"addr add {net.bridge_addr} dev {net.bridge}",
             f"link set {net.bridge} up"]
    batch += [f"netns add {net.netns_name(n)}" for n in names]
    _run(["ip", "-batch", "-"], input="\n".join(batch) + "\n")
    with contextlib.suppress(OSError):
        Path(f"/proc/sys/net/ipv6/conf/{net.bridge}/disable_ipv6").write_text("1")
    batch = []
    for n in names:
        batch += [f"link add {net.veth_prefix + n} type veth peer name eth0 netns {net.netns_name(n)}",
                  f"link set {net.veth_prefix + n} master {net.bridge} up"]
    _run(["ip", "-batch", "-"], input="\n".join(batch) + "\n")
    for n, address in net.addresses.items():
        with contextlib.suppress(OSError):
            Path(f"/proc/sys/net/ipv6/conf/{net.veth_prefix + n}/disable_ipv6").write_text("1")
        _run(net.in_netns(n, ["sh", "-c", "for f in all default eth0; do "
                                          "echo 1 > /proc/sys/net/ipv6/conf/$f/disable_ipv6; done"]), check=False)
        _run(["ip", "-n", net.netns_name(n), "-batch", "-"],
             input=f"addr add {address}/{net.prefix_len} dev eth0\nlink set eth0 up\nlink set lo up\n")


def _build_network(progress: Progress) -> None:
    build_network(NET, progress)
