"""The lead's body as scored at the handoff (the reps' lead card shows it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``handoffs.lead`` (JSON, empty for the rows recorded before)."""
    op.add_column("handoffs", sa.Column("lead", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop ``handoffs.lead`` (SQLite 3.35+ drops a column in place, keeping the table's
    partial index that a batch rebuild could lose)."""
    op.drop_column("handoffs", "lead")
