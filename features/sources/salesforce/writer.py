"""Canonical data written as a Salesforce export folder that the reader reads back to the same
features and outcomes, traps of a real export included (for tests and demos)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import CrmData
from leadscore.features.schema import END_OF_DAY, schemas
from leadscore.features.sources.salesforce.frames import (
    _at,
    _band_numbers,
    _day,
    _iso,
    _links,
    _none,
    _put,
    _reverse,
    _text,
    _whole,
)
from leadscore.features.sources.salesforce.mapping import (
    _STRUCTURAL,
    _TABLE,
    SalesforceMap,
    load_mapping,
)


class _Writer:
    """Canonical tables -> Salesforce object frames."""

    def __init__(self, crm: CrmData, mapping: SalesforceMap, config: FeatureConfig):
        self.crm, self.m, self.config = crm, mapping, config
        self.leads = crm.leads.reset_index(drop=True)
        self.lid = self.leads["lead_id"].astype("string")
        self.created = self.leads["created_at"].astype("datetime64[ns]")
        outcomes = crm.outcomes.drop_duplicates("lead_id").set_index("lead_id")
        self.out = outcomes.reindex(self.lid.to_numpy())
        self.sql_at = self.out["sql_at"].reset_index(drop=True)
        self.won_at = self.out["won_at"].reset_index(drop=True)
        self.lost_at = self.out["lost_at"].reset_index(drop=True)
        ev = crm.events
        opps = ev[(ev["type"] == "opportunity_opened").fillna(False).astype(bool)]
        self.opps = opps.sort_values(["timestamp", "event_id"], kind="stable")
        primary = self.opps.drop_duplicates("lead_id").set_index("lead_id")["event_id"]
        first_opp = _at(self.lid, primary).astype("string")
        self.converted = (first_opp.notna() & self.sql_at.notna()).to_numpy()
        self.conv_opp = first_opp.where(self.converted)
        accounts = set(crm.accounts["account_id"].dropna())
        contacts = set(crm.contacts["contact_id"].dropna())
        acct = self.leads["account_id"].astype("string")
        cont = self.leads["contact_id"].astype("string")
        self.conv_account = acct.where(self.converted & acct.isin(accounts).fillna(False))
        self.conv_contact = cont.where(self.converted & cont.isin(contacts).fillna(False))
        self.links = _links(self.lid, self.created, self.conv_contact, self.conv_opp)
        self.contact_of = pd.Series(self.conv_contact.to_numpy(), index=self.lid.to_numpy())
        self.fields = _reverse(mapping.fields)  # "entity.column" -> API name
        self.lost_fields: set[str] = set()

    def who(self, lead_ids: pd.Series, moments: pd.Series) -> pd.Series:
        """WhoId: the converted contact (activities move to it on conversion) when a reader
        finds the same lead through it, else the lead."""
        lead_ids = lead_ids.reset_index(drop=True).astype("string")
        contact = _at(lead_ids, self.contact_of).astype("string")
        back = self.links.resolve(contact, moments.reset_index(drop=True))
        use = (contact.notna() & (back == lead_ids)).fillna(False).astype(bool)
        return contact.where(use, lead_ids)

    def custom(self, entity: str, table: pd.DataFrame, standard: set[str]) -> dict[str, Any]:
        cols: dict[str, Any] = {}
        base = {c.name for c in schemas(self.config)[_TABLE[entity]].columns}
        for column in table.columns:
            if column in standard or column not in base or column in _STRUCTURAL:
                continue
            if column in {"source", "owner"}:
                continue
            api = self.fields.get(f"{entity}.{column}")
            if api is None:
                if table[column].notna().any():
                    self.lost_fields.add(f"{entity}.{column}")
                continue
            values = table[column]
            if pd.api.types.is_bool_dtype(values):
                values = values.map(lambda v: None if v is pd.NA else str(bool(v)).lower())
            cols[api] = values.to_numpy()
        return cols

    def firmographics(self, table: pd.DataFrame, name: str, country: str) -> dict[str, Any]:
        v = self.m.values

        def get(column: str) -> pd.Series:
            if column in table.columns:
                return pd.Series(table[column])
            return pd.Series(pd.NA, index=table.index, dtype="string")

        cols: dict[str, Any] = {
            name: get("company_name").to_numpy(),
            "Industry": _put(get("industry"), _reverse(v.industry)).to_numpy(),
            "NumberOfEmployees": _whole(_band_numbers(
                get("employee_band"), self.config.order_of("account.employee_band"),
                "account.employee_band")).to_numpy(),
            "AnnualRevenue": _whole(_band_numbers(
                get("revenue_band"), self.config.order_of("account.revenue_band"),
                "account.revenue_band")).to_numpy(),
            country: _put(get("region"), _reverse(v.region)).to_numpy(),
        }  # fmt: skip
        standard = {"company_name", "industry", "region", "employee_band", "revenue_band"}
        return cols | self.custom("account", table, standard)

    def people(self, table: pd.DataFrame) -> dict[str, Any]:
        title = table["job_title"] if "job_title" in table.columns else None
        cols: dict[str, Any] = {"Title": None if title is None else title.to_numpy()}
        return cols | self.custom("contact", table, {"job_title"})

    # --- objects

    def lead_frame(self) -> pd.DataFrame:
        accounts = self.crm.accounts.drop_duplicates("account_id").set_index("account_id")
        contacts = self.crm.contacts.drop_duplicates("contact_id").set_index("contact_id")
        acct = accounts.reindex(self.leads["account_id"].to_numpy()).reset_index(drop=True)
        cont = contacts.reindex(self.leads["contact_id"].to_numpy()).reset_index(drop=True)
        won, sql, lost = self.won_at.notna(), self.sql_at.notna(), self.lost_at.notna()
        has_activity = self.lid.isin(set(self.crm.events.loc[
            self.crm.events["type"] == "sales_activity", "lead_id"]))  # fmt: skip
        status = np.select(
            [self.converted, sql.to_numpy(), lost.to_numpy(), has_activity.to_numpy()],
            ["Closed - Converted", "Qualified", "Closed - Not Converted", "Working - Contacted"],
            default="Open - Not Contacted",
        )
        cols: dict[str, Any] = {
            "Id": self.lid.to_numpy(), "CreatedDate": _iso(self.created).to_numpy(),
            "LastName": ("Lead " + self.lid).to_numpy(),
            "LeadSource": _put(self.leads["source"],
                               _reverse(self.m.values.lead_source)).to_numpy(),
            "OwnerId": (self.leads["owner"] if "owner" in self.leads.columns
                        else _none(len(self.leads))).to_numpy(),
        }  # fmt: skip
        cols |= self.firmographics(acct, "Company", "Country")
        cols |= self.people(cont)
        cols |= self.custom("lead", self.leads, {"created_at", "source", "owner"})
        cols |= {
            # current state: what became of the lead, filled from its outcome
            "Status": status,
            "Rating": np.where(won, "Hot", np.where(sql, "Warm", "Cold")),
            "Lead_Score__c": np.where(won, 95, np.where(sql, 70, np.where(lost, 5, 30))),
            "IsConverted": np.where(self.converted, "true", "false"),
            "ConvertedDate": _day(self.sql_at.where(self.converted)).to_numpy(),
            "ConvertedAccountId": self.conv_account.to_numpy(),
            "ConvertedContactId": self.conv_contact.to_numpy(),
            "ConvertedOpportunityId": self.conv_opp.to_numpy(),
        }
        return pd.DataFrame(cols)

    def account_frame(self) -> pd.DataFrame:
        accounts = self.crm.accounts.drop_duplicates("account_id").reset_index(drop=True)
        won_accounts = set(self.leads.loc[self.won_at.notna().to_numpy(), "account_id"])
        cols: dict[str, Any] = {"Id": accounts["account_id"].to_numpy()}
        cols |= self.firmographics(accounts, "Name", "BillingCountry")
        cols["Type"] = np.where(accounts["account_id"].isin(won_accounts), "Customer - Direct",
                                "Prospect")  # fmt: skip
        return pd.DataFrame(cols)

    def contact_frame(self) -> pd.DataFrame:
        contacts = self.crm.contacts.drop_duplicates("contact_id").reset_index(drop=True)
        cols: dict[str, Any] = {
            "Id": contacts["contact_id"].to_numpy(), "AccountId": contacts["account_id"].to_numpy(),
            "LastName": ("Contact " + contacts["contact_id"]).to_numpy(),
        }  # fmt: skip
        return pd.DataFrame(cols | self.people(contacts))

    def opportunity_frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        opps = self.opps.reset_index(drop=True)
        lead_pos = pd.Index(self.lid).get_indexer(pd.Index(opps["lead_id"]))
        converted = pd.Series(self.conv_opp.to_numpy()[lead_pos]).astype("string")
        primary = (converted == opps["event_id"].astype("string")).fillna(False).astype(bool)
        # the lead's outcome is its first opportunity's
        first = (~opps.duplicated("lead_id")).to_numpy()
        won = pd.Series(self.won_at.to_numpy()[lead_pos], dtype="datetime64[ns]").where(first)
        lost = pd.Series(self.lost_at.to_numpy()[lead_pos], dtype="datetime64[ns]").where(first)
        value = opps["value"].astype("float64").reset_index(drop=True)
        closed_at = won.fillna(lost)
        is_won, is_closed = won.notna(), closed_at.notna()
        lead_field = self.m.outcomes.opportunity_lead_field
        if lead_field is None and (~primary).any():
            warnings.warn(f"{int((~primary).sum())} opportunities are no converted lead's: "
                          "the mapping names no opportunity_lead_field; not linked",
                          stacklevel=3)  # fmt: skip
        won_stage = self.m.outcomes.won_stages[0] if self.m.outcomes.won_stages else "Closed Won"
        lost_stage = (self.m.outcomes.lost_stages[0] if self.m.outcomes.lost_stages
                      else "Closed Lost")  # fmt: skip
        cols: dict[str, Any] = {
            "Id": opps["event_id"].to_numpy(),
            "Name": ("Opportunity " + opps["event_id"]).to_numpy(),
            "AccountId": self.leads["account_id"].to_numpy()[lead_pos],
            "CreatedDate": _iso(opps["timestamp"]).to_numpy(),
            # current state: the amount as negotiated to a win, the stage now
            "Amount": np.where(is_won, value * 1.1, value),
            "StageName": np.where(is_won, won_stage, np.where(is_closed, lost_stage,
                                                              "Prospecting")),
            "IsClosed": np.where(is_closed, "true", "false"),
            "IsWon": np.where(is_won, "true", "false"),
            "Probability": np.where(is_won, 100, np.where(is_closed, 0, 20)),
            "CloseDate": _day(closed_at.fillna(opps["timestamp"].reset_index(drop=True)
                                               + pd.Timedelta(days=60))).to_numpy(),
        }  # fmt: skip
        if lead_field:
            cols[lead_field] = opps["lead_id"].reset_index(drop=True).where(~primary).to_numpy()
        frame = pd.DataFrame(cols)
        rows = [pd.DataFrame({
            "OpportunityId": opps["event_id"], "StageName": "Prospecting", "Amount": value,
            "CreatedDate": opps["timestamp"].to_numpy(),
        })]  # fmt: skip
        for moments, stage, scale in ((won, won_stage, 1.1), (lost, lost_stage, 1.0)):
            hit = moments.notna().to_numpy()
            rows.append(pd.DataFrame({"OpportunityId": opps["event_id"][hit].to_numpy(),
                                      "StageName": stage,
                                      "Amount": value[hit].to_numpy() * scale,
                                      "CreatedDate": moments[hit].to_numpy()}))  # fmt: skip
        history = pd.concat(rows, ignore_index=True)
        history["CreatedDate"] = _iso(history["CreatedDate"]).to_numpy()
        history.insert(0, "Id", [f"{o}-h{i}" for i, o in enumerate(history["OpportunityId"])])
        return frame, history

    def activity_frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        ev = self.crm.events.reset_index(drop=True)
        rules = self.m.activities
        types = _reverse(rules.types)
        outcomes = _reverse(rules.outcomes)
        acts = ev[(ev["type"] == "sales_activity").fillna(False).astype(bool)].reset_index(
            drop=True)  # fmt: skip
        ts = acts["timestamp"].astype("datetime64[ns]")
        who = self.who(acts["lead_id"], ts)
        sub = _text(acts["subtype"]) if "subtype" in acts.columns else _none(len(acts))
        outcome = _put(acts["outcome"], outcomes) if "outcome" in acts.columns else _none(
            len(acts))  # fmt: skip
        call = (sub == "call").fillna(False).astype(bool).to_numpy()
        in_event = sub.isin(["meeting", "demo"]).fillna(False).astype(bool).to_numpy()
        # a due date that is not the activity's moment: the next day or the one before
        due = _day(ts + pd.to_timedelta(np.where(np.arange(len(ts)) % 2 == 0, 1, -1), unit="D"))
        fields = list(rules.outcome_fields) or ["CallDisposition"]
        call_field = "CallDisposition" if "CallDisposition" in fields else fields[0]
        other_field = next((f for f in fields if f != "CallDisposition"), fields[0])
        direction = _text(acts["direction"]) if "direction" in acts.columns else _none(len(acts))
        task = pd.DataFrame({
            "Id": acts["event_id"], "WhoId": who, "Subject": _put(sub, types).fillna("Activity"),
            "Type": _put(sub, types), "TaskSubtype": np.where(call, "Call", np.where(
                sub == "email", "Email", "Task")),
            "CallType": direction.str.title().where(call),
            "Status": "Completed", "Priority": "Normal", "IsClosed": "true",
            # a call is logged before it is done; other tasks are created when done
            "CreatedDate": _iso(ts - pd.to_timedelta(np.where(call, 1, 0), unit="h")),
            "CompletedDateTime": _iso(ts.where(call)), "ActivityDate": due,
        })  # fmt: skip
        task[call_field] = outcome.where(call)
        if other_field != call_field:
            task[other_field] = outcome.where(~call)
        else:
            task[call_field] = outcome
        event = pd.DataFrame({
            "Id": acts["event_id"], "WhoId": who, "Subject": _put(sub, types),
            "Type": _put(sub, types), "EventSubtype": "Event",
            # booked a day ahead, held for the half hour up to its moment
            "CreatedDate": _iso(ts - pd.Timedelta(days=1)),
            "StartDateTime": _iso(ts - pd.Timedelta(minutes=30)), "EndDateTime": _iso(ts),
            "ActivityDateTime": _iso(ts - pd.Timedelta(minutes=30)),
            "ActivityDate": _day(ts - pd.Timedelta(minutes=30)), "DurationInMinutes": 30,
            other_field: outcome,
        })  # fmt: skip
        sessions = ev[(ev["type"] == "web_session").fillna(False).astype(bool)].reset_index(
            drop=True)  # fmt: skip
        web = pd.DataFrame()
        if len(sessions):
            if not rules.web_session_type:
                warnings.warn("web sessions not written: the mapping names no web_session_type",
                              stacklevel=3)  # fmt: skip
            else:
                sts = sessions["timestamp"].astype("datetime64[ns]")
                web = pd.DataFrame({
                    "Id": sessions["event_id"], "WhoId": self.who(sessions["lead_id"], sts),
                    "Subject": "Web session", "Type": rules.web_session_type,
                    "TaskSubtype": "Task", "Status": "Completed", "Priority": "Normal",
                    "IsClosed": "true", "CreatedDate": _iso(sts), "CompletedDateTime": _iso(sts),
                    "ActivityDate": _day(sts + pd.Timedelta(days=1)),
                })  # fmt: skip
                for api, column in rules.web_session_fields.items():
                    if column in sessions.columns:
                        values = sessions[column]
                        web[api] = (values if column == "subtype" else _whole(values)).to_numpy()
        tasks = pd.concat([task[~in_event], web], ignore_index=True)
        return tasks, event[in_event].reset_index(drop=True)

    def campaign_frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        ev = self.crm.events
        touches = ev[(ev["type"] == "touch").fillna(False).astype(bool)].reset_index(drop=True)
        rules = self.m.campaigns
        ts = touches["timestamp"].astype("datetime64[ns]")
        key = pd.DataFrame({
            "subtype": _text(touches["subtype"]).fillna(""),
            "direction": _text(touches["direction"]).fillna(""),
            "channel": _text(touches["channel"]).fillna(""), "day": _day(ts).fillna(""),
        })  # fmt: skip
        # a lead is a member of a campaign once: its second webinar that day is another one
        key["n"] = key.assign(lead=touches["lead_id"].to_numpy()).groupby(
            ["lead", *key.columns]).cumcount()  # fmt: skip
        codes = key.groupby(list(key.columns), sort=True).ngroup()
        types = {v.subtype: k for k, v in reversed(list(rules.types.items()))}
        camp = key.assign(code=codes).drop_duplicates("code").sort_values("code")
        camp_type = camp["subtype"].map(lambda s: types.get(s, s or None))
        campaigns = pd.DataFrame({
            "Id": [f"cmp_{c:06d}" for c in camp["code"]],
            "Name": (camp_type.fillna("Campaign") + " " + camp["day"] + " #"
                     + (camp["n"] + 1).astype(str)).to_numpy(),
            "Type": camp_type.to_numpy(), "Status": "Completed",
            "StartDate": camp["day"].to_numpy(),
        })  # fmt: skip
        if rules.direction_field:
            campaigns[rules.direction_field] = camp["direction"].replace("", None).to_numpy()
        if rules.channel_field:
            campaigns[rules.channel_field] = camp["channel"].replace("", None).to_numpy()
        end_of_day = (ts == ts.dt.normalize() + END_OF_DAY).fillna(True).astype(bool)
        members = pd.DataFrame({
            "Id": touches["event_id"], "CampaignId": [f"cmp_{c:06d}" for c in codes],
            "LeadId": touches["lead_id"],
            "ContactId": _at(touches["lead_id"], self.contact_of).to_numpy(),
            "Status": "Responded", "HasResponded": "true",
            "CreatedDate": _iso(ts - pd.Timedelta(days=2)), "FirstRespondedDate": _day(ts),
        })  # fmt: skip
        if rules.response_time_field:
            # a date alone already means the end of that day; the time only when it says more
            members[rules.response_time_field] = _iso(ts.where(~end_of_day)).to_numpy()
        elif (~end_of_day).any():
            warnings.warn("touch times within the day not written (the mapping names no "
                          "response_time_field): read back at the end of their day",
                          stacklevel=3)  # fmt: skip
        return members, campaigns

    def lead_history(self) -> pd.DataFrame:
        sql_status = self.m.outcomes.sql_statuses[0] if self.m.outcomes.sql_statuses else None
        lost_status = (self.m.outcomes.lost_statuses[0] if self.m.outcomes.lost_statuses
                       else None)  # fmt: skip
        ev = self.crm.events
        acts = ev[(ev["type"] == "sales_activity").fillna(False).astype(bool)]
        first_act = acts.groupby("lead_id")["timestamp"].min()
        has_opp = set(self.opps["lead_id"])
        rows: list[tuple[str, str, Any, str | None, str | None]] = []
        for i, lead in enumerate(self.lid):
            changes: list[tuple[pd.Timestamp, str, str | None]] = []
            contacted = first_act.get(lead)
            sql, lost = self.sql_at.iloc[i], self.lost_at.iloc[i]
            if pd.notna(contacted) and (pd.isna(sql) or contacted < sql):
                changes.append((contacted, "Status", "Working - Contacted"))
            if pd.notna(sql):
                if sql_status is None:
                    self.lost_fields.add("outcomes.sql_at")
                else:
                    changes.append((sql, "Status", sql_status))
                if self.converted[i]:
                    changes.append((sql, "leadConverted", None))
                    changes.append((sql, "Status", "Closed - Converted"))
            if pd.notna(lost) and lead not in has_opp:
                if lost_status is None:
                    self.lost_fields.add("outcomes.lost_at")
                else:
                    changes.append((lost, "Status", lost_status))
            if pd.notna(self.won_at.iloc[i]) and lead not in has_opp:
                self.lost_fields.add("outcomes.won_at (won without an opportunity)")
            rows.append((f"{lead}-h0", lead, self.created.iloc[i], "created", None))
            # sorted() is stable: at one moment, qualified before converted
            for n, (at, field, value) in enumerate(sorted(changes, key=lambda c: c[0]), 1):
                rows.append((f"{lead}-h{n}", lead, at, field, value))
        frame = pd.DataFrame(rows, columns=["Id", "LeadId", "CreatedDate", "Field", "NewValue"])
        frame["OldValue"] = None
        status = (frame["Field"] == "Status").to_numpy()
        previous = frame[status].groupby("LeadId")["NewValue"].shift()
        frame.loc[status, "OldValue"] = previous.fillna("Open - Not Contacted").to_numpy()
        updates = ev[(ev["type"] == "field_update").fillna(False).astype(bool)]
        if len(updates):
            names = _reverse(self.m.history.get("Lead", {}))
            unmapped = sorted(set(updates["field"].dropna()) - set(names))
            if unmapped:
                warnings.warn(f"field updates {unmapped}: the mapping names no LeadHistory "
                              "field for them; written under their own names",
                              stacklevel=3)  # fmt: skip
            upd = updates.sort_values(["lead_id", "field", "timestamp", "event_id"])
            more = pd.DataFrame({
                "Id": upd["event_id"].to_numpy(), "LeadId": upd["lead_id"].to_numpy(),
                "CreatedDate": upd["timestamp"].to_numpy(),
                "Field": upd["field"].map(lambda f: names.get(f, f)).to_numpy(),
                "NewValue": upd["field_value"].to_numpy(),
                "OldValue": upd.groupby(["lead_id", "field"])["field_value"].shift().to_numpy(),
            })  # fmt: skip
            frame = pd.concat([frame, more], ignore_index=True)
        frame["CreatedDate"] = _iso(frame["CreatedDate"]).to_numpy()
        return frame[["Id", "LeadId", "Field", "OldValue", "NewValue", "CreatedDate"]]


def write_salesforce(crm: CrmData, out: Path, config: FeatureConfig,
                     mapping: Path | None = None) -> None:  # fmt: skip
    """Write canonical data as a Salesforce export folder (one CSV per object, API names) that
    :func:`load_salesforce` reads back to the same features and outcomes.

    With the traps of a real export: Task.ActivityDate a due date a day off the moment,
    Events booked a day before they are held, Lead.ConvertedDate a date alone, current state
    (Status, Rating, IsConverted, Lead_Score__c, Opportunity StageName / IsWon / Amount, Account
    Type) filled from the outcome, conversions that move activities to the contact. Bands are
    written as a number inside them (NumberOfEmployees, AnnualRevenue). Writes `source.yaml`
    with the observation end. What cannot be expressed is named in a warning.
    """
    rules = load_mapping(mapping, config)
    writer = _Writer(crm, rules, config)
    tasks, events = writer.activity_frames()
    members, campaigns = writer.campaign_frames()
    opportunities, stage_history = writer.opportunity_frames()
    frames = {
        "Lead": writer.lead_frame(), "Account": writer.account_frame(),
        "Contact": writer.contact_frame(), "Opportunity": opportunities,
        "OpportunityHistory": stage_history, "Task": tasks, "Event": events,
        "CampaignMember": members, "Campaign": campaigns, "LeadHistory": writer.lead_history(),
    }  # fmt: skip
    known = {"sales_activity", "web_session", "touch", "opportunity_opened", "field_update"}
    other = sorted(set(crm.events["type"].dropna()) - known)
    if other:
        writer.lost_fields.add(f"events of type {other}")
    if writer.lost_fields:
        warnings.warn(f"not expressible in this Salesforce mapping, not written: "
                      f"{sorted(writer.lost_fields)}", stacklevel=2)  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_csv(out / f"{name}.csv", index=False)
    end = pd.Timestamp(crm.observation_end)
    (out / "source.yaml").write_text(f"observation_end: {end.isoformat()}\n")
