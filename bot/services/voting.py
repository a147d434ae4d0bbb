"""Approve and reject: one vote per person, counted under a lock, audited either way."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.domain.approvals import (
    Ballot,
    Decision,
    Membership,
    Tally,
    Vote,
    check_vote,
    is_user_group,
    tally,
)
from bot.domain.errors import VoteRefused
from bot.domain.policy import Policy
from bot.domain.promotion import CandidateState
from bot.services.notify import Notifier
from bot.store.repositories import UnitOfWork


@dataclass(frozen=True)
class VoteCast:
    candidate_id: int
    state: CandidateState
    tally: Tally
    #: True when this vote decided the candidate (approved or rejected it).
    decided: bool


class KnownMembership:
    """The voter's groups, resolved before the transaction so no lock waits on Slack."""

    def __init__(self, voter: str, groups: frozenset[str]) -> None:
        self._voter, self._groups = voter, groups

    def members(self, group_id: str) -> frozenset[str]:
        return frozenset({self._voter}) if group_id in self._groups else frozenset()


def resolve_membership(voter: str, ids: Iterable[str], membership: Membership) -> KnownMembership:
    groups = frozenset(g for g in ids if is_user_group(g) and voter in membership.members(g))
    return KnownMembership(voter, groups)


def cast_vote(
    unit_of_work: Callable[[], UnitOfWork],
    policy_for: Callable[[str], Policy],
    membership: Membership,
    candidate_id: int,
    voter: str,
    decision: Decision,
    now: datetime,
    reason: str = "",
    notifier: Notifier | None = None,
    tell: Callable[[UnitOfWork, str], None] | None = None,
) -> VoteCast:
    """Count ``voter``'s vote on a candidate, or raise ``VoteRefused`` saying why (and audit it).

    ``tell`` queues the refusal for the voter in the same transaction as its audit row.
    """
    subject = f"candidate:{candidate_id}"
    with unit_of_work().reading() as uow:
        target_env, override_by = uow.candidates.approvers_of(candidate_id)
    policy = policy_for(target_env)
    known = resolve_membership(voter, policy.approvers | override_by, membership)

    with unit_of_work() as uow:
        row = uow.candidates.get(candidate_id, for_update=True)
        state = CandidateState(row.state)
        ballot = Ballot(state, row.requester, row.author, row.expires_at, override_by)
        votes = uow.votes.for_candidate(candidate_id)
        try:
            check_vote(policy, ballot, votes, voter, decision, known, now)
            vote = Vote(voter, decision, reason, now)
            uow.votes.add(candidate_id, vote, now)
        except VoteRefused as refused:
            # Nothing was written (a vote the database refused went with its savepoint): the
            # refusal's audit row joins the same transaction.
            uow.audit.append(
                voter,
                "vote.refused",
                subject,
                {"decision": decision.value, "why": str(refused), "state": state.value},
                at=now,
            )
            if tell is not None:
                tell(uow, str(refused))
                refused.told = True
            uow.commit()
            raise
        uow.audit.append(voter, f"vote.{decision.value}", subject, {"reason": reason}, at=now)
        counted = tally(policy, state, [*votes, vote])
        outcome = counted.outcome()
        if outcome is not None:
            why = reason if outcome is CandidateState.REJECTED else _approved_by(counted)
            uow.candidates.transition(row, outcome, actor=voter, now=now, reason=why)
            uow.audit.append(
                voter,
                f"candidate.{outcome.value}",
                subject,
                {"from": state.value, "reason": why},
                at=now,
            )
        if notifier is not None:
            notifier.card_changed(uow, candidate_id, now)
            if outcome is not None:
                notifier.in_thread(uow, candidate_id, _decided_line(outcome, counted, reason), now)
        uow.commit()
        return VoteCast(candidate_id, CandidateState(row.state), counted, outcome is not None)


def _decided_line(outcome: CandidateState, counted: Tally, reason: str) -> str:
    if outcome is CandidateState.REJECTED:
        assert counted.rejection is not None
        return f":no_entry: Rejected by <@{counted.rejection.voter}>: {reason or 'no reason given'}"
    if counted.override is not None:
        return f":warning: Block overridden by <@{counted.override.voter}>"
    return ":white_check_mark: Approved by " + ", ".join(f"<@{v}>" for v in counted.approvals)


def _approved_by(counted: Tally) -> str:
    if counted.override is not None:
        return f"block overridden by {counted.override.voter}"
    return "approved by " + ", ".join(counted.approvals)
