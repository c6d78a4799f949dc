"""The store's tables (the Alembic migrations create exactly these; a test compares them).

* ``handoffs``: one row per lead handed to sales (or to qualification), with the score, tier,
  criteria verdict, action and reasons *as shown* at the handoff, the lead's body as scored
  then (``lead``: lead, account, contact, events, as_of; empty for rows recorded before
  revision 0002 and for imports), the latest re-score, the SLA deadline and the rep's current
  verdict. At most one *open* handoff per lead (a partial
  unique index): a rejection closes it, and only a later routing opens a new one.
* ``feedback``: every verdict a rep gave (append-only), with its idempotency key.
* ``outcomes``: what became of a lead (SQL, won, lost, with dates), from the API or imports.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from leadscore.serving.store.db import UTCDateTime

_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only
_NAMES = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
ID_LENGTH = 200


class Base(DeclarativeBase):
    """The store's declarative base (one metadata, named constraints)."""

    metadata = MetaData(naming_convention=_NAMES)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Handoff(Base):
    """A lead handed to sales: the score as shown then, the latest one, and the verdict."""

    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    owner: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    source: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    lead_created_at: Mapped[datetime | None]
    handed_off_at: Mapped[datetime] = mapped_column(index=True)
    recorded_at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(40))
    tier: Mapped[str] = mapped_column(String(8))
    probability: Mapped[float] = mapped_column(Float)
    model_name: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    model_version: Mapped[str | None] = mapped_column(String(40))
    criteria_version: Mapped[str | None] = mapped_column(String(80))
    criteria_verdict: Mapped[str | None] = mapped_column(String(40))
    shown: Mapped[dict[str, Any]]
    lead: Mapped[dict[str, Any] | None]
    due_at: Mapped[datetime | None]
    sla_version: Mapped[str | None] = mapped_column(String(80))
    latest_scored_at: Mapped[datetime]
    latest_probability: Mapped[float] = mapped_column(Float)
    latest_tier: Mapped[str] = mapped_column(String(8))
    latest_action: Mapped[str] = mapped_column(String(40))
    latest_model_version: Mapped[str | None] = mapped_column(String(40))
    latest_criteria_version: Mapped[str | None] = mapped_column(String(80))
    latest_criteria_verdict: Mapped[str | None] = mapped_column(String(40))
    score_count: Mapped[int] = mapped_column(Integer, default=1)
    closed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    first_touch_at: Mapped[datetime | None]
    disposition: Mapped[str | None] = mapped_column(String(20))
    disposition_reason: Mapped[str | None] = mapped_column(String(80))
    dispositioned_at: Mapped[datetime | None]
    rep: Mapped[str | None] = mapped_column(String(ID_LENGTH))

    __table_args__ = (
        Index(
            "uq_handoffs_open_lead", "lead_id", unique=True,
            sqlite_where=text("closed = 0"), postgresql_where=text("closed = false"),
        ),
    )  # fmt: skip


class Feedback(Base):
    """One verdict of a rep on a handoff (append-only)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    handoff_id: Mapped[int] = mapped_column(_ID, ForeignKey("handoffs.id"), index=True)
    lead_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    disposition: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(80))
    note: Mapped[str | None] = mapped_column(Text)
    rep: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    first_touch_at: Mapped[datetime | None]
    decided_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    idempotency_key: Mapped[str | None] = mapped_column(String(ID_LENGTH), unique=True)
    request_digest: Mapped[str | None] = mapped_column(String(64))


class Outcome(Base):
    """What became of a lead: dates of SQL, won, lost (any may be empty)."""

    __tablename__ = "outcomes"

    lead_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    sql_at: Mapped[datetime | None]
    won_at: Mapped[datetime | None]
    lost_at: Mapped[datetime | None]
    origin: Mapped[str] = mapped_column(String(ID_LENGTH))
    updated_at: Mapped[datetime]
