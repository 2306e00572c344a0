"""The lab: three real hosts (network namespaces with their own sshd, MariaDB dirs, pid namespace),
Redis and PowerDNS.  One session-wide lab; tests that break something undo it in a finally block."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizard import lab
from wizard.profile import Profile, load_profile
from wizard.remote import Remote
from wizard.secrets import Secrets

REPO = Path(__file__).resolve().parents[2]
LAB_PROFILE = REPO / "profiles" / "lab.yaml"



@pytest.fixture(scope="session")
def lab_up() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    lab.down(progress=lambda _msg: None)  # fresh hosts: no cluster, no state from an earlier session
    lab.up(progress=lambda _msg: None)
    yield
    if not os.environ.get("STUDIO_CLUSTER_KEEP_LAB"):
        lab.down(progress=lambda _msg: None)


@pytest.fixture(scope="session")
def profile(lab_up: None) -> Profile:
    return load_profile(LAB_PROFILE)


@pytest.fixture(scope="session")
def secrets(profile: Profile) -> Secrets:
    return Secrets.resolve_for(profile)


@pytest.fixture
def remote(profile: Profile) -> Iterator[Remote]:
    r = Remote(profile)
    yield r
    r.close()
