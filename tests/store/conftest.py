"""Store fixtures: a unit-of-work factory over the test's database and a candidate maker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from bot.domain.candidates import Bundle, Candidate
from bot.domain.policy import Verdict, VerdictKind
from bot.store.database import make_engine, make_session_factory
from bot.store.repositories import UnitOfWork

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def uow(engine: Engine) -> Callable[[], UnitOfWork]:
    factory = make_session_factory(engine)
    return lambda: UnitOfWork(factory)


@pytest.fixture
def new_candidate(uow: Callable[[], UnitOfWork]) -> Callable[..., int]:
    """Store a candidate for churn-classifier and return its id."""

    def make(
        version: str = "7",
        kind: VerdictKind = VerdictKind.NEEDS_APPROVAL,
        requester: str | None = "U0REQUEST",
        override_by: frozenset[str] = frozenset(),
        target_env: str = "production",
    ) -> int:
        candidate = Candidate(
            model="churn-classifier",
            version=version,
            source_env="staging",
            target_env=target_env,
            metrics={"accuracy": 0.93},
            bundle=Bundle(),
            requester=requester,
        )
        verdict = Verdict(kind, (f"test verdict {kind.value}",), override_by=override_by)
        with uow() as unit:
            row = unit.candidates.add(candidate, verdict, actor="U0REQUEST", now=NOW)
            unit.commit()
            return row.id

    return make
