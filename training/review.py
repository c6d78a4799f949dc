"""The quarterly review's data drift: the leads the model learned on against the newest ones.

Both sides are snapshots taken the same way (each lead at the same age, only its history up to
then), so a feature moves only when the leads themselves changed, never because one side is
seen later in its life. Each feature's population stability index comes from
:mod:`leadscore.features.drift`; the model's most important features are marked, since a shift
there moves scores, while one elsewhere mostly does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from leadscore.features.contract import CrmData
from leadscore.features.drift import FeatureDrift, Kind, drift_table, reference
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.spec import FeatureSpec

# how a feature's values are binned: numbers by deciles, the rest one bin per value
_KIND_OF_DTYPE: dict[str, Kind] = {
    "number": "number", "count": "number",
    "category": "category", "ordinal": "category", "boolean": "category",
}  # fmt: skip
TOP_FEATURES = 5  # the most important features marked in the review


@dataclass(frozen=True)
class DriftRow:
    """One feature's drift, with its rank by the model's importance (None: not in the top)."""

    drift: FeatureDrift
    importance_rank: int | None


def feature_kinds(spec: FeatureSpec) -> dict[str, Kind]:
    """How each model feature is binned (the lead's age, the same on both sides, is left out)."""
    return {f.name: _KIND_OF_DTYPE[f.dtype] for f in spec if f.kind != "age"}


def snapshot_at_age(data: CrmData, spec: FeatureSpec, age_days: float) -> pd.DataFrame:
    """Every lead of `data` as known `age_days` after its creation."""
    return snapshot(data, spec, as_of_after_creation(data.leads, age_days))


def data_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    spec: FeatureSpec,
    importance: Mapping[str, float] | None = None,
    top: int = TOP_FEATURES,
) -> list[DriftRow]:
    """Each feature's shift from `reference` to `current` snapshots, largest first; the `top`
    features by `importance` (gain, say) carry their rank."""
    kinds = feature_kinds(spec)
    rank = {name: i + 1 for i, name in enumerate(top_features(importance or {}, kinds, top))}
    rows = drift_table(reference, current, kinds)
    return [DriftRow(row, rank.get(row.feature)) for row in rows]


def top_features(
    importance: Mapping[str, float], names: Mapping[str, object], top: int = TOP_FEATURES
) -> list[str]:
    """The `top` features of `names` by `importance`, largest first (ties by name; none at 0)."""
    ranked = sorted(importance.items(), key=lambda kv: (-kv[1], kv[0]))
    return [name for name, value in ranked if value > 0 and name in names][:top]


def drift_reference(
    rows: pd.DataFrame,
    scores: np.ndarray,
    spec: FeatureSpec,
    importance: Mapping[str, float],
    top: int = TOP_FEATURES,
) -> dict[str, Any]:
    """What the service compares its traffic with (kept in the model's metadata): the bins and
    counts of the calibrated scores and of the `top` features by `importance` on the training
    snapshots."""
    kinds = feature_kinds(spec)
    chosen = top_features(importance, kinds, top)
    return {
        "rows": len(rows),
        "score": reference(pd.Series(scores, dtype="float64"), "number"),
        "features": {name: reference(rows[name], kinds[name]) | {"kind": kinds[name]}
                     for name in chosen},
    }  # fmt: skip
