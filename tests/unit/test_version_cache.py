"""The controller's cache of the nodes' `--version` answers (wizard.checks.version_cache) and the facts probe's use
of it: keyed by the binary's stat (and mariadbd's option files), asked again when either changes, written
atomically, a corrupt file ignored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wizard.checks import version_cache
from wizard.checks.facts import SESSION


def test_remembered_answers_come_back_for_their_node_only(tmp_path: Path) -> None:
    f = tmp_path / "versions.json"
    assert version_cache.known("10.0.0.1", f) == {}
    version_cache.remember("10.0.0.1", {"/usr/sbin/mariadbd": [[["/usr/sbin/mariadbd", 1, 2, 3, 4, 5]], "Ver 1"]}, f)
    version_cache.remember("10.0.0.2", {"/usr/bin/garbd": [[["/usr/bin/garbd", 1, 9, 3, 4, 5]], "4.23"]}, f)
    assert version_cache.known("10.0.0.1", f) == {"/usr/sbin/mariadbd": [[["/usr/sbin/mariadbd", 1, 2, 3, 4, 5]],
                                                                         "Ver 1"]}
    assert version_cache.known("10.0.0.2", f) == {"/usr/bin/garbd": [[["/usr/bin/garbd", 1, 9, 3, 4, 5]], "4.23"]}
    version_cache.remember("10.0.0.1", {"/usr/sbin/mariadbd": [[["/usr/sbin/mariadbd", 1, 7, 3, 4, 5]], "Ver 2"]}, f)
    assert version_cache.known("10.0.0.1", f)["/usr/sbin/mariadbd"][1] == "Ver 2"  # replaced, not added
    assert len(json.loads(f.read_text())["entries"]) == 2


def test_a_corrupt_or_foreign_file_counts_as_empty_and_is_replaced(tmp_path: Path) -> None:
    f = tmp_path / "versions.json"
    for junk in ("{not json", "[1, 2]", '{"entries": {"a|b": {"key": 1, "text": 2}}}', ""):
        f.write_text(junk)
        assert version_cache.known("a", f) == {}
    version_cache.remember("a", {"b": [[["b", 1]], "v"]}, f)
    assert version_cache.known("a", f) == {"b": [[["b", 1]], "v"]}


def test_malformed_answers_are_not_remembered(tmp_path: Path) -> None:
    f = tmp_path / "versions.json"
    version_cache.remember("a", {"b": ["not a key", "v"], "c": [[["c"]], None], "d": "x"}, f)
    assert not f.exists()


def test_the_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "cache" / "versions.json"
    version_cache.remember("a", {"b": [[["b", 1]], "v1"]}, f)
    before = f.read_text()

    def broken(*_args: object, **_kw: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken)  # the temporary file written, not yet renamed over the cache
    version_cache.remember("a", {"b": [[["b", 2]], "v2"]}, f)  # best effort: no exception, the old file stays
    assert f.read_text() == before
    assert sorted(p.name for p in f.parent.iterdir()) == ["versions.json"]  # no temporary file left


def test_the_cache_lives_in_the_users_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert version_cache.cache_file() == tmp_path / "xdg" / "studio-cluster" / "versions.json"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the spec: relative paths are invalid
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert version_cache.cache_file() == tmp_path / "home" / ".cache" / "studio-cluster" / "versions.json"


def software(mariadbd: Path, known: dict[str, object], env: dict[str, str]) -> dict[str, object]:
    request = {"facts": {"software": ["studio", str(mariadbd), "/nowhere/libgalera_smm.so", known]}, "serve": False}
    res = subprocess.run([sys.executable, "-I", "-S", "-c", SESSION, json.dumps(request)], input="{}\n",
                         capture_output=True, text=True, timeout=60, check=True, env=env)
    out: dict[str, object] = json.loads(res.stdout.splitlines()[0])["value"]
    return out


def test_the_probe_asks_a_binary_again_only_when_it_or_an_option_file_changed(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    mariadbd = tmp_path / "mariadbd"
    mariadbd.write_text(f"#!/bin/sh\necho run >> {runs}\necho 'mariadbd  Ver 10.11.6-MariaDB for debian'\n")
    mariadbd.chmod(0o755)
    home = tmp_path / "mysql_home"
    home.mkdir()
    (home / "my.cnf").write_text("[mysqld]\n")
    env = {**os.environ, "MARIADB_HOME": str(home)}

    def count() -> int:
        return len(runs.read_text().splitlines()) if runs.exists() else 0

    first = software(mariadbd, {}, env)
    assert first["mariadbd"] == "mariadbd  Ver 10.11.6-MariaDB for debian" and count() == 1
    answers = first["versions"]
    assert isinstance(answers, dict) and list(answers) == [str(mariadbd)]
    again = software(mariadbd, answers, env)
    assert again["mariadbd"] == first["mariadbd"] and again["versions"] == {} and count() == 1  # not run
    (home / "my.cnf").write_text("[mysqld]\nlog-bin\n")  # an option file changed: asked again
    third = software(mariadbd, answers, env)
    assert third["mariadbd"] == first["mariadbd"] and count() == 2 and third["versions"] != answers
    answers = third["versions"]
    assert isinstance(answers, dict)
    mariadbd.write_text(mariadbd.read_text().replace("10.11.6", "10.11.7"))  # the binary changed: asked again
    fourth = software(mariadbd, answers, env)
    assert fourth["mariadbd"] == "mariadbd  Ver 10.11.7-MariaDB for debian" and count() == 3


def test_a_failing_version_is_not_cached(tmp_path: Path) -> None:
    mariadbd = tmp_path / "mariadbd"
    mariadbd.write_text("#!/bin/sh\necho broken; exit 3\n")
    mariadbd.chmod(0o755)
    out = software(mariadbd, {}, dict(os.environ))
    assert out["mariadbd"] is None and out["versions"] == {}
