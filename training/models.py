"""Model fitting: the two families, LightGBM and logistic regression."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from leadscore.features.spec import FeatureSpec
from leadscore.serving.linear import LinearModel
from leadscore.serving.runtime import Encoding
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
    """Logistic regression on the same encoded features as the booster: the baseline every
    run reports, and the `logistic` family's model when it wins the selection.

    Nominal codes are one-hot encoded (unseen and missing share the `-1` column); the rest are
    imputed at the median with a missing indicator and standardised (the design of
    :class:`~leadscore.serving.linear.LinearModel`, which serving evaluates the same way).
    """

    encoding: Encoding
    model: LinearModel

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        """The probability of converting for each row."""
        log_odds = self.model.log_odds(self.encoding.frame(rows))
        return np.asarray(1.0 / (1.0 + np.exp(-log_odds)), dtype=np.float64)


def fit_logreg(
    rows: pd.DataFrame,
    y: np.ndarray,
    encoding: Encoding,
    c: float = 0.5,
    monotone: Mapping[str, int] | None = None,
) -> LogisticBaseline:
    """Fit the logistic regression (L2, inverse strength `c`) on encoded snapshot rows.

    `monotone` (feature -> +1 or -1, as the spec declares and the booster is constrained): a
    value column whose weight comes out of that sign's opposite is held at zero and the rest
    refitted, until none is (correlated counts otherwise share one effect with opposite
    signs, and "more demos lowered the score" would be a reason the model gives).
    A feature with no value in training is kept as a constant.
    """
    x = encoding.frame(rows)
    nominal = [encoding.names.index(n) for n in encoding.categorical]
    design = LinearModel.learn(x, nominal)
    matrix = design.design(x)
    sign = {k: (monotone or {}).get(encoding.names[col.feature], 0)
            for k, col in enumerate(design.columns) if col.kind == "value"}  # fmt: skip
    free = np.ones(len(design.columns), dtype=bool)
    while True:
        lr = LogisticRegression(C=c, max_iter=3000).fit(matrix[:, free], y)
        weights = np.zeros(len(design.columns))
        weights[free] = lr.coef_[0]
        wrong = [k for k, s in sign.items() if s * weights[k] < 0]
        if not wrong:
            fitted = design.with_weights(weights.tolist(), float(lr.intercept_[0]))
            return LogisticBaseline(encoding, fitted)
        free[wrong] = False
