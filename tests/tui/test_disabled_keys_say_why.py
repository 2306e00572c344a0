"""Every key either acts or says why not (issue 11 newcomer findings): a key whose action is off now (greyed
or hidden in the footer) shows a notification with the reason instead of doing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui.conftest import profile_data
from tests.tui.test_snapshots import settle
from wizard.checks import CheckResult, Status, planned
from wizard.profile import Profile
from wizard.secrets import Secrets
from wizard.tui.app import WizardApp, create_app
from wizard.tui.screens.checks import ChecksScreen
from wizard.tui.screens.credentials import CredentialsScreen
from wizard.tui.screens.nodes import NodesScreen


@pytest.fixture
def app(tmp_path: Path) -> WizardApp:
    return create_app(profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")


def said(app: WizardApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def press_and_hear(app: WizardApp, pilot: object, key: str) -> str:
    before = len(said(app))
    await pilot.press(key)  # type: ignore[attr-defined]
    await settle(pilot)  # type: ignore[arg-type]
    new = said(app)[before:]
    assert new, f"{key} did nothing and said nothing"
    return new[-1]


async def test_next_on_an_invalid_form_says_what_to_fix(app: WizardApp) -> None:
    data = profile_data()
    data["nodes"][1]["address"] = "not an address"
    async with app.run_test(size=(100, 30)) as pilot:
        form = NodesScreen(data, source="profile")
        await app.push_screen(form)
        await settle(pilot)
        assert form.check_action("next", ()) is None  # greyed in the footer
        text = await press_and_hear(app, pilot, "ctrl+n")
        assert "Fix the settings marked in red first" in text and "Studio node 2 address" in text
        assert app.screen is form


async def test_credentials_next_says_which_secret_is_missing(app: WizardApp,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUI_TEST_SST_PASSWORD", raising=False)
    monkeypatch.setenv("TUI_TEST_REDIS_PASSWORD", "r")
    async with app.run_test(size=(100, 30)) as pilot:
        creds = CredentialsScreen(profile_data())
        await app.push_screen(creds)
        await settle(pilot)
        text = await press_and_hear(app, pilot, "ctrl+n")
        assert "Still needed: SST password" in text
        assert app.screen is creds


async def test_checks_keys_that_are_off_say_why(app: WizardApp, profile: Profile, secrets: Secrets) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        app.session.profile, app.session.secrets = profile, secrets
        screen = ChecksScreen(autorun=False)
        await app.push_screen(screen)
        rows = [(c.id, c.title, n) for c, n in planned(profile)]
        screen.set_planned(rows)
        for check, title, node in rows:
            status = Status.FAIL if check == "network" and node == "studio2" else Status.OK
            screen.show_result(CheckResult(check, title, node, status, status.value, "", 0.1))
        screen.run_finished()
        await settle(pilot)
        assert "1 failed" in await press_and_hear(app, pilot, "ctrl+n")  # greyed: Plan
        assert "host key" in await press_and_hear(app, pilot, "k")  # hidden: no host key refused
        assert "no setting" in await press_and_hear(app, pilot, "u")  # hidden: nothing found
        assert app.screen is screen
