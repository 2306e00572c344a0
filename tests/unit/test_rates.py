"""Flow control now (the paused_ns delta), queues, certification failures and bytes/s between two polls."""

from __future__ import annotations

from tests.unit.monitor_values import T0, healthy, lab_profile, studio2_dead
from wizard.rates import busiest_bytes_per_s, commit_counter, flows, human_rate, worst_paused


def test_paused_is_the_ns_delta_over_the_interval() -> None:
    p = lab_profile()
    a = healthy(p, T0, paused_ns=5_000_000_000, sent=1000, received=500, cert=2)
    b = healthy(p, T0 + 2, paused_ns=5_500_000_000, sent=401_000, received=200_500, cert=5)
    f = flows(a, b)["studio1"]
    assert f.paused == 0.25
    assert f.bytes_per_s == (400_000 + 200_000) / 2
    assert f.cert_failures == 5 and f.new_cert_failures == 3
    assert f.send_queue == 0 and f.recv_queue == 0
    assert worst_paused(flows(a, b)) == 0.25 and busiest_bytes_per_s(flows(a, b)) == 300_000.0


def test_a_large_accumulated_fraction_is_not_now() -> None:
    p = lab_profile()
    a = healthy(p, T0, paused_ns=9_000_000_000, wsrep_flow_control_paused="0.900000")
    b = healthy(p, T0 + 2, paused_ns=9_000_000_000, wsrep_flow_control_paused="0.890000")
    assert worst_paused(flows(a, b)) == 0.0


def test_first_poll_has_queues_but_no_deltas() -> None:
    f = flows(None, healthy(lab_profile(), wsrep_local_recv_queue="7"))["studio2"]
    assert f.paused is None and f.bytes_per_s is None and f.new_cert_failures is None
    assert f.recv_queue == 7 and f.cert_failures == 0


def test_a_restart_or_flush_status_gives_no_rate() -> None:
    p = lab_profile()
    a = healthy(p, T0, paused_ns=5_000_000_000, sent=10_000, uptime=5000)
    restarted = healthy(p, T0 + 2, paused_ns=1_000, sent=20_000, uptime=3)
    f = flows(a, restarted)["studio1"]
    assert f.paused is None and f.bytes_per_s is None
    flushed = healthy(p, T0 + 2, paused_ns=0, sent=0, uptime=5002)  # FLUSH STATUS: same server, counters reset
    f = flows(a, flushed)["studio1"]
    assert f.paused is None and f.bytes_per_s is None


def test_paused_never_exceeds_the_interval_and_missing_keys_give_none() -> None:
    p = lab_profile()
    a = healthy(p, T0, paused_ns=0)
    b = healthy(p, T0 + 1, paused_ns=3_000_000_000)  # polls are stamped before collection ends
    assert flows(a, b)["studio1"].paused == 1.0
    c = healthy(p, T0 + 2, paused_ns=3_000_000_000)
    del c.node("studio1").wsrep["wsrep_flow_control_paused_ns"]
    assert flows(b, c)["studio1"].paused is None and flows(b, c)["studio2"].paused == 0.0


def test_stopped_nodes_have_no_figures_and_the_commit_counter_is_the_highest_seqno() -> None:
    p = lab_profile()
    assert set(flows(healthy(p), studio2_dead(p, T0 + 2))) == {"studio1"}
    assert commit_counter(healthy(p, seqno=42)) == 42


def test_human_rate() -> None:
    assert [human_rate(v) for v in (None, 0, 812, 12_400, 1_250_000, 25e9)] == ["-", "0", "812", "12K", "1.2M", "25G"]
