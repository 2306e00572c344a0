"""Benchmark: time from launch to the first painted screen, against a bare Textual app (the floor).

Each sample is a fresh interpreter, timed by this process from spawn until the child reports that its
first screen is mounted and painted (headless, 80x24).  Both run alternately in one run.

    .venv/bin/python bench/first_paint.py [--rounds N] [--out docs/bench-first-paint.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

WIZARD = """
import asyncio
from wizard.tui.app import create_app
async def main():
    app = create_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert type(app.screen).__name__ == "StartScreen", app.screen
        print("painted", flush=True)
asyncio.run(main())
"""

FLOOR = """
import asyncio
from textual.app import App
from textual.widgets import Footer, Header, Static
class Bare(App):
    def compose(self):
        yield Header()
        yield Static("studio-cluster")
        yield Footer()
async def main():
    app = Bare()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        print("painted", flush=True)
asyncio.run(main())
"""


def sample(code: str) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.wait(timeout=30)
    if line.strip() != "painted":
        raise RuntimeError(f"the child did not paint (exit {proc.returncode})")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench-first-paint.md")
    args = parser.parse_args()
    sample(FLOOR)  # warm the OS page cache for both, untimed
    sample(WIZARD)
    floors, wizards, loads = [], [], []
    began = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for _ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        floors.append(sample(FLOOR))
        wizards.append(sample(WIZARD))
    f, w = statistics.median(floors), statistics.median(wizards)
    report = (
        "# First paint benchmark\n\n"
        "`bench/first_paint.py`: from launching a fresh interpreter to the first painted screen (headless,\n"
        "80x24), the wizard's start screen against a bare Textual app (Header, Static, Footer), alternating.\n\n"
        f"Run {began}, {args.rounds} rounds; 1-minute load average at each round's start: "
        f"{', '.join(f'{x:.2f}' for x in loads)} (2 cores, shared with other engineers' tests).\n\n"
        "| | rounds | median | max |\n|---|---|---|---|\n"
        f"| bare Textual app (floor) | {len(floors)} | {f:.3f}s | {max(floors):.3f}s |\n"
        f"| wizard start screen | {len(wizards)} | {w:.3f}s | {max(wizards):.3f}s |\n\n"
        f"**ratio wizard / floor = {w / f:.2f}** (goal <= 1.2); the wizard paints in {w:.2f}s\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    print(f"RATIO first paint wizard/floor = {w / f:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
