"""A failed start says why: the server's own [ERROR] lines of its last start, from where its log really goes."""

from __future__ import annotations

import socket

from wizard.agent.runtime import configured_error_log, error_lines

EMPTY_DATADIR_START = """\
2026-11-30 10:00:00 0 [Note] Starting MariaDB 10.11.6-MariaDB-0+deb12u1 source revision x as process 41
2026-11-30 10:00:00 0 [ERROR] WSREP: an error from an earlier start
2026-11-30 10:00:01 0 [Note] Starting MariaDB 10.11.6-MariaDB-0+deb12u1 source revision x as process 97
2026-11-30 10:00:01 0 [Note] InnoDB: Initializing buffer pool
2026-11-30 10:00:02 0 [ERROR] Fatal error: Can't open and lock privilege tables: Table 'mysql.db' doesn't exist
2026-11-30 10:00:02 0 [ERROR] WSREP: a follow-up error 1
2026-11-30 10:00:02 0 [ERROR] WSREP: a follow-up error 2
2026-11-30 10:00:02 0 [ERROR] WSREP: a follow-up error 3
2026-11-30 10:00:02 0 [ERROR] Aborting
"""


def test_the_fatal_reason_leads_even_when_later_errors_follow() -> None:
    got = error_lines(EMPTY_DATADIR_START.splitlines(), count=3)
    parts = got.split(" | ")
    assert "Table 'mysql.db' doesn't exist" in parts[0]
    assert parts[1:] == ["2026-11-30 10:00:02 0 [ERROR] WSREP: a follow-up error 2",
                         "2026-11-30 10:00:02 0 [ERROR] WSREP: a follow-up error 3"]
    assert "earlier start" not in got and "Aborting" not in got


def test_without_a_fatal_line_the_last_errors_of_the_last_start() -> None:
    lines = ["x [Note] Starting MariaDB 10.11 as process 5", "x [ERROR] a", "x [ERROR] b", "x [ERROR] Aborting"]
    assert error_lines(lines, 3) == "x [ERROR] a | x [ERROR] b"
    assert error_lines(["x [Note] nothing wrong"], 3) == ""


def test_configured_error_log_is_found_as_the_server_resolves_it() -> None:
    base = "--socket=/run/mysqld/mysqld.sock --datadir=/var/lib/mysql "
    assert configured_error_log(base, "/var/lib/mysql") == ""  # Debian's default: stderr
    assert configured_error_log(base + "--log_error=/var/log/mysql/error.log", "/d") == "/var/log/mysql/error.log"
    assert configured_error_log(base + "--log-error=node1", "/d") == "/d/node1.err"
    assert configured_error_log(base + "--log-error", "/d") == f"/d/{socket.gethostname()}.err"
    assert configured_error_log(base + "--log-error=/x.log --skip-log-error", "/d") == ""
