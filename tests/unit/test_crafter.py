"""The Crafter-aware cluster's pure parts: Studio's rendered settings against Crafter's documentation, the
health verdict with Studio, the agent's Crafter settings, the publisher record, profile validation."""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from wizard.agent.health import node_verdict
from wizard.agent.studio import redact, with_token
from wizard.crafter.agent_settings import crafter_agent_config
from wizard.crafter.documented import DOC_PAGE, DOCUMENTED_PROPERTIES, DOCUMENTED_VARIABLES
from wizard.crafter.publisher import parse_record, publisher_line
from wizard.profile import Profile, ProfileError, load_profile, validate_profile
from wizard.render import STUDIO_OVERRIDE, STUDIO_SETENV, render

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "crafter.md"


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile(REPO / "profiles" / "lab.yaml", check_files=False)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def studio_files(profile: Profile, node: str) -> tuple[str, str]:
    base = PurePosixPath(str(profile.studio.install_path))
    files = {f.path: f.content for f in render(profile, None)[node]}
    return files[base / STUDIO_OVERRIDE], files[base / STUDIO_SETENV]


def test_every_rendered_property_and_variable_is_documented(profile: Profile) -> None:
    for node in ("studio1", "studio2"):
        override, setenv = studio_files(profile, node)
        properties = set(flatten(yaml.safe_load(override)))
        assert properties and properties <= DOCUMENTED_PROPERTIES, properties - DOCUMENTED_PROPERTIES
        variables = {m.group(1) for m in re.finditer(r"^export ([A-Z_][A-Z0-9_]*)=", setenv, re.M)}
        assert variables and variables <= DOCUMENTED_VARIABLES, variables - DOCUMENTED_VARIABLES
        assert not [line for line in setenv.splitlines() if line.strip() and not line.startswith(("#", "export "))]


def test_the_documented_list_is_the_one_docs_crafter_cites() -> None:
    text = DOC.read_text()
    assert DOC_PAGE in text
    for name in sorted(DOCUMENTED_PROPERTIES | DOCUMENTED_VARIABLES):
        assert f"`{name}`" in text, name


def test_studio_files_name_the_crafter_user_and_the_local_database(profile: Profile) -> None:
    override, setenv = studio_files(profile, "studio2")
    data = flatten(yaml.safe_load(override))
    assert data["studio.clustering.sync.urlFormat"] == "ssh://{username}@{localAddress}{absolutePath}"
    assert data["studio.clustering.node.registration.username"] == profile.studio.os_user
    env = {k: shlex.split(v)[0] for k, v in (line.removeprefix("export ").split("=", 1)
                                             for line in setenv.splitlines() if line.startswith("export "))}
    assert env["SPRING_PROFILES_ACTIVE"] == "crafter.studio.externalDb"
    assert env["MARIADB_HOST"] == env["CLUSTER_NODE_ADDRESS"] == "198.18.0.12"


@pytest.mark.parametrize(("db", "studio", "expected"), [
    ((True, "Primary and Synced"), None, (True, "Primary and Synced")),  # no Crafter: today's verdict
    ((False, "not in a Primary Component (non-Primary)"), None, (False, "not in a Primary Component (non-Primary)")),
    ((True, "Primary and Synced"), (True, "Studio answers"), (True, "Primary and Synced; Studio answers")),
    ((True, "Primary and Synced"), (False, "Studio does not answer http://x (refused)"),
     (False, "Studio does not answer http://x (refused)")),
    ((False, "mariadbd does not answer"), (True, "Studio answers"), (False, "mariadbd does not answer")),
    ((False, "mariadbd does not answer"), (False, "Studio answers http://x with HTTP 500"),
     (False, "mariadbd does not answer; Studio answers http://x with HTTP 500")),
])
def test_node_verdict(db: tuple[bool, str], studio: tuple[bool, str] | None, expected: tuple[bool, str]) -> None:
    assert node_verdict(db, studio) == expected


