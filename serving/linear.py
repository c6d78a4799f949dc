"""Logistic regression as plain numbers: the second model family the scorer serves.

A :class:`LinearModel` turns the scorer's encoded feature row (see
:class:`~leadscore.serving.runtime.Encoding`: nominal features as vocabulary codes, the rest
as numbers, missing as NaN) into log-odds through a fixed *design*:

* a nominal feature becomes one indicator column per code seen in training (a missing or
  unseen value is code ``-1``, which has a column only if training had missing values, as
  scikit-learn's one-hot encoder with ``handle_unknown="ignore"`` would have it);
* any other feature becomes its value with missing filled by the training median,
  standardised, plus a standardised missing indicator when training had missing values.

Training learns the design from the training rows (:meth:`LinearModel.learn`), fits a
logistic regression on :meth:`LinearModel.design` and stores the weights
(:meth:`LinearModel.with_weights`); serving evaluates the same design. Everything is saved
in ``scorer.json``: no pickle, no scikit-learn at serving time.

A feature's contribution is exact: the sum of its columns' ``weight * (value - training
mean)``, so the base (``intercept + sum of weight * training mean``) plus all contributions is
the row's log-odds, as LightGBM's ``pred_contrib`` is for trees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np

ColumnKind = Literal["code", "value", "missing"]
MISSING_CODE = -1


@dataclass(frozen=True)
class LinearColumn:
    """One design column: built from encoded feature `feature` (its input position)."""

    feature: int
    kind: ColumnKind  # code: value == code (1/0); value: filled number; missing: 1 if NaN
    code: int = 0  # `code` columns: the vocabulary code (-1: missing or unseen)
    fill: float = 0.0  # `value` columns: the training median
    center: float = 0.0  # standardisation (value and missing columns)
    scale: float = 1.0
    mean: float = 0.0  # the column's mean over the training rows (contributions start here)
    weight: float = 0.0


@dataclass(frozen=True)
class LinearModel:
    """Logistic regression over the design of the encoded row (see the module docstring)."""

    n_features: int
    columns: tuple[LinearColumn, ...]
    intercept: float = 0.0

    @classmethod
    def learn(cls, x: np.ndarray, nominal: Sequence[int]) -> LinearModel:
        """The design of encoded training rows `x` (weights zero); `nominal`: the positions
        of nominal features (codes, one-hot encoded)."""
        columns: list[LinearColumn] = []
        for j in range(x.shape[1]):
            col = x[:, j]
            missing = np.isnan(col)
            if j in nominal:
                codes = np.where(missing, MISSING_CODE, col).astype(np.int64)
                columns += [LinearColumn(j, "code", code=int(c)) for c in np.unique(codes)]
                continue
            fill = float(np.median(col[~missing])) if (~missing).any() else 0.0
            filled = np.where(missing, fill, col)
            columns.append(LinearColumn(j, "value", fill=fill, center=float(filled.mean()),
                                        scale=_scale(filled)))  # fmt: skip
            if missing.any():
                rate = missing.astype(np.float64)
                columns.append(LinearColumn(j, "missing", center=float(rate.mean()),
                                            scale=_scale(rate)))  # fmt: skip
        model = cls(x.shape[1], tuple(columns))
        means = model.design(x).mean(axis=0) if len(x) else np.zeros(len(columns))
        return replace(model, columns=tuple(
            replace(c, mean=float(m)) for c, m in zip(columns, means, strict=True)
        ))  # fmt: skip

    def with_weights(self, weights: Sequence[float], intercept: float) -> LinearModel:
        """This design with fitted weights (one per design column) and intercept."""
        if len(weights) != len(self.columns):
            raise ValueError(f"{len(weights)} weights for {len(self.columns)} design columns")
        fitted = zip(self.columns, weights, strict=True)
        columns = tuple(replace(c, weight=float(w)) for c, w in fitted)
        return replace(self, columns=columns, intercept=float(intercept))

    def design(self, x: np.ndarray) -> np.ndarray:
        """The design matrix of encoded rows `x` (n rows, one column per design column)."""
        out = np.empty((x.shape[0], len(self.columns)), dtype=np.float64)
        for k, c in enumerate(self.columns):
            col = x[:, c.feature]
            if c.kind == "code":
                out[:, k] = np.where(np.isnan(col), MISSING_CODE, col) == c.code
            elif c.kind == "value":
                out[:, k] = (np.where(np.isnan(col), c.fill, col) - c.center) / c.scale
            else:
                out[:, k] = (np.isnan(col) - c.center) / c.scale
        return out

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        """The log-odds of encoded rows `x` (n rows)."""
        # a row-wise sum, not a matrix product: one row gives the same bits alone or in a batch
        return (self.design(x) * self._weights).sum(axis=1) + self.intercept

    def contributions(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """Each feature's log-odds contribution for one encoded row, and the base; the base
        plus the contributions is the row's log-odds."""
        terms = (self.design(x.reshape(1, -1))[0] - self._means) * self._weights
        return np.bincount(self._features, terms, minlength=self.n_features), self.base

    def contributions_frame(self, x: np.ndarray) -> np.ndarray:
        """:meth:`contributions` of many encoded rows (n rows x features), without the base."""
        terms = (self.design(x) - self._means) * self._weights
        out = np.zeros((x.shape[0], self.n_features))
        for k, c in enumerate(self.columns):
            out[:, c.feature] += terms[:, k]
        return out

    @property
    def base(self) -> float:
        """The log-odds of the training rows' mean design: where contributions start."""
        return float(self.intercept + math.fsum((self._means * self._weights).tolist()))

    @property
    def _weights(self) -> np.ndarray:
        return self._arrays[0]

    @property
    def _means(self) -> np.ndarray:
        return self._arrays[1]

    @property
    def _features(self) -> np.ndarray:
        return self._arrays[2]

    @property
    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cached: tuple[np.ndarray, np.ndarray, np.ndarray] | None = self.__dict__.get("_cache")
        if cached is None:
            cached = (
                np.array([c.weight for c in self.columns], dtype=np.float64),
                np.array([c.mean for c in self.columns], dtype=np.float64),
                np.array([c.feature for c in self.columns], dtype=np.int64),
            )
            object.__setattr__(self, "_cache", cached)
        return cached

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in ``scorer.json``)."""
        return {
            "n_features": self.n_features,
            "intercept": self.intercept,
            "columns": [asdict(c) for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinearModel:
        """Inverse of :meth:`to_dict`."""
        columns = tuple(LinearColumn(**c) for c in data["columns"])
        n = int(data["n_features"])
        for k, c in enumerate(columns):
            problem = _column_problem(c, n)
            if problem:
                raise ValueError(f"linear.columns[{k}]: {problem}")
        return cls(n, columns, float(data["intercept"]))


def _column_problem(c: LinearColumn, n_features: int) -> str:
    """What is wrong with a stored design column ('' when nothing is)."""
    if not 0 <= c.feature < n_features:
        return f"feature {c.feature} is outside 0..{n_features - 1}"
    if c.kind not in ("code", "value", "missing"):
        return f"kind {c.kind!r}, expected code, value or missing"
    bad = [name for name in ("weight", "mean", "center", "fill", "scale")
           if not math.isfinite(getattr(c, name))]  # fmt: skip
    if bad:
        return f"{', '.join(bad)} not a finite number"
    return "scale is 0" if c.scale == 0 else ""


def _scale(values: np.ndarray) -> float:
    """The standard deviation, or 1 for a constant column (as scikit-learn's scaler does)."""
    std = float(values.std())
    return std if std > 1e-12 else 1.0
