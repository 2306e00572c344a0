"""Tab into a field puts the cursor at the end with nothing selected (issue 11 newcomer findings).

Textual's Input selects its whole value on focus: a newcomer tabbed into a path field, pressed Space, and
the path was gone.  Only the first field of a screen just opened comes selected (typing replaces a
prefilled value such as 'ask'); Tab never selects.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from tests.tui.conftest import profile_data
from tests.tui.test_snapshots import settle
from wizard.tui.app import WizardApp, create_app
from wizard.tui.screens.nodes import NodesScreen
from wizard.tui.screens.save import SaveScreen


@pytest.fixture
def app(tmp_path: Path) -> WizardApp:
    return create_app(profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")


async def test_tab_into_a_path_field_then_space_keeps_the_path(app: WizardApp, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("not really a key\n")
    data = profile_data()
    data["nodes"][0]["ssh"]["key_file"] = str(key)
    async with app.run_test(size=(120, 40)) as pilot:
        form = NodesScreen(data, source="profile")
        await app.push_screen(form)
        await settle(pilot)
        first = form.query_one("#f-cluster_name", Input)
        assert app.focused is first and first.selected_text == "studio-prod"  # a screen's first field: selected
        form.query_one("#f-nodes-0-ssh-port", Input).focus()
        await settle(pilot)
        await pilot.press("tab")
        await settle(pilot)
        field = form.query_one("#f-nodes-0-ssh-key_file", Input)
        assert app.focused is field
        assert field.selected_text == "" and field.cursor_position == len(str(key))
        await pilot.press("space")
        await settle(pilot)
        assert field.value == f"{key} "  # Textual's select-on-focus replaced it with " "
        await pilot.press("backspace", "shift+tab", "tab")  # back in again: still nothing selected
        await settle(pilot)
        assert app.focused is field and field.selected_text == "" and field.value == str(key)


async def test_shift_tab_back_into_the_save_path_does_not_select_it(app: WizardApp, tmp_path: Path) -> None:
    from wizard.profile import validate_profile

    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.session.profile = validate_profile(profile_data(), check_files=False)
        await app.push_screen(SaveScreen())
        await settle(pilot)
        path = app.screen.query_one("#save-path", Input)
        value = path.value
        assert app.focused is path and path.selected_text == value  # the dialog opens with it selected
        await pilot.press("tab")
        await settle(pilot)
        assert app.focused is not path
        await pilot.press("shift+tab")
        await settle(pilot)
        assert app.focused is path and path.selected_text == ""
        await pilot.press("x")
        assert path.value == value + "x"
