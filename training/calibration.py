"""The calibrator, cross-fitted over the whole labelled history.

The served model learns on the oldest leads only; what it outputs on leads it never saw is what
has to be calibrated. Fitting the calibrator on the calibration half of the validation slice
alone (a few thousand snapshots) left too little evidence: at 5-10k leads no calibrator beat
the raw probabilities and unseen-lead ECE stayed at 0.02-0.05. Here every labelled snapshot
outside the test slice gets an *out-of-fold* raw probability from a model of the same family
and size that did not see its lead, and the calibrator is fitted on all of them.

Folds are contiguous blocks of leads ordered by creation time (a lead's snapshots stay in one
block, and leads created the same days mostly do too). Two ways to respect time:

- ``blocked`` (the default): each block is predicted by a model fitted on all the other blocks,
  earlier and later. Every snapshot gets a prediction, and each model sees (k-1)/k of the
  history, about as much as the served model (65% of the leads, against 68% at 5 folds), so
  its raw probabilities are about as sharp as the served model's: the property the
  calibrator depends on.
- ``forward``: each block is predicted by a model fitted on the blocks before it only (the
  first block gets none). It mimics serving (past predicts future), but its models see 1/k to
  (k-1)/k of the history, so their probabilities differ from the served model's more, and a
  fifth of the history is never calibrated on.

Measured on leadforge worlds (``benchmarks/quality.py --calibration crossfit forward``, 5,000
training leads, unseen-lead ECE at day 30), ``blocked`` was at or below ``forward`` on 6 of 7
worlds (means 0.019 and 0.023); leadforge's leads span one month, so what a trend over time
would do to ``blocked`` is not measured there.

The method (isotonic, sigmoid, beta, none) is chosen by the cross-validated log loss of the
calibrator on the out-of-fold probabilities, over the same blocks; a method that is not
increasing in some fold (it would reverse or flatten the ranking), or an isotonic fit whose
flat steps cost ROC AUC within a block, is never chosen; with fewer than `min_positive_leads`
converting leads the raw probabilities are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from leadscore.serving.runtime import Calibrator, Encoding
from leadscore.training.evaluate import ece

log = logging.getLogger(__name__)

Predict = Callable[[pd.DataFrame], np.ndarray]
Refit = Callable[[pd.DataFrame], Predict]
Scheme = Literal["blocked", "forward"]
Criterion = Literal["log_loss", "ece"]
METHODS = ("isotonic", "sigmoid", "beta", "none")
_EPS = 1e-12


# ---------------------------------------------------------------------------------------------
# calibrators


def _logistic(features: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Unpenalised logistic regression: (coefficients, intercept)."""
    lr = LogisticRegression(C=np.inf, max_iter=1000).fit(features, y)
    return lr.coef_[0].astype(np.float64), float(lr.intercept_[0])


def fit_beta(raw: np.ndarray, y: np.ndarray) -> Calibrator:
    """Beta calibration (Kull et al., 2017): logistic regression on ``[ln p, -ln(1 - p)]``.

    A negative coefficient would make the map non-monotone; as the paper does, the fit is then
    repeated without that term (its coefficient fixed at 0). If the remaining one is negative
    too, the result is a constant (a = b = 0), which `increasing` rejects.
    """
    p = np.clip(np.asarray(raw, dtype=np.float64), _EPS, 1 - _EPS)
    y = np.asarray(y).astype(int)
    features = np.column_stack([np.log(p), -np.log1p(-p)])
    (a, b), c = _logistic(features, y)
    if a < 0 or b < 0:
        keep = 1 if a < 0 else 0  # drop the negative term, keep the other
        (coef,), c = _logistic(features[:, [keep]], y)
        coef = max(coef, 0.0)
        if coef == 0.0:
            c = float(np.log(np.mean(y) / (1 - np.mean(y)))) if 0 < np.mean(y) < 1 else 0.0
        a, b = (0.0, coef) if keep == 1 else (coef, 0.0)
    return Calibrator("beta", a=float(a), b=float(b), c=float(c))


