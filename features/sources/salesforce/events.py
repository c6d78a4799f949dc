"""Salesforce activity, campaign, opportunity and field-history objects as canonical events."""

from __future__ import annotations

from typing import Any

import pandas as pd

from leadscore.features.sources.salesforce.export import _Export
from leadscore.features.sources.salesforce.frames import (
    _at,
    _flag,
    _later,
    _Links,
    _lookup,
    _nat,
    _none,
    _text,
)

# LeadHistory's own entries that name no field
PSEUDO_FIELDS = frozenset({"created", "leadConverted", "leadMerged", "ownerAssignment",
                           "ownerAccepted", "locked", "unlocked", "feedEvent"})  # fmt: skip
EVENT_OBJECTS = ("Task", "Event", "CampaignMember", "Opportunity", "LeadHistory",
                 "OpportunityFieldHistory")  # fmt: skip


def _activities(ex: _Export, obj: str, links: _Links) -> pd.DataFrame:
    rules = ex.mapping.activities
    if not ex.require(obj, ("WhoId", "WhatId"), ("CreatedDate",)):
        return pd.DataFrame()
    created = ex.times(obj, "CreatedDate", required=True)
    done = ex.times(obj, "CompletedDateTime" if obj == "Task" else "EndDateTime")
    moment = _later(created, done)
    lead = links.resolve(ex.text(obj, "WhoId"), moment, ex.text(obj, "WhatId"))
    kind = ex.text(obj, "Type")
    system = ex.text(obj, "TaskSubtype" if obj == "Task" else "EventSubtype")
    subtype = _lookup(kind, rules.types).fillna(_lookup(system, rules.types, keep=False))
    outcome = _none(len(kind))
    for name in rules.outcome_fields:
        outcome = outcome.fillna(_lookup(ex.text(obj, name), rules.outcomes))
    call_type = ex.text(obj, "CallType").str.lower()
    direction = call_type.where(call_type.isin(["inbound", "outbound"]), "outbound")
    out = pd.DataFrame({
        "event_id": ex.ids(obj), "lead_id": lead, "timestamp": moment, "type": "sales_activity",
        "subtype": subtype, "channel": "sales", "direction": direction, "outcome": outcome,
    })  # fmt: skip
    web_type = (rules.web_session_type or "").lower()
    if obj == "Task" and web_type:
        web = (kind.str.lower() == web_type).fillna(False).astype(bool).to_numpy()
        out.loc[web, ["type", "channel", "direction"]] = ["web_session", "web", "inbound"]
        out.loc[web, ["subtype", "outcome"]] = pd.NA
        for api, column in rules.web_session_fields.items():
            if api not in ex.columns(obj):
                continue
            if column == "subtype":
                out[column] = ex.text(obj, api).where(web, out[column])
            else:
                out[column] = ex.numbers(obj, api).where(web)
    return _linked(ex, obj, out, "WhoId (a lead, or a converted lead's contact) or WhatId")


def _linked(ex: _Export, obj: str, events: pd.DataFrame, via: str) -> pd.DataFrame:
    lost = events["lead_id"].isna()
    if lost.any():
        ex.notes.append(f"{int(lost.sum())} {obj} row(s) linked to no lead of the export by "
                        f"{via}: not read")  # fmt: skip
    return events[~lost.to_numpy()]


