"""The handoff loop: handoffs, feedback, outcomes.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from leadscore.serving.store.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the three tables and their indexes."""
    op.create_table(
        "handoffs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("lead_id", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("source", sa.String(200)),
        sa.Column("lead_created_at", UTCDateTime()),
        sa.Column("handed_off_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("tier", sa.String(8), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("model_name", sa.String(200)),
        sa.Column("model_version", sa.String(40)),
        sa.Column("criteria_version", sa.String(80)),
        sa.Column("criteria_verdict", sa.String(40)),
        sa.Column("shown", sa.JSON(), nullable=False),
        sa.Column("due_at", UTCDateTime()),
        sa.Column("sla_version", sa.String(80)),
        sa.Column("latest_scored_at", UTCDateTime(), nullable=False),
        sa.Column("latest_probability", sa.Float(), nullable=False),
        sa.Column("latest_tier", sa.String(8), nullable=False),
        sa.Column("latest_action", sa.String(40), nullable=False),
        sa.Column("latest_model_version", sa.String(40)),
        sa.Column("latest_criteria_version", sa.String(80)),
        sa.Column("latest_criteria_verdict", sa.String(40)),
        sa.Column("score_count", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("first_touch_at", UTCDateTime()),
        sa.Column("disposition", sa.String(20)),
        sa.Column("disposition_reason", sa.String(80)),
        sa.Column("dispositioned_at", UTCDateTime()),
        sa.Column("rep", sa.String(200)),
        sa.PrimaryKeyConstraint("id", name="pk_handoffs"),
    )
    op.create_index("ix_handoffs_lead_id", "handoffs", ["lead_id"])
    op.create_index("ix_handoffs_owner", "handoffs", ["owner"])
    op.create_index("ix_handoffs_handed_off_at", "handoffs", ["handed_off_at"])
    op.create_index(
        "uq_handoffs_open_lead", "handoffs", ["lead_id"], unique=True,
        sqlite_where=sa.text("closed = 0"), postgresql_where=sa.text("closed = false"),
    )  # fmt: skip
    op.create_table(
        "feedback",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("handoff_id", _ID, nullable=False),
        sa.Column("lead_id", sa.String(200), nullable=False),
        sa.Column("disposition", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(80)),
        sa.Column("note", sa.Text()),
        sa.Column("rep", sa.String(200)),
        sa.Column("first_touch_at", UTCDateTime()),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("request_digest", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.ForeignKeyConstraint(
            ["handoff_id"], ["handoffs.id"], name="fk_feedback_handoff_id_handoffs"
        ),
        sa.UniqueConstraint("idempotency_key", name="uq_feedback_idempotency_key"),
    )
    op.create_index("ix_feedback_handoff_id", "feedback", ["handoff_id"])
    op.create_index("ix_feedback_lead_id", "feedback", ["lead_id"])
    op.create_table(
        "outcomes",
        sa.Column("lead_id", sa.String(200), nullable=False),
        sa.Column("sql_at", UTCDateTime()),
        sa.Column("won_at", UTCDateTime()),
        sa.Column("lost_at", UTCDateTime()),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", name="pk_outcomes"),
    )


def downgrade() -> None:
    """Drop the three tables."""
    op.drop_table("outcomes")
    op.drop_table("feedback")
    op.drop_table("handoffs")
