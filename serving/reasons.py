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

What a rep reads: the top positive and negative *reasons*, each a sentence that says which
way it moved the score; the values that are *missing* (unknown data is never a reason, but
what it did to the score is still counted); and the lead's age as *context* (the model
judges everything else against it, but "the lead is 30 days old" is no reason to call or
not). Probabilities in text are percentages, points are percentage points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from leadscore.features.spec import Feature, format_points, is_missing

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
    """The reasons of one lead: top positive and negative, the unknown values, the lead's age
    (context), and points per group.

    ``positive + negative + missing + context`` points plus ``other_points`` (the known
    features not listed) add up to ``p - p0``, as do the ``score_by_group`` points.
    """

    base_probability: float
    positive: tuple[Reason, ...]
    negative: tuple[Reason, ...]
    score_by_group: dict[str, float]
    missing: tuple[Reason, ...] = ()
    context: tuple[Reason, ...] = ()
    other_points: float = 0.0


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
    c_pos, c_neg = c[pos], c[neg]
    total_pos, total_neg = float(c_pos.sum()), float(-c_neg.sum())
    if total_pos == 0.0 or total_neg == 0.0:  # one-sided: D in proportion to |c|
        return np.abs(c) * (d / gross_abs)
    s = float(c.sum())
    # k: probability per unit of log-odds; the lead's own ratio unless the sum is too small
    k = d / s if abs(s) >= TINY_SUM else (slope() if slope is not None else 0.0)
    gross = min(max(k * gross_abs, abs(d)), 2.0 - abs(d))
    up, down = (gross + d) / 2.0, (gross - d) / 2.0
    points = np.zeros_like(c)
    points[pos] = c_pos * (up / total_pos)
    points[neg] = c_neg * (down / total_neg)
    return points


def json_value(value: Any) -> Any:
    """A feature value as JSON can carry it: NaN -> None, numpy scalars -> Python."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:  # a row's usual values
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def reason_sentence(fact: str, points: float) -> str:
    """A reason as a rep reads it: the fact, then which way and how far it moves the score
    ("Agreed to 2 meetings in the first 30 days (raises the score by 17 points)")."""
    direction = "raises" if points > 0 else "lowers"
    return f"{fact} ({direction} the score by {format_points(points)})"


def missing_sentence(f: Feature) -> str:
    """What a rep reads about an unknown value: that finding it out would help."""
    return f"{f.missing_sentence()}: adding it would sharpen the score"


def role_of(f: Feature, value: Any) -> str:
    """Where a feature's points are listed: ``context`` (the lead's age, which says when the
    lead is scored, not anything about it), ``missing`` (an unknown value) or ``reason``."""
    return _role(f.kind == "age", f.unknown_when_missing, value)


def _role(context: bool, may_be_unknown: bool, value: Any) -> str:
    if context:
        return "context"
    return "missing" if may_be_unknown and is_missing(value) else "reason"


@dataclass(frozen=True)
class _Layout:
    """What explain() reads of each feature, in model input order."""

    names: tuple[str, ...]
    groups: tuple[str, ...]
    context: tuple[bool, ...]  # the lead's age
    may_be_unknown: tuple[bool, ...]  # a missing value is listed as missing

    @classmethod
    def of(cls, features: Sequence[Feature]) -> _Layout:
        return cls(
            tuple(f.name for f in features),
            tuple(f.group for f in features),
            tuple(f.kind == "age" for f in features),
            tuple(f.unknown_when_missing for f in features),
        )


# One layout per feature list (each entry holds its list, so that the id stays its own).
_LAYOUTS: dict[int, tuple[Sequence[Feature], _Layout]] = {}
MAX_LAYOUTS = 64


def _layout(features: Sequence[Feature]) -> _Layout:
    entry = _LAYOUTS.get(id(features))
    if entry is None or entry[0] is not features:
        if len(_LAYOUTS) >= MAX_LAYOUTS:
            _LAYOUTS.clear()
        entry = _LAYOUTS[id(features)] = (features, _Layout.of(features))
    return entry[1]


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
    how many positive and how many negative reasons to keep. Unknown values are listed once as
    `missing` (never as a reason, whichever way they moved the score) and the lead's age as
    `context`; the points of both still count towards ``p - p0``.
    """
    points = allocate_points(contrib, p, p0, slope)
    pts: list[float] = points.tolist()  # Python floats: indexing an array costs more
    layout = _layout(features)
    by_group = dict.fromkeys(GROUPS, 0.0)
    for group, pt in zip(layout.groups, pts, strict=True):
        by_group[group] = by_group.get(group, 0.0) + pt
    age = row.get("lead_age_days")
    age_days = None if age is None or is_missing(age) else float(age)
    get = row.get
    values = [json_value(get(name)) for name in layout.names]
    roles = [  # role_of(), from the layout
        _role(context, unknown, value)
        for context, unknown, value in zip(
            layout.context, layout.may_be_unknown, values, strict=True
        )
    ]

    def item(i: int, sentence: str) -> Reason:
        f = features[i]
        return Reason(
            feature=f.name, label=f.label, group=f.group, value=values[i],
            points=pts[i], log_odds=float(contrib[i]), sentence=sentence,
        )  # fmt: skip

    def reason(i: int) -> Reason:
        fact = features[i].sentence(values[i], age_days)
        return item(i, reason_sentence(fact, pts[i]))

    order = [i for i in np.argsort(-points, kind="stable").tolist() if roles[i] == "reason"]
    up = [i for i in order[:top] if pts[i] > 0]
    down = [i for i in order[::-1][:top] if pts[i] < 0]
    unknown = sorted(
        (i for i, role in enumerate(roles) if role == "missing" and pts[i] != 0),
        key=lambda i: -abs(pts[i]),
    )
    context = [i for i, role in enumerate(roles) if role == "context"]
    listed = set(up) | set(down)
    other = sum(pts[i] for i in order if i not in listed)
    return Explanation(
        base_probability=p0,
        positive=tuple(reason(i) for i in up),
        negative=tuple(reason(i) for i in down),
        score_by_group=by_group,
        missing=tuple(item(i, missing_sentence(features[i])) for i in unknown),
        context=tuple(item(i, features[i].sentence(values[i], age_days)) for i in context),
        other_points=other,
    )
