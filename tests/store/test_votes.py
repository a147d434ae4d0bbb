"""Votes: one per person, counted under a lock, so concurrent presses decide a candidate once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from bot.domain.approvals import Decision
from bot.domain.errors import AlreadyVoted, CandidateClosed, NotAnApprover, SelfApprovalForbidden
from bot.domain.policy import Policy, VerdictKind
from bot.domain.promotion import CandidateState
from bot.services.voting import VoteCast, cast_vote
from bot.store.audit import verify_chain
from bot.store.repositories import UnitOfWork
from tests.conftest import NOW

APPROVERS = ("U0LEAD001", "U0LEAD002", "U0LEAD003", "U0LEAD004", "U0LEAD005")


class GroupDirectory:
    """A fake of Slack's user groups: a dict, asked the way the real port is."""

    def __init__(self, groups: dict[str, set[str]]) -> None:
        self.groups = groups

    def members(self, group_id: str) -> frozenset[str]:
        return frozenset(self.groups.get(group_id, ()))


def five_of_five(_: str) -> Policy:
    return Policy(approvals=5, approvers=frozenset(APPROVERS))


def test_fifty_presses_by_five_people_leave_five_votes_and_one_approval(
    new_candidate: Callable[..., int], uow: Callable[[], UnitOfWork], engine: Engine
) -> None:
    candidate_id = new_candidate()
    start = threading.Barrier(50)

    def press(i: int) -> VoteCast | Exception:
        start.wait()
        try:
            return cast_vote(
                uow, five_of_five, GroupDirectory({}), candidate_id,
                APPROVERS[i % 5], Decision.APPROVE, NOW + timedelta(seconds=i),
            )  # fmt: skip
        except (AlreadyVoted, CandidateClosed) as refused:
            return refused

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(press, range(50)))

    counted = [o for o in outcomes if isinstance(o, VoteCast)]
    assert len(counted) == 5
    assert sum(o.decided for o in counted) == 1
    assert all(isinstance(o, AlreadyVoted | CandidateClosed) for o in outcomes if o not in counted)

    with engine.connect() as connection:
        votes = connection.execute(
            sa.text("SELECT voter FROM votes WHERE candidate_id = :id"), {"id": candidate_id}
        ).scalars()
        assert sorted(votes) == sorted(APPROVERS)
        approvals = connection.scalar(
            sa.text(
                "SELECT count(*) FROM candidate_transitions "
                "WHERE candidate_id = :id AND to_state = 'approved'"
            ),
            {"id": candidate_id},
        )
        assert approvals == 1
        actions = Counter(connection.execute(sa.text("SELECT action FROM audit_log")).scalars())
    assert actions == {"vote.approve": 5, "candidate.approved": 1, "vote.refused": 45}
    assert verify_chain(engine).intact


def test_the_database_refuses_a_second_vote_from_the_same_person(
    new_candidate: Callable[..., int], engine: Engine
) -> None:
    candidate_id = new_candidate()
    insert = sa.text(
        "INSERT INTO votes (candidate_id, voter, decision, at) VALUES (:c, 'U0LEAD001', :d, :at)"
    )
    with engine.begin() as connection:
        connection.execute(insert, {"c": candidate_id, "d": "approve", "at": NOW})
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(insert, {"c": candidate_id, "d": "reject", "at": NOW})


def test_a_refused_vote_changes_nothing_but_the_audit_log(
    new_candidate: Callable[..., int], uow: Callable[[], UnitOfWork], engine: Engine
) -> None:
    candidate_id = new_candidate(requester="U0LEAD001")
    with pytest.raises(SelfApprovalForbidden, match="you requested this promotion"):
        cast_vote(
            uow, five_of_five, GroupDirectory({}), candidate_id, "U0LEAD001", Decision.APPROVE, NOW
        )
    with pytest.raises(NotAnApprover, match="may vote"):
        cast_vote(
            uow, five_of_five, GroupDirectory({}), candidate_id, "U0OUTSIDE", Decision.APPROVE, NOW
        )
    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT count(*) FROM votes")) == 0
        rows = connection.execute(sa.text("SELECT actor, action FROM audit_log ORDER BY seq"))
        assert [tuple(r) for r in rows] == [
            ("U0LEAD001", "vote.refused"),
            ("U0OUTSIDE", "vote.refused"),
        ]
    with uow() as unit:
        assert unit.candidates.get(candidate_id).state == CandidateState.PENDING


def test_a_member_of_an_approver_group_votes_and_a_reject_ends_it(
    new_candidate: Callable[..., int], uow: Callable[[], UnitOfWork]
) -> None:
    candidate_id = new_candidate()
    groups = GroupDirectory({"S0MLLEADS": {"U0ANA0001"}})

    def policy(_: str) -> Policy:
        return Policy(approvals=2, approvers=frozenset({"S0MLLEADS", "U0SRE0001"}))

    first = cast_vote(uow, policy, groups, candidate_id, "U0ANA0001", Decision.APPROVE, NOW)
    assert (first.state, first.decided, first.tally.missing) == (CandidateState.PENDING, False, 1)
    last = cast_vote(
        uow, policy, groups, candidate_id, "U0SRE0001", Decision.REJECT, NOW, "latency regressed"
    )
    assert (last.state, last.decided) == (CandidateState.REJECTED, True)
    with uow() as unit:
        assert unit.candidates.get(candidate_id).reason == "latency regressed"


def test_an_override_lifts_a_block_only_for_the_named_group(
    new_candidate: Callable[..., int], uow: Callable[[], UnitOfWork]
) -> None:
    candidate_id = new_candidate(kind=VerdictKind.BLOCKED, override_by=frozenset({"S0MLOPS"}))
    groups = GroupDirectory({"S0MLOPS": {"U0OPS0001"}})

    def policy(_: str) -> Policy:
        return Policy(approvals=2, approvers=frozenset({"U0SRE0001"}))

    with pytest.raises(NotAnApprover, match="override"):
        cast_vote(uow, policy, groups, candidate_id, "U0SRE0001", Decision.APPROVE, NOW)
    lifted = cast_vote(uow, policy, groups, candidate_id, "U0OPS0001", Decision.APPROVE, NOW)
    assert (lifted.state, lifted.decided) == (CandidateState.APPROVED, True)
    with uow() as unit:
        assert unit.candidates.get(candidate_id).reason == "block overridden by U0OPS0001"
