"""The monitor's memory: commit rate and flow control per poll, and changes in words."""

from __future__ import annotations

from tests.tui.conftest import T0, degraded, healthy
from wizard.profile import Profile
from wizard.tui.history import History, diff_status


def test_commit_rate_is_the_seqno_delta_per_second(profile: Profile) -> None:
    h = History()
    h.add(healthy(profile, T0, 1000))
    h.add(healthy(profile, T0 + 2, 1010))
    h.add(healthy(profile, T0 + 4, 1010, fc=0.25))  # an accumulated fraction: not flow control now
    assert list(h.commit_rate) == [5.0, 0.0]
    assert list(h.flow_control) == [0.0, 0.0, 0.0]


def test_flow_control_is_the_paused_time_between_polls(profile: Profile) -> None:
    h = History()
    h.add(healthy(profile, T0, 1000))
    for ns in h.last.nodes if h.last else []:
        ns.wsrep["wsrep_flow_control_paused_ns"] = "1000000000"
    later = healthy(profile, T0 + 2, 1010)
    for ns in later.nodes:
        if ns.wsrep:
            ns.wsrep["wsrep_flow_control_paused_ns"] = "1500000000"
            ns.wsrep["wsrep_replicated_bytes"] = ns.wsrep["wsrep_received_bytes"] = "0"
    h.add(later)
    assert list(h.flow_control) == [0.0, 0.25]
    assert h.flows["studio1"].paused == 0.25 and h.flows["studio1"].bytes_per_s is None


def test_a_restarted_counter_is_not_a_negative_rate(profile: Profile) -> None:
    h = History()
    h.add(healthy(profile, T0, 1000))
    h.add(healthy(profile, T0 + 2, 10))
    assert list(h.commit_rate) == [0.0]


def test_partition_is_told_once_per_change(profile: Profile) -> None:
    first = diff_status(None, healthy(profile, T0, 1))
    assert len(first) == 1 and "healthy" in first[0].text
    texts = [e.text for e in diff_status(healthy(profile, T0, 1), degraded(profile, T0 + 2, 2))]
    assert any(t.startswith("verdict healthy -> degraded") for t in texts)
    assert "studio2 left the Primary Component" in texts
    assert any(t.startswith("studio2 unreachable") for t in texts)
    assert "studio1 sees cluster size 3 -> 2" in texts
    assert not any("garbd" in t for t in texts), texts  # garbd's uuid is still among studio1's members
    assert not any("Synced -> -" in t for t in texts)
    assert diff_status(degraded(profile, T0 + 2, 2), degraded(profile, T0 + 4, 3)) == []
    back = [e.text for e in diff_status(degraded(profile, T0 + 4, 3), healthy(profile, T0 + 6, 4))]
    assert "studio2 joined the Primary Component" in back and "studio2 reachable again" in back
