"""Request and response bodies of the handoff loop: feedback, outcomes, the queue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NOTE_LENGTH = 4000
NAME_LENGTH = 200


def _utc(value: datetime | None) -> datetime | None:
    """Naive datetimes are UTC (as everywhere in the data contract)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class FeedbackIn(BaseModel):
    """A rep's verdict on a lead handed to sales."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [
            {"disposition": "accepted", "rep": "rep_07",
             "first_touch_at": "2026-03-02T15:10:00Z"},
            {"disposition": "rejected", "reason": "no_budget", "rep": "rep_07",
             "note": "Budget frozen until Q3", "first_touch_at": "2026-03-02T15:10:00Z"},
        ]},
    )  # fmt: skip

    disposition: Literal["accepted", "rejected"] = Field(
        description="accepted: sales takes the lead; rejected: it goes back to marketing."
    )
    reason: str | None = Field(
        None, max_length=80,
        description="Required when rejected: a reason id of the taxonomy (`handoff.yaml`).",
    )  # fmt: skip
    note: str | None = Field(None, max_length=NOTE_LENGTH, description="Free text.")
    rep: str | None = Field(None, max_length=NAME_LENGTH, description="Who answered.")
    first_touch_at: datetime | None = Field(
        None, description="When the rep first reached out (default: the verdict's moment)."
    )
    decided_at: datetime | None = Field(
        None, description="When the rep decided (default: now; set it when importing)."
    )

    _as_utc = field_validator("first_touch_at", "decided_at")(_utc)

    @model_validator(mode="after")
    def _consistent(self) -> FeedbackIn:
        if self.disposition == "rejected" and not self.reason:
            raise ValueError("a rejection needs a reason (one of the taxonomy's ids)")
        if self.disposition == "accepted" and self.reason:
            raise ValueError("reason is for rejections; say why in `note` instead")
        touched, decided = self.first_touch_at, self.decided_at
        if touched is not None and decided is not None and touched > decided:
            raise ValueError("first_touch_at is after decided_at")
        return self


class FeedbackOut(BaseModel):
    """A stored verdict."""

    id: int
    handoff_id: int
    lead_id: str
    disposition: Literal["accepted", "rejected"]
    reason: str | None
    note: str | None
    rep: str | None
    first_touch_at: datetime | None
    decided_at: datetime
    recorded_at: datetime = Field(description="When the store committed it.")


class OutcomeIn(BaseModel):
    """What became of a lead (give at least one date)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"sql_at": "2026-03-10T00:00:00Z",
                                         "won_at": "2026-05-02T00:00:00Z"}]},
    )  # fmt: skip

    sql_at: datetime | None = Field(None, description="Reached sales-qualified.")
    won_at: datetime | None = Field(None, description="Closed won.")
    lost_at: datetime | None = Field(None, description="Closed lost.")

    _as_utc = field_validator("sql_at", "won_at", "lost_at")(_utc)

    @model_validator(mode="after")
    def _some_date(self) -> OutcomeIn:
        if self.sql_at is None and self.won_at is None and self.lost_at is None:
            raise ValueError("give at least one of sql_at, won_at, lost_at")
        if self.won_at is not None and self.lost_at is not None:
            raise ValueError("a lead is won or lost, not both")
        return self


class OutcomeOut(BaseModel):
    """A lead's stored outcome."""

    lead_id: str
    sql_at: datetime | None
    won_at: datetime | None
    lost_at: datetime | None
    origin: str
    updated_at: datetime


class HandoffModel(BaseModel):
    """The model that scored the handoff."""

    name: str | None
    version: str | None


class LatestScore(BaseModel):
    """The lead's most recent score while the handoff is open."""

    scored_at: datetime
    probability: float
    tier: str
    action: str
    model_version: str | None
    criteria_version: str | None
    criteria_verdict: str | None


class HandoffOut(BaseModel):
    """One lead handed to sales, as it was shown then, with its SLA state and verdict."""

    id: int
    lead_id: str
    owner: str | None
    source: str | None
    lead_created_at: datetime | None
    handed_off_at: datetime = Field(description="The SLA clock starts here (the score's as_of).")
    action: str
    tier: str
    probability: float
    model: HandoffModel
    criteria_version: str | None
    criteria_verdict: str | None
    due_at: datetime | None = Field(description="First touch due by (business time; null: no SLA).")
    breached: bool
    status: Literal["waiting", "accepted", "rejected"]
    first_touch_at: datetime | None
    disposition: str | None
    disposition_reason: str | None
    dispositioned_at: datetime | None
    rep: str | None
    score_count: int
    latest: LatestScore
    shown: dict[str, Any] = Field(
        description="Reasons, SQL criteria and action exactly as the score showed them."
    )


class HandoffPage(BaseModel):
    """A page of the queue, oldest first."""

    total: int
    limit: int
    offset: int
    items: list[HandoffOut]
