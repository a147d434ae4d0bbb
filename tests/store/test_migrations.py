"""The migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot.domain.promotion import TRANSITIONS, CandidateState
from bot.store.database import make_engine
from bot.store.migrations import downgrade, upgrade
from bot.store.models import Base

TABLES = {
    "alembic_version", "audit_log", "candidate_transitions", "candidates", "champion_history",
    "legal_transitions", "outbox", "promotion_steps", "promotions", "slack_messages", "votes",
    "webhook_deliveries", "intake_offers", "scheduler_jobs", "scheduler_lease",
}  # fmt: skip


def gatekeeper(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """Run the installed console command as an operator would."""
    command = Path(sys.executable).with_name("gatekeeper")
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [str(command), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no tables at all."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    url: str = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return url


def test_db_upgrade_command_creates_every_table_and_is_repeatable(empty_database: str) -> None:
    first = gatekeeper("db", "upgrade", database_url=empty_database)
    assert first.returncode == 0, first.stderr
    assert "is at head" in first.stdout
    second = gatekeeper("db", "upgrade", database_url=empty_database)
    assert second.returncode == 0, second.stderr

    engine = make_engine(empty_database)
    assert set(sa.inspect(engine).get_table_names()) == TABLES
    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0002"
    engine.dispose()


def test_db_upgrade_hides_the_password_it_was_given(tmp_path: Path) -> None:
    result = gatekeeper(
        "db", "upgrade", database_url="postgresql+psycopg://gk:s3cr3t@127.0.0.1:1/none"
    )
    assert result.returncode == 1
    assert "cannot reach postgresql+psycopg://gk:***@127.0.0.1:1/none" in result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_models_match_the_migrations(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_downgrade_to_nothing_and_back(database_url: str) -> None:
    downgrade(database_url, "base")
    engine = make_engine(database_url)
    assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()
    upgrade(database_url)
    engine = make_engine(database_url)
    assert set(sa.inspect(engine).get_table_names()) == TABLES
    engine.dispose()


def test_the_database_knows_the_same_lifecycle_as_the_domain(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT from_state, to_state FROM legal_transitions"))
        stored = {(CandidateState(a), CandidateState(b)) for a, b in rows}
    engine.dispose()
    assert stored == TRANSITIONS
