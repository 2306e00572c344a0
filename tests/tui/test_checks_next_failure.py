"""`f` on the checks screen goes to the next failure (with none, the next warning), never to a skipped row
(issue 11 newcomer findings): a skipped check did not run because another failed; that one has the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from tests.tui.test_snapshots import settle
from wizard.checks import CheckResult, Status, planned
from wizard.profile import Profile
from wizard.secrets import Secrets
from wizard.tui.app import WizardApp, create_app
from wizard.tui.screens.checks import ChecksScreen, row_key


@pytest.fixture
def app(tmp_path: Path) -> WizardApp:
    return create_app(profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")


def highlighted(screen: ChecksScreen) -> str | None:
    return screen._highlighted_key()


async def test_f_goes_to_failures_then_warnings_never_to_skips(app: WizardApp, profile: Profile,
                                                               secrets: Secrets) -> None:
    rows = [(c.id, c.title, n) for c, n in planned(profile)]
    skips, fail, warn = rows[1:3], rows[3], rows[5]  # two skipped rows between the cursor and the failure
    async with app.run_test(size=(100, 30)) as pilot:
        app.session.profile, app.session.secrets = profile, secrets
        screen = ChecksScreen(autorun=False)
        await app.push_screen(screen)
        screen.set_planned(rows)
        for check, title, node in rows:
            status = (Status.SKIP if (check, title, node) in skips else Status.FAIL if (check, title, node) == fail
                      else Status.WARN if (check, title, node) == warn else Status.OK)
            screen.show_result(CheckResult(check, title, node, status, status.value, "", 0.1))
        await settle(pilot)
        screen.query_one("#checks", DataTable).move_cursor(row=0)
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        assert highlighted(screen) == row_key(fail[0], fail[2])  # not the skipped row before it
        await pilot.press("f")  # the only failure: it stays there
        await settle(pilot)
        assert highlighted(screen) == row_key(fail[0], fail[2])

        # the failure fixed: f goes to the warning; with nothing left, it says so
        screen.show_result(CheckResult(fail[0], fail[1], fail[2], Status.OK, "ok", "", 0.1))
        await pilot.press("f")
        await settle(pilot)
        assert highlighted(screen) == row_key(warn[0], warn[2])
        screen.show_result(CheckResult(warn[0], warn[1], warn[2], Status.OK, "ok", "", 0.1))
        before = highlighted(screen)
        await pilot.press("f")
        await settle(pilot)
        assert highlighted(screen) == before
        assert any("No failed check and no warning" in str(n.message) for n in app._notifications)
