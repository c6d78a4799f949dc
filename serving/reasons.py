"""Reasons: why a lead scored what it did, in probability points a sales rep can read.

LightGBM's ``pred_contrib`` (TreeSHAP) splits a lead's raw score into one log-odds
contribution per feature plus the model's base value. Reps think in probability, so the
contributions are turned into **points**: shares of ``p - p0``, where ``p`` is the lead's
calibrated probability and ``p0`` the calibrated probability at the base value.

The rule (:func:`allocate_points`), with ``c`` the contributions, ``D = p - p0``,
``s = sum(c)`` and ``A = sum(|c|)``:

1. Normally ``points_i = c_i * D / s``: each feature keeps its share and sign, and the points
   add up to ``D``.
2. That ratio is unstable when the contributions cancel out (``|s| < 1e-6``) and can exceed
   one whole probability per feature when large contributions nearly cancel. The general form
   covers both: positive contributions share an amount ``U`` and negative ones an amount
   ``L``, each in proportion to ``|c_i|`` and with its own sign, where ``U - L = D`` and
   ``U + L = G``, the gross movement. ``G = k * A`` with ``k = D / s`` (or, when ``|s|`` is
   tiny, the slope of the calibrated probability at the lead's log-odds), clipped to
   ``[|D|, 2 - |D|]`` so that ``0 <= U, L <= 1``. Without clipping this is exactly rule 1.
   When all contributions have one sign, that side gets ``D`` in proportion to ``|c_i|``.

So the points always add up to ``p - p0``, every point has its contribution's sign and
``|points_i| <= 1``. ``score_by_group`` adds the points of each group (fit, engagement,
sales): the fit-versus-behaviour view.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from leadscore.features.spec import Feature

TINY_SUM = 1e-6  # |sum of log-odds contributions| below this counts as "they cancel out"
GROUPS = ("fit", "engagement", "sales")


@dataclass(frozen=True)
class Reason:
    """One feature's part in a lead's score."""

    feature: str
    label: str
    group: str
    value: Any
    points: float
    log_odds: float
    sentence: str


@dataclass(frozen=True)
class Explanation:
    """The reasons of one lead: top positive and negative, and points per group."""

    base_probability: float
    positive: tuple[Reason, ...]
    negative: tuple[Reason, ...]
    score_by_group: dict[str, float]


def allocate_points(
    contrib: np.ndarray, p: float, p0: float, slope: Callable[[], float] | None = None
) -> np.ndarray:
    """Split ``p - p0`` over features in proportion to their log-odds contributions.

    `slope` gives dp/d(log-odds) at the lead's score; it is only called when the
    contributions cancel out. See the module docstring for the rule.
    """
    c = np.asarray(contrib, dtype=np.float64)
    d = float(p - p0)
    gross_abs = float(np.abs(c).sum())
    if gross_abs == 0.0:
        return np.zeros_like(c)
    pos, neg = c > 0, c < 0
    total_pos, total_neg = float(c[pos].sum()), float(-c[neg].sum())
    if total_pos == 0.0 or total_neg == 0.0:  # one-sided: D in proportion to |c|
        return np.abs(c) * (d / gross_abs)
    s = float(c.sum())
    # k: probability per unit of log-odds; the lead's own ratio unless the sum is too small
    k = d / s if abs(s) >= TINY_SUM else (slope() if slope is not None else 0.0)
    gross = min(max(k * gross_abs, abs(d)), 2.0 - abs(d))
    up, down = (gross + d) / 2.0, (gross - d) / 2.0
    points = np.zeros_like(c)
    points[pos] = c[pos] * (up / total_pos)
    points[neg] = c[neg] * (down / total_neg)
    return points


def json_value(value: Any) -> Any:
    """A feature value as JSON can carry it: NaN -> None, numpy scalars -> Python."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def explain(
    features: Sequence[Feature],
    row: Mapping[str, Any],
    contrib: np.ndarray,
    p: float,
    p0: float,
    top: int,
    slope: Callable[[], float] | None = None,
) -> Explanation:
    """Reasons for one lead from its feature row and log-odds contributions.

    `features` are the spec's features in model input order (one per contribution); `top` is
    how many positive and how many negative reasons to keep.
    """
    points = allocate_points(contrib, p, p0, slope)
    by_group = dict.fromkeys(GROUPS, 0.0)
    for f, pt in zip(features, points, strict=True):
        by_group[f.group] = by_group.get(f.group, 0.0) + float(pt)
    order = np.argsort(-points, kind="stable")
    age = row.get("lead_age_days")

    def reason(i: int) -> Reason:
        f = features[i]
        value = json_value(row.get(f.name))
        return Reason(
            feature=f.name,
            label=f.label,
            group=f.group,
            value=value,
            points=float(points[i]),
            log_odds=float(contrib[i]),
            sentence=f.sentence(value, None if age is None else float(age)),
        )

    positive = tuple(reason(int(i)) for i in order[:top] if points[i] > 0)
    negative = tuple(reason(int(i)) for i in order[::-1][:top] if points[i] < 0)
    return Explanation(p0, positive, negative, by_group)
