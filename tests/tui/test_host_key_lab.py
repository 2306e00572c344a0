"""The host-key dialog against a real lab host (issue 10): the checks refuse studio1, whose key is not in
known_hosts; `k` asks the node for its key and opens the dialog with the fingerprint it offers; Accept writes
known_hosts and the re-run checks pass SSH on studio1.  Run: .venv/bin/pytest tests/tui -m lab"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.pilot import Pilot

from tests.tui.conftest import REPO
from wizard.known_hosts import KnownHosts, Status, fingerprint
from wizard.profile import load_profile
from wizard.remote import NodeConnection
from wizard.secrets import Secrets
from wizard.tui.app import create_app
from wizard.tui.screens.checks import ChecksScreen, row_key
from wizard.tui.screens.host_key import HostKeyScreen

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300),
              pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]
STUDIO1 = "198.18.0.11"


async def wait_for(pilot: Pilot[Any], what: str, predicate: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} "
                                 f"(screen: {type(pilot.app.screen).__name__})")
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def lab_up() -> None:
    from wizard import lab

    lab.up(progress=lambda _msg: None)


async def test_dialog_accepts_a_real_hosts_key_into_known_hosts(lab_up: None, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    lab_known = Path("/var/lib/studio-cluster-lab/known_hosts").read_text().splitlines()
    known.write_text("".join(line + "\n" for line in lab_known if not line.startswith(STUDIO1 + " ")))
    data = yaml.safe_load((REPO / "profiles" / "lab.yaml").read_text())
    for node in data["nodes"]:
        node["ssh"]["known_hosts"] = str(known)
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    profile = load_profile(path)
    offered = fingerprint(NodeConnection(profile.node("studio1")).offered_host_key())

    app = create_app(profiles_dir=tmp_path, runs_dir=tmp_path / "runs")
    app.session.profile, app.session.secrets = profile, Secrets.resolve_for(profile)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = ChecksScreen()
        await app.push_screen(screen)
        ssh1 = row_key("ssh", "studio1")
        await wait_for(pilot, "the checks", lambda: not screen.running and ssh1 in screen.results, 120)
        assert screen.results[ssh1].status.value == "fail" and offered in screen.results[ssh1].summary
        assert known.read_text().count(STUDIO1) == 0, "nothing trusted on first use"

        await pilot.press("k")
        await wait_for(pilot, "the host-key dialog", lambda: isinstance(app.screen, HostKeyScreen), 20)
        dialog = app.screen
        assert isinstance(dialog, HostKeyScreen) and dialog.problem.offered == offered
        assert offered in str(dialog.query_one("#hostkey-body").render())
        await pilot.click("#hostkey-accept")
        await wait_for(pilot, "SSH on studio1 to pass on the re-run", lambda: app.screen is screen
                       and ssh1 in screen.results and screen.results[ssh1].status.value == "ok", 120)
    app.session.close()
    kh = KnownHosts.parse(known.read_text(), str(known))
    key = NodeConnection(profile.node("studio1")).offered_host_key()
    assert kh.verify(STUDIO1, 22, key).status is Status.OK
