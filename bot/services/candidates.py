"""Proposing a candidate and reading candidates back: what the card, /promote and Home ask for."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.domain.approvals import expires_at
from bot.domain.candidates import Candidate
from bot.domain.policy import Policy, evaluate
from bot.domain.promotion import LIVE_STATES, OPEN_STATES, CandidateState
from bot.services.notify import Notifier
from bot.services.views import CandidateSummary, summarize
from bot.store.models import CandidateRow
from bot.store.repositories import UnitOfWork


@dataclass(frozen=True)
class Champion:
    version: str
    metrics: dict[str, float]


def propose(
    unit_of_work: Callable[[], UnitOfWork],
    policy_for: Callable[[str], Policy],
    notifier: Notifier,
    candidate: Candidate,
    champion: Champion | None,
    *,
    actor: str,
    now: datetime,
    on_stored: Callable[[UnitOfWork, CandidateRow], None] | None = None,
) -> int:
    """Judge a candidate, store it in the state its verdict gives, and queue its card.

    ``on_stored`` writes what must be kept with the candidate or not at all; whatever it raises
    leaves nothing stored.
    """
    policy = policy_for(candidate.target_env)
    verdict = evaluate(policy, candidate, champion.metrics if champion else None, now)
    with unit_of_work() as uow:
        row = uow.candidates.add(
            candidate,
            verdict,
            actor=actor,
            now=now,
            champion_version=champion.version if champion else None,
            champion_metrics=champion.metrics if champion else None,
            expires_at=expires_at(policy, now),
        )
        uow.audit.append(
            actor,
            "candidate.proposed",
            f"candidate:{row.id}",
            {"model": row.model, "version": row.version, "target": row.target_env,
             "verdict": verdict.kind.value, "reasons": list(verdict.reasons)},
            at=now,
        )  # fmt: skip
        notifier.card_changed(uow, row.id, now)
        if on_stored is not None:
            on_stored(uow, row)
        uow.commit()
        return row.id


def summary(
    unit_of_work: Callable[[], UnitOfWork], policy_for: Callable[[str], Policy], candidate_id: int
) -> CandidateSummary:
    """One candidate as its card shows it."""
    with unit_of_work().reading() as uow:
        row = uow.candidates.get(candidate_id)
        return summarize(row, uow.votes.for_candidate(row.id), policy_for(row.target_env))


def summaries(
    unit_of_work: Callable[[], UnitOfWork],
    policy_for: Callable[[str], Policy],
    states: frozenset[CandidateState] = LIVE_STATES,
    model: str | None = None,
) -> Sequence[CandidateSummary]:
    """Candidates in the given states (live ones by default), oldest first."""
    with unit_of_work().reading() as uow:
        rows = [r for r in uow.candidates.in_states(states) if model in (None, r.model)]
        return [summarize(r, uow.votes.for_candidate(r.id), policy_for(r.target_env)) for r in rows]


def waiting_for(
    unit_of_work: Callable[[], UnitOfWork],
    policy_for: Callable[[str], Policy],
    may_vote: Callable[[CandidateSummary], bool],
) -> Sequence[CandidateSummary]:
    """Open candidates this person may vote on and has not voted on yet."""
    return [s for s in summaries(unit_of_work, policy_for, OPEN_STATES) if may_vote(s)]
