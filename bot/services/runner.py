"""The worker's loop: promote approved candidates, and finish what a killed process started."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bot.domain.promotion import CandidateState
from bot.services.promotions import Promotions
from bot.store.repositories import UnitOfWork

logger = logging.getLogger(__name__)

#: Approved ones wait to start; promoting ones were running when a process stopped.
_TO_RUN = frozenset({CandidateState.APPROVED, CandidateState.PROMOTING})


class PromotionRunner:
    """Runs promotions one at a time on its own thread, every ``interval`` or when woken, while
    ``may_run`` says this process is the one that promotes."""

    def __init__(
        self,
        promotions: Promotions,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        interval: float = 2.0,
        after_each: Callable[[], None] = lambda: None,
        may_run: Callable[[], bool] = lambda: True,
    ) -> None:
        self._promotions = promotions
        self._may_run = may_run
        self._unit_of_work = unit_of_work
        self._interval = interval
        self._after_each = after_each
        self._woken = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="promotions", daemon=True)

    def start(self) -> PromotionRunner:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._woken.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopped.set()
        self._woken.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_once(self) -> int:
        """Promote every candidate waiting to be promoted (or resumed); how many were run."""
        with self._unit_of_work().reading() as uow:
            waiting = [row.id for row in uow.candidates.in_states(_TO_RUN)]
        for candidate_id in waiting:
            if self._stopped.is_set():
                break
            try:
                self._promotions.promote(candidate_id)
            except Exception:
                # Left as it is (approved or promoting): the next pass tries again.
                logger.exception("promotion of candidate %s stopped; will retry", candidate_id)
            self._after_each()
        return len(waiting)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._woken.wait(self._interval)
            self._woken.clear()
            if self._stopped.is_set():
                break
            if not self._may_run():
                continue  # another process promotes; this one stands by
            try:
                self.run_once()
            except Exception:
                logger.exception("promotion pass failed; the next pass tries again")
