"""The lifecycle of a candidate and the steps of its promotion, with only the legal transitions."""

from __future__ import annotations

from enum import StrEnum

from bot.domain.errors import IllegalTransition


class CandidateState(StrEnum):
    PENDING = "pending"  # waiting for approvals
    BLOCKED = "blocked"  # a gate, the bundle or a freeze window says no; an override may lift it
    APPROVED = "approved"  # approvals complete (or auto-approved); promotion not started yet
    REJECTED = "rejected"
    EXPIRED = "expired"
    PROMOTING = "promoting"
    PROMOTED = "promoted"
    FAILED = "failed"  # a step failed; whatever was cut over has been moved back
    ROLLED_BACK = "rolled_back"


S = CandidateState

#: The states a candidate can be created in: the policy's verdict decides which.
INITIAL_STATES: frozenset[CandidateState] = frozenset({S.PENDING, S.BLOCKED, S.APPROVED})

#: Every legal change of state. The store enforces the same table (see the first migration).
TRANSITIONS: frozenset[tuple[CandidateState, CandidateState]] = frozenset(
    {
        (S.PENDING, S.APPROVED),
        (S.PENDING, S.REJECTED),
        (S.PENDING, S.EXPIRED),
        (S.PENDING, S.BLOCKED),  # re-evaluated on fresh metrics, or a freeze began
        (S.BLOCKED, S.PENDING),  # re-evaluated: the reason went away
        (S.BLOCKED, S.APPROVED),  # an override by the policy's named group
        (S.BLOCKED, S.REJECTED),
        (S.BLOCKED, S.EXPIRED),
        (S.APPROVED, S.PROMOTING),
        (S.APPROVED, S.REJECTED),  # withdrawn before the runner picked it up
        (S.PROMOTING, S.PROMOTED),
        (S.PROMOTING, S.FAILED),
        (S.PROMOTING, S.BLOCKED),  # verify: a gate fails or an artifact is missing; nothing moved
        (S.FAILED, S.PROMOTING),  # retried
        (S.PROMOTED, S.ROLLED_BACK),
    }
)

#: States from which nothing follows.
FINAL_STATES: frozenset[CandidateState] = frozenset(
    state for state in CandidateState if not any(src == state for src, _ in TRANSITIONS)
)

#: States in which a candidate still stands for its version and target: one at a time.
LIVE_STATES: frozenset[CandidateState] = frozenset({S.PENDING, S.BLOCKED, S.APPROVED, S.PROMOTING})

#: States in which people may still vote.
OPEN_STATES: frozenset[CandidateState] = frozenset({S.PENDING, S.BLOCKED})


def is_legal(from_state: CandidateState, to_state: CandidateState) -> bool:
    """Whether the lifecycle allows going from ``from_state`` to ``to_state``."""
    return (from_state, to_state) in TRANSITIONS


def check_transition(from_state: CandidateState, to_state: CandidateState) -> None:
    """Raise ``IllegalTransition`` unless the lifecycle allows the change."""
    if not is_legal(from_state, to_state):
        raise IllegalTransition(from_state.value, to_state.value)


class PromotionStep(StrEnum):
    """PRODUCT.md's steps, in the order the runner performs them."""

    VERIFY = "verify"
    COPY_IMAGES = "copy_images"
    COPY_SNAPSHOTS = "copy_snapshots"
    COPY_MODEL = "copy_model"
    REGISTER_PIPELINE = "register_pipeline"
    CUT_OVER = "cut_over"
    RECORD_LINEAGE = "record_lineage"
    NOTIFY = "notify"


STEP_ORDER: tuple[PromotionStep, ...] = tuple(PromotionStep)


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"  # nothing to do: no images, no snapshots, no pipeline in the bundle
    FAILED = "failed"
    COMPENSATED = "compensated"  # undone after a later step failed


STEP_DONE: frozenset[StepStatus] = frozenset({StepStatus.SUCCEEDED, StepStatus.SKIPPED})


def next_step(statuses: dict[PromotionStep, StepStatus]) -> PromotionStep | None:
    """The first step not yet done, where a restarted runner resumes; None when all are done."""
    for step in STEP_ORDER:
        if statuses.get(step, StepStatus.PENDING) not in STEP_DONE:
            return step
    return None
