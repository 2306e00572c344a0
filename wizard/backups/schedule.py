"""Scheduled backups, operator side: the profile's ``backups.schedule`` as a systemd calendar and a cron
time, and the job description the Arbiter's agent installs (:mod:`wizard.agent.backup_job`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wizard.profile import Profile

_NAMED = {"hourly": ("hourly", "0 * * * *"), "daily": ("daily", "0 0 * * *"), "weekly": ("weekly", "0 0 * * 1")}


def parse_schedule(value: str) -> tuple[str, str]:
    """``(OnCalendar, cron time)`` for hourly, daily, weekly or HH:MM (every day).  Pure; raises ValueError
    naming the forms it knows."""
    v = value.strip().lower()
    if v in _NAMED:
        return _NAMED[v]
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", v)
    if m:
        hour, minute = int(m.group(1)), int(m.group(2))
        return f"*-*-* {hour:02d}:{minute:02d}:00", f"{minute} {hour} * * *"
    raise ValueError(f"{value!r} is not a schedule: use hourly, daily, weekly or HH:MM (e.g. 02:30), or none")


def job_config(profile: Profile) -> dict[str, Any] | None:
    """What the Arbiter's agent needs to take backups by itself, None without a schedule.  The donors are in
    preference order: the Studio node the authoring name does not prefer first (as ``backup take`` does)."""
    from wizard.backups.take import _bind, garbd_argv, receiver_tls_args
    from wizard.render import backup_content_dir

    b = profile.backups
    if not b.schedule:
        return None
    calendar, cron = parse_schedule(b.schedule)
    studio = sorted(profile.studio_nodes, key=lambda n: n.name == profile.preferred_primary)
    return {
        "schedule": b.schedule, "calendar": calendar, "cron": cron,
        "root": str(b.root), "bind": _bind(profile.arbiter), "port": b.receiver_port,
        "connect_timeout_s": b.connect_timeout_s, "timeout_s": b.timeout_s,
        "keep_last": b.keep_last, "keep_days": b.keep_days,
        "donors": [{"name": n.name, "health": f"http://{_url_host(n.address)}:{profile.dns.health_port}/",
                    "content": c.name if (c := backup_content_dir(profile, n)) else ""}
                   for n in studio],
        "receiver_tls": receiver_tls_args(profile),
        "garbd_argv": garbd_argv(profile, "@DONOR@", "@TOKEN@", "@WORKDIR@", "@LOG@"),
        "meta": {"cluster": profile.cluster_name, "arbiter": profile.arbiter.name, "scheduled": True},
    }


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address
