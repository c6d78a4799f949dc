"""Cross-fitted calibration: the beta fitter, time blocks, out-of-fold correction, the ECE
bootstrap and the ranking guard, on data drawn from known models."""

from __future__ import annotations

from collections.abc import Callable

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from leadscore.serving.runtime import Calibrator, Encoding
from leadscore.training.calibration import (
    booster_refit,
    bootstrap_ece,
    cross_fit_calibration,
    fit_beta,
    fit_calibrator,
    increasing,
    time_blocks,
)
from leadscore.training.evaluate import ece


def _beta_draw(n: int, a: float, b: float, c: float, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, n)
    q = 1 / (1 + np.exp(-(a * np.log(p) - b * np.log1p(-p) + c)))
    return p, (rng.uniform(size=n) < q).astype(int)


def test_beta_fitter_recovers_the_parameters_it_was_drawn_from() -> None:
    p, y = _beta_draw(60_000, a=1.6, b=0.7, c=-0.4)
    cal = fit_beta(p, y)
    assert cal.method == "beta"
    assert cal.a == pytest.approx(1.6, abs=0.1)
    assert cal.b == pytest.approx(0.7, abs=0.1)
    assert cal.c == pytest.approx(-0.4, abs=0.1)


def test_beta_fitter_drops_a_negative_term_instead_of_bending_the_map() -> None:
    # true a < 0: the unconstrained fit would decrease at low p; the paper refits without it
    p, y = _beta_draw(40_000, a=-0.8, b=1.5, c=0.0, seed=1)
    cal = fit_beta(p, y)
    assert cal.a == 0.0 and cal.b > 0
    assert increasing(cal)
    grid = np.linspace(0.001, 0.999, 200)
    assert np.all(np.diff(cal(grid)) >= 0)


def _leads(n: int, seed: int = 0, ages: int = 3) -> pd.DataFrame:
    """`n` leads created over 60 days, `ages` snapshots each; one feature x, true probability
    sigmoid(2x - 1) (the same at every age), labels drawn from it."""
    rng = np.random.default_rng(seed)
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.uniform(0, 60, n), unit="D")
    x = rng.normal(size=n)
    truth = 1 / (1 + np.exp(-(2 * x - 1)))
    y = rng.uniform(size=n) < truth
    frame = pd.DataFrame({"lead_id": [f"L{i:05d}" for i in range(n)], "created_at": created,
                          "x": x, "truth": truth, "label": y})  # fmt: skip
    return pd.concat([frame.assign(lead_age_days=a) for a in range(ages)], ignore_index=True)


def _refit_squared(rows: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray]:
    """A 'model' whose raw score is the true probability squared: ranks perfectly, always
    too low (by construction; it learns nothing from `rows`)."""
    return lambda part: part["truth"].to_numpy() ** 2


def test_blocks_keep_each_lead_whole_and_are_contiguous_in_time() -> None:
    rows = _leads(503, seed=2).sample(frac=1.0, random_state=0)  # row order must not matter
    blocks = time_blocks(rows, 5)
    per_lead = pd.Series(blocks).groupby(rows["lead_id"].to_numpy()).nunique()
    assert (per_lead == 1).all()
    spans = rows.assign(block=blocks).groupby("block")["created_at"].agg(["min", "max"])
    assert list(spans.index) == [0, 1, 2, 3, 4]
    assert (spans["max"].to_numpy()[:-1] <= spans["min"].to_numpy()[1:]).all()
    sizes = rows.assign(block=blocks).groupby("block")["lead_id"].nunique()
    assert sizes.max() - sizes.min() <= 1  # 503 leads: blocks of 100 or 101


def test_a_squared_score_is_corrected_out_of_fold_while_none_is_not() -> None:
    rows = _leads(3000, seed=3, ages=2)
    fit = cross_fit_calibration(rows, _refit_squared, ("isotonic", "sigmoid", "beta", "none"),
                                bootstrap=20)  # fmt: skip
    methods = fit.report["methods"]
    # the noise floor of a perfectly calibrated model on these rows, labels drawn from truth
    rng = np.random.default_rng(0)
    truth = rows["truth"].to_numpy()
    floor = float(np.median([ece(rng.binomial(1, truth), truth) for _ in range(50)]))
    chosen = fit.calibrator.method
    assert chosen != "none"
    assert methods[chosen]["ece"] < floor + 0.01
    assert methods["none"]["ece"] > 0.1  # the squared score is far below the truth
    assert fit.scores[chosen] < fit.scores["none"]
    grid = np.linspace(0.01, 0.9, 50)  # and the fitted map undoes the square
    assert np.abs(fit.calibrator(grid**2) - grid).max() < 0.06


