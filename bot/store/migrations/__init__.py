"""Alembic migrations, run by ``gatekeeper db upgrade`` (and by the tests, on both databases)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    # Passed as an attribute, not an option: ConfigParser would mangle a '%' in a password.
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at ``database_url`` to ``revision``."""
    command.upgrade(alembic_config(database_url), revision)


def is_current(database_url: str) -> bool:
    """Whether the database has every migration applied (and so matches this code)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from bot.store.database import make_engine

    heads = set(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()
    return current == heads


def downgrade(database_url: str, revision: str) -> None:
    """Take the database at ``database_url`` back to ``revision``."""
    command.downgrade(alembic_config(database_url), revision)
