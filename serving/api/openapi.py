"""The OpenAPI document, completed at startup from the served model.

The scoring routes validate their bodies against the served model's own contract, so the
request schemas (lead, account, contact, events, custom fields included) and the examples (a
complete lead with about 20 events, and the response the model gives it) are attached here,
from the :class:`~leadscore.serving.api.service.Served` model. The document is rebuilt when the
model changes. The payload schema says what the validator accepts (strict types, ``maxLength``,
``maxItems`` from ``LEADSCORE_MAX_EVENTS``), and its description the rules across fields that
a JSON schema cannot express.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from leadscore.features.payload import MAX_EXTRA_VALUES, MAX_STRING_LENGTH
from leadscore.serving.api.service import Served
from leadscore.serving.examples import batch_example
from leadscore.serving.settings import Settings

REF = "#/components/schemas/{model}"
SCORE_PATH, BATCH_PATH = "/v1/score", "/v1/score/batch"


# What validate_lead refuses beyond the JSON schema (the rules across fields) or beyond its
# wording: the request bodies' description; lead_description gives the whole story.
RULES_SUMMARY = (
    "an event dated after as_of, a lead created after its as_of (or, without one, in the "
    "future), an event naming another lead, account or contact ids that contradict the lead "
    "or each other, more events than the per-lead limit, a string or field name over "
    f"{MAX_STRING_LENGTH} characters; see the LeadPayload schema."
)


def lead_description(settings: Settings) -> str:
    """The `LeadPayload` schema's description: types, limits and the cross-field rules."""
    return (
        "One lead in the data contract's field names.\n\n"
        "Types are strict: a timestamp is ISO-8601 text (a date alone is the end of that day; "
        "without an offset, UTC), never a number; a number is a JSON number or numeric text "
        'such as "12.5", never a boolean; a count is whole, from 0 to 2^53; a boolean is '
        'true/false or the text "true"/"false" in any case, never 0/1; a text field takes a '
        "string only."
        "\n\nLimits (422 above): "
        f"{settings.max_events} events per lead (LEADSCORE_MAX_EVENTS), counted before any "
        f"event is checked; {MAX_STRING_LENGTH} characters for every string and every field "
        f"name, unknown fields included; {MAX_EXTRA_VALUES} values in one record's unknown "
        "fields (nested ones counted).\n\n"
        "Rules across fields (422 naming the field): an event dated after `as_of` is refused "
        "(a score may only use history up to as_of); a lead whose `created_at` is after `as_of` "
        "(or, without as_of, in the future) is refused; an event whose `lead_id` names another "
        "lead is refused (omit it or give the lead's own); `account.account_id`, "
        "`contact.contact_id` and `contact.account_id` must agree with the lead's "
        "`account_id`/`contact_id` and the account's id when both are given.\n\n"
        "Unknown fields: at the top level refused; inside lead, account, contact and events a "
        "key within two edits of a known field is refused with 'did you mean', and any other "
        "extra key is kept, ignored by the features and listed in the response's "
        "ignored_fields."
    )


def _json_body(schema: dict[str, Any], example: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": text,
        "content": {"application/json": {"schema": schema, "example": example}},
    }


def build_openapi(app: FastAPI, served: Served | None, settings: Settings) -> dict[str, Any]:
    """The app's OpenAPI document with the served model's request schemas and examples."""
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    paths = doc.get("paths", {})
    if served is None:
        lead_schema: dict[str, Any] = {"type": "object"}
        example: dict[str, Any] = {}
        batch: dict[str, Any] = {"leads": []}
    else:
        lead_schema = served.payload.model_json_schema(ref_template=REF)
        components.update(lead_schema.pop("$defs", {}))
        example, batch = served.example, batch_example(served.config)
    lead_schema["description"] = lead_description(settings)
    events = lead_schema.get("properties", {}).get("events")
    if events is not None:
        events["maxItems"] = settings.max_events
        events["description"] = f"At most {settings.max_events} events (LEADSCORE_MAX_EVENTS)."
    components["LeadPayload"] = lead_schema
    components["BatchRequest"] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["leads"],
        "properties": {
            "leads": {
                "type": "array",
                "items": {"$ref": REF.format(model="LeadPayload")},
                "maxItems": settings.max_batch,
                "description": f"Up to {settings.max_batch} leads (413 above).",
            }
        },
    }
    if SCORE_PATH in paths:
        paths[SCORE_PATH]["post"]["requestBody"] = _json_body(
            {"$ref": REF.format(model="LeadPayload")},
            example,
            "One lead to score (JSON). Refused with 422 naming the field: " + RULES_SUMMARY,
        )
        if served is not None:
            ok = paths[SCORE_PATH]["post"]["responses"]["200"]["content"]["application/json"]
            ok["example"] = served.example_response
    if BATCH_PATH in paths:
        paths[BATCH_PATH]["post"]["requestBody"] = _json_body(
            {"$ref": REF.format(model="BatchRequest")},
            batch,
            "Leads to score (JSON), each checked as in /v1/score; one bad lead makes the batch "
            "422, listing each problem under its index: " + RULES_SUMMARY,
        )
    return doc
