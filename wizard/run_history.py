"""What happened to the last run, and following a run that another front end started.

A run (one pipeline: ``replay``, ``recover``, the wizard's apply) leaves its story on the cluster's Redis
event stream (``<prefix>:<cluster>:events``): the front end's own steps under the node ``(front end)``
(:data:`wizard.coordinator.FRONT_NODE`): ``run:started`` with who started it and its run log,
``check``/``apply``/``bootstrap``/``verify`` steps, ``run:hangup`` when its terminal hung up, and
``run:done`` or ``run:fail`` at the end; and every agent's events, ``agent:started`` to ``agent:finished`` or
``agent:failed``.  A front end that dies (a closed terminal, a kill) writes no end: :func:`summarize` tells
that run apart by its sign of life (:func:`wizard.coordinator.front_key`, a key with a TTL of seconds) and by
the run's lease, which its detached agents keep while they work.

:func:`last_run` reads it for ``status`` and for the start of the next run; :func:`follow_run` lets a new run
follow one still at work instead of starting a second one beside it; :class:`RunRecorder` is the front end's
side of the story.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

from wizard.coordinator import FRONT_NODE, Event, RunLease, event_from, front_key, key, run_family
from wizard.profile import Profile
from wizard.secrets import REDACTOR

SCAN = 3000  # newest stream entries read to find the last run (the stream keeps about 5000)
ENDED = ("finished", "failed")  # an agent's last event


def utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


@dataclass
class RunSummary:
    """The story of one run.  ``outcome``: ``finished`` (the front end reached the end and the cluster
    verified healthy), ``failed`` (the front end reported a failure: ``detail``), ``going`` (its front end
    is alive), ``interrupted`` (its front end went away before the end).  ``agents``: node -> ``running``,
    ``finished: <action>`` or ``failed: <why>`` for the run's last agent round.  Times are Unix seconds."""

    run: str
    started: float
    front: str = ""
    runlog: str = ""
    last_node: str = ""
    last_step: str = ""
    last_state: str = ""
    last_message: str = ""
    last_ts: float = 0.0
    outcome: str = "interrupted"
    detail: str = ""
    agents: dict[str, str] = field(default_factory=dict)
    agents_running: bool = False
    hangup: float = 0.0

    @property
    def last(self) -> str:
        """The last step, as one line: ``node step:state message (time)``."""
        return (f"{self.last_node} {self.last_step}:{self.last_state} {self.last_message}".strip()
                + f" ({utc(self.last_ts)})")

    @property
    def verdict(self) -> str:
        if self.outcome == "finished":
            return "finished"
        if self.outcome == "failed":
            return f"failed: {self.detail}" if self.detail else "failed"
        if self.outcome == "going":
            return "still going (its front end is alive)"
        if self.agents_running:
            return "interrupted: its front end went away; its agents are still at work on the nodes"
        ended = " and its agents finished on their own" if self.agents and all(
            a.startswith("finished") for a in self.agents.values()) else ""
        return f"interrupted: its front end went away before the end{ended}"

    def lines(self) -> list[str]:
        """What ``status`` and the next run print about it."""
        who = f" by {self.front}" if self.front else ""
        out = [f"last run {self.run}: started {utc(self.started)}{who}; {self.verdict}"]
        if self.hangup:
            out.append(f"  its terminal hung up at {utc(self.hangup)}; it went on headless")
        said = {self.detail} if self.detail else set()
        last = self.last
        if self.last_message and self.last_message in said:  # the failure is in the first line already
            last = f"{self.last_node} {self.last_step}:{self.last_state} (the failure above) ({utc(self.last_ts)})"
        out.append(f"  last step: {last}")
        if self.agents:
            parts = []
            for n, text in sorted(self.agents.items()):
                state, _, why = text.partition(": ")
                if state == "failed" and why:  # one refusal reaches every agent: say it once
                    if any(why in x or x in why for x in said):
                        text = "failed (the failure above)"
                    else:
                        said.add(why)
                parts.append(f"{n} {text}")
            out.append("  agents: " + ", ".join(parts))
        if self.runlog:
            out.append(f"  run log: {self.runlog}")
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = self.verdict
        return d


