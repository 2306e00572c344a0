"""The restore's datadir swap (restore.SWAP_SCRIPT) on overlayfs, as in a container whose datadir is in the image
layer: renaming that directory fails with EXDEV, so the former data is copied aside instead, and the restored
copy goes in; nothing is lost, and a failure is a one-line message, not a traceback."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizard.backups.restore import SWAP_SCRIPT


@pytest.fixture
def overlay(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting an overlay needs root")
    try:
        pwd.getpwnam("mysql")
    except KeyError:
        pytest.skip("the swap gives the datadir to mysql:mysql; this machine has no mysql user")
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for d in (lower, upper, work, merged):
        d.mkdir()
    (lower / "mysql" / "db").mkdir(parents=True)
    (lower / "mysql" / "ibdata1").write_text("old data")
    (lower / "mysql" / "db" / "t.ibd").write_text("old table")
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower},upperdir={upper},workdir={work},redirect_dir=off", str(merged)], check=True)
    try:
        yield merged
    finally:
        subprocess.run(["umount", str(merged)], check=False)


def swap(*args: str) -> tuple[int, dict[str, object]]:
    proc = subprocess.run(["python3", "-I", "-S", "-c", SWAP_SCRIPT, *args], capture_output=True, text=True,
                          timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_datadir_overlayfs_cannot_rename_is_copied_aside(overlay: Path) -> None:
    datadir, aside, staging = overlay / "mysql", overlay / "mysql.pre-restore-x", overlay / "mysql.restore-y"
    with pytest.raises(OSError):  # the kind of host this is about
        os.rename(datadir, overlay / "probe")
    staging.mkdir()
    (staging / "ibdata1").write_text("restored")
    code, out = swap(str(datadir), str(aside), str(staging), "dir")
    assert code == 0 and out == {"kept": str(aside), "copied": True}, out
    assert (datadir / "ibdata1").read_text() == "restored" and not staging.exists()
    assert (aside / "ibdata1").read_text() == "old data" and (aside / "db" / "t.ibd").read_text() == "old table"


def test_a_failure_is_a_message(overlay: Path) -> None:
    code, out = swap(str(overlay / "mysql"), str(overlay / "mysql.pre-restore-x"), str(overlay / "missing"), "dir")
    assert code == 3 and "No such file or directory" in str(out["error"]) and "missing" in str(out["error"]), out
