"""Alembic's environment: run the migrations on the engine `migrate()` hands over.

Several workers may start at once and each migrates: on PostgreSQL a transaction-scoped
advisory lock makes them take turns (the later ones then find the schema at head); on SQLite
``BEGIN IMMEDIATE`` (see ``db.py``) already does.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from leadscore.serving.store.tables import Base

_MIGRATION_LOCK = 7_245_001  # any constant shared by every leadscore process

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE on SQLite
    )
    context.run_migrations()
