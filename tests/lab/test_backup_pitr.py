"""``backup restore --to TIME`` on real hosts (issue 8, point in time): rows, a backup, more rows, a table dropped by
mistake; restore to the moment before the drop brings back every row before it and none after, on both nodes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.lab.conftest import LAB_PROFILE
from tests.lab.test_cluster import kill9, row_ids, write_rows
from tests.waits import wait_until
from wizard import lab
from wizard.backups import BackupError
from wizard.backups.catalog import list_backups
from wizard.backups.restore import history_breaks, read_history, restore
from wizard.backups.take import take
from wizard.nodesql import sql, wsrep_status
from wizard.pipeline import replay
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets


@pytest.fixture(scope="module")
def cluster(profile: Profile, secrets: Secrets) -> Iterator[None]:
    replay(profile, secrets, skip_checks=True)
    yield
    # the modules after this one expect fresh hosts (test_checks asserts that nothing runs yet)
    lab.down(progress=lambda _m: None)
    lab.up(progress=lambda _m: None)


def db_now(remote: Remote, profile: Profile, secrets: Secrets) -> datetime:
    out = sql(remote["studio1"], profile, secrets, "SELECT UTC_TIMESTAMP(6)")
    return datetime.fromisoformat(out[0][0]).replace(tzinfo=UTC)


def rows_backup_rows_drop(remote: Remote, profile: Profile, secrets: Secrets, before: int, after: int
                          ) -> tuple[str, datetime]:
    """Rows 1..before, a backup (donor studio2), rows up to before+after, a moment in a later second, the table
    dropped by mistake, then rows 100-101 (the table made anew).  Returns the backup's id and the moment."""
    sql(remote["studio1"], profile, secrets, "DROP DATABASE IF EXISTS itest")
    write_rows(remote, profile, secrets, "studio1", 1, before)
    taken = take(profile, secrets, remote, donor="studio2")
    write_rows(remote, profile, secrets, "studio1", before + 1, after)
    written = db_now(remote, profile, secrets)
    # binary-log events are stamped in whole seconds: the moment chosen is in a later second than the last rows
    wait_until("the next second", lambda: db_now(remote, profile, secrets).replace(microsecond=0)
               > written.replace(microsecond=0), 5, interval=0.05)
    moment = db_now(remote, profile, secrets)
    sql(remote["studio1"], profile, secrets, "DROP TABLE itest.t")  # the mistake
    write_rows(remote, profile, secrets, "studio1", 100, 2)  # life goes on after it
    return taken.id, moment


def test_restore_to_the_moment_before_a_mistaken_drop(cluster: None, profile: Profile, secrets: Secrets,
                                                      remote: Remote) -> None:
    """Rows 1-5, a backup, rows 6-8, the drop: restore --to the moment before it, onto the donor, from its own
    binary logs."""
    t0 = time.monotonic()
    taken_id, moment = rows_backup_rows_drop(remote, profile, secrets, 5, 3)

    # refused before anything is touched: a moment in the future, and one before the backup
    for when, said in ((datetime.now(UTC) + timedelta(hours=1), "in the future"),
                       (datetime.fromtimestamp(time.time() - 3600, UTC), "before this backup was taken")):
        with pytest.raises(BackupError) as err:
            restore(profile, secrets, remote, taken_id, to=when)
        assert said in err.value.message, err.value.message

    for node in ("studio1", "studio2"):
        kill9(node)
    notes: list[str] = []
    result = restore(profile, secrets, remote, taken_id, to=moment, on_note=notes.append)
    print(f"restore --to {moment.isoformat()}: {result.to_dict()}\nnotes {notes}")
    assert result.pitr is not None and result.pitr["applied"]["applied"] >= 1, result.pitr
    for node in ("studio1", "studio2"):
        assert row_ids(remote, profile, secrets, node) == set(range(1, 9)), node
    st = wsrep_status(remote["studio1"], profile, secrets)
    assert st["wsrep_cluster_status"] == "Primary" and st["wsrep_cluster_size"] == "3", st
    for node, kept in result.kept.items():
        lab.host_exec(node, ["rm", "-rf", kept], check=False)
    print(f"test body {time.monotonic() - t0:.1f}s")