def test_token_goes_in_the_query_and_never_in_a_reason() -> None:
    assert with_token("http://h:8080/s/status", "t0ken/+") == "http://h:8080/s/status?token=t0ken%2F%2B"
    assert with_token("http://h/s?a=1", "abc") == "http://h/s?a=1&token=abc"
    assert with_token("http://h/s", None) == "http://h/s"
    assert redact("GET http://h/s?token=secret failed", "secret") == "GET http://h/s?token=*** failed"


def test_agent_settings_only_on_crafter_nodes(profile: Profile, monkeypatch: pytest.MonkeyPatch) -> None:
    # the token by an environment reference: the lab's token file exists only once `lab up` has run
    monkeypatch.setenv("STUDIO_TOKEN_FOR_TEST", "tok-123")
    profile = profile.model_copy(update={"studio": profile.studio.model_copy(
        update={"management_token": "env:STUDIO_TOKEN_FOR_TEST"})})
    cfg = crafter_agent_config(profile, profile.node("studio2"))
    assert cfg["crafter"] is True and cfg["studio_token"] == "tok-123"
    assert cfg["studio_status_url"] == "http://198.18.0.12:8080/studio/api/2/monitoring/status"
    assert cfg["crafter_nodes"] == ["studio1", "studio2"]
    assert crafter_agent_config(profile, profile.arbiter) == {"crafter": False}
    plain = profile.model_copy(update={"studio": profile.studio.model_copy(update={"nodes": []})})
    assert crafter_agent_config(plain, plain.node("studio1")) == {"crafter": False}


def test_publisher_record() -> None:
    now = time.time()
    rec = parse_record({b"node": b"studio2", b"token": b"7", b"ts": str(now).encode(), b"by": b"studio1",
                        b"error": b""})
    assert rec is not None and rec.ok and rec.node == "studio2" and rec.token == 7
    assert publisher_line(rec.to_dict()).startswith("studio2 (set 0 s ago, call #7 by studio1)")
    failed = parse_record({"node": "studio1", "token": "8", "ts": str(now), "by": "studio2",
                           "error": "http://198.18.0.11:8080/x answered HTTP 500"})
    assert failed is not None and not failed.ok and "answered HTTP 500" in failed.describe()
    assert parse_record({}) is None and parse_record({"node": "x", "token": "?"}) is None
    assert publisher_line(None) == ""


def _with_studio(profile: Profile, **studio: Any) -> dict[str, Any]:
    data = profile.model_dump(mode="json")
    data["studio"].update(studio)
    return data


@pytest.mark.parametrize(("studio", "says"), [
    ({"nodes": ["arbiter"]}, "not Studio nodes"),
    ({"nodes": ["studio1"], "publisher_url": None}, "publisher_url is not set"),
    ({"status_url": "ftp://x/status"}, "not an http(s) URL"),
    ({"management_token": "plain-secret"}, "reference"),
])
def test_bad_crafter_settings_name_the_field(profile: Profile, studio: dict[str, Any], says: str) -> None:
    with pytest.raises(ProfileError) as err:
        validate_profile(_with_studio(profile, **studio), check_files=False)
    assert says in str(err.value) and "studio" in str(err.value)


def test_a_misspelt_url_placeholder_is_named() -> None:
    """The agent fills in {address} only: `{adress}` was accepted and would have been requested literally."""
    import pytest
    from pydantic import ValidationError

    from wizard.profile import StudioSettings

    with pytest.raises(ValidationError, match=r"placeholder \{adress\}.*only one filled in is \{address\}"):
        StudioSettings(nodes=["studio1"], status_url="http://{adress}:8080/status",
                       publisher_url="http://{address}:8080/primary")
    ok = StudioSettings(nodes=["studio1"], status_url="http://{address}:8080/status",
                        publisher_url="http://{address}:8080/primary")
    assert ok.status_url == "http://{address}:8080/status"
