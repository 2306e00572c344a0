"""profiles/example.yaml as `k8s render` tests use it.

``tls=True``: exactly the file (TLS on, as the example is now): the golden files, the schema validation, the
parity of the rendered options.  ``tls=False`` (the default): tls.enabled turned off, for the tests that run the
rendered scripts and agents with real servers here (they have no certificates) and the TLS-off render.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from wizard.profile import Profile, validate_profile

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "profiles" / "example.yaml"


def example_data(tls: bool = False) -> dict[str, Any]:
    """The example profile's YAML as a dict; ``tls`` False sets ``tls.enabled`` false."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    if not tls and isinstance(data.get("tls"), dict):
        data["tls"]["enabled"] = False
    return data


def example_profile(tls: bool = False) -> Profile:
    return validate_profile(example_data(tls), check_files=False)


def example_file(tmp: Path, tls: bool = False, **sections: Any) -> Path:
    """The example (``tls`` as in :func:`example_data`, ``sections`` replacing top-level sections) written to
    ``tmp/profile.yaml``."""
    data = example_data(tls)
    data.update(sections)
    path = tmp / "profile.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
