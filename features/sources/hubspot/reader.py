"""Reading a HubSpot export: :func:`is_hubspot_export` and :func:`load_hubspot`.

What is read from where is the mapping, `hubspot.yaml` (the packaged default or your own); the
export folder's shape is documented at its top. In short:

* every contact is a lead: `hs_object_id` -> lead_id, `createdate` -> created_at,
  `hs_analytics_source` -> source, `hubspot_owner_id` -> owner; its primary company
  (`associatedcompanyid`, else the contact-company association) is the account, with
  `numberofemployees` and `annualrevenue` put into the declared bands and `country` mapped to a
  region; `jobtitle` goes through titles.yaml, properties the mapping names winning;
* calls, emails, meetings and logged messages become sales activities (or touches: SDR
  prospecting, anything inbound) at their `hs_timestamp`; form submissions are inbound
  touches, marketing emails sent outbound touches; web sessions `web_session` events; each
  deal's creation an `opportunity_opened` event valued at its first amount;
* the property history (`propertiesWithHistory`, one JSON object per line) becomes dated
  `field_update` events for the properties the mapping names, and dates the outcomes: SQL is
  the first time `lifecyclestage` reached salesqualifiedlead or later (fallback: the lifecycle
  date properties), won/lost an associated deal entering a won/lost stage (fallback:
  `closedate` with `hs_is_closed_won` / the current stage);
* current state (`lifecyclestage`, `hs_lead_status`, `hubspotscore`, `dealstage`, ...) goes to
  the outcomes table only, never to a column a feature reads; the mapping refuses to map it;
* every column no mapping names is listed in the notes, never silently dropped.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import CrmData, parse_timestamps
from leadscore.features.schema import schemas
from leadscore.features.sources.canonical import SourceMeta, from_frames
from leadscore.features.sources.common import load_title_rules, to_band
from leadscore.features.sources.hubspot.events import (
    _activities,
    _deals,
    _field_updates,
    _history,
    _touches,
)
from leadscore.features.sources.hubspot.export import _Export, _find, _first, _frame, _moments_of
from leadscore.features.sources.hubspot.mapping import (
    HISTORY_FILE,
    Coded,
    HubSpotMapping,
    load_mapping,
)
from leadscore.features.sources.hubspot.values import _shown
from leadscore.features.yamlfile import load_yaml

# Files only a HubSpot export has (default names): with a `contacts` file, one of them marks
# a folder as HubSpot's rather than a canonical directory (which has `leads`).
HUBSPOT_FILES = (
    "companies", "deals", "calls", "emails", "meetings", "communications", "notes", "tasks",
    "associations", "form_submissions", "marketing_email_events", "web_sessions",
)  # fmt: skip


def is_hubspot_export(root: Path) -> bool:
    """A folder with a `contacts` table and a file only HubSpot exports have (`companies`,
    `deals`, an activity file, `associations`, ..., `property_history.jsonl`), and no `leads`
    table (that is a canonical directory)."""
    if not root.is_dir() or _find(root, "leads") is not None or _find(root, "contacts") is None:
        return False
    return (root / HISTORY_FILE).is_file() or any(_find(root, s) for s in HUBSPOT_FILES)


def _columns_of(config: FeatureConfig) -> dict[str, set[str]]:
    tables = schemas(config)
    skip = {"account_id", "contact_id", "lead_id", "created_at", "source", "owner"}
    return {name: {c.name for c in tables[name].columns} - skip
            for name in ("accounts", "contacts", "leads")}  # fmt: skip


def _people(ex: _Export) -> tuple[dict[str, pd.DataFrame], Path, pd.DataFrame]:
    """leads and contacts from the contacts file (and the contacts file's text)."""
    m, config = ex.m.contacts, ex.config
    found = ex.read(m.file, required=True)
    assert found is not None  # required: read raises instead
    frame, path = found
    ids = ex.require(frame, path, m.id, "the contact id, the lead_id")
    created = ex.moments(ex.require(frame, path, m.created_at, "the lead's created_at"),
                         f"{path}: property {m.created_at}")  # fmt: skip
    source_raw = ex.require(frame, path, m.source.property or "hs_analytics_source",
                            "the lead's source")  # fmt: skip
    ex.check()
    source = ex.decoded(m.source, source_raw, f"{path}: property {m.source.property}")
    company = ex.column(frame, path, m.company)
    pairs = ex.links("contacts", "companies")
    if len(pairs):
        from_links = ids.map(_first(pairs, "contacts", "companies")).astype("string")
        multi = ids.isin(pairs.loc[pairs["contacts"].duplicated(), "contacts"]) & company.isna()
        if multi.any():
            ex.notes.append(f"{path}: {int(multi.sum())} contact(s) associated with several "
                            f"companies and no {m.company}: the first association is the account")
        company = company.fillna(from_links)
    job_title = ex.column(frame, path, m.job_title)
    contacts = _frame(len(frame), contact_id=ids, account_id=company, job_title=job_title)
    titles = load_title_rules().classify(job_title)
    for col in titles.columns:
        contacts[col] = titles[col].to_numpy()
    leads = _frame(len(frame), lead_id=ids, account_id=company, contact_id=ids,
                   created_at=created, source=source,
                   owner=ex.column(frame, path, m.owner))  # fmt: skip
    ex.name(path, m.email, *m.ignore, *ex.m.state("contacts"), *ex.m.lifecycle.sql_date_properties)
    cols = _columns_of(config)
    tables = {"contacts": contacts, "leads": leads}
    for target, coded in m.fields.items():
        table = next((t for t in ("contacts", "leads") if target in cols[t]), None)
        where = f"{path}: property {coded.property}"
        if table is None:
            ex.name(path, coded.property)
            ex.notes.append(f"hubspot.yaml maps {coded.property} to {target}, which is no contact "
                            "or lead column of features.yaml's contract: not read")  # fmt: skip
            continue
        if coded.property not in frame.columns:
            ex.name(path, coded.property)
            continue
        entity = "contact" if table == "contacts" else "lead"
        values = _field(ex, coded, ex.column(frame, path, coded.property), where,
                        f"{entity}.{target}")  # fmt: skip
        current = tables[table].get(target)
        tables[table][target] = values if current is None else values.fillna(current)
    missing = [c.property for c in m.fields.values()
               if c.property and c.property not in frame.columns]  # fmt: skip
    if missing:
        ex.notes.append(f"{path}: mapped properties absent, read as empty: {_shown(missing, 8)}")
    return tables, path, frame


def _field(ex: _Export, coded: Coded, raw: pd.Series, where: str, qualified: str) -> pd.Series:
    if not coded.bands:
        return ex.decoded(coded, raw, where)
    order = ex.config.order_of(qualified)
    if not order:
        ex.notes.append(f"{where}: features.yaml declares no band order for {qualified}: the "
                        "numbers are kept as they are")  # fmt: skip
        return raw
    banded = to_band(ex.numbers(raw, where), order)
    outside = int((raw.notna() & banded.isna()).sum())
    if outside:
        ex.notes.append(f"{where}: {outside} value(s) in no band of {list(order)}: read as empty")
    return banded


def _accounts(ex: _Export) -> tuple[pd.DataFrame, Path] | None:
    m = ex.m.companies
    found = ex.read(m.file)
    if found is None:
        return None
    frame, path = found
    ids = ex.require(frame, path, m.id, "the company id, the account_id")
    ex.name(path, *m.ignore, *ex.m.state("companies"))
    accounts = _frame(len(frame), account_id=ids)
    cols = _columns_of(ex.config)["accounts"]
    for target, coded in m.fields.items():
        ex.name(path, coded.property)
        if target not in cols:
            ex.notes.append(f"hubspot.yaml maps {coded.property} to {target}, which is no account "
                            "column of features.yaml's contract: not read")  # fmt: skip
            continue
        if coded.property in frame.columns:
            accounts[target] = _field(ex, coded, frame[str(coded.property)],
                                      f"{path}: property {coded.property}", f"account.{target}")
    missing = [c.property for c in m.fields.values()
               if c.property and c.property not in frame.columns]  # fmt: skip
    if missing:
        ex.notes.append(f"{path}: mapped properties absent, read as empty: {_shown(missing, 8)}")
    return accounts, path


def _sql_at(ex: _Export, ids: pd.Series, frame: pd.DataFrame, path: Path,
            history: pd.DataFrame) -> pd.Series:  # fmt: skip
    lm = ex.m.lifecycle
    stages = history[(history["object"] == "contacts") & (history["property"] == lm.property)]
    sql = stages[stages["value"].str.casefold().isin([s.casefold() for s in lm.sql_stages])
                 .fillna(False)]  # fmt: skip
    from_history = _moments_of(ids, _first(sql, "id", "timestamp"))
    dates = [ex.moments(ex.column(frame, path, p), f"{path}: property {p}")
             for p in lm.sql_date_properties]  # fmt: skip
    if not dates:
        return from_history
    return from_history.fillna(pd.concat(dates, axis=1).min(axis=1).astype("datetime64[ns]"))


def _event_files(m: HubSpotMapping) -> set[str]:
    files = {obj.file or name for name, obj in m.activities.objects.items()}
    return files | {m.form_submissions.file, m.marketing_email_events.file, m.web_sessions.file,
                    m.deals.file}  # fmt: skip


def load_hubspot(root: Path, config: FeatureConfig, mapping: Path | None = None) -> CrmData:
    """Read and validate a HubSpot export folder (`contacts` required), mapped by
    `hubspot.yaml` (default: in the config directory) or the `mapping` file given."""
    ex = _Export(root, load_mapping(mapping), config)
    people, contacts_path, contacts_file = _people(ex)
    leads = people["leads"]
    lead_ids = pd.Index(leads["lead_id"].dropna())
    history = _history(ex)
    raw: dict[str, pd.DataFrame] = {"leads": leads, "contacts": people["contacts"]}
    origins = {"leads": str(contacts_path), "contacts": str(contacts_path)}
    accounts = _accounts(ex)
    if accounts is not None:
        raw["accounts"], origins["accounts"] = accounts[0], str(accounts[1])
    email = ex.column(contacts_file, contacts_path, ex.m.contacts.email)
    emails = pd.Series(email.to_numpy(), index=leads["lead_id"].to_numpy(), dtype="string")
    parts = _activities(ex, lead_ids) + _touches(ex, lead_ids, emails.dropna())
    deal_events, closed = _deals(ex, lead_ids, history)
    parts += [*deal_events, _field_updates(ex, history, leads)]
    parts = [p for p in parts if len(p)]
    if parts:
        raw["events"] = pd.concat(parts, ignore_index=True)
    elif len(history) or any(p.stem in _event_files(ex.m) for p in ex.columns):
        raw["events"] = pd.DataFrame({c: pd.Series([], dtype="object")
                                      for c in ("event_id", "lead_id", "timestamp", "type")})
    origins["events"] = f"{root} [activities, forms, email events, sessions, deals, history]"
    outcomes = _frame(len(leads), lead_id=leads["lead_id"],
                      sql_at=_sql_at(ex, leads["lead_id"], contacts_file, contacts_path, history))
    indexed = closed.set_index("lead_id")
    outcomes["won_at"] = leads["lead_id"].map(indexed["won_at"]).to_numpy()
    outcomes["lost_at"] = leads["lead_id"].map(indexed["lost_at"]).to_numpy()
    for prop in sorted(ex.m.state("contacts")):
        if prop in contacts_file.columns:
            outcomes[prop] = contacts_file[prop].to_numpy()
    raw["outcomes"], origins["outcomes"] = outcomes, f"{contacts_path} [lifecycle], deals"
    ex.check()
    ex.unnamed_columns()
    end = None
    meta = root / "source.yaml"
    if meta.is_file():
        given = load_yaml(meta, SourceMeta, "source description").observation_end
        if given is not None:
            end = parse_timestamps(pd.Series([given])).iloc[0]
    crm = from_frames(raw, config, origins=origins, observation_end=end, source=f"hubspot:{root}")
    events_n = len(crm.events)
    crm.notes[:0] = [f"HubSpot export: {len(crm.leads)} contacts (leads), {len(crm.accounts)} "
                     f"companies, {events_n} events", *ex.notes]  # fmt: skip
    return crm
