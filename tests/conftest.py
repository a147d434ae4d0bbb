"""Fixtures shared by every test: fresh, migrated databases on SQLite and PostgreSQL, and a
unit of work and candidates over them."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from bot.domain.candidates import Bundle, Candidate
from bot.domain.policy import Verdict, VerdictKind
from bot.store.database import make_engine, make_session_factory
from bot.store.migrations import upgrade
from bot.store.repositories import UnitOfWork

# An MLflow server, started once per session by whichever test asks for it first.
pytest_plugins = ["tests.mlflow_fixtures", "tests.oci_fixtures", "tests.browser"]

POSTGRES_URL = os.environ.get(
    "GATEKEEPER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_admin() -> sa.Engine:
    engine = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        message = (
            f"needs a PostgreSQL server at {make_url(POSTGRES_URL).render_as_string()} "
            "(set GATEKEEPER_TEST_POSTGRES_URL to one); connecting failed: "
            f"{str(error.orig).strip()}"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return engine


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database migrated once; each test gets a copy made by CREATE DATABASE ... TEMPLATE."""
    admin = _postgres_admin()
    name = f"gk_template_{os.getpid()}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    upgrade(make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False))
    yield name
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "gatekeeper.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    template = request.getfixturevalue("postgres_template")
    admin = _postgres_admin()
    name = f"gk_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "gatekeeper.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A freshly migrated database of each kind, private to the test."""
    return str(request.getfixturevalue(f"{request.param}_url"))


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
