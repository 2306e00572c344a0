"""How states look: one place for the words and colours of ok/warn/fail and cluster states."""

from __future__ import annotations

import time

from rich.text import Text

CHECK_BADGES = {
    "ok": ("ok", "green"),
    "warn": ("warn", "yellow"),
    "fail": ("FAIL", "bold red"),
    "skip": ("skip", "red"),
    "pending": ("...", "dim"),
}

VERDICT_STYLE = {"healthy": "bold green", "degraded": "bold yellow", "split": "bold red", "down": "bold red",
                 "unknown": "bold magenta"}
LEVEL_STYLE = {"good": "green", "info": "", "warn": "yellow", "bad": "red"}
STEP_STYLE = {"done": "green", "fail": "bold red", "failed": "bold red", "skip": "dim", "skipped": "dim",
              "waiting": "yellow", "start": "cyan", "running": "cyan", "started": "cyan", "pending": "dim"}


def check_badge(status: str) -> Text:
    word, style = CHECK_BADGES.get(status, (status, ""))
    return Text(word, style=style)


def clock(ts: float) -> str:
    """HH:MM:SS of a timestamp, local time."""
    return time.strftime("%H:%M:%S", time.localtime(ts))
