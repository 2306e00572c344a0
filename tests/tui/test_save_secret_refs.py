"""Saving from the wizard writes the secret references as they were and needs no secret value to save.

A newcomer found that ctrl+s on the credentials screen did nothing until every secret resolved (an env:
variable not set in this shell, an 'ask' not typed yet), and that a secret typed over an ``env:NAME``
reference was saved as ``ask``: the next headless run then had no terminal to ask on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from textual.widgets import Input

from tests.tui.conftest import profile_data
from tests.tui.test_snapshots import settle
from wizard.tui.app import WizardApp, create_app
from wizard.tui.screens.credentials import CredentialsScreen
from wizard.tui.screens.save import SaveScreen
from wizard.tui.session import Session


@pytest.fixture
def app(tmp_path: Path) -> WizardApp:
    return create_app(profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")


async def save_from_credentials(app: WizardApp, creds: CredentialsScreen, path: Path) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await app.push_screen(creds)
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, SaveScreen), "ctrl+s did not open the save dialog"
        dialog.query_one("#save-path", Input).value = str(path)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is creds and path.is_file()


async def test_a_secret_typed_over_an_env_reference_is_saved_as_that_reference(
        app: WizardApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUI_TEST_SST_PASSWORD", "sst-from-env")
    monkeypatch.delenv("TUI_TEST_REDIS_PASSWORD", raising=False)
    data = profile_data()
    data["database"]["admin_password"] = "file:/etc/studio/admin-password"
    creds = CredentialsScreen(data)
    app.session.typed = {"redis_password": "typed-redis-secret", "admin_password": "typed-admin-secret"}
    path = tmp_path / "saved.yaml"
    await save_from_credentials(app, creds, path)
    text = path.read_text()
    saved = yaml.safe_load(text)
    assert saved["redis"]["password"] == "env:TUI_TEST_REDIS_PASSWORD"  # was rewritten to 'ask'
    assert saved["database"]["sst_password"] == "env:TUI_TEST_SST_PASSWORD"
    assert saved["database"]["admin_password"] == "file:/etc/studio/admin-password"
    assert "typed-redis-secret" not in text and "typed-admin-secret" not in text and "sst-from-env" not in text
    assert app.session.typed["redis_password"] == "typed-redis-secret"  # still used for this session


async def test_saving_needs_no_secret_value(app: WizardApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing resolves (variables unset, 'ask' not typed): Next waits, Save works and keeps every reference."""
    monkeypatch.delenv("TUI_TEST_SST_PASSWORD", raising=False)
    monkeypatch.delenv("TUI_TEST_REDIS_PASSWORD", raising=False)
    data = profile_data()
    data["database"]["admin_password"] = "ask"
    creds = CredentialsScreen(data)
    path = tmp_path / "unresolved.yaml"
    await save_from_credentials(app, creds, path)
    assert not creds.ready  # going on still needs the values
    saved = yaml.safe_load(path.read_text())
    assert saved["redis"]["password"] == "env:TUI_TEST_REDIS_PASSWORD"
    assert saved["database"]["sst_password"] == "env:TUI_TEST_SST_PASSWORD"
    assert saved["database"]["admin_password"] == "ask"


def test_session_save_keeps_references_and_asks_only_for_a_typed_none(tmp_path: Path) -> None:
    from wizard.profile import validate_profile

    session = Session(profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")
    session.profile = validate_profile(profile_data(), check_files=False)  # redis env:, admin none
    session.typed = {"redis_password": "r", "admin_password": "a"}
    saved = yaml.safe_load(session.save_profile(tmp_path / "p.yaml").read_text())
    assert saved["redis"]["password"] == "env:TUI_TEST_REDIS_PASSWORD"
    assert saved["database"]["admin_password"] == "ask"  # typed, and 'none' could not give it
