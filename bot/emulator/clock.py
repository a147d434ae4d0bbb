"""Time as the emulator sees it, injectable so tests can expire a trigger without sleeping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]
"""Seconds since the epoch, like `time.time`."""

system_clock: Clock = time.time


class ManualClock:
    """A clock that only moves when told to; safe to read from the server thread."""

    def __init__(self, start: float = 1764230400.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward (never backward: Slack timestamps only grow)."""
        if seconds < 0:
            raise ValueError("a clock cannot go back")
        with self._lock:
            self._now += seconds
