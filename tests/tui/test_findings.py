"""The settings the checks detect, offered as the value to use."""

from __future__ import annotations

from tests.tui.conftest import profile_data
from wizard.checks import CheckResult, Status
from wizard.tui.findings import suggested_settings, with_setting

# the fixes the services check (wizard/checks/services.py) gives, word for word
NO_SYSTEMD = "set services.manager: direct for hosts without systemd, or boot the host with systemd"
HAS_SYSTEMD = "set services.manager: systemd"


def result(node: str, status: Status, fix: str, check: str = "services") -> CheckResult:
    return CheckResult(check, "Service manager", node, status, "", fix)


def test_a_host_without_systemd_suggests_direct() -> None:
    results = [result("studio1", Status.FAIL, NO_SYSTEMD), result("studio2", Status.OK, "")]
    assert suggested_settings(results) == {"services.manager": "direct"}


def test_hosts_with_systemd_suggest_systemd_unless_one_lacks_it() -> None:
    assert suggested_settings([result("studio1", Status.WARN, HAS_SYSTEMD)]) == {"services.manager": "systemd"}
    mixed = [result("studio1", Status.WARN, HAS_SYSTEMD), result("arbiter", Status.FAIL, NO_SYSTEMD)]
    assert suggested_settings(mixed) == {"services.manager": "direct"}


def test_other_settings_in_a_fix_stay_advice() -> None:
    fix = "set services.mariadb_unit: mariadb-custom"
    assert suggested_settings([result("studio1", Status.FAIL, fix)]) == {}


def test_the_services_check_says_it_that_way() -> None:
    """If the check's wording changes, the offer would silently vanish: pin it to the check's source."""
    import inspect

    from wizard.checks import services

    source = inspect.getsource(services)
    assert "set services.manager: direct" in source and '"set services.manager: systemd"' in source


def test_with_setting_writes_a_copy() -> None:
    data = profile_data()
    out = with_setting(data, "services.manager", "direct")
    assert out["services"]["manager"] == "direct" and "services" not in data
