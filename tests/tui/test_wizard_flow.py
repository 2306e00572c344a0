"""Pilot tests of the wizard's flow: detected settings, the start screen's list, saving, errors, palette."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Select, Static

from tests.tui.conftest import profile_data
from tests.tui.test_snapshots import settle
from wizard.checks import CheckResult, Status, planned
from wizard.profile import validate_profile
from wizard.secrets import Secrets
from wizard.tui.app import WizardApp, create_app
from wizard.tui.screens.checks import ChecksScreen
from wizard.tui.screens.nodes import NodesScreen


@pytest.fixture
def app(tmp_path: Path) -> WizardApp:
    return create_app(profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")


def text_of(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_checks_offer_the_service_manager_they_found(app: WizardApp, secrets: Secrets) -> None:
    """New cluster defaults to systemd; on hosts without it the services check fails and the wizard offers
    `direct` (u), which goes into the profile and into the form behind."""
    data = profile_data()
    async with app.run_test(size=(100, 30)) as pilot:
        form = NodesScreen(data, source="new cluster")
        await app.push_screen(form)
        await settle(pilot)
        assert form.values["services-manager"] == "systemd"
        profile = validate_profile(data)
        app.session.data, app.session.profile, app.session.secrets = data, profile, secrets
        screen = ChecksScreen(autorun=False)
        await app.push_screen(screen)
        screen.set_planned([(c.id, c.title, n) for c, n in planned(profile)])
        for check, node in planned(profile):
            if check.id == "services":  # the services check's own words (wizard/checks/services.py)
                screen.show_result(CheckResult(
                    "services", check.title, node, Status.FAIL,
                    f"{node} does not run systemd (its PID 1 is sleep) but services.manager is systemd",
                    "set services.manager: direct for hosts without systemd, or boot the host with systemd"))
            else:
                screen.show_result(CheckResult(check.id, check.title, node, Status.OK, "ok"))
        screen.run_finished()
        await settle(pilot)
        assert "services.manager: direct" in text_of(screen, "#checks-summary")
        assert screen.check_action("use_found", ()) is True
        await pilot.press("u")
        await settle(pilot)
        assert app.session.profile is not None and app.session.profile.services.manager == "direct"
        assert form.query_one("#f-services-manager", Select).value == "direct"
        assert form.values["services-manager"] == "direct"
        assert screen.found_settings() == {}
        assert screen.check_action("use_found", ()) is None  # nothing left to adopt


