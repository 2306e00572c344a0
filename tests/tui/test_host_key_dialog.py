"""The host-key dialog (issue 10): it shows the fingerprint the node offered and the one on file, starts on
Reject, writes nothing on Reject, and on an explicit Accept writes the offered key into known_hosts through
the core.  A snapshot of it, unknown and changed, at the smallest and a large terminal."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import paramiko
import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Button, Static

from tests.tui.conftest import profile_data
from wizard.known_hosts import KnownHosts, Status, fingerprint
from wizard.profile import Profile, validate_profile
from wizard.remote import HostKeyError
from wizard.tui.screens.host_key import HostKeyScreen

# two fixed public keys, so the snapshots are stable
OFFERED = "AAAAC3NzaC1lZDI1NTE5AAAAIBrTbQEbh93FWWh3nKjNLSrVdHMc8/W2XJILZolvrups"
ON_FILE = "AAAAC3NzaC1lZDI1NTE5AAAAIPuXpwfH3Ay29E6QZc/MdfOeqzLGEe+p1KR/h4XqMDZ4"
SIZES = pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])


def public_key(blob: str) -> paramiko.PKey:
    return paramiko.PKey.from_type_string("ssh-ed25519", base64.b64decode(blob))


def lab_profile(known_hosts: Path) -> Profile:
    data = profile_data()
    for node in data["nodes"]:
        node["ssh"]["known_hosts"] = str(known_hosts)
    return validate_profile(data, check_files=False)


def problem(status: str, known_hosts: str) -> HostKeyError:
    key = public_key(OFFERED)
    on_file = fingerprint(public_key(ON_FILE)) if status == "changed" else ""
    return HostKeyError("studio1", "host key refused", "", offered=fingerprint(key), on_file=on_file, key=key,
                        lookup="10.20.0.11", known_hosts=known_hosts, status=status)


class DialogApp(App[None]):
    """A bare app that opens the dialog and keeps what it dismissed with."""

    def __init__(self, profile: Profile, error: HostKeyError) -> None:
        super().__init__()
        self.profile, self.error = profile, error
        self.results: list[str | None] = []

    def compose(self) -> ComposeResult:
        yield Static("behind the dialog")

    def on_mount(self) -> None:
        self.open()

    def open(self) -> None:
        self.push_screen(HostKeyScreen(self.profile.node("studio1"), self.error), self.results.append)


async def wait_results(pilot: Pilot[Any], app: DialogApp, count: int) -> None:
    for _ in range(200):  # a worker writes the file: up to 200 event-loop turns, then fail saying so
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        if len(app.results) >= count:
            return
    raise AssertionError(f"the dialog did not close (results: {app.results})")


async def test_reject_writes_nothing_and_accept_writes_the_offered_key(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"10.20.0.11 ssh-ed25519 {ON_FILE}\n10.20.0.12 ssh-ed25519 {ON_FILE}\n")
    before = known.read_text()
    app = DialogApp(lab_profile(known), problem("changed", str(known)))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        body = str(app.screen.query_one("#hostkey-body", Static).render())
        assert fingerprint(public_key(OFFERED)) in body and fingerprint(public_key(ON_FILE)) in body
        assert "CHANGED" in body and str(known) in body
        assert app.focused is not None and app.focused.id == "hostkey-reject", "focus starts on Reject"
        await pilot.press("enter")  # Reject
        await wait_results(pilot, app, 1)
        assert app.results == [None] and known.read_text() == before

        app.open()
        await pilot.pause()
        await pilot.click("#hostkey-accept")
        await wait_results(pilot, app, 2)
    note = app.results[1]
    assert note is not None and f"recorded ssh-ed25519 {fingerprint(public_key(OFFERED))}" in note
    kh = KnownHosts.parse(known.read_text(), str(known))
    assert kh.verify("10.20.0.11", 22, public_key(OFFERED)).status is Status.OK
    assert kh.verify("10.20.0.11", 22, public_key(ON_FILE)).status is Status.CHANGED, "the old key is replaced"
    assert kh.verify("10.20.0.12", 22, public_key(ON_FILE)).status is Status.OK, "other hosts untouched"


async def test_a_revoked_key_cannot_be_accepted(tmp_path: Path) -> None:
    app = DialogApp(lab_profile(tmp_path / "known_hosts"), problem("revoked", str(tmp_path / "known_hosts")))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.screen.query_one("#hostkey-accept", Button).disabled
    assert not (tmp_path / "known_hosts").exists()


@SIZES
@pytest.mark.parametrize("status", ["new", "changed"])
def test_snapshot(snap_compare: Any, size: tuple[int, int], status: str) -> None:
    app = DialogApp(lab_profile(Path("/root/.ssh/known_hosts")), problem(status, "/root/.ssh/known_hosts"))

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
