"""Example lead bodies, derived from the data contract: the input example logged with each
model, the service's smoke test and the OpenAPI examples.

The base is :func:`synthetic_example` (a made-up lead with about 20 events). Fields a contract
does not have are dropped; custom fields it declares are filled with a plausible value (dated
ones as `field_update` events), so the example always validates against the model's own
contract, whatever `features.yaml` declares.
"""

from __future__ import annotations

import copy
from typing import Any

from leadscore.features.config import CustomField, FeatureConfig
from leadscore.features.schema import schemas

_TABLES = {"lead": "leads", "account": "accounts", "contact": "contacts"}


def _sample(custom: CustomField) -> Any:
    if custom.type == "number":
        return 1.0
    if custom.type == "boolean":
        return True
    vocabulary = custom.vocabulary or ("example",)
    return vocabulary[len(vocabulary) // 2]


def example_body(config: FeatureConfig) -> dict[str, Any]:
    """One complete, valid lead body under `config`."""
    body = copy.deepcopy(synthetic_example())
    tables = schemas(config)
    for entity, table in _TABLES.items():
        columns = {c.name for c in tables[table].columns}
        body[entity] = {k: v for k, v in body[entity].items() if k in columns}
    event_columns = {c.name for c in tables["events"].columns}
    body["events"] = [{k: v for k, v in e.items() if k in event_columns} for e in body["events"]]
    for custom in config.custom_fields:
        if custom.dated:
            body["events"].append(
                {"event_id": f"evt-{len(body['events']) + 1:03d}",
                 "timestamp": "2026-03-10T12:00:00Z", "type": "field_update",
                 "field": custom.name, "field_value": str(_sample(custom)).lower()}
            )  # fmt: skip
        else:
            body[custom.entity].setdefault(custom.name, _sample(custom))
    return body


def batch_example(config: FeatureConfig) -> dict[str, Any]:
    """A batch body: the example lead and a quieter second lead of another account."""
    first = example_body(config)
    second = copy.deepcopy(first)
    second["lead"] |= {"lead_id": "lead-example-002", "source": "sdr_outbound"}
    second["account"] |= {"account_id": "acct-example-002", "company_name": "Example Parts Inc",
                          "industry": "manufacturing", "region": "US",
                          "employee_band": "200-499", "revenue_band": "$10M-$50M"}  # fmt: skip
    second["contact"] |= {"contact_id": "cnt-example-002", "job_title": "AP Manager",
                          "role_function": "ap_manager", "seniority": "manager",
                          "buyer_role": "champion"}  # fmt: skip
    second["events"] = [
        e for e in second["events"] if e["type"] in ("touch", "web_session", "field_update")
    ][:8]
    return {"leads": [first, second]}


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
