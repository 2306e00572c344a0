"""Esc on a form with unsaved edits asks before dropping them; without edits it just goes back."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Static

from tests.tui.conftest import profile_data
from tests.tui.test_snapshots import settle
from wizard.tui.app import WizardApp, create_app
from wizard.tui.screens.credentials import CredentialsScreen
from wizard.tui.screens.discard import DiscardEditsScreen
from wizard.tui.screens.nodes import NodesScreen
from wizard.tui.screens.start import StartScreen


@pytest.fixture
def app(tmp_path: Path) -> WizardApp:
    return create_app(profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")


async def test_esc_on_an_untouched_form_goes_back_at_once(app: WizardApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(NodesScreen(profile_data(), source="profiles/prod.yaml"))
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, StartScreen)


async def test_esc_after_an_edit_asks_keep_stays_and_drop_leaves(app: WizardApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        form = NodesScreen(profile_data(), source="profiles/prod.yaml")
        await app.push_screen(form)
        await settle(pilot)
        await pilot.press("ctrl+u", *"studio-new")  # the cluster name has the focus
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, DiscardEditsScreen)
        assert "Cluster name" in str(dialog.query_one("#discard-what", Static).render())
        await pilot.press("escape")  # keep editing: the default
        await settle(pilot)
        assert app.screen is form
        assert form.query_one("#f-cluster_name", Input).value == "studio-new"
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, StartScreen)


async def test_credentials_ask_when_a_reference_was_changed(app: WizardApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(NodesScreen(profile_data(), source="profiles/prod.yaml"))
        creds = CredentialsScreen(profile_data())
        await app.push_screen(creds)
        await settle(pilot)
        await pilot.press("escape")  # nothing changed yet: straight back to the form
        await settle(pilot)
        assert isinstance(app.screen, NodesScreen)
        creds = CredentialsScreen(profile_data())
        await app.push_screen(creds)
        await settle(pilot)
        await pilot.press("ctrl+u", *"env:OTHER")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, DiscardEditsScreen)
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, NodesScreen)


async def test_ctrl_q_with_edits_asks_before_quitting(app: WizardApp) -> None:
    """ctrl+q quit at once and dropped a form's edits (a newcomer's finding): it asks, as Esc does."""
    async with app.run_test(size=(80, 24)) as pilot:
        form = NodesScreen(profile_data(), source="profiles/prod.yaml")
        await app.push_screen(form)
        await settle(pilot)
        await pilot.press("ctrl+u", *"studio-new")
        await settle(pilot)
        await pilot.press("ctrl+q")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, DiscardEditsScreen) and dialog.leaving == "quit"
        await pilot.press("escape")  # keep editing
        await settle(pilot)
        assert app.screen is form and app.return_code is None  # still running
        await pilot.press("ctrl+q")
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        assert app.return_code == 0  # exited


async def test_ctrl_q_without_edits_quits_at_once(app: WizardApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(NodesScreen(profile_data(), source="profiles/prod.yaml"))
        await settle(pilot)
        await pilot.press("ctrl+q")
        await settle(pilot)
        assert app.return_code == 0
