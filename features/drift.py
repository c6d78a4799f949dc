"""Population stability: how far a feature's distribution has moved from a reference.

The population stability index (PSI) of a feature is the sum, over its bins, of
``(current share - reference share) * ln(current share / reference share)``. The usual reading:
below 0.1 stable, 0.1-0.2 a moderate shift, above 0.2 a significant one. Bins are fixed by
the reference, so bin counts can be kept anywhere (a snapshot, a service's histogram summed
across workers) and compared later:

* a number: edges at the reference's deciles (values it has; ties merged), plus a bin for
  missing values;
* a category (or an ordinal, a boolean): one bin per reference value, one for values the
  reference never had, and one for missing values.

An empty bin's share is floored at :data:`SHARE_FLOOR` so that a category that appears or
vanishes gives a large but finite index. Pure numpy/pandas: nothing of ours is imported.

Why not a drift library (checked 2026-12-02 with ``pip install --dry-run``): evidently 0.7.23
adds 30 packages (a second web framework, litestar; nltk, statsmodels, a telemetry client);
nannyml 0.13.1 adds 38 (xgboost, CUDA's nccl, Google Cloud and S3 clients, an analytics
client) and would pin LightGBM back to 4.5. The index is the few lines below, and the service
must compute it from bin counts summed across workers, which neither offers.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal, cast

import numpy as np
import pandas as pd

Kind = Literal["number", "category"]
SHARE_FLOOR = 1e-4  # the share an empty bin counts as (ln(0) is undefined)
STABLE, SHIFTED = 0.1, 0.2  # the usual reading of an index
DECILES = 10
MISSING = "(missing)"
OTHER = "(new value)"


def psi(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray) -> float:
    """The population stability index of two count (or share) vectors over the same bins."""
    ref, cur = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if ref.shape != cur.shape or ref.ndim != 1 or not len(ref):
        raise ValueError(
            f"bin counts must be two vectors of one length, got {ref.shape} and {cur.shape}"
        )
    if ref.sum() <= 0 or cur.sum() <= 0:
        return math.nan
    p = np.maximum(ref / ref.sum(), SHARE_FLOOR)
    q = np.maximum(cur / cur.sum(), SHARE_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


@dataclass(frozen=True)
class Bins:
    """A feature's bins, fixed by a reference sample: `edges` (numbers; a value goes to the
    first bin whose upper edge is at or above it) or `values` (categories), then the bins for
    new values (categories only) and for missing values."""

    kind: Kind
    edges: tuple[float, ...] = ()
    values: tuple[str, ...] = ()

    @property
    def labels(self) -> list[str]:
        """One readable label per bin, in order."""
        if self.kind == "number":
            bounds = ["-inf", *(f"{e:g}" for e in self.edges), "inf"]
            return [f"({a}, {b}]" for a, b in pairwise(bounds)] + [MISSING]
        return [*self.values, OTHER, MISSING]

    def to_dict(self) -> dict[str, object]:
        """The bins as JSON-ready data (:meth:`from_dict` reads it back)."""
        if self.kind == "number":
            return {"kind": "number", "edges": list(self.edges)}
        return {"kind": "category", "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Bins:
        """Bins written by :meth:`to_dict`."""
        kind = data.get("kind")
        if kind == "number":
            return cls("number", edges=tuple(float(cast(float, e)) for e in _listed(data, "edges")))
        if kind == "category":
            return cls("category", values=tuple(str(v) for v in _listed(data, "values")))
        raise ValueError(f"bins of kind {kind!r}: expected 'number' or 'category'")

    def counts(self, values: pd.Series) -> np.ndarray:
        """How many of `values` fall in each bin."""
        missing = values.isna().to_numpy()
        present = values[~missing]
        if self.kind == "number":  # a value that is not a number counts as missing
            numbers = pd.to_numeric(present, errors="coerce").to_numpy(dtype=float)
            unreadable = np.isnan(numbers)
            edges = np.asarray(self.edges, dtype=float)
            at = np.searchsorted(edges, numbers[~unreadable], side="left")
            counted = np.bincount(at, minlength=len(self.edges) + 1).astype(float)
            return np.append(counted, float(missing.sum() + unreadable.sum()))
        index = {v: i for i, v in enumerate(self.values)}
        at = np.array([index.get(str(v), len(self.values)) for v in present], dtype=int)
        counted = np.bincount(at, minlength=len(self.values) + 1).astype(float)
        return np.append(counted, float(missing.sum()))

    def locator(self) -> Callable[[object], int]:
        """A function giving the bin of one value, as :meth:`counts` bins it, for a service that
        counts values one at a time: the edges or the category index are prepared once, so the
        values a feature row holds (None, a number, a text, a boolean) cost a few hundred
        nanoseconds; any other value goes through :meth:`counts` itself."""

        def slow(value: object) -> int:
            return int(np.argmax(self.counts(pd.Series([value], dtype=object))))

        if self.kind == "number":
            edges, missing = list(self.edges), len(self.edges) + 1

            def number(value: object) -> int:
                if isinstance(value, float | int):  # bool too: 1.0 and 0.0, as pandas reads it
                    return missing if value != value else bisect_left(edges, value)
                return missing if value is None else slow(value)

            return number
        index = {v: i for i, v in enumerate(self.values)}
        other, missing = len(self.values), len(self.values) + 1

        def category(value: object) -> int:
            if isinstance(value, str):
                return index.get(value, other)
            if value is None or (isinstance(value, float) and value != value):
                return missing
            return index.get(str(value), other) if isinstance(value, bool | int) else slow(value)

        return category


def fit_bins(reference: pd.Series, kind: Kind, deciles: int = DECILES) -> Bins:
    """The bins of a feature, from its reference sample."""
    present = reference.dropna()
    if kind == "number":
        numbers = pd.to_numeric(present, errors="coerce").dropna().to_numpy(dtype=float)
        if not len(numbers):
            return Bins("number")
        # edges are values the reference has (no interpolation): counts keep whole-number edges
        inner = np.quantile(numbers, np.linspace(0, 1, deciles + 1)[1:-1], method="lower")
        return Bins("number", edges=tuple(float(e) for e in np.unique(inner)))
    return Bins("category", values=tuple(sorted({str(v) for v in present})))


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's shift from the reference to the current sample."""

    feature: str
    kind: Kind
    psi: float
    missing_before: float  # share of missing values
    missing_after: float
    new_values: tuple[str, ...]  # categories the reference never had
    vanished_values: tuple[str, ...]  # reference categories absent now
    bins: tuple[str, ...]
    reference_share: tuple[float, ...]
    current_share: tuple[float, ...]

    @property
    def verdict(self) -> str:
        """stable, moderate or shifted (the usual reading of the index)."""
        if math.isnan(self.psi) or self.psi < STABLE:
            return "stable"
        return "moderate" if self.psi < SHIFTED else "shifted"


