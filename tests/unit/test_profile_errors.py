"""Broken profile files: every message names the file, the line and column, what is wrong and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from wizard.profile import ProfileError, file_problems, load_profile, validate_profile

REPO = Path(__file__).resolve().parents[2]
GOOD = (REPO / "profiles" / "lab.yaml").read_text()


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def broken(tmp_path: Path, text: str) -> ProfileError:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError) as err:
        load_profile(path, check_files=False)
    assert str(path) in str(err.value)
    assert "Traceback" not in str(err.value)
    return err.value


def test_tab_indentation(tmp_path: Path) -> None:
    text = GOOD.replace("\n  authoring_name:", "\n\tauthoring_name:", 1)
    err = broken(tmp_path, text)
    assert err.where == [f"line {_line_of(text, 'authoring_name')}, column 1"]
    assert "tab character" in err.problems[0] and "spaces" in err.problems[0]
    assert "is not valid YAML" in err.problems[0]


def test_unclosed_quote_points_at_the_opening_quote(tmp_path: Path) -> None:
    text = re.sub(r"cluster_name: (\S+)", r'cluster_name: "\1', GOOD, count=1)
    err = broken(tmp_path, text)
    line = _line_of(text, "cluster_name")
    column = text.splitlines()[line - 1].index('"') + 1
    assert err.where == [f"line {line}, column {column}"]
    assert "quoted value is not closed" in err.problems[0]
    assert "cluster_name: \"" in err.problems[0]  # the offending line is shown


def test_unclosed_flow_list(tmp_path: Path) -> None:
    text = GOOD.replace("\ncluster_name:", "\nextra_list: [a, b\ncluster_name:", 1)
    err = broken(tmp_path, text)
    assert err.where[0].startswith("line ")
    assert "[ list is not closed" in err.problems[0]


def test_a_list_where_a_mapping_belongs(tmp_path: Path) -> None:
    text = GOOD + "\nbackups:\n  - keep_last: 3\n"
    err = broken(tmp_path, text)
    [problem] = [p for p in err.problems if p.startswith("backups:")]
    assert "is a list, but it must be a mapping" in problem
    assert err.where[err.problems.index(problem)] == f"line {len(text.splitlines())}, column 3"


def test_unknown_top_level_key_suggests_the_spelling(tmp_path: Path) -> None:
    text = GOOD + "\nprefered_primary: studio1\n"
    err = broken(tmp_path, text)
    assert err.problems == ["prefered_primary: unknown setting; did you mean 'preferred_primary'? "
                            "(otherwise remove it)"]
    assert err.where == [f"line {len(text.splitlines())}, column 1"]


def test_unknown_key_without_a_close_match_lists_the_known_ones(tmp_path: Path) -> None:
    err = broken(tmp_path, GOOD + "\nbanana: 1\n")
    assert "known here: cluster_name, nodes" in err.problems[0]


def test_wrong_type_names_field_and_line(tmp_path: Path) -> None:
    text = GOOD.replace("\ndns:\n", "\ndns:\n  ttl: five\n", 1) if "  ttl:" not in GOOD else \
        re.sub(r"\n  ttl: \d+", "\n  ttl: five", GOOD, count=1)
    err = broken(tmp_path, text)
    [i] = [i for i, p in enumerate(err.problems) if p.startswith("dns.ttl: ")]
    assert "is 'five' (a string), but it must be a whole number; write it like `ttl: 5`" in err.problems[i]
    assert err.where[i] == f"line {_line_of(text, 'ttl: five')}, column 8"


def test_a_string_where_a_mapping_belongs(tmp_path: Path) -> None:
    err = broken(tmp_path, GOOD + "\nbackups: daily\n")
    assert any(p.startswith("backups: is a string, but it must be a mapping") for p in err.problems)


def test_duplicate_key_is_named(tmp_path: Path) -> None:
    text = GOOD + "\ncluster_name: other\n"
    err = broken(tmp_path, text)
    assert err.problems[0].startswith("cluster_name: is given twice (first on line ")
    assert err.where[0] == f"line {len(text.splitlines())}, column 1"


@pytest.mark.parametrize("text, words", [
    ("", "the file holds empty"),
    ("- a\n- b\n", "the file holds a list"),
    ("just text\n", "the file holds a string"),
    ("a: 1\n---\nb: 2\n", "a profile is one document"),
    ("a: b: c\n", "put a space after each key's ':'"),
    ("a: *nope\n", "alias"),
])
def test_other_broken_documents(tmp_path: Path, text: str, words: str) -> None:
    assert words in str(broken(tmp_path, text))


def test_unreadable_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read it"):
        load_profile(tmp_path / "missing.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"cluster_name: caf\xe9\n")
    with pytest.raises(ProfileError, match="is not UTF-8"):
        load_profile(tmp_path / "latin1.yaml")


def test_str_shows_every_problem_with_its_line(tmp_path: Path) -> None:
    text = GOOD + "\nbanana: 1\nprefered_primary: x\n"
    shown = str(broken(tmp_path, text)).splitlines()
    assert shown[0].endswith("is not a valid profile:")
    assert shown[1].startswith(f"  - line {len(text.splitlines()) - 1}, column 1: banana: unknown setting")
    assert shown[2].startswith(f"  - line {len(text.splitlines())}, column 1: prefered_primary: unknown setting")


def test_file_problems_lists_every_missing_file(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "profiles" / "example.yaml").read_text())
    for n in data["nodes"]:
        n["ssh"]["key_file"] = str(tmp_path / "nope")
    data["nodes"][0]["ssh"]["known_hosts"] = str(tmp_path / "known_hosts")
    problems = file_problems(validate_profile(data, check_files=False))
    assert len(problems) == 4
    assert problems[1].startswith("nodes[0:studio1].ssh.known_hosts: file ")
    assert problems[0].startswith("nodes[0:studio1].ssh.key_file: file ")
    assert all(" does not exist; point " in x for x in problems)
    assert f"ssh-keygen -t ed25519 -f {tmp_path / 'nope'}" in problems[0]
    assert "~deploy/.ssh/authorized_keys" in problems[0]
    assert f"ssh-keyscan -p 22 10.20.0.11 >> {tmp_path / 'known_hosts'}" in problems[1]


def test_validate_profile_without_a_file_has_no_places() -> None:
    with pytest.raises(ProfileError) as err:
        validate_profile({"cluster_name": "x"})
    assert set(err.value.where) == {""}
