"""Example request bodies for the OpenAPI document, derived from the data contract.

The base is :func:`leadscore.serving.mlflow_schema.synthetic_example` (a made-up lead with about 20
events, the one logged with the model). Fields the served contract does not have are dropped;
custom fields it declares are filled with a plausible value (dated ones as `field_update`
events), so the example always validates against the model being served.
"""

from __future__ import annotations

import copy
from typing import Any

from leadscore.features.config import CustomField, FeatureConfig
from leadscore.features.schema import schemas
from leadscore.serving.mlflow_schema import synthetic_example

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
