"""The service-manager check on the namespace lab (no systemd): a profile that says systemd fails and
names the fix; the lab's own profile (direct) passes.  The systemd side is in tests/lab_systemd/."""

from __future__ import annotations

from wizard.checks import Status, run_checks
from wizard.profile import Profile
from wizard.secrets import Secrets


def test_profile_saying_systemd_on_hosts_without_it_fails(profile: Profile, secrets: Secrets) -> None:
    own = [r for r in run_checks(profile, secrets, only=["ssh", "services"]) if r.check == "services"]
    assert len(own) == 3 and all(r.status is Status.OK and "direct" in r.summary for r in own), own

    wrong = profile.model_copy(deep=True)
    wrong.services.manager = "systemd"
    said = [r for r in run_checks(wrong, secrets, only=["ssh", "services"]) if r.check == "services"]
    assert len(said) == 3, said
    for r in said:
        assert r.status is Status.FAIL
        assert "does not run systemd" in r.summary and "services.manager is systemd" in r.summary
        assert "services.manager: direct" in r.fix
