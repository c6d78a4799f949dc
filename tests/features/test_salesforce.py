"""Salesforce exports: a hand-written export with hand-computed features, current state kept out,
history point in time, bad input named by file and field, and a lossless leadforge round trip."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from leadscore.features.config import CustomField, FeatureConfig
from leadscore.features.configdir import packaged_config_dir
from leadscore.features.labels import closed_at
from leadscore.features.schema import CURRENT_STATE_COLUMNS, DataContractError
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.sources import from_frames, load_source
from leadscore.features.sources.salesforce import (
    is_salesforce_export,
    load_salesforce,
    write_salesforce,
)
from leadscore.features.spec import build_spec
from leadscore.features.yamlfile import ConfigError
from tests.conftest import _generate, tiny_tables

Export = dict[str, pd.DataFrame]
L1, L2, L3, L4 = (f"00Q00000000000{i}AAA" for i in range(1, 5))
ACME, ACME_CFO, ACME_DEAL = "001000000000001AAA", "003000000000001AAA", "006000000000001AAA"
DAY = 86_400.0


def _export() -> Export:
    """Four leads, hand-written as Data Loader exports them (every value text).

    L1 converted into Acme / its CFO on 2024-03-31 (a date: the SQL moment is the end of that
    day, after L1's day-30 as_of 2024-03-31 09:00); its activities sit on the contact. L2 and L3
    were never converted (firmographics on the Lead). L4 converted into the same contact later,
    so contact activities after its creation are L4's.
    """
    lead = pd.DataFrame([
        {"Id": L1, "FirstName": "Ada", "LastName": "One", "Company": "Acme (lead copy)",
         "Title": "Analyst", "LeadSource": "Web", "OwnerId": "005A", "Industry": "Retail",
         "NumberOfEmployees": "10", "AnnualRevenue": "500000", "Country": "Germany",
         "Status": "Closed - Converted", "Rating": "Hot", "IsConverted": "true",
         "ConvertedDate": "2024-03-31", "ConvertedAccountId": ACME, "ConvertedContactId": ACME_CFO,
         "ConvertedOpportunityId": ACME_DEAL, "Lead_Score__c": "99", "Seniority__c": "",
         "Process_Maturity__c": "", "Email_Domain_Type__c": "", "Favourite_Color__c": "blue",
         "CreatedDate": "2024-03-01T09:00:00.000Z"},
        {"Id": L2, "FirstName": "Bo", "LastName": "Two", "Company": "Globex",
         "Title": "VP of Finance", "LeadSource": "Partner Referral", "OwnerId": "005B",
         "Industry": "Transportation", "NumberOfEmployees": "750", "AnnualRevenue": "25000000",
         "Country": "United Kingdom", "Status": "Qualified", "Rating": "Warm",
         "IsConverted": "false", "ConvertedDate": "", "ConvertedAccountId": "",
         "ConvertedContactId": "", "ConvertedOpportunityId": "", "Lead_Score__c": "55",
         "Seniority__c": "director", "Process_Maturity__c": "high",
         "Email_Domain_Type__c": "personal", "Favourite_Color__c": "",
         "CreatedDate": "2024-03-10T00:00:00.000Z"},
        {"Id": L3, "FirstName": "Cy", "LastName": "Three", "Company": "Initech",
         "Title": "Accounts Payable Specialist", "LeadSource": "", "OwnerId": "005B",
         "Industry": "", "NumberOfEmployees": "", "AnnualRevenue": "", "Country": "USA",
         "Status": "Closed - Not Converted", "Rating": "Cold", "IsConverted": "false",
         "ConvertedDate": "", "ConvertedAccountId": "", "ConvertedContactId": "",
         "ConvertedOpportunityId": "", "Lead_Score__c": "5", "Seniority__c": "",
         "Process_Maturity__c": "", "Email_Domain_Type__c": "", "Favourite_Color__c": "",
         "CreatedDate": "2024-03-15T12:00:00.000Z"},
        {"Id": L4, "FirstName": "Di", "LastName": "Four", "Company": "Acme", "Title": "CFO",
         "LeadSource": "Outbound", "OwnerId": "005A", "Industry": "Manufacturing",
         "NumberOfEmployees": "", "AnnualRevenue": "", "Country": "US",
         "Status": "Closed - Converted", "Rating": "Warm", "IsConverted": "true",
         "ConvertedDate": "2024-04-25", "ConvertedAccountId": ACME, "ConvertedContactId": ACME_CFO,
         "ConvertedOpportunityId": "", "Lead_Score__c": "80", "Seniority__c": "",
         "Process_Maturity__c": "", "Email_Domain_Type__c": "", "Favourite_Color__c": "",
         "CreatedDate": "2024-03-20T12:00:00.000Z"},
    ])  # fmt: skip
    account = pd.DataFrame([
        {"Id": ACME, "Name": "Acme", "Industry": "Manufacturing", "NumberOfEmployees": "1200",
         "AnnualRevenue": "300000000", "BillingCountry": "US", "Type": "Customer - Direct",
         "Process_Maturity__c": "medium"},
        {"Id": "001000000000009AAA", "Name": "Unused", "Industry": "Consulting",
         "NumberOfEmployees": "60", "AnnualRevenue": "2000000", "BillingCountry": "UK",
         "Type": "Prospect", "Process_Maturity__c": "low"},
    ])  # fmt: skip
    contact = pd.DataFrame([
        {"Id": ACME_CFO, "AccountId": ACME, "FirstName": "Ada", "LastName": "One",
         "Title": "Chief Financial Officer", "Buyer_Role__c": "champion",
         "Email_Domain_Type__c": "corporate"},
    ])  # fmt: skip
    opportunity = pd.DataFrame([
        {"Id": ACME_DEAL, "AccountId": ACME, "Name": "Acme deal", "StageName": "Closed Won",
         "Amount": "120000", "CloseDate": "2024-04-20", "IsWon": "true", "IsClosed": "true",
         "Probability": "100", "CreatedDate": "2024-03-31T15:00:00.000Z"},
    ])  # fmt: skip
    stages = pd.DataFrame([
        {"Id": "008A1", "OpportunityId": ACME_DEAL, "StageName": "Prospecting",
         "Amount": "100000", "CloseDate": "2024-05-31", "CreatedDate": "2024-03-31T15:00:00.000Z"},
        {"Id": "008A2", "OpportunityId": ACME_DEAL, "StageName": "Closed Won",
         "Amount": "120000", "CloseDate": "2024-04-20", "CreatedDate": "2024-04-20T12:00:00.000Z"},
    ])  # fmt: skip
    blank = dict.fromkeys(["WhatId", "CallType", "CallDisposition", "Outcome__c",
                           "CompletedDateTime", "Session_Type__c", "Page_Views__c",
                           "Pricing_Page_Views__c", "Demo_Page_Views__c",
                           "Duration_Seconds__c"], "")  # fmt: skip
    done = {"Status": "Completed", "IsClosed": "true", "Priority": "Normal"}
    task = pd.DataFrame([blank | done | row for row in [
        {"Id": "00T1", "WhoId": ACME_CFO, "Subject": "Call", "Type": "Call",
         "TaskSubtype": "Call", "CallType": "Outbound", "CallDisposition": "Connected",
         "ActivityDate": "2024-03-05", "CreatedDate": "2024-03-05T10:00:00.000Z",
         "CompletedDateTime": "2024-03-05T10:15:00.000Z"},
        # due after L1's as_of, created (done) before it: counts
        {"Id": "00T2", "WhoId": ACME_CFO, "Subject": "Email", "Type": "Email",
         "TaskSubtype": "Email", "ActivityDate": "2024-04-15",
         "CreatedDate": "2024-03-10T12:00:00.000Z"},
        # the trap: due before L2's as_of (2024-04-09 00:00), created after it: must not count
        {"Id": "00T3", "WhoId": L2, "Subject": "Call", "Type": "Call", "TaskSubtype": "Call",
         "CallDisposition": "Meeting Set", "ActivityDate": "2024-04-01",
         "CreatedDate": "2024-04-10T08:00:00.000Z"},
        {"Id": "00T4", "WhoId": L2, "Subject": "Call", "Type": "Call", "TaskSubtype": "Call",
         "CallDisposition": "Left Voicemail", "ActivityDate": "2024-03-12",
         "CreatedDate": "2024-03-12T09:00:00.000Z",
         "CompletedDateTime": "2024-03-12T09:05:00.000Z"},
        # the custom outcome field wins over the call disposition
        {"Id": "00T5", "WhoId": L2, "Subject": "Call", "Type": "Call", "TaskSubtype": "Call",
         "CallDisposition": "Connected", "Outcome__c": "No Answer",
         "ActivityDate": "2024-03-13", "CreatedDate": "2024-03-13T09:00:00.000Z"},
        # on the shared contact after L4 was created: L4's
        {"Id": "00T6", "WhoId": ACME_CFO, "Subject": "Call", "Type": "Call",
         "TaskSubtype": "Call", "CallDisposition": "No Answer", "ActivityDate": "2024-03-25",
         "CreatedDate": "2024-03-25T10:00:00.000Z"},
        {"Id": "00T7", "WhoId": ACME_CFO, "Subject": "Visit", "Type": "Web Session",
         "TaskSubtype": "Task", "ActivityDate": "2024-03-09",
         "CreatedDate": "2024-03-02T14:00:00.000Z", "Session_Type__c": "pricing_page",
         "Page_Views__c": "6", "Pricing_Page_Views__c": "3", "Demo_Page_Views__c": "0",
         "Duration_Seconds__c": "240"},
        # a call logged as a to-do, still open at the export: an activity at its creation
        {"Id": "00T8", "WhoId": ACME_CFO, "Subject": "Follow up", "Type": "Call",
         "TaskSubtype": "Task", "Status": "Not Started", "IsClosed": "false",
         "ActivityDate": "2024-03-02", "CreatedDate": "2024-03-06T08:00:00.000Z"},
    ]])  # fmt: skip
    event = pd.DataFrame([
        {"Id": "00U1", "WhoId": ACME_CFO, "Subject": "Demo", "Type": "Demo",
         "EventSubtype": "Event", "Outcome__c": "Demo Completed", "ActivityDate": "2024-03-12",
         "ActivityDateTime": "2024-03-12T15:00:00.000Z", "DurationInMinutes": "30",
         "StartDateTime": "2024-03-12T15:00:00.000Z", "EndDateTime": "2024-03-12T15:30:00.000Z",
         "CreatedDate": "2024-03-08T09:00:00.000Z"},
        # booked before L2's as_of, held after it: not yet a meeting at as_of
        {"Id": "00U2", "WhoId": L2, "Subject": "Meeting", "Type": "Meeting",
         "EventSubtype": "Event", "Outcome__c": "Meeting Set", "ActivityDate": "2024-04-12",
         "ActivityDateTime": "2024-04-12T10:00:00.000Z", "DurationInMinutes": "30",
         "StartDateTime": "2024-04-12T10:00:00.000Z", "EndDateTime": "2024-04-12T10:30:00.000Z",
         "CreatedDate": "2024-04-05T10:00:00.000Z"},
    ])  # fmt: skip
    campaign = pd.DataFrame([
        {"Id": "701A", "Name": "Webinar March", "Type": "Webinar", "Status": "Completed",
         "IsActive": "false", "Direction__c": ""},
        {"Id": "701B", "Name": "Nurture", "Type": "Email", "Status": "In Progress",
         "IsActive": "true", "Direction__c": ""},
        {"Id": "701C", "Name": "Webinar April", "Type": "Webinar", "Status": "Planned",
         "IsActive": "true", "Direction__c": ""},
        {"Id": "701D", "Name": "Ebook", "Type": "Content Download", "Status": "Completed",
         "IsActive": "false", "Direction__c": ""},
        {"Id": "701E", "Name": "Partner webinar", "Type": "Webinar", "Status": "Completed",
         "IsActive": "false", "Direction__c": "Outbound"},
    ])  # fmt: skip
    member = pd.DataFrame([
        {"Id": "00v1", "CampaignId": "701A", "LeadId": L1, "ContactId": ACME_CFO,
         "Status": "Attended", "HasResponded": "true", "FirstRespondedDate": "2024-03-03",
         "First_Responded_At__c": "", "CreatedDate": "2024-02-28T10:00:00.000Z"},
        # responded on L1's as_of day: a date alone is the end of it, after as_of
        {"Id": "00v2", "CampaignId": "701B", "LeadId": L1, "ContactId": "",
         "Status": "Clicked", "HasResponded": "true", "FirstRespondedDate": "2024-03-31",
         "First_Responded_At__c": "", "CreatedDate": "2024-03-20T10:00:00.000Z"},
        {"Id": "00v3", "CampaignId": "701C", "LeadId": L1, "ContactId": "", "Status": "Sent",
         "HasResponded": "false", "FirstRespondedDate": "", "First_Responded_At__c": "",
         "CreatedDate": "2024-03-20T10:00:00.000Z"},
        # the date-time custom field says more than the date
        {"Id": "00v4", "CampaignId": "701D", "LeadId": L2, "ContactId": "",
         "Status": "Downloaded", "HasResponded": "true", "FirstRespondedDate": "2024-03-15",
         "First_Responded_At__c": "2024-03-15T08:30:00.000Z",
         "CreatedDate": "2024-03-14T10:00:00.000Z"},
        {"Id": "00v5", "CampaignId": "701E", "LeadId": L3, "ContactId": "",
         "Status": "Attended", "HasResponded": "true", "FirstRespondedDate": "2024-03-16",
         "First_Responded_At__c": "", "CreatedDate": "2024-03-14T10:00:00.000Z"},
    ])  # fmt: skip
    history = pd.DataFrame([
        {"Id": "017A1", "LeadId": L2, "Field": "created", "OldValue": "", "NewValue": "",
         "CreatedDate": "2024-03-10T00:00:00.000Z"},
        {"Id": "017A2", "LeadId": L2, "Field": "Status", "OldValue": "Open - Not Contacted",
         "NewValue": "Working - Contacted", "CreatedDate": "2024-03-11T09:00:00.000Z"},
        {"Id": "017A3", "LeadId": L2, "Field": "Status", "OldValue": "Working - Contacted",
         "NewValue": "Qualified", "CreatedDate": "2024-04-15T10:00:00.000Z"},
        {"Id": "017A4", "LeadId": L2, "Field": "Rating", "OldValue": "Cold", "NewValue": "Warm",
         "CreatedDate": "2024-03-20T10:00:00.000Z"},
        {"Id": "017A5", "LeadId": L3, "Field": "Status", "OldValue": "Open - Not Contacted",
         "NewValue": "Closed - Not Converted", "CreatedDate": "2024-03-20T10:00:00.000Z"},
    ])  # fmt: skip
    return {"Lead": lead, "Account": account, "Contact": contact, "Opportunity": opportunity,
            "OpportunityHistory": stages, "Task": task, "Event": event, "Campaign": campaign,
            "CampaignMember": member, "LeadHistory": history}  # fmt: skip


def _write(export: Export, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, frame in export.items():
        frame.to_csv(root / f"{name}.csv", index=False)
    return root


def _rows(root: Path, config: FeatureConfig, days: float = 30, **kw: Path) -> pd.DataFrame:
    crm = load_salesforce(root, config, **kw)
    return snapshot(crm, build_spec(config), as_of_after_creation(crm.leads, days)).set_index(
        "lead_id"
    )


def test_detects_an_export(tmp_path: Path) -> None:
    assert not is_salesforce_export(tmp_path)
    (tmp_path / "leads.csv").write_text("lead_id\nx\n")  # a canonical directory
    assert not is_salesforce_export(tmp_path)
    (tmp_path / "Lead.csv").write_text("Id,CreatedDate\nx,2024-01-01\n")
    assert is_salesforce_export(tmp_path)
    assert not is_salesforce_export(tmp_path / "Lead.csv")


def test_hand_written_export_gives_hand_computed_features(
    tmp_path: Path, config: FeatureConfig
) -> None:
    rows = _rows(_write(_export(), tmp_path / "sf"), config)
    assert list(rows.index) == [L1, L2, L3, L4]
    expected = {
        # L1 (as_of 2024-03-31 09:00): the converted account's and contact's firmographics,
        # not the Lead's own copy (Retail, 10 employees, Germany)
        L1: {"industry": "manufacturing", "region": "US", "employee_band": "1000-1999",
             "revenue_band": "$200M+", "process_maturity_band": "medium",
             "role_function": "vp_finance", "seniority": "c_suite",
             "buyer_role": "champion",  # Buyer_Role__c wins over the title rule
             "email_domain_type": "corporate", "lead_source": "inbound_marketing",
             "touches": 1, "inbound_touches": 1, "webinars": 1, "email_touches": 0,
             "web_sessions": 1, "pricing_page_sessions": 1, "page_views": 6.0,
             "pricing_page_views": 3.0, "demo_page_views": 0.0, "session_seconds": 240.0,
             "sales_activities": 4, "sales_calls": 2, "sales_emails": 1, "sales_demos": 1,
             "sales_meetings": 0, "conversations": 1, "demos_completed": 1, "meetings_set": 0,
             "unanswered_attempts": 0, "opportunity_opened": False,
             "engagement_first_7d": 2},
        # L2 (as_of 2024-04-09 00:00): firmographics from the Lead itself
        L2: {"industry": "logistics", "region": "UK", "employee_band": "500-999",
             "revenue_band": "$10M-$50M", "process_maturity_band": "high",
             "role_function": "vp_finance", "seniority": "director",  # Seniority__c wins
             "buyer_role": "economic_buyer", "email_domain_type": "personal",
             "lead_source": "partner_referral", "touches": 1, "inbound_touches": 1,
             "content_downloads": 1, "sales_activities": 2, "sales_calls": 2,
             "sales_meetings": 0, "meetings_set": 0, "conversations": 0,
             "unanswered_attempts": 2, "opportunity_opened": False},
        # L3 (as_of 2024-04-14 12:00): the campaign's own direction wins over its type's
        L3: {"region": "US", "role_function": "ap_manager",
             "seniority": "individual_contributor", "buyer_role": "champion",
             "lead_source": "not_recorded", "touches": 1, "outbound_touches": 1,
             "inbound_touches": 0, "webinars": 1, "sales_activities": 0},
        # L4 (as_of 2024-04-19 12:00): the shared contact's activities after L4 was created
        L4: {"industry": "manufacturing", "seniority": "c_suite", "buyer_role": "champion",
             "lead_source": "sdr_outbound", "sales_activities": 1, "unanswered_attempts": 1,
             "touches": 0, "opportunity_opened": False},
    }  # fmt: skip
    for lead, values in expected.items():
        for name, value in values.items():
            assert rows.loc[lead, name] == value, (lead, name, rows.loc[lead, name], value)
    for name in ("industry", "employee_band", "revenue_band", "process_maturity_band"):
        assert pd.isna(rows.loc[L3, name])
    # moments: the webinar response on 2024-03-03 (a date: its end), the session at 14:00
    first_touch = (pd.Timestamp("2024-03-31 09:00") - pd.Timestamp("2024-03-03")
                   - pd.Timedelta(days=1, microseconds=-1)) / pd.Timedelta(days=1)  # fmt: skip
    assert rows.loc[L1, "days_since_first_touch"] == pytest.approx(first_touch, abs=1e-12)
    assert rows.loc[L1, "days_since_last_session"] == pytest.approx(28 + 19 / 24, abs=1e-12)
    assert rows.loc[L1, "days_since_last_sales_activity"] == pytest.approx(18 + 17.5 / 24)
    assert rows.loc[L2, "days_since_first_touch"] == pytest.approx(24 + 15.5 / 24)


def test_outcomes_and_date_only_moments(tmp_path: Path, config: FeatureConfig) -> None:
    crm = load_salesforce(_write(_export(), tmp_path / "sf"), config)
    out = crm.outcomes.set_index("lead_id")
    end_of_day = pd.Timedelta(days=1, microseconds=-1)
    # L1 has no Status history: its ConvertedDate, a date on its day-30 as_of, is the end of it
    assert out.loc[L1, "sql_at"] == pd.Timestamp("2024-03-31") + end_of_day
    assert out.loc[L1, "won_at"] == pd.Timestamp("2024-04-20 12:00")  # OpportunityHistory
    assert out.loc[L2, "sql_at"] == pd.Timestamp("2024-04-15 10:00")  # Status -> Qualified
    assert out.loc[L3, "lost_at"] == pd.Timestamp("2024-03-20 10:00")  # -> Closed - Not Conv.
    assert out.loc[L4, "sql_at"] == pd.Timestamp("2024-04-25") + end_of_day
    assert pd.isna(out.loc[L2, "won_at"]) and pd.isna(out.loc[L4, "won_at"])
    # so at L1's day-30 as_of (09:00 that day) it is still open: a scoring case for target sql
    as_of = as_of_after_creation(crm.leads, 30)
    reasons = closed_at(crm.outcomes, crm.leads["lead_id"], as_of, target="sql")
    assert pd.isna(reasons.iloc[0])
    assert crm.has_outcome_dates
    # the opportunity opened at its creation, valued at the amount it opened with
    opened = crm.events[crm.events["type"] == "opportunity_opened"].set_index("lead_id")
    assert opened.loc[L1, "timestamp"] == pd.Timestamp("2024-03-31 15:00")
    assert opened.loc[L1, "value"] == 100_000.0  # not the current Amount, 120000
    assert crm.observation_end == pd.Timestamp("2024-04-25") + end_of_day


def test_notes_name_unknown_columns_and_current_state(
    tmp_path: Path, config: FeatureConfig
) -> None:
    crm = load_salesforce(_write(_export(), tmp_path / "sf"), config)
    text = "\n".join(crm.notes)
    assert "Lead.Favourite_Color__c" in text  # named by no mapping: listed, not dropped silently
    assert "LeadHistory fields no mapping names, not read: Rating" in text
    for column in ("Lead.Status", "Lead.Rating", "Lead.Lead_Score__c", "Lead.IsConverted",
                   "Opportunity.StageName", "Opportunity.IsWon", "Task.IsClosed"):  # fmt: skip
        assert column in text
    assert "1 CampaignMember row(s) without a response date" in text
    assert "OpportunityFieldHistory" in text  # absent objects are said
    assert "Lead.FirstName" not in text  # ignored on purpose (the mapping's ignore list)


CURRENT_STATE = {
    "Lead": {"Status": "ZZ-STATUS", "Rating": "ZZ-RATING", "IsConverted": "false",
             "Lead_Score__c": "987654", "ConvertedDate": "2024-03-02"},
    "Account": {"Type": "ZZ-TYPE"},
    "Opportunity": {"StageName": "ZZ-STAGE", "IsWon": "false", "IsClosed": "false",
                    "Probability": "13", "CloseDate": "2024-03-03", "Amount": "876543"},
    "Task": {"Status": "ZZ-TASK", "IsClosed": "true"},
    "CampaignMember": {"Status": "ZZ-MEMBER", "HasResponded": "false"},
}  # fmt: skip


def test_current_state_reaches_no_feature(tmp_path: Path, config: FeatureConfig) -> None:
    base = _rows(_write(_export(), tmp_path / "a"), config)
    changed = _export()
    for obj, values in CURRENT_STATE.items():
        for column, value in values.items():
            changed[obj][column] = value
    # the history of the Status drives outcomes only
    changed["LeadHistory"] = changed["LeadHistory"][changed["LeadHistory"]["Field"] != "Status"]
    crm = load_salesforce(_write(changed, tmp_path / "b"), config)
    spec = build_spec(config)
    rows = snapshot(crm, spec, as_of_after_creation(crm.leads, 30)).set_index("lead_id")
    pd.testing.assert_frame_equal(base, rows)

    planted = {v for values in CURRENT_STATE.values() for v in values.values()
               if v.startswith("ZZ") or v.isdigit()}  # fmt: skip
    for name in ("leads", "accounts", "contacts", "events"):
        table = crm.table(name)
        assert not set(table.columns) & CURRENT_STATE_COLUMNS
        assert not {c.lower() for c in table.columns} & {
            "status", "rating", "isconverted", "is_converted", "lead_score__c", "stagename",
            "iswon", "isclosed", "probability", "hasresponded"}  # fmt: skip
        cells = set(table.astype("string").stack().dropna().astype(str))
        assert not cells & planted, (name, cells & planted)
    cells = set(rows.astype("string").stack().dropna().astype(str))
    assert not cells & (planted | {"987654.0", "876543.0"})
    assert not set(rows.columns) & CURRENT_STATE_COLUMNS


def test_conversion_ids_as_current_state_keep_firmographics_on_the_lead(
    tmp_path: Path, config: FeatureConfig
) -> None:
    """An org whose Accounts are enriched after conversion lists the conversion ids as current
    state: every lead's fit fields then come from the Lead itself, and the ids still link."""
    raw = yaml.safe_load((packaged_config_dir() / "salesforce.yaml").read_text())
    raw["current_state"]["Lead"] += ["ConvertedAccountId", "ConvertedContactId"]
    mapping = tmp_path / "salesforce.yaml"
    mapping.write_text(yaml.safe_dump(raw, sort_keys=False))
    rows = _rows(_write(_export(), tmp_path / "sf"), config, mapping=mapping)
    assert rows.loc[L1, "industry"] == "Retail"  # the Lead's own, kept as given (unmapped)
    assert rows.loc[L1, "region"] == "Germany"
    assert rows.loc[L1, "employee_band"] == "1-49"
    assert rows.loc[L1, "seniority"] == "individual_contributor"  # its own Title, "Analyst"
    assert rows.loc[L1, "sales_activities"] == 4  # the contact's activities are still L1's
    assert rows.loc[L4, "sales_activities"] == 1


def _dated_config(config: FeatureConfig) -> FeatureConfig:
    intent = CustomField(name="intent_level", entity="lead", type="category",
                         group="engagement", label="Intent level",
                         template="Intent level is {value}", dated=True)  # fmt: skip
    return config.model_copy(update={"custom_fields": (*config.custom_fields, intent)})


def _dated_mapping(tmp_path: Path) -> Path:
    raw = yaml.safe_load((packaged_config_dir() / "salesforce.yaml").read_text())
    raw["history"]["Lead"] = {"Intent_Level__c": "intent_level"}
    path = tmp_path / "salesforce.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_history_one_second_past_as_of_changes_nothing(
    tmp_path: Path, config: FeatureConfig
) -> None:
    config = _dated_config(config)
    mapping = _dated_mapping(tmp_path)
    export = _export()
    intent = pd.DataFrame([{"Id": "017B1", "LeadId": L2, "Field": "Intent_Level__c",
                            "OldValue": "", "NewValue": "low",
                            "CreatedDate": "2024-03-12T00:00:00.000Z"}])  # fmt: skip
    export["LeadHistory"] = pd.concat([export["LeadHistory"], intent], ignore_index=True)
    base = _rows(_write(export, tmp_path / "base"), config, mapping=mapping)
    assert base.loc[L2, "intent_level"] == "low"
    assert pd.isna(base.loc[L1, "intent_level"])

    def moved(when: str) -> pd.DataFrame:
        probe = export | {"LeadHistory": export["LeadHistory"].copy()}
        later = pd.DataFrame([{"Id": "017B2", "LeadId": L2, "Field": "Intent_Level__c",
                               "OldValue": "low", "NewValue": "high",
                               "CreatedDate": when}])  # fmt: skip
        probe["LeadHistory"] = pd.concat([probe["LeadHistory"], later], ignore_index=True)
        # the Status change into SQL moves to the same moment: features do not see it either
        status = probe["LeadHistory"]["NewValue"] == "Qualified"
        probe["LeadHistory"].loc[status, "CreatedDate"] = when
        return _rows(_write(probe, tmp_path / when.replace(":", "")), config, mapping=mapping)

    # L2 was created 2024-03-10 00:00: its day-30 as_of is 2024-04-09 00:00:00
    at = moved("2024-04-09T00:00:00.000Z")
    assert at.loc[L2, "intent_level"] == "high"  # at as_of: seen
    pd.testing.assert_frame_equal(at.drop(index=L2), base.drop(index=L2))
    pd.testing.assert_frame_equal(base, moved("2024-04-09T00:00:01.000Z"))  # a second later


