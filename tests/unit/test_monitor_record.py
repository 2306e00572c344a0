"""Recordings: every poll and event in SQLite, read back in order; the headless watcher's on-change hook."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from tests.unit.monitor_values import T0, healthy, lab_profile, studio2_dead
from wizard.cluster_events import HistoryEvent, diff_status
from wizard.monitor_record import (
    Frame,
    Recorder,
    RecordingError,
    live_frames,
    read_frames,
    run_hook,
    status_from_dict,
    verdicts,
    watch,
)


def test_status_round_trips_through_json() -> None:
    st = studio2_dead(lab_profile(), T0)
    back = status_from_dict(json.loads(json.dumps(st.to_dict())))
    assert back == st


def test_record_then_read_gives_the_same_polls_and_events(tmp_path: Path) -> None:
    p = lab_profile()
    path = tmp_path / "sub" / "rec.sqlite"
    sts = [healthy(p, T0), studio2_dead(p, T0 + 2), healthy(p, T0 + 4)]
    rec = Recorder(path, p.cluster_name)
    prev = None
    for st in sts:
        rec.record(st, diff_status(prev, st))
        prev = st
    rec.record(None, [HistoryEvent(T0 + 6, "poll failed: TimeoutError: x", "bad")])
    rec.close()
    frames = list(read_frames(path))
    assert [f.status for f in frames[:3]] == sts and frames[3].status is None
    assert frames[3].events == [HistoryEvent(T0 + 6, "poll failed: TimeoutError: x", "bad")]
    assert frames[1].events == diff_status(sts[0], sts[1])
    assert verdicts(frames) == ["healthy", "degraded", "healthy"]
    again = Recorder(path, p.cluster_name)  # a second session appends
    again.record(sts[0], [])
    again.close()
    assert len(list(read_frames(path))) == 5


def test_a_recording_of_another_cluster_or_no_recording_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "rec.sqlite"
    Recorder(path, "studio-prod").close()
    with pytest.raises(RecordingError, match="records cluster 'studio-prod', not 'other'"):
        Recorder(path, "other")
    with pytest.raises(RecordingError, match="no such file"):
        list(read_frames(tmp_path / "missing.sqlite"))
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database at all " * 100)
    with pytest.raises(RecordingError, match="not a recording"):
        list(read_frames(junk))
    with pytest.raises(RecordingError, match="cannot open it as a recording"):
        Recorder(junk, "studio-prod")


def test_a_damaged_poll_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rec.sqlite"
    rec = Recorder(path, "studio-prod")
    rec.record(healthy(lab_profile()), [])
    rec.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE polls SET status = '{\"nodes\": 3}'")
    with pytest.raises(RecordingError, match="poll 1 is damaged"):
        list(read_frames(path))


HOOK = ("import os, sys; open(sys.argv[1], 'a').write("
        "os.environ['STUDIO_CLUSTER_PREVIOUS'] + '>' + os.environ['STUDIO_CLUSTER_VERDICT'] + '\\n')")


def test_watch_runs_the_hook_on_each_verdict_change(tmp_path: Path) -> None:
    p = lab_profile()
    log = tmp_path / "hook.log"
    sts = [healthy(p, T0), healthy(p, T0 + 2), studio2_dead(p, T0 + 4), studio2_dead(p, T0 + 6), healthy(p, T0 + 8)]
    rec = Recorder(tmp_path / "rec.sqlite", p.cluster_name)
    printed: list[HistoryEvent] = []
    seen = watch([Frame(s) for s in sts], recorder=rec, on_change=[sys.executable, "-c", HOOK, str(log)],
                 out=printed.append)
    rec.close()
    assert seen == ["healthy", "degraded", "healthy"]
    assert log.read_text().splitlines() == [">healthy", "healthy>degraded", "degraded>healthy"]
    assert sum("on-change" in e.text and e.text.endswith("done") for e in printed) == 3
    replayed = list(read_frames(tmp_path / "rec.sqlite"))
    assert verdicts(replayed) == seen and len(replayed) == 5
    assert any("studio2 left the Primary Component" in e.text for e in replayed[2].events or [])


def test_a_failing_or_missing_hook_is_an_event_not_a_crash(tmp_path: Path) -> None:
    st = healthy(lab_profile())
    ev = run_hook([sys.executable, "-c", "import sys; sys.exit('no pager configured')"], st, "degraded")
    assert ev.level == "warn" and "exited 1: no pager configured" in ev.text and "degraded -> healthy" in ev.text
    ev = run_hook([str(tmp_path / "nope")], st, "")
    assert ev.level == "warn" and "could not run" in ev.text
    ev = run_hook([sys.executable, "-c", "import time; time.sleep(30)"], st, "", timeout=0.5)
    assert "did not finish within 0.5s" in ev.text


def test_live_frames_turns_a_failed_poll_into_an_event_and_stops_when_asked() -> None:
    calls = iter([healthy(lab_profile()), OSError("no route")])

    def poll() -> object:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    frames = list(live_frames(poll, 0.0, threading.Event(), max_polls=2))  # type: ignore[arg-type]
    assert frames[0].status is not None and frames[1].status is None
    assert frames[1].events and "poll failed: OSError: no route" in frames[1].events[0].text
    stop = threading.Event()
    stop.set()
    assert list(live_frames(poll, 0.0, stop)) == []  # type: ignore[arg-type]
