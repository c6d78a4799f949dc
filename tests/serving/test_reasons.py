"""Reasons: points add up to p - p0, keep their contribution's sign, never exceed 1; sentences."""

from __future__ import annotations

import math

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


def test_explain_keeps_the_top_reasons_with_template_sentences() -> None:
    spec = build_spec(load_feature_config())
    features = spec.features
    row = {f.name: None for f in features} | {
        "lead_age_days": 30.0, "pricing_page_views": 4.0, "meetings_set": 0,
        "industry": "professional_services", "inbound_share": 0.25,
    }  # fmt: skip
    contrib = np.zeros(len(features))
    index = {f.name: i for i, f in enumerate(features)}
    contrib[index["pricing_page_views"]] = 0.9
    contrib[index["industry"]] = 0.2
    contrib[index["inbound_share"]] = 0.05
    contrib[index["meetings_set"]] = -0.4
    p0 = 0.2
    p = _sigmoid(math.log(0.25) + float(contrib.sum()))
    exp = explain(features, row, contrib, p, p0, top=2)
    assert [r.feature for r in exp.positive] == ["pricing_page_views", "industry"]
    assert [r.feature for r in exp.negative] == ["meetings_set"]
    assert exp.positive[0].sentence == "Viewed the pricing page 4 times in the first 30 days"
    assert exp.positive[1].sentence == "Works in professional services"
    assert exp.negative[0].sentence == "Agreed to 0 meetings in the first 30 days"
    assert sum(exp.score_by_group.values()) == pytest.approx(p - p0)
    assert set(exp.score_by_group) == {"fit", "engagement", "sales"}


@pytest.mark.parametrize(
    "value", [None, float("nan"), 0, 3, 4.0, 0.37, 1234.5, True, False, "vp_finance", "a_b_c"]
)
def test_every_sentence_reads_as_words(value: object) -> None:
    for f in build_spec(load_feature_config()):
        text = f.sentence(value, 30.0)
        assert "_" not in text, (f.name, text)
        assert "{" not in text and text.strip(), (f.name, text)
