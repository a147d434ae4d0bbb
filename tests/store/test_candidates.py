"""Candidates keep to the lifecycle in the database itself, not only in the code that calls it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from bot.domain.errors import IllegalTransition
from bot.domain.policy import VerdictKind
from bot.domain.promotion import TRANSITIONS, CandidateState
from bot.store.repositories import CandidateExists, UnitOfWork
from tests.conftest import NOW

S = CandidateState


def _state(engine: Engine, candidate_id: int) -> str:
    with engine.connect() as connection:
        return str(
            connection.scalar(
                sa.text("SELECT state FROM candidates WHERE id = :id"), {"id": candidate_id}
            )
        )


@pytest.mark.parametrize(
    ("kind", "state"),
    [
        (VerdictKind.NEEDS_APPROVAL, S.PENDING),
        (VerdictKind.BLOCKED, S.BLOCKED),
        (VerdictKind.AUTO_APPROVE, S.APPROVED),
    ],
)
def test_a_candidate_starts_in_the_state_its_verdict_gives(
    new_candidate: Callable[..., int],
    uow: Callable[[], UnitOfWork],
    kind: VerdictKind,
    state: CandidateState,
) -> None:
    candidate_id = new_candidate(kind=kind)
    with uow() as unit:
        row = unit.candidates.get(candidate_id)
        assert row.state == state
        assert row.verdict["kind"] == kind.value
        assert [(t.from_state, t.to_state) for t in unit.candidates.transitions(candidate_id)] == [
            (None, state.value)
        ]


def test_every_legal_transition_is_stored(
    new_candidate: Callable[..., int], uow: Callable[[], UnitOfWork]
) -> None:
    """Walk pending → approved → promoting → failed → promoting → promoted → rolled_back."""
    path = [S.APPROVED, S.PROMOTING, S.FAILED, S.PROMOTING, S.PROMOTED, S.ROLLED_BACK]
    candidate_id = new_candidate()
    for step, to_state in enumerate(path):
        with uow() as unit:
            row = unit.candidates.get(candidate_id, for_update=True)
            unit.candidates.transition(
                row, to_state, actor="U0SRE0001", now=NOW + timedelta(minutes=step)
            )
            unit.commit()
    with uow() as unit:
        history = [t.to_state for t in unit.candidates.transitions(candidate_id)]
    assert history == ["pending", *path]


def test_an_illegal_transition_is_refused_by_the_repository(
    new_candidate: Callable[..., int], uow: Callable[[], UnitOfWork], engine: Engine
) -> None:
    candidate_id = new_candidate()
    with uow() as unit:
        row = unit.candidates.get(candidate_id)
        with pytest.raises(IllegalTransition, match="pending cannot become promoted"):
            unit.candidates.transition(row, S.PROMOTED, actor="U0SRE0001", now=NOW)
    assert _state(engine, candidate_id) == "pending"


ILLEGAL = sorted(
    (a, b) for a in CandidateState for b in CandidateState if a != b and (a, b) not in TRANSITIONS
)


def test_every_illegal_transition_is_refused_by_the_database(
    new_candidate: Callable[..., int], engine: Engine
) -> None:
    """Raw SQL, as a careless script would write it: the database's trigger refuses each one."""
    for n, (from_state, to_state) in enumerate(ILLEGAL):
        candidate_id = new_candidate(version=f"illegal-{n}")
        _force_state(engine, candidate_id, from_state)
        with (
            pytest.raises(sa.exc.DatabaseError, match="illegal candidate transition"),
            engine.begin() as connection,
        ):
            connection.execute(
                sa.text("UPDATE candidates SET state = :s WHERE id = :id"),
                {"s": to_state.value, "id": candidate_id},
            )
        assert _state(engine, candidate_id) == from_state.value, (from_state, to_state)
    assert len(ILLEGAL) == 81 - 9 - len(TRANSITIONS)


def test_a_candidate_cannot_be_inserted_already_promoted(engine: Engine) -> None:
    with pytest.raises(sa.exc.DatabaseError, match="cannot start"), engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO candidates (model, version, source_env, target_env, state, "
                "bundle, metrics, verdict, created_at, updated_at) VALUES "
                "('m', '1', 'dev', 'staging', 'promoted', '{}', '{}', '{}', :now, :now)"
            ),
            {"now": NOW},
        )
    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT count(*) FROM candidates")) == 0


def test_a_stale_copy_cannot_move_a_candidate_someone_else_moved(
    new_candidate: Callable[..., int], uow: Callable[[], UnitOfWork], engine: Engine
) -> None:
    candidate_id = new_candidate()
    with uow() as first:
        stale = first.candidates.get(candidate_id)
    with uow() as second:
        fresh = second.candidates.get(candidate_id)
        second.candidates.transition(fresh, S.REJECTED, actor="U0SRE0001", now=NOW)
        second.commit()
    assert stale.state == "pending"  # the stale copy still says pending; the database does not
    with uow() as third, pytest.raises(IllegalTransition, match="rejected cannot become approved"):
        third.candidates.transition(stale, S.APPROVED, actor="U0LEAD001", now=NOW)
    assert _state(engine, candidate_id) == "rejected"


def test_one_live_candidate_per_version_and_target(
    new_candidate: Callable[..., int], uow: Callable[[], UnitOfWork]
) -> None:
    first = new_candidate(version="7")
    with pytest.raises(CandidateExists, match="already a candidate for production"):
        new_candidate(version="7")
    new_candidate(version="7", target_env="staging")  # another target is another candidate
    with uow() as unit:
        unit.candidates.transition(
            unit.candidates.get(first), S.REJECTED, actor="U0SRE0001", now=NOW
        )
        unit.commit()
    assert new_candidate(version="7") != first  # proposed again once the first was rejected


def _force_state(engine: Engine, candidate_id: int, state: CandidateState) -> None:
    """Reach ``state`` along legal transitions, the only way the database allows."""
    route = {
        S.PENDING: [],
        S.BLOCKED: [S.BLOCKED],
        S.APPROVED: [S.APPROVED],
        S.REJECTED: [S.REJECTED],
        S.EXPIRED: [S.EXPIRED],
        S.PROMOTING: [S.APPROVED, S.PROMOTING],
        S.PROMOTED: [S.APPROVED, S.PROMOTING, S.PROMOTED],
        S.FAILED: [S.APPROVED, S.PROMOTING, S.FAILED],
        S.ROLLED_BACK: [S.APPROVED, S.PROMOTING, S.PROMOTED, S.ROLLED_BACK],
    }[state]
    with engine.begin() as connection:
        for step in route:
            connection.execute(
                sa.text("UPDATE candidates SET state = :s WHERE id = :id"),
                {"s": step.value, "id": candidate_id},
            )