def summarize(events: Iterable[Event], *, front_alive: bool, lease_holder: str = "") -> RunSummary | None:
    """One run's summary from its events, oldest first (all of one run: :func:`run_family` of each ``run``
    the same).  ``front_alive``: the run's front-end key exists; ``lease_holder``: who holds the run lease now.
    None without events.  Pure: unit-tested."""
    evs = list(events)
    if not evs:
        return None
    s = RunSummary(run=run_family(evs[0].run), started=evs[0].ts)
    round_ = ""
    agents: dict[str, str] = {}
    for ev in evs:
        s.last_node, s.last_step, s.last_state, s.last_message, s.last_ts = (ev.node, ev.step, ev.state,
                                                                             ev.message, ev.ts)
        if ev.node == FRONT_NODE and ev.step == "run":
            if ev.state == "started":
                s.started = ev.ts
                s.front = ev.extra.get("front", "")
                s.runlog = ev.extra.get("runlog", "")
            elif ev.state in ("done", "fail"):
                s.outcome = "finished" if ev.state == "done" else "failed"
                s.detail = ev.message if ev.state == "fail" else ""
            elif ev.state == "hangup":
                s.hangup = ev.ts
            continue
        if ev.step == "agent" and ev.node != FRONT_NODE:
            if ev.run != round_ and ev.state == "started":
                round_, agents = ev.run, {}
            if ev.run != round_:
                continue
            if ev.state == "started":
                agents[ev.node] = "running"
            elif ev.state == "finished":
                agents[ev.node] = f"finished: {ev.extra.get('action') or 'done'}"
            elif ev.state == "failed":
                agents[ev.node] = f"failed: {ev.message}"
    running = any(v == "running" for v in agents.values())
    # agents at work keep the run's lease: without it, an agent that reported no end is gone (killed, or its
    # node went down) unless the run's front end is still there to say otherwise
    s.agents_running = running and (run_family(lease_holder) == s.run or front_alive)
    if running and not s.agents_running:
        agents = {n: ("ended without reporting (killed, or its node went down)" if v == "running" else v)
                  for n, v in agents.items()}
    s.agents = agents
    if s.outcome not in ("finished", "failed") and front_alive:
        s.outcome = "going"
    return s


def read_events(client: redis.Redis, profile: Profile, count: int = SCAN) -> list[Event]:
    """The newest ``count`` events of the cluster's stream, oldest first."""
    raw: Any = client.xrevrange(key(profile, "events"), count=count)
    return [event_from(entry_id, fields) for entry_id, fields in reversed(raw or [])]


def run_events(events: list[Event], run: str | None = None) -> list[Event]:
    """The events of ``run`` (a family id; None: the newest run that has any)."""
    if run is None:
        runs = [e.run for e in events if e.run]
        if not runs:
            return []
        run = run_family(runs[-1])
    return [e for e in events if e.run and run_family(e.run) == run]


def last_run(client: redis.Redis, profile: Profile, run: str | None = None) -> RunSummary | None:
    """The summary of ``run`` (default: the newest run on the stream), None when the stream has none.
    Raises redis.RedisError when the store cannot be read."""
    evs = run_events(read_events(client, profile), run)
    if not evs:
        return None
    family = run_family(evs[0].run)
    alive = bool(client.exists(front_key(profile, family)))
    started = [e for e in evs if e.node == FRONT_NODE and e.step == "run" and e.state == "started"]
    if alive and started and process_gone(started[-1].extra.get("host", ""), started[-1].extra.get("pid", "")):
        alive = False
    holder = str(client.get(key(profile, "run-lease")) or "")
    return summarize(evs, front_alive=alive, lease_holder=holder)


def follow_run(client: redis.Redis, profile: Profile, holder: str, *, timeout: float,
               on_event: Callable[[Event], None] | None = None) -> str:
    """Follow the run holding the lease (``holder``, its run id) until it lets the cluster go; its new
    events go to ``on_event``.  Returns ``released`` (its front end released the lease, another run took it, or
    it lapsed with none of the run's agents at work and its front end gone), or
    ``abandoned`` (its front end is gone and no agent of it is at work: the lease it left is released here, so
    the next run need not wait out its TTL).  Raises TimeoutError naming the run after
    ``timeout`` seconds; redis.RedisError when the store fails."""
    lease_key, stream = key(profile, "run-lease"), key(profile, "events")
    family = run_family(holder)
    latest: dict[str, str] = {}  # node -> its agent's last state in any round of the run
    front_gone = False  # its front end ran here and its process is gone
    for ev in read_events(client, profile):
        if ev.run and run_family(ev.run) == family:
            if ev.step == "agent" and ev.node != FRONT_NODE:
                latest[ev.node] = ev.state
            if ev.node == FRONT_NODE and ev.step == "run" and ev.state == "started":
                front_gone = process_gone(ev.extra.get("host", ""), ev.extra.get("pid", ""))
    last: Any = client.xrevrange(stream, count=1)
    last_id = last[0][0] if last else "0-0"
    deadline = time.monotonic() + timeout
    while True:
        now_holder = str(client.get(lease_key) or "")
        agents_busy = any(state not in ENDED for state in latest.values())
        front_alive = not front_gone and bool(client.exists(front_key(profile, holder)))
        if now_holder != holder:
            # Taken by another run, or let go by a front end that ended: this one's turn may come.  A lease that
            # merely lapsed (the machine paused, the store was away longer than its TTL) while the run's agents
            # are still at work, or its front end still lives, is no release: starting beside it would put a
            # second run's checks and agents on nodes the first is still bringing up.
            if now_holder or not (agents_busy or front_alive):
                return "released"
        elif not agents_busy and not front_alive:
            client.eval(RunLease.RELEASE, 1, lease_key, holder)
            return "abandoned"
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {holder} still holds the cluster after {timeout:.0f}s")
        resp: Any = client.xread({stream: last_id}, block=500, count=200)
        for _, entries in resp or []:
            for entry_id, fields in entries:
                last_id = entry_id
                ev = event_from(entry_id, fields)
                if not ev.run or run_family(ev.run) != family:
                    continue
                if ev.step == "agent" and ev.node != FRONT_NODE:
                    latest[ev.node] = ev.state
                if on_event is not None:
                    on_event(ev)


