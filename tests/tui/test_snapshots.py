"""Snapshots of every screen (pytest-textual-snapshot).  Update with: pytest tests/tui --snapshot-update

Screens that show cluster data get real core values (CheckResult, FileChange, Event, ClusterStatus)
through their public methods; nothing is polled and no clock shows, so the pictures are stable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widgets import Input

from tests.tui.conftest import FIXTURES, T0, degraded, healthy
from wizard.apply import FileChange
from wizard.checks import CheckResult, Status, planned
from wizard.coordinator import Event
from wizard.pipeline import bootstrap_steps
from wizard.profile import Profile
from wizard.render import authoring_record, render
from wizard.secrets import Secrets
from wizard.tui.app import WizardApp, create_app
from wizard.tui.screens.apply import ApplyScreen
from wizard.tui.screens.checks import ChecksScreen
from wizard.tui.screens.credentials import CredentialsScreen
from wizard.tui.screens.error import ErrorScreen
from wizard.tui.screens.monitor import MonitorScreen
from wizard.tui.screens.nodes import NodesScreen
from wizard.tui.screens.open_path import OpenPathScreen
from wizard.tui.screens.plan import PlanScreen
from wizard.tui.screens.save import SaveScreen

SIZES = pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
"""The wizard's screens at the smallest terminal it supports and a large one."""


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> WizardApp:
    monkeypatch.chdir(FIXTURES)  # the start screen lists ./profiles/
    return create_app(profiles_dir=Path("profiles"), runs_dir=tmp_path / "runs")