def feature_drift(name: str, reference: pd.Series, current: pd.Series, kind: Kind) -> FeatureDrift:
    """How far `current` moved from `reference` (bins fitted on the reference)."""
    bins = fit_bins(reference, kind)
    before, after = bins.counts(reference), bins.counts(current)
    new: tuple[str, ...] = ()
    vanished: tuple[str, ...] = ()
    if kind == "category":
        seen_before = set(bins.values)
        seen_now = {str(v) for v in current.dropna()}
        new = tuple(sorted(seen_now - seen_before))
        vanished = tuple(sorted(seen_before - seen_now))
    return FeatureDrift(
        feature=name, kind=kind, psi=psi(before, after),
        missing_before=_share(reference.isna().sum(), len(reference)),
        missing_after=_share(current.isna().sum(), len(current)),
        new_values=new, vanished_values=vanished, bins=tuple(bins.labels),
        reference_share=_shares(before), current_share=_shares(after),
    )  # fmt: skip


def drift_table(
    reference: pd.DataFrame, current: pd.DataFrame, kinds: Mapping[str, Kind]
) -> list[FeatureDrift]:
    """Every feature of `kinds` (present in both frames), largest index first."""
    missing = [n for n in kinds if n not in reference.columns or n not in current.columns]
    if missing:
        raise KeyError(f"features not in both samples: {', '.join(missing)}")
    rows = [feature_drift(n, reference[n], current[n], k) for n, k in kinds.items()]
    return ranked(rows)


def ranked(rows: Iterable[FeatureDrift]) -> list[FeatureDrift]:
    """Largest index first (a feature without one last), then by name."""
    return sorted(
        rows, key=lambda r: (math.isnan(r.psi), -(0 if math.isnan(r.psi) else r.psi), r.feature)
    )


def _share(part: float, whole: int) -> float:
    return float(part) / whole if whole else math.nan


def _shares(counts: np.ndarray) -> tuple[float, ...]:
    total = counts.sum()
    return tuple(float(c / total) if total else math.nan for c in counts)


def _listed(data: Mapping[str, object], key: str) -> list[object]:
    value = data.get(key)
    if not isinstance(value, list):
        raise ValueError(f"bins: {key!r} must be a list, got {type(value).__name__}")
    return value


def reference(values: pd.Series, kind: Kind) -> dict[str, object]:
    """A reference sample as its bins and their counts (what a later sample is compared with)."""
    bins = fit_bins(values, kind)
    return bins.to_dict() | {"counts": [int(c) for c in bins.counts(values)]}
