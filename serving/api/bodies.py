"""Request bodies of the scoring routes: JSON parsed, each lead checked by the one validator.

The checks themselves are :func:`leadscore.features.payload.validate_lead` (the pyfunc and
`criteria check` run the same); here its problems become the API's ``{loc, msg, type}`` entries,
located under ``body`` (and ``leads``, index, in a batch). The routes pass the per-lead event
limit (``LEADSCORE_MAX_EVENTS``), which the 422 names.
"""

from __future__ import annotations

from typing import Any

import pydantic_core

from leadscore.features.payload import (
    LeadError,
    LeadPayloadBase,
    Loc,
    ParsedLead,
    Problem,
    validate_lead,
)

MAX_EVENTS_SETTING = "LEADSCORE_MAX_EVENTS"


class BodyError(ValueError):
    """A request body breaks the contract; `errors` are ``{loc, msg, type}`` entries (422)."""

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))


def json_body(body: bytes) -> Any:
    """Parse JSON (NaN and Infinity are read, so that the contract can name them)."""
    try:
        return pydantic_core.from_json(body, allow_inf_nan=True)
    except ValueError as exc:
        problem = {"loc": ["body"], "msg": f"invalid JSON: {exc}", "type": "json_invalid"}
        raise BodyError([problem]) from None


def parse_lead(
    model: type[LeadPayloadBase],
    data: Any,
    prefix: Loc = ("body",),
    max_events: int | None = None,
) -> ParsedLead:
    """Validate one lead body (at most `max_events` events; None: any number); raise
    :class:`BodyError` with every problem under `prefix`."""
    try:
        return validate_lead(model, data, max_events=max_events)
    except LeadError as exc:
        raise BodyError([_entry(p, prefix) for p in exc.problems]) from None


def _entry(problem: Problem, prefix: Loc) -> dict[str, Any]:
    entry = problem.to_dict(prefix)
    if problem.type == "too_many_events":  # the operator's knob, named for the client to quote
        entry["msg"] += f" ({MAX_EVENTS_SETTING})"
    return entry
