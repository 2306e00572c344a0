"""The writer: numbered rows through the authoring DNS name, one autocommit INSERT each, reconnecting on
any failure.  A row counts as *acknowledged* only when its commit returned OK; a row whose commit got no
answer is *in doubt* (it may or may not have committed) and is never counted as lost."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

import pymysql

from wizard.checks.names import query_a
from wizard.profile import Profile

DATABASE = "faults"
TABLE = "acked"
USER = "faultwriter"


@dataclass
class WriterLog:
    acked: dict[int, float] = field(default_factory=dict)  # id -> wall time of the OK
    in_doubt: set[int] = field(default_factory=set)
    refused: int = 0  # INSERTs answered with an error (not committed by the server's own word)
    reconnects: int = 0
    targets: dict[str, int] = field(default_factory=dict)  # address -> rows acknowledged there
    last_error: str = ""


class Writer(threading.Thread):
    """Insert ``(id, sched, via, at)`` rows with ids ``base+1, base+2, ...`` until :meth:`stop`.

    `password` is the dedicated account's; `pace` the pause in seconds between two INSERTs."""

    def __init__(self, profile: Profile, password: str, sched: int, base: int, pace: float = 0.02) -> None:
        super().__init__(daemon=True, name=f"writer-{sched}")
        self.profile, self.password, self.sched, self.pace = profile, password, sched, pace
        self.next_id = base + 1
        self.log = WriterLog()
        self._halt = threading.Event()
        self._conn: pymysql.connections.Connection | None = None
        self._addr = ""

    def stop(self) -> WriterLog:
        self._halt.set()
        self.join(timeout=30)
        return self.log

    def _connect(self) -> None:
        answers = query_a(self.profile, self.profile.dns.authoring_name, timeout=1.0)
        if not answers:
            raise OSError(f"{self.profile.dns.authoring_name} has no A record")
        self._addr = answers[0]
        self._conn = pymysql.connect(host=self._addr, port=3306, user=USER, password=self.password,
                                     database=DATABASE, connect_timeout=2, read_timeout=5, write_timeout=5,
                                     autocommit=True)
        self.log.reconnects += 1

    def _drop(self, exc: BaseException) -> None:
        self.log.last_error = f"{self._addr or '?'}: {exc}"[:200]
        if self._conn is not None:
            with contextlib.suppress(Exception):  # the connection is broken anyway
                self._conn.close()
        self._conn = None
        self._halt.wait(0.2)

    def run(self) -> None:
        while not self._halt.is_set():
            if self._conn is None:
                try:
                    self._connect()
                except Exception as exc:  # DNS, refused, timeout, access denied while a node starts...
                    self._drop(exc)
                    continue
            row = self.next_id
            self.next_id += 1
            assert self._conn is not None
            try:
                with self._conn.cursor() as cur:
                    cur.execute(f"INSERT INTO {TABLE} (id, sched, via, at) VALUES (%s, %s, %s, %s)",
                                (row, self.sched, self._addr, time.time()))
                self.log.acked[row] = time.time()
                self.log.targets[self._addr] = self.log.targets.get(self._addr, 0) + 1
            except pymysql.err.OperationalError as exc:
                code = exc.args[0] if exc.args else 0
                # 2013 lost connection / 2006 gone away during the commit: the server may have committed it
                if code in (2006, 2013, 2014, 2055):
                    self.log.in_doubt.add(row)
                else:
                    self.log.refused += 1
                self._drop(exc)
                continue
            except pymysql.err.MySQLError as exc:
                self.log.refused += 1
                self._drop(exc)
                continue
            except Exception as exc:  # socket errors surface as other types in some pymysql paths
                self.log.in_doubt.add(row)
                self._drop(exc)
                continue
            self._halt.wait(self.pace)
        if self._conn is not None:
            self._drop(Exception("stopped"))
