"""HubSpot exports: a hand-written export with features computed by hand, current state kept
out of every feature, point-in-time property history, one-line errors, and a lossless round
trip of a leadforge world through :func:`write_hubspot`."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from leadscore.features.config import ConfigError, FeatureConfig
from leadscore.features.configdir import packaged_config_dir
from leadscore.features.contract import CrmData
from leadscore.features.schema import CURRENT_STATE_COLUMNS, DataContractError
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.sources import load_source
from leadscore.features.sources.hubspot import (
    is_hubspot_export,
    load_hubspot,
    load_mapping,
    write_hubspot,
)
from leadscore.features.spec import build_spec
from tests.conftest import _generate, tiny_tables

# ---------------------------------------------------------------------------------------------
# a hand-written export: three contacts (leads), two companies, two deals, every activity kind.
# Each lead is scored 30 days after creation:
#   101 created 2024-01-01T00:00:00Z         -> as_of 2024-01-31 00:00:00
#   102 created 2024-01-05 (a date alone)    -> 2024-01-05 23:59:59.999999, as_of 2024-02-04 ...
#   103 created 1704153600000 (epoch ms)     -> 2024-01-02 00:00:00, as_of 2024-02-01 00:00:00

CONTACTS = """\
hs_object_id,createdate,hs_analytics_source,hubspot_owner_id,jobtitle,associatedcompanyid,email,seniority,hs_buying_role,email_domain_type,lifecyclestage,hs_lead_status,hubspotscore,hs_predictivescoringtier,num_associated_deals,hs_lifecyclestage_salesqualifiedlead_date
101,2024-01-01T00:00:00Z,ORGANIC_SEARCH,7,VP Finance,9001,a@acme.com,director,,corporate,customer,CONNECTED,88,tier_1,1,2024-01-20
102,2024-01-05,REFERRALS,8,AP Manager,,b@globex.com,,END_USER,,opportunity,UNQUALIFIED,40,tier_3,1,
103,1704153600000,OFFLINE,7,IT Director,,c@initech.com,,,,salesqualifiedlead,OPEN_DEAL,61,tier_2,0,2024-01-10
"""  # noqa: E501 (one CSV row per line)
COMPANIES = """\
hs_object_id,name,industry,numberofemployees,annualrevenue,country,process_maturity_band,domain
9001,Acme,LOGISTICS_AND_SUPPLY_CHAIN,250,20000000,United States,high,acme.com
9002,Globex,MACHINERY,1500,500000,Germany,,globex.com
"""
DEALS = """\
hs_object_id,dealname,createdate,amount,dealstage,closedate,hs_is_closed_won,pipeline
5001,Acme AP,2024-01-20T10:00:00Z,60000,closedwon,2024-03-01T12:00:00Z,true,default
5002,Globex AP,2024-02-20T00:00:00Z,30000,closedlost,2024-03-15,false,default
"""
CALLS = """\
hs_object_id,hs_timestamp,hs_createdate,hs_call_direction,hs_call_disposition,hs_activity_type,hubspot_owner_id
7001,2024-01-03T15:00:00Z,2024-01-03T15:30:00Z,OUTBOUND,f240bbac-87c9-4f6e-bf70-924b57d47db7,,7
7002,2024-01-04T09:00:00Z,,OUTBOUND,Left voicemail,Prospecting,7
7003,,2024-01-06T08:00:00Z,INBOUND,Connected,,8
7004,2024-02-15T00:00:00Z,,OUTBOUND,f240bbac-87c9-4f6e-bf70-924b57d47db7,,7
"""
EMAILS = """\
hs_object_id,hs_timestamp,hs_email_direction,hs_email_subject
8001,2024-01-08T10:00:00Z,EMAIL,Following up
8002,2024-01-09,INCOMING_EMAIL,Question about pricing
"""
MEETINGS = """\
hs_object_id,hs_timestamp,hs_meeting_outcome,hs_activity_type
8101,2024-01-15T16:00:00Z,SCHEDULED,
8102,2024-01-25T16:00:00Z,COMPLETED,Demo
"""
COMMUNICATIONS = """\
hs_object_id,hs_timestamp,hs_communication_channel_type
8201,2024-01-07T00:00:00Z,LINKEDIN_MESSAGE
"""
NOTES = """\
hs_object_id,hs_timestamp,hs_note_body
8301,2024-01-08T00:00:00Z,Interested in Q2
"""
FORMS = """\
conversionId,contactId,submittedAt,formTitle,pageUrl
f1,101,1704204000000,Webinar registration: AP automation,https://acme.example/webinar
f2,102,2024-01-06T12:00:00Z,Download the AP ebook,https://acme.example/ebook
"""
EMAIL_EVENTS = """\
id,type,recipient,created,campaignName
m1,SENT,A@acme.com,2024-01-10T09:00:00Z,January newsletter
m2,OPEN,a@acme.com,2024-01-10T10:00:00Z,January newsletter
"""
SESSIONS = """\
sessionId,contactId,startedAt,landingPageUrl,pageViews,pricingPageViews,demoPageViews,durationSeconds
s1,101,2024-01-12T10:00:00Z,https://acme.example/pricing,5,2,0,300
s2,101,2024-02-10T10:00:00Z,https://acme.example/pricing,9,9,0,900
s3,102,2024-01-06T12:00:00Z,https://acme.example/demo,3,0,1,120
"""
ASSOCIATIONS = """\
fromObjectType,fromObjectId,toObjectType,toObjectId,associationLabel
contacts,102,companies,9002,
deals,5001,contacts,101,
0-1,102,0-3,5002,
calls,7001,contacts,101,
calls,7002,contacts,101,
calls,7003,contacts,102,
calls,7004,contacts,101,
emails,8001,contacts,101,
emails,8002,contacts,103,
meetings,8101,contacts,101,
meetings,8102,contacts,101,
communications,8201,contacts,103,
notes,8301,contacts,101,
"""


def history_lines() -> list[dict]:
    """The property history, newest entry first (as HubSpot lists it)."""

    def entries(*pairs: tuple[str, str | int]) -> list[dict]:
        return [{"value": v, "timestamp": t, "sourceType": "CRM_UI", "sourceId": "userId:7"}
                for v, t in reversed(pairs)]  # fmt: skip

    return [
        {"objectType": "contacts", "id": "101", "propertiesWithHistory": {
            "lifecyclestage": entries(("lead", "2024-01-01T00:00:00Z"),
                                      ("salesqualifiedlead", "2024-01-20T10:00:00Z"),
                                      ("customer", "2024-03-01T12:00:00Z")),
            "email_domain_type": entries(("personal", "2024-01-02T00:00:00Z"),
                                         ("corporate", "2024-01-20T00:00:00Z")),
            "hs_lead_status": entries(("NEW", "2024-01-01T00:00:00Z")),
        }},
        # SQL eleven days after lead 102's as_of: the snapshot cannot see it
        {"objectType": "contacts", "id": "102", "propertiesWithHistory": {
            "lifecyclestage": entries(("lead", 1704499199999),
                                      ("salesqualifiedlead", "2024-02-10T00:00:00Z")),
        }},
        {"objectType": "deals", "id": "5001", "propertiesWithHistory": {
            "dealstage": entries(("appointmentscheduled", "2024-01-20T10:00:00Z"),
                                 ("closedwon", "2024-03-01T12:00:00Z")),
            "amount": entries(("50000", "2024-01-20T10:00:00Z"),
                              ("60000", "2024-02-15T00:00:00Z")),
        }},
    ]  # fmt: skip


FILES = {
    "contacts.csv": CONTACTS, "companies.csv": COMPANIES, "deals.csv": DEALS,
    "calls.csv": CALLS, "emails.csv": EMAILS, "meetings.csv": MEETINGS,
    "communications.csv": COMMUNICATIONS, "notes.csv": NOTES, "form_submissions.csv": FORMS,
    "marketing_email_events.csv": EMAIL_EVENTS, "web_sessions.csv": SESSIONS,
    "associations.csv": ASSOCIATIONS,
}  # fmt: skip


def write_export(root: Path, history: list[dict] | None = None, **replace: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in {**FILES, **replace}.items():
        (root / name).write_text(text)
    lines = history_lines() if history is None else history
    (root / "property_history.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


def day30(crm: CrmData, config: FeatureConfig) -> pd.DataFrame:
    rows = snapshot(crm, build_spec(config), as_of_after_creation(crm.leads, 30))
    return rows.set_index("lead_id").sort_index()


def days(later: str, earlier: str) -> float:
    return (pd.Timestamp(later) - pd.Timestamp(earlier)) / pd.Timedelta(days=1)


AS_OF = {"101": "2024-01-31 00:00:00", "102": "2024-02-04 23:59:59.999999",
         "103": "2024-02-01 00:00:00"}  # fmt: skip

EXPECTED: dict[str, dict[str, object]] = {
    "101": {
        "lead_age_days": 30.0, "industry": "logistics", "region": "US",
        "employee_band": "200-499", "revenue_band": "$10M-$50M", "process_maturity_band": "high",
        # titles.yaml reads "VP Finance"; the `seniority` property wins over the rule (vp)
        "role_function": "vp_finance", "seniority": "director", "buyer_role": "economic_buyer",
        "email_domain_type": "corporate", "lead_source": "inbound_marketing",
        # touches: webinar form (01-02 14:00, epoch ms), prospecting call (01-04), newsletter
        # sent (01-10); the OPEN event is no touch
        "touches": 3, "inbound_touches": 1, "outbound_touches": 2, "webinars": 1,
        "email_touches": 1, "call_touches": 1, "content_downloads": 0, "linkedin_touches": 0,
        "touches_first_7d": 2, "touches_last_7d": 0,
        "days_since_first_touch": days(AS_OF["101"], "2024-01-02 14:00"),
        "days_since_last_touch": days(AS_OF["101"], "2024-01-10 09:00"),
        "inbound_share": 1 / 3,
        # the 02-10 visit is after as_of
        "web_sessions": 1, "pricing_page_sessions": 1, "demo_page_sessions": 0,
        "page_views": 5.0, "pricing_page_views": 2.0, "demo_page_views": 0.0,
        "session_seconds": 300.0,
        "days_since_last_session": days(AS_OF["101"], "2024-01-12 10:00"),
        "engagement_first_7d": 2, "engagement_last_7d": 0, "engagement_prev_7d": 0,
        "engagement_trend": 0.0,
        "days_since_last_engagement": days(AS_OF["101"], "2024-01-12 10:00"),
        # sales: call (connected), email, meeting (scheduled), demo (completed); the 02-15 call
        # is after as_of
        "sales_activities": 4, "sales_calls": 1, "sales_emails": 1, "sales_meetings": 1,
        "sales_demos": 1, "meetings_set": 1, "demos_completed": 0, "conversations": 2,
        "unanswered_attempts": 0, "sales_activities_last_7d": 1,
        "days_since_last_sales_activity": days(AS_OF["101"], "2024-01-25 16:00"),
        # the deal's first amount (50000), not today's (60000)
        "opportunity_opened": True, "opportunity_value": 50000.0,
        "days_since_opportunity_opened": days(AS_OF["101"], "2024-01-20 10:00"),
    },
    "102": {
        "lead_age_days": 30.0, "industry": "manufacturing", "region": "Germany",
        "employee_band": "1000-1999", "revenue_band": "<$1M", "process_maturity_band": None,
        "role_function": "ap_manager", "seniority": "manager", "buyer_role": "end_user",
        "email_domain_type": None, "lead_source": "partner_referral",
        # an inbound call (dated by hs_createdate: no hs_timestamp) and an ebook download
        "touches": 2, "inbound_touches": 2, "outbound_touches": 0, "call_touches": 1,
        "content_downloads": 1, "touches_first_7d": 2,
        "days_since_first_touch": days(AS_OF["102"], "2024-01-06 08:00"),
        "web_sessions": 1, "demo_page_sessions": 1, "page_views": 3.0, "demo_page_views": 1.0,
        "session_seconds": 120.0, "sales_activities": 0,
        "days_since_last_sales_activity": math.nan,
        # the deal opened after as_of
        "opportunity_opened": False, "opportunity_value": math.nan,
    },
    "103": {
        "lead_age_days": 30.0, "industry": None, "employee_band": None,
        "role_function": "it_director", "seniority": "director",
        "buyer_role": "technical_evaluator", "lead_source": "sdr_outbound",
        # an inbound email dated 2024-01-09 (the end of that day), a LinkedIn message out
        "touches": 2, "inbound_touches": 1, "outbound_touches": 1, "email_touches": 1,
        "linkedin_touches": 1,
        "days_since_last_touch": days(AS_OF["103"], "2024-01-09 23:59:59.999999"),
        "days_since_first_touch": days(AS_OF["103"], "2024-01-07 00:00"),
        "sales_activities": 0, "opportunity_opened": False,
    },
}  # fmt: skip


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return write_export(tmp_path / "hubspot")


def test_is_detected_and_not_confused_with_a_canonical_directory(
    export: Path, tmp_path: Path
) -> None:
    assert is_hubspot_export(export)
    canonical = tmp_path / "canonical"
    canonical.mkdir()
    for name, frame in tiny_tables().items():
        frame.to_csv(canonical / f"{name}.csv", index=False)
    assert not is_hubspot_export(canonical)  # it has leads (and contacts, accounts, events)
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "contacts.csv").write_text(CONTACTS)
    assert not is_hubspot_export(alone)  # contacts alone could be anything
    (alone / "property_history.jsonl").write_text("")
    assert is_hubspot_export(alone)


def test_hand_written_export_gives_the_hand_computed_features(
    export: Path, config: FeatureConfig
) -> None:
    crm = load_hubspot(export, config)
    rows = day30(crm, config)
    assert list(rows.index) == ["101", "102", "103"]
    for lead, expected in EXPECTED.items():
        for name, value in expected.items():
            got = rows.loc[lead, name]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                assert pd.isna(got), (lead, name, got)
            elif isinstance(value, float):
                assert got == pytest.approx(value, abs=1e-9), (lead, name, got)
            else:
                assert got == value, (lead, name, got)
    assert rows.loc["101", "as_of"] == pd.Timestamp(AS_OF["101"])
    assert rows.loc["102", "as_of"] == pd.Timestamp(AS_OF["102"])  # a date alone: end of day
    assert rows.loc["103", "as_of"] == pd.Timestamp(AS_OF["103"])  # epoch milliseconds
    leads = crm.leads.set_index("lead_id")
    assert leads.loc["101", "owner"] == "7"
    assert leads.loc["102", "account_id"] == "9002"  # from the association
    assert pd.isna(leads.loc["103", "account_id"])


def test_outcomes_are_dated_from_history_with_fallbacks(
    export: Path, config: FeatureConfig
) -> None:
    crm = load_hubspot(export, config)
    out = crm.outcomes.set_index("lead_id")
    assert crm.has_outcome_dates
    # lifecycle history; history without an SQL entry falls back to the date property
    assert out.loc["101", "sql_at"] == pd.Timestamp("2024-01-20 10:00")
    assert out.loc["102", "sql_at"] == pd.Timestamp("2024-02-10")
    assert out.loc["103", "sql_at"] == pd.Timestamp("2024-01-10 23:59:59.999999")
    # won from the deal's stage history; lost from the current stage and its close date
    assert out.loc["101", "won_at"] == pd.Timestamp("2024-03-01 12:00")
    assert pd.isna(out.loc["101", "lost_at"])
    assert out.loc["102", "lost_at"] == pd.Timestamp("2024-03-15 23:59:59.999999")
    assert out[["won_at", "lost_at"]].loc["103"].isna().all()
    # current state is carried in the outcomes table only
    assert out.loc["101", "lifecyclestage"] == "customer"


def test_sql_after_as_of_has_no_effect_on_the_snapshot(
    export: Path, tmp_path: Path, config: FeatureConfig
) -> None:
    without = [h for h in history_lines() if h["id"] != "102"]
    other = load_hubspot(write_export(tmp_path / "no_sql", without), config)
    crm = load_hubspot(export, config)
    assert pd.isna(other.outcomes.set_index("lead_id").loc["102", "sql_at"])
    assert crm.outcomes.set_index("lead_id").loc["102", "sql_at"] > pd.Timestamp(AS_OF["102"])
    pd.testing.assert_frame_equal(day30(crm, config), day30(other, config))
    # moved to one second past as_of: the outcome moves, the snapshot does not
    moved = history_lines()
    second_late = pd.Timestamp(AS_OF["102"]) + pd.Timedelta(seconds=1)
    lifecycle = moved[1]["propertiesWithHistory"]["lifecyclestage"]
    lifecycle[0]["timestamp"] = second_late.isoformat() + "Z"
    near = load_hubspot(write_export(tmp_path / "near", moved), config)
    assert near.outcomes.set_index("lead_id").loc["102", "sql_at"] == second_late
    pd.testing.assert_frame_equal(day30(crm, config), day30(near, config))


def _tampered(text: str, column: str, values: list[str]) -> str:
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    frame[column] = values
    return frame.to_csv(index=False)


def test_current_state_never_reaches_a_feature(
    export: Path, tmp_path: Path, config: FeatureConfig
) -> None:
    crm = load_hubspot(export, config)
    state = load_mapping().state("contacts") | load_mapping().state("deals")
    assert {"lifecyclestage", "hs_lead_status", "hubspotscore", "hs_predictivescoringtier",
            "dealstage", "hs_is_closed_won", "num_associated_deals"} <= state  # fmt: skip
    for table in (crm.leads, crm.accounts, crm.contacts, crm.events):
        assert not set(table.columns) & (state | CURRENT_STATE_COLUMNS)
    contacts = CONTACTS
    for column, values in {
        "lifecyclestage": ["lead", "other", "customer"],
        "hs_lead_status": ["NEW", "NEW", "UNQUALIFIED"],
        "hubspotscore": ["1", "99", "0"],
        "hs_predictivescoringtier": ["tier_4", "tier_1", "tier_4"],
        "num_associated_deals": ["7", "0", "3"],
    }.items():
        contacts = _tampered(contacts, column, values)
    deals = _tampered(DEALS, "dealstage", ["closedlost", "closedwon"])
    deals = _tampered(deals, "hs_is_closed_won", ["false", "true"])
    changed = load_hubspot(write_export(tmp_path / "changed", **{
        "contacts.csv": contacts, "deals.csv": deals}), config)  # fmt: skip
    assert changed.outcomes.set_index("lead_id").loc["101", "lifecyclestage"] == "lead"
    pd.testing.assert_frame_equal(day30(crm, config), day30(changed, config))


def _dated_email_domain(config: FeatureConfig) -> FeatureConfig:
    """The config with email_domain_type read from its history (a dated field)."""
    fields = tuple(f.model_copy(update={"dated": True}) if f.name == "email_domain_type" else f
                   for f in config.custom_fields)  # fmt: skip
    return config.model_copy(update={"custom_fields": fields})


def test_history_becomes_point_in_time_field_updates(
    export: Path, tmp_path: Path, config: FeatureConfig
) -> None:
    dated = _dated_email_domain(config)
    crm = load_hubspot(export, dated)
    updates = crm.events[crm.events["type"] == "field_update"]
    assert sorted(updates["field_value"]) == ["corporate", "personal"]
    assert day30(crm, dated).loc["101", "email_domain_type"] == "corporate"

    def with_entry(at: str, name: str) -> pd.DataFrame:
        lines = history_lines()
        lines[0]["propertiesWithHistory"]["email_domain_type"].insert(
            0, {"value": "personal", "timestamp": at, "sourceType": "CRM_UI"})
        return day30(load_hubspot(write_export(tmp_path / name, lines), dated), dated)

    base = day30(crm, dated)
    # one second past as_of: nothing changes
    pd.testing.assert_frame_equal(with_entry("2024-01-31T00:00:01Z", "late"), base)
    # at as_of exactly: the new value is seen (the check above is not vacuous)
    assert with_entry("2024-01-31T00:00:00Z", "on_time").loc["101", "email_domain_type"] == (
        "personal")


def test_every_column_no_mapping_names_is_noted(
    export: Path, tmp_path: Path, config: FeatureConfig
) -> None:
    crm = load_hubspot(export, config)
    notes = "\n".join(crm.notes)
    assert "marketing_email_events.csv: 1 event(s) of types" in notes  # the OPEN
    assert "notes.csv: 1 notes" in notes
    assert "'Germany'" in notes  # a country no value map names: kept, and said so
    assert "hs_lead_status" not in notes  # current state is named (outcomes only)
    extra = CONTACTS.replace("hs_lifecyclestage_salesqualifiedlead_date\n",
                             "hs_lifecyclestage_salesqualifiedlead_date,favorite_color\n")
    extra = extra.replace("2024-01-20\n", "2024-01-20,blue\n")
    crm = load_hubspot(write_export(tmp_path / "extra", **{"contacts.csv": extra}), config)
    found = [n for n in crm.notes if "favorite_color" in n]
    assert len(found) == 1 and "contacts.csv: 1 column(s) no mapping names" in found[0]


def _one_line(exc: pytest.ExceptionInfo[DataContractError]) -> str:
    lines = exc.value.lines()
    assert len(lines) == 1, lines
    return lines[0]


def test_contacts_without_createdate_is_one_line_naming_file_and_property(
    tmp_path: Path, config: FeatureConfig
) -> None:
    broken = CONTACTS.replace("hs_object_id,createdate,", "hs_object_id,created,")
    root = write_export(tmp_path / "x", **{"contacts.csv": broken})
    with pytest.raises(DataContractError) as exc:
        load_hubspot(root, config)
    line = _one_line(exc)
    assert "contacts.csv" in line and "'createdate'" in line and "created_at" in line


def test_malformed_history_line_names_the_line(tmp_path: Path, config: FeatureConfig) -> None:
    root = write_export(tmp_path / "x")
    text = (root / "property_history.jsonl").read_text().splitlines()
    text[1] = text[1][:-5]  # truncated
    (root / "property_history.jsonl").write_text("\n".join(text) + "\n")
    with pytest.raises(DataContractError) as exc:
        load_hubspot(root, config)
    line = _one_line(exc)
    assert "property_history.jsonl line 2: not valid JSON" in line
    (root / "property_history.jsonl").write_text(json.dumps({"id": "101"}) + "\n")
    with pytest.raises(DataContractError, match="line 1: expected"):
        load_hubspot(root, config)


def test_bad_timestamps_name_file_property_and_row(tmp_path: Path, config: FeatureConfig) -> None:
    root = write_export(tmp_path / "x", **{"calls.csv": CALLS.replace(
        "2024-01-04T09:00:00Z", "yesterday")})  # fmt: skip
    with pytest.raises(DataContractError) as exc:
        load_hubspot(root, config)
    line = _one_line(exc)
    assert "calls.csv: property hs_timestamp" in line and "data row 2: 'yesterday'" in line
    lines = history_lines()
    lines[2]["propertiesWithHistory"]["amount"][0]["timestamp"] = "soon"
    root = write_export(tmp_path / "y", lines)
    with pytest.raises(DataContractError) as exc:
        load_hubspot(root, config)
    assert "property_history.jsonl line 3: property amount: timestamp 'soon'" in _one_line(exc)


def test_the_mapping_refuses_current_state_with_its_line(tmp_path: Path) -> None:
    text = (packaged_config_dir() / "hubspot.yaml").read_text()
    data = yaml.safe_load(text)
    assert load_mapping().contacts.source.values["OFFLINE"] == "sdr_outbound"
    bad = text.replace("seniority: {property: seniority}", "seniority: {property: hubspotscore}")
    (tmp_path / "hubspot.yaml").write_text(bad)
    with pytest.raises(ConfigError) as exc:
        load_mapping(tmp_path / "hubspot.yaml")
    line = next(i for i, t in enumerate(bad.splitlines(), 1) if "hubspotscore}" in t)
    assert exc.value.lines() == [
        f"{tmp_path / 'hubspot.yaml'} line {line}: contacts.fields.seniority.property: "
        "hubspotscore is current state (current_state.contacts); it can never be a feature"
    ]
    data["contacts"]["owner_id"] = "x"
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"line \d+: contacts.owner_id: unknown key"):
        load_mapping(tmp_path / "typo.yaml")


@pytest.mark.slow
def test_leadforge_world_round_trips_through_hubspot(
    tmp_path: Path, config: FeatureConfig
) -> None:
    bundle = _generate(tmp_path / "lf", "research_instructor", seed=7, leads=300)
    crm = load_source(bundle, config)
    write_hubspot(crm, tmp_path / "hubspot", config)
    out = tmp_path / "hubspot"
    assert is_hubspot_export(out)
    contacts = pd.read_csv(out / "contacts.csv", dtype=str)
    for trap in ("lifecyclestage", "hs_lead_status", "hubspotscore",
                 "hs_lifecyclestage_salesqualifiedlead_date"):  # fmt: skip
        assert contacts[trap].notna().any(), trap
    first = json.loads((out / "property_history.jsonl").read_text().splitlines()[0])
    assert set(first) == {"objectType", "id", "propertiesWithHistory"}

    back = load_hubspot(out, config)
    assert not [n for n in back.notes if "not read" in n or "does not name" in n], back.notes
    a, b = day30(crm, config), day30(back, config)
    assert len(a) == len(b) == 300
    assert a["touches"].sum() > 0 and a["opportunity_opened"].sum() > 0
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-9)
    keys = ["lead_id", "sql_at", "won_at", "lost_at"]
    pd.testing.assert_frame_equal(
        crm.outcomes[keys].sort_values("lead_id").reset_index(drop=True),
        back.outcomes[keys].sort_values("lead_id").reset_index(drop=True),
    )
    assert back.observation_end == crm.observation_end
    for kind in ("touch", "web_session", "sales_activity", "opportunity_opened"):
        assert (back.events["type"] == kind).sum() == (crm.events["type"] == kind).sum()
