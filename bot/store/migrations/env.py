"""Alembic's entry point: migrates the database whose URL ``alembic_config`` was given."""

from __future__ import annotations

from alembic import context

from bot.store.database import make_engine
from bot.store.models import Base

config = context.config
url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
if not url:
    raise SystemExit("no database URL: run `gatekeeper db upgrade` (it reads DATABASE_URL)")

engine = make_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
