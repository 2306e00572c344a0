"""The systemd lab: three systemd-nspawn hosts that boot Debian 12 with systemd, reached as ``deploy``
with passwordless sudo (``profiles/lab-systemd.yaml``).  It shares nothing with the namespace lab (own
bridge, subnet, names, Redis and PowerDNS): wrap runs in ``flock /tmp/studio-lab-systemd.lock``.

The first session ever builds the base rootfs with debootstrap (about 2 minutes, cached under the lab
dir); later sessions boot the hosts in about 2 s."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizard import labsystemd
from wizard.profile import Profile, load_profile
from wizard.remote import Remote
from wizard.secrets import Secrets

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "lab-systemd.yaml"



@pytest.fixture(scope="session")
def sd_lab() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("the systemd lab needs root (network namespaces, systemd-nspawn)")
    if shutil.which("systemd-nspawn") is None or shutil.which("debootstrap") is None:
        pytest.skip("the systemd lab needs systemd-container and debootstrap (make deps installs them)")
    labsystemd.down(progress=lambda _msg: None)  # fresh hosts: no cluster, no state from an earlier session
    labsystemd.up(progress=lambda _msg: None)
    yield
    if not os.environ.get("STUDIO_CLUSTER_KEEP_LAB"):
        labsystemd.down(progress=lambda _msg: None)


@pytest.fixture(scope="session")
def sd_profile(sd_lab: None) -> Profile:
    return load_profile(PROFILE)


@pytest.fixture(scope="session")
def sd_secrets(sd_profile: Profile) -> Secrets:
    return Secrets.resolve_for(sd_profile)


@pytest.fixture
def sd_remote(sd_profile: Profile) -> Iterator[Remote]:
    r = Remote(sd_profile)
    yield r
    r.close()
