"""`lab down` refuses to remove a directory with something mounted under it, and only the directories it removes
count (the systemd lab's tree under the same root is not one of them)."""

from __future__ import annotations

import pytest

from wizard.lab.layout import LAB_DIR, LabError
from wizard.lab.lifecycle import _check_no_mounts_under_lab

DOOMED = (LAB_DIR / "hosts", LAB_DIR / "infra", LAB_DIR / "template-datadir.tmp")


def _mountinfo(*points: str) -> str:
    return "\n".join(f"{40 + i} 1 0:{i} / {p} rw,relatime - proc proc rw" for i, p in enumerate(points))


def test_a_mount_under_the_systemd_labs_tree_does_not_stop_lab_down() -> None:
    _check_no_mounts_under_lab(DOOMED, _mountinfo("/proc", f"{LAB_DIR}/systemd/base.tmp/proc"))


@pytest.mark.parametrize("point", [f"{LAB_DIR}/hosts/studio1/run", f"{LAB_DIR}/infra", f"{LAB_DIR}/infra/pdns"])
def test_a_mount_under_what_lab_down_removes_is_refused_by_name(point: str) -> None:
    with pytest.raises(LabError, match=point):
        _check_no_mounts_under_lab(DOOMED, _mountinfo("/proc", point))


def test_a_sibling_whose_name_merely_starts_the_same_is_not_under_it() -> None:
    _check_no_mounts_under_lab(DOOMED, _mountinfo(f"{LAB_DIR}/hosts-old/x", f"{LAB_DIR}/infra2"))
