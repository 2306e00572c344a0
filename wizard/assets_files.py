"""Where the templates and styles are: package data ``wizard.assets``, read through importlib.resources.

The source tree keeps them in the top-level ``assets/`` directory; ``pyproject.toml`` maps the package
``wizard.assets`` onto that directory (setuptools ``package-dir``), so a wheel carries them as
``wizard/assets/...`` and an editable install finds them through its import finder.  A checkout run
without any install (or an editable install made before that mapping) falls back to ``assets/`` beside
the ``wizard`` package.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.resources
from functools import cache
from importlib.resources.abc import Traversable
from pathlib import Path

PACKAGE = "wizard.assets"


class AssetsMissing(Exception):
    """The installed package has no assets; the message says what to reinstall."""


@cache
def assets_root() -> Traversable:
    """The assets directory (``templates/*.j2``, ``styles/*.tcss``) as a Traversable.

    Raises :class:`AssetsMissing` when neither the package data nor a source checkout holds it."""
    try:
        root: Traversable = importlib.resources.files(PACKAGE)
        if root.joinpath("templates").is_dir():
            return root
    except ModuleNotFoundError:
        pass
    checkout = Path(__file__).resolve().parent.parent / "assets"
    if (checkout / "templates").is_dir():
        return checkout
    raise AssetsMissing(f"the package data {PACKAGE} (templates and styles) is not installed; "
                        "reinstall studio-cluster (pip install --force-reinstall studio-cluster)")


def asset_text(*parts: str) -> str:
    """The text of one asset, e.g. ``asset_text("templates", "galera.cnf.j2")``.

    Raises :class:`AssetsMissing` (no assets at all) or FileNotFoundError (no such file)."""
    node = assets_root()
    for part in parts:
        node = node.joinpath(part)
    return node.read_text(encoding="utf-8")


_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


def asset_file(*parts: str) -> Path:
    """One asset as a file on disk (for APIs that take a path, e.g. Textual's CSS_PATH).

    Installed from a wheel or a checkout it is the file itself; from a zip import it is a temporary copy
    that lives until the process exits.  Raises :class:`AssetsMissing` or FileNotFoundError."""
    node = assets_root()
    for part in parts:
        node = node.joinpath(part)
    if isinstance(node, Path):
        if not node.is_file():
            raise FileNotFoundError(f"asset {'/'.join(parts)} is missing from {node.parent}")
        return node
    return _extracted.enter_context(importlib.resources.as_file(node))
