"""Request bodies: one lead validated against the served model's contract, errors by field.

Every problem becomes a ``{loc, msg, type}`` entry (:class:`BodyError`): pydantic's own, the
payload's cross-field checks split back into one entry per event and field, a lead created
after `as_of`, and timestamps that overflow when converted to UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from features.payload import LeadPayloadBase

_EVENT_PROBLEM = re.compile(r"^events\[(\d+)\]\.(\w+): (.*)$", re.DOTALL)


class BodyError(ValueError):
    """A request body breaks the contract; `errors` are ``{loc, msg, type}`` entries."""

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))


def _errors(exc: ValidationError, prefix: tuple[str | int, ...]) -> list[dict[str, Any]]:
    """Field-level entries from a pydantic error; the payload's cross-field problems
    ("events[3].timestamp: ...") are split back into one entry per event and field."""
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        msg = str(err["msg"])
        if not loc and err["type"] == "value_error":
            text = msg.removeprefix("Value error, ")
            for part in re.split(r"; (?=events\[\d+\]\.)", text):
                match = _EVENT_PROBLEM.match(part)
                if match:
                    index, column, message = match.groups()
                    out.append({"loc": [*prefix, "events", int(index), column],
                                "msg": message, "type": "value_error"})  # fmt: skip
                else:
                    out.append({"loc": list(prefix), "msg": part, "type": "value_error"})
            continue
        out.append({"loc": [*prefix, *loc], "msg": msg, "type": str(err["type"])})
    return out


@dataclass(frozen=True)
class Lead:
    """A validated lead body as canonical records (naive UTC timestamps) and its as_of."""

    lead: dict[str, Any]
    account: dict[str, Any]
    contact: dict[str, Any]
    events: list[dict[str, Any]]
    as_of: datetime


def parse_lead(
    model: type[LeadPayloadBase], data: Any, prefix: tuple[str | int, ...] = ("body",)
) -> Lead:
    """Validate one lead body against a contract's payload model; raise :class:`BodyError`.

    `prefix` starts each error's `loc` (``("body", "leads", 3)`` in a batch).
    """
    try:
        payload = model.model_validate(data)
        lead, account, contact, events = payload.records()  # converts timestamps to UTC
        created = payload.lead.created_at  # naive UTC: the payload model normalises moments
        as_of = payload.as_of_or_now()
    except ValidationError as exc:
        raise BodyError(_errors(exc, prefix)) from None
    if created > as_of:
        where, what = (
            (["as_of"], f"as_of {as_of.isoformat()} is before the lead's created_at")
            if payload.as_of is not None
            else (["lead", "created_at"], "is in the future")
        )
        msg = f"{what} ({created.isoformat()}); a lead cannot be scored before it exists"
        raise BodyError([{"loc": [*prefix, *where], "msg": msg, "type": "value_error"}])
    return Lead(lead, account, contact, events, as_of)
