"""The handoff store: every lead handed to sales, the rep's verdict, outcomes and SLA state.

SQLAlchemy 2 over SQLite (the embedded default, ``sqlite:///leadscore.db``) or PostgreSQL
(``postgresql+psycopg://...``), the schema kept by Alembic migrations shipped in the package.
"""

from leadscore.serving.store.db import DEFAULT_STORE_URL, StoreError, connect, migrate
from leadscore.serving.store.store import HandoffStore

__all__ = ["DEFAULT_STORE_URL", "HandoffStore", "StoreError", "connect", "migrate"]
