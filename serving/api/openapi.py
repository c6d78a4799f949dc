"""The OpenAPI document, completed at startup from the served model.

The scoring routes validate their bodies against the served model's own contract, so the
request schemas (lead, account, contact, events, custom fields included) and the examples (a
complete lead with about 20 events, and the response the model gives it) are attached here,
from the :class:`~leadscore.serving.api.service.Served` model. The document is rebuilt when the
model changes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from leadscore.serving.api.service import Served
from leadscore.serving.examples import batch_example
from leadscore.serving.settings import Settings

REF = "#/components/schemas/{model}"
SCORE_PATH, BATCH_PATH = "/v1/score", "/v1/score/batch"


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
    lead_schema["description"] = (
        "One lead in the data contract's field names. Unknown top-level fields are refused; "
        "inside lead, account, contact and events a key within two edits of a known field is "
        "refused with 'did you mean', and any other extra key is kept, ignored by the features "
        "and listed in the response's ignored_fields."
    )
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
            {"$ref": REF.format(model="LeadPayload")}, example, "One lead to score."
        )
        if served is not None:
            ok = paths[SCORE_PATH]["post"]["responses"]["200"]["content"]["application/json"]
            ok["example"] = served.example_response
    if BATCH_PATH in paths:
        paths[BATCH_PATH]["post"]["requestBody"] = _json_body(
            {"$ref": REF.format(model="BatchRequest")}, batch, "Leads to score."
        )
    return doc
