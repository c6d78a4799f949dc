"""Alembic's environment: run the migrations on the engine `migrate()` hands over."""

from __future__ import annotations

from alembic import context

from leadscore.serving.store.tables import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE on SQLite
    )
    context.run_migrations()
