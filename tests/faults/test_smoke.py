"""One short seeded fault schedule on the real lab (the full suite is ``make faults``): the product's
``recover`` alone brings the cluster back after each fault, no acknowledged write is lost, the nodes agree,
and there is never a second Primary Component.  STUDIO_FAULTS_SEED picks another seed."""

from __future__ import annotations

import os

import pytest

from tests.faults.suite import Suite, findings, summarize, table


@pytest.mark.timeout(600)
def test_a_short_schedule_loses_nothing() -> None:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    seed = int(os.environ.get("STUDIO_FAULTS_SEED", "7"))
    suite = Suite(seed, short=True, say=print)
    for index in range(1):  # one (make test's time budget: each takes about 40 s); make faults runs 20
        suite.run_schedule(index)
    summary = summarize(suite.results)
    report = table(summary) + "\n" + "\n".join(findings(suite.results, seed, " --short"))
    print(report)
    assert summary["acked"] > 0, "the writer never got a commit acknowledged:\n" + report
    assert summary["lost"] == 0 and summary["unverified"] == 0, report
    assert summary["split_brain"] == 0, report
    assert summary["node_diff"] == 0 and summary["config_problems"] == 0, report
    assert summary["failed_recoveries"] == 0, report
