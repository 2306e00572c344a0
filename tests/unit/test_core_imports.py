"""The core never imports Textual: only wizard.tui may.  Checked in a fresh interpreter."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import wizard

CORE = sorted(
    m.name for m in pkgutil.walk_packages(wizard.__path__, "wizard.")
    if not m.name.startswith("wizard.tui") and m.name not in ("wizard.__main__",)
)


def test_core_modules_exist() -> None:
    assert {"wizard.profile", "wizard.remote", "wizard.checks.runner", "wizard.cli"} <= set(CORE)


def test_core_does_not_import_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {CORE!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith(('textual.', 'wizard.tui')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(wizard.__file__).parent.parent)
    assert out.stdout.strip() == "", f"core imported: {out.stdout.strip()}"
