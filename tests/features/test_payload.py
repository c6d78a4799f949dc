"""One-lead bodies (API and `lead.json`): typed from the contract, bad input named by field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from features.config import FeatureConfig
from features.online import OnlineBuilder
from features.payload import payload_model
from features.spec import build_spec


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "lead": {"lead_id": "L1", "created_at": "2024-01-01", "source": "inbound_marketing"},
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
    with pytest.raises(ValidationError) as info:
        payload_model(config).model_validate(body)
    return [(tuple(e["loc"]), e["msg"]) for e in info.value.errors()]


def test_valid_body_gives_canonical_records(config: FeatureConfig) -> None:
    payload = payload_model(config).model_validate(_body())
    lead, account, contact, events = payload.records()
    assert lead["account_id"] == "A1" and lead["contact_id"] == "C1"
    assert account["process_maturity_band"] == "high"  # a custom field, typed from config
    assert [e["lead_id"] for e in events] == ["L1", "L1"]
    row = OnlineBuilder(build_spec(config)).row(lead, account, contact, events,
                                                payload.as_of_or_now())  # fmt: skip
    assert row["pricing_page_views"] == 3.0
    assert row["inbound_touches"] == 1
    assert row["lead_age_days"] == 30.0


def test_unknown_nested_fields_are_kept_and_ignored(config: FeatureConfig) -> None:
    body = _body()
    body["events"][0]["utm_campaign"] = "spring"
    body["lead"]["hubspot_score"] = 12
    lead, _, _, events = payload_model(config).model_validate(body).records()
    assert events[0]["utm_campaign"] == "spring"
    assert lead["hubspot_score"] == 12


def test_unknown_top_level_field(config: FeatureConfig) -> None:
    assert _errors(config, _body(score_now=True)) == [
        (("score_now",), "Extra inputs are not permitted")
    ]


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
    ((_, msg),) = _errors(config, body)
    assert "events[1].timestamp: 2024-01-31T00:00:01 is after as_of" in msg


def test_event_at_as_of_is_accepted(config: FeatureConfig) -> None:
    body = _body()
    body["events"][1]["timestamp"] = "2024-01-31T00:00:00Z"
    assert payload_model(config).model_validate(body)


def test_event_of_another_lead_is_refused(config: FeatureConfig) -> None:
    body = _body()
    body["events"][0]["lead_id"] = "L2"
    ((_, msg),) = _errors(config, body)
    assert "events[0].lead_id: 'L2' is another lead's event" in msg


def test_required_fields(config: FeatureConfig) -> None:
    body = _body()
    del body["lead"]["created_at"]
    del body["lead"]["lead_id"]
    del body["events"][0]["type"]
    locs = {loc for loc, _ in _errors(config, body)}
    assert locs == {("lead", "created_at"), ("lead", "lead_id"), ("events", 0, "type")}
