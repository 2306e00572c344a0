"""A normal (non-editable) install works from any directory: build the wheel from a copy of the source,
install it with its dependencies into a fresh venv, then, from a directory that is not the checkout, run
`render` and `plan` on the lab profile and paint the wizard's first screen with its stylesheet."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.lab.conftest import LAB_PROFILE, REPO
from wizard.profile import Profile

SOURCES = ("pyproject.toml", "README.md", "wizard", "assets")


def _run(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (f"{' '.join(argv)} exited {proc.returncode}\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)], src, 300)
    (built,) = out.glob("studio_cluster-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    env_dir = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", str(env_dir)], env_dir, 120)
    # dependencies come from the machine's pip cache or PyPI; the package itself only from the wheel
    _run([str(env_dir / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)], env_dir, 600)
    return env_dir


def test_wheel_holds_every_module_and_asset(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [str(p.relative_to(REPO)) for p in sorted((REPO / "wizard").rglob("*.py"))
               if "__pycache__" not in p.parts and str(p.relative_to(REPO)) not in names]
    assert not missing, f"not in the wheel (add the package to [tool.setuptools] packages): {missing}"
    for asset in sorted((REPO / "assets").rglob("*")):
        if asset.is_file():
            assert f"wizard/assets/{asset.relative_to(REPO / 'assets')}" in names


def test_installed_render_plan_and_wizard_work_from_another_directory(
        venv: Path, profile: Profile, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bin_dir = venv / "bin"
    where = _run([str(bin_dir / "python"), "-c", "import wizard; print(wizard.__file__)"], elsewhere, 60)
    assert str(venv) in where.stdout, f"wizard imported from {where.stdout.strip()}, not from the venv"

    profile_copy = elsewhere / "lab.yaml"
    shutil.copy2(LAB_PROFILE, profile_copy)
    _run([str(bin_dir / "studio-cluster"), "render", "lab.yaml", "--out", "rendered"], elsewhere, 120)
    rendered = {p.relative_to(elsewhere / "rendered").as_posix() for p in (elsewhere / "rendered").rglob("*")
                if p.is_file()}
    galera = [p for p in (elsewhere / "rendered").rglob("*") if p.is_file() and "wsrep_cluster_name" in p.read_text()]
    assert galera, f"no Galera config among {sorted(rendered)}"

    plan = _run([str(bin_dir / "studio-cluster"), "plan", "lab.yaml"], elsewhere, 180)
    assert "Bootstrap steps" in plan.stdout
    for node in profile.nodes:
        assert node.name in plan.stdout

    script = elsewhere / "first_screen.py"
    script.write_text(textwrap.dedent("""
        import asyncio, pathlib, sys
        from wizard.tui.app import create_app

        async def main() -> None:
            here = pathlib.Path.cwd()
            app = create_app(profiles_dir=here / "profiles", runs_dir=here / "runs")
            async with app.run_test(size=(100, 30)) as pilot:
                await pilot.pause()
                start = app.screen.query_one("#start")
                print(type(app.screen).__name__, tuple(start.styles.padding))
                print(app.screen.query_one("#new").label)

        asyncio.run(main())
    """))
    painted = _run([str(bin_dir / "python"), str(script)], elsewhere, 120)
    # StartScreen, and `#start { padding: 1 2 }` from wizard.tcss applied: the stylesheet was found
    assert "StartScreen (1, 2, 1, 2)" in painted.stdout, painted.stdout
    assert "New cluster" in painted.stdout