def test_history_needs_a_dated_custom_field(tmp_path: Path, config: FeatureConfig) -> None:
    with pytest.raises(ConfigError) as err:
        load_salesforce(_write(_export(), tmp_path / "sf"), config,
                        mapping=_dated_mapping(tmp_path))  # fmt: skip
    (line,) = err.value.lines()
    assert "salesforce.yaml line" in line and "intent_level" in line and "dated" in line


def test_mapping_errors_name_the_line(tmp_path: Path, config: FeatureConfig) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("fields:\n  Rating: lead.ratingz\ncurrent_state:\n  Leads: [Status]\n")
    with pytest.raises(ConfigError) as err:
        load_salesforce(_write(_export(), tmp_path / "sf"), config, mapping=bad)
    text = "\n".join(err.value.lines())
    assert "line 3: current_state" in text and "Leads" in text
    bad.write_text("fields:\n  Rating: lead.ratingz\n")
    with pytest.raises(ConfigError, match=r"line 2: fields.Rating: lead.ratingz is neither"):
        load_salesforce(tmp_path / "sf", config, mapping=bad)
    bad.write_text("fields:\n  Lead_Score__c: lead.sql_at\n")
    with pytest.raises(ConfigError, match=r"line 2: fields\.Lead_Score__c: .* is an outcome"):
        load_salesforce(tmp_path / "sf", config, mapping=bad)


