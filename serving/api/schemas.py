"""Typed response bodies of the scoring API.

Request bodies are the data contract's payload models (:mod:`~leadscore.features.payload`), built
from the served model's own feature config, so they are attached to the OpenAPI document
at startup (:mod:`leadscore.serving.api.openapi`) rather than declared here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Scalar = bool | int | float | str | None


class _Out(BaseModel):
    # forbid: responses are validated from plain data (service.score_lead), so a misspelt key
    # must fail rather than leave its field at the default
    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorItem(_Out):
    """One problem with a request: where (``body``, keys, list indices), what, and its kind."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(_Out):
    """Every error answer: one line, or (422) one entry per problem."""

    detail: str | list[ErrorItem]


def error_responses(descriptions: Mapping[int, str], *codes: int) -> dict[int | str, Any]:
    """OpenAPI `responses` for the error codes of one route, each with :class:`ErrorOut`."""
    return {code: {"description": descriptions[code], "model": ErrorOut} for code in codes}


class ModelRef(_Out):
    """Which registered model produced a score."""

    name: str | None = Field(description="Registered model name.")
    version: str | None = Field(description="Registered model version.")
    alias: str | None = Field(description="The alias it was loaded by (e.g. champion).")


class ReasonOut(_Out):
    """One feature's part in the score, in probability points."""

    feature: str = Field(description="Feature name (stable id; for machines).")
    label: str = Field(description="Human name of the feature.")
    group: Literal["fit", "engagement", "sales"]
    value: Scalar = Field(
        description="The lead's value of the feature (null: no such event yet, e.g. no touch)."
    )
    points: float = Field(description="Share of mql_probability - base_probability.")
    sentence: str = Field(
        description="What a rep reads: the fact from the feature's template and which way it "
        "moves the score, in percentage points ('... (raises the score by 17 points)')."
    )


class MissingOut(_Out):
    """A value that is not known (e.g. company size): never a reason, but counted."""

    feature: str = Field(description="Feature name (stable id; for machines).")
    label: str = Field(description="Human name of the feature.")
    group: Literal["fit", "engagement", "sales"]
    points: float = Field(
        description="What the model made of not knowing it (a share of p - p0, either sign)."
    )
    sentence: str = Field(
        description="E.g. 'Company size is not known: adding it would sharpen the score'."
    )


class Reasons(_Out):
    """Top positive and negative reasons, the unknown values, and the lead's age as context.

    The points of positive, negative, missing and context plus `other_points` add up to
    mql_probability - base_probability (as `score_by_group` does).
    """

    base_probability: float = Field(
        description="p0: the calibrated probability before anything about the lead is known."
    )
    positive: list[ReasonOut]
    negative: list[ReasonOut]
    missing: list[MissingOut] = Field(
        default_factory=list,
        description="Unknown values that moved the score, largest |points| first. They are "
        "never listed as reasons: finding them out is the point.",
    )
    context: list[ReasonOut] = Field(
        default_factory=list,
        description="The lead's age: the model judges everything else against it, so it is "
        "reported here with its points, not as a reason ('The lead is 30 days old').",
    )
    other_points: float = Field(
        0.0, description="Points of the known features not listed (beyond the top reasons)."
    )


class ScoreByGroup(_Out):
    """Points per feature group: who they are (fit) versus what they and sales did."""

    fit: float
    engagement: float
    sales: float


class CriterionOut(_Out):
    """One SQL criterion checked on the lead."""

    id: str
    group: str
    required: bool
    status: Literal["pass", "fail", "unknown"]
    value: Scalar = Field(description="The observed value (null: missing).")
    sentence: str


class SqlCriteria(_Out):
    """The team's written SQL criteria checked on the lead."""

    version: str
    verdict: Literal["sql_ready", "not_sql", "needs_qualification"]
    summary: str
    criteria: list[CriterionOut]


class Action(_Out):
    """What to do with the lead (the routing rule; its events in routing.yaml)."""

    action: Literal["route_to_sales", "qualify", "nurture"]
    reason: str
    criteria: list[str] = Field(
        description="Criterion ids the action rests on (failing, or still unknown)."
    )


class UnknownCategory(_Out):
    """A category value the model never saw in training: scored as missing."""

    feature: str
    field: str | None = Field(description="The input field it came from, e.g. account.industry.")
    value: str


class NextStep(_Out):
    """A feasible step (config/next_steps.yaml) and what it would do to the score."""

    id: str = Field(description="The step's id in next_steps.yaml (stable; for machines).")
    label: str = Field(description="What a rep reads, e.g. 'Book a meeting'.")
    probability_after: float = Field(
        description="mql_probability with the step's event added at as_of."
    )
    gain: float = Field(
        description="probability_after - mql_probability (probability points); always > 0."
    )
    tier_after: Literal["A", "B", "C", "D"]
    is_mql_after: bool


