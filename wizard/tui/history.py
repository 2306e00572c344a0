"""What the monitor remembers between polls: commit rate, flow control, bytes/s, per-node figures, events.

Pure code over consecutive :class:`wizard.status.ClusterStatus` values (no Textual, no I/O): the event
wording lives in :mod:`wizard.cluster_events` and the rates in :mod:`wizard.rates` (the core, shared with
the headless recorder); this keeps the last minutes of them for the sparklines.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from wizard.cluster_events import HistoryEvent, diff_status
from wizard.rates import NodeFlow, busiest_bytes_per_s, commit_counter, flows, worst_paused

if TYPE_CHECKING:
    from collections.abc import Sequence

    from wizard.status import ClusterStatus

__all__ = ["History", "HistoryEvent", "commit_counter", "diff_status"]


class History:
    """The last ``maxlen`` samples of commit rate (commits/s), flow control (the worst node's paused
    fraction of the last interval, 0..1) and replicated bytes/s, the last events, and each data node's
    :class:`wizard.rates.NodeFlow` at the latest poll."""

    def __init__(self, maxlen: int = 120, max_events: int = 500) -> None:
        self.commit_rate: deque[float] = deque(maxlen=maxlen)
        self.flow_control: deque[float] = deque(maxlen=maxlen)
        self.bytes_rate: deque[float] = deque(maxlen=maxlen)
        self.events: deque[HistoryEvent] = deque(maxlen=max_events)
        self.flows: dict[str, NodeFlow] = {}
        self.last: ClusterStatus | None = None

    def add(self, status: ClusterStatus, events: Sequence[HistoryEvent] | None = None) -> list[HistoryEvent]:
        """Record one poll; returns its events: ``events`` when given (a recording's), else the changes
        from the previous poll."""
        prev = self.last
        self.flows = flows(prev, status)
        if prev is not None:
            a, b = commit_counter(prev), commit_counter(status)
            dt = status.ts - prev.ts
            rate = (b - a) / dt if a is not None and b is not None and b >= a and dt > 0 else 0.0
            self.commit_rate.append(rate)
            self.bytes_rate.append(busiest_bytes_per_s(self.flows))
        self.flow_control.append(worst_paused(self.flows))
        new = list(events) if events is not None else diff_status(prev, status)
        self.events.extend(new)
        self.last = status
        return new
