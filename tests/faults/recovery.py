"""Recovery by the product alone: ``.venv/bin/studio-cluster recover profiles/lab.yaml`` as a subprocess,
its output streamed line by line to an optional hook (the nemesis uses it to strike mid-run)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROFILE = "profiles/lab.yaml"
Hook = Callable[[str], None]


def cli() -> list[str]:
    exe = REPO / ".venv" / "bin" / "studio-cluster"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "wizard"]


@dataclass
class Run:
    command: str
    returncode: int
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 12) -> str:
        return "\n".join(self.output.strip().splitlines()[-lines:])


def run_product(action: str = "recover", *, hook: Hook | None = None, timeout: float = 420,
                extra: tuple[str, ...] = ()) -> Run:
    """Run ``studio-cluster <action> profiles/lab.yaml`` (`timeout` in seconds; on expiry the run is
    killed and reported with exit code -9)."""
    argv = [*cli(), action, PROFILE, *extra]
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if hook is not None:
                with contextlib.suppress(Exception):
                    hook(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = -9
        lines.append(f"[fault suite] killed after {timeout:g} s\n")
        proc.wait()
    reader.join(timeout=5)
    return Run(" ".join(["studio-cluster", action, PROFILE, *extra]), code, time.monotonic() - start, "".join(lines))
