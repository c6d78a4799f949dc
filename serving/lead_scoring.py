"""Score lead bodies (`{"lead", "account", "contact", "events", "as_of"}`) with a scorer.

The MLflow pyfunc's path: each body checked by the one lead validator
(:func:`~leadscore.features.payload.validate_lead`, as the API does) against the contract the
model was trained under, then the one-lead feature row and the score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from leadscore.features.config import FeatureConfig
from leadscore.features.errors import LeadscoreError
from leadscore.features.payload import (
    LeadError,
    LeadPayloadBase,
    ParsedLead,
    payload_model,
    validate_lead,
)
from leadscore.serving.runtime import Scorer


class BadLeadError(LeadscoreError, ValueError):
    """One or more lead bodies break the contract; `errors` maps each bad body's index to its
    :class:`~leadscore.features.payload.LeadError`."""

    def __init__(self, errors: dict[int, LeadError]):
        self.errors = errors
        super().__init__("\n".join(line for e in errors.values() for line in e.lines()))


def model_payload(scorer: Scorer) -> type[LeadPayloadBase]:
    """The request model of the contract the scorer was trained under."""
    config = FeatureConfig.model_validate(scorer.meta.get("feature_config") or {})
    return payload_model(config)


def parse_bodies(scorer: Scorer, bodies: Sequence[Mapping[str, Any]]) -> list[ParsedLead]:
    """Validate every body; raise :class:`BadLeadError` naming each bad index and field."""
    model = model_payload(scorer)
    parsed, errors = [], {}
    for i, body in enumerate(bodies):
        try:
            parsed.append(validate_lead(model, body, origin=f"leads[{i}]"))
        except LeadError as exc:
            errors[i] = exc
    if errors:
        raise BadLeadError(errors)
    return parsed


def score_parsed(scorer: Scorer, parsed: ParsedLead) -> dict[str, Any]:
    """Score one validated lead: the feature row, then the scorer's one-lead path."""
    row = scorer.feature_row(parsed.lead, parsed.account, parsed.contact, parsed.events,
                             parsed.as_of)  # fmt: skip
    return scorer.score_row(row) | {"as_of": parsed.as_of}


def score_bodies(scorer: Scorer, bodies: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate and score lead bodies, in order."""
    return [score_parsed(scorer, p) for p in parse_bodies(scorer, bodies)]
