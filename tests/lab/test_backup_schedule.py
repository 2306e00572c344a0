"""Scheduled backups on the lab's Arbiter (no systemd there: the cron path).  replay installs the job and the
cron line; the command the line runs takes a real backup and applies the retention policy; a profile without a
schedule removes both.  (The namespace hosts run no cron daemon, so the test runs the line's command itself.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wizard import lab
from wizard.agent.backup_job import CRON_FILE, JOB_CONF
from wizard.backups.catalog import list_backups
from wizard.pipeline import replay
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets


@pytest.fixture(scope="module")
def scheduled(profile: Profile, secrets: Secrets) -> Iterator[Profile]:
    p = profile.model_copy(deep=True)
    p.backups.schedule = "02:30"
    p.backups.keep_last = 1
    replay(p, secrets, skip_checks=True)
    yield p
    replay(profile, secrets, skip_checks=True)  # back to no schedule


def arbiter(script: str, timeout: float = 30) -> str:
    return lab.host_exec("arbiter", ["sh", "-c", script], check=False, timeout=timeout).stdout.strip()


def test_replay_installs_the_job_and_the_cron_line(scheduled: Profile) -> None:
    line = [ln for ln in arbiter(f"cat {CRON_FILE}").splitlines() if "backup-scheduled" in ln]
    assert len(line) == 1 and line[0].startswith("30 2 * * * root "), line
    assert "/var/lib/studio-cluster/agent-" in line[0]  # the persistent copy: /run is emptied at boot
    assert arbiter(f"stat -c '%U %a' {JOB_CONF}") == "root 600"


@pytest.mark.drill  # passes alone; its 2nd run failed twice after the fault smoke (open, docs/backups.md)
def test_the_scheduled_command_takes_a_backup_and_keeps_last_one(scheduled: Profile, secrets: Secrets) -> None:
    command = arbiter(f"cat {CRON_FILE}").splitlines()[-1].split(" root ", 1)[1].split(" >> ")[0]
    with Remote(scheduled) as remote:
        before = {e.id for e in list_backups(scheduled, remote)}
        ran = lab.host_exec("arbiter", ["sh", "-c", command], check=False, timeout=300)
        assert ran.returncode == 0, ran.stdout[-1500:] + ran.stderr[-1500:]
        first = [e for e in list_backups(scheduled, remote) if e.id not in before]
        assert len(first) == 1 and first[0].state == "complete", first
        assert first[0].donor != scheduled.preferred_primary  # the node the authoring name does not prefer
        again = lab.host_exec("arbiter", ["sh", "-c", command], check=False, timeout=300)
        assert again.returncode == 0, again.stdout[-1500:]
        entries = list_backups(scheduled, remote)
        complete = [e for e in entries if e.complete]
        assert len(complete) == 1 and complete[0].id not in before | {first[0].id}, entries  # keep_last 1
        assert not [e for e in entries if e.state == "failed"], entries  # failed ones are pruned too


def test_no_schedule_removes_the_line_and_the_job(scheduled: Profile, profile: Profile, secrets: Secrets) -> None:
    replay(profile, secrets, skip_checks=True)
    assert arbiter(f"test -e {CRON_FILE} || echo gone") == "gone"
    assert arbiter(f"test -e {JOB_CONF} || echo gone") == "gone"
