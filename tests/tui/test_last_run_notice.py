"""Issue 15: opening a cluster's profile in the wizard tells of its last run when that run did not finish (its
front end went away): the story comes from the cluster's own Redis event stream, and the form does not wait."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from tests.tui.conftest import REPO
from wizard.coordinator import front_key, redis_client
from wizard.profile import load_profile
from wizard.run_history import RunRecorder, unfinished_story
from wizard.secrets import Secrets
from wizard.tui.app import create_app
from wizard.tui.screens.nodes import NodesScreen

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300),
              pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]


@pytest.fixture(scope="module")
def interrupted_run() -> str:
    """A run whose front end went away after a step: started and stepped, never ended, its sign of life gone."""
    from wizard import lab

    lab.up(progress=lambda _msg: None)
    profile = load_profile(REPO / "profiles/lab.yaml")
    client = redis_client(profile, Secrets.resolve_for(profile, only={"redis_password"}))
    try:
        rec = RunRecorder(client, profile)
        rec._beat()  # what start() does, without the thread that would keep it alive
        rec._write("run", "started", "run started", front="test front end", runlog="runs/x.jsonl", host="-", pid="")
        rec.step("bootstrap", "running", "agents electing and starting nodes")
        client.delete(front_key(profile, rec.run_id))  # the front end is gone
        return rec.run_id
    finally:
        client.close()


def test_the_story_of_an_unfinished_run_is_told(interrupted_run: str) -> None:
    import yaml

    story = unfinished_story(yaml.safe_load((REPO / "profiles/lab.yaml").read_text()))
    assert story and interrupted_run in story[0] and "interrupted" in story[0], story
    assert any("bootstrap:running" in line for line in story), story
    assert unfinished_story({"cluster_name": 5}) == []  # an invalid profile: nothing to tell, no error


async def test_opening_the_profile_shows_the_interrupted_run(interrupted_run: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    app = create_app(Path("profiles/lab.yaml"), profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 20
        while not any("did not finish" in (n.title or "") for n in app._notifications):
            assert time.monotonic() < deadline, "no notice of the interrupted run within 20 s"
            await asyncio.sleep(0.2)
        assert isinstance(app.screen, NodesScreen)  # the form opened; the notice did not hold it
        notice = next(n for n in app._notifications if "did not finish" in (n.title or ""))
        assert interrupted_run in notice.message and "interrupted" in notice.message, notice.message
        await pilot.pause()