@pytest.mark.parametrize(
    ("obj", "change", "field"),
    [
        ("Lead", lambda f: f.drop(columns=["Id"]), "Id"),
        ("Lead", lambda f: f.assign(CreatedDate=[
            "2024-03-01T09:00:00.000Z", "yesterday", "2024-03-15", ""]), "CreatedDate"),
        ("Lead", lambda f: f.assign(Id=[L1, L1, L3, L4]), "Id"),
        ("Lead", lambda f: f.assign(NumberOfEmployees="many"), "NumberOfEmployees"),
        ("Task", lambda f: f.assign(CreatedDate="last tuesday"), "CreatedDate"),
        ("Task", lambda f: f.drop(columns=["CreatedDate"]), "CreatedDate"),
        ("CampaignMember", lambda f: f.assign(FirstRespondedDate="2024-13-45"),
         "FirstRespondedDate"),
        ("LeadHistory", lambda f: f.drop(columns=["NewValue"]), "NewValue"),
    ],
)
def test_bad_input_names_file_and_field(
    tmp_path: Path, config: FeatureConfig, obj: str,
    change: Callable[[pd.DataFrame], pd.DataFrame], field: str,
) -> None:  # fmt: skip
    export = _export()
    export[obj] = change(export[obj])
    with pytest.raises(DataContractError) as err:
        load_salesforce(_write(export, tmp_path / "sf"), config)
    assert any(f"{obj}.csv" in p and field in p and "\n" not in p for p in err.value.problems), (
        err.value.problems
    )


