"""Fixtures shared by every test: fresh, migrated databases on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bot.store.migrations import upgrade

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