class ScoreResponse(_Out):
    """One scored lead."""

    lead_id: str
    as_of: datetime
    lead_age_days: float
    stale: bool = Field(description="Older than any age the model was trained on.")
    model: ModelRef
    mql_probability: float
    tier: Literal["A", "B", "C", "D"]
    is_mql: bool
    threshold: float
    reasons: Reasons | None = Field(description="Present when explain=true.")
    score_by_group: ScoreByGroup | None = Field(description="Present when explain=true.")
    sql_criteria: SqlCriteria
    recommended_action: Action
    unknown_categories: list[UnknownCategory]
    ignored_fields: list[str] = Field(
        default_factory=list,
        description="Fields of the body that no feature reads (e.g. a CRM's own keys), as "
        "entity.field; a key within two edits of a known field is refused instead.",
    )
    scored_at: datetime
    next_steps: list[NextStep] | None = Field(
        default=None,
        description="Present when next_steps=true: up to 3 steps that would raise the score "
        "most, best first; steps that lower or keep it are left out (the list may be empty).",
    )


class BatchResponse(_Out):
    """Scored leads, in request order."""

    model: ModelRef
    count: int
    results: list[ScoreResponse]


class FeatureInfo(_Out):
    """One model input, as the feature spec declares it."""

    name: str
    label: str
    description: str
    group: str
    dtype: str
    unit: str | None
    monotone: int = Field(description="+1: more never lowers the score.")
    categories: list[str] | None


class ThresholdInfo(_Out):
    """The MQL threshold policy and its thresholds."""

    policy: dict[str, Any]
    global_threshold: float
    by_source: dict[str, float]
    revision: int
    tier_cuts: dict[str, float]


class Integrity(_Out):
    """Whether the served model's files matched their SHA-256 digests before it was loaded."""

    status: Literal["verified", "unverified"] = Field(
        description="verified: every file matched; unverified: the version has no digests "
        "(registered before leadscore 0.3.0) and was loaded with a warning."
    )
    source: str | None = Field(
        None, description="What the files were checked against: `registry tag` (the version's "
        "leadscore.digests tag, the trusted copy) or `digests.json` (beside the files)."
    )  # fmt: skip
    files: int | None = Field(None, description="Files checked.")
    detail: str | None = Field(None, description="Why the model is unverified.")


class ModelInfo(_Out):
    """The served model."""

    name: str | None
    version: str | None
    alias: str | None
    family: Literal["lightgbm", "logistic"] = Field(
        description="The model family training chose: gradient-boosted trees or a logistic "
        "regression (reasons are exact log-odds contributions either way)."
    )
    uri: str
    trained_at: str | None
    target: str | None
    horizon_days: float | None
    trained_ages: list[float]
    data_window: dict[str, Any]
    thresholds: ThresholdInfo
    test_metrics: dict[str, float]
    last_check: dict[str, Any] | None = None  # the model watcher's last look at the registry
    refused: str | None = None  # why the last new model was not installed, if it was not
    point_in_time: bool = Field(
        True, description="False when the training data was not point in time (an undated file, "
        "totals as of an export): the test metrics are then optimistic; `caveats` says why.",
    )
    caveats: list[str] = Field(default_factory=list)
    integrity: Integrity | None = Field(
        None, description="The digests check of the model's files when it was loaded."
    )
    sql_criteria: dict[str, str]
    features: list[FeatureInfo]


class Health(_Out):
    """Liveness."""

    status: Literal["alive"] = "alive"


class Readiness(_Out):
    """Readiness: whether a model is loaded, which one, and why not (in full with an admin
    key only: the reason can name the server's files)."""

    ready: bool = Field(description="A model is loaded and scoring.")
    model: ModelRef | None = Field(None, description="The served model (name, version, alias).")
    error: str | None = Field(
        None,
        description="Why no model (or no newer version) is served: `loading`, or a fixed "
        "phrase without an admin key, the full reason with one.",
    )


class DriftHistogram(_Out):
    """The score or one top feature: the served version's leads bucket by bucket against the
    model's training reference."""

    name: str = Field(
        description="`mql_probability` (the calibrated score, against the calibration slice) "
        "or a feature name (against the training snapshots)."
    )
    kind: Literal["number", "category"] = Field(
        description="number: bins at the reference's deciles; category: one bin per value."
    )
    psi: float | None = Field(
        description="Population stability index; null until `min_leads` leads are scored."
    )
    verdict: Literal["stable", "moderate", "shifted"] | None = Field(
        description="PSI under 0.1 stable, under 0.2 moderate, else shifted; null when not judged."
    )
    buckets: list[str] = Field(description="Each bin's label, in bucket order.")
    reference_share: list[float] = Field(description="Each bin's share of the reference.")
    live_count: list[int] = Field(description="Leads of this version in each bin, all workers.")


class ModelDrift(_Out):
    """Live drift of the served version: its scored leads against its training reference."""

    model: ModelRef
    status: Literal["no_reference", "too_few_leads", "judged"] = Field(
        description="no_reference: the model keeps no drift reference (trained before they "
        "were kept); too_few_leads: too few leads to judge yet; judged: PSI computed."
    )
    detail: str = Field(description="The status in one sentence.")
    leads: int = Field(description="Leads scored by this version since it was swapped in.")
    min_leads: int = Field(description="Leads needed before the PSI is judged.")
    reference_rows: int | None = Field(description="Training snapshots in the reference.")
    histograms: list[DriftHistogram]
