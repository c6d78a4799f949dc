"""The served model and one-lead scoring: score, reasons on demand, criteria, action.

Everything derived from a model (its request body model, the criteria bound to its feature
config, the OpenAPI example) is built once into a :class:`Served` and held by a
:class:`ModelHolder`. Requests read ``holder.current`` once, so replacing it (one attribute
assignment) swaps the model atomically; :func:`build_served` refuses a model this code cannot
serve before it is ever installed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, get_args

from leadscore.features.config import FeatureConfig
from leadscore.features.criteria.check import CriteriaResult, check, lead_row
from leadscore.features.criteria.rules import Criteria, load_criteria
from leadscore.features.payload import LeadPayloadBase, ParsedLead, payload_model
from leadscore.features.spec import DType, Kind, build_spec
from leadscore.serving.api.bodies import parse_lead
from leadscore.serving.api.schemas import (
    ModelRef,
    NextStep,
    ScoreResponse,
)
from leadscore.serving.examples import example_body
from leadscore.serving.live_drift import DriftRecorder
from leadscore.serving.loader import load_scorer
from leadscore.serving.next_steps import NextStepsConfig, load_next_steps, moved_features, what_if
from leadscore.serving.reasons import GROUPS, Reason, explain, json_value
from leadscore.serving.routing import RoutingConfig, load_routing, recommend
from leadscore.serving.runtime import Scorer
from leadscore.serving.settings import Settings

log = logging.getLogger(__name__)
_SLOPE_STEP = 1e-3  # log-odds step of the finite-difference slope (reasons fallback)


class ModelRefused(RuntimeError):
    """A model that this code cannot serve (it is reported and never installed)."""


@dataclass(frozen=True)
class Served:
    """One loaded model with everything derived from it; replaced as a whole."""

    uri: str
    scorer: Scorer
    config: FeatureConfig
    payload: type[LeadPayloadBase]
    criteria: Criteria
    routing: RoutingConfig
    ref: ModelRef
    example: dict[str, Any] = field(default_factory=dict)
    example_response: dict[str, Any] = field(default_factory=dict)
    next_steps: NextStepsConfig | None = None  # what `next_steps=true` tries (None: nothing)
    # counts each scored lead for live drift; set when the model is installed (None: a model
    # without a drift reference, or one not installed, e.g. while its example lead is scored)
    drift: DriftRecorder | None = None


class ModelHolder:
    """Holds the served model; `current` is swapped by a single assignment."""

    def __init__(self) -> None:
        self.current: Served | None = None
        self.error: str | None = None

    def install(self, served: Served) -> None:
        """Serve `served` from the next request on."""
        self.current = served
        self.error = None

    def refuse(self, message: str) -> None:
        """Record why a model was not installed (the current one, if any, stays)."""
        self.error = message


# ---------------------------------------------------------------------------------------------
# scoring one lead: the response is built as plain data and validated once (one call into
# pydantic instead of one per nested model: the same models, field by field)


def _reason_out(r: Reason) -> dict[str, Any]:
    """A :class:`ReasonOut`'s fields."""
    return {
        "feature": r.feature, "label": r.label, "group": r.group,
        "value": r.value, "points": r.points, "sentence": r.sentence,
    }  # fmt: skip


def _missing_out(r: Reason) -> dict[str, Any]:
    """A :class:`MissingOut`'s fields."""
    return {
        "feature": r.feature, "label": r.label, "group": r.group, "points": r.points,
        "sentence": r.sentence,
    }  # fmt: skip


def _criteria_out(result: CriteriaResult) -> dict[str, Any]:
    """A :class:`SqlCriteria`'s fields."""
    items = []
    for r in result.results:
        observed = r.observed  # as CriterionResult.to_dict shows it, without building that dict
        if isinstance(observed, date):
            observed = observed.isoformat()
        items.append({
            "id": r.id, "group": r.group, "required": r.required, "status": r.status,
            "value": json_value(observed), "sentence": r.sentence,
        })  # fmt: skip
    return {
        "version": result.version, "verdict": result.verdict, "summary": result.summary,
        "criteria": items,
    }  # fmt: skip