def _touches(ex: _Export, links: _Links) -> pd.DataFrame:
    rules = ex.mapping.campaigns
    obj = "CampaignMember"
    response = (("FirstRespondedDate", rules.response_time_field) if rules.response_time_field
                else ("FirstRespondedDate",))  # fmt: skip
    if not ex.require(obj, ("CampaignId",), ("LeadId", "ContactId"), response):
        return pd.DataFrame()
    day = ex.times(obj, "FirstRespondedDate")
    moment = ex.times(obj, rules.response_time_field).fillna(day)
    lead = links.resolve(ex.text(obj, "LeadId"), moment)
    lead = lead.fillna(links.resolve(ex.text(obj, "ContactId"), moment))
    campaign = ex.text(obj, "CampaignId")
    kinds = {k.strip().lower(): v for k, v in rules.types.items()}
    subtype, direction, channel = _none(len(lead)), _none(len(lead)), _none(len(lead))
    if ex.has("Campaign") and ex.require("Campaign", ("Id",)):
        camp = pd.DataFrame({"type": ex.text("Campaign", "Type"),
                             "direction": ex.text("Campaign", rules.direction_field).str.lower(),
                             "channel": ex.text("Campaign", rules.channel_field)},
                            ).set_axis(ex.text("Campaign", "Id").to_numpy())  # fmt: skip
        camp = camp[~camp.index.duplicated()]
        ctype = _at(campaign, camp["type"]).astype("string")
        key = ctype.str.lower()
        subtype = _at(key, pd.Series({k: v.subtype for k, v in kinds.items()}, dtype="string"))
        subtype = subtype.fillna(ctype)
        default = _at(key, pd.Series({k: v.direction for k, v in kinds.items()}, dtype="string"))
        given = _at(campaign, camp["direction"]).astype("string")
        direction = given.where(given.isin(["inbound", "outbound"]), default)
        channel = _at(campaign, camp["channel"]).astype("string")
    else:
        ex.notes.append("no Campaign file: touches carry no subtype or direction")
    out = pd.DataFrame({
        "event_id": ex.ids(obj), "lead_id": lead, "timestamp": moment, "type": "touch",
        "subtype": subtype, "channel": channel, "direction": direction,
    })  # fmt: skip
    unanswered = moment.isna().to_numpy()
    if unanswered.any():
        ex.notes.append(f"{int(unanswered.sum())} CampaignMember row(s) without a response "
                        "date: members, not touches")  # fmt: skip
    return _linked(ex, obj, out[~unanswered], "LeadId or ContactId")


def _opportunities(ex: _Export, links: _Links, lead_ids: pd.Series) -> pd.DataFrame:
    """One row per opportunity: id, lead_id, created, value, and its outcome moments."""
    obj = "Opportunity"
    if not ex.require(obj, ("Id",), ("CreatedDate",)):
        return pd.DataFrame()
    ids = ex.text(obj, "Id")
    lead = _at(ids, links.by_opportunity).astype("string")
    own = ex.mapping.outcomes.opportunity_lead_field
    if own and own in ex.columns(obj):
        named = ex.text(obj, own)
        lead = lead.fillna(named.where(named.isin(set(lead_ids)).fillna(False).astype(bool)))
    opp = pd.DataFrame({"id": ids, "lead_id": lead,
                        "created": ex.times(obj, "CreatedDate", required=True),
                        "value": ex.numbers(obj, "Amount")})  # fmt: skip
    rules = ex.mapping.outcomes
    won_at, lost_at = _nat(len(opp)), _nat(len(opp))
    history = pd.Series(False, index=opp.index)
    hist = "OpportunityHistory"
    if ex.has(hist) and ex.require(hist, ("OpportunityId",), ("StageName",), ("CreatedDate",)):
        rows = pd.DataFrame({"id": ex.text(hist, "OpportunityId"),
                             "stage": ex.text(hist, "StageName", outcome=True),
                             "at": ex.times(hist, "CreatedDate", required=True),
                             "amount": ex.numbers(hist, "Amount")})  # fmt: skip
        rows = rows.sort_values("at", kind="stable")
        history = opp["id"].isin(set(rows["id"])).fillna(False).astype(bool)
        first = rows.drop_duplicates("id").set_index("id")["amount"]
        opp["value"] = opp["value"].where(~history, _at(opp["id"], first))
        for stages, target in ((rules.won_stages, "won"), (rules.lost_stages, "lost")):
            hits = rows[rows["stage"].isin(stages).fillna(False).astype(bool)]
            moment = _at(opp["id"], hits.drop_duplicates("id").set_index("id")["at"])
            if target == "won":
                won_at = moment
            else:
                lost_at = moment
    fallback = ~history
    if fallback.any():
        close = ex.times(obj, "CloseDate", outcome=True)
        stage = ex.text(obj, "StageName", outcome=True)
        is_won = ex.raw(obj, "IsWon", outcome=True)
        is_closed = ex.raw(obj, "IsClosed", outcome=True)
        won = (_flag(is_won) if is_won is not None else pd.Series(pd.NA, dtype="boolean",
               index=opp.index)).fillna(stage.isin(rules.won_stages))  # fmt: skip
        closed = (_flag(is_closed) if is_closed is not None else pd.Series(
            pd.NA, dtype="boolean", index=opp.index)).fillna(
            stage.isin(rules.won_stages + rules.lost_stages))  # fmt: skip
        won = won.fillna(False).astype(bool) & fallback
        lost = closed.fillna(False).astype(bool) & ~won & fallback
        won_at = won_at.where(~won, close)
        lost_at = lost_at.where(~lost, close)
        if opp["value"][fallback].notna().any():
            ex.notes.append(f"{int(fallback.sum())} opportunit(ies) without OpportunityHistory: "
                            "valued at their current Amount, which may have changed after "
                            "they opened")  # fmt: skip
    opp["won_at"], opp["lost_at"] = won_at.to_numpy(), lost_at.to_numpy()
    unlinked = opp["lead_id"].isna()
    if unlinked.any():
        ex.notes.append(f"{int(unlinked.sum())} Opportunity row(s) are no lead's "
                        "ConvertedOpportunityId"
                        + (f" nor name one in {own}" if own else "") + ": not read")  # fmt: skip
    return opp[~unlinked.to_numpy()].reset_index(drop=True)


