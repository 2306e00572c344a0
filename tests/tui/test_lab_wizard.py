"""The whole wizard against the real lab: forms from profiles/lab.yaml, checks, plan, apply, bootstrap,
and the monitor showing three members in a Primary Component.

Needs root and the lab (``studio-cluster lab up``).  Run: .venv/bin/pytest tests/tui -m lab
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.tui.conftest import REPO
from wizard.tui.app import create_app
from wizard.tui.screens.apply import ApplyScreen
from wizard.tui.screens.checks import ChecksScreen
from wizard.tui.screens.credentials import CredentialsScreen
from wizard.tui.screens.monitor import MonitorScreen
from wizard.tui.screens.nodes import NodesScreen
from wizard.tui.screens.plan import PlanScreen
from wizard.tui.screens.save import SaveScreen

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900),
              pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]


async def wait_for(pilot: Pilot[Any], what: str, predicate: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pilot.app.save_screenshot(f"lab-wizard-{what.replace(' ', '-')}.svg", path=str(REPO / "runs"))
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} "
                                 f"(screen: {type(pilot.app.screen).__name__}; screenshot in runs/)")
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def lab_up() -> None:
    from wizard import lab

    lab.up(progress=lambda _msg: None)


@pytest.mark.drill  # 16 s: make drills (make test's time budget); test_tmux_lab covers the wizard on the lab
async def test_wizard_stands_up_the_lab_and_lands_on_a_healthy_monitor(lab_up: None, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    app = create_app(Path("profiles/lab.yaml"), profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, "the filled form", lambda: isinstance(app.screen, NodesScreen)
                       and app.screen.valid, 10)
        form = app.screen
        assert isinstance(form, NodesScreen)
        assert form.values["nodes-0-address"] == "198.18.0.11"
        await pilot.press("ctrl+n")

        await wait_for(pilot, "the credentials", lambda: isinstance(app.screen, CredentialsScreen)
                       and app.screen.ready, 10)
        await pilot.press("ctrl+n")

        await wait_for(pilot, "the checks to pass", lambda: isinstance(app.screen, ChecksScreen)
                       and app.screen.can_continue, 180)
        await pilot.press("ctrl+n")

        await wait_for(pilot, "the plan", lambda: isinstance(app.screen, PlanScreen) and app.screen.ready, 60)
        await pilot.press("ctrl+n")
        # not saved yet: the save dialog proposes the file it was loaded from; save a copy elsewhere
        await wait_for(pilot, "the save dialog", lambda: isinstance(app.screen, SaveScreen), 10)
        assert app.screen.query_one("#save-path", Input).value == str(REPO / "profiles" / "lab.yaml")
        app.screen.query_one("#save-path", Input).value = str(tmp_path / "profiles" / "studio-lab.yaml")
        await pilot.press("enter")

        await wait_for(pilot, "apply and bootstrap", lambda: (isinstance(app.screen, ApplyScreen)
                       and app.screen.outcome is not None) or isinstance(app.screen, MonitorScreen), 600)
        if isinstance(app.screen, ApplyScreen):
            result = app.screen.query_one("#apply-result").render()
            raise AssertionError(f"the pipeline ended {app.screen.outcome}: {result}")

        saved = tmp_path / "profiles" / "studio-lab.yaml"
        assert saved.is_file()
        assert "file:/var/lib/studio-cluster-lab/secrets/sst_password" in saved.read_text()

        def three_members() -> bool:
            screen = app.screen
            st = screen.last if isinstance(screen, MonitorScreen) else None
            return bool(st and st.verdict == "healthy" and len(st.primary_members) == 2 and st.arbiter_member
                        and all(n.size == 3 for n in st.nodes if n.role == "studio"))

        await wait_for(pilot, "a healthy monitor with three members", three_members, 60)
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        await wait_for(pilot, "the next poll", lambda: len(monitor.history.flow_control) >= 2, 30)
    app.session.close()


async def test_monitor_shows_a_stopped_node_within_10s_and_its_rejoin(lab_up: None,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs after the wizard test formed the cluster (or forms it first)."""
    import asyncio

    from wizard import lab
    from wizard.pipeline import replay
    from wizard.profile import load_profile
    from wizard.secrets import Secrets

    monkeypatch.chdir(REPO)
    profile = load_profile(REPO / "profiles" / "lab.yaml")
    secrets = Secrets.resolve_for(profile)
    await asyncio.to_thread(replay, profile, secrets, skip_checks=True)  # healthy to begin with (no-op if so)
    app = create_app(Path("profiles/lab.yaml"), monitor=True, interval=1.0)
    async with app.run_test(size=(100, 30)) as pilot:
        def status() -> Any:
            screen = app.screen
            return screen.last if isinstance(screen, MonitorScreen) else None

        await wait_for(pilot, "a healthy monitor", lambda: status() is not None and status().verdict == "healthy",
                       30)
        lab.host_exec("studio2", ["pkill", "-TERM", "-x", "mariadbd"])
        stopped = time.monotonic()
        await wait_for(pilot, "studio2 down and the cluster degraded", lambda: (
            status().verdict == "degraded" and not status().node("studio2").primary_synced), 10)
        shown_after = time.monotonic() - stopped
        print(f"monitor showed studio2 down after {shown_after:.1f}s")
        assert shown_after <= 10, shown_after
        assert "studio2" in status().reason
        await asyncio.to_thread(replay, profile, secrets, skip_checks=True)  # studio2 rejoins (IST)
        await wait_for(pilot, "studio2 back and the cluster healthy", lambda: (
            status().verdict == "healthy" and status().node("studio2").primary_synced), 30)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)