def score_lead(
    served: Served,
    parsed: ParsedLead,
    explain_it: bool,
    top: int,
    scored_at: datetime,
    next_steps: bool = False,
) -> ScoreResponse:
    """Score one validated lead: probability, tier, reasons and next steps on demand,
    criteria, action."""
    scorer = served.scorer
    lead, account, contact, events = parsed.lead, parsed.account, parsed.contact, parsed.events
    as_of = parsed.as_of
    row = scorer.feature_row(lead, account, contact, events, as_of)
    if explain_it and not next_steps:  # one booster call: the score and the contributions
        scored, contrib, base = scorer.score_row_explained(row)
    else:  # next steps' gains are differences of plain predictions, this lead's one included
        scored = scorer.score_row(row)
        if explain_it:
            contrib, base = scorer.contributions(row)
    verdict = check(served.criteria, lead_row(row, lead, account, contact))
    action = recommend(served.routing, verdict, scored["is_mql"], events, as_of)
    reasons: dict[str, Any] | None = None
    by_group: dict[str, float] | None = None
    if explain_it:

        def slope() -> float:  # rarely called: only when the contributions cancel out
            log_odds = base + float(contrib.sum())
            up = scorer.probability_at(log_odds + _SLOPE_STEP)
            return (up - scorer.probability_at(log_odds - _SLOPE_STEP)) / (2 * _SLOPE_STEP)

        p0 = scorer.base_probability
        exp = explain(scorer.spec.features, row, contrib, scored["mql_probability"], p0, top, slope)
        reasons = {
            "base_probability": p0,
            "positive": [_reason_out(r) for r in exp.positive],
            "negative": [_reason_out(r) for r in exp.negative],
            "missing": [_missing_out(r) for r in exp.missing],
            "context": [_reason_out(r) for r in exp.context],
            "other_points": exp.other_points,
        }
        by_group = {g: exp.score_by_group.get(g, 0.0) for g in GROUPS}
    unknown = [
        {"feature": name, "field": scorer.feature(name).source, "value": value}
        for name, value in scored["unknown_categories"].items()
    ]
    response = ScoreResponse.model_validate({
        "lead_id": str(row["lead_id"]),
        "as_of": as_of.replace(tzinfo=UTC),
        "lead_age_days": scored["lead_age_days"],
        "stale": scored["stale"],
        "model": served.ref,
        "mql_probability": scored["mql_probability"],
        "tier": scored["tier"],
        "is_mql": scored["is_mql"],
        "threshold": scored["threshold"],
        "reasons": reasons,
        "score_by_group": by_group,
        "sql_criteria": _criteria_out(verdict),
        "recommended_action": {
            "action": action.action, "reason": action.reason, "criteria": list(action.criteria)
        },
        "unknown_categories": unknown,
        "ignored_fields": list(parsed.ignored_fields),
        "scored_at": scored_at,
        "next_steps": _next_steps(served, parsed, scored) if next_steps else None,
    })  # fmt: skip
    # every path (the shortcut, the route, the batch) comes here once per lead with an answer
    if served.drift is not None:
        served.drift.record(row, scored["mql_probability"])
    return response


def _next_steps(served: Served, parsed: ParsedLead, scored: dict[str, Any]) -> list[NextStep]:
    """The steps that would raise the lead most (one extra scoring per step)."""
    steps = served.next_steps.steps if served.next_steps is not None else ()
    return [
        NextStep(
            id=r.id, label=r.label, probability_after=r.probability_after, gain=r.gain,
            tier_after=r.tier_after, is_mql_after=r.is_mql_after,
        )
        for r in what_if(served.scorer, parsed, steps, before=scored)
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# loading: refuse what this code cannot serve


def check_servable(scorer: Scorer) -> None:
    """Raise :class:`ModelRefused` when the spec uses something this code does not know."""
    kinds, dtypes = set(get_args(Kind)), set(get_args(DType))
    problems = []
    for f in scorer.spec:
        if f.kind not in kinds:
            problems.append(f"feature {f.name!r}: unknown kind {f.kind!r}")
        if f.dtype not in dtypes:
            problems.append(f"feature {f.name!r}: unknown dtype {f.dtype!r}")
        if f.group not in GROUPS:
            problems.append(f"feature {f.name!r}: unknown group {f.group!r}")
        for value in (None, 1.0, "x"):
            try:
                f.sentence(value, 30.0)
            except (KeyError, IndexError, ValueError) as exc:
                problems.append(f"feature {f.name!r}: template {f.template!r} fails ({exc!r})")
                break
    if problems:
        raise ModelRefused("the model's feature spec cannot be served: " + "; ".join(problems))


def model_ref(scorer: Scorer) -> ModelRef:
    """Name, version and alias recorded by the loader (or at training)."""
    meta = scorer.meta
    version = meta.get("version")
    return ModelRef(
        name=meta.get("model_name"),
        version=None if version in (None, "") else str(version),
        alias=meta.get("alias"),
    )


def build_served(uri: str, settings: Settings) -> Served:
    """Load `uri` and everything derived from it, then score the example lead with reasons;
    any failure raises :class:`ModelRefused` naming the cause."""
    try:
        scorer = load_scorer(uri)
    except Exception as exc:  # registry, download or format: all mean "not servable"
        raise ModelRefused(f"cannot load {uri}: {exc}") from exc
    check_servable(scorer)
    try:
        config = FeatureConfig.model_validate(scorer.meta.get("feature_config") or {})
        payload = payload_model(config)
        criteria = load_criteria(settings.criteria_path, config, build_spec(config))
        routing = load_routing(settings.routing_path)
        steps = load_next_steps(settings.next_steps_path)
    except (ValueError, OSError) as exc:
        raise ModelRefused(f"cannot serve {uri}: {exc}") from exc
    for step in steps.steps:
        if not moved_features(step, scorer.spec):
            log.warning("next step %r moves no feature of %s: it is never recommended", step.id,
                        uri)  # fmt: skip
    ref = model_ref(scorer)
    served = Served(uri, scorer, config, payload, criteria, routing, ref, next_steps=steps)
    example = example_body(config)
    try:
        now = datetime.now(UTC)
        response = score_lead(served, parse_lead(payload, example), True, 3, now, next_steps=True)
    except Exception as exc:
        raise ModelRefused(f"{uri} fails on the example lead: {exc!r}") from exc
    if not math.isfinite(response.mql_probability):
        raise ModelRefused(f"{uri} gives a non-finite probability on the example lead")
    return Served(
        uri, scorer, config, payload, criteria, routing, served.ref, example,
        response.model_dump(mode="json"), steps,
    )  # fmt: skip