def _history(ex: _Export, obj: str, parent: str, resolve: Any) -> tuple[pd.DataFrame,
                                                                      pd.DataFrame]:  # fmt: skip
    """(field_update events, Status rows) of a field-history object."""
    if not ex.require(obj, (parent, "ParentId"), ("Field",), ("NewValue",), ("CreatedDate",)):
        return pd.DataFrame(), pd.DataFrame()
    owner = ex.first_of(obj, (parent, "ParentId"))
    field = ex.text(obj, "Field")
    at = ex.times(obj, "CreatedDate", required=True)
    new = ex.raw(obj, "NewValue", outcome=True)
    assert new is not None
    rows = pd.DataFrame({"event_id": ex.ids(obj), "lead_id": resolve(owner), "timestamp": at,
                         "field": field, "field_value": _text(new).to_numpy()})  # fmt: skip
    names = ex.mapping.history.get("Lead" if obj == "LeadHistory" else "Opportunity", {})
    mapped = _at(field, pd.Series(names, dtype="string"))
    known = set(names) | {"Status"} | PSEUDO_FIELDS
    other = sorted(set(field.dropna()) - known)
    if other:
        ex.notes.append(f"{obj} fields no mapping names, not read: {', '.join(other)}")
    updates = rows[mapped.notna().to_numpy()].assign(type="field_update",
                                                     field=mapped.dropna().to_numpy())  # fmt: skip
    status = rows[(field == "Status").fillna(False).astype(bool).to_numpy()]
    return _linked(ex, obj, updates, f"{parent} or ParentId"), status


def _events(ex: _Export, links: _Links, lead_ids: pd.Series
            ) -> tuple[pd.DataFrame | None, pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """(raw events or None without any event object, opportunities, LeadHistory Status rows)."""
    parts: list[pd.DataFrame] = []
    for obj in ("Task", "Event"):
        if ex.has(obj):
            parts.append(_activities(ex, obj, links))
    if ex.has("CampaignMember"):
        parts.append(_touches(ex, links))
    opps = pd.DataFrame()
    if ex.has("Opportunity"):
        opps = _opportunities(ex, links, lead_ids)
        if len(opps):
            parts.append(pd.DataFrame({
                "event_id": opps["id"], "lead_id": opps["lead_id"], "timestamp": opps["created"],
                "type": "opportunity_opened", "channel": "sales", "value": opps["value"],
            }))  # fmt: skip
    status = pd.DataFrame()
    if ex.has("LeadHistory"):
        updates, status = _history(ex, "LeadHistory", "LeadId",
                                   lambda ids: ids.where(ids.isin(links.lead_ids)))  # fmt: skip
        parts.append(updates)
    if ex.has("OpportunityFieldHistory"):
        opp_lead = opps.set_index("id")["lead_id"] if len(opps) else pd.Series(dtype="string")
        updates, _ = _history(ex, "OpportunityFieldHistory", "OpportunityId",
                              lambda ids: _at(ids, opp_lead).astype("string"))  # fmt: skip
        parts.append(updates)
    if not any(ex.has(o) for o in EVENT_OBJECTS):
        return None, opps, status
    parts = [p for p in parts if len(p)]
    if not parts:
        empty: dict[str, list[str]] = {c: [] for c in ("event_id", "lead_id", "timestamp", "type")}
        return pd.DataFrame(empty), opps, status
    return pd.concat(parts, ignore_index=True), opps, status
