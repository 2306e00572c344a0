"""``status`` shows the backups on real hosts: a backup taken, then a failed one with its reason, then an
Arbiter that cannot be reached for the catalog; the verdict stays about serving throughout."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizard import cli, lab
from wizard.backups import BackupError
from wizard.backups.catalog import list_backups
from wizard.backups.take import take
from wizard.pipeline import replay
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets
from wizard.status import collect

LAB_PROFILE = Path(__file__).resolve().parents[2] / "profiles" / "lab.yaml"


@pytest.fixture(scope="module")
def cluster(profile: Profile, secrets: Secrets) -> Iterator[None]:
    replay(profile, secrets, skip_checks=True)
    yield
    lab.down(progress=lambda _m: None)  # the modules after this one expect fresh hosts (as test_backups says)
    lab.up(progress=lambda _m: None)


def status_json(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    code = cli.main(["status", str(LAB_PROFILE), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_status_shows_a_backup_taken_and_then_a_failed_one_with_its_reason(
        cluster: None, profile: Profile, secrets: Secrets, remote: Remote, capsys: pytest.CaptureFixture[str]) -> None:
    result = take(profile, secrets, remote)
    started = time.monotonic()
    code, doc = status_json(capsys)
    print(f"status --json with the catalog: {time.monotonic() - started:.2f}s")
    backups = doc["backups"]
    assert isinstance(backups, dict) and backups["known"], backups
    assert backups["newest_complete"]["id"] == result.id and backups["newest_complete"]["state"] == "complete"
    assert backups["last_failure"] is None and backups["warnings"] == [], backups
    assert code == 0 and doc["verdict"] == "healthy", doc["reason"]
    assert cli.main(["status", str(LAB_PROFILE)]) == 0
    text = capsys.readouterr().out
    assert f"backups: newest complete {result.id}, " in text and ", complete" in text
    assert "warning:" not in text

    # a failed backup: the receiver frozen and killed as garbd asks (as in test_backups)
    before = {e.id for e in list_backups(profile, remote)}

    def kill_receiver(message: str) -> None:
        if "asked" not in message:
            return
        arb = remote[profile.arbiter.name]
        arb.run(["pkill", "-STOP", "-f", "[.]studio-cluster-receiver[.]py"])
        new = [e for e in list_backups(profile, remote) if e.id not in before]
        pid = arb.run(["python3", "-c", "import json,sys; print(json.load(open(sys.argv[1]))['pid'])",
                       f"{new[0].path}/receiver.json"]).stdout.strip()
        arb.run(["kill", "-9", pid])

    with pytest.raises(BackupError):
        take(profile, secrets, remote, on_note=kill_receiver)
    failed = [e for e in list_backups(profile, remote) if e.id not in before]
    assert len(failed) == 1 and failed[0].state == "failed", failed
    code, doc = status_json(capsys)
    backups = doc["backups"]
    assert isinstance(backups, dict)
    assert backups["last_failure"]["id"] == failed[0].id and backups["last_failure"]["reason"] == failed[0].reason
    assert backups["newest_complete"]["id"] == result.id
    assert any(w.startswith(f"the last backup {failed[0].id} failed") for w in backups["warnings"])
    # the warning is not the verdict: the cluster serves (the donor may still be catching up: wait for it)
    deadline = time.monotonic() + 60
    while doc["verdict"] != "healthy" and time.monotonic() < deadline:
        time.sleep(1)
        code, doc = status_json(capsys)
    assert code == 0 and doc["verdict"] == "healthy", doc["reason"]
    cli.main(["status", str(LAB_PROFILE)])
    text = capsys.readouterr().out
    print(text)
    words = " ".join(text.split())  # the console wraps at 120 columns
    assert f"warning: the last backup {failed[0].id} failed " in words and failed[0].reason in words


def test_an_arbiter_that_cannot_be_reached_makes_backups_unknown_not_a_failed_status(
        cluster: None, profile: Profile, secrets: Secrets) -> None:
    p = profile.model_copy(deep=True)
    p.arbiter.ssh.port = 2999  # nothing listens there: the Arbiter cannot be reached for anything
    with Remote(p) as remote:
        started = time.monotonic()
        st = collect(p, secrets, remote, timeout=3.0, backups=True)
        took = time.monotonic() - started
    print(f"status with the Arbiter unreachable: {took:.2f}s, backups: {st.backups}")
    assert st.backups is not None and st.backups["known"] is False
    assert "arbiter" in st.backups["error"] and st.backups["error"], st.backups
    assert st.verdict == "degraded" and "Arbiter unreachable" in st.reason  # about the cluster, as before


def test_reading_the_catalog_costs_status_little(cluster: None, profile: Profile, secrets: Secrets,
                                                 remote: Remote) -> None:
    collect(profile, secrets, remote, backups=True)  # connections opened
    plain, with_catalog = [], []
    for _ in range(5):
        started = time.monotonic()
        collect(profile, secrets, remote)
        plain.append(time.monotonic() - started)
        started = time.monotonic()
        collect(profile, secrets, remote, backups=True)
        with_catalog.append(time.monotonic() - started)
    print(f"status without the catalog: median {sorted(plain)[2]:.3f}s; with it: median {sorted(with_catalog)[2]:.3f}s")
    assert sorted(with_catalog)[2] < sorted(plain)[2] + 1.0
