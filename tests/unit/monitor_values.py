"""Real ClusterStatus values for the monitor's pure logic: a healthy cluster, a dead data node, a
restarted garbd, built the way :func:`wizard.status.collect` builds them (verdict from ``verdict_of``)."""

from __future__ import annotations

import copy
from typing import Any

from wizard.profile import Profile, validate_profile
from wizard.status import ClusterStatus, NodeStatus, verdict_of

T0 = 1_767_225_600.0
U1, U2, UG = "11111111-aaaa", "22222222-bbbb", "99999999-gggg"  # gcomm uuids: studio1, studio2, garbd


def lab_profile() -> Profile:
    def node(name: str, role: str, addr: str) -> dict[str, Any]:
        return {"name": name, "role": role, "address": addr, "ssh": {"user": "root", "port": 22}}

    return validate_profile(copy.deepcopy({
        "cluster_name": "studio-prod",
        "nodes": [node("studio1", "studio", "10.20.0.11"), node("studio2", "studio", "10.20.0.12"),
                  node("arbiter", "arbiter", "10.20.0.13")],
        "preferred_primary": "studio1",
        "dns": {"authoring_name": "authoring.example.com", "servers": ["10.20.0.53"]},
        "redis": {"url": "redis://10.20.0.20:6379/0", "password": "env:UNIT_REDIS_PASSWORD"},
        "database": {"sst_password": "env:UNIT_SST_PASSWORD", "admin_password": "none"},
    }))


def data_node(name: str, uuid: str, members: list[str], *, seqno: int = 100, paused_ns: int = 0,
              sent: int = 0, received: int = 0, cert: int = 0, uptime: int = 1000, **extra: str) -> NodeStatus:
    w = {"wsrep_cluster_status": "Primary", "wsrep_cluster_size": str(len(members)),
         "wsrep_local_state_comment": "Synced", "wsrep_ready": "ON", "wsrep_connected": "ON",
         "wsrep_cluster_state_uuid": "6f1c6a3e-0000", "wsrep_cluster_conf_id": str(len(members)),
         "wsrep_last_committed": str(seqno), "wsrep_gcomm_uuid": uuid,
         "wsrep_flow_control_paused_ns": str(paused_ns), "wsrep_flow_control_paused": "0.000000",
         "wsrep_local_send_queue": "0", "wsrep_local_recv_queue": "0", "wsrep_local_cert_failures": str(cert),
         "wsrep_replicated_bytes": str(sent), "wsrep_received_bytes": str(received), "Uptime": str(uptime)}
    w.update(extra)
    return NodeStatus(name, "studio", "10.20.0.1" + name[-1], reachable=True, wsrep=w, process_running=True,
                      heartbeat_age=0.5, members=list(members))


def stopped(name: str) -> NodeStatus:
    return NodeStatus(name, "studio", "10.20.0.1" + name[-1], reachable=True, process_running=False,
                      heartbeat_age=20.0)


def garbd(uuid: str = UG, running: bool = True) -> NodeStatus:
    return NodeStatus("arbiter", "arbiter", "10.20.0.13", reachable=True, process_running=running,
                      garbd_uuid=uuid if running else "", heartbeat_age=0.5)


def status(profile: Profile, nodes: list[NodeStatus], ts: float = T0) -> ClusterStatus:
    verdict, reason, members, agree, arb = verdict_of(profile, nodes)
    return ClusterStatus(profile.cluster_name, nodes, verdict, reason, members, agree, ["10.20.0.11"], "studio1",
                         arb, ts=ts)


def healthy(profile: Profile, ts: float = T0, **kw: Any) -> ClusterStatus:
    members = [U1, U2, UG]
    return status(profile, [data_node("studio1", U1, members, **kw), data_node("studio2", U2, members, **kw),
                            garbd()], ts)


def studio2_dead(profile: Profile, ts: float = T0, **kw: Any) -> ClusterStatus:
    """studio2's mariadbd stopped: studio1 (``kw``: its figures) and garbd form a component of two."""
    return status(profile, [data_node("studio1", U1, [U1, UG], **kw), stopped("studio2"), garbd()], ts)
