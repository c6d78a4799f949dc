"""Leads of a source written as one-lead bodies: what the API, the pyfunc and `lead.json` take.

Each body carries the lead's contract fields and its history dated at or before its as_of;
empty fields are left out. Used by `leadscore data lead`, the tests and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import CrmData
from leadscore.features.schema import schemas


def _json_record(record: Mapping[Any, Any], columns: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in columns:
        value = record.get(name)
        if value is None or value is pd.NA or value is pd.NaT:
            continue
        if isinstance(value, float) and value != value:
            continue
        if isinstance(value, pd.Timestamp | datetime):
            value = value.isoformat()
        elif isinstance(value, np.generic):
            value = value.item()
        out[name] = value
    return out


def lead_bodies(
    crm: CrmData, config: FeatureConfig, lead_ids: Sequence[str], as_of: Sequence[Any]
) -> list[dict[str, Any]]:
    """Leads of a source as one-lead bodies (what the API and `lead.json` take), each with its
    contract fields and its history dated at or before its `as_of`; empty fields left out."""
    tables = schemas(config)
    cols = {name: [c.name for c in tables[name].columns] for name in tables}
    leads = crm.leads.set_index("lead_id", drop=False)
    accounts = crm.accounts.set_index("account_id", drop=False)
    contacts = crm.contacts.set_index("contact_id", drop=False)
    events = crm.events.groupby("lead_id", sort=False)
    event_cols = [c for c in cols["events"] if c != "lead_id"]
    bodies = []
    for lead_id, moment in zip(lead_ids, as_of, strict=True):
        cut = pd.Timestamp(moment)
        lead = leads.loc[lead_id].to_dict()
        account_id = lead.get("account_id")
        account = accounts.loc[account_id].to_dict() if account_id in accounts.index else {}
        contact_id = lead.get("contact_id")
        contact = contacts.loc[contact_id].to_dict() if contact_id in contacts.index else {}
        own = events.get_group(lead_id) if lead_id in events.groups else crm.events.iloc[:0]
        own = own[own["timestamp"] <= cut].sort_values(["timestamp", "event_id"])
        bodies.append({
            "lead": _json_record(lead, cols["leads"]),
            "account": _json_record(account, cols["accounts"]),
            "contact": _json_record(contact, cols["contacts"]),
            "events": [_json_record(e, event_cols) for e in own.to_dict(orient="records")],
            "as_of": cut.isoformat(),
        })  # fmt: skip
    return bodies
