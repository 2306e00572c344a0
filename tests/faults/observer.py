"""The observer: every data node's wsrep status sampled every 0.2 s through ``lab.host_exec`` and the
local socket (no network, so it sees a partitioned node too).  Both nodes are asked at the same tick, so a
tick is one *moment* the checker can compare."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tests.faults.hostsql import DATA_NODES, wsrep_sample


@dataclass(frozen=True)
class Moment:
    t: float  # wall clock, seconds
    samples: dict[str, dict[str, str]]  # node -> wsrep fields (or {"down": reason})


class Observer(threading.Thread):
    """Sample until :meth:`stop`; `interval` in seconds.  :attr:`moments` grows while it runs."""

    def __init__(self, interval: float = 0.2, nodes: tuple[str, ...] = DATA_NODES) -> None:
        super().__init__(daemon=True, name="observer")
        self.interval, self.nodes = interval, nodes
        self.moments: list[Moment] = []
        self._halt = threading.Event()

    def stop(self) -> list[Moment]:
        self._halt.set()
        self.join(timeout=10)
        return self.moments

    def run(self) -> None:
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            next_tick = time.monotonic()
            while not self._halt.is_set():
                t = time.time()
                samples = dict(zip(self.nodes, pool.map(wsrep_sample, self.nodes), strict=True))
                self.moments.append(Moment(t, samples))
                next_tick += self.interval
                self._halt.wait(max(0.0, next_tick - time.monotonic()))
                next_tick = max(next_tick, time.monotonic() - self.interval)
