"""Expiry: a candidate nobody decided on before its ``expires_at`` stops waiting.

Each candidate expires in its own transaction, with its audit row, its card updated in place and
a line in its thread; one that a vote decided meanwhile is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select

from bot.domain.errors import IllegalTransition
from bot.domain.promotion import OPEN_STATES, CandidateState
from bot.services.notify import Notifier
from bot.store.models import CandidateRow
from bot.store.repositories import UnitOfWork

ACTOR = "gatekeeper"


def expire_due(
    unit_of_work: Callable[[], UnitOfWork], notifier: Notifier, *, now: datetime
) -> list[int]:
    """Expire every open candidate past its ``expires_at``; return the ids expired."""
    with unit_of_work().reading() as uow:
        due = uow.session.scalars(
            select(CandidateRow.id)
            .where(
                CandidateRow.state.in_(sorted(s.value for s in OPEN_STATES)),
                CandidateRow.expires_at <= now,
            )
            .order_by(CandidateRow.expires_at, CandidateRow.id)
        ).all()
    return [
        candidate_id for candidate_id in due if _expire(unit_of_work, notifier, candidate_id, now)
    ]


def _expire(
    unit_of_work: Callable[[], UnitOfWork], notifier: Notifier, candidate_id: int, now: datetime
) -> bool:
    with unit_of_work() as uow:
        row = uow.candidates.get(candidate_id, for_update=True)
        state = CandidateState(row.state)
        if state not in OPEN_STATES or row.expires_at is None or row.expires_at > now:
            return False
        deadline = f"{row.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        reason = f"no decision before {deadline}"
        try:
            uow.candidates.transition(
                row, CandidateState.EXPIRED, actor=ACTOR, now=now, reason=reason
            )
        except IllegalTransition:
            return False  # decided a moment ago
        uow.audit.append(
            ACTOR,
            "candidate.expired",
            f"candidate:{candidate_id}",
            {"from": state.value, "expires_at": row.expires_at.isoformat()},
            at=now,
        )
        notifier.card_changed(uow, candidate_id, now)
        notifier.in_thread(
            uow,
            candidate_id,
            f"⌛ Expired: {reason}. Request it again with `/promote` if it is still wanted.",
            now,
        )
        uow.commit()
        return True