@pytest.mark.drill  # 40 s; the tmux lab test in make test types a whole lab cluster into an empty wizard too
async def test_new_cluster_typed_in_reaches_a_healthy_monitor(lab_up: None, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty wizard, the lab typed in by hand (profiles/lab.yaml's values) except the service manager,
    which stays at the default (systemd): the services check finds no systemd on the lab's hosts and the
    wizard offers `direct` (u); then checks, plan, save where the person says, apply, a healthy monitor."""
    import yaml

    from tests.tui.test_new_cluster import type_cluster, type_secret_refs

    monkeypatch.chdir(tmp_path)  # nothing may land in the current directory unasked
    lab = yaml.safe_load((REPO / "profiles" / "lab.yaml").read_text())
    app = create_app(profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")
    async with app.run_test(size=(160, 48)) as pilot:
        form = await type_cluster(pilot, lab, skip=("services-manager",))
        assert form.values["services-manager"] == "systemd"
        await wait_for(pilot, "the form to be valid", lambda: form.valid, 10)
        await pilot.press("ctrl+n")
        await wait_for(pilot, "the credentials", lambda: isinstance(app.screen, CredentialsScreen), 10)
        creds = await type_secret_refs(pilot, lab)
        await wait_for(pilot, "the secrets to resolve", lambda: creds.ready, 10)
        await pilot.press("ctrl+n")

        await wait_for(pilot, "the checks to finish", lambda: isinstance(app.screen, ChecksScreen)
                       and not app.screen.running and bool(app.screen.results), 180)
        checks = app.screen
        assert isinstance(checks, ChecksScreen)
        assert checks.found_settings() == {"services.manager": "direct"}
        await pilot.press("u")
        await wait_for(pilot, "the checks to pass with services.manager direct",
                       lambda: checks.can_continue, 180)
        assert app.session.profile is not None and app.session.profile.services.manager == "direct"
        await pilot.press("ctrl+n")

        await wait_for(pilot, "the plan", lambda: isinstance(app.screen, PlanScreen) and app.screen.ready, 60)
        await pilot.press("ctrl+n")
        await wait_for(pilot, "the save dialog", lambda: isinstance(app.screen, SaveScreen), 10)
        target = tmp_path / "profiles" / "studio-lab.yaml"
        assert app.screen.query_one("#save-path", Input).value == str(target)
        await pilot.press("enter")

        await wait_for(pilot, "apply and bootstrap", lambda: (isinstance(app.screen, ApplyScreen)
                       and app.screen.outcome is not None) or isinstance(app.screen, MonitorScreen), 600)
        if isinstance(app.screen, ApplyScreen):
            result = app.screen.query_one("#apply-result").render()
            raise AssertionError(f"the pipeline ended {app.screen.outcome}: {result}")
        saved = yaml.safe_load(target.read_text())
        assert saved["services"]["manager"] == "direct"
        assert saved["redis"]["sentinels"] == lab["redis"]["sentinels"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["profiles", "runs"]  # nothing else written here

        def healthy() -> bool:
            screen = app.screen
            st = screen.last if isinstance(screen, MonitorScreen) else None
            return bool(st and st.verdict == "healthy" and st.arbiter_member)

        await wait_for(pilot, "a healthy monitor", healthy, 60)
    app.session.close()