def fit_calibrator(method: str, raw: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit one calibration method of the runtime's `Calibrator` on raw probabilities."""
    raw = np.asarray(raw, dtype=np.float64)
    y = np.asarray(y).astype(int)
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        return Calibrator("isotonic", tuple(map(float, iso.X_thresholds_)),
                          tuple(map(float, iso.y_thresholds_)))  # fmt: skip
    if method == "sigmoid":
        p = np.clip(raw, _EPS, 1 - _EPS)
        (a,), b = _logistic(np.log(p / (1 - p)).reshape(-1, 1), y)
        return Calibrator("sigmoid", a=float(a), b=b)
    if method == "beta":
        return fit_beta(raw, y)
    if method == "none":
        return Calibrator("none")
    raise ValueError(f"calibration method {method!r}: expected one of {', '.join(METHODS)}")


def increasing(cal: Calibrator) -> bool:
    """Whether the calibrator keeps the ranking: never decreasing, and not constant."""
    if cal.method == "none":
        return True
    if cal.method == "sigmoid":
        return cal.a > 0
    if cal.method == "beta":
        return cal.a >= 0 and cal.b >= 0 and cal.a + cal.b > 0
    steps = np.diff(np.asarray(cal.y, dtype=np.float64))
    return len(steps) > 0 and bool(np.all(steps >= 0) and np.any(steps > 0))


# ---------------------------------------------------------------------------------------------
# folds and out-of-fold probabilities


def time_blocks(rows: pd.DataFrame, folds: int) -> np.ndarray:
    """Block number (0 = oldest) of every row: leads ordered by (created_at, lead_id) and cut
    into `folds` contiguous blocks of as many leads; a lead's rows share one block."""
    if "created_at" not in rows.columns:
        raise ValueError("cross-fitted calibration needs a created_at column in the rows")
    leads = rows.groupby("lead_id", sort=False)["created_at"].min().reset_index()
    leads = leads.sort_values(["created_at", "lead_id"], kind="stable")
    n = min(folds, len(leads))
    block = np.repeat(np.arange(n), [len(c) for c in np.array_split(np.arange(len(leads)), n)])
    by_lead = pd.Series(block, index=leads["lead_id"].to_numpy())
    return by_lead.loc[rows["lead_id"].to_numpy()].to_numpy()


def out_of_fold(
    rows: pd.DataFrame, refit: Refit, blocks: np.ndarray, scheme: Scheme = "blocked"
) -> np.ndarray:
    """Raw probability of every row from a model that did not see its block (NaN for the first
    block under `forward`, where no earlier block exists)."""
    raw = np.full(len(rows), np.nan)
    for k in np.unique(blocks):
        fit_mask = blocks != k if scheme == "blocked" else blocks < k
        if not fit_mask.any():
            continue
        predict = refit(rows[fit_mask])
        raw[blocks == k] = predict(rows[blocks == k])
    return raw


# ---------------------------------------------------------------------------------------------
# ECE with a bootstrap interval


def bootstrap_ece(
    y: np.ndarray,
    p: np.ndarray,
    groups: np.ndarray,
    draws: int = 200,
    level: float = 0.9,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the ECE, resampling whole leads (`groups`) with replacement.

    Near a well-calibrated model the ECE is mostly sampling noise and its bootstrap sits above
    the point estimate (an absolute error only grows with noise): read the interval as how far
    the estimate could move, not as centred on the truth.
    """
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    order = np.argsort(np.asarray(groups), kind="stable")
    _, starts, counts = np.unique(np.asarray(groups)[order], return_index=True, return_counts=True)
    rng = np.random.default_rng(seed)
    values = np.empty(draws)
    for i in range(draws):
        pick = rng.integers(0, len(starts), len(starts))
        n = counts[pick]
        offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        rows = order[np.repeat(starts[pick], n) + offsets]
        values[i] = ece(y[rows], p[rows])
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


# ---------------------------------------------------------------------------------------------
# the cross-fitted calibrator


@dataclass
class CalibrationFit:
    """The chosen calibrator (fitted on every out-of-fold probability), each method's
    cross-validated score, a JSON-ready report of how it was chosen, and the out-of-fold frame
    it was chosen on (lead_id, block, lead_age_days, raw, label; empty when too few leads
    converted)."""

    calibrator: Calibrator
    scores: dict[str, float]
    report: dict[str, Any] = field(default_factory=dict)
    oof: pd.DataFrame = field(default_factory=pd.DataFrame)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def _cross_validated(
    method: str, raw: np.ndarray, y: np.ndarray, blocks: np.ndarray
) -> tuple[np.ndarray | None, float]:
    """Each block calibrated by the method fitted on the other blocks (None when a fold's fit
    would not keep the ranking), and the mean ROC AUC the calibration cost within a block
    (ties where an isotonic fit is flat; 0 for a strictly increasing map)."""
    out = np.empty(len(raw))
    cost: list[float] = []
    for k in np.unique(blocks):
        fit = blocks != k
        cal = fit_calibrator(method, raw[fit], y[fit])
        if not increasing(cal):
            return None, float("nan")
        out[~fit] = cal(raw[~fit])
        if method == "isotonic":
            cost.append(_auc(y[~fit], raw[~fit]) - _auc(y[~fit], out[~fit]))
    return out, float(np.nanmean(cost)) if cost else 0.0


def _method_report(
    y: np.ndarray, p: np.ndarray, leads: np.ndarray, bootstrap: int, seed: int
) -> dict[str, float | list[float]]:
    low, high = bootstrap_ece(y, p, leads, draws=bootstrap, seed=seed)
    return {
        "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])),
        "ece": ece(y, p),
        "ece_interval": [low, high],
        "brier": float(brier_score_loss(y, p)),
        "roc_auc": _auc(y, p),
    }


def choose_on_out_of_fold(
    oof: pd.DataFrame,
    methods: Sequence[str] = METHODS,
    *,
    criterion: Criterion = "log_loss",
    min_relative_gain: float = 0.0,
    max_auc_cost: float = 0.001,
    bootstrap: int = 200,
    seed: int = 0,
) -> CalibrationFit:
    """Choose and fit the calibrator on out-of-fold probabilities (`oof`: lead_id, block, raw,
    label, and lead_age_days for a per-age ECE).

    Each method's score is the `criterion` (log loss, or ECE) of the calibrator
    cross-validated over the blocks; the lowest wins, `none` (always a candidate) unless a
    calibrator beats it by `min_relative_gain` of its score. A method that is not increasing
    in some fold, or whose flat steps cost more than `max_auc_cost` of ROC AUC within a block,
    is not chosen. ECE intervals resample leads.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"calibration methods {unknown}: expected some of {', '.join(METHODS)}")
    raw, y = oof["raw"].to_numpy(), oof["label"].to_numpy().astype(int)
    blocks, leads = oof["block"].to_numpy(), oof["lead_id"].to_numpy()
    report: dict[str, Any] = {"criterion": criterion, "out_of_fold_snapshots": len(oof),
                              "out_of_fold_roc_auc": _auc(y, raw), "methods": {}}  # fmt: skip
    scores: dict[str, float] = {}
    cross_validated: dict[str, np.ndarray] = {}
    for method in dict.fromkeys((*methods, "none")):  # none is always a candidate
        p, auc_cost = _cross_validated(method, raw, y, blocks)
        if p is None:
            report["methods"][method] = {
                "eligible": False,
                "why": "a fold's fit does not increase with the score",
            }
            scores[method] = float("inf")
            continue
        cross_validated[method] = p
        numbers = _method_report(y, p, leads, bootstrap, seed)
        costly = auc_cost > max_auc_cost
        report["methods"][method] = {"eligible": not costly, "auc_cost": auc_cost} | numbers
        scores[method] = float("inf") if costly else float(numbers[criterion])  # type: ignore[arg-type]
        if costly:
            report["methods"][method]["why"] = (
                f"its flat steps cost {auc_cost:.4f} ROC AUC within a block (> {max_auc_cost})"
            )

    best = min(scores, key=lambda m: scores[m])
    baseline = scores["none"]
    why = f"lowest cross-validated {criterion.replace('_', ' ')} ({scores[best]:.5f})"
    if best != "none" and scores[best] > baseline * (1 - min_relative_gain):
        why = (f"{best} ({scores[best]:.5f}) does not beat the raw probabilities "
               f"({baseline:.5f}) by {min_relative_gain:.1%}")  # fmt: skip
        best = "none"
    chosen = fit_calibrator(best, raw, y)
    if not increasing(chosen):  # the fit on every block together may still fail
        chosen, why = Calibrator("none"), f"{best} fitted on all blocks does not keep the ranking"
    if "lead_age_days" in oof.columns and chosen.method in cross_validated:
        ages = oof["lead_age_days"].to_numpy()
        p = cross_validated[chosen.method]
        report["ece_by_age"] = {f"{a:g}": ece(y[ages == a], p[ages == a]) for a in np.unique(ages)}
    log.info("calibration: %s (%s)", chosen.method, why)
    return CalibrationFit(chosen, scores, report | {"chosen": chosen.method, "why": why}, oof)


def cross_fit_calibration(
    rows: pd.DataFrame,
    refit: Refit,
    methods: Sequence[str] = METHODS,
    *,
    folds: int = 5,
    scheme: Scheme = "blocked",
    min_positive_leads: int = 100,
    criterion: Criterion = "log_loss",
    min_relative_gain: float = 0.0,
    max_auc_cost: float = 0.001,
    bootstrap: int = 200,
    seed: int = 0,
) -> CalibrationFit:
    """Choose and fit the calibrator on out-of-fold probabilities over the whole history.

    `rows`: every labelled snapshot except the test slice (lead_id, label, created_at and the
    features); `refit`: fits the served model's family, at its size, on some rows and returns
    its raw-probability function. With fewer than `min_positive_leads` converting leads the
    raw probabilities are kept; otherwise the choice is :func:`choose_on_out_of_fold`'s, with
    the remaining arguments.
    """
    report = {"scheme": scheme, "folds": folds}
    kept = _raw_kept(rows, min_positive_leads, report)
    if kept is not None:  # decided before any refit: nothing to fit on
        return kept
    blocks = time_blocks(rows, folds)
    raw = out_of_fold(rows, refit, blocks, scheme)
    return calibrate_out_of_fold(
        rows, blocks, raw, methods, min_positive_leads=min_positive_leads, criterion=criterion,
        min_relative_gain=min_relative_gain, max_auc_cost=max_auc_cost, bootstrap=bootstrap,
        seed=seed, report=report,
    )  # fmt: skip


def _counts(rows: pd.DataFrame) -> dict[str, int]:
    """Leads, snapshots and converting leads of `rows` (for the report)."""
    positives = rows.loc[rows["label"].to_numpy().astype(int) == 1, "lead_id"].nunique()
    return {"leads": int(rows["lead_id"].nunique()), "snapshots": len(rows),
            "positive_leads": int(positives)}  # fmt: skip


def _raw_kept(
    rows: pd.DataFrame, min_positive_leads: int, report: dict[str, Any] | None
) -> CalibrationFit | None:
    """`none` with its reason when fewer than `min_positive_leads` leads converted, else None."""
    counts = _counts(rows)
    if counts["positive_leads"] >= min_positive_leads:
        return None
    positives = counts["positive_leads"]
    why = f"{positives} converting leads < {min_positive_leads}: raw probabilities kept"
    log.info("calibration: %s", why)
    decided = {"chosen": "none", "why": why, "methods": {}}
    return CalibrationFit(Calibrator("none"), {"none": float("nan")},
                          counts | (report or {}) | decided)  # fmt: skip


def calibrate_out_of_fold(
    rows: pd.DataFrame,
    blocks: np.ndarray,
    raw: np.ndarray,
    methods: Sequence[str] = METHODS,
    *,
    min_positive_leads: int = 100,
    criterion: Criterion = "log_loss",
    min_relative_gain: float = 0.0,
    max_auc_cost: float = 0.001,
    bootstrap: int = 200,
    seed: int = 0,
    report: dict[str, Any] | None = None,
) -> CalibrationFit:
    """The calibrator from out-of-fold probabilities `raw` of `rows` (in time `blocks`; NaN
    where a row has none): the raw probabilities kept with fewer than `min_positive_leads`
    converting leads, else :func:`choose_on_out_of_fold`'s choice with the other arguments.
    `report` is merged into the fit's report."""
    kept = _raw_kept(rows, min_positive_leads, report)
    if kept is not None:
        return kept
    y = rows["label"].to_numpy().astype(int)
    report = _counts(rows) | (report or {})
    columns = ["lead_id"] + (["lead_age_days"] if "lead_age_days" in rows.columns else [])
    oof = rows[columns].assign(block=blocks, raw=raw, label=y)[~np.isnan(raw)]
    fit = choose_on_out_of_fold(
        oof.reset_index(drop=True), methods, criterion=criterion,
        min_relative_gain=min_relative_gain, max_auc_cost=max_auc_cost, bootstrap=bootstrap,
        seed=seed,
    )  # fmt: skip
    fit.report = report | fit.report
    return fit


# ---------------------------------------------------------------------------------------------
# the LightGBM refit


def booster_refit(booster: lgb.Booster, encoding: Encoding, rounds: int | None = None) -> Refit:
    """Refits of a trained booster: its parameters (monotone constraints included), its best
    iteration's number of trees (no early stopping) and its encoding, on other rows."""
    skip = {"num_iterations", "early_stopping_round", "categorical_column", "metric"}
    params = {k: v for k, v in booster.params.items() if k not in skip}
    n_rounds = rounds or booster.best_iteration or booster.current_iteration()
    categorical = [encoding.names.index(n) for n in encoding.categorical]

    def refit(rows: pd.DataFrame) -> Predict:
        y = rows["label"].to_numpy().astype(int)
        names = list(encoding.names)
        data = lgb.Dataset(encoding.frame(rows), y, feature_name=names,
                           categorical_feature=categorical)  # fmt: skip
        model = lgb.train(params, data, num_boost_round=n_rounds)
        return lambda part: np.asarray(model.predict(encoding.frame(part)), dtype=np.float64)

    return refit
