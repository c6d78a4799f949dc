"""One lead as posted to the API or read from `lead.json`: typed models derived from the contract.

Body: ``{"lead": {...}, "account": {...}, "contact": {...}, "events": [...], "as_of": ...}``
in the data contract's field names (custom fields from config included). Unknown top-level
fields are refused; unknown fields inside lead/account/contact/events are kept (a CRM carries
more than we model) and ignored by the features. Counts must be whole and >= 0, numbers
finite, timestamps ISO-8601; events must belong to the lead and, when `as_of` is given, be
dated at or before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    model_validator,
)

from features.config import FeatureConfig
from features.contract import Column, CrmData, schemas

# Keys the payload carries implicitly (the nesting says which lead/account an event belongs to).
_OPTIONAL_IN_BODY = {"account_id", "contact_id", "lead_id"}
Record = dict[str, Any]
_REQUIRED = {"leads": {"lead_id", "created_at"}, "events": {"timestamp", "type"}}


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False, str_strip_whitespace=True)


def _annotation(col: Column) -> Any:
    kinds: dict[str, Any] = {"timestamp": Moment, "number": float, "boolean": bool}
    return kinds.get(col.kind, str)


def _field(table: str, col: Column) -> tuple[Any, Any]:
    required = col.name in _REQUIRED.get(table, set())
    if col.kind == "count":
        return (int | None, Field(default=None, ge=0))
    annotation = _annotation(col)
    if required:
        return (annotation, ...)
    return (annotation | None, None)


def _record_model(name: str, table: str, columns: tuple[Column, ...]) -> type[_Record]:
    fields: dict[str, Any] = {}
    for col in columns:
        implicit = col.name in _OPTIONAL_IN_BODY or (table == "events" and col.name == "event_id")
        if implicit and col.name not in _REQUIRED.get(table, set()):
            fields[col.name] = (str | None, None)
        else:
            fields[col.name] = _field(table, col)
    model: type[_Record] = create_model(name, __base__=_Record, **fields)
    return model


class LeadPayloadBase(BaseModel):
    """Shared behaviour of the generated payload models (see :func:`payload_model`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # Typed loosely here; :func:`payload_model` narrows each to its contract-derived model.
    lead: Any
    account: Any = None
    contact: Any = None
    events: list[Any] = Field(default_factory=list)
    as_of: Moment | None = None

    def records(self) -> tuple[Record, Record, Record, list[Record]]:
        """(lead, account, contact, events) as plain dicts in canonical field names."""
        lead, account, contact = _dump(self.lead), _dump(self.account), _dump(self.contact)
        for key, record in (("account_id", account), ("contact_id", contact)):
            if lead.get(key) is None:
                lead[key] = record.get(key)
        events = []
        for i, ev in enumerate(self.events):
            row = _dump(ev)
            row["lead_id"] = lead["lead_id"]
            if row.get("event_id") is None:
                row["event_id"] = f"{lead['lead_id']}#{i}"
            events.append(row)
        return lead, account, contact, events

    def as_of_or_now(self) -> datetime:
        """The body's as_of, else now (UTC, naive like every canonical timestamp)."""
        moment = self.as_of or datetime.now(UTC)
        return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment

    @model_validator(mode="after")
    def _events_belong_and_precede(self) -> LeadPayloadBase:
        lead, as_of = self.lead, self.as_of
        problems = []
        for i, ev in enumerate(self.events):
            if ev.lead_id is not None and ev.lead_id != lead.lead_id:
                problems.append(
                    f"events[{i}].lead_id: {ev.lead_id!r} is another lead's event; "
                    f"expected {lead.lead_id!r} or no lead_id"
                )
            if as_of is not None and ev.timestamp > as_of:
                problems.append(
                    f"events[{i}].timestamp: {ev.timestamp.isoformat()} is after as_of "
                    f"{as_of.isoformat()}; a score may only use history up to as_of"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _naive_utc(moment: datetime) -> datetime:
    """Validator: an aware moment as naive UTC; refuse one that leaves datetime's range."""
    try:
        return _utc(moment)
    except OverflowError:
        raise ValueError("is outside years 1-9999 once converted to UTC") from None


# Every timestamp of a body: parsed from ISO-8601 and normalised to naive UTC on validation.
Moment = Annotated[datetime, AfterValidator(_naive_utc)]


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _dump(record: BaseModel | None) -> dict[str, Any]:
    if record is None:
        return {}
    data = record.model_dump()
    return {k: _utc(v) if isinstance(v, datetime) else v for k, v in data.items()}


_MODELS: dict[str, type[LeadPayloadBase]] = {}


def payload_model(config: FeatureConfig) -> type[LeadPayloadBase]:
    """The request model for one lead under `config` (custom fields included); cached."""
    key = config.model_dump_json()
    if key not in _MODELS:
        _MODELS[key] = _build_payload_model(config)
    return _MODELS[key]


def _build_payload_model(config: FeatureConfig) -> type[LeadPayloadBase]:
    tables = schemas(config)
    lead = _record_model("Lead", "leads", tables["leads"].columns)
    account = _record_model("Account", "accounts", tables["accounts"].columns)
    contact = _record_model("Contact", "contacts", tables["contacts"].columns)
    event = _record_model("Event", "events", tables["events"].columns)
    model: type[LeadPayloadBase] = create_model(
        "LeadPayload",
        __base__=LeadPayloadBase,
        lead=(lead, ...),
        account=(account | None, None),  # type: ignore[arg-type]
        contact=(contact | None, None),  # type: ignore[arg-type]
        events=(list[event], Field(default_factory=list)),  # type: ignore[valid-type]
        as_of=(Moment | None, None),
    )
    return model


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
