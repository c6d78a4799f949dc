"""The MLflow pyfunc signature and input example, built from the data contract.

`lead`, `account` and `contact` are objects whose properties are the contract's columns
(custom fields from config included), optional unless the contract requires them, never
inferred from one example. `events` is an array of maps: event payloads differ by type and
CRMs add their own keys, which the contract keeps and ignores; the scorer validates each event
against the contract itself (`features.payload`) and names the bad index and field.
"""

from __future__ import annotations

from typing import Any

from mlflow.models.signature import ModelSignature
from mlflow.types.schema import (
    AnyType,
    Array,
    ColSpec,
    DataType,
    Map,
    Object,
    ParamSchema,
    ParamSpec,
    Property,
    Schema,
)

from leadscore.features.config import FeatureConfig
from leadscore.features.schema import Column, schemas

_TYPES = {
    "number": DataType.double,
    "count": DataType.long,
    "boolean": DataType.boolean,
}
_REQUIRED = {"leads": {"lead_id", "created_at"}}


def _object(table: str, columns: tuple[Column, ...]) -> Object:
    props = [
        Property(
            c.name,
            _TYPES.get(c.kind, DataType.string),  # ids, text, categories, ISO timestamps
            required=c.name in _REQUIRED.get(table, set()),
        )
        for c in columns
    ]
    return Object(props)


def signature(config: FeatureConfig) -> ModelSignature:
    """Input: one row per lead; output: the scores; param: `as_of` (ISO-8601, default now)."""
    tables = schemas(config)
    inputs = Schema(
        [
            ColSpec(_object("leads", tables["leads"].columns), "lead"),
            ColSpec(_object("accounts", tables["accounts"].columns), "account", required=False),
            ColSpec(_object("contacts", tables["contacts"].columns), "contact", required=False),
            ColSpec(Array(Map(AnyType())), "events", required=False),
        ]
    )
    outputs = Schema(
        [
            ColSpec(DataType.string, "lead_id"),
            ColSpec(DataType.double, "mql_probability"),
            ColSpec(DataType.string, "tier"),
            ColSpec(DataType.boolean, "is_mql"),
            ColSpec(DataType.double, "threshold"),
        ]
    )
    params = ParamSchema([ParamSpec("as_of", DataType.string, None)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def synthetic_example() -> dict[str, Any]:
    """A made-up lead (never a real one) for the logged input example and the API docs."""
    events: list[dict[str, Any]] = []
    plan = [
        ("touch", "content_download", "inbound", None),
        ("web_session", "website", "inbound", None),
        ("touch", "email", "outbound", None),
        ("web_session", "pricing_page", "inbound", None),
        ("touch", "webinar", "inbound", None),
        ("sales_activity", "call", "outbound", "no_answer"),
        ("sales_activity", "email", "outbound", "connected"),
        ("web_session", "demo_page", "inbound", None),
        ("sales_activity", "meeting", "outbound", "meeting_set"),
        ("touch", "linkedin_message", "outbound", None),
    ]
    for i in range(20):
        kind, subtype, direction, outcome = plan[i % len(plan)]
        day = i + 1
        event: dict[str, Any] = {
            "event_id": f"evt-{i + 1:03d}",
            "timestamp": f"2026-03-{day:02d}T10:{i:02d}:00Z",
            "type": kind,
            "subtype": subtype,
            "direction": direction,
        }
        if outcome:
            event["outcome"] = outcome
        if kind == "web_session":
            event["page_views"] = 4
            event["pricing_page_views"] = 2 if subtype == "pricing_page" else 0
            event["demo_page_views"] = 1 if subtype == "demo_page" else 0
            event["duration_seconds"] = 240
        events.append(event)
    events.append({"event_id": "evt-021", "timestamp": "2026-03-21T15:00:00Z",
                   "type": "opportunity_opened", "value": 42000.0})  # fmt: skip
    return {
        "lead": {"lead_id": "lead-example-001", "created_at": "2026-03-01T09:00:00Z",
                 "source": "inbound_marketing"},
        "account": {"account_id": "acct-example-001", "company_name": "Example Logistics Ltd",
                    "industry": "logistics", "region": "UK", "employee_band": "500-999",
                    "revenue_band": "$50M-$200M", "process_maturity_band": "medium"},
        "contact": {"contact_id": "cnt-example-001", "job_title": "VP Finance",
                    "role_function": "vp_finance", "seniority": "vp",
                    "buyer_role": "economic_buyer", "email_domain_type": "corporate"},
        "events": events,
        "as_of": "2026-03-31T09:00:00Z",
    }  # fmt: skip