async def settle(pilot: Pilot[Any]) -> None:
    """Workers done, messages handled, and a steady cursor: a blinking one is on or off depending on
    when the picture is taken, which made the form snapshot flaky."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


async def retype(pilot: Pilot[Any], selector: str, text: str) -> None:
    """Focus an input, empty it and type `text` key by key (as a person would, minus the long erase)."""
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    await pilot.pause()
    field.value = field.value[:1]
    field.cursor_position = 1
    await pilot.press("backspace", *text)


def with_profile(app: WizardApp, profile: Profile, secrets: Secrets) -> None:
    app.session.profile = profile
    app.session.secrets = secrets


# -- the wizard ---------------------------------------------------------------------------------------
@SIZES
def test_start(snap_compare: Any, size: tuple[int, int], app: WizardApp) -> None:
    assert snap_compare(app, terminal_size=size, run_before=settle)


@SIZES
def test_nodes_form_with_errors(snap_compare: Any, size: tuple[int, int], app: WizardApp, data: dict[str, Any]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(NodesScreen(data, source="profiles/prod.yaml"))
        await settle(pilot)
        await retype(pilot, "#f-nodes-1-name", "studio1")  # a duplicate name
        await retype(pilot, "#f-nodes-0-address", "10.20.0.300")  # not an address
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_nodes_form_lower_sections(snap_compare: Any, size: tuple[int, int], app: WizardApp,
                                   data: dict[str, Any]) -> None:
    """DNS and the coordination store (Sentinels, a PowerDNS API): at 80 columns no label or example is cut."""
    data["dns"]["api_url"] = "http://10.20.0.53:8081"
    data["redis"] = {"sentinels": ["10.20.0.11:26379", "10.20.0.12:26379"], "master_name": "studio-prod"}

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = NodesScreen(data, source="profiles/prod.yaml")
        await pilot.app.push_screen(screen)
        await settle(pilot)
        screen.query_one("#f-dns-authoring_name", Input).focus()  # as Tab would: the form scrolls to it
        await settle(pilot)
        form = screen.query_one("#form", VerticalScroll)
        form.scroll_to_widget(screen.query_one("#ff-preferred_primary"), top=True, animate=False, immediate=True)
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_credentials(snap_compare: Any, size: tuple[int, int], app: WizardApp, data: dict[str, Any],
                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUI_TEST_SST_PASSWORD", raising=False)
    monkeypatch.delenv("TUI_TEST_REDIS_PASSWORD", raising=False)

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(CredentialsScreen(data))
        await settle(pilot)
        await pilot.click("#val-sst_password")
        await pilot.press(*"correct horse")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def check_results(profile: Profile) -> list[CheckResult]:
    out = []
    for check, node in planned(profile):
        status, summary, fix = Status.OK, "ok", ""
        if check.id == "ssh":
            summary = "root@ reachable, host key verified"
        elif check.id == "network" and node == "studio2":
            status, summary = Status.FAIL, "10.20.0.13:4567 (arbiter) refused the connection"
            fix = "open 4567/tcp on arbiter (firewall) or start the service that listens there"
        elif check.id == "clock":
            status, summary, fix = Status.WARN, "clocks differ by 1.8s", "run chrony or systemd-timesyncd on every node"
        out.append(CheckResult(check.id, check.title, node, status, summary, fix, 0.2))
    return out


@SIZES
def test_checks_with_failure(snap_compare: Any, size: tuple[int, int], app: WizardApp, profile: Profile,
                             secrets: Secrets) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        with_profile(app, profile, secrets)
        screen = ChecksScreen(autorun=False)
        await pilot.app.push_screen(screen)
        screen.set_planned([(c.id, c.title, n) for c, n in planned(profile)])
        for r in check_results(profile):
            screen.show_result(r)
        screen.run_finished()
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def file_changes(profile: Profile) -> list[FileChange]:
    rendered = render(profile, None)
    changes = []
    for node in [n.name for n in profile.nodes]:
        for i, f in enumerate(rendered[node]):
            if node == "studio1" and i == 0:
                old = f.content.replace("wsrep_provider_options", "# wsrep_provider_options").replace(
                    "studio-prod", "studio-old")
                changes.append(FileChange(node, f, old, "update"))
            elif node == "arbiter":
                changes.append(FileChange(node, f, f.content, "unchanged"))
            else:
                changes.append(FileChange(node, f, None, "create"))
    return changes


@SIZES
def test_plan(snap_compare: Any, size: tuple[int, int], app: WizardApp, profile: Profile, secrets: Secrets) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        with_profile(app, profile, secrets)
        screen = PlanScreen(autorun=False)
        await pilot.app.push_screen(screen)
        screen.show_plan(file_changes(profile), bootstrap_steps(profile),
                         f"{profile.dns.record_zone}: {authoring_record(profile)}")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_plan_bootstrap_steps(snap_compare: Any, size: tuple[int, int], app: WizardApp, profile: Profile,
                              secrets: Secrets) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        with_profile(app, profile, secrets)
        screen = PlanScreen(autorun=False)
        await pilot.app.push_screen(screen)
        screen.show_plan(file_changes(profile), bootstrap_steps(profile),
                         f"{profile.dns.record_zone}: {authoring_record(profile)}")
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def feed_apply(screen: ApplyScreen, profile: Profile) -> None:
    changes = [c for c in file_changes(profile) if c.action != "unchanged"]
    screen.pipeline_step("check", "skip", "checks skipped")
    screen.pipeline_step("apply", "start", "comparing rendered files with the nodes")
    for i, c in enumerate(changes[:3]):
        screen.pipeline_command({"node": c.node, "command": f"install -m 644 -o root -g root /tmp/x {c.file.path}",
                                 "exit_code": 0, "duration": 0.04, "ts": T0 + i})
        screen.pipeline_file(c)
    screen.pipeline_step("apply", "done", "3 file(s) written")
    screen.pipeline_step("bootstrap", "start", "agents electing and starting nodes")
    run = "3f9a1c2b7d4e"
    events = [
        ("studio1", "register", "done", "uuid 6f1c6a3e seqno 1200 safe_to_bootstrap 1 recovered 1200 running no"),
        ("studio2", "register", "done", "uuid 6f1c6a3e seqno 1187 safe_to_bootstrap 0 recovered 1187 running no"),
        ("arbiter", "garbd", "waiting", "waiting for both data nodes to be Primary and Synced"),
        ("studio1", "elect", "done", "studio1 has the highest seqno (1200 > 1187)"),
        ("studio1", "bootstrap", "running", "starting mariadbd --wsrep-new-cluster (fencing token 7)"),
        ("studio2", "join", "waiting", "waiting for a Primary Component to join"),
    ]
    for i, (node, step, state, msg) in enumerate(events):
        screen.pipeline_event(Event(f"{i}-0", node, step, state, msg, T0 + 10 + i, run))


@SIZES
def test_apply_progress(snap_compare: Any, size: tuple[int, int], app: WizardApp, profile: Profile,
                        secrets: Secrets) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        with_profile(app, profile, secrets)
        screen = ApplyScreen(profile=profile, autorun=False)
        await pilot.app.push_screen(screen)
        feed_apply(screen, profile)
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_save_dialog_before_apply(snap_compare: Any, size: tuple[int, int], app: WizardApp, profile: Profile,
                                  secrets: Secrets) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        with_profile(app, profile, secrets)
        app.session.profile_path = Path("/srv/studio-cluster/profiles/prod.yaml")  # the same in any checkout
        await pilot.app.push_screen(SaveScreen(before_apply=True))
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_open_path_dialog_with_a_missing_file(snap_compare: Any, size: tuple[int, int], app: WizardApp,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")  # the note names the directory relative paths start at: the same in any checkout

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(OpenPathScreen())
        await settle(pilot)
        await pilot.press(*"srv/profiles/no-such-profile.yaml", "enter")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_error_view_with_a_long_message(snap_compare: Any, size: tuple[int, int], app: WizardApp) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        reason = ("studio2: mariadbd did not start: [ERROR] WSREP: failed to open gcomm backend connection: "
                  "110: failed to reach primary view (pc.wait_prim_timeout): 110 (Connection timed out) at "
                  "gcomm/src/pc.cpp:connect():161; [ERROR] WSREP: gcs/src/gcs_core.cpp:gcs_core_open():219: "
                  "Failed to open backend connection: -110 (Connection timed out)")
        await pilot.app.push_screen(ErrorScreen("apply and bootstrap", RuntimeError(reason)))
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_discard_edits_dialog(snap_compare: Any, size: tuple[int, int], app: WizardApp, data: dict[str, Any]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(NodesScreen(data, source="profiles/prod.yaml"))
        await settle(pilot)
        await retype(pilot, "#f-nodes-1-name", "studio3")
        await pilot.press("escape")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


# -- the monitor --------------------------------------------------------------------------------------
@SIZES
def test_monitor_healthy(snap_compare: Any, size: tuple[int, int], app: WizardApp, profile: Profile) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = MonitorScreen(poll=False)
        await pilot.app.push_screen(screen)
        seqno = 1000
        for i in range(30):
            seqno += (i * 7) % 23 + 2
            screen.show_status(healthy(profile, T0 + 2 * i, seqno, fc=0.02 if i in (11, 12) else 0.0))
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_monitor_degraded(snap_compare: Any, size: tuple[int, int], app: WizardApp, profile: Profile) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = MonitorScreen(poll=False)
        await pilot.app.push_screen(screen)
        seqno = 1000
        for i in range(20):
            seqno += 5
            screen.show_status(healthy(profile, T0 + 2 * i, seqno))
        for i in range(20, 26):
            seqno += 3
            screen.show_status(degraded(profile, T0 + 2 * i, seqno))
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
