"""Pilot tests of the wizard's flow: detected settings, the start screen's list, saving, errors, palette."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static, TextArea

from tests.tui.conftest import profile_data
from tests.tui.test_snapshots import settle
from wizard.checks import CheckResult, Status, planned
from wizard.profile import Profile, validate_profile
from wizard.secrets import Secrets
from wizard.tui.app import WizardApp, create_app
from wizard.tui.commands import ClusterCommands, CommandOutputScreen
from wizard.tui.screens.checks import ChecksScreen
from wizard.tui.screens.credentials import CredentialsScreen
from wizard.tui.screens.error import ErrorScreen, TextViewScreen
from wizard.tui.screens.nodes import NodesScreen
from wizard.tui.screens.open_path import OpenPathScreen
from wizard.tui.screens.plan import PlanScreen
from wizard.tui.screens.save import SaveScreen
from wizard.tui.screens.start import StartScreen


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
        assert screen.check_action("use_found", ()) is False  # nothing left to adopt: the key is hidden




async def test_saving_says_where_offers_a_choice_and_the_start_list_follows(
        app: WizardApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUI_TEST_SST_PASSWORD", "sst-from-env")
    monkeypatch.setenv("TUI_TEST_REDIS_PASSWORD", "redis-from-env")
    monkeypatch.chdir(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        start = app.screen
        assert isinstance(start, StartScreen)
        assert start.profiles == []
        creds = CredentialsScreen(profile_data())
        await app.push_screen(creds)
        await settle(pilot)
        assert creds.ready
        await pilot.press("ctrl+s")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, SaveScreen)
        proposed = tmp_path / "profiles" / "studio-prod.yaml"
        assert dialog.query_one("#save-path", Input).value == str(proposed)  # absolute, not ./something
        assert text_of(dialog, "#save-note") == f"creates {proposed} (and the directory {proposed.parent})"
        # the person chooses another place
        elsewhere = tmp_path / "elsewhere" / "mine.yaml"
        dialog.query_one("#save-path", Input).value = str(elsewhere)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is creds
        assert elsewhere.is_file() and not proposed.exists()
        assert app.session.saved_path == elsewhere
        # saving again proposes the same file, and says it overwrites it
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, SaveScreen)
        assert text_of(app.screen, "#save-note") == f"overwrites {elsewhere}"
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is creds and elsewhere.is_file()
        # back on the start screen the list shows it (outside the profiles dir: by its full path)
        app.pop_screen()
        await settle(pilot)
        assert app.screen is start
        assert start.profiles == [elsewhere]
        assert start.selected_profile() == elsewhere


async def test_start_keys_act_or_say_why(app: WizardApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        start = app.screen
        assert isinstance(start, StartScreen)
        for key in ("l", "m"):
            start.message("")
            await pilot.press(key)
            await settle(pilot)
            assert app.screen is start
            said = text_of(start, "#start-message")
            assert "No saved profile" in said and "o opens a profile file by path" in said, (key, said)
            region = start.query_one("#start-message").region  # on screen at 80x24, above the footer
            assert region.height >= 1 and region.bottom <= app.size.height - 1, (key, region)


async def test_open_a_profile_by_path(app: WizardApp, tmp_path: Path) -> None:
    path = tmp_path / "somewhere" / "prod.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(profile_data()))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        start = app.screen
        await pilot.press("o")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, OpenPathScreen)
        assert app.focused is dialog.query_one("#open-path", Input)
        await pilot.press(*str(tmp_path / "nope.yaml"), "enter")
        await settle(pilot)
        assert app.screen is dialog
        assert "does not exist" in text_of(dialog, "#open-note")
        dialog.query_one("#open-path", Input).value = str(path)
        await pilot.press("enter")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, NodesScreen)
        assert form.valid and form.values["nodes-2-address"] == "10.20.0.13"
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is start
        assert isinstance(start, StartScreen) and path in start.profiles  # opened files are listed


async def test_apply_asks_where_to_save_first(app: WizardApp, profile: Profile, secrets: Secrets) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        app.session.profile, app.session.secrets = profile, secrets
        plan = PlanScreen(autorun=False)
        await app.push_screen(plan)
        plan.show_plan([], [], "")
        await settle(pilot)
        await pilot.press("ctrl+n")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, SaveScreen) and dialog.before_apply
        assert dialog.query_one("#save-skip").display  # apply without saving is a choice too
        await pilot.press("escape")  # cancel: back on the plan, nothing written, nothing applied
        await settle(pilot)
        assert app.screen is plan and app.session.saved_path is None


async def test_a_workers_error_opens_the_whole_message_to_copy(app: WizardApp, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("cluster_name: [unclosed\n")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        start = app.screen
        assert isinstance(start, StartScreen)
        start.load_profile(broken)
        await settle(pilot)
        view = app.screen
        assert isinstance(view, ErrorScreen)
        text = view.query_one("#view-text", TextArea).text
        assert str(broken) in text and "is not valid YAML" in text
        assert "line 2, column 1" in text and "close it with ]" in text  # the whole message with its place and fix
        assert view.query_one("#view-text", TextArea).read_only
        await pilot.press("c")
        assert app.clipboard == text
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is start


async def palette_run(pilot: Pilot[Any], query: str) -> None:
    """Open the command palette, search, and run the first hit."""
    await pilot.press("ctrl+p")
    await settle(pilot)
    assert isinstance(pilot.app.screen, CommandPalette)
    await pilot.press(*query)
    palette = pilot.app.screen
    deadline = time.monotonic() + 10
    while not palette.query_one(CommandList).option_count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert palette.query_one(CommandList).option_count, f"no command matches {query!r}"
    await pilot.press("down", "enter")
    await settle(pilot)


async def palette_command_output(pilot: Pilot[Any], query: str, timeout: float = 60) -> CommandOutputScreen:
    """Run a palette command that runs a CLI command (:class:`CommandOutputScreen`) and wait for its exit."""
    await palette_run(pilot, query)
    view = pilot.app.screen
    assert isinstance(view, CommandOutputScreen)
    deadline = time.monotonic() + timeout
    while view.exit_code is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return view


async def test_palette_offers_the_cluster_actions(app: WizardApp, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "run-20260101T000000.jsonl").write_text(json.dumps(
        {"node": "studio1", "command": "systemctl is-active mariadb", "exit_code": 3, "duration": 0.02,
         "stdout": "inactive", "ts": 1767225600.0}) + "\n")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        names = [hit.text async for hit in ClusterCommands(app.screen).discover()]
        assert names == ["Cluster status", "Recover the cluster", "Backup list", "Open the run log"]

        await palette_run(pilot, "run log")
        view = app.screen
        assert isinstance(view, TextViewScreen)
        text = view.query_one("#view-text", TextArea).text
        assert "systemctl is-active mariadb" in text and "stdout: inactive" in text and "-> 3" in text
        await pilot.press("escape")
        await settle(pilot)

        await palette_run(pilot, "status")  # no profile yet: it says why instead of doing nothing
        assert isinstance(app.screen, StartScreen)
        assert any("needs a saved profile" in str(n.message) for n in app._notifications)


async def test_palette_status_runs_the_command_on_the_saved_profile(app: WizardApp, tmp_path: Path) -> None:
    """Every node refuses SSH on 127.0.0.x: the real `studio-cluster status` says so, exit code 1."""
    data = profile_data()
    for i, node in enumerate(data["nodes"]):
        node["address"] = f"127.0.0.{i + 1}"
        node["ssh"].update(port=1, connect_timeout=1)
    data["dns"].update(servers=["127.0.0.1"], port=1)
    data["redis"] = {"url": "redis://127.0.0.1:1/0"}
    data["database"]["sst_password"] = "none"
    path = tmp_path / "dead.yaml"
    path.write_text(yaml.safe_dump(data))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.session.profile_path = path
        view = await palette_command_output(pilot, "cluster status")
        assert view.exit_code == 1, view.text
        text = view.query_one("#view-text", TextArea).text
        assert f"status {path}" in text and "unknown" in text and "unreachable" in text, text


async def test_a_failed_apply_opens_the_whole_error(app: WizardApp, profile: Profile, secrets: Secrets) -> None:
    from wizard.pipeline import PipelineError
    from wizard.tui.screens.apply import ApplyScreen

    long_reason = ("no node could bootstrap: studio1 (seqno 1200) and studio2 (seqno -1, position unknown: "
                   "grastate.dat says -1 and --wsrep-recover found none) " + "x" * 300 + " END")
    async with app.run_test(size=(80, 24)) as pilot:
        app.session.profile, app.session.secrets = profile, secrets
        screen = ApplyScreen(profile=profile, autorun=False)
        await app.push_screen(screen)
        exc = PipelineError("bootstrap", long_reason)
        screen.finished("failed", f"Failed at bootstrap: {long_reason}", screen._detail(exc))
        await settle(pilot)
        view = app.screen
        assert isinstance(view, TextViewScreen)
        text = view.query_one("#view-text", TextArea).text
        assert text.startswith("Failed at bootstrap.") and "END" in text  # nothing cut
        assert "studio-cluster status" in text
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen and screen.outcome == "failed"


async def test_palette_recover_asks_first_naming_the_profile_and_cluster(app: WizardApp, tmp_path: Path) -> None:
    """Recover restarts servers: from the palette it names the profile and cluster and waits for a yes; Esc
    (the default) runs nothing (a newcomer started a recover with two keys on a merely highlighted profile)."""
    from wizard.tui.screens.confirm import ConfirmScreen

    data = profile_data()
    path = tmp_path / "named.yaml"
    path.write_text(yaml.safe_dump(data))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.session.profile_path = path
        await palette_run(pilot, "recover")
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        what = str(dialog.query_one("#confirm-what", Static).render())
        assert str(path) in what and str(data["cluster_name"]) in what, what
        await pilot.press("enter")  # the focused button is Cancel
        await settle(pilot)
        assert not isinstance(app.screen, (ConfirmScreen, CommandOutputScreen))
        await palette_run(pilot, "recover")
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, (ConfirmScreen, CommandOutputScreen))