def test_no_lead_file_is_named(tmp_path: Path, config: FeatureConfig) -> None:
    (tmp_path / "Task.csv").write_text("Id,WhoId,CreatedDate\nt,x,2024-01-01\n")
    with pytest.raises(DataContractError, match="no Lead file"):
        load_salesforce(tmp_path, config)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal snapshots by lead_id: counts and categories exactly, floats within 1e-9."""
    a, b = a.set_index("lead_id").sort_index(), b.set_index("lead_id").sort_index()
    assert list(a.index) == list(b.index) and list(a.columns) == list(b.columns)
    for column in a.columns:
        x, y = a[column], b[column]
        if pd.api.types.is_float_dtype(x):
            np.testing.assert_allclose(y.to_numpy(float), x.to_numpy(float), rtol=0, atol=1e-9,
                                       err_msg=column)  # fmt: skip
        else:
            pd.testing.assert_series_equal(y, x, check_dtype=False, obj=column)


def test_writer_round_trips_tiny_tables(tmp_path: Path, config: FeatureConfig) -> None:
    raw = tiny_tables()
    canonical = from_frames(raw, config)
    with pytest.warns(UserWarning, match="won without an opportunity"):
        write_salesforce(canonical, tmp_path / "sf", config)
    back = load_salesforce(tmp_path / "sf", config)
    spec = build_spec(config)
    for days in (1, 7, 30):
        _same(snapshot(canonical, spec, as_of_after_creation(canonical.leads, days)),
              snapshot(back, spec, as_of_after_creation(back.leads, days)))  # fmt: skip
    out = back.outcomes.set_index("lead_id")
    assert out.loc["l1", "sql_at"] == pd.Timestamp("2024-01-20")
    assert out.loc["l2", "lost_at"] == pd.Timestamp("2024-01-25")  # a lost Status, no opp
    assert back.observation_end == canonical.observation_end


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generate(tmp_path_factory.mktemp("sf") / "ri", "research_instructor", seed=17,
                     leads=300)  # fmt: skip


@pytest.mark.slow
def test_leadforge_world_round_trips_through_salesforce(
    world: Path, tmp_path: Path, config: FeatureConfig
) -> None:
    canonical = load_source(world, config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # everything expressible: nothing dropped
        write_salesforce(canonical, tmp_path / "sf", config)
    assert is_salesforce_export(tmp_path / "sf")
    back = load_salesforce(tmp_path / "sf", config)
    spec = build_spec(config)
    a = snapshot(canonical, spec, as_of_after_creation(canonical.leads, 30))
    b = snapshot(back, spec, as_of_after_creation(back.leads, 30))
    assert len(a) == len(b) == 300
    _same(a, b)
    keys = ["sql_at", "won_at", "lost_at"]
    pd.testing.assert_frame_equal(
        back.outcomes.set_index("lead_id")[keys].sort_index(),
        canonical.outcomes.set_index("lead_id")[keys].sort_index(), check_index_type=False,
    )  # fmt: skip
    assert back.outcomes["won_at"].notna().sum() > 0
    assert back.observation_end == canonical.observation_end
    assert not any("columns no mapping names" in n for n in back.notes)

    # the export really holds the traps
    lead = pd.read_csv(tmp_path / "sf" / "Lead.csv", dtype=str)
    task = pd.read_csv(tmp_path / "sf" / "Task.csv", dtype=str)
    assert (task["ActivityDate"] != task["CreatedDate"].str[:10]).all()
    assert lead["ConvertedDate"].dropna().str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert {"Status", "Rating", "IsConverted", "Lead_Score__c"} <= set(lead.columns)
    assert task["WhoId"].str.startswith("cnt_").any()  # converted: activities on the contact
    history = pd.read_csv(tmp_path / "sf" / "LeadHistory.csv", dtype=str)
    assert (history["Field"] == "Status").sum() >= back.outcomes["sql_at"].notna().sum()

    # and they bite: a reader dating Tasks by their due date would see other features
    task["CreatedDate"] = task["ActivityDate"]
    task["CompletedDateTime"] = None
    task.to_csv(tmp_path / "sf" / "Task.csv", index=False)
    naive = load_salesforce(tmp_path / "sf", config)
    c = snapshot(naive, spec, as_of_after_creation(naive.leads, 30))
    assert not c["sales_activities"].equals(b["sales_activities"])