def front_label() -> str:
    """Who drives a run, for the story: ``studio-cluster replay (pid 123 on host)``."""
    name = Path(sys.argv[0]).name if sys.argv else "?"
    name = "studio-cluster" if name in ("__main__.py", "-m", "-c", "") else name  # python -m wizard
    args = [name] + [a for a in sys.argv[1:2] if not a.startswith("-")]
    return f"{' '.join(args)} (pid {os.getpid()} on {socket.gethostname()})"


def process_gone(host: str, pid: str) -> bool:
    """True when the front end ran on this machine and its process no longer exists (its key may outlive a
    killed front end by a few seconds; here we need not wait for it)."""
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class RunRecorder:
    """The front end's side of a run's story on the event stream, and its sign of life (a key with a TTL
    of :attr:`RunLease.FRONT_TTL_MS`, renewed every second while the run lives).  Never raises for the
    store: a run whose store is down fails in its bootstrap step, which says so."""

    PAUSE_S = 15.0  # seconds without writes after one failed

    def __init__(self, client: redis.Redis, profile: Profile, run_id: str | None = None) -> None:
        self.client, self.profile = client, profile
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.stop = threading.Event()
        self.beater = threading.Thread(target=self._beat_loop, daemon=True, name="front")
        self.ended = False
        self.paused_until = 0.0

    def _store(self, fn: Callable[[], Any]) -> None:
        """One write; after a failure the store is left alone for ``PAUSE_S`` (each try can wait out a
        failover: a run whose store is down must not crawl from one step to the next)."""
        if time.monotonic() < self.paused_until:
            return
        try:
            fn()
        except (redis.RedisError, OSError):
            self.paused_until = time.monotonic() + self.PAUSE_S

    def _write(self, step: str, state: str, message: str = "", **extra: str) -> None:
        fields = {"run": self.run_id, "node": FRONT_NODE, "step": step, "state": state, "message": REDACTOR(message),
                  "ts": f"{time.time():.3f}", **extra}
        self._store(lambda: self.client.xadd(key(self.profile, "events"), fields,  # type: ignore[arg-type]
                                             maxlen=5000, approximate=True))

    def _beat(self) -> None:
        self._store(lambda: self.client.set(front_key(self.profile, self.run_id), self.run_id,
                                            px=RunLease.FRONT_TTL_MS))

    def _beat_loop(self) -> None:
        while not self.stop.wait(1.0):
            self._beat()

    def start(self, runlog: str = "") -> None:
        self._beat()
        self._write("run", "started", "run started", front=front_label(), runlog=runlog,
                    host=socket.gethostname(), pid=str(os.getpid()))
        self.beater.start()

    def step(self, step: str, state: str, message: str = "") -> None:
        self._write(step, state, message)

    def hangup(self) -> None:
        self._write("run", "hangup", "the terminal hung up; going on headless to the end of the run")

    def end(self, ok: bool, message: str = "") -> None:
        if self.ended:
            return
        self.ended = True
        self.stop.set()
        self._write("run", "done" if ok else "fail", message)
        self._store(lambda: self.client.delete(front_key(self.profile, self.run_id)))


def unfinished_story(data: dict[str, Any]) -> list[str]:
    """What a front end opening profile ``data`` (the parsed YAML) should be told about the cluster's last run:
    its :meth:`RunSummary.lines` when it did not finish (interrupted, failed, still going), [] when it finished,
    when there is none, or when it cannot be read without asking anyone (an invalid profile, a Redis password
    set to ``ask``, the store unreachable within about 2 s).  Never raises."""
    from wizard.coordinator import redis_client
    from wizard.secrets import SecretError, Secrets

    try:
        profile = Profile.model_validate(data)
        secrets = Secrets.resolve_for(profile, only={"redis_password", "sentinel_password"})
    except (ValueError, SecretError):
        return []
    try:
        client = redis_client(profile, secrets, failover_wait_s=2.0)
    except (redis.RedisError, OSError, ValueError):
        return []
    try:
        story = last_run(client, profile)
    except (redis.RedisError, OSError):
        return []
    finally:
        client.close()
    return story.lines() if story is not None and story.outcome != "finished" else []
