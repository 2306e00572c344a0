"""The monitor's history on disk: every poll and event in SQLite, read back for a replay, and the
headless watcher that records and runs a command when the verdict changes.

A recording is one SQLite file (stdlib :mod:`sqlite3`, WAL, one commit per poll so a crash loses at most
the poll in flight) with three tables: ``meta`` (format, cluster), ``polls`` (``ts`` Unix seconds,
``verdict``, ``status``: the :class:`wizard.status.ClusterStatus` as JSON, NULL for a poll that failed)
and ``events`` (``poll_id``, ``ts``, ``level``, ``text``).  Several sessions may append to one file as
long as they watch the same cluster.

No Textual here: ``studio-cluster monitor --record FILE --on-change CMD`` runs without a screen, and the
monitor screen uses the same :class:`Recorder` and :func:`read_frames`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from wizard.cluster_events import HistoryEvent, diff_status
from wizard.status import ClusterStatus, NodeStatus

FORMAT = "1"
HOOK_TIMEOUT_S = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS polls (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, verdict TEXT, status TEXT);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, poll_id INTEGER NOT NULL REFERENCES polls(id), ts REAL NOT NULL,
    level TEXT NOT NULL, text TEXT NOT NULL);
"""


class RecordingError(Exception):
    """A recording that cannot be written or read; the message names the file and what to do."""


@dataclass(frozen=True)
class Frame:
    """One poll: its ``status`` (None when the poll failed) and its ``events`` (None: not computed yet,
    the watcher derives them from the previous poll)."""

    status: ClusterStatus | None
    events: list[HistoryEvent] | None = None


def status_from_dict(d: dict[str, Any]) -> ClusterStatus:
    """The :class:`ClusterStatus` that :meth:`ClusterStatus.to_dict` gave ``d`` (derived keys such as a
    node's ``state`` are dropped, unknown keys ignored).  Raises KeyError/TypeError on a malformed dict."""
    node_keys = {f.name for f in fields(NodeStatus)}
    nodes = [NodeStatus(**{k: v for k, v in n.items() if k in node_keys}) for n in d["nodes"]]
    keys = {f.name for f in fields(ClusterStatus)} - {"nodes"}
    return ClusterStatus(nodes=nodes, **{k: v for k, v in d.items() if k in keys})


class Recorder:
    """Appends polls and events to a recording.  Thread-safe (the monitor screen records from its UI
    thread, the headless watcher from its own); close it when done.

    Raises :class:`RecordingError` when ``path`` cannot be opened as a recording, or records another
    cluster than ``cluster`` (pass "" to skip that check).
    """

    def __init__(self, path: Path, cluster: str = "") -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except (sqlite3.Error, OSError) as exc:
            raise RecordingError(f"--record {path}: cannot open it as a recording ({exc}); "
                                 "name a new file or an earlier recording") from exc
        if meta.get("format", FORMAT) != FORMAT:
            self._db.close()
            raise RecordingError(f"--record {path}: recording format {meta['format']}, this version writes "
                                 f"{FORMAT}; name a new file")
        if cluster and meta.get("cluster", cluster) != cluster:
            self._db.close()
            raise RecordingError(f"--record {path}: it records cluster {meta['cluster']!r}, not {cluster!r}; "
                                 "name a new file")
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))
            if cluster:
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('cluster', ?)", (cluster,))
        self.polls = 0

    def record(self, status: ClusterStatus | None, events: Sequence[HistoryEvent]) -> None:
        """Store one poll (``status`` None: the poll failed) with its events, committed at once."""
        ts = status.ts if status is not None else (events[0].ts if events else time.time())
        blob = json.dumps(status.to_dict()) if status is not None else None
        with self._lock, self._db:
            cur = self._db.execute("INSERT INTO polls (ts, verdict, status) VALUES (?, ?, ?)",
                                   (ts, status.verdict if status is not None else None, blob))
            self._db.executemany("INSERT INTO events (poll_id, ts, level, text) VALUES (?, ?, ?, ?)",
                                 [(cur.lastrowid, e.ts, e.level, e.text) for e in events])
            self.polls += 1

    def close(self) -> None:
        with self._lock:
            self._db.close()


