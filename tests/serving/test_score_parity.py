"""One LightGBM call for score and reasons gives the answer of two.

`Scorer.score_row_explained` asks the booster once (``pred_contrib``) and takes the raw
probability as sigmoid(base + sum of contributions); `score_row` plus `contributions` ask it
twice. Over random leads and hypothesis-drawn feature rows the probability agrees within
1e-12 and is_mql and tier agree exactly, also when a threshold or tier cut sits exactly on
the lead's probability (then the plain prediction decides). Boosters whose link is not a plain
sigmoid, and calibrators that are not monotone, take two calls.
"""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.features.config import load_feature_config
from leadscore.features.payload import payload_model
from leadscore.serving.runtime import Calibrator, Scorer, Thresholds, TierCuts
from tests.conftest import examples
from tests.serving.conftest import SCORE_KEY, ClientFactory
from tests.serving.leads import random_body

TOL = 1e-12


class Calls:
    """The booster calls of a scorer: True for contributions, False for a plain prediction."""

    def __init__(self, scorer: Scorer):
        self.calls: list[bool] = []
        predict, contributions = scorer._predict_raw, scorer._contributions

        def counted_predict(x: np.ndarray) -> float:
            self.calls.append(False)
            return predict(x)

        def counted_contributions(x: np.ndarray) -> tuple[np.ndarray, float]:
            self.calls.append(True)
            return contributions(x)

        scorer._predict_raw = counted_predict  # type: ignore[method-assign]
        scorer._contributions = counted_contributions  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def toy(toy_model_dir: Path) -> Scorer:
    """The toy scorer (sigmoid calibrator, per-source thresholds)."""
    return Scorer.from_dir(toy_model_dir)


@pytest.fixture(scope="module")
def rows(toy: Scorer) -> list[dict[str, Any]]:
    """Feature rows of 300 random leads, as the API builds them."""
    model = payload_model(load_feature_config())
    rng = random.Random(14)
    out = []
    for i in range(300):
        payload = model.model_validate(random_body(rng, i))
        lead, account, contact, events = payload.records()
        out.append(toy.feature_row(lead, account, contact, events, payload.as_of_or_now()))
    return out


def counted(scorer: Scorer, **changes: Any) -> tuple[Scorer, Calls]:
    """A copy of `scorer` (with `changes`) whose booster calls are counted."""
    copy = dataclasses.replace(scorer, **changes)
    return copy, Calls(copy)


def assert_same_answer(scorer: Scorer, row: dict[str, Any]) -> dict[str, Any]:
    """One call against two: probability within TOL, decisions and contributions equal."""
    one, contrib, base = scorer.score_row_explained(row)
    two = scorer.score_row(row)
    contrib2, base2 = scorer.contributions(row)
    assert abs(one["mql_probability"] - two["mql_probability"]) <= TOL
    assert abs(one["raw_probability"] - two["raw_probability"]) <= TOL
    assert (one["is_mql"], one["tier"]) == (two["is_mql"], two["tier"])
    assert {k: v for k, v in one.items() if "probability" not in k} == {
        k: v for k, v in two.items() if "probability" not in k
    }
    assert np.array_equal(contrib, contrib2) and base == base2
    return one


def test_one_call_answers_as_two_over_many_leads(toy: Scorer, rows: list[dict[str, Any]]) -> None:
    scorer, counter = counted(toy)
    tiers = set()
    for row in rows:
        counter.calls.clear()
        scorer.score_row_explained(row)
        assert counter.calls == [True]  # no lead here sits within 1e-9 log-odds of a cut
        tiers.add(assert_same_answer(scorer, row)["tier"])
    assert tiers == {"A", "B", "C", "D"}  # every decision is exercised


feature_values = st.fixed_dictionaries(
    {
        "lead_age_days": st.sampled_from([1.0, 3.0, 7.0, 14.0, 30.0, 400.0]),
        "lead_source": st.sampled_from(["inbound_marketing", "sdr_outbound", "zz_new", None]),
        "seniority": st.sampled_from(["manager", "vp", "c_suite", "nobody", None]),
        "industry": st.sampled_from(["logistics", "healthcare_non_clinical", "zz", None]),
        "pricing_page_views": st.none() | st.floats(0, 50, allow_nan=False),
        "meetings_set": st.none() | st.integers(0, 6).map(float),
        "touches": st.none() | st.integers(0, 200).map(float),
        "days_since_last_touch": st.none() | st.floats(0, 90, allow_nan=False),
        "session_seconds": st.none() | st.floats(0, 1e6, allow_nan=False),
        "engagement_trend": st.none() | st.floats(-30, 30, allow_nan=False),
    }
)


@settings(max_examples=examples(300), deadline=None)
@given(values=feature_values, base_index=st.integers(0, 299))
def test_one_call_answers_as_two_on_drawn_rows(
    toy: Scorer, rows: list[dict[str, Any]], values: dict[str, Any], base_index: int
) -> None:
    row = rows[base_index] | values | {"lead_id": "drawn"}
    assert_same_answer(toy, row)


def _at(probability: float, threshold: float, b: float, c: float, scorer: Scorer) -> Scorer:
    return dataclasses.replace(
        scorer,
        thresholds=Thresholds(policy={}, global_threshold=threshold),
        tiers=TierCuts(b, c),
    )


