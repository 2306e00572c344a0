"""The one wait the tests use: a loop on a condition with a deadline and a message naming what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy (returned), or raise
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
