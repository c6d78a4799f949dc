"""Reasons: points add up to p - p0, keep their contribution's sign, never exceed 1; sentences."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.features.config import load_feature_config
from leadscore.features.spec import build_spec
from leadscore.serving.reasons import TINY_SUM, allocate_points, explain
from tests.conftest import examples

contribs = st.lists(
    st.floats(min_value=-8, max_value=8, allow_nan=False, allow_subnormal=False),
    min_size=1, max_size=40,
)  # fmt: skip
probability = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


@settings(max_examples=examples(400), deadline=None)
@given(contribs, st.floats(min_value=-4, max_value=4), probability)
def test_points_add_up_keep_signs_and_stay_within_one(
    values: list[float], base: float, slope_value: float
) -> None:
    c = np.array(values)
    p0, p = _sigmoid(base), _sigmoid(base + float(c.sum()))
    points = allocate_points(c, p, p0, lambda: slope_value)
    assert points.sum() == pytest.approx(p - p0, abs=1e-12)
    assert np.all(np.abs(points) <= 1.0 + 1e-12)
    assert np.all(points * c >= 0), "a point has the opposite sign of its contribution"


def test_the_main_rule_is_proportional() -> None:
    c = np.array([0.8, -0.3, 0.1, 0.0])
    p0, p = 0.2, _sigmoid(math.log(0.2 / 0.8) + 0.6)
    points = allocate_points(c, p, p0)
    np.testing.assert_allclose(points, c * (p - p0) / c.sum(), rtol=1e-12)


def test_contributions_that_cancel_use_the_slope_and_both_signs() -> None:
    c = np.array([1.5, -1.5 + TINY_SUM / 10])
    points = allocate_points(c, 0.3, 0.3, lambda: 0.21)
    assert points[0] > 0 > points[1]
    assert points.sum() == pytest.approx(0.0, abs=1e-15)
    assert points[0] == pytest.approx(0.21 * 1.5, rel=1e-6)


def test_large_cancelling_contributions_are_clipped_to_one() -> None:
    c = np.array([6.0, -5.5])  # the plain ratio would give +1.47 and -1.35
    p0 = 0.5
    p = _sigmoid(0.5)
    points = allocate_points(c, p, p0)
    assert points.sum() == pytest.approx(p - p0)
    assert np.abs(points).max() <= 1.0
    assert points[0] > 0 > points[1]


def test_one_sided_and_empty_contributions() -> None:
    assert allocate_points(np.zeros(3), 0.4, 0.4).tolist() == [0.0, 0.0, 0.0]
    points = allocate_points(np.array([0.0, -1.0, -3.0]), 0.1, 0.3)
    np.testing.assert_allclose(points, [0.0, -0.05, -0.15])


SPEC_FEATURES = build_spec(load_feature_config()).features


def _row_and_contrib(contribs: dict[str, float], values: dict[str, object]) -> tuple[Any, ...]:
    features = SPEC_FEATURES
    row = {f.name: None for f in features} | values
    index = {f.name: i for i, f in enumerate(features)}
    contrib = np.zeros(len(features))
    for name, c in contribs.items():
        contrib[index[name]] = c
    return features, row, contrib


def test_explain_lists_top_reasons_missing_values_and_age_as_context() -> None:
    features, row, contrib = _row_and_contrib(
        {
            "pricing_page_views": 0.9, "industry": 0.2, "inbound_share": 0.05,
            "meetings_set": -0.4, "region": 0.3, "employee_band": -0.1,
            "lead_age_days": -0.25, "days_since_last_touch": -0.05,
        },
        {
            "lead_age_days": 30.0, "pricing_page_views": 4.0, "meetings_set": 0,
            "industry": "professional_services", "inbound_share": 0.25,
        },
    )  # fmt: skip
    # sum(c) = 0.65 and p - p0 = 0.13: every contribution becomes 0.2 x c in points
    p0, p = 0.2, 0.33
    exp = explain(features, row, contrib, p, p0, top=2)
    # region (+0.06) would be the second positive reason, but it is not known
    assert [r.feature for r in exp.positive] == ["pricing_page_views", "industry"]
    assert [r.feature for r in exp.negative] == ["meetings_set", "days_since_last_touch"]
    assert [r.sentence for r in exp.positive + exp.negative] == [
        "Viewed the pricing page 4 times in the first 30 days (raises the score by 18 points)",
        "Works in professional services (raises the score by 4 points)",
        "Agreed to 0 meetings in the first 30 days (lowers the score by 8 points)",
        "No touch yet (lowers the score by 1 point)",
    ]
    # unknown values with points, largest first; the other unknown attributes moved nothing
    assert [(r.feature, r.sentence) for r in exp.missing] == [
        ("region", "Region is not known: adding it would sharpen the score"),
        ("employee_band", "Company size is not known: adding it would sharpen the score"),
    ]
    assert [r.points for r in exp.missing] == pytest.approx([0.06, -0.02])
    assert [(r.feature, r.sentence) for r in exp.context] == [
        ("lead_age_days", "The lead is 30 days old")
    ]
    assert exp.context[0].points == pytest.approx(-0.05)
    assert exp.other_points == pytest.approx(0.01)  # inbound_share, not in the top 2
    listed = exp.positive + exp.negative + exp.missing + exp.context
    assert sum(r.points for r in listed) + exp.other_points == pytest.approx(p - p0)
    assert sum(exp.score_by_group.values()) == pytest.approx(p - p0)
    assert set(exp.score_by_group) == {"fit", "engagement", "sales"}


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.floats(min_value=-3, max_value=3, allow_nan=False), min_size=8, max_size=8),
    st.lists(st.booleans(), min_size=8, max_size=8),
    st.integers(min_value=0, max_value=5),
)
def test_unknown_values_and_age_are_never_reasons_and_totals_add_up(
    cs: list[float], known: list[bool], top: int
) -> None:
    names = ["lead_age_days", "region", "seniority", "employee_band", "touches",
             "meetings_set", "days_since_last_touch", "opportunity_value"]  # fmt: skip
    values = {"lead_age_days": 12.0, "region": "UK", "seniority": "vp", "employee_band": "2000+",
              "touches": 3, "meetings_set": 1, "days_since_last_touch": 2.5,
              "opportunity_value": 5000.0}  # fmt: skip
    shown = {
        n: (values[n] if k or n == "lead_age_days" else None)
        for n, k in zip(names, known, strict=True)
    }
    features, row, contrib = _row_and_contrib(dict(zip(names, cs, strict=True)), shown)
    p0 = 0.3
    p = _sigmoid(math.log(0.3 / 0.7) + float(contrib.sum()))
    exp = explain(features, row, contrib, p, p0, top=top)
    unknown_attributes = {"region", "seniority", "employee_band"}
    for r in exp.positive + exp.negative:
        assert r.feature != "lead_age_days"
        assert not (r.feature in unknown_attributes and r.value is None), r
        assert ("raises the score" in r.sentence) == (r.points > 0), r.sentence
        assert ("lowers the score" in r.sentence) == (r.points < 0), r.sentence
    assert [r.feature for r in exp.context] == ["lead_age_days"]
    assert all(r.value is None and r.feature in unknown_attributes for r in exp.missing)
    assert [abs(r.points) for r in exp.missing] == sorted(
        (abs(r.points) for r in exp.missing), reverse=True
    )
    listed = exp.positive + exp.negative + exp.missing + exp.context
    assert sum(r.points for r in listed) + exp.other_points == pytest.approx(p - p0, abs=1e-12)


@pytest.mark.parametrize(
    "value", [None, float("nan"), 0, 3, 4.0, 0.37, 1234.5, True, False, "vp_finance", "a_b_c"]
)
def test_every_sentence_reads_as_words(value: object) -> None:
    for f in build_spec(load_feature_config()):
        text = f.sentence(value, 30.0)
        assert "_" not in text, (f.name, text)
        assert "{" not in text and text.strip(), (f.name, text)
