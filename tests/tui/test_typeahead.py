"""Keys typed faster than the screens follow: each lands in the field it was meant for, in order (issue 11
item 3).  The keys go in as one burst, straight to the driver (as a terminal sends them), without
waiting for the app to go idle between keys or after a screen is pushed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input

from tests.tui.conftest import profile_data
from wizard.profile import validate_profile
from wizard.tui.app import WizardApp, create_app
from wizard.tui.screens.nodes import NodesScreen
from wizard.tui.screens.open_path import OpenPathScreen
from wizard.tui.screens.save import SaveScreen


@pytest.fixture
def app(tmp_path: Path) -> WizardApp:
    return create_app(profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")


def burst(app: WizardApp, *keys: str) -> None:
    """Send keys (names: "ctrl+u", "tab", or characters) as a terminal does, all at once."""
    assert app._driver is not None
    for key in keys:
        event = events.Key(key, key if len(key) == 1 else None)
        event.set_sender(app)
        app._driver.send_message(event)


async def until(pilot: Pilot[Any], what: str, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.02)  # not pilot.pause(): it waits for idle, and a gated screen never is


def value(app: WizardApp, selector: str) -> str:
    """The input's value; "" while its screen is not composed yet."""
    found = app.screen.query(selector)
    return found.first(Input).value if found else ""


async def test_ctrl_u_and_a_path_typed_as_the_save_dialog_opens_give_exactly_that_path(
        app: WizardApp, tmp_path: Path) -> None:
    """The tmux lab test's failure: ctrl+u ran after the first letters of the new path were inserted."""
    target = str(tmp_path / "saved" / "studio-lab.yaml")
    async with app.run_test(size=(80, 24)) as pilot:
        data = profile_data()
        app.session.data, app.session.profile = data, validate_profile(data)
        app.push_screen(SaveScreen(before_apply=True))  # not awaited: the keys race the dialog's mount
        burst(app, "ctrl+u", *target)
        await until(pilot, "the whole path typed", lambda: isinstance(app.screen, SaveScreen)
                    and value(app, "#save-path").endswith("studio-lab.yaml"))
        await pilot.pause()
        assert value(app, "#save-path") == target
        burst(app, "enter")
        await until(pilot, "the dialog closed", lambda: not isinstance(app.screen, SaveScreen))
        assert Path(target).is_file()


async def test_keys_typed_after_tab_go_into_the_next_field(app: WizardApp) -> None:
    """`arbiter19` / `8.18.0.13`: the keys after a Tab went into the previous field."""
    async with app.run_test(size=(160, 48)) as pilot:
        form = NodesScreen(profile_data(), source="new cluster")
        app.push_screen(form)
        burst(app, "ctrl+u", *"prod", "tab", "ctrl+u", *"node-a", "tab", "ctrl+u", *"198.18.0.11")
        await until(pilot, "the address typed", lambda: value(app, "#f-nodes-0-address").endswith("0.11"))
        await pilot.pause()
        assert value(app, "#f-cluster_name") == "prod"
        assert value(app, "#f-nodes-0-name") == "node-a"
        assert value(app, "#f-nodes-0-address") == "198.18.0.11"
        assert app.focused is form.query_one("#f-nodes-0-address", Input)


async def test_a_key_that_opens_a_dialog_and_the_path_typed_after_it(app: WizardApp, tmp_path: Path) -> None:
    """`o` on the start screen opens the path dialog: the keys right behind it are its path, all of it."""
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, "the start screen", lambda: app.screen.is_mounted)
        path = str(tmp_path / "profiles" / "lab.yaml")
        burst(app, "o", *path)
        await until(pilot, "the path typed", lambda: isinstance(app.screen, OpenPathScreen)
                    and value(app, "#open-path").endswith("lab.yaml"))
        await pilot.pause()
        assert value(app, "#open-path") == path


class GatedSave(SaveScreen):
    """The save dialog with a mount that waits for the test: keys typed meanwhile must wait for it too.
    Textual's auto-focus is off here, so nothing but the dialog's own on_mount gives its field the focus."""

    AUTO_FOCUS = ""

    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__()
        self.gate = gate

    async def on_mount(self) -> None:  # runs before SaveScreen.on_mount (Textual calls each class's)
        await self.gate.wait()


async def test_keys_typed_while_a_dialog_mounts_slowly_all_reach_its_field(app: WizardApp, tmp_path: Path) -> None:
    gate = asyncio.Event()
    target = str(tmp_path / "slow.yaml")
    async with app.run_test(size=(80, 24)) as pilot:
        data = profile_data()
        app.session.data, app.session.profile = data, validate_profile(data)
        screen = GatedSave(gate)
        app.push_screen(screen)
        burst(app, "ctrl+u", *target)
        await asyncio.sleep(0.2)  # the keys are in; the dialog is still mounting (not a timing assertion)
        assert screen.focused is None
        gate.set()
        await until(pilot, "the whole path typed", lambda: value(app, "#save-path").endswith("slow.yaml"))
        await pilot.pause()
        assert value(app, "#save-path") == target
