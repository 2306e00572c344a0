"""Nothing a person needs is cut at 80x24 on the form screens (issue 11 newcomer findings): labels fit their
column or wrap, and every input's example (placeholder) fits its input.  Before, 'Authoritative DNS
server(s), comma-se', 'PowerDNS API URL (apply pushes the re' and the Crafter URLs' examples were cut."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Label, Select

from tests.tui.conftest import profile_data
from tests.tui.test_snapshots import settle
from wizard.tui.app import WizardApp, create_app
from wizard.tui.form import new_cluster_data
from wizard.tui.screens.credentials import CredentialsScreen
from wizard.tui.screens.nodes import NodesScreen


@pytest.fixture
def app(tmp_path: Path) -> WizardApp:
    return create_app(profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")


def cut(screen: Any) -> list[str]:
    """Each label wider than its widget and not wrapped, and each placeholder wider than its input."""
    out = []
    for label in screen.query(Label):
        text = str(label.render())
        width, height = label.size
        if label.parent is not None:  # an auto-width label overflows its column: the column cuts it
            width = min(width, label.parent.content_size.width)
        if width and max(len(line) for line in text.splitlines() or [""]) > width and height < 2:
            out.append(f"label {text!r} in {width} columns")
    for field in screen.query(Input):
        width = field.content_size.width
        if width and not field.value and len(field.placeholder) > width:
            out.append(f"{field.id}: example {field.placeholder!r} in {width} columns")
    return out


@pytest.mark.parametrize("mode", ["url", "sentinel"])
async def test_the_cluster_form_cuts_nothing_at_80x24(app: WizardApp, mode: str) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        form = NodesScreen(new_cluster_data(), source="new cluster")
        await app.push_screen(form)
        await settle(pilot)
        form.query_one("#f-redis-mode", Select).value = mode
        await settle(pilot)
        assert cut(form) == []


async def test_the_credentials_screen_cuts_nothing_at_80x24(app: WizardApp) -> None:
    data = profile_data()
    data["dns"]["api_url"] = "http://10.20.0.53:8081"
    data["redis"] = {"sentinels": ["10.20.0.11:26379"], "master_name": "studio-prod"}
    async with app.run_test(size=(80, 24)) as pilot:
        creds = CredentialsScreen(data)
        await app.push_screen(creds)
        await settle(pilot)
        assert len(creds.specs) == 5
        assert cut(creds) == []