def read_frames(path: Path) -> Iterator[Frame]:
    """The polls of a recording in the order they were taken, each with its recorded events.

    Raises :class:`RecordingError` when the file is missing or not a recording."""
    if not path.is_file():
        raise RecordingError(f"--replay {path}: no such file; name a file written by `monitor --record`")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT id, status FROM polls ORDER BY id").fetchall()
            evs: dict[int, list[HistoryEvent]] = {}
            for poll_id, ts, level, text in db.execute(
                    "SELECT poll_id, ts, level, text FROM events ORDER BY id"):
                evs.setdefault(poll_id, []).append(HistoryEvent(ts, text, level))
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise RecordingError(f"--replay {path}: not a recording ({exc}); name a file written by "
                             "`monitor --record`") from exc
    for poll_id, blob in rows:
        try:
            status = status_from_dict(json.loads(blob)) if blob is not None else None
        except (ValueError, KeyError, TypeError) as exc:
            raise RecordingError(f"--replay {path}: poll {poll_id} is damaged ({type(exc).__name__}: {exc}); "
                                 "the polls before it replay with --replay on a copy cut before it") from exc
        yield Frame(status, evs.get(poll_id, []))


def verdicts(frames: Iterable[Frame]) -> list[str]:
    """The verdict sequence of ``frames`` with repeats (and failed polls) left out, e.g.
    ``["healthy", "degraded", "healthy"]``."""
    out: list[str] = []
    for f in frames:
        if f.status is not None and (not out or out[-1] != f.status.verdict):
            out.append(f.status.verdict)
    return out


def run_hook(argv: Sequence[str], status: ClusterStatus, previous: str, *,
             timeout: float = HOOK_TIMEOUT_S) -> HistoryEvent:
    """Run the on-change command ``argv`` with the verdict in its environment: STUDIO_CLUSTER_VERDICT,
    STUDIO_CLUSTER_PREVIOUS ("" on the first poll), STUDIO_CLUSTER_REASON, STUDIO_CLUSTER_NAME.  Waits
    up to ``timeout`` seconds; returns what happened as an event (never raises for the command's fault)."""
    env = dict(os.environ, STUDIO_CLUSTER_VERDICT=status.verdict, STUDIO_CLUSTER_PREVIOUS=previous,
               STUDIO_CLUSTER_REASON=status.reason, STUDIO_CLUSTER_NAME=status.cluster)
    what = f"on-change {argv[0]} ({previous or 'start'} -> {status.verdict})"
    try:
        res = subprocess.run(list(argv), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return HistoryEvent(time.time(), f"{what} did not finish within {timeout:g}s and was killed", "warn")
    except OSError as exc:
        return HistoryEvent(time.time(), f"{what} could not run: {exc.strerror or exc}", "warn")
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or [""])[-1][:200]
        return HistoryEvent(time.time(), f"{what} exited {res.returncode}" + (f": {tail}" if tail else ""), "warn")
    return HistoryEvent(time.time(), f"{what} done", "info")


def live_frames(poll: Callable[[], ClusterStatus], interval: float, stop: threading.Event,
                max_polls: int | None = None) -> Iterator[Frame]:
    """Poll every ``interval`` seconds until ``stop`` is set (or ``max_polls`` polls); a poll that
    raises gives a frame without a status and an event saying why."""
    n = 0
    while not stop.is_set() and (max_polls is None or n < max_polls):
        t0 = time.monotonic()
        try:
            yield Frame(poll())
        except Exception as exc:  # a poll's failure is an event of the recording, never the end of it
            yield Frame(None, [HistoryEvent(time.time(), f"poll failed: {type(exc).__name__}: {exc}", "bad")])
        n += 1
        stop.wait(max(0.0, interval - (time.monotonic() - t0)))


def watch(frames: Iterable[Frame], *, recorder: Recorder | None = None, on_change: Sequence[str] | None = None,
          out: Callable[[HistoryEvent], None] | None = None) -> list[str]:
    """Headless monitor: for each frame, the events (recorded ones, or the changes since the previous
    poll), the on-change command when the verdict changed (the first poll counts as a change from ""),
    the recording, and ``out`` for each event.  Returns the verdict sequence (repeats left out)."""
    prev: ClusterStatus | None = None
    seen: list[str] = []
    for frame in frames:
        events = list(frame.events) if frame.events is not None else (
            diff_status(prev, frame.status) if frame.status is not None else [])
        if frame.status is not None:
            previous = prev.verdict if prev is not None else ""
            if previous != frame.status.verdict:
                seen.append(frame.status.verdict)
                if on_change:
                    events.append(run_hook(on_change, frame.status, previous))
            prev = frame.status
        if recorder is not None:
            recorder.record(frame.status, events)
        if out is not None:
            for ev in events:
                out(ev)
    return seen
