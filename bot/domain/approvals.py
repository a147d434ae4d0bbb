"""Who may vote on a candidate, how votes add up, and who may roll a promotion back.

Identity is always a Slack ID from the press itself, never a display name. Group membership is
asked of a ``Membership`` port (Slack user groups in production, a dict in tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from bot.domain.errors import (
    AlreadyVoted,
    CandidateClosed,
    CandidateExpired,
    NotAnApprover,
    SelfApprovalForbidden,
)
from bot.domain.policy import Policy
from bot.domain.promotion import CandidateState

_CLOSED = {
    CandidateState.APPROVED: "is already approved",
    CandidateState.REJECTED: "was rejected",
    CandidateState.EXPIRED: "has expired",
    CandidateState.PROMOTING: "is being promoted",
    CandidateState.PROMOTED: "was promoted",
    CandidateState.FAILED: "failed to promote",
    CandidateState.ROLLED_BACK: "was rolled back",
}


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True)
class Vote:
    voter: str
    decision: Decision
    reason: str = ""
    at: datetime | None = None


class Membership(Protocol):
    def members(self, group_id: str) -> frozenset[str]:
        """The user IDs in a Slack user group (empty when the group is unknown)."""
        ...


def is_user_group(slack_id: str) -> bool:
    return slack_id.startswith("S")


def is_member(user: str, allowed: Iterable[str], membership: Membership) -> bool:
    """Whether ``user`` is one of ``allowed`` or belongs to one of its user groups."""
    allowed = frozenset(allowed)
    if user in allowed:
        return True
    return any(user in membership.members(g) for g in sorted(allowed) if is_user_group(g))


@dataclass(frozen=True)
class Ballot:
    """What a vote is about: the candidate as the voting rules need to see it."""

    state: CandidateState
    requester: str | None
    author: str | None
    expires_at: datetime | None
    #: Who may lift a block (from the verdict); empty when the block cannot be lifted.
    override_by: frozenset[str] = frozenset()


def check_vote(
    policy: Policy,
    ballot: Ballot,
    votes: Sequence[Vote],
    voter: str,
    decision: Decision,
    membership: Membership,
    now: datetime,
) -> None:
    """Refuse a vote that must not count, with a reason for the voter; return if it counts."""
    if ballot.state not in (CandidateState.PENDING, CandidateState.BLOCKED):
        raise CandidateClosed(f"this candidate {_CLOSED[ballot.state]}; votes are closed")
    if ballot.expires_at is not None and now >= ballot.expires_at:
        raise CandidateExpired(f"this candidate expired at {ballot.expires_at:%Y-%m-%d %H:%M %Z}")
    earlier = next((v for v in votes if v.voter == voter), None)
    if earlier is not None:
        raise AlreadyVoted(f"you already voted to {earlier.decision.value} this candidate")

    if ballot.state is CandidateState.BLOCKED and decision is Decision.APPROVE:
        if not ballot.override_by:
            raise NotAnApprover("this candidate is blocked and its policy allows no override")
        if not is_member(voter, ballot.override_by, membership):
            raise NotAnApprover(
                "this candidate is blocked; only "
                + mentions(ballot.override_by)
                + " may override the block"
            )
    elif not is_member(voter, policy.approvers, membership):
        if not policy.approvers:
            raise NotAnApprover("this environment's policy names no approvers")
        raise NotAnApprover(f"only {mentions(policy.approvers)} may vote on this candidate")

    if decision is Decision.APPROVE and not policy.self_approval:
        if voter == ballot.requester:
            raise SelfApprovalForbidden("you requested this promotion, so you cannot approve it")
        if voter == ballot.author:
            raise SelfApprovalForbidden("you built this model, so you cannot approve it")


@dataclass(frozen=True)
class Tally:
    approvals: tuple[str, ...]
    required: int
    rejection: Vote | None = None
    override: Vote | None = None

    @property
    def missing(self) -> int:
        return max(self.required - len(self.approvals), 0)

    def outcome(self) -> CandidateState | None:
        """The state the votes lead to, or None while more are needed."""
        if self.rejection is not None:
            return CandidateState.REJECTED
        if self.override is not None or self.missing == 0:
            return CandidateState.APPROVED
        return None


def tally(policy: Policy, state: CandidateState, votes: Sequence[Vote]) -> Tally:
    """Count votes already accepted by ``check_vote``: one per person, a reject ends it."""
    approvals: list[str] = []
    rejection: Vote | None = None
    override: Vote | None = None
    for vote in votes:
        if vote.decision is Decision.REJECT:
            rejection = rejection or vote
        elif vote.voter not in approvals:
            approvals.append(vote.voter)
            if state is CandidateState.BLOCKED:
                override = override or vote
    return Tally(tuple(approvals), policy.approvals, rejection, override)


def may_roll_back(policy: Policy, user: str, membership: Membership) -> bool:
    """Whether ``user`` may move the champion back; the approvers may when nobody is named."""
    return is_member(user, policy.rollback_by or policy.approvers, membership)


def expires_at(policy: Policy, created_at: datetime) -> datetime | None:
    return None if policy.expires_after is None else created_at + policy.expires_after


def mentions(ids: Iterable[str]) -> str:
    """Slack mentions for users and groups, so the message renders names, not IDs."""
    return ", ".join(f"<!subteam^{i}>" if is_user_group(i) else f"<@{i}>" for i in sorted(ids))
