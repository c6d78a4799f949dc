"""One-lead bodies (API, pyfunc, `lead.json`): the one validator, bad input named by field."""

from __future__ import annotations

from typing import Any

import pytest

from leadscore.features.config import FeatureConfig
from leadscore.features.online import OnlineBuilder
from leadscore.features.payload import LeadError, ParsedLead, edit_distance, payload_model
from leadscore.features.payload import validate_lead as _validate
from leadscore.features.spec import build_spec


def validate(config: FeatureConfig, body: dict[str, Any]) -> ParsedLead:
    return _validate(payload_model(config), body)


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "lead": {"lead_id": "L1", "created_at": "2024-01-01T00:00:00Z",
                 "source": "inbound_marketing"},
        "account": {"account_id": "A1", "industry": "logistics", "employee_band": "200-499",
                    "process_maturity_band": "high"},
        "contact": {"contact_id": "C1", "seniority": "vp"},
        "events": [
            {"event_id": "e1", "timestamp": "2024-01-03T10:00:00Z", "type": "web_session",
             "subtype": "pricing_page", "pricing_page_views": 3},
            {"event_id": "e2", "timestamp": "2024-01-05", "type": "touch", "direction": "inbound"},
        ],
        "as_of": "2024-01-31T00:00:00Z",
    }  # fmt: skip
    return body | changes


