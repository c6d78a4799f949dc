"""Score lead bodies (`{"lead", "account", "contact", "events", "as_of"}`) with a scorer.

Shared by the MLflow pyfunc and (later) the API: validation against the model's own data
contract, the one-lead feature row, the score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from features.config import FeatureConfig
from features.payload import LeadPayloadBase, payload_model
from serving.runtime import Scorer


class BadLeadError(ValueError):
    """One or more lead bodies break the contract; `problems` lists index, field and message."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid lead(s):\n  - " + "\n  - ".join(problems))


def model_payload(scorer: Scorer) -> type[LeadPayloadBase]:
    """The request model of the contract the scorer was trained under."""
    config = FeatureConfig.model_validate(scorer.meta.get("feature_config") or {})
    return payload_model(config)


def parse_bodies(scorer: Scorer, bodies: Sequence[Mapping[str, Any]]) -> list[LeadPayloadBase]:
    """Validate every body; raise :class:`BadLeadError` naming each bad index and field."""
    model = model_payload(scorer)
    parsed, problems = [], []
    for i, body in enumerate(bodies):
        try:
            parsed.append(model.model_validate(dict(body)))
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "body"
                problems.append(f"leads[{i}].{where}: {err['msg']}")
    if problems:
        raise BadLeadError(problems)
    return parsed


def score_payload(scorer: Scorer, payload: LeadPayloadBase) -> dict[str, Any]:
    """Score one validated body: the feature row, then the scorer's one-lead path."""
    lead, account, contact, events = payload.records()
    as_of = payload.as_of_or_now()
    row = scorer.feature_row(lead, account, contact, events, as_of)
    return scorer.score_row(row) | {"as_of": as_of}


def score_bodies(scorer: Scorer, bodies: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate and score lead bodies, in order."""
    return [score_payload(scorer, p) for p in parse_bodies(scorer, bodies)]
