"""The monitor's Backups pane on the real lab: b takes a backup with live progress in the pane while the
cluster rows keep refreshing, then v verifies it; both land in the catalog table.

Needs root and the lab; run under ``flock /tmp/studio-lab.lock``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from tests.tui.conftest import REPO
from tests.tui.test_lab_wizard import wait_for
from wizard.tui.app import create_app
from wizard.tui.screens.monitor import MonitorScreen

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600),
              pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]


@pytest.fixture(scope="module")
def cluster() -> None:
    from wizard import lab
    from wizard.pipeline import replay
    from wizard.profile import load_profile
    from wizard.secrets import Secrets

    lab.up(progress=lambda _msg: None)
    profile = load_profile(REPO / "profiles" / "lab.yaml")
    replay(profile, Secrets.resolve_for(profile), skip_checks=True)


async def test_take_and_verify_a_backup_through_the_pane(cluster: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    app = create_app(Path("profiles/lab.yaml"), monitor=True, interval=1.0)
    async with app.run_test(size=(160, 48)) as pilot:
        def screen() -> MonitorScreen:
            s = app.screen
            assert isinstance(s, MonitorScreen), type(s).__name__
            return s

        def rows() -> dict[str, str]:
            table = screen().query_one("#mon-backup-table", DataTable)
            return {str(k.value): str(table.get_cell(k, "state")) for k in table.rows}

        def job() -> str:
            return " ".join(str(screen().query_one("#mon-backup-job", Static).render()).split())

        await wait_for(pilot, "a healthy monitor", lambda: screen().last is not None
                       and screen().last.verdict == "healthy", 60)  # type: ignore[union-attr]
        head = screen().query_one("#mon-backup-head", Static)
        await wait_for(pilot, "the catalog read", lambda: "reading" not in str(head.render()), 30)
        before = rows()
        polls_before = screen().last.ts  # type: ignore[union-attr]
        await pilot.press("b")
        assert screen().job == "take"
        seen: list[str] = []
        polled_during: list[float] = []

        def taken() -> bool:
            seen.append(job())
            if screen().last is not None and screen().last.ts > polls_before:  # type: ignore[union-attr]
                polled_during.append(screen().last.ts)  # type: ignore[union-attr]
            return not screen().job

        await wait_for(pilot, "the backup taken through the pane", taken, 180)
        print(f"job line: {job()}; progress reports {screen()._progress.offered}, "
              f"distinct lines drawn {len(set(seen))}; polls while it ran: {len(set(polled_during))}")
        assert "complete" in job(), job()
        # a small backup may go from listening to complete between two reports: bytes, not always a rate
        assert screen()._progress.offered > 0 and any(s.startswith("take: ") for s in seen), seen[-5:]
        assert polled_during, "the cluster poll kept running while the backup ran"
        await wait_for(pilot, "the new backup in the table", lambda: any(
            k not in before and v == "complete" for k, v in rows().items()), 30)
        new = next(k for k, v in rows().items() if k not in before)
        await pilot.press("v")
        verify_lines: list[str] = []

        def verified() -> bool:
            verify_lines.append(job())
            return not screen().job

        await wait_for(pilot, "the backup verified through the pane", verified, 180)
        print(f"verify job line: {job()}; while it ran: {sorted(set(verify_lines))[:4]}")
        assert any(line.startswith("verify: running") for line in verify_lines), verify_lines[:3]
        assert "verified" in job(), job()
        await wait_for(pilot, "the table showing it verified", lambda: rows().get(new) == "verified", 30)
