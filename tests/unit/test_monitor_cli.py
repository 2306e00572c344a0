"""`studio-cluster monitor`'s flags: a replay headless prints the events and the verdicts; bad flags are
named with the fix, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.unit.monitor_values import T0, healthy, lab_profile, studio2_dead
from wizard.cli import main
from wizard.monitor_record import Frame, Recorder, watch


def recording(path: Path) -> Path:
    p = lab_profile()
    rec = Recorder(path, p.cluster_name)
    watch([Frame(healthy(p, T0)), Frame(studio2_dead(p, T0 + 2)), Frame(healthy(p, T0 + 4))], recorder=rec)
    rec.close()
    return path


def test_replay_headless_prints_events_and_verdicts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = recording(tmp_path / "r.sqlite")
    assert main(["monitor", "--replay", str(path), "--headless"]) == 0
    out = capsys.readouterr().out
    assert "studio2 left the Primary Component" in out and "garbd left" not in out
    assert out.strip().splitlines()[-1] == "verdicts: healthy -> degraded -> healthy"


def test_replay_with_on_change_runs_the_hook_per_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = recording(tmp_path / "r.sqlite")
    log = tmp_path / "hook.log"
    code = f"import os; open({str(log)!r}, 'a').write(os.environ['STUDIO_CLUSTER_VERDICT'] + chr(10))"
    assert main(["monitor", "--replay", str(path), "--on-change", f"{sys.executable} -c \"{code}\""]) == 0
    assert log.read_text().split() == ["healthy", "degraded", "healthy"]


@pytest.mark.parametrize(("argv", "message"), [
    (["monitor"], "needs the PROFILE of the cluster to watch, or --replay FILE"),
    (["monitor", "p.yaml", "--record", "a", "--replay", "b"], "--record and --replay: choose one"),
    (["monitor", "p.yaml", "--on-change", "  "], "--on-change: the command is empty"),
    (["monitor", "p.yaml", "--on-change", "'unclosed"], "--on-change: No closing quotation"),
    (["monitor", "p.yaml", "--interval", "0"], "--interval 0: give a number of seconds above 0"),
    (["monitor", "--replay", "/nonexistent/r.sqlite", "--headless"], "no such file"),
])
def test_bad_flags_are_named(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert message in err and "Traceback" not in err
