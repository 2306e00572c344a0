"""What is up: the lab's status, read from pid files, namespaces and the services' answers."""

from __future__ import annotations

from dataclasses import dataclass, field

from wizard.lab.hosts import _init_pid, _sshd_alive
from wizard.lab.infra import _pdns_ok, _pdns_pid, _redis_ok, _redis_pid
from wizard.lab.layout import BRIDGE, BRIDGE_ADDR, HOSTS, INFRA
from wizard.lab.netns import _lab_netns_present, _netns_ident
from wizard.lab.processes import _link_exists


@dataclass
class HostStatus:
    name: str
    ip: str
    netns: bool = False
    init_pid: int | None = None
    init_alive: bool = False
    sshd: bool = False

    @property
    def up(self) -> bool:
        return self.netns and self.init_alive and self.sshd


@dataclass
class LabStatus:
    bridge: bool = False
    hosts: dict[str, HostStatus] = field(default_factory=dict)
    infra_netns: bool = False
    redis: bool = False
    pdns: bool = False
    sentinel: bool = False  # a Redis + Sentinel on every host: one master, every replica linked, all agree
    sentinel_line: str = ""

    @property
    def structure_ok(self) -> bool:
        """Bridge, namespaces and host inits are in place (services may still be down)."""
        return (self.bridge and self.infra_netns and len(self.hosts) == len(HOSTS)
                and all(h.netns and h.init_alive for h in self.hosts.values()))

    @property
    def all_up(self) -> bool:
        return (self.structure_ok and all(h.up for h in self.hosts.values()) and self.redis and self.pdns
                and self.sentinel)

    @property
    def anything_present(self) -> bool:
        return (self.bridge or self.infra_netns or bool(_lab_netns_present())
                or any(h.netns or h.init_alive for h in self.hosts.values()))

    def table(self) -> str:
        def yn(b: bool) -> str:
            return "up" if b else "DOWN"

        rows = [f"{'host':<9} {'address':<13} {'netns':<6} {'init':<14} {'sshd':<5}"]
        for h in self.hosts.values():
            init = f"up (pid {h.init_pid})" if h.init_alive else "DOWN"
            rows.append(f"{h.name:<9} {h.ip:<13} {yn(h.netns):<6} {init:<14} {yn(h.sshd):<5}")
        rows.append(f"{INFRA[0]:<9} {INFRA[1]:<13} {yn(self.infra_netns):<6} "
                    f"redis {yn(self.redis)}, pdns {yn(self.pdns)}")
        rows.append(self.sentinel_line or "sentinel: DOWN")
        rows.append(f"bridge {BRIDGE} {BRIDGE_ADDR}: {yn(self.bridge)}; lab is "
                    + ("UP" if self.all_up else "NOT up"))
        return "\n".join(rows)


def status() -> LabStatus:
    st = LabStatus(bridge=_link_exists(BRIDGE), infra_netns=_netns_ident(INFRA[0]) is not None)
    for name, ip in HOSTS.items():
        hs = HostStatus(name=name, ip=ip, netns=_netns_ident(name) is not None)
        hs.init_pid = _init_pid(name) if hs.netns else None
        hs.init_alive = hs.init_pid is not None
        hs.sshd = _sshd_alive(name, hs.init_pid)
        st.hosts[name] = hs
    st.redis = _redis_pid() is not None and _redis_ok()
    st.pdns = _pdns_pid() is not None and _pdns_ok()
    if st.structure_ok:
        from wizard import labredis

        health = labredis.health()
        st.sentinel, st.sentinel_line = health.ok, labredis.describe(health)
    return st
