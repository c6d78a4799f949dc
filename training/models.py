"""Model fitting: LightGBM (main), logistic regression (baseline), the calibrator."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from leadscore.features.spec import FeatureSpec
from leadscore.serving.runtime import Calibrator, Encoding
from leadscore.training.config import ModelConfig

log = logging.getLogger(__name__)


def monotone_constraints(spec: FeatureSpec) -> list[int]:
    """+1 where the spec says more never lowers the score, else 0, in model input order."""
    return [int(f.monotone) for f in spec]


def fit_booster(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_stop: np.ndarray,
    y_stop: np.ndarray,
    encoding: Encoding,
    spec: FeatureSpec,
    cfg: ModelConfig,
) -> lgb.Booster:
    """LightGBM with early stopping on the `stop` slice (binary log loss)."""
    params: dict[str, Any] = {"objective": "binary", "metric": "binary_logloss", "num_threads": 2}
    params |= dict(cfg.params)
    if cfg.monotone and any(monotone_constraints(spec)):
        params["monotone_constraints"] = monotone_constraints(spec)
        params.setdefault("monotone_constraints_method", "advanced")
    categorical = [encoding.names.index(n) for n in encoding.categorical]
    names = list(encoding.names)
    train = lgb.Dataset(x_train, y_train, feature_name=names, categorical_feature=categorical,
                        free_raw_data=False)  # fmt: skip
    stop = lgb.Dataset(x_stop, y_stop, reference=train)
    booster = lgb.train(
        params,
        train,
        num_boost_round=cfg.num_boost_round,
        valid_sets=[stop],
        valid_names=["stop"],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
    )
    log.info("booster: %d trees (best iteration)", booster.best_iteration)
    return booster


@dataclass(frozen=True)
class LogisticBaseline:
    """The logistic-regression baseline, fitted on the same encoded features as the booster.

    It is given snapshot rows and encodes them itself, as named columns, so that whatever
    scikit-learn says names features rather than column positions.
    """

    encoding: Encoding
    pipeline: Pipeline

    def named(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Rows encoded as the model's input, one named column per feature."""
        return pd.DataFrame(self.encoding.frame(rows), columns=list(self.encoding.names))

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        """The probability of converting for each row."""
        return np.asarray(self.pipeline.predict_proba(self.named(rows))[:, 1], dtype=np.float64)


def fit_logreg(rows: pd.DataFrame, y: np.ndarray, encoding: Encoding) -> LogisticBaseline:
    """Baseline: logistic regression on the same encoded features.

    Nominal codes are one-hot encoded (unseen and missing share the `-1` column); the rest are
    imputed at the median with a missing indicator and standardised. A feature with no value
    in training is kept as a constant (it carries nothing, and says so in no warning).
    """
    nominal = list(encoding.categorical)
    numeric = [n for n in encoding.names if n not in nominal]
    prep = ColumnTransformer(
        [
            ("nominal", make_pipeline(SimpleImputer(strategy="constant", fill_value=-1,
                                                    keep_empty_features=True),
                                      OneHotEncoder(handle_unknown="ignore")), nominal),
            ("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True,
                                                    keep_empty_features=True),
                                      StandardScaler()), numeric),
        ]
    )  # fmt: skip
    model = Pipeline([("prep", prep), ("lr", LogisticRegression(C=0.5, max_iter=3000))])
    baseline = LogisticBaseline(encoding, model)
    model.fit(baseline.named(rows), y)
    return baseline


def _fit_calibrator(method: str, raw: np.ndarray, y: np.ndarray) -> Calibrator:
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        return Calibrator("isotonic", tuple(map(float, iso.X_thresholds_)),
                          tuple(map(float, iso.y_thresholds_)))  # fmt: skip
    if method == "sigmoid":
        clipped = np.clip(raw, 1e-12, 1 - 1e-12)
        logit = np.log(clipped / (1 - clipped)).reshape(-1, 1)
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(logit, y)
        return Calibrator("sigmoid", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    return Calibrator("none")


def choose_calibrator(
    raw: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    methods: tuple[str, ...],
    min_positive_leads: int = 0,
    min_relative_gain: float = 0.0,
    folds: int = 5,
) -> tuple[Calibrator, dict[str, float]]:
    """Pick the calibration method with the lowest cross-validated log loss, then refit it.

    Folds are grouped by lead so one lead's snapshots never sit on both sides. With fewer than
    `min_positive_leads` converting leads the booster's probabilities are kept (`none`), and a
    sigmoid whose slope is not positive (it would reverse the ranking) is never chosen, and a
    calibrator must beat `none` by `min_relative_gain` of its log loss to be chosen.
    Returns the fitted calibrator and each method's CV log loss.
    """
    positives = len(np.unique(groups[y == 1]))
    if positives < min_positive_leads:
        log.info("calibration: %d positive leads < %d: none", positives, min_positive_leads)
        return Calibrator("none"), {"none": float("nan")}
    n_folds = min(folds, len(np.unique(groups)))
    scores: dict[str, float] = {}
    for method in methods:
        losses: list[float] = []
        for fit_idx, eval_idx in GroupKFold(n_splits=n_folds).split(raw, y, groups):
            if len(np.unique(y[fit_idx])) < 2:
                continue
            cal = _fit_calibrator(method, raw[fit_idx], y[fit_idx])
            if cal.method == "sigmoid" and cal.a <= 0:
                losses = []  # a reversed ranking in any fold disqualifies the method
                break
            p = np.clip(cal(raw[eval_idx]), 1e-6, 1 - 1e-6)
            losses.append(log_loss(y[eval_idx], p, labels=[0, 1]))
        scores[method] = float(np.mean(losses)) if losses else float("inf")
    best = min(scores, key=lambda m: scores[m])
    baseline = scores.get("none")
    if baseline is not None and scores[best] > baseline * (1 - min_relative_gain):
        best = "none"  # not clearly better than the booster's own probabilities
    chosen = _fit_calibrator(best, raw, y)
    if chosen.method == "sigmoid" and chosen.a <= 0:
        return Calibrator("none"), scores
    return chosen, scores
