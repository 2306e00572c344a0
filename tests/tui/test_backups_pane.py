"""The monitor's Backups pane: a stub list source (pure data: real catalog Entries), progress coalescing,
failures in the error view, and snapshots at 80x24 and 160x48.  Nothing here talks to a cluster (the lab
test does: tests/tui/test_backups_pane_lab.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from tests.tui.test_monitor_screen import session
from tests.tui.test_snapshots import settle
from wizard.backups import BackupError
from wizard.backups.catalog import Entry, classify
from wizard.backups.take import Progress
from wizard.tui.app import WizardApp, create_app
from wizard.tui.screens.error import ErrorScreen
from wizard.tui.screens.monitor import MonitorScreen
from wizard.tui.widgets.backups_pane import Latest

HOUR = 3600.0


@pytest.fixture
def app(tmp_path: Path) -> WizardApp:
    return create_app(profiles_dir=tmp_path, runs_dir=tmp_path / "runs")


def catalog() -> list[Entry]:
    """Verified, complete, then a failed one (the newest): what a receiver and take leave on the Arbiter."""
    now = time.time()

    def done(bid: str, age_h: float, seqno: int, verify: dict[str, Any] | None = None) -> Entry:
        m = {"complete": True, "started_epoch": now - age_h * HOUR, "size": 17_900_000 + seqno, "donor": "studio2",
             "position": {"uuid": "6f1c6a3e-0000-11f0-9e1a-0242ac120002", "seqno": seqno}, "gtid": None}
        return classify({"id": bid, "path": f"/b/{bid}", "manifest": m, "verify": verify, "mtime": now}, now)

    failed = classify({"id": "20261130T180000Z-studio2", "path": "/b/f", "manifest": None, "mtime": now,
                       "receiver": {"state": "failed", "started": now - 0.5 * HOUR},
                       "failure": {"reason": "the Arbiter's backup disk is full (4 MB free)"},
                       "partial_size": 4_000_000}, now)
    return [done("20261129T090000Z-studio2", 26.5, 1201, {"ok": True, "verified_epoch": now}),
            done("20261130T090000Z-studio2", 9.5, 1342), failed]


def text_of(screen: MonitorScreen, selector: str) -> str:
    return " ".join(str(screen.query_one(selector, Static).render()).split())


async def test_the_pane_lists_the_catalog_and_the_last_failure_with_its_reason(app: WizardApp) -> None:
    reads: list[float] = []

    def source() -> list[Entry]:
        reads.append(time.monotonic())
        return catalog()

    async with app.run_test(size=(160, 48)) as pilot:
        screen = MonitorScreen(poll=False, backup_source=source, backup_interval=3600)
        await app.push_screen(screen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = screen.query_one("#mon-backup-table", DataTable)
        assert list(table.rows) == ["20261130T180000Z-studio2", "20261130T090000Z-studio2",
                                    "20261129T090000Z-studio2"]  # newest first
        assert [str(table.get_cell(k, "state")) for k in table.rows] == ["failed", "complete", "verified"]
        assert str(table.get_cell("20261130T090000Z-studio2", "position")) == "1342"
        assert str(table.get_cell("20261130T090000Z-studio2", "age")) == "9.5h"
        head = text_of(screen, "#mon-backup-head")
        assert "newest 9.5h old, 17.9 MB, complete" in head
        assert "last failed 30m ago: the Arbiter's backup disk is full (4 MB free)" in head
        assert len(reads) == 1  # one read; the next one waits for the (slow) backup interval


async def test_a_source_that_fails_says_backups_unknown_and_the_monitor_goes_on(app: WizardApp) -> None:
    def source() -> list[Entry]:
        raise BackupError("the Arbiter did not answer within 5 s", "check that arbiter is up")

    async with app.run_test(size=(120, 40)) as pilot:
        screen = MonitorScreen(poll=False, backup_source=source, backup_interval=3600)
        await app.push_screen(screen)
        for st in session()[:2]:
            screen.show_status(st)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert text_of(screen, "#mon-backup-head") == (
            "backups unknown: the Arbiter did not answer within 5 s; check that arbiter is up")
        assert app.screen is screen and screen.last is not None


async def test_take_progress_is_coalesced_and_a_failure_opens_the_error_view(app: WizardApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        screen = MonitorScreen(poll=False, backup_source=catalog, backup_interval=3600)
        await app.push_screen(screen)
        await app.workers.wait_for_complete()
        screen._start_job("take")
        await pilot.pause()
        assert text_of(screen, "#mon-backup-job") == "take: running 0s"  # before the first report

        def worker() -> None:  # as take's on_progress does, from a thread, far faster than a screen redraws
            for i in range(1, 501):
                screen._progress.offer(Progress("receiving", i * 100_000, i * 0.01, 10_000_000.0))

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        await pilot.pause()
        await pilot.pause()
        assert screen._progress.offered == 500
        assert text_of(screen, "#mon-backup-job") == "take: 50.0 MB 10.0 MB/s 5s"
        screen._job_failed("backup take", BackupError("the Arbiter's backup disk is full", "free space on /var"))
        await pilot.pause()
        assert isinstance(app.screen, ErrorScreen)
        assert "the Arbiter's backup disk is full" in app.screen.text and not screen.job
        assert "backup take failed" in text_of(screen, "#mon-backup-job")


def test_latest_posts_once_until_taken() -> None:
    posted: list[int] = []
    box: Latest[int] = Latest(lambda: posted.append(1))
    for i in range(10):
        box.offer(i)
    assert posted == [1] and box.take() == 9 and box.offered == 10
    box.offer(10)
    assert posted == [1, 1] and box.peek() == 10


@pytest.mark.parametrize(("size", "zoom"), [((80, 24), False), ((80, 24), True), ((160, 48), False)])
def test_monitor_with_backups_pane(snap_compare: Any, app: WizardApp, size: tuple[int, int], zoom: bool) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = MonitorScreen(poll=False, backup_source=catalog, backup_interval=3600)
        await pilot.app.push_screen(screen)
        for st in session()[:12]:
            screen.show_status(st)
        await pilot.app.workers.wait_for_complete()
        screen._start_job("take")
        screen._progress.offer(Progress("receiving", 12_300_000, 3.2, 4_100_000.0))
        if zoom:
            await pilot.press("z")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
