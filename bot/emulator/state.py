"""The lock, the numbered change log and the waiting that every part of the workspace shares."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import TypeVar

from bot.emulator.clock import Clock
from bot.emulator.records import Change
from bot.emulator.team import Identity

T = TypeVar("T")
S = TypeVar("S", bound="WatchedState")


class WatchedState:
    """State guarded by one re-entrant lock, whose every change is numbered and announced."""

    def __init__(self, identity: Identity, clock: Clock) -> None:
        self.identity = identity
        self.clock = clock
        self.base_url = "http://127.0.0.1/"
        """Where the emulator serves; set once it has a port (permalinks and response URLs)."""
        self._lock = threading.RLock()
        self._changed_condition = threading.Condition(self._lock)
        self._changes: list[Change] = []
        self._subscribers: list[Callable[[Change], None]] = []
        self._last_micros = 0
        self._ids = itertools.count(1)

    def _changed(self, kind: str, **where: str | None) -> None:
        change = Change(seq=len(self._changes) + 1, kind=kind, **where)
        self._changes.append(change)
        for subscriber in list(self._subscribers):
            subscriber(change)
        self._changed_condition.notify_all()

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):010d}"

    def next_ts(self) -> str:
        """A Slack timestamp ("1764230400.000100"): unique and increasing, even if time stands."""
        with self._lock:
            micros = max(int(self.clock() * 1_000_000), self._last_micros + 1)
            self._last_micros = micros
            return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    @property
    def version(self) -> int:
        """The number of the latest change."""
        with self._lock:
            return len(self._changes)

    def changes_since(self, seq: int) -> list[Change]:
        """Changes numbered above `seq`, oldest first."""
        with self._lock:
            return self._changes[seq:]

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call `callback` after each change (on the changing thread: keep it quick)."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def wait_for(self: S, predicate: Callable[[S], T], timeout: float = 5.0) -> T:
        """Block until `predicate(self)` is truthy and return it; TimeoutError after `timeout`."""
        with self._lock:
            result = self._changed_condition.wait_for(lambda: predicate(self), timeout)
            if not result:
                raise TimeoutError(
                    f"the workspace did not reach the expected state within {timeout} s "
                    f"(last change: {self._changes[-1] if self._changes else 'none'})"
                )
            return result
