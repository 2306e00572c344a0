"""A normal install ships every package: pyproject.toml lists the packages by hand (find cannot see the mapped
wizard.assets), so a package added under wizard/ and not listed installs fine in editable mode and breaks a
plain `pip install .` with ModuleNotFoundError (a newcomer met exactly this with wizard.tls)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_package_under_wizard_is_listed_for_the_wheel() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "wizard").rglob("__init__.py")
               if "__pycache__" not in p.parts}
    missing = sorted(on_disk - listed)
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml"
    assert "wizard.assets" in listed


def test_every_data_file_the_product_reads_is_package_data() -> None:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    globs = data["wizard.assets"]
    for path in (REPO / "assets").rglob("*"):
        if path.is_file():
            rel = path.relative_to(REPO / "assets")
            assert any(rel.match(g) for g in globs), f"{rel} is not shipped: add its pattern to package-data"