def test_a_backup_from_before_a_restore_that_began_another_history_is_not_continued(
        cluster: None, profile: Profile, secrets: Secrets, remote: Remote) -> None:
    """The restore before (the backup, then its binary logs up to a moment) began a new history: the binary logs
    on the nodes since are of it, and their GTIDs repeat the abandoned history's with other transactions (a
    newcomer saw 0-1-9 mean two things).  `--to` from a backup taken before that restore must be refused,
    before anything is touched, naming the restore and the way out; it would otherwise replay the new history's
    transactions onto the old history's snapshot."""
    history = read_history(profile, remote)
    assert history and history[-1].get("to"), history
    since = float(history[-1]["time"])
    older = [e for e in list_backups(profile, remote) if e.complete and e.time < since]
    assert older, "the previous test's backup"
    moment = db_now(remote, profile, secrets) - timedelta(seconds=1)
    with pytest.raises(BackupError) as err:
        restore(profile, secrets, remote, older[-1].id, to=moment)
    assert f"{older[-1].id} was taken before the restore of {history[-1]['backup']}" in err.value.message
    assert "began the cluster's present history" in err.value.message
    assert "restore it without --to" in err.value.hint and ".pre-restore-" in err.value.hint
    st = wsrep_status(remote["studio1"], profile, secrets)  # refused before anything was stopped or replaced
    assert st["wsrep_cluster_status"] == "Primary" and st["wsrep_cluster_size"] == "3", st
    # the list tells the histories apart
    listed = subprocess.run([sys.executable, "-m", "wizard", "backup", "list", str(LAB_PROFILE), "--json"],
                            capture_output=True, text=True, timeout=60, cwd=LAB_PROFILE.parents[1])
    assert listed.returncode == 0, listed.stderr
    shown = {e["id"]: e for e in json.loads(listed.stdout)}
    assert shown[older[-1].id]["before_restore"]["backup"] == history[-1]["backup"], shown[older[-1].id]
    # a backup taken after that restore is continued as before
    taken = take(profile, secrets, remote, donor="studio2")
    assert history_breaks(read_history(profile, remote), taken.id,
                          next(e.time for e in list_backups(profile, remote) if e.id == taken.id)) is None


@pytest.mark.drill  # 35 s: make drills (make test's time budget); the other --to test covers the common path
def test_restore_to_onto_a_node_that_lost_its_binary_logs_uses_the_other_nodes(
        cluster: None, profile: Profile, secrets: Secrets, remote: Remote) -> None:
    """The same after the restore above (a new history), onto studio1 whose binary logs are gone: studio2's are
    copied over (database.sst_port) and replayed on studio1; rows 1-4 on both, none after the drop."""
    t0 = time.monotonic()
    taken_id, moment = rows_backup_rows_drop(remote, profile, secrets, 2, 2)
    for node in ("studio1", "studio2"):
        kill9(node)
    data_dir = str(profile.database.data_dir)
    lab.host_exec("studio1", ["sh", "-c", f"rm -f {data_dir}/studio-bin.*"])
    notes: list[str] = []
    result = restore(profile, secrets, remote, taken_id, target="studio1", to=moment, on_note=notes.append)
    print(f"restore --to {moment.isoformat()} onto studio1: {result.to_dict()}\nnotes {notes}")
    assert result.pitr is not None and result.pitr["plan"]["source"] == "studio2", result.pitr
    assert any("studio1: no binary logs" in n for n in result.notes), result.notes
    for node in ("studio1", "studio2"):
        assert row_ids(remote, profile, secrets, node) == {1, 2, 3, 4}, node
    st = wsrep_status(remote["studio2"], profile, secrets)
    assert st["wsrep_cluster_status"] == "Primary" and st["wsrep_cluster_size"] == "3", st
    for node, kept in result.kept.items():
        lab.host_exec(node, ["rm", "-rf", kept], check=False)
    print(f"test body {time.monotonic() - t0:.1f}s")