def _errors(config: FeatureConfig, body: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(LeadError) as info:
        validate(config, body)
    return [(p.loc, p.msg) for p in info.value.problems]


def test_valid_body_gives_canonical_records(config: FeatureConfig) -> None:
    parsed = validate(config, _body())
    lead, account, contact, events = parsed.lead, parsed.account, parsed.contact, parsed.events
    assert lead["account_id"] == "A1" and lead["contact_id"] == "C1"
    assert account["process_maturity_band"] == "high"  # a custom field, typed from config
    assert [e["lead_id"] for e in events] == ["L1", "L1"]
    assert parsed.ignored_fields == ()
    row = OnlineBuilder(build_spec(config)).row(lead, account, contact, events, parsed.as_of)
    assert row["pricing_page_views"] == 3.0
    assert row["inbound_touches"] == 1
    assert row["lead_age_days"] == 30.0


def test_unknown_nested_fields_are_kept_and_listed(config: FeatureConfig) -> None:
    body = _body()
    body["events"][0]["utm_campaign"] = "spring"
    body["events"][1]["utm_campaign"] = "summer"
    body["lead"]["hubspot_score"] = 12
    parsed = validate(config, body)
    assert parsed.events[0]["utm_campaign"] == "spring"
    assert parsed.lead["hubspot_score"] == 12
    # each unknown key once, by entity: what the caller sent that no feature reads
    assert parsed.ignored_fields == ("lead.hubspot_score", "events.utm_campaign")


@pytest.mark.parametrize(
    ("entity", "key", "meant"),
    [
        ("account", "employe_band", "employee_band"),  # a letter missing
        ("account", "Industry", "industry"),  # case only
        ("contact", "senority", "seniority"),
        ("lead", "soruce", "source"),  # two letters swapped
        ("account", "process_maturity_bnad", "process_maturity_band"),  # a declared custom field
    ],
)
def test_a_near_miss_of_a_known_field_is_refused(
    config: FeatureConfig, entity: str, key: str, meant: str
) -> None:
    body = _body()
    body[entity][key] = "x"
    assert _errors(config, body) == [((entity, key), f"unknown field; did you mean {meant!r}?")]


def test_a_near_miss_inside_an_event(config: FeatureConfig) -> None:
    body = _body()
    body["events"][1]["subtpye"] = "email"
    assert _errors(config, body) == [
        (("events", 1, "subtpye"), "unknown field; did you mean 'subtype'?")
    ]


def test_edit_distance() -> None:
    assert edit_distance("employe_band", "employee_band") == 1
    assert edit_distance("soruce", "source") == 1  # a transposition counts once
    assert edit_distance("budget", "budget_amount") == 3  # capped: limit + 1
    assert edit_distance("campaign", "channel") == 3


def test_unknown_top_level_field(config: FeatureConfig) -> None:
    ((loc, msg),) = _errors(config, _body(score_now=True))
    assert loc == ("score_now",) and msg.startswith("Extra inputs are not permitted")
    ((loc, msg),) = _errors(config, _body(event=[]))
    assert msg == "Extra inputs are not permitted; did you mean 'events'?"


@pytest.mark.parametrize(
    ("where", "value", "loc", "says"),
    [
        ("account", {"account_id": "A2"}, ("account", "account_id"), "the lead names account 'A1'"),
        ("contact", {"contact_id": "C9"}, ("contact", "contact_id"), "the lead names contact 'C1'"),
        ("contact", {"account_id": "A7"}, ("contact", "account_id"), "the account is 'A1'"),
    ],
)
def test_ids_that_contradict_each_other(
    config: FeatureConfig, where: str, value: dict[str, str], loc: tuple[str, ...], says: str
) -> None:
    body = _body()
    body["lead"] |= {"account_id": "A1", "contact_id": "C1"}
    body[where] |= value
    ((got_loc, msg),) = _errors(config, body)
    assert got_loc == loc and says in msg


def test_a_lead_created_after_as_of(config: FeatureConfig) -> None:
    body = _body(as_of="2023-12-31T00:00:00Z", events=[])
    ((loc, msg),) = _errors(config, body)
    assert loc == ("as_of",) and "before the lead's created_at" in msg
    body = _body(events=[])
    del body["as_of"]
    body["lead"]["created_at"] = "2999-01-01"
    ((loc, msg),) = _errors(config, body)
    assert loc == ("lead", "created_at") and "is in the future" in msg


def test_wrong_type_negative_count_nan_and_bad_timestamp(config: FeatureConfig) -> None:
    body = _body()
    body["events"][0]["pricing_page_views"] = -2
    body["events"][1]["timestamp"] = "last tuesday"
    body["events"][1]["value"] = float("nan")
    body["lead"]["budget_confirmed"] = "perhaps"
    locs = {loc for loc, _ in _errors(config, body)}
    assert locs == {
        ("events", 0, "pricing_page_views"),
        ("events", 1, "timestamp"),
        ("events", 1, "value"),
        ("lead", "budget_confirmed"),
    }


def test_event_after_as_of_is_refused(config: FeatureConfig) -> None:
    body = _body()
    body["events"][1]["timestamp"] = "2024-01-31T00:00:01Z"
    ((loc, msg),) = _errors(config, body)
    assert loc == ("events", 1, "timestamp")
    assert msg.startswith("2024-01-31T00:00:01 is after as_of 2024-01-31T00:00:00")


def test_event_at_as_of_is_accepted(config: FeatureConfig) -> None:
    body = _body()
    body["events"][1]["timestamp"] = "2024-01-31T00:00:00Z"
    assert validate(config, body).events[1]["timestamp"].isoformat() == "2024-01-31T00:00:00"


def test_event_of_another_lead_is_refused(config: FeatureConfig) -> None:
    body = _body()
    body["events"][0]["lead_id"] = "L2"
    assert _errors(config, body) == [
        (("events", 0, "lead_id"), "'L2' is another lead's event; expected 'L1' or no lead_id")
    ]


def test_required_fields(config: FeatureConfig) -> None:
    body = _body()
    del body["lead"]["created_at"]
    del body["lead"]["lead_id"]
    del body["events"][0]["type"]
    locs = {loc for loc, _ in _errors(config, body)}
    assert locs == {("lead", "created_at"), ("lead", "lead_id"), ("events", 0, "type")}


def test_a_date_alone_is_the_end_of_that_day(config: FeatureConfig) -> None:
    body = _body(events=[])
    body["lead"]["created_at"] = "2024-01-05"
    body["as_of"] = "2024-01-31"
    parsed = validate(config, body)
    assert parsed.lead["created_at"].isoformat() == "2024-01-05T23:59:59.999999"
    assert parsed.as_of.isoformat() == "2024-01-31T23:59:59.999999"
