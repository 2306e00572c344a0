"""The backups line of ``status`` (pure): newest complete, last failure, warnings, and the JSON round trip."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from wizard import cli
from wizard.backups.catalog import Entry, classify
from wizard.backups.health import DEFAULT_MAX_AGE_S, BackupHealth, max_age_for, summarize, unknown
from wizard.monitor_record import status_from_dict
from wizard.status import ClusterStatus

NOW = 1_767_225_600.0
HOUR = 3600.0


def raw(bid: str, *, manifest: dict[str, Any] | None = None, failure: dict[str, Any] | None = None,
        verify: dict[str, Any] | None = None, receiver: dict[str, Any] | None = None,
        alive: bool = False) -> dict[str, Any]:
    return {"id": bid, "path": f"/b/{bid}", "manifest": manifest, "receiver": receiver or {},
            "receiver_alive": alive, "failure": failure, "verify": verify, "partial_size": 1234, "mtime": NOW}


def complete(bid: str, age_h: float, *, verify: dict[str, Any] | None = None) -> Entry:
    m = {"complete": True, "started_epoch": NOW - age_h * HOUR, "size": 17_900_000, "donor": "studio2",
         "position": {"uuid": "u1", "seqno": 42}, "gtid": None}
    return classify(raw(bid, manifest=m, verify=verify), NOW)


def failed(bid: str, age_h: float, reason: str) -> Entry:
    return classify(raw(bid, receiver={"state": "failed", "started": NOW - age_h * HOUR, "reason": reason},
                        failure={"reason": reason}), NOW)


def running(bid: str, age_h: float) -> Entry:
    return classify(raw(bid, receiver={"state": "receiving", "started": NOW - age_h * HOUR}, alive=True), NOW)


def test_a_fresh_verified_backup_is_quiet() -> None:
    h = summarize([complete("b1-studio2", 3, verify={"ok": True, "summary": "36 tables ok", "verified_epoch": NOW})],
                  NOW)
    assert h.known and h.count == 1 and not h.warnings and h.last_failure is None
    assert h.newest_complete is not None and h.newest_complete["state"] == "verified"
    assert h.line() == "backups: newest complete b1-studio2, 3.0h old, 17.9 MB, verified"


def test_the_newest_failed_backup_is_a_warning_with_its_reason() -> None:
    h = summarize([complete("a-studio2", 5), failed("b-studio2", 1, "the Arbiter's backup disk is full")], NOW)
    assert h.newest_complete is not None and h.newest_complete["id"] == "a-studio2"
    assert h.last_failure is not None and h.last_failure["reason"] == "the Arbiter's backup disk is full"
    assert h.warnings == ["the last backup b-studio2 failed 60m ago: the Arbiter's backup disk is full"]


def test_a_failure_followed_by_a_complete_backup_is_no_longer_a_warning() -> None:
    h = summarize([failed("a-studio2", 5, "killed"), complete("b-studio2", 1)], NOW)
    assert h.last_failure is None and not h.warnings


def test_an_old_newest_backup_or_none_at_all_is_a_warning() -> None:
    old = summarize([complete("a-studio2", 30)], NOW)
    assert old.warnings == ["no complete backup younger than 26.0h: the newest, a-studio2, is 30.0h old"]
    assert summarize([complete("a-studio2", 30)], NOW, max_age_s=48 * HOUR).warnings == []
    none = summarize([], NOW)
    assert none.newest_complete is None and none.warnings[0].startswith("no complete backup on the Arbiter")
    assert none.line() == "backups: no complete backup (0 in the catalog)"


def test_the_age_threshold_follows_the_schedule() -> None:
    assert max_age_for("hourly") == 3 * HOUR and max_age_for("daily") == 26 * HOUR
    assert max_age_for("02:30") == 26 * HOUR and max_age_for("weekly") == (7 * 24 + 2) * HOUR
    assert max_age_for(None) == DEFAULT_MAX_AGE_S
    assert summarize([complete("a-studio2", 3.5)], NOW, max_age_for("hourly")).warnings[0].startswith(
        "no complete backup younger than 3.0h")


def test_a_backup_in_progress_hides_neither_the_last_failure_nor_the_newest() -> None:
    h = summarize([complete("a-studio2", 2), failed("b-studio2", 1, "donor killed"), running("c-studio2", 0.01)], NOW)
    assert h.in_progress == "c-studio2" and h.last_failure is not None and h.last_failure["id"] == "b-studio2"
    assert h.line().endswith("; c-studio2 in progress")


def test_a_newest_backup_that_failed_verify_is_a_warning() -> None:
    h = summarize([complete("a-studio2", 1, verify={"ok": False, "summary": "2 tables corrupt"})], NOW)
    assert h.warnings == ["the newest complete backup a-studio2 failed verify: 2 tables corrupt"]


def test_unknown_says_why_and_round_trips_through_the_status_json() -> None:
    u = unknown("arbiter: no answer from 10.0.0.3:22 within 5.0s")
    assert u.line() == "backups unknown: arbiter: no answer from 10.0.0.3:22 within 5.0s" and not u.warnings
    h = summarize([complete("a-studio2", 1), failed("b-studio2", 0.5, "x")], NOW)
    assert BackupHealth.from_dict(h.to_dict()) == h
    st = ClusterStatus("c", [], "healthy", "ok", [], True, [], None, True, ts=NOW, backups=h.to_dict())
    assert status_from_dict(st.to_dict()) == st  # a recording keeps it
    assert h.max_age_s == DEFAULT_MAX_AGE_S


def test_the_status_command_prints_the_line_and_each_warning(monkeypatch: Any) -> None:
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=200, highlight=False))
    cli._print_backups(summarize([complete("a-studio2", 2), failed("b-studio2", 1, "donor killed")], NOW).to_dict())
    cli._print_backups(unknown("arbiter: unreachable").to_dict())
    cli._print_backups(None)
    assert out.getvalue().splitlines() == [
        "backups: newest complete a-studio2, 2.0h old, 17.9 MB, complete",
        "warning: the last backup b-studio2 failed 60m ago: donor killed",
        "backups unknown: arbiter: unreachable",
    ]
