"""profiles/example.yaml as `k8s render` tests use it: with TLS off (the manifests refuse tls.enabled for now,
docs/kubernetes.md says why), whatever the example's tls section says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from wizard.profile import Profile, validate_profile

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "profiles" / "example.yaml"


def example_data() -> dict[str, Any]:
    """The example profile's YAML as a dict, ``tls.enabled`` false."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    if isinstance(data.get("tls"), dict):
        data["tls"]["enabled"] = False
    return data


def example_profile() -> Profile:
    return validate_profile(example_data(), check_files=False)


def example_file(tmp: Path, **sections: Any) -> Path:
    """The example (TLS off, ``sections`` replacing top-level sections) written to ``tmp/profile.yaml``."""
    data = example_data()
    data.update(sections)
    path = tmp / "profile.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
