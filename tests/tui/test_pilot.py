"""Pilot tests of the wizard's logic: inline validation, secrets never saved, cancel, polling, startup."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.widgets import Button, Input, RichLog, Static

from tests.tui.conftest import REPO, profile_data
from tests.tui.test_snapshots import feed_apply, retype, settle
from wizard.profile import Profile
from wizard.secrets import Secrets
from wizard.tui.app import WizardApp, create_app
from wizard.tui.screens.apply import ApplyScreen, Cancelled
from wizard.tui.screens.credentials import CredentialsScreen
from wizard.tui.screens.monitor import MonitorScreen
from wizard.tui.screens.nodes import NodesScreen
from wizard.tui.screens.start import StartScreen


@pytest.fixture
def app(tmp_path: Path) -> WizardApp:
    return create_app(profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")


def error_of(screen: Any, key: str) -> str:
    widget = screen.query_one(f"#e-{key}", Static)
    return str(widget.render()) if widget.display else ""


async def test_bad_address_shows_its_message_and_disables_next(app: WizardApp) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        screen = NodesScreen(profile_data(), source="test")
        await app.push_screen(screen)
        await settle(pilot)
        assert screen.valid and not screen.query_one("#next", Button).disabled

        await retype(pilot, "#f-nodes-1-address", "10.20.0.300")
        await settle(pilot)
        message = error_of(screen, "nodes-1-address")
        assert "'10.20.0.300' is neither an IP address nor a host name" in message
        assert "use e.g." in message  # names the fix
        assert error_of(screen, "nodes-0-address") == ""
        assert screen.query_one("#next", Button).disabled
        assert screen.check_action("next", ()) is None  # the binding shows disabled too
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen is screen  # nothing happened

        await retype(pilot, "#f-nodes-1-address", "studio2.example.com")
        await settle(pilot)
        assert error_of(screen, "nodes-1-address") == ""
        assert not screen.query_one("#next", Button).disabled
        assert screen.profile is not None and screen.profile.nodes[1].address == "studio2.example.com"


async def test_duplicate_names_show_by_both_names(app: WizardApp) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        screen = NodesScreen(profile_data(), source="test")
        await app.push_screen(screen)
        await settle(pilot)
        await retype(pilot, "#f-nodes-2-name", "studio2")
        await settle(pilot)
        assert "share the name 'studio2'" in error_of(screen, "nodes-1-name")
        assert "share the name 'studio2'" in error_of(screen, "nodes-2-name")
        assert screen.query_one("#next", Button).disabled


async def test_new_cluster_hides_messages_of_untouched_empty_fields(app: WizardApp) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, NodesScreen)
        assert error_of(screen, "nodes-0-address") == ""  # nobody typed there yet
        assert "to fix" in str(screen.query_one("#form-status", Static).render())
        assert screen.query_one("#next", Button).disabled
        await retype(pilot, "#f-nodes-0-address", "10.0.0")
        await settle(pilot)
        assert "neither an IP address" in error_of(screen, "nodes-0-address")


async def test_preloaded_profile_opens_the_form_filled(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(profile_data()))
    app = create_app(path, profiles_dir=tmp_path, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, NodesScreen)
        assert screen.query_one("#f-nodes-2-address", Input).value == "10.20.0.13"
        assert screen.valid
        await pilot.click("#next")  # the Next/Back buttons are handled once, in the screen base
        await settle(pilot)
        assert type(app.screen).__name__ == "CredentialsScreen"
        await pilot.click("#back")
        await settle(pilot)
        assert app.screen is screen


async def test_typed_secrets_never_reach_the_saved_profile_or_the_screen(
        app: WizardApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUI_TEST_SST_PASSWORD", raising=False)
    monkeypatch.setenv("TUI_TEST_REDIS_PASSWORD", "redis-from-env-91")
    sst, admin = "Sst-Typed-Secret-4711", "Admin-Typed-Secret-0815"
    async with app.run_test(size=(100, 30)) as pilot:
        screen = CredentialsScreen(profile_data())
        await app.push_screen(screen)
        await settle(pilot)
        assert not screen.ready  # env:TUI_TEST_SST_PASSWORD is not set
        await retype(pilot, "#val-sst_password", sst)
        await retype(pilot, "#val-admin_password", admin)
        await settle(pilot)
        assert screen.ready
        shown = app.export_screenshot()
        assert sst not in shown and admin not in shown and "redis-from-env-91" not in shown

        await pilot.press("ctrl+s")
        await settle(pilot)
        assert type(app.screen).__name__ == "SaveScreen"  # says where, with a choice
        await pilot.press("enter")
        await settle(pilot)
        saved = tmp_path / "profiles" / "studio-prod.yaml"
        text = saved.read_text()
        assert sst not in text and admin not in text and "redis-from-env-91" not in text
        data = yaml.safe_load(text)
        assert data["database"]["sst_password"] == "env:TUI_TEST_SST_PASSWORD"  # typed over it: kept as written
        assert data["database"]["admin_password"] == "ask"  # typed, and its reference was 'none'
        assert data["redis"]["password"] == "env:TUI_TEST_REDIS_PASSWORD"  # a reference stays a reference

        # the run itself gets the values, from memory
        assert app.session.secrets is not None
        assert app.session.secrets.sst_password == sst
        assert app.session.secrets.redis_password == "redis-from-env-91"
        assert sst not in repr(app.session.secrets)


async def test_cancel_during_bootstrap_says_what_state_it_left(app: WizardApp, profile: Profile,
                                                              secrets: Secrets) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        app.session.profile, app.session.secrets = profile, secrets
        app.session.saved_path = Path("profiles/studio-prod.yaml")
        screen = ApplyScreen(profile=profile, autorun=False)
        await app.push_screen(screen)
        feed_apply(screen, profile)
        listener, on_command = screen.make_listener()
        await pilot.press("c")
        await pilot.pause()
        result = str(screen.query_one("#apply-result", Static).render())
        assert "finish on their own" in result
        assert "studio-cluster status profiles/studio-prod.yaml" in result
        assert screen.check_action("cancel", ()) is None
        assert screen.check_action("monitor", ()) is True  # free to look at the cluster meanwhile
        # the pipeline stops at its next step boundary: the listener raises there
        with pytest.raises(Cancelled):
            await asyncio.to_thread(listener.step, "bootstrap", "done", "")
        on_command({"node": "studio1", "command": "true", "exit_code": 0})  # dropped: we stopped following


async def test_monitor_polls_a_dead_cluster_without_freezing(tmp_path: Path) -> None:
    """Every node refuses SSH, Redis and DNS do not answer: the poll loop shows it and keeps going."""
    data = profile_data()
    for i, node in enumerate(data["nodes"]):
        node["address"] = f"127.0.0.{i + 1}"
        node["ssh"]["port"] = 1
        node["ssh"]["connect_timeout"] = 1
    data["dns"]["servers"] = ["127.0.0.1"]
    data["dns"]["port"] = 1
    data["redis"] = {"url": "redis://127.0.0.1:1/0"}
    path = tmp_path / "dead.yaml"
    path.write_text(yaml.safe_dump(data))
    app = create_app(path, monitor=True, interval=0.5, profiles_dir=tmp_path, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        deadline = time.monotonic() + 20
        while len(screen.history.flow_control) < 2 and time.monotonic() < deadline:
            await pilot.press("minus", "plus")  # the screen answers keys while polls run
            await asyncio.sleep(0.1)
        assert len(screen.history.flow_control) >= 2, "the poll loop did not re-arm"
        assert screen.last is not None
        assert screen.last.verdict == "unknown"  # nothing reachable: not known to be down
        assert all(not n.reachable for n in screen.last.nodes)
        assert "unreachable" in app.export_screenshot()
        await pilot.press("p")
        assert screen.paused


async def test_start_screen_lists_profiles_in_a_worker(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "a.yaml").write_text(yaml.safe_dump(profile_data()))
    app = create_app(profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, StartScreen)
        assert screen.selected_profile() == tmp_path / "profiles" / "a.yaml"
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, NodesScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen


def test_first_screen_paints_without_heavy_imports() -> None:
    code = (
        "import time; t0 = time.perf_counter()\n"
        "import asyncio, sys\n"
        "from wizard.tui.app import create_app\n"
        "async def main():\n"
        "    app = create_app()\n"
        "    async with app.run_test(size=(80, 24)) as pilot:\n"
        "        await pilot.pause()\n"
        "        assert type(app.screen).__name__ == 'StartScreen'\n"
        "        print(round(time.perf_counter() - t0, 3))\n"
        "        heavy = [m for m in ('wizard.remote', 'wizard.status', 'wizard.pipeline', 'wizard.checks',\n"
        "                             'fabric', 'paramiko', 'redis') if m in sys.modules]\n"
        "        print(','.join(heavy))\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO,
                         timeout=60)
    seconds, heavy = out.stdout.strip().splitlines() + [""] * (2 - len(out.stdout.strip().splitlines()))
    assert heavy == "", f"imported at startup: {heavy}"
    assert float(seconds) > 0  # how fast is measured side by side in bench/first_paint.py, never asserted here


def test_run_app_signature_is_what_the_cli_calls() -> None:
    import inspect

    from wizard.tui.app import run_app

    params = inspect.signature(run_app).parameters
    assert list(params) == ["profile_path", "monitor", "interval"]
    assert params["monitor"].default is False and params["interval"].default == 2.0




async def test_progress_arrives_as_messages_and_command_floods_coalesce(app: WizardApp, profile: Profile,
                                                                        secrets: Secrets) -> None:
    """Issue 11 item 7: the pipeline's thread posts typed messages and never waits for the UI; 300 commands
    arriving at once are drawn from far fewer CommandsRan messages, none lost."""
    from wizard.tui.screens.apply import CommandsRan, PipelineStep

    posted: list[object] = []
    async with app.run_test(size=(100, 30), message_hook=posted.append) as pilot:
        app.session.profile, app.session.secrets = profile, secrets
        screen = ApplyScreen(profile=profile, autorun=False)
        await app.push_screen(screen)
        listener, on_command = screen.make_listener()

        def flood() -> float:
            t0 = time.monotonic()
            listener.step("apply", "start", "comparing rendered files with the nodes")
            for i in range(300):
                on_command({"node": "studio1", "command": f"echo {i}", "exit_code": 0, "duration": 0.01})
            listener.step("apply", "done", "0 file(s) written")
            return time.monotonic() - t0

        spent = await asyncio.to_thread(flood)
        await pilot.pause()
        await pilot.pause()
        log = screen.query_one("#apply-log", RichLog)
        text = "\n".join(str(line.text) for line in log.lines)
        steps = [m for m in posted if isinstance(m, PipelineStep)]
        floods = [m for m in posted if isinstance(m, CommandsRan)]
        assert [(m.step, m.state) for m in steps] == [("apply", "start"), ("apply", "done")]
        assert 1 <= len(floods) < 300, len(floods)
        assert "echo 0" in text and "echo 299" in text and screen.command_buffer.drain() == []
        print(f"300 commands: {len(floods)} CommandsRan messages; the pipeline thread spent {spent * 1000:.1f} ms")
