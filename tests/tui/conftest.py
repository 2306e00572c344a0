"""Shared fixtures of the TUI tests: real core values (profiles, check results, statuses) to draw.

Screens that show data from a cluster get it through their public methods (show_result, show_plan,
show_status, ...): that is rendering pure data, not mocking a service.  Clocks are pinned to UTC so
timestamps in snapshots do not depend on where the tests run.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wizard.profile import Profile, validate_profile
from wizard.secrets import Secrets
from wizard.status import ClusterStatus, NodeStatus, verdict_of

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def profile_data() -> dict[str, Any]:
    """A valid profile dict (no key files, so it validates on any machine)."""
    def node(name: str, role: str, addr: str) -> dict[str, Any]:
        return {"name": name, "role": role, "address": addr, "ssh": {"user": "root", "port": 22}}

    return copy.deepcopy({
        "cluster_name": "studio-prod",
        "nodes": [node("studio1", "studio", "10.20.0.11"), node("studio2", "studio", "10.20.0.12"),
                  node("arbiter", "arbiter", "10.20.0.13")],
        "preferred_primary": "studio1",
        "dns": {"authoring_name": "authoring.example.com", "servers": ["10.20.0.53"]},
        "redis": {"url": "redis://10.20.0.20:6379/0", "password": "env:TUI_TEST_REDIS_PASSWORD"},
        "database": {"sst_password": "env:TUI_TEST_SST_PASSWORD", "admin_password": "none"},
    })


@pytest.fixture
def data() -> dict[str, Any]:
    return profile_data()


@pytest.fixture
def profile() -> Profile:
    return validate_profile(profile_data())


@pytest.fixture
def secrets() -> Secrets:
    return Secrets("sst-secret-value", None, "redis-secret-value")


WSREP_SYNCED = {
    "wsrep_cluster_status": "Primary", "wsrep_cluster_size": "3", "wsrep_local_state_comment": "Synced",
    "wsrep_ready": "ON", "wsrep_connected": "ON", "wsrep_cluster_state_uuid": "6f1c6a3e-0000-11f0-9e1a-0242ac120002",
    "wsrep_local_state_uuid": "6f1c6a3e-0000-11f0-9e1a-0242ac120002", "wsrep_flow_control_paused": "0.000000",
    "wsrep_local_recv_queue": "0", "wsrep_cluster_conf_id": "3", "wsrep_local_commits": "0",
}


def node_status(name: str, role: str, address: str, *, seqno: int = 0, fc: float = 0.0, hb: float | None = 0.8,
                **wsrep: str) -> NodeStatus:
    if role == "arbiter":
        return NodeStatus(name, role, address, reachable=True, heartbeat_age=hb, process_running=True)
    w = dict(WSREP_SYNCED, wsrep_last_committed=str(seqno), wsrep_flow_control_paused=f"{fc:.6f}",
             wsrep_local_commits=str(seqno // 2))
    w.update(wsrep)
    return NodeStatus(name, role, address, reachable=True, wsrep=w, heartbeat_age=hb, process_running=True)


def cluster_status(profile: Profile, nodes: list[NodeStatus], ts: float, *,
                   authoring: str | None = "studio1") -> ClusterStatus:
    """A ClusterStatus whose verdict comes from the core's own verdict_of."""
    verdict, reason, members, agree, arb = verdict_of(profile, nodes)
    addrs = {n.name: n.address for n in profile.nodes}
    return ClusterStatus(profile.cluster_name, nodes, verdict, reason, members, agree,
                         [addrs[authoring]] if authoring else [], authoring, arb, ts=ts)


UUIDS = {"studio1": "a1a1a1a1-0000-11f0-0000-000000000001", "studio2": "b2b2b2b2-0000-11f0-0000-000000000002",
         "arbiter": "c3c3c3c3-0000-11f0-0000-000000000003"}  # gcomm identities: who is in a component


def _identified(ns: NodeStatus, members: list[str]) -> NodeStatus:
    if ns.role == "arbiter":
        ns.garbd_uuid = UUIDS[ns.name]
    else:
        ns.wsrep["wsrep_gcomm_uuid"] = UUIDS[ns.name]
        ns.members = [UUIDS[m] for m in members]
    return ns


def healthy(profile: Profile, ts: float, seqno: int, fc: float = 0.0) -> ClusterStatus:
    everyone = ["studio1", "studio2", "arbiter"]
    return cluster_status(profile, [
        _identified(node_status("studio1", "studio", "10.20.0.11", seqno=seqno, fc=fc, hb=0.6), everyone),
        _identified(node_status("studio2", "studio", "10.20.0.12", seqno=seqno, fc=fc / 2, hb=1.1), everyone),
        _identified(node_status("arbiter", "arbiter", "10.20.0.13", hb=0.9), everyone),
    ], ts)


def degraded(profile: Profile, ts: float, seqno: int) -> ClusterStatus:
    """studio2 partitioned away: unreachable; studio1 Primary with garbd (size 2)."""
    studio2 = NodeStatus("studio2", "studio", "10.20.0.12", reachable=False,
                         error="no answer from 10.20.0.12:22 within 5.0s", heartbeat_age=31.0)
    rest = ["studio1", "arbiter"]
    return cluster_status(profile, [
        _identified(node_status("studio1", "studio", "10.20.0.11", seqno=seqno, hb=0.7, wsrep_cluster_size="2",
                                wsrep_cluster_conf_id="4"), rest),
        studio2,
        _identified(node_status("arbiter", "arbiter", "10.20.0.13", hb=1.0), rest),
    ], ts)
