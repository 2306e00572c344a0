"""Scheduled backups on hosts that boot systemd, as the sudo user ``deploy``: replay installs and enables
``studio-cluster-backup.timer``; starting its service (what the timer does at the scheduled time) takes a real
backup from the node the authoring name does not prefer; a profile without a schedule removes the units.

Named to sort after test_systemd_cluster.py, whose tests start from hosts where no cluster was ever formed."""

from __future__ import annotations

from tests.lab_systemd.test_systemd_cluster import healthy, sh, unit_state
from tests.waits import wait_until
from wizard.agent.backup_job import JOB_CONF, SERVICE, TIMER
from wizard.backups.catalog import list_backups
from wizard.pipeline import replay
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets


def test_the_timer_runs_a_scheduled_backup(sd_profile: Profile, sd_secrets: Secrets) -> None:
    if not healthy(sd_profile, sd_secrets):
        replay(sd_profile, sd_secrets, timeouts={"wait_timeout": 60})
    scheduled = sd_profile.model_copy(deep=True)
    scheduled.backups.schedule = "daily"
    try:
        replay(scheduled, sd_secrets, timeouts={"wait_timeout": 60})
        assert unit_state("arbiter", TIMER) == ("active", "enabled")
        assert "OnCalendar=daily" in sh("arbiter", f"systemctl cat {TIMER}")
        assert sh("arbiter", f"stat -c '%U %a' {JOB_CONF}") == "root 600"
        with Remote(scheduled) as remote:
            before = {e.id for e in list_backups(scheduled, remote)}
            sh("arbiter", f"systemctl start {SERVICE}", timeout=300)  # oneshot: returns when the run is over
            new = [e for e in list_backups(scheduled, remote) if e.id not in before]
        assert len(new) == 1 and new[0].state == "complete", (new, sh("arbiter", f"journalctl -u {SERVICE} -n 30"))
        assert new[0].donor != scheduled.preferred_primary
    finally:
        replay(sd_profile, sd_secrets, timeouts={"wait_timeout": 60})  # no schedule: the units go
    wait_until("the timer to be removed", lambda: sh("arbiter", f"systemctl cat {TIMER} >/dev/null 2>&1 || echo gone")
               == "gone", 10)
