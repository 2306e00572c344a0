"""status with tls.enabled: a node that holds no readable certificate (a TLS profile read against a cluster
formed without TLS) or an expired one degrades the verdict; valid ones do not (newcomer finding, issue 10)."""

from __future__ import annotations

from wizard.status import tls_problems


def test_a_node_without_a_certificate_degrades_and_says_run_replay() -> None:
    said = tls_problems({"studio1": {"error": "cannot read /etc/studio-cluster/tls/cert.pem"},
                         "studio2": {"error": "cannot read /etc/studio-cluster/tls/cert.pem"},
                         "arbiter": {"days": 800.0, "not_after": "2029-01-01T00:00:00Z"}})
    assert "TLS is on in the profile but studio1, studio2 hold no readable certificate" in said
    assert "run replay" in said


def test_an_expired_certificate_degrades_and_valid_ones_do_not() -> None:
    assert "studio2" in tls_problems({"studio1": {"days": 30.0}, "studio2": {"days": -1.0}})
    assert tls_problems({"studio1": {"days": 30.0}, "arbiter": {"days": 700.0}}) == ""
    assert tls_problems(None) == "" and tls_problems({}) == ""
