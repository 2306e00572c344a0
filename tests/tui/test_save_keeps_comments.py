"""The wizard saves a profile it loaded from a file as that file, comments and key order kept."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.unit.test_yaml_merge import ORIGINAL
from wizard.profile import validate_profile
from wizard.tui.session import Session


def test_saving_a_loaded_profile_changes_only_what_changed(tmp_path: Path) -> None:
    source = tmp_path / "prod.yaml"
    source.write_text(ORIGINAL)
    session = Session(profile_path=source, profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")
    data = yaml.safe_load(ORIGINAL)
    data["dns"]["ttl"] = 10
    session.profile = validate_profile(data, check_files=False)
    assert session.save_profile(source) == source
    assert source.read_text() == ORIGINAL.replace("ttl: 5             #", "ttl: 10            #")
    other = tmp_path / "copy.yaml"  # saved elsewhere: still the loaded file's shape
    session.save_profile(other)
    assert other.read_text() == source.read_text()


def test_a_profile_not_from_a_file_is_written_whole(tmp_path: Path) -> None:
    session = Session(profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")
    session.profile = validate_profile(yaml.safe_load(ORIGINAL), check_files=False)
    path = session.save_profile()
    text = path.read_text()
    assert "#" not in text  # nothing to keep
    assert validate_profile(yaml.safe_load(text), check_files=False) == session.profile
