"""What a rep reads: every sentence the spec can produce, and the reasons the API returns.

The rules: "1 day" / "1 time" (never "1 days"), no number with more than one decimal, shares
as percentages, thousands separators, no "None"/"nan", an unknown value never phrased as a
reason, the lead's age only as context, and every reason saying which way it moves the score.
"""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from leadscore.features.config import CustomField, FeatureConfig, load_feature_config
from leadscore.features.spec import (
    Feature,
    build_spec,
    format_duration,
    format_number,
    format_percent,
    format_points,
)
from leadscore.serving.reasons import missing_sentence, reason_sentence
from tests.serving.conftest import TestClient
from tests.serving.leads import example, random_body

CUSTOM = FeatureConfig(
    custom_fields=(
        CustomField(name="intent_score", entity="account", type="number", label="Intent score",
                    template="Third-party intent score is {value}"),
        CustomField(name="budget_confirmed", entity="lead", type="boolean",
                    label="Budget confirmed", template="Budget confirmed: {value}", dated=True),
        CustomField(name="open_tickets", entity="account", type="number", label="Open tickets",
                    template="Has {value} open support tickets"),
        CustomField(name="plan_tier", entity="account", type="ordinal", label="Plan tier",
                    order=("free", "pro"), template="Is on the {value} plan"),
    )
)  # fmt: skip
SPECS = {
    "builtin": build_spec(FeatureConfig()),
    "packaged": build_spec(load_feature_config()),
    "custom": build_spec(CUSTOM),
}
FEATURES = {f"{name}:{f.name}": f for name, spec in SPECS.items() for f in spec}
VALUES: list[Any] = [0, 1, 1.0, 9.75, 0.004, 1234567, None, float("nan")]
AGES = [None, 0.5, 1.0, 9.75, 30.0]

ONE_PLURAL = re.compile(
    r"(?<![\w.,])[+-]?1 (?:[A-Za-z-]+ ){0,3}?(days|times|touches|visits|meetings|demos|webinars|"
    r"activities|pages|seconds|minutes|hours|messages|calls|attempts|employees|tickets|points)\b"
)
LONG_DECIMAL = re.compile(r"\d\.\d\d")
BAD_WORDS = re.compile(r"\b(None|nan|NaN|inf|null|True|False)\b")


def _values_for(f: Feature) -> list[Any]:
    if f.dtype in ("category", "ordinal"):
        return ["vp_finance", "2000+", None]
    if f.dtype == "boolean":
        return [True, False, None]
    return VALUES


def assert_reads_well(text: str) -> None:
    """The grammar every sentence a rep sees must follow."""
    assert not ONE_PLURAL.search(text), text
    assert not LONG_DECIMAL.search(text), text
    assert not BAD_WORDS.search(text), text
    for bad in ("unknown days", "{", "}", "_", "  "):
        assert bad not in text, (bad, text)
    assert text == text.strip() and (text[0].isupper() or text[0].isdigit()), text
    assert not text.endswith((":", ",", ";", "-", " by")), text


@pytest.mark.parametrize("key", sorted(FEATURES))
def test_every_sentence_the_spec_can_produce_reads_well(key: str) -> None:
    f = FEATURES[key]
    for value in _values_for(f):
        for age in AGES:
            text = f.sentence(value, age)
            assert_reads_well(text)
            if value is None or value != value:
                # missing is a fact about the data, never a number read into the template
                assert text == f.missing_sentence()
                assert ("not known" in text) == f.unknown_when_missing, text
                assert "yet" in text or f.unknown_when_missing, text
                assert "raises" not in text and "lowers" not in text
            elif "{age_days}" in f.template and age in (1.0, 30.0):
                assert ("first day" if age == 1.0 else "first 30 days") in text, text


def test_numbers_follow_one_rule_and_take_the_singular_at_one() -> None:
    days = FEATURES["builtin:days_since_opportunity_opened"]
    assert days.sentence(9.75) == "Opportunity opened 10 days ago"
    assert days.sentence(1.0) == "Opportunity opened 1 day ago"
    assert days.sentence(1.25) == "Opportunity opened 1.3 days ago"
    assert days.sentence(0.0) == "Opportunity opened 0 days ago"
    views = FEATURES["builtin:pricing_page_views"]
    assert views.sentence(1.0, 1.0) == "Viewed the pricing page 1 time in the first day"
    assert views.sentence(2, 9.75) == "Viewed the pricing page 2 times in the first 10 days"
    assert views.sentence(2, None) == "Viewed the pricing page 2 times so far"
    touches = FEATURES["builtin:touches"]
    assert touches.sentence(1, 30.0) == "Had 1 marketing or SDR touch in the first 30 days"
    assert FEATURES["builtin:sales_activities"].sentence(1, 2.0) == (
        "Sales logged 1 activity in the first 2 days"
    )
    assert FEATURES["builtin:engagement_last_7d"].sentence(1) == (
        "Had 1 touch or website visit in the last 7 days"
    )
    assert FEATURES["builtin:lead_age_days"].sentence(1.0) == "The lead is 1 day old"
    money = FEATURES["builtin:opportunity_value"]
    assert money.sentence(1234567.0) == "Estimated deal value is 1,234,567"
    assert FEATURES["builtin:session_seconds"].sentence(1440.0, 30.0) == (
        "Spent 24 minutes on the website in the first 30 days"
    )
    trend = FEATURES["builtin:engagement_trend"]
    assert trend.sentence(3) == "Touches and website visits changed by +3 week over week"
    assert trend.sentence(-2) == "Touches and website visits changed by -2 week over week"
    assert FEATURES["custom:open_tickets"].sentence(1.0) == "Has 1 open support ticket"
    assert FEATURES["custom:intent_score"].sentence(0.1234) == "Third-party intent score is 0.1"


