"""Pins the candidate lifecycle, each transition, and where a restarted promotion resumes."""

from __future__ import annotations

from collections import deque
from itertools import product

import pytest

from bot.domain.errors import IllegalTransition
from bot.domain.promotion import (
    FINAL_STATES,
    INITIAL_STATES,
    OPEN_STATES,
    STEP_ORDER,
    TRANSITIONS,
    CandidateState,
    PromotionStep,
    StepStatus,
    check_transition,
    is_legal,
    next_step,
)

S = CandidateState

# Written out by hand so that any change to TRANSITIONS has to change this table too.
EXPECTED: dict[CandidateState, set[CandidateState]] = {
    S.PENDING: {S.APPROVED, S.REJECTED, S.EXPIRED, S.BLOCKED},
    S.BLOCKED: {S.PENDING, S.APPROVED, S.REJECTED, S.EXPIRED},
    S.APPROVED: {S.PROMOTING, S.REJECTED},
    S.REJECTED: set(),
    S.EXPIRED: set(),
    S.PROMOTING: {S.PROMOTED, S.FAILED, S.BLOCKED},
    S.PROMOTED: {S.ROLLED_BACK},
    S.FAILED: {S.PROMOTING},
    S.ROLLED_BACK: set(),
}

PAIRS = [
    pytest.param(a, b, id=f"{a.value}->{b.value}") for a, b in product(CandidateState, repeat=2)
]


def test_the_states_are_the_ones_the_table_knows() -> None:
    assert set(CandidateState) == set(EXPECTED)
    assert [s.value for s in CandidateState] == [
        "pending",
        "blocked",
        "approved",
        "rejected",
        "expired",
        "promoting",
        "promoted",
        "failed",
        "rolled_back",
    ]


@pytest.mark.parametrize(("from_state", "to_state"), PAIRS)
def test_is_legal(from_state: CandidateState, to_state: CandidateState) -> None:
    assert is_legal(from_state, to_state) is (to_state in EXPECTED[from_state])


@pytest.mark.parametrize(("from_state", "to_state"), PAIRS)
def test_check_transition(from_state: CandidateState, to_state: CandidateState) -> None:
    if to_state in EXPECTED[from_state]:
        check_transition(from_state, to_state)
        return
    with pytest.raises(IllegalTransition) as raised:
        check_transition(from_state, to_state)
    assert str(raised.value) == (
        f"a candidate that is {from_state.value} cannot become {to_state.value}"
    )
    assert (raised.value.from_state, raised.value.to_state) == (from_state.value, to_state.value)


def test_transitions_equal_the_table() -> None:
    assert {(a, b) for a, targets in EXPECTED.items() for b in targets} == TRANSITIONS


def test_no_state_moves_to_itself() -> None:
    assert not any(is_legal(state, state) for state in CandidateState)


def test_final_states() -> None:
    assert {S.REJECTED, S.EXPIRED, S.ROLLED_BACK} == FINAL_STATES


def test_initial_states() -> None:
    assert {S.PENDING, S.BLOCKED, S.APPROVED} == INITIAL_STATES


def test_votes_are_taken_only_in_open_states() -> None:
    assert {S.PENDING, S.BLOCKED} == OPEN_STATES
    assert not OPEN_STATES & FINAL_STATES


def reachable(starts: set[CandidateState]) -> set[CandidateState]:
    seen = set(starts)
    queue = deque(starts)
    while queue:
        state = queue.popleft()
        for target in CandidateState:
            if is_legal(state, target) and target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


@pytest.mark.parametrize("state", [pytest.param(s, id=s.value) for s in CandidateState])
def test_every_state_is_reachable_from_an_initial_state(state: CandidateState) -> None:
    assert state in reachable(set(INITIAL_STATES))


@pytest.mark.parametrize(
    "state", [pytest.param(s, id=s.value) for s in CandidateState if s not in FINAL_STATES]
)
def test_every_open_ended_state_can_still_end(state: CandidateState) -> None:
    assert reachable({state}) & FINAL_STATES


def test_step_order_is_the_products() -> None:
    assert STEP_ORDER == (
        PromotionStep.VERIFY,
        PromotionStep.COPY_IMAGES,
        PromotionStep.COPY_SNAPSHOTS,
        PromotionStep.COPY_MODEL,
        PromotionStep.REGISTER_PIPELINE,
        PromotionStep.CUT_OVER,
        PromotionStep.RECORD_LINEAGE,
        PromotionStep.NOTIFY,
    )
    assert [step.value for step in STEP_ORDER] == [
        "verify",
        "copy_images",
        "copy_snapshots",
        "copy_model",
        "register_pipeline",
        "cut_over",
        "record_lineage",
        "notify",
    ]


OK, SKIP = StepStatus.SUCCEEDED, StepStatus.SKIPPED
P = PromotionStep


def done_until(step: PromotionStep) -> dict[PromotionStep, StepStatus]:
    """Every step before ``step`` succeeded."""
    return {s: OK for s in STEP_ORDER[: STEP_ORDER.index(step)]}


# statuses recorded so far, the step a restarted runner takes next
RESUMES = [
    pytest.param({}, P.VERIFY, id="nothing-recorded"),
    pytest.param({s: StepStatus.PENDING for s in STEP_ORDER}, P.VERIFY, id="all-pending"),
    pytest.param({P.VERIFY: StepStatus.RUNNING}, P.VERIFY, id="crashed-while-verifying"),
    pytest.param(
        {**done_until(P.COPY_MODEL), P.COPY_MODEL: StepStatus.RUNNING},
        P.COPY_MODEL,
        id="crashed-while-copying-model",
    ),
    pytest.param(
        {**done_until(P.COPY_SNAPSHOTS), P.COPY_SNAPSHOTS: StepStatus.FAILED},
        P.COPY_SNAPSHOTS,
        id="after-failed-step",
    ),
    pytest.param(
        {**done_until(P.CUT_OVER), P.CUT_OVER: StepStatus.COMPENSATED},
        P.CUT_OVER,
        id="after-compensated-step",
    ),
    pytest.param(done_until(P.RECORD_LINEAGE), P.RECORD_LINEAGE, id="after-cut-over"),
    pytest.param(
        {P.VERIFY: OK, P.COPY_IMAGES: SKIP, P.COPY_SNAPSHOTS: SKIP},
        P.COPY_MODEL,
        id="skipped-steps-are-done",
    ),
    pytest.param(
        {P.VERIFY: OK, P.COPY_SNAPSHOTS: OK, P.COPY_MODEL: OK},
        P.COPY_IMAGES,
        id="earliest-gap-first",
    ),
    pytest.param(done_until(P.NOTIFY), P.NOTIFY, id="only-notify-left"),
    pytest.param({s: OK for s in STEP_ORDER}, None, id="all-succeeded"),
    pytest.param(
        {**{s: OK for s in STEP_ORDER}, P.COPY_IMAGES: SKIP, P.REGISTER_PIPELINE: SKIP},
        None,
        id="all-succeeded-or-skipped",
    ),
]


@pytest.mark.parametrize(("statuses", "expected"), RESUMES)
def test_next_step(
    statuses: dict[PromotionStep, StepStatus], expected: PromotionStep | None
) -> None:
    assert next_step(statuses) is expected
