"""Reading a Salesforce export: a folder of object files as canonical tables.

Files are named by object API name (CSV, Parquet or Excel, any letter case), columns by field
API name; only `Lead` is required. What an org customises (custom fields, picklist values, SQL
statuses, closed stages, campaign and activity types) is in the mapping file,
`config/salesforce.yaml`. Standard fields read:

* Lead: Id, CreatedDate, LeadSource, OwnerId, Company, Industry, NumberOfEmployees,
  AnnualRevenue, Country, Title; ConvertedAccountId / ConvertedContactId /
  ConvertedOpportunityId (links only), ConvertedDate (SQL fallback only);
* Account: Id, Name, Industry, NumberOfEmployees, AnnualRevenue, BillingCountry;
  Contact: Id, AccountId, Title;
* Opportunity: Id, CreatedDate, Amount; StageName, IsWon, IsClosed, CloseDate (outcome fallback
  only); OpportunityHistory: OpportunityId, StageName, Amount, CreatedDate;
* Task / Event: Id, WhoId, WhatId, Type, TaskSubtype / EventSubtype, CallType, CreatedDate,
  CompletedDateTime / EndDateTime, and the mapped outcome fields;
* CampaignMember: Id, LeadId, ContactId, CampaignId, FirstRespondedDate; Campaign: Id, Type;
* LeadHistory / OpportunityFieldHistory: LeadId / OpportunityId (or ParentId), Field,
  NewValue, CreatedDate.

How they become canonical tables:

* a converted lead takes its account's and contact's firmographics (ConvertedAccountId,
  ConvertedContactId present in the export); any other lead gets an account and a contact of its
  own, `lead:<Id>`, from the fields on the Lead itself, so that no fit field is lost. The fact
  of conversion is never a feature;
* Title gives role, seniority and buyer role (config/titles.yaml) unless a mapped custom field
  records them; NumberOfEmployees / AnnualRevenue fall into the bands features.yaml declares;
* Tasks and Events are `sales_activity` events at the later of CreatedDate and the moment they
  were done (CompletedDateTime, EndDateTime), never at ActivityDate (a due date). A Task on a
  contact belongs to the lead converted into that contact (with several, the latest created
  before the activity). Tasks of the mapped web-session Type are `web_session` events;
* CampaignMember responses are `touch` events at the response time (FirstRespondedDate, a date:
  the end of that day, unless a mapped date-time field says more);
* opportunities are `opportunity_opened` events at CreatedDate, valued at the Amount of their
  first OpportunityHistory row (the amount when opened; the current Amount only without history);
* mapped LeadHistory / OpportunityFieldHistory rows are dated `field_update` events: history is
  the only way a changing field reaches a feature;
* outcomes: SQL at the first LeadHistory Status change into a mapped SQL status (else
  ConvertedDate), lost at one into a lost status; won / lost at the first OpportunityHistory row
  reaching a closed stage (else CloseDate with IsWon / IsClosed);
* current state (Status, Rating, IsConverted, scores, StageName, IsWon, ...) reaches no leads,
  accounts, contacts or events column: at most an outcome, or the outcomes table's
  `lead_status` / `opportunity_stage` (read by no feature). A column no mapping names is listed
  in a note, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import CrmData, parse_timestamps
from leadscore.features.schema import DataContractError, schemas
from leadscore.features.sources.canonical import SourceMeta, from_frames
from leadscore.features.sources.common import load_title_rules, to_band
from leadscore.features.sources.salesforce.events import _events
from leadscore.features.sources.salesforce.export import _Export, _find_objects
from leadscore.features.sources.salesforce.frames import (
    _at,
    _example,
    _links,
    _lookup,
    _nat,
    _none,
    _text,
)
from leadscore.features.sources.salesforce.mapping import (
    _TABLE,
    OBJECTS,
    SalesforceMap,
    load_mapping,
)
from leadscore.features.yamlfile import load_yaml

SYNTHETIC = "lead:"  # id prefix of the account and contact made from an unconverted lead
NOT_RECORDED = "not_recorded"  # lead source of a lead without LeadSource


def is_salesforce_export(root: Path) -> bool:
    """A folder holding a `Lead` object file (Lead.csv, .parquet or .xlsx)."""
    return "Lead" in _find_objects(root)


def _given(values: pd.Series, placeholders: Iterable[str],
           declared: Iterable[str] = ()) -> pd.Series:  # fmt: skip
    """Where a value is given: not empty, nor a placeholder the column does not declare."""
    empty = {p.strip().lower() for p in placeholders} - {d.lower() for d in declared}
    text = _text(values)
    return (text.notna() & ~text.str.lower().isin(empty)).fillna(False).astype(bool)


def _mapped(ex: _Export, obj: str, entity: str, out: pd.DataFrame) -> None:
    """Fill `out` with the mapped fields of `entity` this object holds (a value wins)."""
    columns = {c.name: c for c in schemas(ex.config)[_TABLE[entity]].columns}
    for api, target in ex.mapping.fields.items():
        ent, column = target.split(".")
        if ent != entity or api not in ex.columns(obj):
            continue
        values = ex.text(obj, api)
        declared = columns[column].vocabulary or () if column in columns else ()
        here = _given(values, ex.config.placeholders, declared).to_numpy()
        base = out[column] if column in out.columns else _none(len(out))
        out[column] = values.where(here, base.astype("string").to_numpy())


def _firmographics(ex: _Export, obj: str, name: str, country: str) -> pd.DataFrame:
    m = ex.mapping.values
    out = pd.DataFrame({
        "company_name": ex.text(obj, name),
        "industry": _lookup(ex.text(obj, "Industry"), m.industry),
        "region": _lookup(ex.text(obj, country), m.region),
    })  # fmt: skip
    for column, field in (("employee_band", "NumberOfEmployees"),
                          ("revenue_band", "AnnualRevenue")):  # fmt: skip
        numbers = ex.numbers(obj, field)
        order = ex.config.order_of(f"account.{column}")
        if order:
            out[column] = to_band(numbers, order).to_numpy()
        else:
            out[column] = _none(len(out))
            if numbers.notna().any():
                ex.notes.append(f"{obj}.{field} not read: features.yaml declares no order "
                                f"(bands) for account.{column}")  # fmt: skip
    _mapped(ex, obj, "account", out)
    return out


def _people(ex: _Export, obj: str) -> pd.DataFrame:
    title = ex.text(obj, "Title")
    out = load_title_rules().classify(title.reset_index(drop=True))
    out.insert(0, "job_title", title.to_numpy())
    _mapped(ex, obj, "contact", out)
    return out.reset_index(drop=True)


def _first_into(status: pd.DataFrame, values: Iterable[str], lead_ids: pd.Series) -> pd.Series:
    if status.empty:
        return _nat(len(lead_ids))
    wanted = {v.strip().lower() for v in values}
    hits = status[status["field_value"].str.lower().isin(wanted).fillna(False).astype(bool)]
    first = hits.dropna(subset=["lead_id"]).groupby("lead_id")["timestamp"].min()
    return _at(lead_ids, first).astype("datetime64[ns]")


def load_salesforce(root: Path, config: FeatureConfig, mapping: Path | None = None) -> CrmData:
    """Load and validate a Salesforce export folder (only `Lead` is required)."""
    rules = load_mapping(mapping, config)
    ex = _Export(root, rules, config)
    if not ex.has("Lead"):
        raise DataContractError([f"{root}: no Lead file (Lead.csv, .parquet or .xlsx); a "
                                 "Salesforce export holds one file per object"])  # fmt: skip
    if not ex.require("Lead", ("Id",), ("CreatedDate",)):
        raise DataContractError(ex.problems)
    lead_ids = ex.text("Lead", "Id")
    raw_ids = ex.raw("Lead", "Id")
    assert raw_ids is not None
    repeated = lead_ids.duplicated(keep=False) & lead_ids.notna()
    for bad, what in ((lead_ids.isna(), "are empty"), (repeated, "repeat an Id")):
        if bad.any():
            ex.problems.append(f"{ex.where('Lead')}: column Id: {int(bad.sum())} row(s) "
                               f"{what} ({_example(raw_ids, bad)}); expected each lead's Id "
                               "once")  # fmt: skip
    created = ex.times("Lead", "CreatedDate", required=True)
    # conversion ids are current state: they find a lead's records (activities moved to its
    # contact, its opportunity) and firmographics, and are no feature. Listed as current_state,
    # they still link records, but every lead's firmographics come from the Lead itself.
    link = {f: ex.text("Lead", f"Converted{f}Id", outcome=True)
            for f in ("Contact", "Opportunity")}  # fmt: skip
    links = _links(lead_ids, created, link["Contact"], link["Opportunity"])
    converted = {f: ex.text("Lead", f"Converted{f}Id") for f in ("Account", "Contact")}
    raw = _entities(ex, lead_ids, created, converted)
    events, opps, status = _events(ex, links, lead_ids)
    outcomes = _outcomes(ex, lead_ids, opps, status, link["Opportunity"])
    if ex.problems:
        raise DataContractError(ex.problems)
    if events is not None:
        raw["events"] = events
    if outcomes is not None:
        raw["outcomes"] = outcomes
    origin = f"Salesforce export {root}"
    origins = {
        "leads": ex.where("Lead"), "accounts": f"{origin} [Account, Lead]",
        "contacts": f"{origin} [Contact, Lead]",
        "events": f"{origin} [Task, Event, CampaignMember, Opportunity, field histories]",
        "outcomes": f"{origin} [LeadHistory, Lead, OpportunityHistory, Opportunity]",
    }  # fmt: skip
    crm = from_frames(raw, config, origins=origins, observation_end=_observation_end(root, rules),
                      source=f"salesforce:{root}")  # fmt: skip
    crm.notes[:0] = _notes(ex)
    return crm


def _entities(ex: _Export, lead_ids: pd.Series, created: pd.Series,
              converted: dict[str, pd.Series]) -> dict[str, pd.DataFrame]:  # fmt: skip
    """Raw accounts, contacts and leads: a converted lead's own account and contact when the
    export has them, else ones made from the Lead itself (`lead:<Id>`)."""
    accounts = pd.DataFrame({"account_id": pd.Series([], dtype="string")})
    if ex.has("Account") and ex.require("Account", ("Id",)):
        accounts = _firmographics(ex, "Account", "Name", "BillingCountry")
        accounts.insert(0, "account_id", ex.text("Account", "Id").to_numpy())
        accounts = accounts.dropna(subset=["account_id"]).drop_duplicates("account_id")
    contacts = pd.DataFrame({"contact_id": pd.Series([], dtype="string")})
    if ex.has("Contact") and ex.require("Contact", ("Id",)):
        contacts = _people(ex, "Contact")
        contacts.insert(0, "contact_id", ex.text("Contact", "Id").to_numpy())
        contacts.insert(1, "account_id", ex.text("Contact", "AccountId").to_numpy())
        contacts = contacts.dropna(subset=["contact_id"]).drop_duplicates("contact_id")
        known = set(accounts["account_id"])
        orphan = contacts["account_id"].notna() & ~contacts["account_id"].isin(known)
        if orphan.any():
            contacts.loc[orphan, "account_id"] = pd.NA
            ex.notes.append(f"{int(orphan.sum())} Contact row(s) name an AccountId not in the "
                            "export: read without an account")  # fmt: skip
    own = SYNTHETIC + lead_ids
    account, contact = converted["Account"], converted["Contact"]
    real_account = account.isin(set(accounts["account_id"])).fillna(False).astype(bool)
    real_contact = contact.isin(set(contacts["contact_id"])).fillna(False).astype(bool)
    lead_account = account.where(real_account, own)
    lead_contact = contact.where(real_contact, own)
    firmo = _firmographics(ex, "Lead", "Company", "Country")
    firmo.insert(0, "account_id", own.to_numpy())
    people = _people(ex, "Lead")
    people.insert(0, "contact_id", own.to_numpy())
    people.insert(1, "account_id", lead_account.to_numpy())
    source = _lookup(ex.text("Lead", "LeadSource"), ex.mapping.values.lead_source)
    if source.isna().any():
        ex.notes.append(f"{int(source.isna().sum())} lead(s) without LeadSource: source "
                        f"{NOT_RECORDED!r}")  # fmt: skip
    leads = pd.DataFrame({
        "lead_id": lead_ids, "account_id": lead_account, "contact_id": lead_contact,
        "created_at": created, "source": source.fillna(NOT_RECORDED),
        "owner": ex.text("Lead", "OwnerId"),
    })  # fmt: skip
    _mapped(ex, "Lead", "lead", leads)
    return {
        "accounts": pd.concat([accounts, firmo[~real_account.to_numpy()]], ignore_index=True),
        "contacts": pd.concat([contacts, people[~real_contact.to_numpy()]], ignore_index=True),
        "leads": leads,
    }


def _outcomes(ex: _Export, lead_ids: pd.Series, opps: pd.DataFrame, status: pd.DataFrame,
              converted_opp: pd.Series) -> pd.DataFrame | None:  # fmt: skip
    """sql_at, won_at, lost_at of each lead (None when the export holds no outcome at all),
    with the current Status and stage for people (no feature reads outcomes)."""
    rules = ex.mapping.outcomes
    if not (ex.has("LeadHistory") or ex.has("Opportunity")
            or "ConvertedDate" in ex.columns("Lead")):  # fmt: skip
        return None
    sql_at = _first_into(status, rules.sql_statuses, lead_ids)
    sql_at = sql_at.fillna(ex.times("Lead", "ConvertedDate", outcome=True))
    lost_at = _first_into(status, rules.lost_statuses, lead_ids)
    won_at = _nat(len(lead_ids))
    stage = _none(len(lead_ids))
    if len(opps):
        by_lead = opps.groupby("lead_id")
        won_at = _at(lead_ids, by_lead["won_at"].min()).astype("datetime64[ns]")
        opp_lost = _at(lead_ids, by_lead["lost_at"].min()).astype("datetime64[ns]")
        lost_at = pd.concat([lost_at, opp_lost], axis=1).min(axis=1)
    if ex.has("Opportunity"):
        current = pd.Series(ex.text("Opportunity", "StageName", outcome=True).to_numpy(),
                            index=ex.text("Opportunity", "Id").to_numpy())  # fmt: skip
        stage = _at(converted_opp, current).astype("string")
    return pd.DataFrame({
        "lead_id": lead_ids, "sql_at": sql_at.to_numpy(), "won_at": won_at.to_numpy(),
        "lost_at": lost_at.to_numpy(),
        "lead_status": ex.text("Lead", "Status", outcome=True), "opportunity_stage": stage,
    })  # fmt: skip


def _notes(ex: _Export) -> list[str]:
    read = ", ".join(f"{o} ({ex.rows(o)})" for o in OBJECTS if ex.has(o))
    notes = [f"Salesforce export, objects read (rows): {read}"]
    absent = [o for o in OBJECTS if o not in ex.paths]
    if absent:
        notes.append(f"objects absent from the export: {', '.join(absent)}")
    notes += ex.notes
    unnamed = ex.unnamed()
    if unnamed:
        notes.append(f"columns no mapping names, not read: {', '.join(unnamed)} (name them in "
                     "salesforce.yaml: fields, current_state or ignore)")  # fmt: skip
    state = [f"{o}.{c}" for o in ex.frames for c in ex.columns(o) if c in ex.mapping.state(o)]
    if state:
        notes.append(f"current state, never a feature (outcomes at most): {', '.join(state)}")
    return notes


def _observation_end(root: Path, mapping: SalesforceMap) -> pd.Timestamp | None:
    meta_file = root / "source.yaml"
    moment: Any = None
    if meta_file.is_file():
        moment = load_yaml(meta_file, SourceMeta, "source description").observation_end
    if moment is None:
        moment = mapping.observation_end
    if moment is None:
        return None
    return pd.Timestamp(parse_timestamps(pd.Series([moment])).iloc[0])