def test_shares_read_as_percentages() -> None:
    share = FEATURES["builtin:inbound_share"]
    assert share.sentence(0.25) == "25% of touches were initiated by the lead"
    assert share.sentence(1 / 3) == "33% of touches were initiated by the lead"
    assert share.sentence(0.004) == "0.4% of touches were initiated by the lead"
    assert share.sentence(None) == "No touches yet, so no share initiated by the lead"


@pytest.mark.parametrize(
    ("p", "shown"),
    [(0.0, "0%"), (0.0004, "<0.1%"), (0.004, "0.4%"), (0.0149, "1.5%"), (0.02, "2%"),
     (0.725, "73%"), (0.985, "98.5%"), (0.9996, ">99.9%"), (1.0, "100%")],
)  # fmt: skip
def test_format_percent(p: float, shown: str) -> None:
    assert format_percent(p) == shown


@pytest.mark.parametrize(
    ("x", "shown"),
    [(0, "0"), (0.04, "under 0.1"), (0.05, "0.1"), (1.0, "1"), (1.25, "1.3"), (1.96, "2"),
     (2.5, "3"), (9.75, "10"), (1234567, "1,234,567"), (-3.0, "-3")],
)  # fmt: skip
def test_format_number(x: float, shown: str) -> None:
    assert format_number(x) == shown


def test_points_and_durations() -> None:
    assert format_points(0.17) == "17 points"
    assert format_points(-0.01) == "1 point"
    assert format_points(0.004) == "0.4 points"
    assert format_points(0.0001) == "under 0.1 points"
    assert format_duration(45) == "45 seconds"
    assert format_duration(1440) == "24 minutes"
    assert format_duration(3 * 3600) == "3 hours"


def test_reasons_state_their_direction_and_missing_values_do_not() -> None:
    fact = FEATURES["builtin:meetings_set"].sentence(2, 30.0)
    assert reason_sentence(fact, 0.17) == (
        "Agreed to 2 meetings in the first 30 days (raises the score by 17 points)"
    )
    assert reason_sentence(fact, -0.01) == (
        "Agreed to 2 meetings in the first 30 days (lowers the score by 1 point)"
    )
    size = FEATURES["builtin:employee_band"]
    assert missing_sentence(size) == "Company size is not known: adding it would sharpen the score"
    custom = FEATURES["custom:budget_confirmed"]
    assert missing_sentence(custom) == (
        "Budget confirmed is not known: adding it would sharpen the score"
    )


# ---------------------------------------------------------------------------------------------
# through the API


def _score(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/score", json=body, params={"explain": "true"})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def _check_reasons(data: dict[str, Any]) -> None:
    reasons = data["reasons"]
    listed = reasons["positive"] + reasons["negative"]
    spec = build_spec(load_feature_config())
    for r in listed:
        assert r["feature"] != "lead_age_days"
        assert not (spec[r["feature"]].unknown_when_missing and r["value"] is None), r
        direction = "raises the score" if r["points"] > 0 else "lowers the score"
        assert direction in r["sentence"], r
    for r in listed + reasons["missing"] + reasons["context"]:
        assert_reads_well(r["sentence"])
    for r in reasons["missing"]:
        assert spec[r["feature"]].unknown_when_missing
        assert r["sentence"].endswith("is not known: adding it would sharpen the score")
    assert [r["feature"] for r in reasons["context"]] == ["lead_age_days"]
    everything = listed + reasons["missing"] + reasons["context"]
    total = sum(r["points"] for r in everything) + reasons["other_points"]
    p_minus_p0 = data["mql_probability"] - reasons["base_probability"]
    assert total == pytest.approx(p_minus_p0, abs=1e-9)
    assert sum(data["score_by_group"].values()) == pytest.approx(p_minus_p0, abs=1e-9)


def test_the_example_lead_reads_well(toy_client: TestClient) -> None:
    data = _score(toy_client, example())
    _check_reasons(data)
    reasons = data["reasons"]
    assert all(r["value"] is not None for r in reasons["positive"] + reasons["negative"])
    assert reasons["missing"] == []  # the example lead has every attribute filled in
    assert reasons["context"][0]["sentence"] == "The lead is 30 days old"
    assert reasons["context"][0]["value"] == 30.0


def test_a_sparse_lead_lists_its_unknown_values_once(toy_client: TestClient) -> None:
    body = {"lead": {"lead_id": "bare", "created_at": "2026-03-01T00:00:00Z"},
            "as_of": "2026-03-02T00:00:00Z"}  # fmt: skip
    data = _score(toy_client, body)
    _check_reasons(data)
    missing = [r["feature"] for r in data["reasons"]["missing"]]
    assert missing and len(missing) == len(set(missing))
    assert data["reasons"]["context"][0]["sentence"] == "The lead is 1 day old"


def test_random_leads_read_well(toy_client: TestClient) -> None:
    rng = random.Random(13)
    for i in range(15):
        body = random_body(rng, 30_000 + i)
        if i % 3 == 0:  # drop fit fields so some values are unknown
            body["account"].pop("industry", None)
            body["contact"].pop("seniority", None)
        _check_reasons(_score(toy_client, body))


def test_a_hand_raiser_that_is_nurtured_is_told_about_the_hand_raise(
    toy_client: TestClient,
) -> None:
    body = example()
    body["events"].append({"timestamp": "2026-03-30T10:00:00Z", "type": "demo_request"})
    body["account"]["region"] = "DE"
    action = _score(toy_client, body)["recommended_action"]
    assert action["action"] == "nurture"
    assert action["reason"] == (
        "Raised a hand (demo request on 2026-03-30), but cannot go to sales yet. "
        "Fails required SQL criterion target_region: Region DE is not one of US, UK"
    )
