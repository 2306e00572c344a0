"""A whole cluster typed into an empty wizard: every setting the built-in lab needs is reachable.

The values come from ``profiles/lab.yaml``; the test types them key by key into the New cluster form
and the credentials screen (references, not values) and checks that the profile the wizard would save
equals the lab's.  No lab is needed: nothing here connects anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input, Select

from tests.tui.conftest import REPO
from tests.tui.test_snapshots import settle
from wizard.profile import validate_profile
from wizard.tui.app import WizardApp, create_app
from wizard.tui.form import values_from_data, with_secret_refs
from wizard.tui.screens.credentials import CredentialsScreen
from wizard.tui.screens.nodes import NodesScreen

LAB = REPO / "profiles" / "lab.yaml"


def lab_data(tmp_path: Path) -> dict[str, Any]:
    """The lab profile, its key and known_hosts files moved to empty stand-ins under tmp_path: the form
    checks that they exist, and the lab's own come and go as the lab is rebuilt."""
    data = yaml.safe_load(LAB.read_text())
    for node in data["nodes"]:
        for k in ("key_file", "known_hosts"):
            stand_in = tmp_path / Path(node["ssh"][k]).name
            stand_in.touch()
            node["ssh"] = dict(node["ssh"], **{k: str(stand_in)})
    return data


async def enter(pilot: Pilot[Any], selector: str, text: str) -> None:
    """Put `text` into an input as a person would: short values typed key by key, long ones (paths, lists)
    pasted, which is how people enter them (and typing 400 keys one by one makes the test slow)."""
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    await pilot.pause()
    field.value = ""
    if len(text) <= 12:
        await pilot.press(*text)
    else:
        field.post_message(events.Paste(text))
    await pilot.pause()
    assert field.value == text, (selector, field.value)


async def choose(pilot: Pilot[Any], selector: str, value: str) -> None:
    """Pick `value` in a Select with the keyboard: open it, move the highlight, enter."""
    select = pilot.app.screen.query_one(selector, Select)
    select.focus()
    await pilot.press("enter")
    await pilot.pause()
    for _ in range(len(select._options)):
        if select.value == value:
            break
        await pilot.press("down", "enter")
        await pilot.pause()
        if select.value != value:
            await pilot.press("enter")
            await pilot.pause()
    assert select.value == value, f"could not choose {value!r} in {selector}"


@pytest.fixture
def app(tmp_path: Path) -> WizardApp:
    return create_app(profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")


async def type_cluster(pilot: Pilot[Any], data: dict[str, Any], *, skip: tuple[str, ...] = ()) -> NodesScreen:
    """From the start screen: n, then every form value of `data` typed in (form keys in `skip` left as
    the new form has them); returns the form, validated."""
    app = pilot.app
    await settle(pilot)
    await pilot.press("n")
    await settle(pilot)
    form = app.screen
    assert isinstance(form, NodesScreen)
    # the first field has focus: typing works without a Tab
    assert app.focused is form.query_one("#f-cluster_name", Input)
    want = values_from_data(data)
    await pilot.press(*want["cluster_name"])
    for key, value in want.items():
        if key in ("cluster_name", "preferred_primary", *skip) or isinstance(value, bool):
            continue
        if key in ("redis-mode", "services-manager"):
            await choose(pilot, f"#f-{key}", value)
        elif key == "redis-url" and want["redis-mode"] == "sentinel":
            assert not form.query_one("#ff-redis-url").display  # hidden: not what a Sentinel setup uses
        elif form.query_one(f"#f-{key}", Input).value != value:
            await enter(pilot, f"#f-{key}", value)
    await settle(pilot)
    return form


def secret_refs(data: dict[str, Any]) -> dict[str, str]:
    return {"sst_password": data["database"]["sst_password"], "redis_password": data["redis"]["password"],
            "admin_password": data["database"]["admin_password"], "dns_api_key": data["dns"]["api_key"],
            "sentinel_password": "none"}


async def type_secret_refs(pilot: Pilot[Any], data: dict[str, Any]) -> CredentialsScreen:
    creds = pilot.app.screen
    assert isinstance(creds, CredentialsScreen)
    assert pilot.app.focused is creds.query_one("#ref-sst_password", Input)
    for key, ref in secret_refs(data).items():
        await enter(pilot, f"#ref-{key}", ref)
    await settle(pilot)
    return creds


@pytest.mark.drill  # 34 s of typing: make drills (make test's time budget); test_tmux_lab types the same lab in tmux
async def test_new_cluster_form_takes_every_lab_setting(app: WizardApp, tmp_path: Path) -> None:
    lab = lab_data(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        form = await type_cluster(pilot, lab)
        assert form.problems == {}, form.problems
        assert form.valid, form.problems
        await pilot.press("ctrl+n")
        await settle(pilot)
        creds = app.screen
        assert isinstance(creds, CredentialsScreen)
        shown = [s.key for s in creds.specs]
        assert shown == ["sst_password", "redis_password", "admin_password", "dns_api_key", "sentinel_password"]
        await type_secret_refs(pilot, lab)
        typed = with_secret_refs(creds.data, creds.refs())
    got = validate_profile(typed, check_files=False)
    expected = validate_profile(lab, check_files=False)
    assert got.model_dump() == expected.model_dump()


async def test_switching_to_one_redis_shows_the_url_and_hides_the_sentinels(app: WizardApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, NodesScreen)
        assert form.query_one("#ff-redis-url").display
        assert not form.query_one("#ff-redis-sentinels").display
        await choose(pilot, "#f-redis-mode", "sentinel")
        await settle(pilot)
        assert not form.query_one("#ff-redis-url").display
        assert form.query_one("#ff-redis-sentinels").display
        await enter(pilot, "#f-redis-sentinels", "10.0.0.11:26379, 10.0.0.12")
        await settle(pilot)
        assert form.data["redis"]["sentinels"] == ["10.0.0.11:26379", "10.0.0.12"]
        assert "url" not in form.data["redis"]


@pytest.mark.drill  # 32 s of typing: make drills (make test's time budget); test_form covers the backups fields
async def test_backups_are_set_in_the_form_and_checked_as_typed(app: WizardApp, tmp_path: Path) -> None:
    """The profile's backups section has its fields: a bad schedule is named under its input, a good one
    goes into the profile the wizard goes on with."""
    lab = lab_data(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await type_cluster(pilot, lab)
        await enter(pilot, "#f-backups-schedule", "25:99")
        await settle(pilot)
        assert not form.valid
        assert "is not a schedule" in form.problems.get("backups-schedule", [""])[0]  # type: ignore[union-attr]
        assert form.query_one("#e-backups-schedule").display
        await enter(pilot, "#f-backups-schedule", "02:30")
        await enter(pilot, "#f-backups-keep_last", "14")
        await enter(pilot, "#f-backups-root", "/srv/studio-backups")
        await settle(pilot)
        assert form.valid, form.problems
        assert form.profile is not None
        backups = form.profile.backups
        assert (backups.schedule, backups.keep_last, str(backups.root)) == ("02:30", 14, "/srv/studio-backups")
