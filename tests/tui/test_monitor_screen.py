"""The monitor with identities and replication figures, recording and replaying through the same screen.

Real core values drawn through the screen's public methods (as in test_snapshots), and real SQLite
recordings in tmp_path; nothing polls a cluster here (the lab test does: tests/lab/test_monitor_record.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, RichLog, Static

from tests.tui.test_snapshots import settle
from tests.unit.monitor_values import T0, healthy, lab_profile, studio2_dead
from wizard.cluster_events import diff_status
from wizard.monitor_record import Recorder, read_frames, verdicts
from wizard.status import ClusterStatus
from wizard.tui.app import WizardApp, create_app
from wizard.tui.screens.monitor import MonitorScreen


@pytest.fixture
def app(tmp_path: Path) -> WizardApp:
    return create_app(profiles_dir=tmp_path, runs_dir=tmp_path / "runs")


def session() -> list[ClusterStatus]:
    """Busy and healthy (flow control pausing now and then, a certification failure), then studio2's
    mariadbd stops: studio1 and garbd go on as a component of two."""
    p = lab_profile()
    out = []
    paused = sent = 0
    for i in range(12):
        paused += 600_000_000 if i in (8, 9) else 0
        sent += 40_000 + 5_000 * (i % 4)
        out.append(healthy(p, T0 + 2 * i, seqno=1000 + 9 * i, paused_ns=paused, sent=sent, received=sent // 3,
                           cert=1 if i >= 10 else 0, uptime=1000 + 2 * i, wsrep_local_recv_queue=str(i % 3)))
    for i in range(12, 16):
        sent += 30_000
        out.append(studio2_dead(p, T0 + 2 * i, seqno=1000 + 9 * i, paused_ns=paused, sent=sent, received=sent // 3,
                                cert=1, uptime=1000 + 2 * i))
    return out


def events_text(screen: MonitorScreen) -> str:
    """The event log's words, with the log's wrapping undone."""
    return " ".join(" ".join(line.text for line in screen.query_one("#mon-events", RichLog).lines).split())


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_monitor_dead_data_node_garbd_still_in(snap_compare: Any, app: WizardApp, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = MonitorScreen(poll=False)
        await pilot.app.push_screen(screen)
        for st in session():
            screen.show_status(st)
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def test_dead_data_node_keeps_garbd_in_the_view_and_the_log(app: WizardApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        screen = MonitorScreen(poll=False)
        await app.push_screen(screen)
        for st in session():
            screen.show_status(st)
        await pilot.pause()
        summary = str(screen.query_one("#mon-summary", Static).render())
        assert "Primary Component: studio1, garbd" in summary
        log = events_text(screen)
        assert "studio2 left the Primary Component" in log and "garbd left" not in log
        assert "studio1: 1 certification failure(s) since the last poll" in log
        table = screen.query_one("#mon-nodes", DataTable)
        assert str(table.get_cell("arbiter", "state")).startswith("member")
        assert screen.history.flows["studio1"].paused == 0.0
        assert max(screen.history.flow_control) == pytest.approx(0.3)


async def test_record_then_replay_through_the_same_screen(app: WizardApp, tmp_path: Path) -> None:
    path = tmp_path / "session.sqlite"
    statuses = [*session(), healthy(lab_profile(), T0 + 40)]
    async with app.run_test(size=(120, 40)) as pilot:
        screen = MonitorScreen(poll=False, record=path)
        await app.push_screen(screen)
        for st in statuses:
            screen.show_status(st)
        await pilot.pause()
        recorded = events_text(screen)
        app.pop_screen()  # closes the recording
        await pilot.pause()
        assert screen.recorder is None
    frames = list(read_frames(path))
    assert [f.status for f in frames] == statuses
    assert verdicts(frames) == ["healthy", "degraded", "healthy"]

    replay_app = create_app(profiles_dir=tmp_path, runs_dir=tmp_path / "runs")
    async with replay_app.run_test(size=(120, 40)) as pilot:
        screen = MonitorScreen(replay=path, interval=30.0)  # the timer never fires; `r` steps
        await replay_app.push_screen(screen)
        await replay_app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.frame_index == 1 and len(screen.frames) == len(statuses)
        seen = [screen.last.verdict if screen.last else ""]
        while screen.frame_index < len(screen.frames):
            await pilot.press("r")
            await pilot.pause()
            seen.append(screen.last.verdict if screen.last else "")
        assert [v for i, v in enumerate(seen) if i == 0 or seen[i - 1] != v] == ["healthy", "degraded", "healthy"]
        assert events_text(screen) == recorded
        assert "(the end)" in str(screen.query_one("#mon-status", Static).render())


async def test_replaying_a_missing_file_says_so(app: WizardApp, tmp_path: Path) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        screen = MonitorScreen(replay=tmp_path / "nope.sqlite")
        await app.push_screen(screen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "no such file" in events_text(screen)


async def test_a_recording_of_another_cluster_is_refused_once_and_the_monitor_goes_on(
        app: WizardApp, tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    Recorder(path, "another-cluster").close()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = MonitorScreen(poll=False, record=path)
        await app.push_screen(screen)
        for st in session()[:3]:
            screen.show_status(st)
        await pilot.pause()
        log = events_text(screen)
        assert log.count("records cluster 'another-cluster'") == 1 and screen.last is not None


def test_recorded_events_are_the_event_log() -> None:
    sts = session()
    assert diff_status(sts[11], sts[12])[0].text.startswith("verdict healthy -> degraded")


async def test_the_cli_replay_app_opens_on_the_replay(tmp_path: Path) -> None:
    from wizard.tui.screens.monitor import _install

    path = tmp_path / "r.sqlite"
    rec = Recorder(path, "studio-prod")
    for st in session()[:3]:
        rec.record(st, [])
    rec.close()
    app = create_app(None, monitor=True, interval=30.0)
    _install(app, MonitorScreen(interval=30.0, replay=path))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, MonitorScreen) and screen.frame_index == 1 and len(screen.frames) == 3
        assert screen.sub_title == "replay: studio-prod"
