"""Pure parts of ``backup restore --to TIME``: the time given, the window it must fall in, the GTID arithmetic, and
the binary-log lines of the rendered config that the restore relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.unit.test_cli_inputs import cli, local_profile
from tests.unit.test_render import CNF, LAB, parse_cnf
from wizard.backups import BackupError
from wizard.backups.pitr import (
    BINLOG_BASENAME,
    WSREP_GTID_DOMAIN,
    check_window,
    choose_start,
    iso,
    parse_gtid_list,
    parse_time,
    reaches_back,
    stop_datetime,
)
from wizard.profile import DatabaseSettings, load_profile
from wizard.render import render
from wizard.secrets import Secrets


def test_times_with_an_offset_or_said_local() -> None:
    assert parse_time("2026-11-30T21:12:33Z") == datetime(2026, 11, 30, 21, 12, 33, tzinfo=UTC)
    assert parse_time("2026-11-30 22:12:33.5+01:00") == datetime(2026, 11, 30, 21, 12, 33, 500000, tzinfo=UTC)
    cet = timezone(timedelta(hours=1))
    assert parse_time("2026-11-30 22:12:33 local", local_tz=cet) == datetime(2026, 11, 30, 21, 12, 33, tzinfo=UTC)
    assert parse_time(" 2026-11-30T22:12:33 LOCAL ").tzinfo is UTC


@pytest.mark.parametrize(("text", "said"), [
    ("2026-11-30 21:12:33", "has no UTC offset"),
    ("yesterday", "is not a time"),
    ("2026-11-30T21:12:33Z local", "both a UTC offset and 'local'"),
    ("2026-13-30T21:12:33Z", "is not a time"),
])
def test_a_bad_time_names_the_flag_and_the_forms(text: str, said: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_time(text)
    assert str(err.value).startswith(f"--to {text!r}") and said in str(err.value), err.value


def test_the_window_refuses_the_future_and_before_the_backup() -> None:
    now = datetime(2026, 11, 30, 21, 0, tzinfo=UTC)
    started = datetime(2026, 11, 30, 20, 0, tzinfo=UTC).timestamp()
    check_window(now - timedelta(minutes=1), backup_started=started, now=now)
    with pytest.raises(BackupError) as err:
        check_window(now + timedelta(seconds=1), backup_started=started, now=now)
    assert "in the future" in err.value.message
    with pytest.raises(BackupError) as err:
        check_window(now - timedelta(hours=2), backup_started=started, now=now)
    assert "before this backup was taken (2026-11-30T20:00:00Z)" in err.value.message
    assert "older backup" in err.value.hint


def test_stop_datetime_is_utc_rounded_down_to_the_second() -> None:
    when = datetime(2026, 11, 30, 22, 12, 33, 999999, tzinfo=timezone(timedelta(hours=1)))
    assert stop_datetime(when) == "2026-11-30 21:12:33"
    assert iso(when) == "2026-11-30T21:12:33.999999Z"


def test_gtid_lists_and_whether_logs_reach_back() -> None:
    assert parse_gtid_list("0-1-6, 1-1-3") == {0: (1, 6), 1: (1, 3)}
    assert parse_gtid_list("") == {}
    with pytest.raises(ValueError):
        parse_gtid_list("0-1")
    assert reaches_back("", "0-1-6")  # the first file starts with the first transaction
    assert reaches_back(None, "0-1-6")
    assert reaches_back("0-1-6", "0-1-6")
    assert reaches_back("0-1-3,1-1-9", "0-1-6")  # another domain (a node's local one) does not count
    assert not reaches_back("0-1-7", "0-1-6")
    assert not reaches_back("0-1-7", "")


def test_the_rendered_config_keeps_binary_logs_with_gtids() -> None:
    profile = load_profile(LAB, check_files=False)
    profile.database.binlog_keep_days = 3
    rendered = render(profile, Secrets(sst_password="s", admin_password=None, redis_password="r"))
    local_domains = []
    for node in profile.studio_nodes:
        cnf = parse_cnf(next(f for f in rendered[node.name] if f.path == CNF).content)
        mysqld, galera = cnf["mysqld"], cnf["galera"]
        assert mysqld["log_bin"] == BINLOG_BASENAME and "/" not in BINLOG_BASENAME  # in the datadir
        assert mysqld["log_slave_updates"] == "ON" and mysqld["binlog_format"] == "ROW"
        assert mysqld["binlog_expire_logs_seconds"] == str(3 * 86400)
        assert mysqld["server_id"] == "1"
        assert galera["wsrep_gtid_mode"] == "ON"
        assert galera["wsrep_gtid_domain_id"] == str(WSREP_GTID_DOMAIN)
        local_domains.append(int(mysqld["gtid_domain_id"]))
    assert len(set(local_domains)) == 2 and WSREP_GTID_DOMAIN not in local_domains


def test_binlog_keep_days_is_bounded() -> None:
    assert DatabaseSettings().binlog_keep_days == 7
    with pytest.raises(ValidationError) as err:
        DatabaseSettings(binlog_keep_days=0)
    assert "binlog_keep_days" in str(err.value)


def test_restore_to_a_bad_time_is_refused_before_anything_connects(tmp_path: Path) -> None:
    profile = local_profile(tmp_path, 1)
    run = cli(tmp_path, "backup", "restore", str(profile), "--to", "2026-11-30 21:12:33", "--yes",
              STUDIO_CLUSTER_SST_PASSWORD="s", STUDIO_CLUSTER_REDIS_PASSWORD="r")
    assert run.returncode == 2, run.stderr
    assert "--to '2026-11-30 21:12:33' has no UTC offset" in run.stderr and "local" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_the_start_is_innodbs_offset_unless_it_does_not_fit_the_backup() -> None:
    finished = datetime(2026, 11, 30, 22, 3, 45, tzinfo=UTC).timestamp()
    fits = {"gtid": "0-1-14", "time": "2026-11-30 22:03:43"}
    assert choose_start(fits, "0-1-14", finished) == ("0-1-14", "2026-11-30 22:03:43", None)
    assert choose_start({"gtid": "0-1-12", "time": "2026-11-30 22:03:43"}, "0-1-14", finished)[0] == "0-1-12"
    # seen on the lab after a restore: an offset left from the history before it points past the backup
    stale = {"gtid": "0-1-20", "time": "2026-11-30 22:03:51"}
    start, when, note = choose_start(stale, "0-1-14,2-1-3", finished)
    assert (start, when) == ("0-1-14", None) and note and "0-1-20" in note and "recorded GTID 0-1-14" in note
    with pytest.raises(BackupError):  # stamped after the backup finished and nothing recorded: refused
        choose_start({"gtid": "0-1-13", "time": "2026-11-30 22:03:51"}, None, finished)
    assert choose_start(None, "0-1-14", finished)[0] == "0-1-14"  # the donor's log file is gone
    assert choose_start({"gtid": None, "time": None}, None, finished) == ("", None, None)
    with pytest.raises(BackupError):
        choose_start(None, None, finished)


def test_a_restore_since_a_backup_breaks_its_history_unless_it_restored_that_backup_alone() -> None:
    """`restore --to` continues a backup with the binary logs on the nodes; a restore since that began the history
    again from another point (another backup, or this one with --to) makes those logs another history's."""
    from wizard.backups.restore import history_breaks

    other = {"time": 200.0, "backup": "B2", "to": None}
    same_alone = {"time": 200.0, "backup": "B1", "to": None}
    same_to = {"time": 200.0, "backup": "B1", "to": "2026-12-02T03:00:00Z"}
    earlier = {"time": 50.0, "backup": "B0", "to": None}
    assert history_breaks([], "B1", 100.0) is None
    assert history_breaks([earlier], "B1", 100.0) is None  # before the backup: its own history
    assert history_breaks([earlier, other], "B1", 100.0) == other
    assert history_breaks([same_alone], "B1", 100.0) is None  # continues it exactly
    assert history_breaks([same_to], "B1", 100.0) == same_to
    assert history_breaks([same_alone, other], "B1", 100.0) == other
    assert history_breaks([{"unreadable": "x.json"}], "B1", 100.0) == {"unreadable": "x.json"}
