"""The port through which services tell people what happened, inside the change's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from bot.domain.promotion import CandidateState, PromotionStep
from bot.store.repositories import UnitOfWork

if TYPE_CHECKING:
    from bot.services.digests import Digest
    from bot.services.promotions import Progress
    from bot.services.reminders import Reminder


class Notifier(Protocol):
    """Queues messages in the outbox, in the caller's transaction: told only if it committed."""

    def card_changed(self, uow: UnitOfWork, candidate_id: int, now: datetime) -> None:
        """Post the candidate's card, or update it in place if it was posted."""
        ...

    def in_thread(self, uow: UnitOfWork, candidate_id: int, text: str, now: datetime) -> None:
        """Add a line to the candidate's thread."""
        ...

    def privately(self, uow: UnitOfWork, channel: str, user: str, text: str, now: datetime) -> None:
        """Tell one person something only they see."""
        ...

    def progress(
        self, uow: UnitOfWork, candidate_id: int, progress: Progress, now: datetime
    ) -> None:
        """A promotion step ended: say so in the candidate's thread."""
        ...

    def outcome(
        self,
        uow: UnitOfWork,
        candidate_id: int,
        outcome: CandidateState,
        actor: str,
        error: str | None,
        step: PromotionStep | None,
        duration_s: float | None,
        now: datetime,
    ) -> None:
        """A promotion ended (promoted, failed) or was taken back: the thread's last word."""
        ...

    def digest(
        self, uow: UnitOfWork, digest: Digest, now: datetime, *, key: str, workspace_url: str | None
    ) -> None:
        """Post a digest to its channel, once per ``key``; ``workspace_url`` links the threads."""
        ...

    def reminder(
        self, uow: UnitOfWork, reminder: Reminder, now: datetime, *, workspace_url: str | None
    ) -> bool:
        """Remind one approver in a direct message; False when this reminder was queued before."""
        ...