def test_bootstrap_interval_holds_the_estimate_and_narrows_with_more_leads() -> None:
    def interval(n: int) -> tuple[float, float, float]:
        rng = np.random.default_rng(n)
        p = rng.uniform(0.05, 0.95, n)
        y = (rng.uniform(size=n) < p**2).astype(int)  # miscalibrated: ECE well above noise
        groups = np.arange(n)
        return (ece(y, p), *bootstrap_ece(y, p, groups, draws=200, seed=1))

    small, large = interval(1000), interval(16_000)
    for point, low, high in (small, large):
        assert low <= point <= high
    assert (large[2] - large[1]) < (small[2] - small[1]) / 2  # about 1/sqrt(16) as wide


def test_bootstrap_resamples_whole_leads() -> None:
    # 40 leads of 50 identical snapshots each: there are 40 independent draws, not 2,000, and
    # resampling leads shows it; resampling snapshots (one group each) would look far surer
    rng = np.random.default_rng(7)
    p = np.repeat(rng.uniform(0.1, 0.9, 40), 50)
    y = np.repeat((rng.uniform(size=40) < 0.5).astype(int), 50)
    by_lead = bootstrap_ece(y, p, np.repeat(np.arange(40), 50), draws=200)
    by_row = bootstrap_ece(y, p, np.arange(len(p)), draws=200)
    assert by_lead[1] - by_lead[0] > 3 * (by_row[1] - by_row[0])


def test_a_ranking_reversing_calibrator_is_never_chosen() -> None:
    rows = _leads(3000, seed=4)

    def backwards(_rows: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray]:
        return lambda part: 1 - part["truth"].to_numpy()  # ranks exactly backwards

    fit = cross_fit_calibration(rows, backwards, ("sigmoid", "beta", "none"), bootstrap=20)
    assert fit.calibrator.method == "none"
    assert fit.report["methods"]["sigmoid"]["eligible"] is False
    assert fit.report["methods"]["beta"]["eligible"] is False
    assert not increasing(fit_calibrator("sigmoid", 1 - rows["truth"], rows["label"]))


def test_too_few_converting_leads_keep_the_raw_probabilities() -> None:
    rows = _leads(300, seed=5)
    calls: list[int] = []

    def refit(part: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray]:
        calls.append(len(part))
        return _refit_squared(part)

    fit = cross_fit_calibration(rows, refit, ("beta", "none"), min_positive_leads=10_000)
    assert fit.calibrator == Calibrator("none") and not calls
    assert "10000" in fit.report["why"]


def test_forward_folds_predict_each_block_from_earlier_ones_only() -> None:
    rows = _leads(1000, seed=6)
    newest_seen: list[pd.Timestamp] = []

    def refit(part: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray]:
        newest = part["created_at"].max()

        def predict(target: pd.DataFrame) -> np.ndarray:
            newest_seen.append(newest)
            assert target["created_at"].min() >= newest  # never fitted on a later lead
            return target["truth"].to_numpy() ** 2

        return predict

    fit = cross_fit_calibration(rows, refit, ("beta", "none"), scheme="forward", bootstrap=20)
    assert len(newest_seen) == 4  # the oldest block has nothing before it
    assert fit.report["out_of_fold_snapshots"] == pytest.approx(len(rows) * 4 / 5, abs=3)


def test_an_isotonic_fit_that_flattens_the_ranking_is_not_chosen() -> None:
    # a weak, noisy score: isotonic pools it into a few flat steps, tying leads it ranked apart
    rows = _leads(3000, seed=8)
    noise = np.random.default_rng(8).normal(0, 3, len(rows))

    def noisy(_rows: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray]:
        return lambda part: 1 / (1 + np.exp(-(part["x"].to_numpy() + noise[part.index])))

    fit = cross_fit_calibration(rows, noisy, ("isotonic",), max_auc_cost=0.0, bootstrap=20)
    isotonic = fit.report["methods"]["isotonic"]
    assert isotonic["auc_cost"] > 0 and isotonic["eligible"] is False
    assert fit.calibrator.method == "none"


def test_booster_refit_keeps_the_booster_parameters() -> None:
    rng = np.random.default_rng(9)
    rows = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    rows["label"] = rng.uniform(size=2000) < 1 / (1 + np.exp(-rows["a"]))
    encoding = Encoding(names=("a", "b"), vocabularies={}, categorical=())
    # a constraint against the signal, on purpose: only a refit that keeps it decreases
    params = {"objective": "binary", "verbosity": -1, "num_threads": 1,
              "monotone_constraints": [-1, 0]}  # fmt: skip
    booster = lgb.train(params, lgb.Dataset(encoding.frame(rows), rows["label"]), 12)
    predict = booster_refit(booster, encoding)(rows)
    grid = pd.DataFrame({"a": np.linspace(-3, 3, 50), "b": 0.0})
    p = predict(grid)
    assert ((p > 0) & (p < 1)).all()
    assert np.all(np.diff(p) <= 1e-12)  # the refit kept the constraint the booster was given