@pytest.mark.parametrize("where", ["threshold", "tier_b", "tier_c"])
@pytest.mark.parametrize("step", [-1, 0, 1])  # cut one ulp below, on, one ulp above
def test_a_cut_on_the_probability_is_decided_by_the_plain_prediction(
    toy: Scorer, rows: list[dict[str, Any]], where: str, step: int
) -> None:
    row = rows[0]
    p = toy.score_row(row)["mql_probability"]
    cut = p if step == 0 else math.nextafter(p, math.inf if step > 0 else -math.inf)
    # the other cuts far away: 0.999 (nobody is an MQL), 0.0 (everyone at least C)
    threshold, b, c = {"threshold": (cut, 0.0, 0.0), "tier_b": (0.999, cut, 0.0),
                       "tier_c": (0.999, 0.999, cut)}[where]  # fmt: skip
    scorer, counter = counted(_at(p, threshold, b, c, toy))
    one, _, _ = scorer.score_row_explained(row)
    assert counter.calls == [True, False]  # the plain prediction was asked to decide
    plain = scorer.score_row(row)
    assert one == plain  # bit for bit: the plain prediction's answer
    expected_in = step <= 0  # p >= cut
    decided = {"threshold": one["is_mql"], "tier_b": one["tier"] == "B",
               "tier_c": one["tier"] == "C"}[where]  # fmt: skip
    assert decided is expected_in


def test_a_booster_with_another_sigmoid_scale_still_agrees(
    toy: Scorer, rows: list[dict[str, Any]]
) -> None:
    x = np.array([toy.encoding.row(r) for r in rows])
    y = (np.nan_to_num(x[:, toy.encoding.names.index("touches")]) > 10).astype(int)
    params = {"objective": "binary", "sigmoid": 2.5, "verbose": -1, "num_threads": 1,
              "min_data_in_leaf": 5, "seed": 1}  # fmt: skip
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=15)
    scorer, counter = counted(toy, booster=booster)
    for row in rows[:50]:
        counter.calls.clear()
        scorer.score_row_explained(row)
        assert counter.calls == [True]
        assert_same_answer(scorer, row)


def test_other_objectives_and_non_monotone_calibrators_take_two_calls(
    toy: Scorer, rows: list[dict[str, Any]]
) -> None:
    x = np.array([toy.encoding.row(r) for r in rows])
    y = np.nan_to_num(x[:, toy.encoding.names.index("touches")]) / 50.0
    params = {"objective": "cross_entropy", "verbose": -1, "num_threads": 1, "seed": 1}
    xentropy = lgb.train(params, lgb.Dataset(x, np.clip(y, 0, 1)), num_boost_round=5)
    zigzag = Calibrator("isotonic", x=(0.0, 0.5, 1.0), y=(0.0, 0.9, 0.2))
    for changes in ({"booster": xentropy}, {"calibrator": zigzag}):
        scorer, counter = counted(toy, **changes)
        one, _, _ = scorer.score_row_explained(rows[1])
        assert counter.calls == [True, False]
        assert one == scorer.score_row(rows[1])


@pytest.mark.slow  # starts a service
def test_the_api_scores_alike_with_and_without_reasons(
    make_client: ClientFactory, toy_model_dir: Path
) -> None:
    client = make_client(model_uri=str(toy_model_dir))
    rng = random.Random(8)
    for i in range(20):
        body = random_body(rng, i)
        answers = [
            client.post(f"/v1/score?explain={e}", json=body, headers={"X-API-Key": SCORE_KEY})
            for e in ("true", "false")
        ]
        assert [a.status_code for a in answers] == [200, 200]
        explained, plain = (a.json() for a in answers)
        assert explained["reasons"] and plain["reasons"] is None
        assert abs(explained["mql_probability"] - plain["mql_probability"]) <= TOL
        assert (explained["is_mql"], explained["tier"]) == (plain["is_mql"], plain["tier"])


def test_the_single_row_fast_path_is_booster_predict_bit_for_bit(
    toy: Scorer, rows: list[dict[str, Any]]
) -> None:
    assert toy._row_predictors is not None  # this LightGBM has the fast path
    for row in rows[:100]:
        x = toy.encoding.row(row).reshape(1, -1)
        assert toy.score_row(row)["raw_probability"] == float(toy.booster.predict(x)[0])
        contrib, base = toy.contributions(row)
        expected = toy.booster.predict(x, pred_contrib=True)[0]
        assert np.array_equal(contrib, expected[:-1]) and base == expected[-1]


def test_without_the_fast_path_the_booster_predicts(
    toy: Scorer, rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fast_path(*_: Any) -> None:
        raise AttributeError("this LightGBM has no _handle")

    monkeypatch.setattr("leadscore.serving.runtime.RowPredictor.__init__", no_fast_path)
    scorer = dataclasses.replace(toy)
    assert scorer._row_predictors is None
    one, contrib, _ = scorer.score_row_explained(rows[2])
    assert one == toy.score_row_explained(rows[2])[0]
    assert np.array_equal(contrib, toy.contributions(rows[2])[0])
