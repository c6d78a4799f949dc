"""Writing canonical data as a HubSpot export: :func:`write_hubspot`, with HubSpot's
current-state traps filled from the outcomes; read back, it gives the same features and
outcomes."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import CrmData
from leadscore.features.sources.common import number_in
from leadscore.features.sources.hubspot.mapping import (
    Coded,
    HubSpotMapping,
    load_mapping,
    object_type,
)
from leadscore.features.sources.hubspot.values import (
    _DIRECTIONS,
    _activity,
    _iso_moment,
    _Known,
    _shown,
    decode,
    encodings,
)

_SITE = "https://www.example.com"


def _iso(values: pd.Series) -> pd.Series:
    return pd.Series([_iso_moment(v) for v in values], index=values.index, dtype="object")


def _number_text(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _plain(values: pd.Series) -> pd.Series:
    """Canonical values as export text: booleans true/false, whole numbers without '.0'."""
    if pd.api.types.is_bool_dtype(values):
        return values.map(lambda v: None if pd.isna(v) else ("true" if v else "false"))
    if pd.api.types.is_numeric_dtype(values):
        return values.map(_number_text)
    return values.astype(object).where(values.notna(), None)


def _encode(coded: Coded, values: pd.Series, what: str, known: Iterable[str] = ()) -> pd.Series:
    """Canonical values as the raw values the mapping reads back as them."""
    known = tuple(known)
    table: dict[Any, Any] = {}
    for value in values.dropna().unique():
        found = encodings(coded, str(value), known)
        if not found:
            raise ValueError(f"{what}: {value!r} has no HubSpot value in hubspot.yaml that reads "
                             "back as it")  # fmt: skip
        table[value] = found[0]
    return values.map(table).astype(object).where(values.notna(), None)


def _bands_as_numbers(values: pd.Series) -> pd.Series:
    def one(band: Any) -> str | None:
        if band is None or pd.isna(band):
            return None
        try:
            return _number_text(number_in(str(band)))
        except ValueError:
            return None

    return values.map(one).astype(object)


class _Writer:
    """Canonical data as the files of a HubSpot export."""

    def __init__(self, crm: CrmData, mapping: HubSpotMapping, config: FeatureConfig):
        self.crm, self.m, self.config = crm, mapping, config
        self.known = _Known(config)
        self.files: dict[str, dict[str, list[Any]]] = {}
        # (object, id) -> property -> [(moment, entry)]
        self.history: dict[tuple[str, str], dict[str, list[tuple[Any, dict[str, Any]]]]] = {}
        self.links: list[tuple[str, str, str, str]] = []

    def add(self, file: str, rows: pd.DataFrame) -> None:
        table = self.files.setdefault(file, {})
        n = len(next(iter(table.values()))) if table else 0
        for col in rows.columns:
            table.setdefault(col, [None] * n)
        for col in table:
            table[col].extend(rows[col].tolist() if col in rows.columns else [None] * len(rows))

    def entry(self, obj: str, oid: str, prop: str, value: Any, when: Any, source: str) -> None:
        self.history.setdefault((obj, oid), {}).setdefault(prop, []).append(
            (pd.Timestamp(when), {"value": value, "timestamp": _iso_moment(when),
                                  "sourceType": source})
        )  # fmt: skip

    # -- the records

    def contacts(self) -> None:
        crm, m = self.crm, self.m.contacts
        leads = crm.leads.reset_index(drop=True)
        people = crm.contacts.drop_duplicates("contact_id").set_index("contact_id")
        person = people.reindex(leads["contact_id"]).reset_index(drop=True)
        ids = leads["lead_id"].astype(str)
        out = pd.DataFrame({m.id[0]: ids, m.created_at: _iso(leads["created_at"])})
        out[m.source.property or "hs_analytics_source"] = _encode(
            m.source, leads["source"], f"lead source ({m.source.property})")
        if m.owner:
            out[m.owner] = _plain(leads["owner"])
        if m.job_title and "job_title" in person:
            out[m.job_title] = _plain(person["job_title"])
        if m.company:
            out[m.company] = _plain(leads["account_id"])
        if m.email:
            out[m.email] = ids + "@example.com"
        for target, coded in m.fields.items():
            table = person if target in person.columns else leads
            if target not in table.columns or coded.property is None:
                continue
            entity = "contact" if table is person else "lead"
            if coded.bands:
                out[coded.property] = _bands_as_numbers(table[target])
            else:
                out[coded.property] = _encode(coded, _plain(table[target]), f"{entity}.{target}")
        for lead, account in zip(ids, leads["account_id"], strict=True):
            if not pd.isna(account):
                self.links.append(("contacts", lead, "companies", str(account)))
        self.add(m.file, self.traps(out, leads, ids))

    def traps(self, out: pd.DataFrame, leads: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
        """The current state HubSpot shows today, filled from the final outcomes, and the
        lifecycle history that dates the SQL moment."""
        oc = self.crm.outcomes.drop_duplicates("lead_id").set_index("lead_id")
        sql = ids.map(oc["sql_at"]) if "sql_at" in oc else pd.Series(pd.NaT, index=ids.index)
        won = ids.map(oc["won_at"]) if "won_at" in oc else pd.Series(pd.NaT, index=ids.index)
        lost = ids.map(oc["lost_at"]) if "lost_at" in oc else pd.Series(pd.NaT, index=ids.index)
        opps = self.crm.events[self.crm.events["type"] == "opportunity_opened"]
        deals = opps.groupby("lead_id").size()
        opened_at = {lead: sorted(group) for lead, group in opps.groupby("lead_id")["timestamp"]}
        stage, status, score, tier, opp_date, cust_date = [], [], [], [], [], []
        for i, lead in enumerate(ids):
            created, s, w, lo = leads["created_at"].iloc[i], sql.iloc[i], won.iloc[i], lost.iloc[i]
            self.entry("contacts", lead, self.m.lifecycle.property, "lead", created, "FORM")
            current, opened, customer = "lead", None, None
            if pd.notna(s):
                self.entry("contacts", lead, self.m.lifecycle.property, "salesqualifiedlead", s,
                           "CRM_UI")  # fmt: skip
                current = "salesqualifiedlead"
                opened = next((t for t in opened_at.get(lead, ()) if t >= s), None)
                if opened is not None:
                    self.entry("contacts", lead, self.m.lifecycle.property, "opportunity",
                               opened, "DEALS")  # fmt: skip
                    current = "opportunity"
                if pd.notna(w) and w >= s:
                    customer = w
                    self.entry("contacts", lead, self.m.lifecycle.property, "customer", w, "DEALS")
                    current = "customer"
            stage.append(current)
            opp_date.append(_iso_moment(opened))
            cust_date.append(_iso_moment(customer))
            # what the CRM says today: the final outcome, whatever the snapshot's as_of
            now = (("CONNECTED", "95", "tier_1") if pd.notna(w) else
                   ("UNQUALIFIED", "35", "tier_4") if pd.notna(lo) else
                   ("OPEN_DEAL", "70", "tier_2") if pd.notna(s) else ("NEW", "10", "tier_3"))
            status.append(now[0])
            score.append(now[1])
            tier.append(now[2])
        out = out.copy()
        out[self.m.lifecycle.property] = stage
        out["hs_lead_status"] = status
        out["hubspotscore"] = score
        out["hs_predictivescoringtier"] = tier
        out["num_associated_deals"] = ids.map(deals).fillna(0).astype(int).astype(str).to_numpy()
        out["hs_lifecyclestage_salesqualifiedlead_date"] = _iso(sql).to_numpy()
        out["hs_lifecyclestage_opportunity_date"] = opp_date
        out["hs_lifecyclestage_customer_date"] = cust_date
        return out

    def companies(self) -> None:
        m = self.m.companies
        accounts = self.crm.accounts
        if not len(accounts):
            return
        out = pd.DataFrame({m.id[0]: accounts["account_id"].astype(str).to_numpy()})
        for target, coded in m.fields.items():
            if target not in accounts.columns or coded.property is None:
                continue
            values = accounts[target].reset_index(drop=True)
            out[coded.property] = (_bands_as_numbers(values) if coded.bands else
                                   _encode(coded, _plain(values), f"account.{target}"))
        self.add(m.file, out)

    def deals(self, opps: pd.DataFrame) -> None:
        dm = self.m.deals
        oc = self.crm.outcomes.drop_duplicates("lead_id").set_index("lead_id")
        opps = opps.sort_values(["timestamp", "event_id"], kind="stable")
        first = set(opps.drop_duplicates("lead_id")["event_id"])
        decided = oc[oc[[c for c in ("won_at", "lost_at") if c in oc]].notna().any(axis=1)]
        orphans = sorted(set(decided.index) - set(opps["lead_id"]))
        if orphans:
            raise ValueError(f"{len(orphans)} lead(s) won or lost without an opportunity_opened "
                             f"event ({_shown(orphans)}): HubSpot records a win on a deal")
        stages = oc.get("opportunity_stage")
        rows = []
        for deal, lead, created, value in zip(opps["event_id"], opps["lead_id"],
                                              opps["timestamp"], opps["value"], strict=True):
            won = oc["won_at"].get(lead) if deal in first and "won_at" in oc else None
            lost = oc["lost_at"].get(lead) if deal in first and "lost_at" in oc else None
            won = None if won is None or pd.isna(won) else won
            lost = None if lost is None or pd.isna(lost) else lost
            open_stage = _OPEN_STAGES.get(str(stages.get(lead)) if stages is not None else "",
                                          "appointmentscheduled")  # fmt: skip
            self.entry("deals", deal, dm.stage or "dealstage", "appointmentscheduled", created,
                       "CRM_UI")  # fmt: skip
            if dm.amount:
                self.entry("deals", deal, dm.amount, _number_text(value), created, "CRM_UI")
            ends = sorted([(t, s) for t, s in ((won, dm.won_stages[0]), (lost, dm.lost_stages[0]))
                           if t is not None])  # fmt: skip
            for when, stage in ends:
                self.entry("deals", deal, dm.stage or "dealstage", stage, when, "CRM_UI")
            current = ends[-1][1] if ends else open_stage
            rows.append({dm.id[0]: deal, dm.created_at: _iso_moment(created),
                         dm.amount or "amount": _number_text(value), "dealname": f"Deal {deal}",
                         "pipeline": "default", dm.stage or "dealstage": current,
                         dm.close_date or "closedate": _iso_moment(won if won is not None
                                                                   else lost),
                         dm.is_closed_won or "hs_is_closed_won": "true" if won else "false",
                         "hs_is_closed": "true" if ends else "false"})  # fmt: skip
            self.links.append(("contacts", str(lead), "deals", str(deal)))
        if rows:
            self.add(dm.file, pd.DataFrame(rows))

    def events(self) -> None:
        ev = self.crm.events
        kinds = set(ev["type"].dropna().unique())
        unknown = kinds - {"touch", "sales_activity", "web_session", "opportunity_opened",
                           "field_update"}  # fmt: skip
        if unknown:
            raise ValueError(f"events of type {_shown(sorted(unknown))} have no HubSpot form")
        self.deals(ev[ev["type"] == "opportunity_opened"])
        self.sessions(ev[ev["type"] == "web_session"])
        self.updates(ev[ev["type"] == "field_update"])
        exchanges = ev[ev["type"].isin(["touch", "sales_activity"])]
        keys = ["type", "subtype", "direction", "outcome"]
        combos = exchanges[keys].astype(object).where(exchanges[keys].notna(), None)
        plans = {}
        for combo in combos.drop_duplicates().itertuples(index=False):
            plan = self.plan(tuple(combo))
            if plan is None:
                raise ValueError(f"no HubSpot record in hubspot.yaml reads back as an event "
                                 f"with {dict(zip(keys, combo, strict=True))}")  # fmt: skip
            plans[tuple(combo)] = plan
        groups: dict[str, list[dict[str, Any]]] = {}
        for row, combo in zip(exchanges.itertuples(index=False), combos.itertuples(index=False),
                              strict=True):  # fmt: skip
            file, props, obj = plans[tuple(combo)]
            groups.setdefault(file, []).append({**self.stamp(file, obj, row), **props})
        for file, records in groups.items():
            self.add(file, pd.DataFrame(records))

    def stamp(self, file: str, obj: str | None, row: Any) -> dict[str, Any]:
        """The id, time and contact columns of one record."""
        when, lead, eid = _iso_moment(row.timestamp), str(row.lead_id), str(row.event_id)
        if obj is not None:
            self.links.append((obj, eid, "contacts", lead))
            return {"hs_object_id": eid, self.m.activities.timestamp[0]: when}
        if file == self.m.form_submissions.file:
            fm = self.m.form_submissions
            return {fm.id: eid, fm.contact: lead, fm.timestamp: when}
        em = self.m.marketing_email_events
        if not self.m.contacts.email:
            raise ValueError("marketing email events need contacts.email in hubspot.yaml")
        return {em.id: eid, em.recipient: f"{lead}@example.com", em.timestamp: when}

    def plan(self, combo: tuple[Any, ...]) -> tuple[str, dict[str, Any], str | None] | None:
        """Where an exchange of this (type, subtype, direction, outcome) goes: the file, the
        property values, and the activity object (None for forms and email events)."""
        kind, subtype, direction, outcome = combo
        if kind == "touch" and outcome is None:
            fm, em = self.m.form_submissions, self.m.marketing_email_events
            if direction == "inbound" and fm.subtype.property:
                for text in self.texts(fm.subtype, subtype, " form", "Contact us"):
                    return fm.file, {fm.subtype.property: text}, None
            if em.type.property and em.subtype.property:
                kinds = encodings(em.type, direction)
                for text in self.texts(em.subtype, subtype, " campaign", "Newsletter"):
                    if kinds and kinds[0] is not None:
                        return em.file, {em.type.property: kinds[0],
                                         em.subtype.property: text}, None  # fmt: skip
        acts = self.m.activities
        at_prop = acts.activity_type.property
        for name, obj in acts.objects.items():
            subs = [*encodings(obj.subtype, subtype, self.known.subtypes), None]
            dirs = [*encodings(obj.direction, direction, _DIRECTIONS), None]
            outs = [*encodings(obj.outcome, outcome, self.known.outcomes), None]
            for at, sub, dr, out in itertools.product([None, *acts.activity_type.values], subs,
                                                      dirs, outs):  # fmt: skip
                raw = {"subtype": sub, "direction": dr, "outcome": out, "activity_type": at}
                if _activity(acts, obj, raw, self.known)[0] == combo:
                    props = {p: v for p, v in ((obj.subtype.property, sub),
                                               (obj.direction.property, dr),
                                               (obj.outcome.property, out), (at_prop, at))
                             if p is not None}  # fmt: skip
                    return obj.file or name, props, name
        return None

    @staticmethod
    def texts(coded: Coded, target: str | None, suffix: str, other: str) -> list[str]:
        """Texts that `coded` reads as `target` (a title or a campaign name)."""
        found = []
        for raw in encodings(coded, target):
            text = other if raw is None else f"{raw[:1].upper()}{raw[1:]}{suffix}"
            if decode(coded, text)[0] == target:
                found.append(text)
        return found

    def sessions(self, sessions: pd.DataFrame) -> None:
        if not len(sessions):
            return
        wm = self.m.web_sessions
        table: dict[Any, str] = {}
        for subtype in sessions["subtype"].astype(object).where(sessions["subtype"].notna(), None
                                                                ).unique():  # fmt: skip
            urls = [f"{_SITE}{'' if r is None or r.startswith('/') else '/'}{r or '/'}"
                    for r in encodings(wm.subtype, subtype)]  # fmt: skip
            urls = [u for u in urls if decode(wm.subtype, u)[0] == subtype]
            if not urls or wm.subtype.property is None:
                raise ValueError(f"web sessions of subtype {subtype!r}: no landing page in "
                                 "hubspot.yaml reads back as it")  # fmt: skip
            table[subtype] = urls[0]
        out = pd.DataFrame({
            wm.id: sessions["event_id"].astype(str).to_numpy(),
            wm.contact: sessions["lead_id"].astype(str).to_numpy(),
            wm.timestamp: _iso(sessions["timestamp"]).to_numpy(),
            wm.subtype.property: [table[None if pd.isna(s) else s] for s in sessions["subtype"]],
        })  # fmt: skip
        for col in ("page_views", "pricing_page_views", "demo_page_views", "duration_seconds"):
            prop = getattr(wm, col)
            if prop:
                out[prop] = sessions[col].map(_number_text).to_numpy()
        self.add(wm.file, out)

    def updates(self, updates: pd.DataFrame) -> None:
        props = {field: prop for o, fields in self.m.history.fields.items()
                 if object_type(o) == "contacts" for prop, field in fields.items()}  # fmt: skip
        updates = updates.sort_values(["timestamp", "event_id"], kind="stable")
        for lead, field, value, when in zip(updates["lead_id"], updates["field"],
                                            updates["field_value"], updates["timestamp"],
                                            strict=True):  # fmt: skip
            if field not in props:
                raise ValueError(f"field_update of {field!r}: hubspot.yaml names no contact "
                                 "property for it under history.fields.contacts")  # fmt: skip
            self.entry("contacts", str(lead), props[field], None if pd.isna(value) else value,
                       when, "CRM_UI")  # fmt: skip

    # -- output

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        am = self.m.associations
        if self.links:
            self.add(am.file, pd.DataFrame(self.links, columns=[am.from_type, am.from_id,
                                                                am.to_type, am.to_id]))
        for file, table in self.files.items():
            pd.DataFrame(table).to_csv(out / f"{file}.csv", index=False)
        with (out / self.m.history.file).open("w") as handle:
            for (obj, oid), props in self.history.items():
                # HubSpot lists the newest first; entries of one moment keep their order
                newest_first = {p: [e for _, e in sorted(entries, key=lambda x: x[0])][::-1]
                                for p, entries in props.items()}  # fmt: skip
                line = {"objectType": obj, "id": oid, "propertiesWithHistory": newest_first}
                handle.write(json.dumps(line) + "\n")
        end = _iso_moment(self.crm.observation_end)
        (out / "source.yaml").write_text(f"# when the export was taken\nobservation_end: {end}\n")


# leadforge's open opportunity stages as HubSpot default-pipeline stages (current state only)
_OPEN_STAGES = {
    "sql": "qualifiedtobuy", "demo_scheduled": "presentationscheduled",
    "demo_completed": "presentationscheduled", "proposal_sent": "contractsent",
    "negotiation": "decisionmakerboughtin",
}  # fmt: skip


def write_hubspot(
    crm: CrmData, out: Path, config: FeatureConfig, mapping: Path | None = None
) -> None:
    """Write canonical data as a HubSpot export folder that :func:`load_hubspot` reads back
    with the same features and outcomes: one contact per lead (its id the lead_id), companies,
    deals (one per `opportunity_opened` event; a lead's first deal carries its won/lost), one
    file per activity type, form submissions, marketing email events, web sessions,
    associations, the property history (lifecycle stages, deal stages and amounts, field
    updates) and `source.yaml`. Current state is filled from the final outcomes, as HubSpot
    shows it on export day. Raises ValueError for data the mapping cannot express (an event
    nothing in it reads back as, a win without a deal)."""
    writer = _Writer(crm, load_mapping(mapping), config)
    writer.contacts()
    writer.companies()
    writer.events()
    writer.write(Path(out))
