"""Scheduled backups: the schedule forms, the job description, the donor choice and the installed files
(pure logic; the lab test runs a scheduled backup for real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizard.agent import backup_job
from wizard.backups.schedule import job_config, parse_schedule
from wizard.profile import ProfileError, load_profile, validate_profile

LAB = Path(__file__).resolve().parents[2] / "profiles" / "lab.yaml"


@pytest.mark.parametrize(("value", "calendar", "cron"), [
    ("hourly", "hourly", "0 * * * *"),
    ("daily", "daily", "0 0 * * *"),
    ("weekly", "weekly", "0 0 * * 1"),
    ("02:30", "*-*-* 02:30:00", "30 2 * * *"),
    ("7:05", "*-*-* 07:05:00", "5 7 * * *"),
    (" Daily ", "daily", "0 0 * * *"),
])
def test_schedule_forms(value: str, calendar: str, cron: str) -> None:
    assert parse_schedule(value) == (calendar, cron)


@pytest.mark.parametrize("value", ["24:00", "2:60", "every day", "*/5 * * * *", "monthly"])
def test_unknown_schedule_is_refused_naming_the_forms(value: str) -> None:
    with pytest.raises(ValueError, match="hourly, daily, weekly or HH:MM"):
        parse_schedule(value)


def test_profile_refuses_a_bad_schedule_naming_the_field() -> None:
    data = load_profile(LAB, check_files=False).model_dump(mode="json")
    data["backups"]["schedule"] = "sometimes"
    with pytest.raises(ProfileError) as err:
        validate_profile(data, source="t", check_files=False)
    assert any("backups.schedule" in p and "HH:MM" in p for p in err.value.problems), err.value.problems


def test_no_schedule_is_no_job() -> None:
    profile = load_profile(LAB, check_files=False)
    for off in (None, "none", "off"):
        data = profile.model_dump(mode="json")
        data["backups"]["schedule"] = off
        assert job_config(validate_profile(data, source="t", check_files=False)) is None


def test_job_prefers_the_node_the_authoring_name_does_not() -> None:
    data = load_profile(LAB, check_files=False).model_dump(mode="json")
    data["backups"]["schedule"] = "02:30"
    profile = validate_profile(data, source="t", check_files=False)
    job = job_config(profile)
    assert job is not None
    assert [d["name"] for d in job["donors"]][-1] == profile.preferred_primary
    assert job["cron"] == "30 2 * * *" and job["keep_last"] == profile.backups.keep_last
    assert "@DONOR@" in job["garbd_argv"] and any("@TOKEN@" in a for a in job["garbd_argv"])


def test_donor_is_the_first_primary_and_synced_in_order() -> None:
    donors = [{"name": "b", "health": "http://b/"}, {"name": "a", "health": "http://a/"}]
    synced = {"healthy": True, "state": "Synced"}
    donating = {"healthy": True, "state": "Donor/Desynced", "reason": "Primary and donating by mariabackup"}
    assert backup_job.choose_donor(donors, lambda url: synced)[0] == "b"
    assert backup_job.choose_donor(donors, lambda url: synced if url == "http://a/" else donating)[0] == "a"
    name, why = backup_job.choose_donor(donors, lambda url: None if url == "http://b/" else donating)
    assert name == "" and "b: no answer" in why and "a: Primary and donating" in why


def test_installed_units_and_cron_line_run_the_persistent_agent() -> None:
    service, timer = backup_job.units("/var/lib/studio-cluster/agent-x", "*-*-* 02:30:00")
    assert "backup-scheduled" in service and f"StandardInput=file:{backup_job.JOB_CONF}" in service
    assert "OnCalendar=*-*-* 02:30:00" in timer and "Persistent=true" in timer
    line = backup_job.cron_line("/var/lib/studio-cluster/agent-x", "30 2 * * *")
    assert "30 2 * * * root " in line and f"< {backup_job.JOB_CONF}" in line


def test_full_disk_reason_is_one_rule_for_take_and_the_scheduled_job() -> None:
    reason = backup_job.full_disk_reason
    assert "filled up" in reason("/b", 10**12, 2 * 10**12, "mbstream: No space left on device")
    assert "filled up" in reason("/b", 10**6, 4 * 10**6, "receiver stopped")  # a receiver that died silently
    assert reason("/b", 10**12, 2 * 10**12, "the donor reports mariabackup exit 1") == ""
