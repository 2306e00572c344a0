"""Marks shared by every suite, and which pytest-xdist worker runs what.

``make test`` runs ``pytest -n 2 --dist loadgroup``: every test on the namespace lab (``tests/lab``,
``tests/faults`` and the TUI tests marked ``lab``) is one ``xdist_group``, every test on the systemd lab
(``tests/lab_systemd``) another, so each lab is driven by one worker in the suite's own order (modules that
expect fresh hosts or a formed cluster still follow the ones before them), and the two labs, which share no
host, address, Redis or lock, run side by side.  Tests that need no lab fill the other worker's time."""

from __future__ import annotations

import pytest

NAMESPACE_LAB_DIRS = ("tests/lab/", "tests/faults/")
SYSTEMD_LAB_DIR = "tests/lab_systemd/"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups off the items
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path.as_posix()
        if SYSTEMD_LAB_DIR in path:
            item.add_marker(pytest.mark.lab)
            item.add_marker(pytest.mark.xdist_group("lab-systemd"))
        elif any(d in path for d in NAMESPACE_LAB_DIRS) or item.get_closest_marker("lab"):
            item.add_marker(pytest.mark.lab)
            item.add_marker(pytest.mark.xdist_group("lab"))
