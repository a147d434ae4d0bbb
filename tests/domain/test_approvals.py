"""Pins who may vote on a candidate, how votes add up, and who may roll a promotion back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.approvals import (
    Ballot,
    Decision,
    Vote,
    check_vote,
    expires_at,
    is_member,
    may_roll_back,
    tally,
)
from bot.domain.errors import (
    AlreadyVoted,
    CandidateClosed,
    CandidateExpired,
    NotAnApprover,
    SelfApprovalForbidden,
    VoteRefused,
)
from bot.domain.policy import Policy
from bot.domain.promotion import OPEN_STATES, CandidateState


class FakeMembership:
    """Slack user groups as a dict; remembers which groups it was asked about."""

    def __init__(self, groups: Mapping[str, set[str]]) -> None:
        self._groups = {group: frozenset(users) for group, users in groups.items()}
        self.asked: list[str] = []

    def members(self, group_id: str) -> frozenset[str]:
        self.asked.append(group_id)
        return self._groups.get(group_id, frozenset())


NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
LEAD = "U0LEAD001"
SRE = "U0SRE0001"
REQUESTER = "U0REQ0001"
AUTHOR = "U0AUTHOR1"
LEADS_GROUP = "S0MLLEADS"
LEADS_MEMBER = "U0MEMBER1"
OPS_GROUP = "S0MLOPS"
OPS_MEMBER = "U0OPS0001"
OUTSIDER = "U0OUTSIDE"

MEMBERSHIP = FakeMembership({LEADS_GROUP: {LEADS_MEMBER}, OPS_GROUP: {OPS_MEMBER}})

# The requester and the author are approvers too, so only the self-approval rule stops them.
POLICY = Policy(approvals=2, approvers=frozenset({LEAD, SRE, LEADS_GROUP, REQUESTER, AUTHOR}))
SELF_OK = replace(POLICY, self_approval=True)
NOBODY = Policy(approvals=2)

PENDING = Ballot(CandidateState.PENDING, REQUESTER, AUTHOR, NOW + timedelta(hours=1))
BLOCKED = replace(PENDING, state=CandidateState.BLOCKED, override_by=frozenset({OPS_GROUP}))
BLOCKED_FOR_GOOD = replace(BLOCKED, override_by=frozenset())
BLOCKED_SELF_OVERRIDE = replace(BLOCKED, override_by=frozenset({OPS_GROUP, REQUESTER}))
NEVER_EXPIRES = replace(PENDING, expires_at=None)

A, R = Decision.APPROVE, Decision.REJECT

# policy, ballot, earlier votes, voter, decision
ACCEPTED = [
    pytest.param(POLICY, PENDING, [], LEAD, A, id="approver-approves"),
    pytest.param(POLICY, PENDING, [], LEAD, R, id="approver-rejects"),
    pytest.param(POLICY, PENDING, [], LEADS_MEMBER, A, id="group-member-approves"),
    pytest.param(POLICY, PENDING, [Vote(LEAD, A)], SRE, A, id="second-approver"),
    pytest.param(POLICY, PENDING, [], REQUESTER, R, id="requester-rejects-own"),
    pytest.param(POLICY, PENDING, [], AUTHOR, R, id="author-rejects-own"),
    pytest.param(SELF_OK, PENDING, [], REQUESTER, A, id="self-approval-allowed-requester"),
    pytest.param(SELF_OK, PENDING, [], AUTHOR, A, id="self-approval-allowed-author"),
    pytest.param(POLICY, NEVER_EXPIRES, [], LEAD, A, id="no-expiry"),
    pytest.param(POLICY, BLOCKED, [], OPS_MEMBER, A, id="blocked-override-member-approves"),
    pytest.param(POLICY, BLOCKED, [], LEAD, R, id="blocked-approver-rejects"),
    pytest.param(POLICY, BLOCKED_FOR_GOOD, [], LEAD, R, id="blocked-for-good-approver-rejects"),
    pytest.param(
        POLICY, replace(PENDING, requester=None, author=None), [], LEAD, A, id="pipeline-request"
    ),
]


@pytest.mark.parametrize(("policy", "ballot", "votes", "voter", "decision"), ACCEPTED)
def test_vote_accepted(
    policy: Policy, ballot: Ballot, votes: Sequence[Vote], voter: str, decision: Decision
) -> None:
    assert check_vote(policy, ballot, votes, voter, decision, MEMBERSHIP, NOW) is None


def test_a_vote_just_before_expiry_counts() -> None:
    ballot = replace(PENDING, expires_at=NOW + timedelta(microseconds=1))

    assert check_vote(POLICY, ballot, [], LEAD, A, MEMBERSHIP, NOW) is None


# policy, ballot, earlier votes, voter, decision, error, fragments of its message
REFUSED = [
    pytest.param(
        POLICY,
        PENDING,
        [],
        OUTSIDER,
        A,
        NotAnApprover,
        ["only", f"<@{LEAD}>", f"<!subteam^{LEADS_GROUP}>"],
        id="outsider-approves",
    ),
    pytest.param(POLICY, PENDING, [], OUTSIDER, R, NotAnApprover, ["only"], id="outsider-rejects"),
    pytest.param(
        POLICY,
        PENDING,
        [],
        OPS_MEMBER,
        A,
        NotAnApprover,
        ["only"],
        id="override-group-is-not-an-approver-when-pending",
    ),
    pytest.param(
        NOBODY, PENDING, [], LEAD, A, NotAnApprover, ["names no approvers"], id="no-approvers"
    ),
    pytest.param(
        POLICY,
        PENDING,
        [],
        REQUESTER,
        A,
        SelfApprovalForbidden,
        ["requested"],
        id="requester-approves",
    ),
    pytest.param(
        POLICY, PENDING, [], AUTHOR, A, SelfApprovalForbidden, ["built"], id="author-approves"
    ),
    pytest.param(
        POLICY,
        BLOCKED_SELF_OVERRIDE,
        [],
        REQUESTER,
        A,
        SelfApprovalForbidden,
        ["requested"],
        id="requester-overrides-own-block",
    ),
    pytest.param(
        POLICY,
        PENDING,
        [Vote(LEAD, A)],
        LEAD,
        A,
        AlreadyVoted,
        ["already", "approve"],
        id="approves-twice",
    ),
    pytest.param(
        POLICY,
        PENDING,
        [Vote(LEAD, A)],
        LEAD,
        R,
        AlreadyVoted,
        ["already", "approve"],
        id="approves-then-rejects",
    ),
    pytest.param(
        POLICY,
        BLOCKED,
        [Vote(OPS_MEMBER, R)],
        OPS_MEMBER,
        A,
        AlreadyVoted,
        ["already", "reject"],
        id="rejects-then-approves",
    ),
    pytest.param(
        POLICY,
        replace(PENDING, expires_at=NOW),
        [],
        LEAD,
        A,
        CandidateExpired,
        ["expired", "2025-01-15 12:00"],
        id="at-expiry",
    ),
    pytest.param(
        POLICY,
        replace(PENDING, expires_at=NOW - timedelta(days=1)),
        [],
        LEAD,
        R,
        CandidateExpired,
        ["expired", "2025-01-14"],
        id="after-expiry",
    ),
    pytest.param(
        POLICY,
        BLOCKED,
        [],
        LEAD,
        A,
        NotAnApprover,
        ["blocked", f"<!subteam^{OPS_GROUP}>", "override"],
        id="blocked-approver-cannot-override",
    ),
    pytest.param(
        POLICY,
        BLOCKED_FOR_GOOD,
        [],
        OPS_MEMBER,
        A,
        NotAnApprover,
        ["blocked", "no override"],
        id="blocked-with-no-override",
    ),
    pytest.param(
        POLICY, BLOCKED, [], OUTSIDER, R, NotAnApprover, ["only"], id="blocked-outsider-rejects"
    ),
    pytest.param(
        Policy(approvals=1, approvers=frozenset({"S0UNKNOWN"})),
        PENDING,
        [],
        LEAD,
        A,
        NotAnApprover,
        ["only"],
        id="unknown-group-has-no-members",
    ),
    pytest.param(
        POLICY,
        replace(PENDING, state=CandidateState.APPROVED, expires_at=NOW - timedelta(days=1)),
        [],
        LEAD,
        A,
        CandidateClosed,
        ["already approved"],
        id="closed-before-expired",
    ),
]


@pytest.mark.parametrize(
    ("policy", "ballot", "votes", "voter", "decision", "error", "fragments"), REFUSED
)
def test_vote_refused_says_why(
    policy: Policy,
    ballot: Ballot,
    votes: Sequence[Vote],
    voter: str,
    decision: Decision,
    error: type[VoteRefused],
    fragments: list[str],
) -> None:
    with pytest.raises(VoteRefused) as raised:
        check_vote(policy, ballot, votes, voter, decision, MEMBERSHIP, NOW)

    assert type(raised.value) is error
    for fragment in fragments:
        assert fragment in str(raised.value)


CLOSED_MESSAGES = {
    CandidateState.APPROVED: "this candidate is already approved; votes are closed",
    CandidateState.REJECTED: "this candidate was rejected; votes are closed",
    CandidateState.EXPIRED: "this candidate has expired; votes are closed",
    CandidateState.PROMOTING: "this candidate is being promoted; votes are closed",
    CandidateState.PROMOTED: "this candidate was promoted; votes are closed",
    CandidateState.FAILED: "this candidate failed to promote; votes are closed",
    CandidateState.ROLLED_BACK: "this candidate was rolled back; votes are closed",
}


def test_every_closed_state_has_a_message() -> None:
    assert set(CLOSED_MESSAGES) == set(CandidateState) - OPEN_STATES


@pytest.mark.parametrize(
    ("state", "message"), [pytest.param(s, m, id=s.value) for s, m in CLOSED_MESSAGES.items()]
)
@pytest.mark.parametrize("decision", [A, R])
def test_no_vote_on_a_closed_candidate(
    state: CandidateState, message: str, decision: Decision
) -> None:
    ballot = replace(PENDING, state=state)

    with pytest.raises(CandidateClosed) as raised:
        check_vote(POLICY, ballot, [], LEAD, decision, MEMBERSHIP, NOW)

    assert str(raised.value) == message


def test_open_states_are_pending_and_blocked() -> None:
    assert {CandidateState.PENDING, CandidateState.BLOCKED} == OPEN_STATES


# user, allowed, member
MEMBERS = [
    pytest.param(LEAD, {LEAD}, True, id="listed-user"),
    pytest.param(LEADS_MEMBER, {LEADS_GROUP}, True, id="group-member"),
    pytest.param(LEADS_MEMBER, {OPS_GROUP, LEADS_GROUP}, True, id="member-of-second-group"),
    pytest.param(OUTSIDER, {LEAD, LEADS_GROUP}, False, id="outsider"),
    pytest.param(LEADS_GROUP, {LEADS_GROUP}, True, id="the-group-id-itself"),
    pytest.param(LEAD, set(), False, id="nobody-allowed"),
]


@pytest.mark.parametrize(("user", "allowed", "member"), MEMBERS)
def test_is_member(user: str, allowed: set[str], member: bool) -> None:
    assert is_member(user, allowed, MEMBERSHIP) is member


def test_is_member_asks_only_about_user_groups() -> None:
    membership = FakeMembership({LEADS_GROUP: {LEADS_MEMBER}})

    assert not is_member(OUTSIDER, {LEAD, SRE, LEADS_GROUP}, membership)
    assert membership.asked == [LEADS_GROUP]


def approvals_from(*voters: str) -> list[Vote]:
    return [Vote(voter, A) for voter in voters]


@pytest.mark.parametrize("required", [1, 2, 3, 4])
def test_approved_exactly_at_the_required_number(required: int) -> None:
    policy = replace(POLICY, approvals=required)
    voters = [f"U0VOTER{i:02d}" for i in range(required)]

    for count in range(required):
        state = tally(policy, CandidateState.PENDING, approvals_from(*voters[:count])).outcome()
        assert state is None, f"approved after {count} of {required}"
    final = tally(policy, CandidateState.PENDING, approvals_from(*voters))
    assert final.outcome() is CandidateState.APPROVED
    assert final.missing == 0


# required approvals, candidate state, votes, outcome, approvals counted
TALLIES = [
    pytest.param(2, CandidateState.PENDING, [], None, 0, id="no-votes"),
    pytest.param(2, CandidateState.PENDING, approvals_from(LEAD), None, 1, id="one-of-two"),
    pytest.param(
        2,
        CandidateState.PENDING,
        approvals_from(LEAD, SRE),
        CandidateState.APPROVED,
        2,
        id="two-of-two",
    ),
    pytest.param(
        2,
        CandidateState.PENDING,
        approvals_from(LEAD, SRE, LEADS_MEMBER),
        CandidateState.APPROVED,
        3,
        id="more-than-needed",
    ),
    pytest.param(
        2,
        CandidateState.PENDING,
        approvals_from(LEAD, LEAD),
        None,
        1,
        id="duplicate-voter-counted-once",
    ),
    pytest.param(
        2,
        CandidateState.PENDING,
        [Vote(LEAD, R, "latency regressed")],
        CandidateState.REJECTED,
        0,
        id="reject",
    ),
    pytest.param(
        2,
        CandidateState.PENDING,
        [Vote(LEAD, A), Vote(SRE, R)],
        CandidateState.REJECTED,
        1,
        id="approve-then-reject",
    ),
    pytest.param(
        1,
        CandidateState.PENDING,
        [Vote(SRE, R), Vote(LEAD, A)],
        CandidateState.REJECTED,
        1,
        id="reject-wins-over-enough-approvals",
    ),
    pytest.param(
        2,
        CandidateState.BLOCKED,
        approvals_from(OPS_MEMBER),
        CandidateState.APPROVED,
        1,
        id="override-on-blocked",
    ),
    pytest.param(
        2,
        CandidateState.BLOCKED,
        [Vote(LEAD, R)],
        CandidateState.REJECTED,
        0,
        id="reject-on-blocked",
    ),
    pytest.param(2, CandidateState.BLOCKED, [], None, 0, id="blocked-without-votes"),
    pytest.param(0, CandidateState.PENDING, [], CandidateState.APPROVED, 0, id="none-required"),
]


@pytest.mark.parametrize(("required", "state", "votes", "outcome", "counted"), TALLIES)
def test_tally(
    required: int,
    state: CandidateState,
    votes: Sequence[Vote],
    outcome: CandidateState | None,
    counted: int,
) -> None:
    result = tally(replace(POLICY, approvals=required), state, votes)

    assert result.outcome() is outcome
    assert len(result.approvals) == counted
    assert result.missing == max(required - counted, 0)


def test_tally_keeps_the_first_rejection_and_its_reason() -> None:
    votes = [Vote(LEAD, R, "latency regressed"), Vote(SRE, R, "no")]

    result = tally(POLICY, CandidateState.PENDING, votes)

    assert result.rejection == Vote(LEAD, R, "latency regressed")


def test_tally_records_who_overrode_a_block() -> None:
    result = tally(POLICY, CandidateState.BLOCKED, approvals_from(OPS_MEMBER))

    assert result.override == Vote(OPS_MEMBER, A)


def test_approvals_on_a_pending_candidate_are_no_override() -> None:
    result = tally(POLICY, CandidateState.PENDING, approvals_from(LEAD))

    assert result.override is None


ROLLBACK_USERS = Policy(approvers=frozenset({LEAD}), rollback_by=frozenset({SRE}))
ROLLBACK_GROUP = Policy(approvers=frozenset({LEAD}), rollback_by=frozenset({OPS_GROUP}))
APPROVERS_ROLL_BACK = Policy(approvers=frozenset({LEAD, LEADS_GROUP}))

# policy, user, may roll back
ROLLBACKS = [
    pytest.param(ROLLBACK_USERS, SRE, True, id="named-user"),
    pytest.param(ROLLBACK_USERS, LEAD, False, id="approver-when-others-named"),
    pytest.param(ROLLBACK_USERS, OUTSIDER, False, id="outsider-when-users-named"),
    pytest.param(ROLLBACK_GROUP, OPS_MEMBER, True, id="named-group-member"),
    pytest.param(ROLLBACK_GROUP, LEADS_MEMBER, False, id="other-group-member"),
    pytest.param(APPROVERS_ROLL_BACK, LEAD, True, id="fallback-approver"),
    pytest.param(APPROVERS_ROLL_BACK, LEADS_MEMBER, True, id="fallback-approver-group-member"),
    pytest.param(APPROVERS_ROLL_BACK, OUTSIDER, False, id="fallback-outsider"),
    pytest.param(Policy(), LEAD, False, id="nobody-named"),
]


@pytest.mark.parametrize(("policy", "user", "allowed"), ROLLBACKS)
def test_may_roll_back(policy: Policy, user: str, allowed: bool) -> None:
    assert may_roll_back(policy, user, MEMBERSHIP) is allowed


@pytest.mark.parametrize(
    ("expires_after", "expected"),
    [
        pytest.param(None, None, id="never"),
        pytest.param(timedelta(hours=72), datetime(2025, 1, 18, 12, 0, tzinfo=UTC), id="72h"),
        pytest.param(timedelta(minutes=30), datetime(2025, 1, 15, 12, 30, tzinfo=UTC), id="30m"),
    ],
)
def test_expires_at(expires_after: timedelta | None, expected: datetime | None) -> None:
    assert expires_at(Policy(expires_after=expires_after), NOW) == expected
