"""The node form's ``ssh.sudo_scope`` checkbox ("sudo: agent only", docs/least-privilege.md): checked it saves
``sudo_scope: agent``; a loaded profile round-trips unchanged, with or without the setting; it can be checked
only while the node's sudo box is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.widgets import Checkbox

from tests.tui.conftest import profile_data
from tests.tui.test_snapshots import settle
from wizard.profile import validate_profile
from wizard.tui.app import create_app
from wizard.tui.form import build_data, values_from_data
from wizard.tui.screens.nodes import NodesScreen

# studio1 as root, studio2 with full sudo, the arbiter with sudo limited to the agent
PROFILE = """\
cluster_name: studio-prod
preferred_primary: studio1
nodes:
  - name: studio1
    role: studio
    address: 10.20.0.11
    ssh: {user: deploy}
  - name: studio2
    role: studio
    address: 10.20.0.12
    ssh: {user: deploy, sudo: true}   # full sudo
  - name: arbiter
    role: arbiter
    address: 10.20.0.13
    ssh:
      user: deploy
      sudo: true
      sudo_scope: agent   # the installed agent only
dns:
  authoring_name: authoring.example.com
  servers: [10.20.0.53]
redis:
  url: "redis://10.20.0.20:6379/0"
  password: "env:TUI_TEST_REDIS_PASSWORD"
database: {sst_password: "env:TUI_TEST_SST_PASSWORD"}
"""


def sudo_data(scope: str | None) -> dict[str, Any]:
    data = profile_data()
    for node in data["nodes"]:
        node["ssh"].update(user="deploy", sudo=True)
        if scope is not None:
            node["ssh"]["sudo_scope"] = scope
    return data


@pytest.mark.parametrize("scope", [None, "all", "agent"])
def test_a_loaded_sudo_scope_round_trips_as_written(scope: str | None) -> None:
    data = sudo_data(scope)
    values = values_from_data(data)
    assert values["nodes-0-ssh-sudo_scope"] is (scope == "agent")
    again = build_data(data, values)
    assert again["nodes"] == data["nodes"]  # absent stays absent, all stays all, agent stays agent
    assert validate_profile(again) == validate_profile(data)


def test_checking_the_box_sets_agent_and_unchecking_goes_back_to_the_default() -> None:
    data = sudo_data(None)
    values = values_from_data(data)
    values["nodes-1-ssh-sudo_scope"] = True
    checked = build_data(data, values)
    assert [n["ssh"].get("sudo_scope") for n in checked["nodes"]] == [None, "agent", None]
    assert validate_profile(checked).nodes[1].ssh.sudo_scope == "agent"
    values["nodes-1-ssh-sudo_scope"] = False
    unchecked = build_data(checked, values)
    assert "sudo_scope" not in unchecked["nodes"][1]["ssh"]
    assert validate_profile(unchecked).nodes[1].ssh.sudo_scope == "all"


async def toggle(pilot: Any, selector: str) -> None:
    """Space on the checkbox, as a person would after Tab."""
    pilot.app.screen.query_one(selector, Checkbox).focus()
    await pilot.pause()
    await pilot.press("space")
    await settle(pilot)


async def test_the_wizard_saves_sudo_scope_agent_and_leaves_the_rest_as_loaded(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(PROFILE)
    app = create_app(path, profiles_dir=tmp_path, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, NodesScreen)
        boxes = [screen.query_one(f"#f-nodes-{i}-ssh-sudo_scope", Checkbox) for i in range(3)]
        assert [b.value for b in boxes] == [False, False, True]
        assert [b.disabled for b in boxes] == [True, False, False]  # studio1 has no sudo: nothing to limit
        assert screen.valid

        # untouched: saved back byte for byte
        app.session.profile = screen.profile
        unchanged = tmp_path / "unchanged.yaml"
        app.session.save_profile(unchanged)
        assert unchanged.read_text() == PROFILE

        # studio1: sudo on, then limited to the agent
        await toggle(pilot, "#f-nodes-0-ssh-sudo")
        assert not boxes[0].disabled
        await toggle(pilot, "#f-nodes-0-ssh-sudo_scope")
        assert boxes[0].value
        assert screen.valid and screen.profile is not None
        assert [n.ssh.sudo_scope for n in screen.profile.nodes] == ["agent", "all", "agent"]
        app.session.profile = screen.profile
        saved = tmp_path / "saved.yaml"
        app.session.save_profile(saved)
        nodes = yaml.safe_load(saved.read_text())["nodes"]
        assert nodes[0]["ssh"] == {"user": "deploy", "sudo": True, "sudo_scope": "agent"}
        assert nodes[1]["ssh"] == {"user": "deploy", "sudo": True}  # the default stays unwritten
        assert nodes[2]["ssh"]["sudo_scope"] == "agent"
        assert "# the installed agent only" in saved.read_text()

        # sudo off again: the scope box is off-limits
        await toggle(pilot, "#f-nodes-0-ssh-sudo")
        assert boxes[0].disabled
